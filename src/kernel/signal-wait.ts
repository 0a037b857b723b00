/**
 * {@link SignalWait}: a wait for a socket to have input that costs no
 * thread and no CPU while nothing comes. Node cannot watch a netlink socket
 * in its event loop (`net.Socket` refuses the fd), so the socket is asked
 * to signal instead: with O_ASYNC set and this process as its owner
 * (F_SETOWN), the kernel sends SIGIO when a datagram is queued, and Node's
 * own signal handling turns that into a callback on the main thread, in
 * the same wake-up. No pool thread hands anything over (compare
 * ReadableWait, which parks a poll(2) on libuv's pool: two more threads run
 * for every wake-up, and other work can fill that pool).
 *
 * O_ASYNC is set only while waiting: a busy socket read on a timer raises
 * no signal per datagram. A signal says that some socket of the process
 * has input, not which, so each wait looks at its own socket (poll(2) with
 * no timeout) before calling back.
 *
 * SIGIO's default action ends the process: the listener is installed once,
 * before any socket is set to signal, and never removed (Node's signal
 * listeners do not keep the process alive).
 */
import { isMainThread } from 'node:worker_threads';
import { ContidError } from '../errors.js';
import { SyscallError, fcntl, poll } from './libc.js';

const F_GETFL = 3;
const F_SETFL = 4;
const F_SETOWN = 8;
const O_ASYNC = 0o20000;
const POLLIN = 0x1;

/** The waits under way, each looked at on every SIGIO. */
const waiting = new Set<SignalWait>();
let listening = false;

function onSignal(): void {
  for (const wait of waiting) wait.check();
}

export class SignalWait {
  readonly #fd: number;
  /** struct pollfd for a look at the socket. */
  readonly #pollFd = Buffer.alloc(8);
  #then: (() => void) | undefined;
  #closed = false;
  #stats = { waits: 0, signals: 0 };

  /**
   * @throws {ContidError} ERR_INVALID_STATE off the main thread (signals
   *   reach only the main thread's listeners).
   * @throws {SyscallError} when the socket cannot be given an owner.
   */
  constructor(fd: number) {
    if (!isMainThread) {
      throw new ContidError(
        'Cannot wait for a socket by signal outside the main thread',
        'ERR_INVALID_STATE',
      );
    }
    if (!listening) {
      process.on('SIGIO', onSignal);
      listening = true;
    }
    if (fcntl(fd, F_SETOWN, process.pid) < 0) {
      throw SyscallError.fromErrno('Cannot make this process the owner of a socket (F_SETOWN)');
    }
    this.#fd = fd;
    this.#pollFd.writeInt32LE(fd, 0);
    this.#pollFd.writeInt16LE(POLLIN, 4);
  }

  /** A wait is under way. */
  get waiting(): boolean {
    return this.#then !== undefined;
  }

  /** Waits begun, and signals that ended one. */
  stats(): { waits: number; signals: number } {
    return { ...this.#stats };
  }

  /**
   * Calls `then` once, on this thread, when the socket has input (or an
   * error to read). Returns false, without waiting, when it has input
   * already: input queued before the socket was set to signal raised no
   * signal, so the caller reads it now. Replaces a wait under way.
   *
   * @throws {SyscallError} when the socket cannot be set to signal.
   */
  wait(then: () => void): boolean {
    if (this.#closed)
      throw new ContidError('Cannot wait for a socket: the wait is closed', 'ERR_INVALID_STATE');
    if (this.#then === undefined) this.#setAsync(true);
    this.#then = then;
    waiting.add(this);
    if (!this.#readable()) {
      this.#stats.waits++;
      return true;
    }
    this.cancel();
    return false;
  }

  /** Ends a wait under way without calling back; the socket stops signalling. */
  cancel(): void {
    if (this.#then === undefined) return;
    this.#then = undefined;
    waiting.delete(this);
    try {
      this.#setAsync(false);
    } catch {
      // A socket left signalling costs a look at it per signal, nothing more.
    }
  }

  /** Calls back if waiting and the socket has input (called on every SIGIO). */
  check(): void {
    const then = this.#then;
    if (then === undefined || !this.#readable()) return;
    this.#stats.signals++;
    this.cancel();
    then();
  }

  /** Ends any wait; the socket itself is the caller's to close. Idempotent. */
  close(): void {
    if (this.#closed) return;
    try {
      this.cancel();
    } finally {
      this.#closed = true;
    }
  }

  #readable(): boolean {
    this.#pollFd.writeInt16LE(0, 6);
    // A poll that fails says nothing came: the caller's slow timer reads anyway.
    return poll(this.#pollFd, 1, 0) > 0;
  }

  #setAsync(on: boolean): void {
    const flags = fcntl(this.#fd, F_GETFL);
    if (flags < 0 || fcntl(this.#fd, F_SETFL, on ? flags | O_ASYNC : flags & ~O_ASYNC) < 0) {
      throw SyscallError.fromErrno(`Cannot ${on ? 'set' : 'clear'} O_ASYNC on a socket`);
    }
  }
}
