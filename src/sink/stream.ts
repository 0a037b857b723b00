/**
 * StreamSink: whole events to a Node Writable the caller opened, such as
 * standard output (a terminal, a pipe, a file) or the file of `contid
 * replay -o`. It honours the stream's own backpressure: once the stream's
 * write() returns false, nothing more is handed to it until 'drain', so
 * what waits is in the sink's bounded queue, counted like any sink's.
 *
 * A stream cannot be reopened or reconnected: its first error (EPIPE once
 * the reader of a pipe has gone, ENOSPC, EIO) ends the sink as destroy()
 * does. The error is counted and kept ({@link StreamSink.failure}), the
 * queue and every later write are dropped and counted, nothing is thrown.
 */
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { QueuedSink } from './queued-sink.js';
import { SinkError, type SinkOptions } from './sink.js';

/** Options of {@link StreamSink}. */
export interface StreamSinkOptions extends SinkOptions {
  readonly stream: Writable;
  /** What stats() shows: a path, or `standard output`. */
  readonly target: string;
  /** How error messages name the stream (default the target in quotes: `"out.json"`). */
  readonly name?: string;
  /**
   * Whether close() ends the stream (closing its file) once everything is
   * delivered, and destroy() destroys it (default true). False for a
   * stream the sink does not own, such as process.stdout.
   */
  readonly end?: boolean;
}

/** A sink that writes to a Node Writable. */
export class StreamSink extends QueuedSink {
  readonly kind = 'stream';
  readonly #stream: Writable;
  readonly #name: string;
  readonly #end: boolean;
  /** Queued chunks, from the head, handed to the stream and not yet called back. */
  #handed = 0;
  /** The stream's write() returned false: wait for 'drain' before handing more. */
  #needDrain = false;
  #aborted = false;
  #failure: SinkError | null = null;

  readonly #onError = (error: unknown): void => {
    this.#break(error);
  };
  readonly #onDrain = (): void => {
    this.#needDrain = false;
    this.#pump();
  };
  /** One callback for every write: the stream calls them back in order. */
  readonly #onWritten = (error?: Error | null): void => {
    if (this.#aborted) return;
    if (error !== null && error !== undefined) {
      this.#break(error);
      return;
    }
    this.#handed--;
    this.settle(true);
  };

  constructor(options: StreamSinkOptions) {
    super(options.target, options);
    this.#stream = options.stream;
    this.#name = options.name ?? `"${options.target}"`;
    this.#end = options.end ?? true;
    // Listeners are attached once: one per write would pile up.
    this.#stream.on('error', this.#onError);
    this.#stream.on('drain', this.#onDrain);
    this.setLink('open');
  }

  /** The error that ended the sink (its code: `EPIPE`, `ENOSPC`...), or null. */
  get failure(): SinkError | null {
    return this.#failure;
  }

  protected onQueued(): void {
    this.#pump();
  }

  protected abortTransport(): void {
    this.#aborted = true;
  }

  protected async release(): Promise<void> {
    const stream = this.#stream;
    stream.off('drain', this.#onDrain);
    if (!this.#end) {
      stream.off('error', this.#onError);
      return;
    }
    // Our 'error' listener stays on the stream we own: a late error must not crash the process.
    if (this.#aborted) stream.destroy();
    else stream.end();
    try {
      await finished(stream);
    } catch (error) {
      // The file's close can fail too (EIO, a full disk on NFS): that is a failed write.
      if (!this.#aborted) this.#record(error);
    }
  }

  #pump(): void {
    while (!this.#needDrain && !this.#aborted && this.#handed < this.queueLength) {
      const chunk = this.chunkAt(this.#handed);
      this.#handed++;
      if (!this.#stream.write(chunk.bytes, this.#onWritten)) this.#needDrain = true;
    }
  }

  /** The stream failed: keep the first error and end the sink. */
  #break(error: unknown): void {
    if (this.#aborted) return;
    this.#record(error);
    this.destroy();
  }

  #record(error: unknown): void {
    if (this.#failure !== null) return;
    this.#failure = SinkError.from(`Cannot write ${this.#name}`, error);
    this.fail(this.#failure);
  }
}
