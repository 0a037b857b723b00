/**
 * {@link AuditReader}: the kernel audit stream as an async iterable of
 * record batches, read on the calling thread.
 *
 * The socket is read without blocking, every `flushMs` (the batch wait):
 * what the kernel queued in the socket since the last read is taken in
 * one go, with recvmmsg(2) 64 records at a time, and handed over as a few
 * packed batches. The records wait in the socket's receive buffer rather
 * than in a thread of ours: on a host where an exec is a dozen records
 * spread over a millisecond, a thread that wakes for each record, or even
 * once per batch to hand it over to another thread, costs far more CPU
 * than the records it brings. Here the whole daemon wakes once per
 * `flushMs` while records come, and the records are parsed on the thread
 * that read them. A read that finds the socket empty stops the timer and
 * the reader sleeps: the socket signals its next record (SIGIO, see
 * SignalWait), which wakes no thread but the daemon's. A record after a
 * quiet spell (no record for `flushMs`) is read a few milliseconds later,
 * with the rest of its burst, and the reader sleeps again: on a host where
 * records come a few at a time, one read per burst. A record that comes
 * sooner waits `flushMs` for more, as in a timed read. A sleeping
 * reader still reads every `idleReadMs` (1 s) and hands over a batch, even
 * an empty one: the consumer's turn for work that rides the reader's
 * wake-ups (the proc connector's exits), and a bound on a missed signal.
 *
 * Nobody who waits is kept waiting: after {@link AuditReader.expect} (the
 * caller sent a marker and waits for its echo) the socket is read every
 * millisecond until as many urgent records came as were announced, for at
 * most {@link HURRY_MS}.
 *
 * Backpressure: batches wait in a queue bounded by `maxQueuedMessages`.
 * When it is full, reading pauses and the records stay in the socket's
 * receive buffer (64 MiB by default). If that fills up too, the kernel
 * drops records for a multicast reader (counted as ENOBUFS in
 * {@link AuditReaderStats.enobufs}) and, for the registered daemon, holds
 * them in its backlog and slows the audited processes (backlog_wait_time)
 * before it counts them as `lost`. Nothing is dropped silently here.
 *
 * Unicast: the reader's socket registers as the audit daemon (the kernel
 * sends records to the socket that registered; the pid is process.pid).
 * Multicast: it joins the read-only group AUDIT_NLGRP_READLOG.
 */
import { ContidError, ContidRangeError } from '../errors.js';
import { Errno, SyscallError } from './libc.js';
import {
  AUDIT_NLGRP_READLOG,
  AuditMessageType,
  AuditNetlink,
  MSG_DONTWAIT,
  NLMSG_MIN_TYPE,
} from './netlink.js';
import { SignalWait } from './signal-wait.js';
import { checkPositiveIntegers } from './options.js';

/** One audit record as the kernel sent it. */
export interface AuditMessage {
  /** The record type (nlmsg_type): 1300 SYSCALL, 1320 EOE, 2142… */
  readonly type: number;
  /**
   * The record text, e.g. `audit(1700000000.123:42): arch=c000003e …`: no
   * `type=` prefix, no trailing NUL. Bytes are mapped 1:1 (latin1), so
   * untrusted bytes survive unchanged.
   */
  readonly payload: string;
}

/** How the reader gets records. */
export type AuditReaderMode = 'unicast' | 'multicast';

/**
 * A batch of records, packed: the payloads back to back in `text`, with
 * each record's type and the end offset of its payload. A consumer parses
 * the bytes where they lie (one buffer per batch, not a string and an
 * object per record); {@link unpackBatch} gives the records one by one.
 */
export interface RecordBatch {
  readonly types: Uint16Array;
  readonly ends: Uint32Array;
  readonly text: ArrayBuffer;
}

/** Unpacks a {@link RecordBatch}. */
export function unpackBatch(batch: RecordBatch): AuditMessage[] {
  const text = Buffer.from(batch.text);
  const messages: AuditMessage[] = new Array<AuditMessage>(batch.types.length);
  let start = 0;
  for (let i = 0; i < batch.types.length; i++) {
    const end = batch.ends[i] ?? start;
    messages[i] = { type: batch.types[i] ?? 0, payload: text.toString('latin1', start, end) };
    start = end;
  }
  return messages;
}

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
  /** Most records per batch. Default 256. */
  readonly maxBatchMessages?: number;
  /**
   * How often the socket is read while nobody waits for an urgent record:
   * the longest a record waits before it is handed over. Reading less often
   * saves wake-ups when records come a few at a time. Default 50 ms.
   */
  readonly flushMs?: number;
  /**
   * Record types someone may wait for (the daemon's markers): after
   * {@link AuditReader.expect}, the socket is read at once until one came.
   * Default none.
   */
  readonly urgentTypes?: readonly number[];
  /**
   * While the reader sleeps on its empty socket it still reads this often,
   * and hands over a batch, possibly empty: the consumer's turn for other
   * work (see {@link AuditReader.idleReadMs}). Default 1000 ms.
   */
  readonly idleReadMs?: number;
  /** Records queued for the consumer before reading pauses. Default 65 536. */
  readonly maxQueuedMessages?: number;
  /** Closes the reader when aborted. */
  readonly signal?: AbortSignal;
}

/** Counters of an {@link AuditReader}; totals since it opened. */
export interface AuditReaderStats {
  /** Records handed to the consumer's queue. */
  readonly messages: number;
  /** Payload bytes of those records. */
  readonly bytes: number;
  readonly batches: number;
  /** Times the kernel reported ENOBUFS: records were dropped because the socket buffer was full. */
  readonly enobufs: number;
  /** Times the queue reached `maxQueuedMessages` and reading paused. */
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
  maxBatchMessages: 256,
  flushMs: 50,
  idleReadMs: 1000,
  maxQueuedMessages: 65536,
} as const;

/**
 * How long the first record after a quiet spell waits for the rest of its
 * burst (an exec's fork, execve and exit events come within a millisecond
 * or two of each other): the reader then reads once and sleeps again. A
 * second wake-up this close to the first costs a fraction of the first.
 */
const SETTLE_MS = 5;
/** How often the socket is read while an announced urgent record has not come. */
const HURRY_POLL_MS = 1;
/**
 * How long an announced urgent record is hurried for. One that has not come
 * by then (audit was disabled, the kernel dropped it) is written off, so
 * that the reader goes back to its batch wait instead of reading every
 * millisecond for ever; it is still handed over with the next batch.
 */
export const HURRY_MS = 1000;
/** Records read in one go before the reader lets the event loop run (and reads on at once). */
const RECORDS_PER_READ = 4096;
/** How long close() keeps reading what the socket already holds. */
const DRAIN_MS = 200;
/** Records are at most 8,970 bytes: a batch of 256 fits; the bound matters only for a huge maxBatchMessages. */
const BATCH_TEXT_BYTES = 1024 * 1024;

interface Waiter {
  resolve(result: IteratorResult<RecordBatch>): void;
  reject(error: Error): void;
}

/**
 * Reads the kernel audit stream.
 *
 * ```ts
 * const reader = await AuditReader.open({ mode: 'unicast' });
 * for await (const batch of reader) for (const { type, payload } of batch) handle(type, payload);
 * ```
 *
 * One consumer per reader. Leaving the loop early (break, throw) closes it.
 */
export class AuditReader implements AsyncIterable<readonly AuditMessage[]> {
  /** How this reader gets records. */
  readonly mode: AuditReaderMode;
  readonly #net: AuditNetlink;
  /** Waits for the socket's signal after a read found it empty. */
  #idle: SignalWait | undefined;
  readonly #flushMs: number;
  readonly #idleReadMs: number;
  readonly #maxQueued: number;
  readonly #maxBatch: number;
  readonly #urgentTypes: ReadonlySet<number>;
  #queue: RecordBatch[] = [];
  #waiter: Waiter | undefined;
  #error: Error | undefined;
  #ended = false;
  #discard = false;
  #paused = false;
  #closing: Promise<void> | undefined;
  /** Stops listening to the `signal` of open(). */
  #unlisten: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerMs = 0;
  /** Urgent records announced by expect(), and those received since (never counted ahead). */
  #expected = 0;
  #urgentSeen = 0;
  /** Until when announced urgent records are hurried for (ms). */
  #hurryUntil = 0;
  /** The reader slept: the next read hands over a batch, even an empty one (see idleReadMs). */
  #woken = false;
  /**
   * The socket signalled more than a batch wait after the last record:
   * records come sparsely, so after the next read the reader sleeps again
   * rather than read once more, most likely for nothing.
   */
  #sparse = false;
  /** When a read last found records (ms). */
  #recordsAt = 0;
  // The batch being filled: payload bytes back to back, plus the type and
  // end offset of each record.
  readonly #text = Buffer.allocUnsafeSlow(BATCH_TEXT_BYTES);
  readonly #types: Uint16Array;
  readonly #ends: Uint32Array;
  #count = 0;
  #used = 0;
  #stats = {
    messages: 0,
    bytes: 0,
    batches: 0,
    enobufs: 0,
    pauses: 0,
    queuedMessages: 0,
    receiveBufferBytes: 0,
  };

  private constructor(mode: AuditReaderMode, options: AuditReaderOptions) {
    this.mode = mode;
    this.#flushMs = options.flushMs ?? DEFAULTS.flushMs;
    this.#idleReadMs = options.idleReadMs ?? DEFAULTS.idleReadMs;
    this.#maxQueued = options.maxQueuedMessages ?? DEFAULTS.maxQueuedMessages;
    this.#maxBatch = options.maxBatchMessages ?? DEFAULTS.maxBatchMessages;
    this.#urgentTypes = new Set(options.urgentTypes ?? []);
    this.#types = new Uint16Array(this.#maxBatch);
    this.#ends = new Uint32Array(this.#maxBatch);
    this.#net = new AuditNetlink({
      groups: mode === 'multicast' ? AUDIT_NLGRP_READLOG : 0,
      receiveBufferBytes: options.receiveBufferBytes ?? DEFAULTS.receiveBufferBytes,
      // Records that come while a request waits for its answer (close's unregistration).
      onRecord: (message) => {
        this.#push(message.payload, message.type, message.seq, 0, message.payload.length);
      },
    });
  }

  /**
   * Opens the socket; in unicast mode registers it as the audit daemon.
   *
   * @throws {SyscallError} EEXIST when another daemon is registered (unicast),
   *   EPERM without the capability, and whatever opening the socket gave.
   * @throws {RangeError} for an unknown mode or an option that is not a positive integer.
   */
  // eslint-disable-next-line @typescript-eslint/require-await -- async: errors reject, as callers expect
  static async open(options: AuditReaderOptions): Promise<AuditReader> {
    if (options.mode !== 'unicast' && options.mode !== 'multicast') {
      throw new ContidRangeError(
        `Cannot open an audit reader: unknown mode ${JSON.stringify(options.mode)}`,
        'ERR_OUT_OF_RANGE',
      );
    }
    checkPositiveIntegers('an audit reader', options, [
      'receiveBufferBytes',
      'maxBatchMessages',
      'flushMs',
      'idleReadMs',
      'maxQueuedMessages',
    ]);
    const reader = new AuditReader(options.mode, options);
    try {
      if (options.mode === 'unicast') reader.#net.registerDaemon(process.pid);
      reader.#stats.receiveBufferBytes = reader.#net.receiveBufferBytes();
      reader.#idle = new SignalWait(reader.#net.fd);
    } catch (error) {
      reader.#net.close();
      throw error;
    }
    reader.#arm(reader.#flushMs);
    const { signal } = options;
    if (signal !== undefined) {
      const onAbort = (): void => {
        reader.close().catch((error: unknown) => {
          reader.#fail(error instanceof Error ? error : new Error(String(error)));
        });
      };
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        reader.#unlisten = () => {
          signal.removeEventListener('abort', onAbort);
        };
      }
    }
    return reader;
  }

  /**
   * Says that a record of an urgent type is on its way (the caller is about
   * to send a marker and waits for it): until as many urgent records came
   * as were announced, the socket is read every millisecond, and what it
   * holds is handed over at once.
   */
  expect(): void {
    this.#expected = (this.#expected + 1) | 0;
    this.#hurryUntil = Date.now() + HURRY_MS;
    if (!this.#paused && this.#closing === undefined && this.#error === undefined) this.#arm(HURRY_POLL_MS);
  }

  /**
   * The longest the consumer waits for a batch while the reader lives: a
   * sleeping reader hands over one, possibly empty, every `idleReadMs`, so
   * that work riding its wake-ups (reading the proc connector, looking at
   * exits) needs no timer of its own.
   */
  get idleReadMs(): number {
    return this.#idleReadMs;
  }

  /** Records waiting for the consumer now (stats().queuedMessages). */
  get queuedMessages(): number {
    return this.#stats.queuedMessages;
  }

  /** A snapshot of the counters. */
  stats(): AuditReaderStats {
    return { ...this.#stats, foreign: this.#net.foreignDatagrams };
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
   * The same batches as the async iterator, packed (payloads end to end in
   * one buffer): for a consumer that parses the bytes, without a string and
   * an object per record first.
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
   * the daemon), reads what the socket already holds, and closes it.
   * Batches already queued are still delivered to the iterator, which then
   * ends. Idempotent.
   *
   * @throws {SyscallError} when the registration could not be checked or
   *   removed; the socket is closed all the same.
   */
  close(): Promise<void> {
    this.#closing ??= this.#stop();
    return this.#closing;
  }

  /**
   * Stops like {@link close} but discards queued batches; the iterator then
   * throws `error`, or ends if none is given.
   */
  destroy(error?: Error): Promise<void> {
    this.#discard = true;
    this.#queue = [];
    this.#stats.queuedMessages = 0;
    this.#count = 0;
    this.#used = 0;
    if (error !== undefined) this.#error ??= error;
    else this.#ended = true;
    this.#wake();
    return this.close();
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- async: errors reject, as close() promises
  async #stop(): Promise<void> {
    this.#unlisten?.();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#idle?.close();
    // Unregistering first lets the drain below see the last record the
    // kernel sends us; records that come during the request are kept.
    let failure: Error | undefined;
    if (this.mode === 'unicast' && this.#net.fd >= 0) {
      try {
        if (this.#net.getStatus().pid === process.pid) this.#net.unregisterDaemon();
      } catch (error) {
        failure = error instanceof Error ? error : new Error(String(error));
      }
    }
    if (this.#error === undefined && this.#net.fd >= 0) {
      const deadline = Date.now() + DRAIN_MS;
      try {
        while (Date.now() < deadline && this.#receive() > 0);
      } catch (error) {
        this.#error ??= error instanceof Error ? error : new Error(String(error));
      }
    }
    this.#endBatch();
    this.#net.close();
    this.#ended = true;
    this.#wake();
    if (failure !== undefined) throw failure;
  }

  /** (Re)starts the timer of the next read. */
  #arm(ms: number): void {
    if (this.#timer !== undefined && this.#timerMs === ms) {
      this.#timer.refresh();
      return;
    }
    clearTimeout(this.#timer);
    this.#timerMs = ms;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#read();
    }, ms);
  }

  /** One read of the socket: everything it holds, up to the queue's bound or RECORDS_PER_READ. */
  #read(): void {
    if (this.#closing !== undefined || this.#error !== undefined) return;
    // Awake now: it sleeps again only when this read finds the socket empty.
    this.#idle?.cancel();
    let more = false;
    let records = 0;
    try {
      while (!this.#paused) {
        const got = this.#receive();
        if (got === 0) break;
        records += got;
        if (records >= RECORDS_PER_READ) {
          more = true;
          break;
        }
      }
    } catch (error) {
      this.#endBatch();
      this.#fail(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.#endBatch();
    if (this.#woken && records === 0 && this.#queue.length === 0) this.#queueEmptyBatch();
    const sparse = this.#sparse;
    this.#woken = false;
    this.#sparse = false;
    if (records > 0) this.#recordsAt = Date.now();
    this.#wake();
    if (this.#paused) return; // #take reads again once the consumer caught up.
    if (more) this.#arm(0);
    else if (this.#hurried()) this.#arm(HURRY_POLL_MS);
    else if (records > 0 && !sparse) this.#arm(this.#flushMs);
    else this.#sleep();
  }

  /**
   * The socket was empty: no more timed reads until it signals a record
   * (or the slow idle read comes).
   */
  #sleep(): void {
    this.#arm(this.#idleReadMs);
    this.#woken = true;
    let waiting = false;
    try {
      waiting = this.#idle?.wait(this.#onSignal) ?? false;
    } catch {
      // The socket cannot signal: it is read on the batch timer instead.
    }
    // Records that came since the read (or no signal to wait for): the batch wait.
    if (!waiting) this.#arm(this.#flushMs);
  }

  /**
   * The socket signalled a record. After a quiet spell (no record for a
   * batch wait) it is read once the burst it starts has had SETTLE_MS to
   * come; otherwise records are coming steadily and get the batch wait.
   */
  readonly #onSignal = (): void => {
    if (this.#closing !== undefined || this.#error !== undefined || this.#paused) return;
    const ms = Date.now() - this.#recordsAt >= this.#flushMs ? SETTLE_MS : this.#flushMs;
    this.#sparse = ms === SETTLE_MS;
    if (this.#timer === undefined || this.#timerMs > ms) this.#arm(ms);
  };

  /** True while an announced urgent record has not come, within HURRY_MS of the announcement. */
  #hurried(): boolean {
    if (((this.#expected - this.#urgentSeen) | 0) <= 0) return false;
    if (Date.now() < this.#hurryUntil) return true;
    // Written off: it will not be waited for (and, late, it counts for nobody).
    this.#urgentSeen = this.#expected;
    return false;
  }

  /**
   * One non-blocking recvmmsg. Returns the datagrams taken (records or not,
   * userspace senders included), 0 when the socket was empty. ENOBUFS (the
   * kernel dropped records for us) is counted, not fatal.
   */
  #receive(): number {
    const foreign = this.#net.foreignDatagrams;
    try {
      return this.#net.receiveMany(this.#visit, MSG_DONTWAIT) + this.#net.foreignDatagrams - foreign;
    } catch (error) {
      if (error instanceof SyscallError && error.errno === Errno.ENOBUFS) {
        this.#stats.enobufs++;
        return 1;
      }
      throw error;
    }
  }

  readonly #visit = (buf: Buffer, type: number, seq: number, start: number, end: number): void => {
    this.#push(buf, type, seq, start, end);
  };

  /** Adds one message to the batch if it is a record. */
  #push(buf: Buffer, type: number, seq: number, start: number, end: number): void {
    // Records have sequence 0; anything else is a late answer to a request.
    // AUDIT_REPLACE is the kernel pinging its daemon whenever someone tries
    // AUDIT_SET pid (including our own unregistration), not a record.
    if (seq !== 0 || type < NLMSG_MIN_TYPE || type === AuditMessageType.REPLACE) return;
    if (this.#discard) return;
    while (end > start && buf[end - 1] === 0) end--;
    if (this.#used + end - start > BATCH_TEXT_BYTES) this.#endBatch();
    this.#used += buf.copy(this.#text, this.#used, start, end);
    this.#types[this.#count] = type;
    this.#ends[this.#count] = this.#used;
    this.#count++;
    // Never counted ahead of what was announced: an urgent record sent by
    // someone else must not stand for a later one of ours.
    if (this.#urgentTypes.has(type) && ((this.#expected - this.#urgentSeen) | 0) > 0) {
      this.#urgentSeen = (this.#urgentSeen + 1) | 0;
    }
    if (this.#count >= this.#maxBatch) this.#endBatch();
  }

  /** Queues the batch being filled; pauses reading when the queue is full. */
  #endBatch(): void {
    const count = this.#count;
    if (count === 0) return;
    const used = this.#used;
    const batch: RecordBatch = {
      types: this.#types.slice(0, count),
      ends: this.#ends.slice(0, count),
      text: this.#text.buffer.slice(this.#text.byteOffset, this.#text.byteOffset + used),
    };
    this.#count = 0;
    this.#used = 0;
    this.#stats.messages += count;
    this.#stats.bytes += used;
    this.#stats.batches++;
    this.#queue.push(batch);
    this.#stats.queuedMessages += count;
    if (this.#stats.queuedMessages >= this.#maxQueued && !this.#paused) {
      this.#paused = true;
      this.#stats.pauses++;
    }
  }

  /** A batch without records: the consumer's turn to read a watched socket. */
  #queueEmptyBatch(): void {
    this.#stats.batches++;
    this.#queue.push({ types: new Uint16Array(0), ends: new Uint32Array(0), text: new ArrayBuffer(0) });
  }

  #fail(error: Error): void {
    this.#error ??= error;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#idle?.close();
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
      if (this.#paused && this.#stats.queuedMessages <= this.#maxQueued / 2) {
        this.#paused = false;
        if (this.#closing === undefined && this.#error === undefined && !this.#ended) this.#arm(0);
      }
      return { value: batch, done: false };
    }
    if (this.#error !== undefined) return this.#error;
    if (this.#ended) return { value: undefined, done: true };
    return undefined;
  }
}
