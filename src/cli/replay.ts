import { readFileSync, statSync } from 'node:fs';
import { ContidError } from '../errors.js';
import { uptime } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { Keyring } from '../marker/keyring.js';
import { KeyringSyntaxError, parseKeyring } from '../marker/keyring.js';
import { readCheckpoint, type Checkpoint } from '../daemon/checkpoint.js';
import type { FilterCriteria } from '../pipeline/filter.js';
import { EventFilter } from '../pipeline/filter.js';
import { ReplayPipeline } from '../pipeline/replay.js';
import type { LabelledEvent } from '../policy/labeller.js';
import type { StreamSink } from '../sink/stream.js';
import type { StoreWriter } from '../store/writer.js';
import { systemReason } from './errors.js';
import { InputError, openInput, type Input } from './input.js';
import { deliver, finishOutput, openOutput } from './output.js';
import type { FilterArgs, ReplayArgs } from './replay-args.js';
import { count, progressLine, replaySummary } from './replay-summary.js';
import { resolveTimeSpec, type Clock } from './time-spec.js';
import { localIdNames } from './user-db.js';

export interface CliIo {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable & { isTTY?: boolean };
}

/** The filter's criteria, with its times resolved against `clock`. */
export function filterCriteria(f: FilterArgs, clock: Clock): FilterCriteria {
  return {
    contids: f.contids,
    pids: f.pids,
    keys: f.keys,
    syscalls: f.syscalls,
    types: f.types,
    ...(f.since === null ? {} : { sinceMs: resolveTimeSpec(f.since, 'since', clock) }),
    ...(f.until === null ? {} : { untilMs: resolveTimeSpec(f.until, 'until', clock) }),
    ...(f.success === null ? {} : { success: f.success }),
  };
}

/** The clock of this machine: `boot` is now minus the uptime, as ausearch reckons it. */
function machineClock(): Clock {
  const nowMs = Date.now();
  return { nowMs, bootMs: () => nowMs - Math.round(uptime() * 1000) };
}

/** Checks that every input file exists and is not a directory; returns their total size. */
function checkInputs(files: readonly string[]): number {
  let total = 0;
  for (const f of files) {
    if (f === '-') continue;
    let st;
    try {
      st = statSync(f);
    } catch (err) {
      throw new ContidError(`Cannot read "${f}": ${systemReason(err)}`, 'ERR_INPUT');
    }
    if (st.isDirectory()) throw new ContidError(`Cannot read "${f}": is a directory (EISDIR)`, 'ERR_INPUT');
    total += st.size;
  }
  return total;
}

/** Refuses `-o FILE` when FILE is one of the inputs: opening it would empty it. */
function checkOutputIsNotInput(output: string, files: readonly string[]): void {
  let out;
  try {
    out = statSync(output);
  } catch {
    return;
  }
  for (const f of files) {
    if (f === '-') continue;
    const st = statSync(f);
    if (st.dev === out.dev && st.ino === out.ino) {
      throw new ContidError(`Cannot write "${output}": it is also an input ("${f}")`, 'ERR_OUTPUT');
    }
  }
}

/** Runs `contid replay`. Returns the exit code. */
export async function runReplay(args: ReplayArgs, io: CliIo): Promise<number> {
  const fail = (message: string): number => {
    io.stderr.write(`contid replay: ${message}\n`);
    return 1;
  };
  let keyring: Keyring | undefined;
  if (args.keyring !== null) {
    try {
      keyring = parseKeyring(readFileSync(args.keyring, 'utf8'));
    } catch (err) {
      const why = err instanceof KeyringSyntaxError ? `line ${err.line}: ${err.reason}` : systemReason(err);
      return fail(`Cannot use keyring "${args.keyring}": ${why}`);
    }
  }
  let state: Checkpoint | undefined;
  if (args.state !== null) {
    const read = readCheckpoint(args.state);
    if (read.kind === 'none') return fail(`Cannot use state "${args.state}": no such file`);
    if (read.kind === 'bad') return fail(`Cannot use state "${args.state}": ${read.reason}`);
    state = read.checkpoint;
  }
  // Every file is checked, and the output opened, before any output: a
  // typo fails at once, and never after minutes of reading.
  let totalBytes: number;
  let out: StreamSink;
  /** Takes back output buffers once written, for reuse: the pipeline's, once it exists. */
  let recycle: (bytes: Buffer) => void = () => undefined;
  try {
    totalBytes = checkInputs(args.files);
    if (args.output !== null) checkOutputIsNotInput(args.output, args.files);
    out = openOutput(args.output, io.stdout, {
      onSettled: (bytes) => {
        recycle(bytes);
      },
    });
  } catch (err) {
    return fail((err as Error).message);
  }
  // The store opens after the other checks (a typo costs no database) and
  // before any output.
  let store: StoreWriter | null = null;
  let storeError: string | null = null;
  if (args.store !== null) {
    try {
      const { StoreWriter } = await import('../store/writer.js');
      store = await StoreWriter.open(args.store, {
        onError: (error) => {
          // The first error that lost events says why; a later one (the close) may not.
          storeError ??= error.message;
        },
      });
    } catch (err) {
      await out.close();
      return fail((err as Error).message);
    }
  }
  /** Set when the store's queue is long: reading waits for it (replay loses nothing). */
  let storeFull = false;
  const one: LabelledEvent[] = [];
  const toStore =
    store === null
      ? null
      : (le: LabelledEvent): void => {
          one[0] = le;
          if (!store.write(one)) storeFull = true;
          one.pop();
        };
  const pipeline = new ReplayPipeline({
    onLabelled: toStore,
    labels: args.labels,
    maxProcesses: args.maxProcesses,
    ...(keyring === undefined ? {} : { keyring }),
    ...(state === undefined ? {} : { state }),
    format: args.format,
    timeoutMs: args.timeoutMs,
    maxInFlight: args.maxInFlight,
    maxLineBytes: args.maxLineBytes,
    ids: args.resolveIds ? localIdNames() : null,
    filter: args.filter === null ? null : new EventFilter(filterCriteria(args.filter, machineClock())),
  });
  recycle = (bytes) => {
    pipeline.recycle(bytes);
  };
  /** Hands what the pipeline returned to the output; false once the output is gone. */
  const write = (bytes: Buffer): Promise<boolean> => {
    // An empty buffer is not handed to the sink, so it comes back at once.
    if (bytes.length === 0) pipeline.recycle(bytes);
    return deliver(out, bytes, pipeline.takenEvents);
  };
  const showProgress = io.stderr.isTTY === true && !args.quiet;
  const started = Date.now();
  let lastProgress = started;
  /** Bytes of the files already read, and of the whole input read so far. */
  let doneBytes = 0;
  let readBytes = 0;
  /** Files in which no line was an audit record. */
  const notAudit: string[] = [];
  /** Inputs that could not be read; one that fails while being read stops the replay. */
  const readErrors: string[] = [];
  let stopped = false;

  for (const f of args.files) {
    let input: Input;
    try {
      input = await openInput(f, io.stdin);
    } catch (err) {
      // Nothing of it was read: the other inputs still are.
      readErrors.push(
        err instanceof InputError
          ? `Cannot read "${f}": ${err.message}`
          : `Cannot read "${f}": ${systemReason(err)}`,
      );
      continue;
    }
    const before = pipeline.stats();
    let alive = true;
    try {
      for await (const chunk of input.chunks) {
        alive = await write(pipeline.push(chunk));
        if (!alive) break;
        if (storeFull) {
          storeFull = false;
          await store?.drained();
        }
        if (showProgress && Date.now() - lastProgress >= 500) {
          lastProgress = Date.now();
          io.stderr.write(
            `\r${progressLine({
              bytes: doneBytes + input.bytesRead(),
              totalBytes,
              events: pipeline.stats().events,
              elapsedMs: lastProgress - started,
            })}\x1b[K`,
          );
        }
      }
    } catch (err) {
      readErrors.push(`Cannot read "${f}": ${systemReason(err)}`);
      stopped = true;
    } finally {
      // Once the output is gone (| head), nothing more is read.
      input.close();
    }
    doneBytes += input.bytesRead();
    readBytes = doneBytes;
    if (!alive || stopped) break;
    // Each file ends its last line: one without a final newline never runs into the next file.
    alive = await write(pipeline.endFile());
    if (!alive) break;
    const after = pipeline.stats();
    if (after.records === before.records && after.badLines > before.badLines) notAudit.push(f);
  }
  if (out.failure === null && !stopped) await write(pipeline.end());
  if (showProgress) io.stderr.write('\r\x1b[K');
  const failure = await finishOutput(out);
  await store?.close();
  const stored = store?.stats() ?? null;
  const stats = pipeline.stats();
  const seconds = (Date.now() - started) / 1000;
  // A replay that failed before reading a line has nothing to sum up.
  const failed = failure?.kind === 'error' || readErrors.length > 0;
  if (!args.quiet && !(failed && stats.lines === 0)) {
    io.stderr.write(
      replaySummary(stats, {
        keyring: keyring !== undefined,
        seconds,
        ...(failure?.kind === 'reader-gone' ? { stoppedAt: readBytes } : {}),
      }),
    );
  }
  if (stored !== null && !args.quiet) {
    io.stderr.write(
      `  stored: ${count(stored.written, 'event')} in "${args.store}" ` +
        `(${count(stored.storedBytes, 'byte')} of records, ${count(stored.payloadBytes, 'byte')} before compression)\n`,
    );
  }
  if (args.stats) {
    io.stderr.write(
      JSON.stringify({
        ...stats,
        inputBytes: readBytes,
        seconds,
        ...(stored === null ? {} : { store: stored }),
      }) + '\n',
    );
  }
  if (failure?.kind === 'error') return fail(failure.message);
  for (const message of readErrors) fail(message);
  const lost = stored === null ? 0 : stored.dropped + stored.failed + stored.rejected;
  if (stored !== null && lost > 0) {
    fail(
      `Cannot store ${count(lost, 'event')} in "${args.store}": ${storeError ?? stored.lastError?.message ?? 'the store stopped'}`,
    );
  }
  for (const f of notAudit) {
    const name = f === '-' ? 'standard input' : `"${f}"`;
    fail(
      `Cannot read ${name}: no line of it is an audit record (is it an audit log? ` +
        'gzip is read as is; decompress anything else first, e.g. "zstd -dc FILE | contid replay -")',
    );
  }
  return readErrors.length + notAudit.length > 0 || lost > 0 ? 1 : 0;
}
