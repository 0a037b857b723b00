import { parseArgs } from 'node:util';
import type { OutputFormat } from '../pipeline/replay.js';
import { UsageError } from './usage.js';

export const REPLAY_HELP = `Usage: contid replay [options] FILE... | -

Read audit logs (auditd log files, auditd's plugin stream, or stdin with -)
and write the events they contain, offline and deterministically: the same
input gives the same output on every run and machine. Nothing of this machine
is read (no /proc, no user database) unless asked.

Processes are tracked through the stream and contid markers applied, so each
event of a labelled process carries its audit container ID (CONTAINER_ID
records, "contid" in JSON) and every set/grant/drop/adopt attempt appears as a
CONTAINER_OP record. Markers are honoured only with --keyring.

Options:
  -f, --format FMT       Output format: json (JSON lines, default) or text (auditd log format)
  -o, --output FILE      Write to FILE instead of stdout
      --timeout MS       Close an event once the log's clock is MS past it (default 2000)
      --max-in-flight N  Most events held open at once (default 65536)
      --max-line BYTES   Longest accepted input line (default 1048576)
      --resolve-ids      Name uids/gids from this machine's /etc/passwd and /etc/group
                         (the log's own enriched names are always used when present)
      --keyring FILE     Marker keyring of the daemon starts whose markers to honour
                         (the daemon keeps it in /var/lib/contid/keyring; see docs/markers.md)
      --no-labels        Plain replay: no process tracking, no markers, no contid
      --max-processes N  Most processes tracked at once (default 1000000)
      --stats            Print counters as JSON on stderr at the end
  -q, --quiet            No summary or progress on stderr
  -h, --help             Show this help

A summary (events, bad lines with line numbers, duplicates, time-outs, lost
records estimated from serial gaps) goes to stderr at the end. Progress is
shown on stderr when it is a terminal.

Examples:
  contid replay /var/log/audit/audit.log
  contid replay --format text audit.log.1 audit.log
  ausearch --raw -ts today | contid replay -`;

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
  readonly labels: boolean;
  readonly maxProcesses: number;
  readonly stats: boolean;
  readonly quiet: boolean;
}

function positiveInt(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  if (!/^[0-9]+$/.test(raw) || Number(raw) <= 0 || !Number.isSafeInteger(Number(raw))) {
    throw new UsageError(`Invalid value for ${flag}: "${raw}" is not a positive integer`);
  }
  return Number(raw);
}

/** Parses `contid replay` arguments; a pure function of argv. */
export function parseReplayArgs(argv: readonly string[]): ReplayArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        format: { type: 'string', short: 'f' },
        output: { type: 'string', short: 'o' },
        timeout: { type: 'string' },
        'max-in-flight': { type: 'string' },
        'max-line': { type: 'string' },
        'resolve-ids': { type: 'boolean' },
        keyring: { type: 'string' },
        'no-labels': { type: 'boolean' },
        'max-processes': { type: 'string' },
        stats: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  const format = v.format ?? 'json';
  if (format !== 'json' && format !== 'text') {
    throw new UsageError(`Invalid value for --format: "${format}" (expected json or text)`);
  }
  const help = v.help ?? false;
  if (!help && parsed.positionals.length === 0) {
    throw new UsageError('Missing input: give one or more files, or - for stdin');
  }
  return {
    help,
    files: parsed.positionals,
    format,
    output: v.output ?? null,
    timeoutMs: positiveInt('--timeout', v.timeout, 2000),
    maxInFlight: positiveInt('--max-in-flight', v['max-in-flight'], 65536),
    maxLineBytes: positiveInt('--max-line', v['max-line'], 1024 * 1024),
    resolveIds: v['resolve-ids'] ?? false,
    keyring: v.keyring ?? null,
    labels: !(v['no-labels'] ?? false),
    maxProcesses: positiveInt('--max-processes', v['max-processes'], 1_000_000),
    stats: v.stats ?? false,
    quiet: v.quiet ?? false,
  };
}
