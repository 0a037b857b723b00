/**
 * Where `contid replay` writes: a file it opened or standard output, with
 * backpressure and the first write error kept, so that a full disk, a
 * directory or a missing folder ends the replay with exit 1 and a message
 * instead of output silently cut off.
 */
import { ContidError } from '../errors.js';
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { systemReason } from './errors.js';

/** Why writing stopped: the reader went away (a closed pipe), or an error. */
export type OutputFailure =
  { readonly kind: 'reader-gone' } | { readonly kind: 'error'; readonly message: string };

/**
 * A Writable with the state node's stdio streams do not keep: process.stdout
 * is never `destroyed`, even after EPIPE, and reports each failed write
 * only through its callback and an 'error' event.
 */
export class OutputSink {
  /** How messages name the output: `"FILE"` or `standard output`. */
  readonly name: string;
  readonly #out: Writable;
  readonly #owned: boolean;
  #failure: OutputFailure | null = null;
  /** Writes whose callback has not run yet. */
  #pending = 0;
  /** Wakes whoever waits for drain, idle or failure. */
  #wake: (() => void) | null = null;

  constructor(out: Writable, options: { readonly name: string; readonly owned: boolean }) {
    this.#out = out;
    this.name = options.name;
    this.#owned = options.owned;
    // Listeners are attached once: one per write would pile up (MaxListenersExceededWarning).
    out.on('error', (err) => {
      this.#fail(err);
    });
    out.on('drain', () => {
      this.#notify();
    });
    out.on('close', () => {
      this.#notify();
    });
  }

  /**
   * Opens FILE for writing (created, or truncated) before anything is read,
   * so that `-o /nonexistent/dir/x` or `-o /tmp` fails at once.
   *
   * @throws {ContidError} ERR_OUTPUT, "Cannot write …" naming the file and the system error.
   */
  static openFile(path: string): OutputSink {
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
    return new OutputSink(createWriteStream(path, { fd, highWaterMark: 1 << 20 }), {
      name: `"${path}"`,
      owned: true,
    });
  }

  /** Why writing stopped, or null while it works. */
  get failure(): OutputFailure | null {
    return this.#failure;
  }

  /**
   * Writes `bytes`, waiting while the stream's buffer is full. Resolves
   * false once writing has stopped (see {@link failure}); `written` runs
   * when the bytes have been handed to the system.
   */
  async write(bytes: Buffer, written?: (bytes: Buffer) => void): Promise<boolean> {
    if (this.#failure !== null) return false;
    if (bytes.length === 0) return true;
    this.#pending++;
    const accepted = this.#out.write(bytes, (err) => {
      this.#pending--;
      if (err !== null && err !== undefined) this.#fail(err);
      else written?.(bytes);
      this.#notify();
    });
    while (!accepted && this.#failure === null && this.#out.writableNeedDrain && !this.#out.destroyed) {
      await this.#wait();
    }
    return this.#failure === null;
  }

  /**
   * Waits until everything written has reached the system (and closes the
   * file this sink opened). Resolves with the failure, if any.
   */
  async close(): Promise<OutputFailure | null> {
    if (this.#owned) {
      if (this.#failure === null) this.#out.end();
      else this.#out.destroy();
      await finished(this.#out).catch((err: unknown) => {
        this.#fail(err);
      });
    } else {
      while (this.#pending > 0 && this.#failure === null) await this.#wait();
    }
    return this.#failure;
  }

  #wait(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  #fail(err: unknown): void {
    if (this.#failure === null) {
      this.#failure =
        (err as NodeJS.ErrnoException).code === 'EPIPE'
          ? { kind: 'reader-gone' }
          : { kind: 'error', message: `Cannot write ${this.name}: ${systemReason(err)}` };
    }
    this.#notify();
  }
}
