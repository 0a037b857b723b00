/**
 * {@link ProcConnector}: process exits from the kernel's proc connector
 * (NETLINK_CONNECTOR, CN_IDX_PROC), read by a worker thread
 * (proc-connector-worker.ts).
 *
 * Pids are host pids, even for processes in containers, and no capability
 * is needed to listen (kernel 6.6+; CAP_NET_ADMIN before), but the kernel
 * serves only listeners in the initial user and pid namespaces.
 *
 * Bounds: the worker posts at most `maxBatchesInFlight` undelivered batches;
 * beyond that it stops reading and events wait in the socket's receive
 * buffer (16 MiB by default). When that is full the kernel drops events,
 * never slowing the processes, and says so once per overflow with ENOBUFS,
 * counted in {@link ProcConnectorStats.enobufs}; how many were lost is
 * not known.
 */
import { close as closeFd, send } from './libc.js';
import {
  CONTROL_DELIVERED,
  CONTROL_SLOTS,
  COUNTER_ENOBUFS,
  COUNTER_EVENTS,
  COUNTER_FOREIGN,
  COUNTER_MALFORMED,
  COUNTER_SLOTS,
  EXIT_FIELDS,
  ProcMcastOp,
  type ProcExit,
  type ProcWorkerConfig,
  type ProcWorkerReport,
  encodeControl,
  unpackExit,
} from './proc-connector-protocol.js';
import { checkPositiveIntegers, NetlinkSubscriber } from './subscriber.js';

export type { ProcExit } from './proc-connector-protocol.js';

/** Options for {@link ProcConnector.open}. */
export interface ProcConnectorOptions {
  /** Socket receive buffer, forced with SO_RCVBUFFORCE (SO_RCVBUF without CAP_NET_ADMIN). Default 16 MiB. */
  readonly receiveBufferBytes?: number;
  /** Longest blocking receive (SO_RCVTIMEO), hence the stop latency. Default 200 ms. */
  readonly pollMs?: number;
  /**
   * Batches posted to the main thread and not yet delivered before the
   * worker stops reading (and the kernel, once the socket buffer is full,
   * drops exits). Default 64.
   */
  readonly maxBatchesInFlight?: number;
  /**
   * Called in the main thread for each exit of a whole process (pid ===
   * tgid), and with `threads` of every task, in the order the kernel sent
   * them.
   */
  readonly onExit: (exit: ProcExit) => void;
  /**
   * Deliver the exits of threads too (pid !== tgid). A thread group whose
   * leader left first (pthread_exit) ends with the exit of its last thread,
   * which only a thread exit shows. Default false.
   */
  readonly threads?: boolean;
  /**
   * Called when reading fails after open (the connector is then dead, but
   * `close()` still works) and with whatever `onExit` throws. Without it,
   * such errors are thrown from the event loop, like an 'error' event
   * without a listener.
   */
  readonly onError?: (error: Error) => void;
}

/** Counters of a {@link ProcConnector}; totals since it opened. */
export interface ProcConnectorStats {
  /** Proc events received, of any kind, thread exits included. */
  readonly events: number;
  /** Process exits delivered to `onExit`. */
  readonly exits: number;
  /** Times the kernel reported ENOBUFS: events were dropped because the socket buffer was full. */
  readonly enobufs: number;
  /** Messages that could not be read as proc events. */
  readonly malformed: number;
  /** Datagrams from a sender other than the kernel (netlink port id ≠ 0), ignored. */
  readonly foreign: number;
}

const DEFAULTS = {
  receiveBufferBytes: 16 * 1024 * 1024,
  pollMs: 200,
  maxBatchExits: 256,
  // Exits are looked at 100 ms after the stream passed them at the
  // earliest, and 250 ms after they were handed over when the stream is
  // quiet: handing them over four times a second spares the main thread a
  // wake-up per exit on the whole host, and most of the wake-ups of ten.
  flushMs: 250,
  maxBatchesInFlight: 64,
  ackTimeoutMs: 2000,
} as const;

/**
 * Reports the exits of processes, from the kernel's proc connector.
 *
 * ```ts
 * const connector = await ProcConnector.open({ onExit: (e) => reap(e.pid, e.exitCode) });
 * // …
 * await connector.close();
 * ```
 */
export class ProcConnector extends NetlinkSubscriber<ProcWorkerReport> {
  readonly #counters: BigInt64Array;
  readonly #onExit: (exit: ProcExit) => void;
  readonly #onError: ((error: Error) => void) | undefined;
  #exits = 0;

  private constructor(
    config: ProcWorkerConfig,
    control: Int32Array,
    counters: BigInt64Array,
    options: ProcConnectorOptions,
  ) {
    super(
      'the proc connector',
      new URL('./proc-connector-worker.js', import.meta.url),
      config,
      control,
      config.pollMs,
    );
    this.#counters = counters;
    this.#onExit = options.onExit;
    this.#onError = options.onError;
  }

  /**
   * Starts the worker and resolves once the kernel has acknowledged the
   * subscription.
   *
   * @throws {SyscallError} with the errno of the call that failed, e.g.
   *   EPROTONOSUPPORT (kernel without CONFIG_PROC_EVENTS), EPERM, or
   *   ETIMEDOUT when the kernel ignored the subscription (non-initial
   *   namespace).
   * @throws {RangeError} for an option that is not a positive integer.
   */
  static async open(options: ProcConnectorOptions): Promise<ProcConnector> {
    checkPositiveIntegers(
      'the proc connector',
      options,
      ['receiveBufferBytes', 'pollMs', 'maxBatchesInFlight'],
      0x3fffffff,
    );
    const control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT));
    const counters = new BigInt64Array(
      new SharedArrayBuffer(COUNTER_SLOTS * BigInt64Array.BYTES_PER_ELEMENT),
    );
    const config: ProcWorkerConfig = {
      receiveBufferBytes: options.receiveBufferBytes ?? DEFAULTS.receiveBufferBytes,
      pollMs: options.pollMs ?? DEFAULTS.pollMs,
      maxBatchExits: DEFAULTS.maxBatchExits,
      flushMs: DEFAULTS.flushMs,
      maxBatchesInFlight: options.maxBatchesInFlight ?? DEFAULTS.maxBatchesInFlight,
      ackTimeoutMs: DEFAULTS.ackTimeoutMs,
      threads: options.threads ?? false,
      control: control.buffer,
      counters: counters.buffer,
    };
    const connector = new ProcConnector(config, control, counters, options);
    await connector.started();
    return connector;
  }

  protected override onReport(report: ProcWorkerReport): void {
    if (report.kind === 'batch') this.#deliver(report.exits);
  }

  #deliver(exits: Int32Array): void {
    const count = exits.length / EXIT_FIELDS;
    for (let i = 0; i < count; i++) {
      this.#exits++;
      try {
        this.#onExit(unpackExit(exits, i));
      } catch (error) {
        this.onFailure(error instanceof Error ? error : new Error(String(error)));
      }
    }
    Atomics.add(this.control, CONTROL_DELIVERED, 1);
    Atomics.notify(this.control, CONTROL_DELIVERED);
  }

  protected override onFailure(error: Error): void {
    if (this.#onError !== undefined) {
      this.#onError(error);
      return;
    }
    process.nextTick(() => {
      throw error;
    });
  }

  /** A snapshot of the counters. */
  stats(): ProcConnectorStats {
    return {
      events: Number(Atomics.load(this.#counters, COUNTER_EVENTS)),
      exits: this.#exits,
      enobufs: Number(Atomics.load(this.#counters, COUNTER_ENOBUFS)),
      malformed: Number(Atomics.load(this.#counters, COUNTER_MALFORMED)),
      foreign: Number(Atomics.load(this.#counters, COUNTER_FOREIGN)),
    };
  }

  /**
   * Unsubscribes (PROC_CN_MCAST_IGNORE), delivers the exits the socket
   * already held, stops the worker and closes the socket. Idempotent.
   */
  close(): Promise<void> {
    return this.stopOnce(() => this.stopWorker());
  }

  protected override notifyStop(): void {
    // A worker waiting for the main thread to take its batches sees the stop.
    Atomics.notify(this.control, CONTROL_DELIVERED);
  }

  /** A worker terminated inside a receive never unsubscribed: do it for it. */
  protected override releaseSocket(fd: number): void {
    const ignore = encodeControl(ProcMcastOp.IGNORE, 0);
    send(fd, ignore, ignore.length, 0);
    closeFd(fd);
  }
}
