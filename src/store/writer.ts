/**
 * StoreWriter: the event store as a sink, for the daemon and replay. The
 * database is written by a worker thread (writer-worker.ts), so that ingest
 * never waits on SQLite or the disk; this side turns labelled events into
 * rows and queues them.
 *
 * The queue is bounded. `write()` returns false once `highWater` events are
 * waiting (a caller that can wait, such as replay, awaits `drained()`); at
 * `maxQueue` further events are dropped and counted, so a slow or failed
 * store never holds up the host log. A batch the database refuses (a full
 * disk) is counted as failed and the error reported; the writer goes on
 * with the next batch.
 */
import { Worker } from 'node:worker_threads';
import type { LabelledEvent } from '../policy/labeller.js';
import { StoreError, type StoreErrorCode } from './errors.js';
import { LabelledRowAdapter } from './labelled-row.js';
import type { StoreRow } from './row.js';
import type { EventStoreOptions, StoreInfo } from './store.js';
import type { FromWorker, ToWorker, WireError, WriterWorkerConfig } from './writer-protocol.js';

export interface StoreWriterOptions extends Pick<
  EventStoreOptions,
  'maxAgeMs' | 'maxBytes' | 'maxOpenProcesses' | 'compressionLevel'
> {
  /** Events waiting to be stored before write() drops (default 200,000). */
  readonly maxQueue?: number;
  /** Events waiting from which write() returns false (default 20,000). */
  readonly highWater?: number;
  /** Events per transaction (default 2,000). */
  readonly batchEvents?: number;
  /** Longest time an event waits for its batch to fill (default 250 ms). */
  readonly flushIntervalMs?: number;
  /** Least time between retention passes (default 60 s). */
  readonly retainEveryMs?: number;
  /** Told of every error (a batch lost, retention failed, the worker gone). Must not throw. */
  readonly onError?: (error: StoreError) => void;
}

/** StoreWriter counters, totals since it opened. */
export interface StoreWriterStats {
  /** Events waiting: not yet sent to the worker, or sent and not yet stored. */
  readonly queued: number;
  readonly written: number;
  /** Dropped because the queue was full or the writer closed. */
  readonly dropped: number;
  /** Lost because the database refused their batch, or the worker died with them. */
  readonly failed: number;
  /** Events that could not be turned into rows. */
  readonly rejected: number;
  readonly batches: number;
  readonly payloadBytes: number;
  readonly storedBytes: number;
  readonly deletedByAge: number;
  readonly deletedBySize: number;
  readonly lastError: { readonly code: StoreErrorCode; readonly message: string } | null;
}

type State = 'open' | 'closing' | 'closed' | 'failed';

/** The event store behind a bounded queue and a worker thread. */
export class StoreWriter {
  /** The store as it was when opened. */
  readonly info: StoreInfo;
  readonly #worker: Worker;
  readonly #adapter = new LabelledRowAdapter();
  readonly #maxQueue: number;
  readonly #highWater: number;
  readonly #lowWater: number;
  readonly #batch: number;
  readonly #intervalMs: number;
  readonly #onError: (error: StoreError) => void;
  #pending: StoreRow[] = [];
  #inFlight = 0;
  #seq = 0;
  #timer: NodeJS.Timeout | null = null;
  #state: State = 'open';
  #closing: Promise<void> | null = null;
  readonly #flushes = new Map<number, () => void>();
  #drains: (() => void)[] = [];
  #closed: (() => void) | null = null;
  #s = {
    written: 0,
    dropped: 0,
    failed: 0,
    rejected: 0,
    batches: 0,
    payloadBytes: 0,
    storedBytes: 0,
    deletedByAge: 0,
    deletedBySize: 0,
    lastError: null as { code: StoreErrorCode; message: string } | null,
  };

  private constructor(worker: Worker, info: StoreInfo, options: StoreWriterOptions) {
    this.#worker = worker;
    this.info = info;
    this.#maxQueue = options.maxQueue ?? 200_000;
    this.#highWater = Math.min(options.highWater ?? 20_000, this.#maxQueue);
    this.#lowWater = Math.floor(this.#highWater / 2);
    this.#batch = options.batchEvents ?? 2000;
    this.#intervalMs = options.flushIntervalMs ?? 250;
    this.#onError = options.onError ?? (() => undefined);
    worker.on('message', (m: FromWorker) => {
      this.#onMessage(m);
    });
    worker.on('error', (err) => {
      this.#fail(new StoreError('ERR_STORE_IO', `Event store writer failed: ${err.message}`, { cause: err }));
    });
    worker.on('exit', (code) => {
      if (this.#state === 'closed') return;
      this.#fail(new StoreError('ERR_STORE_CLOSED', `Event store writer stopped (exit code ${code})`));
    });
  }

  /**
   * Starts the worker and opens (or creates) the store at `path`.
   *
   * @throws {StoreError} as EventStore.open does.
   */
  static async open(path: string, options: StoreWriterOptions = {}): Promise<StoreWriter> {
    const config: WriterWorkerConfig = {
      path,
      maxAgeMs: options.maxAgeMs ?? null,
      maxBytes: options.maxBytes ?? null,
      maxOpenProcesses: options.maxOpenProcesses ?? null,
      compressionLevel: options.compressionLevel ?? null,
      retainEveryMs: options.retainEveryMs ?? 60_000,
    };
    const worker = new Worker(new URL('./writer-worker.js', import.meta.url), { workerData: config });
    const first = await new Promise<FromWorker | Error>((resolve) => {
      const onMessage = (m: FromWorker): void => {
        cleanup();
        resolve(m);
      };
      const onError = (err: Error): void => {
        cleanup();
        resolve(err);
      };
      const onExit = (code: number): void => {
        cleanup();
        resolve(new Error(`the writer thread exited with code ${code}`));
      };
      const cleanup = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
    if (first instanceof Error || first.type !== 'ready') {
      await worker.terminate();
      if (first instanceof Error) {
        throw new StoreError('ERR_STORE_IO', `Cannot open event store "${path}": ${first.message}`, {
          cause: first,
        });
      }
      if (first.type === 'open-failed') throw new StoreError(first.error.code, first.error.message);
      throw new StoreError('ERR_STORE_IO', `Cannot open event store "${path}": unexpected "${first.type}"`);
    }
    return new StoreWriter(worker, first.info, options);
  }

  /** Events waiting to be stored. */
  get queued(): number {
    return this.#pending.length + this.#inFlight;
  }

  /**
   * Queues labelled events, in stream order. Returns false when the caller
   * should wait for drained() before writing more (nothing is lost yet).
   */
  write(events: readonly LabelledEvent[]): boolean {
    return this.#enqueue(events.length, (i) => this.#adapter.row(events[i]!));
  }

  /** Queues rows already built (contid store import). */
  writeRows(rows: readonly StoreRow[]): boolean {
    return this.#enqueue(rows.length, (i) => rows[i]!);
  }

  #enqueue(n: number, rowAt: (i: number) => StoreRow): boolean {
    if (this.#state !== 'open') {
      this.#s.dropped += n;
      return false;
    }
    for (let i = 0; i < n; i++) {
      if (this.queued >= this.#maxQueue) {
        this.#s.dropped += n - i;
        break;
      }
      let row: StoreRow;
      try {
        row = rowAt(i);
      } catch (err) {
        // Counted and reported, never thrown at the host log's writer.
        this.#s.rejected++;
        this.#report(new StoreError('ERR_STORE_IO', `Cannot store an event: ${(err as Error).message}`));
        continue;
      }
      this.#pending.push(row);
      if (this.#pending.length >= this.#batch) this.#send();
    }
    if (this.#pending.length > 0 && this.#timer === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#send();
      }, this.#intervalMs);
      this.#timer.unref();
    }
    return this.queued < this.#highWater;
  }

  /** Resolves once write() would return true again (at once if it would now, or when the writer stopped). */
  drained(): Promise<void> {
    if (this.queued <= this.#lowWater || this.#state === 'failed' || this.#state === 'closed') {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#drains.push(resolve));
  }

  /** Resolves when everything written so far is stored (or lost, and counted). */
  flush(): Promise<void> {
    if (this.#state === 'failed' || this.#state === 'closed') return Promise.resolve();
    this.#send();
    return this.#ask('flush');
  }

  /** Runs a retention pass now; resolves when it is done. */
  retain(): Promise<void> {
    if (this.#state !== 'open') return Promise.resolve();
    this.#send();
    return this.#ask('retain');
  }

  #ask(type: 'flush' | 'retain'): Promise<void> {
    const seq = ++this.#seq;
    return new Promise((resolve) => {
      this.#flushes.set(seq, resolve);
      this.#post({ type, seq });
    });
  }

  /** Stores what is queued, closes the database and ends the worker. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#state === 'open') {
      await this.flush();
      if (this.#state === 'open') {
        this.#state = 'closing';
        const done = new Promise<void>((resolve) => {
          this.#closed = resolve;
        });
        this.#post({ type: 'close' });
        await done;
      }
    }
    if (this.#state !== 'failed') this.#state = 'closed';
    await this.#worker.terminate();
  }

  /** Stops at once: the worker is ended and what is queued is counted as dropped. Idempotent. */
  destroy(error?: Error): void {
    if (this.#state === 'closed' || this.#state === 'failed') return;
    this.#s.dropped += this.queued;
    this.#pending = [];
    this.#inFlight = 0;
    this.#state = 'closed';
    if (error !== undefined)
      this.#report(new StoreError('ERR_STORE_CLOSED', error.message, { cause: error }));
    void this.#worker.terminate();
    this.#wakeAll();
  }

  stats(): StoreWriterStats {
    return { queued: this.queued, ...this.#s, lastError: this.#s.lastError };
  }

  #send(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#pending.length === 0 || this.#state === 'failed' || this.#state === 'closed') return;
    const rows = this.#pending;
    this.#pending = [];
    this.#inFlight += rows.length;
    this.#s.batches++;
    this.#post({ type: 'rows', seq: ++this.#seq, rows });
  }

  #post(message: ToWorker): void {
    this.#worker.postMessage(message);
  }

  #onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'ack':
        this.#inFlight -= m.events;
        if (m.error === null) {
          this.#s.written += m.events;
          this.#s.payloadBytes += m.payloadBytes;
          this.#s.storedBytes += m.storedBytes;
        } else {
          this.#s.failed += m.events;
          this.#report(fromWire(m.error));
        }
        if (this.queued <= this.#lowWater) this.#wakeDrains();
        break;
      case 'flushed': {
        const resolve = this.#flushes.get(m.seq);
        this.#flushes.delete(m.seq);
        resolve?.();
        break;
      }
      case 'retained':
        if (m.result !== null) {
          this.#s.deletedByAge += m.result.deletedByAge;
          this.#s.deletedBySize += m.result.deletedBySize;
        }
        if (m.error !== null) this.#report(fromWire(m.error));
        break;
      case 'closed':
        if (m.error !== null) this.#report(fromWire(m.error));
        this.#state = 'closed';
        this.#closed?.();
        break;
      case 'ready':
      case 'open-failed':
        break;
    }
  }

  #report(error: StoreError): void {
    this.#s.lastError = { code: error.code, message: error.message };
    this.#onError(error);
  }

  #fail(error: StoreError): void {
    if (this.#state === 'failed' || this.#state === 'closed') return;
    this.#state = 'failed';
    this.#s.failed += this.queued;
    this.#pending = [];
    this.#inFlight = 0;
    this.#report(error);
    this.#wakeAll();
  }

  #wakeDrains(): void {
    const drains = this.#drains;
    this.#drains = [];
    for (const resolve of drains) resolve();
  }

  #wakeAll(): void {
    this.#wakeDrains();
    for (const resolve of this.#flushes.values()) resolve();
    this.#flushes.clear();
    this.#closed?.();
  }
}

function fromWire(e: WireError): StoreError {
  return new StoreError(e.code, e.message);
}
