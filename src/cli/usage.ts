/** A command-line mistake: wrong flag, missing argument. Exit code 2. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const MAIN_HELP = `Usage: contid <command> [options]

Audit container IDs for Linux: labels set by a privileged orchestrator,
inherited across fork, attached to every audit event.

Commands:
  replay FILE... | -   Read audit logs offline and write events (text or JSON lines)
  run                  The daemon (as root): read the kernel audit stream live, label, log
  set PID CONTID       Give a process an audit container ID (through the running daemon)
  get PID              Print a process's audit container ID
  grant PID            Allow a nested orchestrator to label its descendants
  status               Show the daemon's rates, lag, losses and table sizes
  oci-hook             OCI runtime hook (createRuntime): label a container's init
  search               Search the event store, with ausearch's options (--contid, -ts, -k, ...)
  ps                   Containers and their process trees, now or at a past time (--at)
  report               Per container: events, execs, failures, forgeries, top executables
  store                Manage the event store: import contid's JSON lines, info, migrate

Options:
  -h, --help           Show help (also: contid <command> --help)
  -V, --version        Show the version

Exit codes: 0 success, 1 failure (search: no match), 2 usage error, 3 daemon not
running, 4 the event store cannot be read or written.
See README.md and docs/ for the full manual.`;
