/**
 * {@link ReadableWait}: a wait for a socket to become readable that costs
 * no thread of contid's and no CPU while nothing comes. Node cannot watch a
 * netlink socket in its event loop (`net.Socket` refuses the fd), so one
 * poll(2) runs on libuv's thread pool (koffi's asynchronous call) and the
 * callback comes back to the calling thread when the socket has something,
 * or an error, to read. A second descriptor, an eventfd, lets close() end
 * a wait that nothing else would end.
 *
 * A reader that reads its socket on a timer while records come uses it
 * when a read found nothing: an idle host then wakes contid only for the
 * reader's slow safety read (AuditReader's idleReadMs), and the first
 * record after a quiet spell wakes it once.
 */
import { ContidError } from '../errors.js';
import { SyscallError, close as closeFd, eventfd, pollOnPool, write } from './libc.js';

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const POLLIN = 0x1;
const POLLFD_BYTES = 8;
/** Longest close() waits for a poll that has not returned. */
const CLOSE_WAIT_MS = 1000;

export class ReadableWait {
  /** struct pollfd[]: the eventfd first, then the sockets. */
  #fds: Buffer;
  #eventFd: number;
  /** The poll on the pool, while one runs: resolves when it returned. */
  #pending: Promise<void> | undefined;
  #closed = false;

  /** @throws {SyscallError} when the eventfd cannot be made. */
  constructor(fd: number) {
    const efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) throw SyscallError.fromErrno('Cannot make an eventfd to wait for a socket');
    this.#eventFd = efd;
    this.#fds = pollFds([efd, fd]);
  }

  /**
   * Also ends a wait when `fd` is readable (another socket whose reading
   * rides this one's wake-ups), from the next wait on.
   */
  add(fd: number): void {
    const fds = this.#list();
    if (!fds.includes(fd)) this.#fds = pollFds([...fds, fd]);
  }

  /** Stops watching `fd` (before it is closed), from the next wait on. */
  remove(fd: number): void {
    this.#fds = pollFds(this.#list().filter((f, i) => i === 0 || f !== fd));
  }

  #list(): number[] {
    const fds: number[] = [];
    for (let at = 0; at < this.#fds.length; at += POLLFD_BYTES) fds.push(this.#fds.readInt32LE(at));
    return fds;
  }

  /** A wait is under way (its poll holds a pool thread). */
  get waiting(): boolean {
    return this.#pending !== undefined;
  }

  /**
   * Calls `then` once, on this thread, when a socket is readable or in
   * error, with the sockets that are (`failed`: poll itself failed, so the
   * caller should not wait again at once). With `only`, waits for that
   * socket alone. Does nothing while a wait is under way, or once closed.
   */
  wait(then: (failed: boolean, ready: readonly number[]) => void, only?: number): void {
    if (this.#closed)
      throw new ContidError('Cannot wait for a socket: the wait is closed', 'ERR_INVALID_STATE');
    if (this.#pending !== undefined) return;
    const fds = only === undefined ? this.#fds : pollFds([this.#list()[0]!, only]);
    this.#pending = new Promise((resolve) => {
      pollOnPool(fds, fds.length / POLLFD_BYTES, -1, (error, result) => {
        this.#pending = undefined;
        resolve();
        if (this.#closed) return;
        const failed = (error !== null && error !== undefined) || result < 0;
        const ready: number[] = [];
        for (let at = POLLFD_BYTES; at < fds.length; at += POLLFD_BYTES) {
          if (fds.readInt16LE(at + 6) !== 0) ready.push(fds.readInt32LE(at));
        }
        then(failed, ready);
      });
    });
  }

  /**
   * Ends a wait under way (its callback is not called) and releases the
   * eventfd. Waits for the pool thread at most CLOSE_WAIT_MS: a poll still
   * queued behind a pool held by other work must not hold up a stop. The
   * eventfd then stays open, and readable, until that poll has run (it
   * returns at once), so that the poll never waits on a descriptor number
   * reused meanwhile. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const efd = this.#eventFd;
    this.#eventFd = -1;
    const pending = this.#pending;
    if (pending === undefined) {
      closeFd(efd);
      return;
    }
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    write(efd, one, one.length);
    void pending.then(() => closeFd(efd));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      pending,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
  }
}

/** struct pollfd[] waiting for input on each of `fds`. */
function pollFds(fds: readonly number[]): Buffer {
  const buf = Buffer.alloc(fds.length * POLLFD_BYTES);
  fds.forEach((fd, i) => {
    buf.writeInt32LE(fd, i * POLLFD_BYTES);
    buf.writeInt16LE(POLLIN, i * POLLFD_BYTES + 4);
  });
  return buf;
}
