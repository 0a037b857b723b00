import { recordTypeName, recordTypeNumber } from '../interpret/record-types.js';
import { syscallName } from '../interpret/syscalls.js';
import { SYSCALL_TABLES } from '../interpret/syscalls-generated.js';
import type { StoreFormat } from '../store/render.js';
import { CONTID_TYPES } from '../store/payload.js';
import {
  contidsValue,
  formatValue,
  parseQueryArgs,
  RANGE_OPTIONS,
  storeValue,
  timeValue,
  type QueryArgs,
} from './query-args.js';
import { DEFAULT_STORE_PATH, integer, list } from './store-args.js';
import type { TimeSpec } from './time-spec.js';
import { UsageError } from './usage.js';

export const SEARCH_HELP = `Usage: contid search [options]

Search contid's event store with ausearch's options. Each criterion given
must hold; a criterion given several values (repeated, or a comma list)
holds when one does. Matching events are printed in stream order.

Criteria:
      --contid ID        Events of container ID and of containers nested in it
                         (4,^2,^1 matches 4, 2 and 1), and its label operations;
                         "unknown" for events whose container could not be
                         established, "unset" for host events
      --exact            With --contid: the ID itself, not the containers nested in it
  -ts, --since TIME      Events at or after TIME (also --start)
  -te, --until TIME      Events at or before TIME (also --end). TIME: MM/DD/YYYY,
                         YYYY-MM-DD, HH:MM[:SS], a date and a time (two words, as
                         ausearch takes them), @SECONDS, or now, recent, boot,
                         today, yesterday, this-week, week-ago, this-month,
                         this-year (local time)
  -p,  --pid PID         The event's process
  -pp, --ppid PID        The event's parent process
  -x,  --exe EXE         The executable: a full path, or a name that matches the
                         path's last part (true matches /usr/bin/true)
  -sc, --syscall S       The syscall, by name (execve) or number (in this
                         machine's arch, as ausearch reads it)
  -k,  --key KEY         The audit rule's key, whole
  -sv, --success yes|no  The syscall succeeded (or the message's res=)
  -m,  --type TYPE       The event has a record of TYPE (SYSCALL, EXECVE, 1300,
                         CONTAINER_OP, CONTAINER_ID, CONTID_FORGERY)

Output:
  -f,  --format FMT      text (auditd's log format, default), json (contid's JSON
                         lines), or table (interpreted for people, like ausearch -i)
  -i,  --interpret       The same as --format table
       --resolve-ids     Name uids/gids from this machine's /etc/passwd and /etc/group
       --limit N         Print at most N events
       --store PATH      The event store (default ${DEFAULT_STORE_PATH})
  -h,  --help            Show this help

Exit status: 0 when events matched, 1 when none did ("<no matches>" on
stderr, as ausearch), 2 for usage, 4 when the store cannot be read or the
output cannot be written.

Examples:
  contid search --contid 42 -ts today
  contid search --contid 42 --exact -sc execve -i
  contid search -m CONTID_FORGERY --format json`;

export interface SearchArgs extends QueryArgs {
  readonly since: TimeSpec | null;
  readonly until: TimeSpec | null;
  readonly pids: readonly number[];
  readonly ppids: readonly number[];
  readonly exes: readonly string[];
  readonly syscalls: readonly string[];
  readonly keys: readonly string[];
  readonly types: readonly string[];
  readonly success: boolean | null;
  readonly format: StoreFormat;
  readonly resolveIds: boolean;
  readonly limit: number | null;
}

/** The largest pid the kernel can hand out (PID_MAX_LIMIT on 64-bit). */
const PID_MAX = 4_194_304;

/** This machine's audit arch, for syscall numbers given on the command line. */
function machineArch(): string {
  switch (process.arch) {
    case 'arm64':
      return 'c00000b7';
    case 'ia32':
      return '40000003';
    default:
      return 'c000003e';
  }
}

/** A syscall as the store names it: by name, or a number turned into this machine's name for it. */
function syscallValue(text: string): string {
  if (/^[0-9]+$/.test(text)) {
    const nr = integer('--syscall', text, { min: 0, max: 2_147_483_647 });
    return syscallName(machineArch(), nr) ?? String(nr);
  }
  if (!SYSCALL_TABLES.some(([, table]) => table.includes(text))) {
    throw new UsageError(`Cannot use --syscall: "${text}" is not a syscall name or number`);
  }
  return text;
}

function typeValue(text: string): string {
  const upper = text.toUpperCase();
  if (CONTID_TYPES.has(upper)) return upper;
  if (/^[0-9]+$/.test(text)) return recordTypeName(integer('--type', text, { min: 0, max: 65535 }));
  if (recordTypeNumber(upper) === undefined) {
    throw new UsageError(`Cannot use --type: "${text}" is not a record type`);
  }
  return upper;
}

/** Parses `contid search` arguments; a pure function of argv. */
export function parseSearchArgs(argv: readonly string[]): SearchArgs {
  const v = parseQueryArgs(argv, {
    ...RANGE_OPTIONS,
    pid: { type: 'string', multiple: true, short: 'p' },
    ppid: { type: 'string', multiple: true },
    exe: { type: 'string', multiple: true, short: 'x' },
    syscall: { type: 'string', multiple: true },
    key: { type: 'string', multiple: true, short: 'k' },
    success: { type: 'string' },
    type: { type: 'string', multiple: true, short: 'm' },
    interpret: { type: 'boolean', short: 'i' },
    'resolve-ids': { type: 'boolean' },
    limit: { type: 'string' },
  });
  const format = formatValue<StoreFormat>(v.format, ['text', 'json', 'table']);
  if (v.interpret === true && v.format !== undefined && v.format !== 'table') {
    throw new UsageError(`--interpret writes a table: it cannot be combined with --format ${v.format}`);
  }
  if (v.success !== undefined && v.success !== 'yes' && v.success !== 'no') {
    throw new UsageError(`Cannot use --success: "${v.success}" is not yes or no`);
  }
  const contids = contidsValue(v);
  const pid = (flag: string) => (p: string) => integer(flag, p, { min: 0, max: PID_MAX });
  return {
    help: v.help ?? false,
    store: storeValue(v.store),
    contids,
    exact: v.exact ?? false,
    since: timeValue('--since', v.since),
    until: timeValue('--until', v.until),
    pids: list(v.pid).map(pid('--pid')),
    ppids: list(v.ppid).map(pid('--ppid')),
    exes: v.exe ?? [],
    syscalls: list(v.syscall).map(syscallValue),
    keys: v.key ?? [],
    types: list(v.type).map(typeValue),
    success: v.success === undefined ? null : v.success === 'yes',
    format: v.interpret === true ? 'table' : format,
    resolveIds: v['resolve-ids'] ?? false,
    limit:
      v.limit === undefined ? null : integer('--limit', v.limit, { min: 1, max: Number.MAX_SAFE_INTEGER }),
  };
}
