/**
 * The part every sink shares: the bounded FIFO of whole-event chunks, the
 * block/drop policy, the counters, flush and drain waiters, and the
 * close/destroy lifecycle. A transport subclass only moves chunks from the
 * head of the queue to its destination and settles each one, in order, as
 * written or dropped.
 */
import { ContidRangeError } from '../errors.js';
import type { FlushOptions, Sink, SinkErrorInfo, SinkOptions, SinkPolicy, SinkStats } from './sink.js';
import { SinkError } from './sink.js';

/** One write(): the bytes of whole events. */
export interface QueuedChunk {
  readonly bytes: Buffer;
  readonly events: number;
}

/** The link state a transport reports; the base adds `closing` and `closed`. */
export type LinkState = 'open' | 'connecting' | 'disconnected';

const DEFAULT_MAX_QUEUE_BYTES = 16 * 1024 * 1024;
const DEFAULT_MAX_QUEUE_EVENTS = 65536;
const DEFAULT_CLOSE_TIMEOUT_MS = 5000;

interface FlushWaiter {
  readonly seq: number;
  readonly resolve: () => void;
}

/** A sink with a bounded queue; subclasses provide the transport. */
export abstract class QueuedSink implements Sink {
  abstract readonly kind: string;
  readonly target: string;
  readonly policy: SinkPolicy;
  readonly #maxBytes: number;
  readonly #maxEvents: number;
  readonly #closeTimeoutMs: number;
  readonly #onError: ((error: SinkError) => void) | undefined;
  readonly #onSettled: ((bytes: Buffer, delivered: boolean) => void) | undefined;

  // The FIFO: chunks[head..] are queued; settled ones are cleared and
  // compacted away now and then.
  #chunks: (QueuedChunk | undefined)[] = [];
  #head = 0;
  #queuedBytes = 0;
  #queuedEvents = 0;
  /** Chunks ever queued, and ever settled: flush() waits for settled to catch up. */
  #accepted = 0;
  #settled = 0;

  #writtenBytes = 0;
  #writtenEvents = 0;
  #droppedBytes = 0;
  #droppedEvents = 0;
  #droppedDisconnectedEvents = 0;
  #errors = 0;
  #lastError: SinkErrorInfo | null = null;
  #reconnects = 0;

  #link: LinkState = 'connecting';
  #closeRequested = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #flushWaiters: FlushWaiter[] = [];
  #drainWaiters: (() => void)[] = [];

  protected constructor(target: string, options: SinkOptions) {
    this.target = target;
    this.policy = options.policy ?? 'drop';
    this.#maxBytes = positive(options.maxQueueBytes, DEFAULT_MAX_QUEUE_BYTES, 'maxQueueBytes');
    this.#maxEvents = positive(options.maxQueueEvents, DEFAULT_MAX_QUEUE_EVENTS, 'maxQueueEvents');
    this.#closeTimeoutMs = positive(options.closeTimeoutMs, DEFAULT_CLOSE_TIMEOUT_MS, 'closeTimeoutMs');
    this.#onError = options.onError;
    this.#onSettled = options.onSettled;
  }

  write(bytes: Buffer, events: number): boolean {
    if (!Number.isSafeInteger(events) || events < 0) {
      throw new ContidRangeError(
        `Cannot write to "${this.target}": events must be a count, not ${String(events)}`,
        'ERR_OUT_OF_RANGE',
      );
    }
    if (this.#closeRequested || !this.accepts(bytes, events)) {
      this.#drop(bytes.length, events);
      this.#onSettled?.(bytes, false);
      return false;
    }
    this.#chunks.push({ bytes, events });
    this.#queuedBytes += bytes.length;
    this.#queuedEvents += events;
    this.#accepted++;
    this.onQueued();
    return this.policy === 'drop' || !this.#full();
  }

  drained(): Promise<void> {
    if (!this.#full() || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  async flush(options: FlushOptions = {}): Promise<void> {
    await this.#settledUpTo(this.#accepted, options.signal);
    if (!this.#closed) await this.syncDestination();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  destroy(error?: Error): void {
    if (this.#closed) return;
    this.#closeRequested = true;
    this.#closed = true;
    if (error !== undefined) {
      const code = error instanceof SinkError ? error.code : 'ERR_SINK_DESTROYED';
      this.fail(
        new SinkError(`Cannot deliver to "${this.target}": destroyed (${error.message})`, code, {
          cause: error,
        }),
      );
    }
    this.abortTransport();
    this.dropQueued();
    this.#wakeAll();
    void this.release();
  }

  stats(): SinkStats {
    return {
      kind: this.kind,
      target: this.target,
      policy: this.policy,
      state: this.#closed ? 'closed' : this.#closeRequested ? 'closing' : this.#link,
      queuedBytes: this.#queuedBytes,
      queuedEvents: this.#queuedEvents,
      writtenBytes: this.#writtenBytes,
      writtenEvents: this.#writtenEvents,
      droppedBytes: this.#droppedBytes,
      droppedEvents: this.#droppedEvents,
      droppedDisconnectedEvents: this.#droppedDisconnectedEvents,
      errors: this.#errors,
      lastError: this.#lastError,
      reconnects: this.#reconnects,
    };
  }

  // --- for transports ---------------------------------------------------

  /**
   * Whether a write of this size would be queued now (a `drop` sink at its
   * bound drops it). An empty queue takes any write, even one larger than
   * the bound, so that a big write is delivered rather than refused for ever.
   */
  protected accepts(bytes: Buffer, events: number): boolean {
    if (this.#closeRequested) return false;
    if (this.policy === 'block' || this.#head === this.#chunks.length) return true;
    return (
      this.#queuedBytes + bytes.length <= this.#maxBytes && this.#queuedEvents + events <= this.#maxEvents
    );
  }

  /** Starts moving chunks if the transport is idle; called after each queued write and at close. */
  protected abstract onQueued(): void;
  /** Stops the transport at once: later completions of in-flight work must be ignored. */
  protected abstract abortTransport(): void;
  /** Releases every resource once nothing more will be delivered. Never rejects. */
  protected abstract release(): Promise<void>;
  /** Makes what was written durable (fsync); flush() calls it after the queue caught up. */
  protected syncDestination(): Promise<void> {
    return Promise.resolve();
  }

  /** Chunks queued and not yet settled. */
  protected get queueLength(): number {
    return this.#chunks.length - this.#head;
  }

  /** The `i`-th queued chunk from the head. */
  protected chunkAt(i: number): QueuedChunk {
    const chunk = this.#chunks[this.#head + i];
    if (chunk === undefined) throw new ContidRangeError(`Cannot find queued chunk ${i}`, 'ERR_INVALID_STATE');
    return chunk;
  }

  /** True once close() or destroy() was called: reconnect only to deliver what is queued. */
  protected get closeRequested(): boolean {
    return this.#closeRequested;
  }

  /** True once the sink is closed or destroyed: the transport must stop. */
  protected get isClosed(): boolean {
    return this.#closed;
  }

  /** The link state reported in stats(). */
  protected get link(): LinkState {
    return this.#link;
  }

  protected setLink(state: LinkState): void {
    this.#link = state;
  }

  /** Counts an open or connection after the first. */
  protected countReconnect(): void {
    this.#reconnects++;
  }

  /** Settles the head chunk: it reached the destination, or it is given up. */
  protected settle(delivered: boolean): void {
    const chunk = this.#chunks[this.#head];
    if (chunk === undefined)
      throw new ContidRangeError('Cannot settle a chunk: none is queued', 'ERR_INVALID_STATE');
    this.#chunks[this.#head] = undefined;
    this.#head++;
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
    this.#queuedBytes -= chunk.bytes.length;
    this.#queuedEvents -= chunk.events;
    if (delivered) {
      this.#writtenBytes += chunk.bytes.length;
      this.#writtenEvents += chunk.events;
    } else {
      this.#drop(chunk.bytes.length, chunk.events);
    }
    this.#settled++;
    this.#onSettled?.(chunk.bytes, delivered);
    this.#wake();
  }

  /** Counts a write the transport cannot take at all as dropped, and why. */
  protected refuse(bytes: Buffer, events: number, error: SinkError): void {
    this.#drop(bytes.length, events);
    this.#onSettled?.(bytes, false);
    this.fail(error);
  }

  /** Drops every queued chunk (the transport was aborted first). */
  protected dropQueued(): void {
    while (this.queueLength > 0) this.settle(false);
  }

  /** Counts an error, keeps it as the last one and reports it to onError. */
  protected fail(error: SinkError): void {
    this.#errors++;
    this.#lastError = { message: error.message, code: error.code };
    this.#onError?.(error);
  }

  // --- internals ----------------------------------------------------------

  #full(): boolean {
    return this.#queuedBytes >= this.#maxBytes || this.#queuedEvents >= this.#maxEvents;
  }

  #drop(bytes: number, events: number): void {
    this.#droppedBytes += bytes;
    this.#droppedEvents += events;
    if (this.#link !== 'open') this.#droppedDisconnectedEvents += events;
  }

  #wake(): void {
    while (this.#flushWaiters.length > 0 && this.#flushWaiters[0]!.seq <= this.#settled) {
      this.#flushWaiters.shift()!.resolve();
    }
    if (this.#drainWaiters.length > 0 && !this.#full()) this.#wakeDrain();
  }

  #wakeDrain(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #wakeAll(): void {
    for (const waiter of this.#flushWaiters) waiter.resolve();
    this.#flushWaiters = [];
    this.#wakeDrain();
  }

  #settledUpTo(seq: number, signal?: AbortSignal): Promise<void> {
    if (this.#settled >= seq || this.#closed) return Promise.resolve();
    signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const waiter: FlushWaiter = {
        seq,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = this.#flushWaiters.indexOf(waiter);
        if (i >= 0) this.#flushWaiters.splice(i, 1);
        const reason: unknown = signal!.reason;
        reject(reason instanceof Error ? reason : new Error(String(reason)));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#flushWaiters.push(waiter);
    });
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closeRequested = true;
    this.onQueued();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.#settledUpTo(this.#accepted).then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => {
          resolve(true);
        }, this.#closeTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (this.#closed) return; // destroyed meanwhile
    if (timedOut) {
      const events = this.#queuedEvents;
      this.fail(
        new SinkError(
          `Cannot deliver to "${this.target}" within ${this.#closeTimeoutMs} ms of closing: ${events} events dropped`,
          'ETIMEDOUT',
        ),
      );
      this.abortTransport();
      this.dropQueued();
    }
    this.#closed = true;
    await this.release();
    this.#wakeAll();
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new ContidRangeError(
      `Cannot use ${name} ${String(value)}: it must be a positive integer`,
      'ERR_OUT_OF_RANGE',
    );
  }
  return value;
}
