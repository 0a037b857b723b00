/**
 * {@link AuditReader}: the kernel audit stream as an async iterable of
 * record batches, read by a worker thread (reader-worker.ts).
 *
 * Backpressure: batches wait in a queue bounded by `maxQueuedMessages`.
 * When it is full the worker stops reading and the records stay in the
 * socket's receive buffer (64 MiB by default). If that fills up too, the
 * kernel drops records for a multicast reader (counted as ENOBUFS in
 * {@link AuditReaderStats.enobufs}) and, for the registered daemon, holds
 * them in its backlog and slows the audited processes (backlog_wait_time)
 * before it counts them as `lost`. Nothing is dropped silently here.
 */
import { ContidError, ContidRangeError } from '../errors.js';
import { AuditNetlink } from './netlink.js';
import {
  CONTROL_EXPECT,
  CONTROL_FOREIGN,
  CONTROL_PAUSE,
  CONTROL_SLOTS,
  type AuditMessage,
  type AuditReaderMode,
  type ReaderReport,
  type ReaderWorkerConfig,
  type RecordBatch,
  unpackBatch,
} from './reader-protocol.js';
import { checkPositiveIntegers, NetlinkSubscriber } from './subscriber.js';

export type { AuditMessage, AuditReaderMode, RecordBatch } from './reader-protocol.js';

/** Options for {@link AuditReader.open}. */
export interface AuditReaderOptions {
  /**
   * 'unicast': register as the audit daemon (fails with EEXIST while auditd
   * or another daemon is registered). 'multicast': read a copy of the stream
   * beside whatever daemon runs (needs CAP_AUDIT_READ).
   */
  readonly mode: AuditReaderMode;
  /** Socket receive buffer, forced with SO_RCVBUFFORCE. Default 64 MiB. */
  readonly receiveBufferBytes?: number;
  /** Longest blocking receive (SO_RCVTIMEO), hence the stop latency. Default 200 ms. */
  readonly pollMs?: number;
  /** Most records per batch. Default 256. */
  readonly maxBatchMessages?: number;
  /**
   * Longest time a received record waits in the worker for more records
   * before it is handed over: batching saves the main thread wake-ups
   * when records come a few at a time. Urgent records cut it short (see
   * `urgentTypes` and {@link AuditReader.expect}). Default 50 ms.
   */
  readonly flushMs?: number;
  /**
   * Record types handed over as soon as they are received, with the
   * records before them (the daemon's markers, which someone may wait
   * for). Default none.
   */
  readonly urgentTypes?: readonly number[];
  /** Records queued for the consumer before the worker pauses. Default 65 536. */
  readonly maxQueuedMessages?: number;
  /** Closes the reader when aborted. */
  readonly signal?: AbortSignal;
}

/** Counters of an {@link AuditReader}; totals since it opened. */
export interface AuditReaderStats {
  /** Records handed to the main thread. */
  readonly messages: number;
  /** Payload bytes of those records. */
  readonly bytes: number;
  readonly batches: number;
  /** Times the kernel reported ENOBUFS: records were dropped because the socket buffer was full. */
  readonly enobufs: number;
  /** Times the queue reached `maxQueuedMessages` and the worker paused. */
  readonly pauses: number;
  /** Records waiting for the consumer now. */
  readonly queuedMessages: number;
  /** The receive buffer the kernel granted (it reports twice the requested size). */
  readonly receiveBufferBytes: number;
  /**
   * Datagrams from a sender other than the kernel (netlink port id ≠ 0),
   * ignored: a process with CAP_NET_ADMIN can send to the reader's socket,
   * and what it sends must never pass for a record.
   */
  readonly foreign: number;
}

const DEFAULTS = {
  receiveBufferBytes: 64 * 1024 * 1024,
  pollMs: 200,
  maxBatchMessages: 256,
  flushMs: 50,
  maxQueuedMessages: 65536,
} as const;

interface Waiter {
  resolve(result: IteratorResult<RecordBatch>): void;
  reject(error: Error): void;
}

/**
 * Reads the kernel audit stream in a worker thread.
 *
 * ```ts
 * const reader = await AuditReader.open({ mode: 'unicast' });
 * for await (const batch of reader) for (const { type, payload } of batch) handle(type, payload);
 * ```
 *
 * One consumer per reader. Leaving the loop early (break, throw) closes it.
 */
export class AuditReader
  extends NetlinkSubscriber<ReaderReport>
  implements AsyncIterable<readonly AuditMessage[]>
{
  /** How this reader gets records. */
  readonly mode: AuditReaderMode;
  readonly #maxQueued: number;
  #queue: RecordBatch[] = [];
  #waiter: Waiter | undefined;
  #error: Error | undefined;
  #ended = false;
  #discard = false;
  #stats = {
    messages: 0,
    bytes: 0,
    batches: 0,
    enobufs: 0,
    pauses: 0,
    queuedMessages: 0,
    receiveBufferBytes: 0,
  };

  private constructor(config: ReaderWorkerConfig, control: Int32Array, options: AuditReaderOptions) {
    super('an audit reader', new URL('./reader-worker.js', import.meta.url), config, control, config.pollMs);
    this.mode = config.mode;
    this.#maxQueued = options.maxQueuedMessages ?? DEFAULTS.maxQueuedMessages;
  }

  /**
   * Starts the worker and resolves once its socket is ready (registered, in
   * unicast mode).
   *
   * @throws {SyscallError} EEXIST when another daemon is registered (unicast),
   *   EPERM without the capability, and whatever opening the socket gave.
   */
  static async open(options: AuditReaderOptions): Promise<AuditReader> {
    if (options.mode !== 'unicast' && options.mode !== 'multicast') {
      throw new ContidRangeError(
        `Cannot open an audit reader: unknown mode ${JSON.stringify(options.mode)}`,
        'ERR_OUT_OF_RANGE',
      );
    }
    checkPositiveIntegers('an audit reader', options, [
      'receiveBufferBytes',
      'pollMs',
      'maxBatchMessages',
      'flushMs',
      'maxQueuedMessages',
    ]);
    const control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT));
    const config: ReaderWorkerConfig = {
      mode: options.mode,
      receiveBufferBytes: options.receiveBufferBytes ?? DEFAULTS.receiveBufferBytes,
      pollMs: options.pollMs ?? DEFAULTS.pollMs,
      maxBatchMessages: options.maxBatchMessages ?? DEFAULTS.maxBatchMessages,
      flushMs: options.flushMs ?? DEFAULTS.flushMs,
      urgentTypes: [...(options.urgentTypes ?? [])],
      control: control.buffer,
    };
    const reader = new AuditReader(config, control, options);
    await reader.started();
    const { signal } = options;
    if (signal !== undefined) {
      const onAbort = (): void => {
        reader.close().catch((error: unknown) => {
          reader.onFailure(error instanceof Error ? error : new Error(String(error)));
        });
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      void reader.exited.then(() => {
        signal.removeEventListener('abort', onAbort);
      });
    }
    return reader;
  }

  protected override onWorkerExit(): void {
    this.#ended = true;
    this.#wake();
  }

  protected override onFailure(error: Error): void {
    this.#error ??= error;
    this.#wake();
  }

  protected override onReport(report: ReaderReport): void {
    switch (report.kind) {
      case 'ready':
        this.#stats.receiveBufferBytes = report.receiveBufferBytes;
        break;
      case 'batch': {
        this.#stats.enobufs = report.enobufs;
        this.#stats.messages += report.batch.types.length;
        this.#stats.bytes += report.batch.text.byteLength;
        this.#stats.batches++;
        if (this.#discard) break;
        this.#queue.push(report.batch);
        this.#stats.queuedMessages += report.batch.types.length;
        if (
          this.#stats.queuedMessages >= this.#maxQueued &&
          Atomics.load(this.control, CONTROL_PAUSE) === 0
        ) {
          Atomics.store(this.control, CONTROL_PAUSE, 1);
          this.#stats.pauses++;
        }
        break;
      }
      case 'closed':
      case 'error':
        // (An error report reaches onFailure, or rejects open(), through the base.)
        this.#stats.enobufs = report.enobufs;
        break;
    }
    this.#wake();
  }

  /** Settles a pending `next()` if there is anything to tell it. */
  #wake(): void {
    const waiter = this.#waiter;
    if (waiter === undefined) return;
    const result = this.#take();
    if (result === undefined) return;
    this.#waiter = undefined;
    if (result instanceof Error) waiter.reject(result);
    else waiter.resolve(result);
  }

  /** The next iterator result, an error to throw, or undefined to keep waiting. */
  #take(): IteratorResult<RecordBatch> | Error | undefined {
    const batch = this.#queue.shift();
    if (batch !== undefined) {
      this.#stats.queuedMessages -= batch.types.length;
      if (
        this.#stats.queuedMessages <= this.#maxQueued / 2 &&
        Atomics.load(this.control, CONTROL_PAUSE) !== 0
      ) {
        Atomics.store(this.control, CONTROL_PAUSE, 0);
        Atomics.notify(this.control, CONTROL_PAUSE);
      }
      return { value: batch, done: false };
    }
    if (this.#error !== undefined) return this.#error;
    if (this.#ended) return { value: undefined, done: true };
    return undefined;
  }

  /**
   * Says that a record of an urgent type is on its way (the caller just
   * sent a marker and waits for it): until the worker has received as
   * many urgent records as were announced, it hands over each batch as
   * soon as the socket is empty instead of waiting `flushMs` for more.
   */
  expect(): void {
    Atomics.add(this.control, CONTROL_EXPECT, 1);
    Atomics.notify(this.control, CONTROL_EXPECT);
  }

  protected override notifyStop(): void {
    // A paused worker, or one waiting for more records, wakes and sees the stop.
    Atomics.store(this.control, CONTROL_PAUSE, 0);
    Atomics.notify(this.control, CONTROL_PAUSE);
    Atomics.notify(this.control, CONTROL_EXPECT);
  }

  /** Records waiting for the consumer now (stats().queuedMessages). */
  get queuedMessages(): number {
    return this.#stats.queuedMessages;
  }

  /** A snapshot of the counters. */
  stats(): AuditReaderStats {
    return { ...this.#stats, foreign: Atomics.load(this.control, CONTROL_FOREIGN) };
  }

  [Symbol.asyncIterator](): AsyncIterator<readonly AuditMessage[]> {
    const batches = this.batches();
    return {
      next: async () => {
        const result = await batches.next();
        return result.done === true ? result : { value: unpackBatch(result.value), done: false };
      },
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }

  /**
   * The same batches as the async iterator, packed as the worker posted
   * them (payloads end to end in one buffer): for a consumer that parses
   * the bytes, without a string and an object per record first.
   */
  batches(): AsyncIterator<RecordBatch> {
    return {
      next: () => {
        if (this.#waiter !== undefined) {
          return Promise.reject(
            new ContidError(
              'Cannot read the audit reader: another read is waiting (one consumer at a time)',
              'ERR_INVALID_STATE',
            ),
          );
        }
        const result = this.#take();
        if (result instanceof Error) return Promise.reject(result);
        if (result !== undefined) return Promise.resolve(result);
        return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
      },
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }

  /**
   * Unregisters (unicast, and only if the kernel still has process.pid as
   * the daemon), then stops the worker, which first reads what its socket
   * already holds. Batches already queued are still delivered to the
   * iterator, which then ends. Idempotent.
   *
   * @throws {SyscallError} when the registration could not be checked or
   *   removed; the worker is stopped all the same.
   */
  close(): Promise<void> {
    return this.stopOnce(() => this.#stop());
  }

  /**
   * Stops like {@link close} but discards queued batches; the iterator then
   * throws `error`, or ends if none is given.
   */
  destroy(error?: Error): Promise<void> {
    this.#discard = true;
    this.#queue = [];
    this.#stats.queuedMessages = 0;
    if (error !== undefined) this.onFailure(error);
    else this.#ended = true;
    this.#wake();
    return this.close();
  }

  async #stop(): Promise<void> {
    // Unregistering first lets the worker's drain see the last record the
    // kernel will send it. Any of our sockets may unregister: the kernel
    // checks the pid, not the socket.
    let failure: Error | undefined;
    if (this.mode === 'unicast') {
      try {
        unregisterIfOurs();
      } catch (error) {
        failure = error instanceof Error ? error : new Error(String(error));
      }
    }
    await this.stopWorker();
    if (failure !== undefined) throw failure;
  }
}

/** AUDIT_SET pid 0 if the registered daemon is this process. */
function unregisterIfOurs(): void {
  const net = new AuditNetlink();
  try {
    if (net.getStatus().pid === process.pid) net.unregisterDaemon();
  } finally {
    net.close();
  }
}
