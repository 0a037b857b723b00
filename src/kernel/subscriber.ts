/**
 * {@link NetlinkSubscriber}: what the audit reader (reader.ts) and the proc
 * connector (proc-connector.ts) share. Each reads a netlink socket in a
 * worker thread that sits in a blocking receive loop and never returns to
 * its event loop, so the main thread steers it through a shared Int32Array
 * (slot {@link CONTROL_STOP} and slots of its own) and the worker reports
 * with postMessage.
 *
 * The base owns the worker's life: starting it, the ready handshake (the
 * worker opened its socket, or said why it could not), failures after
 * that, and the stop (set the stop slot, wait for the worker to drain and
 * exit, terminate it if it does not, and release a socket a terminated
 * worker left open: the socket belongs to the process, not the thread).
 * A subclass handles its batches and counters.
 */
import { Worker } from 'node:worker_threads';
import { ContidError, ContidRangeError } from '../errors.js';
import { SyscallError, close as closeFd } from './libc.js';
import { CONTROL_STOP, type SubscriberReport } from './subscriber-protocol.js';
import { awaitWorkerExit } from './worker-exit.js';

/**
 * Throws ERR_OUT_OF_RANGE for an option of `options` named in `names` that
 * is set but not a positive integer (at most `max`).
 */
export function checkPositiveIntegers<T extends object>(
  what: string,
  options: T,
  names: readonly (keyof T & string)[],
  max = Number.MAX_SAFE_INTEGER,
): void {
  for (const name of names) {
    const value = options[name];
    if (
      value !== undefined &&
      !(Number.isSafeInteger(value) && (value as number) > 0 && (value as number) <= max)
    ) {
      throw new ContidRangeError(
        `Cannot open ${what}: ${name} ${String(value)} is not a positive integer`,
        'ERR_OUT_OF_RANGE',
      );
    }
  }
}

/**
 * A worker-backed netlink subscriber. `R` is the worker's report type; its
 * `ready`, `closed` and `error` reports are handled here, every report is
 * then passed to {@link onReport}.
 */
export abstract class NetlinkSubscriber<R extends { readonly kind: string }> {
  protected readonly worker: Worker;
  /** The shared control slots; slot CONTROL_STOP is the base's. */
  protected readonly control: Int32Array;
  /** Resolves when the worker thread has exited. */
  protected readonly exited: Promise<void>;
  readonly #what: string;
  readonly #pollMs: number;
  #fd = -1;
  /** The worker reported its end, so it closed its socket itself. */
  #workerReported = false;
  #closing: Promise<void> | undefined;

  /**
   * @param what what the subscriber is, for messages ("an audit reader").
   * @param script the worker's module.
   * @param workerData its configuration (holding `control`'s buffer).
   * @param pollMs the worker's longest blocking receive: how soon it notices a stop.
   */
  protected constructor(what: string, script: URL, workerData: unknown, control: Int32Array, pollMs: number) {
    this.#what = what;
    this.#pollMs = pollMs;
    this.control = control;
    this.worker = new Worker(script, { workerData });
    const worker = this.worker;
    this.exited = new Promise((resolve) => {
      worker.once('exit', () => {
        resolve();
      });
    });
  }

  /** Handles a report of the worker (all kinds, after the base's bookkeeping). */
  protected abstract onReport(report: R): void;

  /** Reading failed after the handshake: the worker's error report, a worker error, or a handler's throw. */
  protected abstract onFailure(error: Error): void;

  /** The worker thread exited (after the handshake or not). */
  protected onWorkerExit(): void {}

  /** Wakes a worker that waits on a slot of its own, so that it sees the stop. */
  protected notifyStop(): void {}

  /**
   * Releases the socket of a worker that was terminated before it could
   * (it never reported its end). Default: close it.
   */
  protected releaseSocket(fd: number): void {
    closeFd(fd);
  }

  /**
   * Resolves once the worker has its socket ready; rejects with the
   * worker's error, or ERR_WORKER_EXITED when it exited before that.
   */
  protected started(): Promise<void> {
    return new Promise((resolve, reject) => {
      let ready = false;
      let failure: Error | undefined;
      this.worker.on('message', (report: R | SubscriberReport) => {
        const common = report as SubscriberReport;
        if (common.kind === 'ready') {
          this.#fd = common.fd;
        } else if (common.kind === 'closed') {
          this.#workerReported = true;
        } else if (common.kind === 'error') {
          this.#workerReported = true;
          failure =
            common.errno === undefined
              ? new Error(common.message)
              : SyscallError.withMessage(common.message, common.errno);
        }
        this.onReport(report as R);
        if (common.kind === 'ready' && !ready) {
          ready = true;
          resolve();
        } else if (common.kind === 'error') {
          if (ready) this.onFailure(failure!);
          else reject(failure!);
        }
      });
      this.worker.on('error', (error) => {
        if (ready) this.onFailure(error);
        else reject(error);
      });
      this.worker.on('exit', () => {
        this.onWorkerExit();
        if (!ready)
          reject(
            failure ??
              new ContidError(
                `Cannot open ${this.#what}: its worker exited before it was ready`,
                'ERR_WORKER_EXITED',
              ),
          );
      });
    });
  }

  /** Stops the worker (see {@link stopWorker}). Idempotent: every call gets the same promise. */
  protected stopOnce(stop: () => Promise<void>): Promise<void> {
    this.#closing ??= stop();
    return this.#closing;
  }

  /**
   * Tells the worker to drain and exit, waits for it (terminating it when
   * it does not exit in time) and releases a socket it left open.
   */
  protected async stopWorker(): Promise<void> {
    Atomics.store(this.control, CONTROL_STOP, 1);
    Atomics.notify(this.control, CONTROL_STOP);
    this.notifyStop();
    await awaitWorkerExit(this.worker, this.exited, this.#pollMs);
    if (!this.#workerReported && this.#fd >= 0) this.releaseSocket(this.#fd);
    this.#fd = -1;
  }
}
