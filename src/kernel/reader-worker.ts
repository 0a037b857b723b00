/**
 * The audit reader's worker thread: owns one NETLINK_AUDIT socket, reads it
 * in a blocking loop and posts the records to the main thread in batches.
 *
 * Blocking receives in a worker are the cheapest way to drain the socket
 * from Node (koffi async calls on the libuv pool cost about 25 µs per
 * record); one recvmmsg(2) takes up to 64 records, and records are posted
 * as packed batches (see RecordBatch). SO_RCVTIMEO bounds every wait so
 * the worker notices a stop request within `pollMs`.
 *
 * Each post wakes the main thread, and a wake-up costs far more than the
 * records it brings when they come a few at a time (an exec is three
 * events, a dozen records, spread over a millisecond). So once the socket
 * is empty, a batch waits up to `flushMs` after its first record for more,
 * sleeping rather than receiving. It never delays anyone who waits: a
 * batch that holds an urgent record (a marker) is posted as soon as the
 * receive that got it returns, and while the main thread expects urgent
 * records it has not seen (CONTROL_EXPECT), an empty socket posts the
 * batch at once, as a worker without the wait would.
 *
 * Unicast: the worker registers its own socket as the audit daemon (the
 * kernel sends records to the socket that registered); the registered pid
 * is process.pid, which this thread shares. Multicast: it joins the
 * read-only group AUDIT_NLGRP_READLOG.
 */
import { ContidError } from '../errors.js';
import { parentPort, workerData } from 'node:worker_threads';
import { Errno, SyscallError } from './libc.js';
import {
  AUDIT_NLGRP_READLOG,
  AuditMessageType,
  AuditNetlink,
  MSG_DONTWAIT,
  NLMSG_MIN_TYPE,
} from './netlink.js';
import {
  CONTROL_EXPECT,
  CONTROL_FOREIGN,
  CONTROL_PAUSE,
  CONTROL_STOP,
  type ReaderReport,
  type ReaderWorkerConfig,
} from './reader-protocol.js';

const port = parentPort;
if (port === null)
  throw new ContidError('Cannot start reader-worker.js: it must run as a worker thread', 'ERR_INVALID_STATE');
const config = workerData as ReaderWorkerConfig;
const control = new Int32Array(config.control);

// The batch being filled: payload bytes back to back, plus type and end
// offset of each record. Records are at most 8970 bytes, so a batch of
// 256 fits; the byte bound only matters for a huge maxBatchMessages.
const BATCH_TEXT_BYTES = 1024 * 1024;
const text = Buffer.allocUnsafeSlow(BATCH_TEXT_BYTES);
const types = new Uint16Array(config.maxBatchMessages);
const ends = new Uint32Array(config.maxBatchMessages);
const urgentTypes = new Set(config.urgentTypes);
let count = 0;
let used = 0;
/** When the batch's first record was received. */
let firstAt = 0;
/** The batch holds an urgent record: post it once the current receive returns. */
let urgentInBatch = false;
/** Urgent records received, never counted ahead of CONTROL_EXPECT (see hurried). */
let urgentSeen = 0;
let enobufs = 0;

function report(message: ReaderReport, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer);
}

/** Adds one message to the batch if it is a record. A {@link MessageVisitor}. */
function push(buf: Buffer, type: number, seq: number, start: number, end: number): void {
  // Records have sequence 0; anything else is a late answer to a request.
  // AUDIT_REPLACE is the kernel pinging its daemon whenever someone tries
  // AUDIT_SET pid (including our own unregistration), not a record.
  if (seq !== 0 || type < NLMSG_MIN_TYPE || type === AuditMessageType.REPLACE) return;
  while (end > start && buf[end - 1] === 0) end--;
  if (used + end - start > BATCH_TEXT_BYTES) flush();
  if (count === 0) firstAt = Date.now();
  used += buf.copy(text, used, start, end);
  types[count] = type;
  ends[count] = used;
  count++;
  if (urgentTypes.has(type)) {
    urgentInBatch = true;
    // Never counted ahead of what the main thread announced: an urgent
    // record sent by someone else must not stand for a later one of ours.
    if (((Atomics.load(control, CONTROL_EXPECT) - urgentSeen) | 0) > 0) urgentSeen = (urgentSeen + 1) | 0;
  }
  if (count >= config.maxBatchMessages) flush();
}

/**
 * True while the main thread expects urgent records the worker has not
 * seen. An urgent record sent by someone else while one of ours is on its
 * way counts as ours: ours then waits at most `flushMs`.
 */
function hurried(expected: number): boolean {
  return ((expected - urgentSeen) | 0) > 0;
}

function flush(): void {
  urgentInBatch = false;
  if (count === 0) return;
  const batch = {
    types: types.slice(0, count),
    ends: ends.slice(0, count),
    text: text.buffer.slice(0, used),
  };
  report({ kind: 'batch', batch, enobufs }, [batch.types.buffer, batch.ends.buffer, batch.text]);
  count = 0;
  used = 0;
}

/**
 * One receive; ENOBUFS (the kernel dropped records for us) is counted, not
 * fatal, and so are datagrams from userspace, which are never records.
 */
function receive(net: AuditNetlink, flags: number): number {
  try {
    const count = net.receiveMany(push, flags);
    Atomics.store(control, CONTROL_FOREIGN, net.foreignDatagrams);
    return count;
  } catch (error) {
    if (error instanceof SyscallError && error.errno === Errno.ENOBUFS) {
      enobufs++;
      return 0;
    }
    throw error;
  }
}

function readUntilStopped(net: AuditNetlink): void {
  while (Atomics.load(control, CONTROL_STOP) === 0) {
    if (Atomics.load(control, CONTROL_PAUSE) !== 0) {
      // Leave records in the socket buffer; the kernel holds them there.
      flush();
      Atomics.wait(control, CONTROL_PAUSE, 1, config.pollMs);
      continue;
    }
    if (count === 0) {
      receive(net, 0);
    } else if (receive(net, MSG_DONTWAIT) === 0) {
      // The socket is empty: post the batch if someone waits or it is due,
      // else sleep until it is due or the main thread expects a marker.
      const expected = Atomics.load(control, CONTROL_EXPECT);
      const wait = firstAt + config.flushMs - Date.now();
      // (An urgent record received during a request, by onRecord, is here too.)
      if (wait <= 0 || urgentInBatch || hurried(expected)) flush();
      // At most pollMs, like a receive: a stop request changes another
      // slot, and its notify may come just before this wait begins.
      else Atomics.wait(control, CONTROL_EXPECT, expected, Math.min(wait, config.pollMs));
      continue;
    }
    if (urgentInBatch || (count > 0 && Date.now() - firstAt >= config.flushMs)) flush();
  }
}

/** Reads what the socket already holds, for at most `pollMs`. */
function drain(net: AuditNetlink): void {
  const deadline = Date.now() + config.pollMs;
  while (Date.now() < deadline) {
    if (receive(net, MSG_DONTWAIT) === 0) break;
  }
  flush();
}

// Unregistration is the main thread's job (AuditReader.close), done before
// it stops this worker, so that the drain below gets every record.
let net: AuditNetlink | undefined;
try {
  net = new AuditNetlink({
    groups: config.mode === 'multicast' ? AUDIT_NLGRP_READLOG : 0,
    receiveBufferBytes: config.receiveBufferBytes,
    receiveTimeoutMs: config.pollMs,
    onRecord: (message) => {
      push(message.payload, message.type, message.seq, 0, message.payload.length);
    },
  });
  if (config.mode === 'unicast') net.registerDaemon(process.pid);
  report({ kind: 'ready', fd: net.fd, receiveBufferBytes: net.receiveBufferBytes() });
  readUntilStopped(net);
  drain(net);
  report({ kind: 'closed', enobufs });
} catch (error) {
  flush();
  const message = error instanceof Error ? error.message : String(error);
  report(
    error instanceof SyscallError
      ? { kind: 'error', message, errno: error.errno, enobufs }
      : { kind: 'error', message, enobufs },
  );
} finally {
  net?.close();
}
