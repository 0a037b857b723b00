import { once } from 'node:events';
import { createReadStream, createWriteStream, readFileSync, statSync } from 'node:fs';
import type { Keyring } from '../marker/keyring.js';
import { parseKeyring } from '../marker/keyring.js';
import type { Readable, Writable } from 'node:stream';
import type { ReplayStats } from '../pipeline/replay.js';
import { ReplayPipeline } from '../pipeline/replay.js';
import type { ReplayArgs } from './replay-args.js';
import { localIdNames } from './user-db.js';

export interface CliIo {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable & { isTTY?: boolean };
}

/** Writes with backpressure; resolves false when the reader has gone away (EPIPE). */
async function write(out: Writable, bytes: Buffer, done?: (bytes: Buffer) => void): Promise<boolean> {
  if (bytes.length === 0 || out.destroyed) return !out.destroyed;
  const accepted =
    done === undefined
      ? out.write(bytes)
      : out.write(bytes, (err) => {
          if (err === null || err === undefined) done(bytes);
        });
  if (!accepted) {
    // Whichever of the two comes first, the other's listener is removed.
    const settled = new AbortController();
    const { signal } = settled;
    // once() rejects on 'error': a reader gone away (EPIPE) ends the output, as 'close' does.
    await Promise.race([once(out, 'drain', { signal }), once(out, 'close', { signal })]).catch(
      () => undefined,
    );
    settled.abort();
  }
  return !out.destroyed;
}

function summary(stats: ReplayStats): string {
  const parts = [
    `${stats.events} events`,
    `${stats.records} records`,
    `${stats.lines} lines`,
    `${stats.badLines} bad lines`,
    `${stats.duplicates} duplicate records`,
    `${stats.late} late records`,
    `${stats.timedOut} events closed by timeout`,
    `${stats.evictedAtCapacity} closed at capacity`,
    `${stats.lostEstimate} records lost (serial gaps)`,
  ];
  const l = stats.labels;
  if (l !== null) {
    parts.push(
      `${l.processes} processes tracked`,
      `${l.containers} live containers`,
      `${l.markers} markers`,
      `${l.ops.accepted} operations accepted, ${l.ops.refused} refused, ${l.ops.drops} drops`,
      `${l.forgeries} forgery attempts`,
    );
  }
  let s = `contid replay: ${parts.join(', ')}\n`;
  for (const f of stats.forgeries.slice(0, 10)) {
    s += `  forgery at ${f.time}:${f.serial}: ${f.reason} from pid ${f.senderPid ?? '?'} (contid ${f.senderContid ?? 'unset'})\n`;
  }
  for (const i of stats.issues.slice(0, 10)) {
    s += `  line ${i.line}: ${i.message} (${i.code}): ${JSON.stringify(i.excerpt.slice(0, 80))}\n`;
  }
  if (stats.badLines > 10) s += `  ... and ${stats.badLines - 10} more bad lines\n`;
  return s;
}

/** Runs `contid replay`. Returns the exit code. */
export async function runReplay(args: ReplayArgs, io: CliIo): Promise<number> {
  let keyring: Keyring | undefined;
  if (args.keyring !== null) {
    try {
      keyring = parseKeyring(readFileSync(args.keyring, 'utf8'));
    } catch (err) {
      io.stderr.write(`contid replay: Cannot use keyring "${args.keyring}": ${(err as Error).message}\n`);
      return 1;
    }
  }
  const pipeline = new ReplayPipeline({
    labels: args.labels,
    maxProcesses: args.maxProcesses,
    ...(keyring === undefined ? {} : { keyring }),
    format: args.format,
    timeoutMs: args.timeoutMs,
    maxInFlight: args.maxInFlight,
    maxLineBytes: args.maxLineBytes,
    ids: args.resolveIds ? localIdNames() : null,
  });
  // Check every file up front, so that a typo fails before any output.
  let totalBytes = 0;
  for (const f of args.files) {
    if (f === '-') continue;
    try {
      const st = statSync(f);
      if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      totalBytes += st.size;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      io.stderr.write(
        `contid replay: Cannot read "${f}": ${(err as Error).message.replace(/^[A-Z]+: /, '')} (${code})\n`,
      );
      return 1;
    }
  }
  const out: Writable = args.output === null ? io.stdout : createWriteStream(args.output);
  let outError: Error | null = null;
  out.on('error', (err) => {
    outError = err;
  });
  const showProgress = io.stderr.isTTY === true && !args.quiet;
  const recycle = (bytes: Buffer): void => {
    pipeline.recycle(bytes);
  };
  let readBytes = 0;
  const started = Date.now();
  let lastProgress = started;
  let alive = true;

  for (const f of args.files) {
    const input: Readable = f === '-' ? io.stdin : createReadStream(f, { highWaterMark: 1 << 20 });
    try {
      for await (const chunk of input) {
        const buf = chunk as Buffer;
        readBytes += buf.length;
        alive = await write(out, pipeline.push(buf), recycle);
        if (!alive) break;
        if (showProgress && Date.now() - lastProgress >= 500) {
          lastProgress = Date.now();
          const st = pipeline.stats();
          const pct = totalBytes > 0 ? ` ${((100 * readBytes) / totalBytes).toFixed(1)}%` : '';
          io.stderr.write(
            `\rcontid replay:${pct} ${(readBytes / 1e6).toFixed(1)} MB, ${st.events} events   `,
          );
        }
      }
    } catch (err) {
      io.stderr.write(`contid replay: Cannot read "${f}": ${(err as Error).message}\n`);
      return 1;
    } finally {
      if (!alive && input !== io.stdin) input.destroy();
    }
    if (!alive) break;
    // Each file ends its last line: one without a final newline never runs into the next file.
    alive = await write(out, pipeline.endFile(), recycle);
    if (!alive) break;
  }
  if (alive) await write(out, pipeline.end());
  if (showProgress) io.stderr.write('\r\x1b[K');
  if (out !== io.stdout) {
    out.end();
    await Promise.race([once(out, 'finish'), once(out, 'error')]).catch(() => undefined);
  }
  const failed: Error | null = outError;
  if (failed !== null && (failed as NodeJS.ErrnoException).code !== 'EPIPE') {
    io.stderr.write(`contid replay: Cannot write output: ${(failed as Error).message}\n`);
    return 1;
  }
  const stats = pipeline.stats();
  if (!args.quiet) io.stderr.write(summary(stats));
  if (args.stats) {
    const seconds = (Date.now() - started) / 1000;
    io.stderr.write(JSON.stringify({ ...stats, seconds }) + '\n');
  }
  return 0;
}
