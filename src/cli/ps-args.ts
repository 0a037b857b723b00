import {
  contidsValue,
  formatValue,
  parseQueryArgs,
  storeValue,
  timeValue,
  type QueryArgs,
} from './query-args.js';
import { DEFAULT_STORE_PATH } from './store-args.js';
import type { TimeSpec } from './time-spec.js';
import { UsageError } from './usage.js';

export const PS_HELP = `Usage: contid ps [options]

Containers and their process trees, from contid's event store: each
container's chain, name, state (live, or dropped when its last process
exited), owner (who set its ID: uid, auid, executable), first and last event,
metadata, and the processes alive in it, as a tree. As of the newest stored
event, or of a past time with --at.

The name and metadata are those the set gave (contid set --name --meta, the
OCI hook's container id and bundle), from its CONTAINER_OP record; a later
set that adds a process and describes the container again replaces them.
Text with spaces, quotes or control characters is shown in double quotes,
control characters as \\ooo; --format json gives it as it is.

Processes come from the fork, exec and exit_group records in the store: a
process whose birth is not in the store (it started before the store's first
event, or was labelled later) shows "~" before its start time. A process that
ended without an exit_group record (killed by a signal) stays until its
container is dropped or its pid is reused.

Options:
      --at TIME          The containers and processes alive at TIME (ausearch's
                         forms: 12/07/2026 13:00:00, yesterday, @SECONDS, …)
      --contid ID        Only container ID and the containers nested in it
      --exact            With --contid: only container ID itself
  -a, --all              Also containers that were dropped by then
  -f, --format FMT       text (default) or json
      --store PATH       The event store (default ${DEFAULT_STORE_PATH})
  -h, --help             Show this help

Exit status: 0, 2 for usage, 4 when the store cannot be read.`;

export interface PsArgs extends QueryArgs {
  readonly at: TimeSpec | null;
  readonly all: boolean;
  readonly format: 'text' | 'json';
}

/** Parses `contid ps` arguments; a pure function of argv. */
export function parsePsArgs(argv: readonly string[]): PsArgs {
  const v = parseQueryArgs(argv, {
    at: { type: 'string' },
    all: { type: 'boolean', short: 'a' },
  });
  const format = formatValue(v.format, ['text', 'json']);
  const contids = contidsValue(v);
  if (contids.includes('unset') || contids.includes('unknown')) {
    throw new UsageError('--contid takes container IDs here: the host and unknown have no container');
  }
  return {
    help: v.help ?? false,
    store: storeValue(v.store),
    at: timeValue('--at', v.at),
    contids,
    exact: v.exact ?? false,
    all: v.all ?? false,
    format,
  };
}
