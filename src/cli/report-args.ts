import {
  contidsValue,
  formatValue,
  parseQueryArgs,
  RANGE_OPTIONS,
  storeValue,
  timeValue,
  type QueryArgs,
} from './query-args.js';
import { DEFAULT_STORE_PATH, integer } from './store-args.js';
import type { TimeSpec } from './time-spec.js';

export const REPORT_HELP = `Usage: contid report [options]

A summary per container over a time range, from contid's event store, like
aureport's: events, successful execs, failed syscalls, forgery attempts
(markers sent from inside the container that contid refused) and label
operations, with the first and last event, then each container's top
executables and keys. The host ("unset") and events of unknown container
have a line of their own.

Options:
  -ts, --since TIME      From TIME (also --start; ausearch's forms and words)
  -te, --until TIME      To TIME (also --end)
      --contid ID        Only container ID and the containers nested in it
      --exact            With --contid: only container ID itself
      --top N            Executables and keys listed per container (default 5)
  -f, --format FMT       text (default) or json
      --store PATH       The event store (default ${DEFAULT_STORE_PATH})
  -h, --help             Show this help

Exit status: 0, 2 for usage, 4 when the store cannot be read.`;

export interface ReportArgs extends QueryArgs {
  readonly since: TimeSpec | null;
  readonly until: TimeSpec | null;
  readonly top: number;
  readonly format: 'text' | 'json';
}

/** Parses `contid report` arguments; a pure function of argv. */
export function parseReportArgs(argv: readonly string[]): ReportArgs {
  const v = parseQueryArgs(argv, { ...RANGE_OPTIONS, top: { type: 'string' } });
  const format = formatValue(v.format, ['text', 'json']);
  const contids = contidsValue(v);
  return {
    help: v.help ?? false,
    store: storeValue(v.store),
    since: timeValue('--since', v.since),
    until: timeValue('--until', v.until),
    contids,
    exact: v.exact ?? false,
    top: integer('--top', v.top, { min: 0, max: 1000, fallback: 5 }),
    format,
  };
}
