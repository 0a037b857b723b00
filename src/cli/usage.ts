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

Options:
  -h, --help           Show help (also: contid <command> --help)
  -V, --version        Show the version

Exit codes: 0 success, 1 failure, 2 usage error.
See README.md and docs/ for the full manual.`;
