import { parseArgs } from 'node:util';
import { recordTypeNumber } from '../interpret/record-types.js';
import { SYSCALL_TABLES } from '../interpret/syscalls-generated.js';
import type { SyscallCriterion } from '../pipeline/filter.js';
import { EVIDENCE_TYPE, FORGERY_TYPE } from '../pipeline/labels.js';
import type { OutputFormat } from '../pipeline/replay.js';
import { CONTID_UNSET, parseContid } from '../policy/contid.js';
import { integer, list, normalizeArgv } from './store-args.js';
import { parseTimeSpec, type TimeSpec } from './time-spec.js';
import { UsageError } from './usage.js';

export const REPLAY_HELP = `Usage: contid replay [options] FILE... | -

Read audit logs (auditd log files, auditd's plugin stream, or stdin with -;
gzip-compressed ones too) and write the events they contain, offline and
deterministically: the same input gives the same output on every run and
machine. Nothing of this machine is read (no /proc, no user database) unless
asked.

Processes are tracked through the stream and contid markers applied, so each
event of a labelled process carries its audit container ID (CONTAINER_ID
records, "contid" in JSON) and every set/grant/drop/adopt attempt appears as a
CONTAINER_OP record. Markers are honoured only with --keyring.

Output:
  -f, --format FMT       json (JSON lines, default) or text (auditd's log format)
  -i, --interpret        Text for people, like ausearch -i: dates, names for
                         syscalls, errnos and ids (ids named from the log's
                         enriched part, or with --resolve-ids)
  -o, --output FILE      Write to FILE instead of stdout
      --store DB         Also store the events written in the event store DB
                         (SQLite, created if missing) for contid search, ps and
                         report; with filters, the events that match

Filters (after labelling; each one given must match, a list matches any):
      --contid ID        Events of container ID or of containers nested in it
                         (4,^2,^1 matches 4, 2 and 1), and its label operations
      --since TIME       Events at or after TIME; --until TIME: at or before.
      --until TIME       TIME: MM/DD/YYYY, YYYY-MM-DD, HH:MM[:SS], a date and a
                         time, @SECONDS, or now, recent, boot, today, yesterday,
                         this-week, week-ago, this-month, this-year (local time)
      --pid PID          A record of the event has pid=PID
      --key KEY          The event's key is KEY (whole)
      --syscall S        The syscall, by name (execve) or number (59)
      --type TYPE        The event has a record of TYPE (SYSCALL, USER_LOGIN,
                         1300, CONTAINER_OP, CONTAINER_ID, CONTID_FORGERY,
                         CONTID_EVIDENCE)
      --success yes|no   The syscall succeeded (or the message's res=)

Reading:
      --timeout MS       Close an event once the log's clock is MS past it (default 2000)
      --max-in-flight N  Most events held open at once (default 65536)
      --max-line BYTES   Longest accepted input line (default 1048576)
      --resolve-ids      Name uids/gids from this machine's /etc/passwd and /etc/group
                         (the log's own enriched names are always used when present)
      --keyring FILE     Marker keyring of the daemon starts whose markers to honour
                         (the daemon keeps it in /var/lib/contid/keyring; see docs/markers.md)
      --state FILE       Start from the daemon's checkpoint (/var/lib/contid/checkpoint.json),
                         for logs that begin after it started (rotated ones)
      --no-labels        Plain replay: no process tracking, no markers, no contid
      --max-processes N  Most processes tracked at once (default 1000000)
      --stats            Print counters as JSON on stderr at the end
  -q, --quiet            No summary or progress on stderr
  -h, --help             Show this help

A summary goes to stderr at the end: events, lines that were not records
(with line numbers), serial gaps, labels, forgery attempts. Progress is shown
on stderr when it is a terminal. Exit status: 0, or 1 when an input cannot be
read or holds no audit record, or the output cannot be written; 2 for usage.

Examples:
  contid replay /var/log/audit/audit.log
  contid replay --format text audit.log.2.gz audit.log.1 audit.log
  contid replay -i --keyring /var/lib/contid/keyring --contid 42 --since today audit.log
  ausearch --raw -ts today | contid replay -`;

/** The filter flags, as given (times are resolved against the clock later). */
export interface FilterArgs {
  readonly contids: readonly string[];
  readonly since: TimeSpec | null;
  readonly until: TimeSpec | null;
  readonly pids: readonly number[];
  readonly keys: readonly string[];
  readonly syscalls: readonly SyscallCriterion[];
  readonly types: readonly (number | string)[];
  readonly success: boolean | null;
}

export interface ReplayArgs {
  readonly help: boolean;
  readonly files: readonly string[];
  readonly format: OutputFormat;
  readonly output: string | null;
  readonly timeoutMs: number;
  readonly maxInFlight: number;
  readonly maxLineBytes: number;
  readonly resolveIds: boolean;
  readonly keyring: string | null;
  /** A daemon checkpoint to start from, or null. */
  readonly state: string | null;
  /** The event store to fill (--store), or null. */
  readonly store: string | null;
  readonly labels: boolean;
  readonly maxProcesses: number;
  readonly stats: boolean;
  readonly quiet: boolean;
  /** Null when no filter flag was given. */
  readonly filter: FilterArgs | null;
}

/** The largest pid the kernel can hand out (PID_MAX_LIMIT on 64-bit). */
const PID_MAX = 4_194_304;
const INT_MAX = 2_147_483_647;

/** Whether some arch has a syscall called `name`. */
function isSyscallName(name: string): boolean {
  return name !== '' && SYSCALL_TABLES.some(([, table]) => table.includes(name));
}

function syscallCriterion(text: string): SyscallCriterion {
  if (/^[0-9]+$/.test(text)) return { nr: integer('--syscall', text, { min: 0, max: INT_MAX }) };
  if (!isSyscallName(text)) {
    throw new UsageError(`Cannot use --syscall: "${text}" is not a syscall name or number`);
  }
  return { name: text };
}

const LABEL_TYPES: readonly string[] = ['CONTAINER_ID', 'CONTAINER_OP', FORGERY_TYPE, EVIDENCE_TYPE];

function typeCriteria(text: string): (number | string)[] {
  const upper = text.toUpperCase();
  if (LABEL_TYPES.includes(upper)) {
    const n = recordTypeNumber(upper);
    return n === undefined ? [upper] : [upper, n];
  }
  if (/^[0-9]+$/.test(text)) return [integer('--type', text, { min: 0, max: 65535 })];
  const n = recordTypeNumber(text);
  if (n === undefined) throw new UsageError(`Cannot use --type: "${text}" is not a record type`);
  return [n];
}

function contidCriterion(text: string): string {
  const value = parseContid(text);
  if (value === null || value === CONTID_UNSET) {
    if (!/^[0-9]+$/.test(text)) throw new UsageError(`Cannot use --contid: "${text}" is not a decimal ID`);
    throw new UsageError(
      `Cannot use --contid: "${text}" is out of range (0 to ${(CONTID_UNSET - 1n).toString()})`,
    );
  }
  return value.toString();
}

/**
 * ausearch takes `-ts DATE TIME` as two words: a time of day right after
 * `--since DATE` (or `--until DATE`) is taken as part of it, not as a file.
 * replay takes none of ausearch's other spellings.
 */
const REPLAY_ARGV = { aliases: {}, timeFlags: new Set(['--since', '--until']) } as const;

/** Parses `contid replay` arguments; a pure function of argv. */
export function parseReplayArgs(argv: readonly string[]): ReplayArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: normalizeArgv(argv, REPLAY_ARGV),
      allowPositionals: true,
      options: {
        format: { type: 'string', short: 'f' },
        interpret: { type: 'boolean', short: 'i' },
        output: { type: 'string', short: 'o' },
        timeout: { type: 'string' },
        'max-in-flight': { type: 'string' },
        'max-line': { type: 'string' },
        'resolve-ids': { type: 'boolean' },
        keyring: { type: 'string' },
        state: { type: 'string' },
        store: { type: 'string' },
        'no-labels': { type: 'boolean' },
        'max-processes': { type: 'string' },
        stats: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
        contid: { type: 'string', multiple: true },
        since: { type: 'string' },
        until: { type: 'string' },
        pid: { type: 'string', multiple: true },
        key: { type: 'string', multiple: true },
        syscall: { type: 'string', multiple: true },
        type: { type: 'string', multiple: true },
        success: { type: 'string' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  const help = v.help ?? false;
  if (v.format !== undefined && v.format !== 'json' && v.format !== 'text') {
    throw new UsageError(`Cannot use --format: "${v.format}" is not json or text`);
  }
  if (v.interpret === true && v.format === 'json') {
    throw new UsageError('Cannot use --interpret with --format json: --interpret writes text');
  }
  const format: OutputFormat = v.interpret === true ? 'interpreted' : (v.format ?? 'json');
  if (!help && parsed.positionals.length === 0) {
    throw new UsageError('Cannot read the input: none is given (give one or more files, or - for stdin)');
  }
  if (v.success !== undefined && v.success !== 'yes' && v.success !== 'no') {
    throw new UsageError(`Cannot use --success: "${v.success}" is not yes or no`);
  }
  const labels = !(v['no-labels'] ?? false);
  const filter: FilterArgs = {
    contids: list(v.contid).map(contidCriterion),
    since: v.since === undefined ? null : parseTimeSpec('--since', v.since),
    until: v.until === undefined ? null : parseTimeSpec('--until', v.until),
    pids: list(v.pid).map((p) => integer('--pid', p, { min: 0, max: PID_MAX })),
    keys: v.key ?? [],
    syscalls: list(v.syscall).map(syscallCriterion),
    types: list(v.type).flatMap(typeCriteria),
    success: v.success === undefined ? null : v.success === 'yes',
  };
  if (v.store !== undefined && !labels) {
    throw new UsageError('--store needs labels: it cannot be combined with --no-labels');
  }
  if (v.store === '') throw new UsageError('Cannot use --store: the path is empty');
  if (filter.contids.length > 0 && !labels) {
    throw new UsageError('Cannot use --contid with --no-labels: the filter needs labels');
  }
  const filtered =
    filter.contids.length +
      filter.pids.length +
      filter.keys.length +
      filter.syscalls.length +
      filter.types.length >
      0 ||
    filter.since !== null ||
    filter.until !== null ||
    filter.success !== null;
  return {
    help,
    files: parsed.positionals,
    format,
    output: v.output ?? null,
    timeoutMs: integer('--timeout', v.timeout, { min: 1, max: 86_400_000, fallback: 2000 }),
    maxInFlight: integer('--max-in-flight', v['max-in-flight'], { min: 1, max: 16_777_216, fallback: 65536 }),
    maxLineBytes: integer('--max-line', v['max-line'], { min: 1, max: 1 << 30, fallback: 1 << 20 }),
    resolveIds: v['resolve-ids'] ?? false,
    keyring: v.keyring ?? null,
    state: v.state ?? null,
    store: v.store ?? null,
    labels,
    maxProcesses: integer('--max-processes', v['max-processes'], {
      min: 1,
      max: 100_000_000,
      fallback: 1_000_000,
    }),
    stats: v.stats ?? false,
    quiet: v.quiet ?? false,
    filter: filtered ? filter : null,
  };
}
