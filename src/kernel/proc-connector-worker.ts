/**
 * The proc connector's worker thread: owns one NETLINK_CONNECTOR socket
 * subscribed to CN_IDX_PROC, reads it in a blocking loop and posts the
 * exits of whole processes to the main thread in batches.
 *
 * SO_RCVTIMEO bounds every wait, so the worker notices a stop request
 * within `pollMs`. Exits come one datagram each, from every process on the
 * host: a batch is posted `flushMs` after its first exit (or when full),
 * not when the socket is empty, so that the main thread wakes a few times
 * a second rather than once per exit. Meanwhile the worker sleeps, and
 * then takes what the socket gathered in one go, when the socket buffer
 * holds a batch's worth at any plausible rate (SLEEP_BUFFER_BYTES, forced);
 * with a smaller one it keeps receiving, one wake-up per exit, since the
 * kernel drops what does not fit, and its receive timeout is at most
 * `flushMs`, so a batch is posted at most twice `flushMs` after its first
 * exit (a sleeping worker's timeout is `pollMs`, for stop requests only:
 * an idle host does not wake it). The kernel never waits for a slow listener: when the
 * receive buffer is full it drops events and the next receive fails once
 * with ENOBUFS, which is counted.
 */
import { ContidError } from '../errors.js';
import { parentPort, workerData } from 'node:worker_threads';
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
  CONTROL_DELIVERED,
  CONTROL_STOP,
  COUNTER_ENOBUFS,
  COUNTER_EVENTS,
  COUNTER_FOREIGN,
  COUNTER_MALFORMED,
  EXIT_FIELDS,
  ProcEventWhat,
  ProcMcastOp,
  type ProcExit,
  type ProcWorkerConfig,
  type ProcWorkerReport,
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

const port = parentPort;
if (port === null)
  throw new ContidError(
    'Cannot start proc-connector-worker.js: it must run as a worker thread',
    'ERR_INVALID_STATE',
  );
const config = workerData as ProcWorkerConfig;
const control = new Int32Array(config.control);
const counters = new BigInt64Array(config.counters);

// A proc event datagram is 76 bytes; the slack only guards against a
// future kernel sending larger ones (MSG_TRUNC tells us if it did).
const datagram = Buffer.alloc(64 * 1024);
// The sender of each datagram (struct sockaddr_nl): only the kernel's,
// port id 0, are events. Anyone with CAP_NET_ADMIN can send to a netlink
// port, and a forged exit would end a live process in the daemon's table.
const sender = Buffer.alloc(12);
const senderLength: [number] = [12];
const batch = new Int32Array(config.maxBatchExits * EXIT_FIELDS);
/** About 1,300 exits (some 800 bytes each in the buffer): 100 ms at 13,000 exits/s. */
const SLEEP_BUFFER_BYTES = 1024 * 1024;
/** The buffer was forced to at least SLEEP_BUFFER_BYTES: sleep while a batch waits. */
let sleepWhileBatching = false;
let count = 0;
/** When the batch's first exit was received. */
let firstAt = 0;
let posted = 0;
// The `ack` of our LISTEN; the kernel answers with ack + 1. Random, since
// every listener sees every acknowledgement.
const nonce = (Math.random() * 0x7fffffff) >>> 0;
let acknowledged: number | undefined;
// A LISTEN may have counted us as a listener; see unsubscribe().
let listening = false;

function report(message: ProcWorkerReport, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer);
}

function add(slot: number, value: number): void {
  Atomics.add(counters, slot, BigInt(value));
}

function onExit(exit: ProcExit): void {
  if (!config.threads && !isProcessExit(exit)) return;
  if (count === 0) firstAt = Date.now();
  const at = count * EXIT_FIELDS;
  batch[at] = exit.pid;
  batch[at + 1] = exit.tgid;
  batch[at + 2] = exit.exitCode | 0;
  batch[at + 3] = exit.exitSignal;
  batch[at + 4] = exit.parentPid;
  batch[at + 5] = exit.parentTgid;
  count++;
  if (count >= config.maxBatchExits) flush();
}

function onAck(ack: number, error: number): void {
  if (ack === (nonce + 1) >>> 0) acknowledged = error;
}

function flush(): void {
  if (count === 0) return;
  const exits = batch.slice(0, count * EXIT_FIELDS);
  report({ kind: 'batch', exits }, [exits.buffer]);
  posted++;
  count = 0;
}

/** One recv and its events; false when nothing arrived. */
function receive(fd: number, flags: number): boolean {
  sender.fill(0);
  senderLength[0] = sender.length;
  const length = toNumber(recvfrom(fd, datagram, datagram.length, flags | MSG_TRUNC, sender, senderLength));
  if (length < 0) {
    const code = errno();
    if (code === Errno.EAGAIN || code === Errno.EWOULDBLOCK || code === Errno.EINTR) return false;
    if (code === Errno.ENOBUFS) {
      add(COUNTER_ENOBUFS, 1);
      return true;
    }
    throw new SyscallError('Cannot receive from the proc connector socket', code);
  }
  if (sender.readUInt32LE(4) !== 0) {
    add(COUNTER_FOREIGN, 1);
    return true;
  }
  if (length > datagram.length) {
    // Truncated by the kernel: what fits is parsed, the rest is counted.
    add(COUNTER_MALFORMED, 1);
  }
  const summary = parseProcDatagram(datagram, Math.min(length, datagram.length), {
    exit: onExit,
    ack: onAck,
  });
  add(COUNTER_EVENTS, summary.events);
  if (summary.malformed > 0) add(COUNTER_MALFORMED, summary.malformed);
  return true;
}

function sendControl(fd: number, message: Buffer, action: string): void {
  if (toNumber(send(fd, message, message.length, 0)) < 0) throw SyscallError.fromErrno(action);
}

function openSocket(): number {
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
    size.writeInt32LE(config.receiveBufferBytes);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size, size.length) !== 0) {
      if (errno() !== Errno.EPERM || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, size.length) !== 0) {
        throw SyscallError.fromErrno('Cannot set the proc connector socket receive buffer');
      }
    } else {
      sleepWhileBatching = config.receiveBufferBytes >= SLEEP_BUFFER_BYTES;
    }
    // A worker that sleeps while a batch waits needs the timeout only to
    // notice a stop; one that keeps receiving posts a batch when it wakes.
    const timeout = Buffer.alloc(16); // struct timeval { tv_sec, tv_usec }
    const pollMs = Math.max(
      1,
      Math.round(sleepWhileBatching ? config.pollMs : Math.min(config.pollMs, config.flushMs)),
    );
    timeout.writeBigInt64LE(BigInt(Math.floor(pollMs / 1000)), 0);
    timeout.writeBigInt64LE(BigInt((pollMs % 1000) * 1000), 8);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, timeout.length) !== 0) {
      throw SyscallError.fromErrno('Cannot set the proc connector socket receive timeout');
    }
    return fd;
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}

/**
 * LISTEN for all events and wait for the kernel's acknowledgement, which
 * proves the subscription (the kernel silently ignores requests from a
 * non-initial user or pid namespace). Then narrow it to EXIT events: kernel
 * 6.6+ filters for us, older kernels ignore the 8-byte request and keep
 * sending everything, which the parser skips.
 */
function subscribe(fd: number): void {
  const action = 'Cannot subscribe to the proc connector';
  listening = true;
  sendControl(fd, encodeControl(ProcMcastOp.LISTEN, nonce), action);
  const deadline = Date.now() + config.ackTimeoutMs;
  while (acknowledged === undefined) {
    if (Date.now() >= deadline) {
      throw new SyscallError(action, Errno.ETIMEDOUT, {
        reason: `the kernel did not acknowledge PROC_CN_MCAST_LISTEN within ${config.ackTimeoutMs} ms (it serves only the initial user and pid namespaces)`,
      });
    }
    receive(fd, 0);
  }
  if (acknowledged !== 0) throw new SyscallError(action, acknowledged);
  sendControl(fd, encodeControl(ProcMcastOp.LISTEN, nonce, ProcEventWhat.EXIT), action);
}

function readUntilStopped(fd: number): void {
  while (Atomics.load(control, CONTROL_STOP) === 0) {
    const delivered = Atomics.load(control, CONTROL_DELIVERED);
    if (posted - delivered >= config.maxBatchesInFlight) {
      // The main thread is behind: leave events in the socket buffer, where
      // the kernel drops (and ENOBUFS counts) what does not fit.
      Atomics.wait(control, CONTROL_DELIVERED, delivered, config.pollMs);
      continue;
    }
    if (count === 0 || !sleepWhileBatching) {
      receive(fd, 0);
    } else if (!receive(fd, MSG_DONTWAIT)) {
      // The socket is empty: post the batch when it is due, else sleep
      // until then (close() notifies CONTROL_STOP).
      const wait = firstAt + config.flushMs - Date.now();
      if (wait <= 0) flush();
      else Atomics.wait(control, CONTROL_STOP, 0, Math.min(wait, config.pollMs));
      continue;
    }
    if (count > 0 && Date.now() - firstAt >= config.flushMs) flush();
  }
}

/**
 * PROC_CN_MCAST_IGNORE. Without it the kernel keeps counting this socket as
 * a listener (closing it does not decrement proc_event_num_listeners) and
 * keeps building events for nobody. Best effort: a failure changes nothing
 * for the caller, who is closing anyway.
 */
function unsubscribe(fd: number): void {
  if (!listening) return;
  listening = false;
  const message = encodeControl(ProcMcastOp.IGNORE, nonce);
  send(fd, message, message.length, 0);
}

/** Unsubscribes, then reads what the socket already holds, for at most `pollMs`. */
function unsubscribeAndDrain(fd: number): void {
  unsubscribe(fd);
  const deadline = Date.now() + config.pollMs;
  while (Date.now() < deadline && receive(fd, MSG_DONTWAIT));
  flush();
}

let fd = -1;
try {
  fd = openSocket();
  subscribe(fd);
  report({ kind: 'ready', fd });
  readUntilStopped(fd);
  unsubscribeAndDrain(fd);
  report({ kind: 'closed' });
} catch (error) {
  flush();
  const message = error instanceof Error ? error.message : String(error);
  report(
    error instanceof SyscallError
      ? { kind: 'error', message, errno: error.errno }
      : { kind: 'error', message },
  );
} finally {
  if (fd >= 0) {
    unsubscribe(fd);
    closeFd(fd);
  }
}
