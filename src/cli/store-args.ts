/**
 * What the event store's commands (`search`, `ps`, `report`, `store`) share
 * on the command line: the store's path, ausearch's short flags, time,
 * duration and size values, exit codes. Pure functions of argv.
 */
import { parseArgs } from 'node:util';
import { CONTID_UNSET, parseContid } from '../policy/contid.js';
import { isClockTime } from './time-spec.js';
import { UsageError } from './usage.js';

/** Where the daemon keeps its event store by default (its state directory). */
export const DEFAULT_STORE_PATH = '/var/lib/contid/events.db';

/**
 * Exit codes of the store commands. `contid search` follows ausearch and
 * grep: 1 when nothing matched.
 */
export const STORE_EXIT = { ok: 0, noMatch: 1, failed: 1, usage: 2, store: 4 } as const;

/**
 * ausearch's spellings: one dash and several letters (`-ts`, `-sc`), which
 * util.parseArgs would read as bundled short flags, and `--start`/`--end`.
 */
const AUSEARCH_FLAGS: Readonly<Record<string, string>> = {
  '-ts': '--since',
  '--start': '--since',
  '-te': '--until',
  '--end': '--until',
  '-sc': '--syscall',
  '-sv': '--success',
  '-pp': '--ppid',
};

/** The flags that take a time, and so may take ausearch's `DATE TIME` as two words. */
const TIME_FLAGS: ReadonlySet<string> = new Set(['--since', '--until', '--at']);

/** Options of {@link normalizeArgv}. */
export interface NormalizeOptions {
  /** Other spellings of flags, and the flag each stands for (default ausearch's). */
  readonly aliases?: Readonly<Record<string, string>>;
  /** The flags that take a time (default --since, --until and --at). */
  readonly timeFlags?: ReadonlySet<string>;
}

/**
 * argv with ausearch's spellings made long flags, and `--since DATE TIME`
 * (two words, as ausearch takes them) made one value.
 */
export function normalizeArgv(argv: readonly string[], options: NormalizeOptions = {}): string[] {
  const aliases = options.aliases ?? AUSEARCH_FLAGS;
  const timeFlags = options.timeFlags ?? TIME_FLAGS;
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.indexOf('=');
    const flag = eq < 0 ? raw : raw.slice(0, eq);
    const long = aliases[flag] ?? flag;
    const arg = eq < 0 ? long : `${long}${raw.slice(eq)}`;
    out.push(arg);
    if (eq < 0 && timeFlags.has(long)) {
      const date = argv[i + 1];
      const time = argv[i + 2];
      if (date !== undefined && time !== undefined && !isClockTime(date) && isClockTime(time)) {
        out.push(`${date} ${time}`);
        i += 2;
      }
    }
  }
  return out;
}

/** Runs util.parseArgs (in `parse`), its errors made usage errors. */
export function usageErrors<R>(parse: () => R): R {
  try {
    return parse();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** The values of a repeatable flag, each also split at commas (`-p 12,13`). */
export function list(values: readonly string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(',')).filter((v) => v !== '');
}

/** A range of whole numbers, and the value of a flag not given. */
interface IntegerRange {
  readonly min: number;
  readonly max: number;
  readonly fallback?: number;
}

/** A whole number within a range (or, with a fallback, the fallback when the flag is not given). */
export function integer(flag: string, raw: string, range: IntegerRange): number;
export function integer(
  flag: string,
  raw: string | undefined,
  range: IntegerRange & { readonly fallback: number },
): number;
export function integer(flag: string, raw: string | undefined, range: IntegerRange): number {
  if (raw === undefined) return range.fallback!;
  if (!/^[0-9]+$/.test(raw)) throw new UsageError(`Cannot use ${flag}: "${raw}" is not a whole number`);
  const n = Number(raw);
  if (n < range.min || n > range.max) {
    throw new UsageError(
      `Cannot use ${flag}: "${raw}" is out of range (${range.min} to ${range.max.toLocaleString('en-US')})`,
    );
  }
  return n;
}

/** A `--contid` value: a decimal ID, `unknown`, or `unset` (the host). */
export function contidValue(flag: string, text: string): string {
  if (text === 'unknown' || text === 'unset') return text;
  const value = parseContid(text);
  if (value === null || value === CONTID_UNSET) {
    if (!/^[0-9]+$/.test(text)) {
      throw new UsageError(`Cannot use ${flag}: "${text}" is not a decimal ID, unknown or unset`);
    }
    throw new UsageError(
      `Cannot use ${flag}: "${text}" is out of range (0 to ${(CONTID_UNSET - 1n).toString()})`,
    );
  }
  return value.toString();
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** A duration: a number and a unit, `90d`, `12h`, `30m`, `45s`, `2w`. */
export function duration(flag: string, raw: string): number {
  const m = /^([0-9]{1,9})([smhdw])$/.exec(raw);
  if (m === null) {
    throw new UsageError(
      `Cannot use ${flag}: "${raw}" is not a duration (a number and s, m, h, d or w: 90d)`,
    );
  }
  const ms = Number(m[1]) * DURATION_UNITS[m[2]!]!;
  if (ms === 0) throw new UsageError(`Cannot use ${flag}: "${raw}" is zero`);
  return ms;
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
};

/** A size in bytes: a number with an optional K, M, G or T (powers of 1024). */
export function size(flag: string, raw: string): number {
  const m = /^([0-9]{1,12})([KMGT]?)i?B?$/i.exec(raw);
  if (m === null) throw new UsageError(`Cannot use ${flag}: "${raw}" is not a size (bytes, or 500M, 20G)`);
  const bytes = Number(m[1]) * SIZE_UNITS[m[2]!.toUpperCase()]!;
  // Below this the database's own tables and the WAL would not fit.
  if (bytes < 1024 * 1024) throw new UsageError(`Cannot use ${flag}: "${raw}" is less than 1M`);
  return bytes;
}

export const STORE_HELP = `Usage: contid store import|info|check|migrate [options]

Manage contid's event store (SQLite; the daemon writes it with --store).

Commands:
  import FILE... | -   Fill the store from contid's JSON lines (contid replay
                       --format json output), e.g.
                         contid replay --keyring K audit.log | contid store import -
  info                 Show the store's size, schema version, time range and counts
  check                Check the database and that every stored event reads back
  migrate              Bring the store's schema to this contid's version

Options:
      --store PATH       The event store (default ${DEFAULT_STORE_PATH})
      --max-age AGE      import: delete events older than AGE, measured from the
                         newest stored event (90d, 12h, 2w)
      --max-size SIZE    import: delete the oldest events to keep the database
                         under SIZE (500M, 20G)
      --json             info: print JSON
  -q, --quiet            import: no summary on stderr
  -h, --help             Show this help

Exit status: 0; 1 when some input lines are not contid events (each is
reported) or an input cannot be read; 2 for usage; 4 when the store cannot be
opened or written, events could not be stored (a full disk), or check finds
damage.`;

export interface StoreArgs {
  readonly help: boolean;
  readonly command: 'import' | 'info' | 'check' | 'migrate' | null;
  readonly store: string;
  readonly files: readonly string[];
  readonly maxAgeMs: number | null;
  readonly maxBytes: number | null;
  readonly json: boolean;
  readonly quiet: boolean;
}

/** Parses `contid store` arguments. */
export function parseStoreArgs(argv: readonly string[]): StoreArgs {
  const parsed = usageErrors(() =>
    parseArgs({
      args: normalizeArgv(argv),
      allowPositionals: true,
      options: {
        store: { type: 'string' },
        'max-age': { type: 'string' },
        'max-size': { type: 'string' },
        json: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
      },
    }),
  );
  const v = parsed.values;
  const help = v.help ?? false;
  const [command, ...files] = parsed.positionals;
  if (help) {
    return {
      help,
      command: null,
      store: '',
      files: [],
      maxAgeMs: null,
      maxBytes: null,
      json: false,
      quiet: false,
    };
  }
  if (command === undefined) throw new UsageError('Missing command: import, info, check or migrate');
  if (command !== 'import' && command !== 'info' && command !== 'check' && command !== 'migrate') {
    throw new UsageError(`Cannot run store command "${command}": it is not import, info, check or migrate`);
  }
  if (command === 'import' && files.length === 0) {
    throw new UsageError('Missing input: give one or more JSON-lines files, or - for stdin');
  }
  if (command !== 'import' && files.length > 0) {
    throw new UsageError(`Cannot use argument "${files[0]!}": the store is given with --store PATH`);
  }
  if (command !== 'import' && (v['max-age'] !== undefined || v['max-size'] !== undefined)) {
    throw new UsageError('--max-age and --max-size apply to import');
  }
  return {
    help,
    command,
    store: v.store ?? DEFAULT_STORE_PATH,
    files,
    maxAgeMs: v['max-age'] === undefined ? null : duration('--max-age', v['max-age']),
    maxBytes: v['max-size'] === undefined ? null : size('--max-size', v['max-size']),
    json: v.json ?? false,
    quiet: v.quiet ?? false,
  };
}
