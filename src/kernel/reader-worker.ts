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
let count = 0;
let used = 0;
let lastFlush = Date.now();
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
  used += buf.copy(text, used, start, end);
  types[count] = type;
  ends[count] = used;
  count++;
  if (count >= config.maxBatchMessages) flush();
}

function flush(): void {
  lastFlush = Date.now();
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
    // With records waiting to be posted, only take what is already queued:
    // an empty socket means the batch is complete, so post it now.
    if (receive(net, count > 0 ? MSG_DONTWAIT : 0) === 0) {
      flush();
      continue;
    }
    if (Date.now() - lastFlush >= config.flushMs) flush();
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
