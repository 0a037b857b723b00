/**
 * {@link ProcConnector}: process exits from the kernel's proc connector
 * (NETLINK_CONNECTOR, CN_IDX_PROC), read on the main thread.
 *
 * Pids are host pids, even for processes in containers, and no capability
 * is needed to listen (kernel 6.6+; CAP_NET_ADMIN before), but the kernel
 * serves only listeners in the initial user and pid namespaces.
 *
 * No thread of its own: exits wait in the socket's receive buffer (16 MiB
 * by default) until {@link ProcConnector.poll} takes them with non-blocking
 * receives, called by the owner whenever it runs anyway (the daemon: after
 * each batch of audit records), or by a timer when nobody polled for
 * `flushMs`. On this VM each wake-up of a thread costs some 200 µs of CPU,
 * far more than the few microseconds of an exit, so a connector that rides
 * the owner's wake-ups costs next to nothing while records flow. A poll
 * that finds the socket empty stops the timer: a poll(2) on libuv's pool
 * (ReadableWait) then waits for the next exit, which restarts it, so an
 * idle host does not wake the connector at all. Like any open socket of
 * the daemon's, an open connector keeps the process alive.
 *
 * Bounds: one poll takes at most {@link MAX_DATAGRAMS_PER_POLL} datagrams
 * and leaves the rest to another poll right after the event loop's pending
 * I/O (setImmediate), so a flood of exits cannot hold the event loop. When
 * the receive buffer is full the kernel drops events, never slowing the
 * processes, and says so once per overflow with ENOBUFS, counted in
 * {@link ProcConnectorStats.enobufs}; how many were lost is not known.
 */
import {
  Errno,
  SyscallError,
  bind,
  close as closeFd,
  errno,
  recvfrom,
  send,
  setsockopt,
  socket,
  toNumber,
} from './libc.js';
import {
  CN_IDX_PROC,
  ProcEventWhat,
  ProcMcastOp,
  type ProcEventHandlers,
  type ProcExit,
  encodeControl,
  isProcessExit,
  parseProcDatagram,
} from './proc-connector-protocol.js';
import {
  AF_NETLINK,
  MSG_DONTWAIT,
  MSG_TRUNC,
  NETLINK_CONNECTOR,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_RCVTIMEO,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOL_SOCKET,
} from './socket-constants.js';
import { checkPositiveIntegers } from './options.js';
import { ReadableWait } from './readable-wait.js';

export type { ProcExit } from './proc-connector-protocol.js';

/** Options for {@link ProcConnector.open}. */
export interface ProcConnectorOptions {
  /** Socket receive buffer, forced with SO_RCVBUFFORCE (SO_RCVBUF without CAP_NET_ADMIN). Default 16 MiB. */
  readonly receiveBufferBytes?: number;
  /**
   * How long exits may wait in the socket when nobody calls `poll()`: a
   * timer polls when no poll happened for this long. Default 250 ms.
   */
  readonly flushMs?: number;
  /**
   * Who waits for exits once a poll found the socket empty: 'own' (the
   * default), a poll(2) on libuv's pool; 'owner', the caller, who calls
   * `poll()` from wake-ups of its own (the daemon: after each batch of the
   * audit reader, which hands one over at least once a second), so that
   * exits never wake contid by themselves. The connector then has no timer
   * either (`flushMs` is unused).
   */
  readonly wait?: 'own' | 'owner';
  /**
   * Called for each exit of a whole process (pid === tgid), and with
   * `threads` of every task, in the order the kernel sent them, from
   * `poll()`, the timer or `close()`.
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

/**
 * Datagrams (one exit each) one poll takes before it leaves the rest to the
 * next turn of the event loop: about a millisecond of work.
 */
export const MAX_DATAGRAMS_PER_POLL = 256;

const DEFAULTS = {
  receiveBufferBytes: 16 * 1024 * 1024,
  // Exits are looked at once the stream has passed them, after a batch of
  // records or, on a quiet stream, 250 ms later: the timer must not be
  // what delays them more than that.
  flushMs: 250,
  ackTimeoutMs: 2000,
  // close() takes what the socket still holds for at most this long.
  closeDrainMs: 200,
} as const;

const MAX_OPTION = 0x3fffffff;

/** Throws ERR_OUT_OF_RANGE for an option that is set but not a positive integer. */
function checkOptions(options: ProcConnectorOptions): void {
  checkPositiveIntegers('the proc connector', options, ['receiveBufferBytes', 'flushMs'], MAX_OPTION);
}

/**
 * Reports the exits of processes, from the kernel's proc connector.
 *
 * ```ts
 * const connector = await ProcConnector.open({ onExit: (e) => reap(e.pid, e.exitCode) });
 * // … connector.poll() whenever convenient; a timer polls otherwise
 * await connector.close();
 * ```
 */
export class ProcConnector {
  #fd: number;
  readonly #onExit: (exit: ProcExit) => void;
  readonly #onError: ((error: Error) => void) | undefined;
  readonly #threads: boolean;
  readonly #handlers: ProcEventHandlers;
  // A proc event datagram is 76 bytes; the slack only guards against a
  // future kernel sending larger ones (MSG_TRUNC tells us if it did).
  readonly #datagram = Buffer.alloc(64 * 1024);
  // The sender of each datagram (struct sockaddr_nl): only the kernel's,
  // port id 0, are events. Anyone with CAP_NET_ADMIN can send to a netlink
  // port, and a forged exit would end a live process in the daemon's table.
  readonly #sender = Buffer.alloc(12);
  readonly #senderLength: [number] = [12];
  #timer: NodeJS.Timeout | undefined;
  readonly #flushMs: number;
  /** Waits for the socket to become readable after a poll found it empty. */
  #idle: ReadableWait | undefined;
  #again: NodeJS.Immediate | undefined;
  #polling = false;
  /** Reading failed: no more polls, close() still unsubscribes. */
  #dead = false;
  /** A LISTEN was sent: the kernel may count this socket as a listener. */
  #listening = false;
  #closing: Promise<void> | undefined;
  #events = 0;
  #exits = 0;
  #enobufs = 0;
  #malformed = 0;
  #foreign = 0;

  private constructor(fd: number, options: ProcConnectorOptions) {
    this.#fd = fd;
    this.#onExit = options.onExit;
    this.#onError = options.onError;
    this.#threads = options.threads ?? false;
    this.#flushMs = options.flushMs ?? DEFAULTS.flushMs;
    this.#handlers = {
      exit: (exit) => {
        this.#deliver(exit);
      },
    };
  }

  /**
   * Opens a socket, subscribes it and resolves once the kernel has
   * acknowledged the subscription; exits are delivered from then on. The
   * work is synchronous, on the calling thread: the acknowledgement comes
   * within microseconds, or never (then after 2 s, ETIMEDOUT).
   *
   * @throws {SyscallError} with the errno of the call that failed, e.g.
   *   EPROTONOSUPPORT (kernel without CONFIG_PROC_EVENTS), EPERM, or
   *   ETIMEDOUT when the kernel ignored the subscription (non-initial
   *   namespace).
   * @throws {RangeError} for an option that is not a positive integer.
   */
  static open(options: ProcConnectorOptions): Promise<ProcConnector> {
    try {
      return Promise.resolve(ProcConnector.#open(options));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  static #open(options: ProcConnectorOptions): ProcConnector {
    checkOptions(options);
    const fd = openSocket(options.receiveBufferBytes ?? DEFAULTS.receiveBufferBytes);
    const connector = new ProcConnector(fd, options);
    try {
      connector.#subscribe();
      if (options.wait !== 'owner') connector.#idle = new ReadableWait(fd);
    } catch (error) {
      connector.#release();
      throw error;
    }
    // Wait for the first exit (at once if the socket already holds one).
    connector.#sleep();
    return connector;
  }

  /**
   * Delivers the exits the socket holds, without waiting: at most
   * {@link MAX_DATAGRAMS_PER_POLL}, the rest from another poll right after
   * the event loop's pending I/O. Restarts the `flushMs` timer, so the
   * timer fires only when nobody polled for that long. Does nothing once
   * closed or dead; a call from inside `onExit` does nothing either.
   */
  poll(): void {
    if (this.#polling || this.#dead || this.#fd < 0) return;
    this.#polling = true;
    try {
      for (let i = 0; i < MAX_DATAGRAMS_PER_POLL; i++) {
        // onExit may have closed the connector.
        if (this.#fd < 0) return;
        if (!this.#receive(MSG_DONTWAIT)) {
          // Empty: sleep on the socket, unless this poll took exits (more may follow soon).
          if (i === 0) this.#sleep();
          else this.#arm();
          return;
        }
      }
      this.#arm();
      if (this.#fd < 0) return;
      // More may wait: take it after the I/O the event loop has pending.
      this.#again ??= setImmediate(() => {
        this.#again = undefined;
        this.poll();
      }).unref();
    } catch (error) {
      this.#die(error instanceof Error ? error : new Error(String(error)));
    } finally {
      this.#polling = false;
    }
  }

  /** The socket, for an owner that waits for it (`wait: 'owner'`); -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /** A snapshot of the counters. */
  stats(): ProcConnectorStats {
    return {
      events: this.#events,
      exits: this.#exits,
      enobufs: this.#enobufs,
      malformed: this.#malformed,
      foreign: this.#foreign,
    };
  }

  /**
   * Delivers the exits the socket already holds (for at most 200 ms),
   * unsubscribes (PROC_CN_MCAST_IGNORE) and closes the socket. Idempotent:
   * every call gets the same promise, settled when the work is done.
   */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#drainAndRelease();
      this.#closing = Promise.resolve();
    }
    return this.#closing;
  }

  #drainAndRelease(): void {
    this.#stopTimers();
    if (this.#fd < 0) return;
    if (!this.#dead && !this.#polling) {
      this.#polling = true;
      try {
        const deadline = Date.now() + DEFAULTS.closeDrainMs;
        while (Date.now() < deadline && this.#receive(MSG_DONTWAIT));
      } catch (error) {
        this.#die(error instanceof Error ? error : new Error(String(error)));
      } finally {
        this.#polling = false;
      }
    }
    this.#release();
  }

  /**
   * PROC_CN_MCAST_IGNORE, then close(2). Without the IGNORE the kernel
   * keeps counting this socket as a listener (closing it does not
   * decrement proc_event_num_listeners) and keeps building events for
   * nobody. Best effort: a failure changes nothing for the caller, who is
   * closing anyway.
   */
  #release(): void {
    this.#stopTimers();
    if (this.#fd < 0) return;
    if (this.#listening) {
      // Kernels before 6.6 keep no per-socket state: an IGNORE without a
      // LISTEN would take another listener's count.
      const ignore = encodeControl(ProcMcastOp.IGNORE, 0);
      send(this.#fd, ignore, ignore.length, 0);
    }
    closeFd(this.#fd);
    this.#fd = -1;
  }

  /**
   * (Re)starts the timer that polls when nobody did for `flushMs`. Not with
   * `wait: 'owner'`: the owner wakes for input on the socket and polls.
   */
  #arm(): void {
    if (this.#idle === undefined) return;
    if (this.#timer !== undefined) {
      this.#timer.refresh();
      return;
    }
    // Not unref'd: while exits keep coming the connector is on this timer,
    // not on its wait, and an open connector keeps the process alive.
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.poll();
    }, this.#flushMs);
  }

  /** The socket is empty: no timer until it has something; that exit then waits `flushMs` for company. */
  #sleep(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#idle?.wait(() => {
      if (this.#fd >= 0 && !this.#dead) this.#arm();
    });
  }

  #stopTimers(): void {
    void this.#idle?.close();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#again !== undefined) clearImmediate(this.#again);
    this.#timer = undefined;
    this.#again = undefined;
  }

  /** Reading failed: the connector stops polling and says why. */
  #die(error: Error): void {
    this.#dead = true;
    this.#stopTimers();
    this.#fail(error);
  }

  #fail(error: Error): void {
    if (this.#onError !== undefined) {
      this.#onError(error);
      return;
    }
    process.nextTick(() => {
      throw error;
    });
  }

  #deliver(exit: ProcExit): void {
    if (!this.#threads && !isProcessExit(exit)) return;
    this.#exits++;
    try {
      this.#onExit(exit);
    } catch (error) {
      this.#fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * One recv and its events; false when nothing was queued (or, blocking,
   * when the receive timeout passed).
   */
  #receive(flags: number, handlers = this.#handlers): boolean {
    const sender = this.#sender;
    sender.fill(0);
    this.#senderLength[0] = sender.length;
    const datagram = this.#datagram;
    const length = toNumber(
      recvfrom(this.#fd, datagram, datagram.length, flags | MSG_TRUNC, sender, this.#senderLength),
    );
    if (length < 0) {
      const code = errno();
      if (code === Errno.EAGAIN || code === Errno.EWOULDBLOCK || code === Errno.EINTR) return false;
      if (code === Errno.ENOBUFS) {
        this.#enobufs++;
        return true;
      }
      throw new SyscallError('Cannot receive from the proc connector socket', code);
    }
    if (sender.readUInt32LE(4) !== 0) {
      this.#foreign++;
      return true;
    }
    if (length > datagram.length) {
      // Truncated by the kernel: what fits is parsed, the rest is counted.
      this.#malformed++;
    }
    const summary = parseProcDatagram(datagram, Math.min(length, datagram.length), handlers);
    this.#events += summary.events;
    this.#malformed += summary.malformed;
    return true;
  }

  /**
   * LISTEN for all events and wait for the kernel's acknowledgement, which
   * proves the subscription (the kernel silently ignores requests from a
   * non-initial user or pid namespace). Then narrow it to EXIT events:
   * kernel 6.6+ filters for us, older kernels ignore the 8-byte request and
   * keep sending everything, which the parser skips. Exits received before
   * the acknowledgement are counted, not delivered.
   */
  #subscribe(): void {
    const action = 'Cannot subscribe to the proc connector';
    // The `ack` of our LISTEN; the kernel answers with ack + 1. Random,
    // since every listener sees every acknowledgement.
    const nonce = (Math.random() * 0x7fffffff) >>> 0;
    let acknowledged: number | undefined;
    const handshake: ProcEventHandlers = {
      exit: () => undefined,
      ack: (ack, error) => {
        if (ack === (nonce + 1) >>> 0) acknowledged = error;
      },
    };
    this.#listening = true;
    sendControl(this.#fd, encodeControl(ProcMcastOp.LISTEN, nonce), action);
    const deadline = Date.now() + DEFAULTS.ackTimeoutMs;
    // Blocking receives, each bounded by SO_RCVTIMEO (set by openSocket).
    while (acknowledged === undefined) {
      if (Date.now() >= deadline) {
        throw new SyscallError(action, Errno.ETIMEDOUT, {
          reason: `the kernel did not acknowledge PROC_CN_MCAST_LISTEN within ${DEFAULTS.ackTimeoutMs} ms (it serves only the initial user and pid namespaces)`,
        });
      }
      this.#receive(0, handshake);
    }
    if (acknowledged !== 0) throw new SyscallError(action, acknowledged);
    sendControl(this.#fd, encodeControl(ProcMcastOp.LISTEN, nonce, ProcEventWhat.EXIT), action);
  }
}

function sendControl(fd: number, message: Buffer, action: string): void {
  if (toNumber(send(fd, message, message.length, 0)) < 0) throw SyscallError.fromErrno(action);
}

/** A NETLINK_CONNECTOR socket bound to CN_IDX_PROC, not yet subscribed. */
function openSocket(receiveBufferBytes: number): number {
  const fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
  if (fd < 0) throw SyscallError.fromErrno('Cannot open a NETLINK_CONNECTOR socket');
  try {
    // Port id 0: the kernel picks a free one, so several connectors can
    // coexist in one process.
    const address = Buffer.alloc(12);
    address.writeUInt16LE(AF_NETLINK, 0);
    address.writeUInt32LE(CN_IDX_PROC, 8);
    if (bind(fd, address, address.length) !== 0) {
      throw SyscallError.fromErrno('Cannot join the proc connector group CN_IDX_PROC');
    }
    // SO_RCVBUFFORCE needs CAP_NET_ADMIN; SO_RCVBUF is capped at rmem_max.
    const size = Buffer.alloc(4);
    size.writeInt32LE(receiveBufferBytes);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size, size.length) !== 0) {
      if (errno() !== Errno.EPERM || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, size.length) !== 0) {
        throw SyscallError.fromErrno('Cannot set the proc connector socket receive buffer');
      }
    }
    // Only the subscription's receives block (every later one is
    // MSG_DONTWAIT): each wait for the acknowledgement ends by this.
    const timeout = Buffer.alloc(16); // struct timeval { tv_sec, tv_usec }
    timeout.writeBigInt64LE(BigInt(Math.floor(DEFAULTS.ackTimeoutMs / 1000)), 0);
    timeout.writeBigInt64LE(BigInt((DEFAULTS.ackTimeoutMs % 1000) * 1000), 8);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, timeout.length) !== 0) {
      throw SyscallError.fromErrno('Cannot set the proc connector socket receive timeout');
    }
    return fd;
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}
