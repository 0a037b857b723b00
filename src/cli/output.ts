/**
 * Where `contid replay` writes: standard output, or a file it opens (`-o`),
 * through a StreamSink with the `block` policy, so that replay's
 * backpressure is the sink contract's (as the daemon's host log's is) and
 * the first write error (a full disk, a reader gone from a pipe) ends the
 * output and is kept for the exit status and message.
 */
import { closeSync, constants, createWriteStream, fstatSync, openSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { ContidError } from '../errors.js';
import { writeWithBackpressure } from '../sink/sink.js';
import { StreamSink } from '../sink/stream.js';
import { systemReason } from './errors.js';

/** Formatted bytes that may wait for the output before replay stops reading (as the host log's). */
export const OUTPUT_HIGH_WATER = 1024 * 1024;

/** Why writing stopped: the reader went away (a closed pipe), or an error. */
export type OutputFailure =
  { readonly kind: 'reader-gone' } | { readonly kind: 'error'; readonly message: string };

/** Options of {@link openOutput}. */
export interface OutputOptions {
  /** Told of each output buffer once the sink holds it no more (see SinkOptions.onSettled). */
  readonly onSettled?: (bytes: Buffer) => void;
}

/**
 * The output sink: `stdout` (left open at close) when `path` is null,
 * else FILE, opened (created, or truncated) before anything is read, so
 * that `-o /nonexistent/dir/x` or `-o /tmp` fails at once.
 *
 * @throws {ContidError} ERR_OUTPUT, "Cannot write …" naming the file and the system error.
 */
export function openOutput(path: string | null, stdout: Writable, options: OutputOptions = {}): StreamSink {
  const common = {
    policy: 'block',
    maxQueueBytes: OUTPUT_HIGH_WATER,
    ...(options.onSettled === undefined ? {} : { onSettled: options.onSettled }),
  } as const;
  if (path === null) {
    return new StreamSink({
      ...common,
      stream: stdout,
      target: 'standard output',
      name: 'standard output',
      end: false,
    });
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o666);
  } catch (err) {
    throw new ContidError(`Cannot write "${path}": ${systemReason(err)}`, 'ERR_OUTPUT');
  }
  // O_WRONLY on a directory fails with EISDIR already; anything else
  // (a FIFO, /dev/full) is written like a file.
  if (fstatSync(fd).isDirectory()) {
    closeSync(fd);
    throw new ContidError(`Cannot write "${path}": is a directory (EISDIR)`, 'ERR_OUTPUT');
  }
  return new StreamSink({
    ...common,
    stream: createWriteStream(path, { fd, highWaterMark: 1 << 20 }),
    target: path,
  });
}

/**
 * Writes `bytes`, the text of `events` events, waiting while the output's
 * queue is at its bound. Resolves false once writing has stopped.
 */
export async function deliver(output: StreamSink, bytes: Buffer, events: number): Promise<boolean> {
  if (bytes.length > 0 && output.failure === null) await writeWithBackpressure(output, bytes, events);
  return output.failure === null;
}

/**
 * Waits until everything written has reached the system, however slow the
 * reader, and closes the file the output opened. Resolves with why writing
 * stopped, if it did.
 */
export async function finishOutput(output: StreamSink): Promise<OutputFailure | null> {
  await output.flush();
  await output.close();
  const failure = output.failure;
  if (failure === null) return null;
  return failure.code === 'EPIPE' ? { kind: 'reader-gone' } : { kind: 'error', message: failure.message };
}
