/**
 * What the audit reader's main thread and its worker (reader-worker.ts)
 * exchange. Kept apart so that neither side imports the other's code.
 *
 * The worker sits in a blocking recv loop and never returns to its event
 * loop, so it cannot receive messages: the main thread steers it through
 * a shared Int32Array instead (stop, pause), and it reports back with
 * postMessage, which needs no event loop on the sending side.
 */

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

/** `workerData` of the reader worker. */
export interface ReaderWorkerConfig {
  readonly mode: AuditReaderMode;
  readonly receiveBufferBytes: number;
  readonly pollMs: number;
  readonly maxBatchMessages: number;
  readonly flushMs: number;
  /** Record types posted as soon as the receive that got them returns (see CONTROL_EXPECT). */
  readonly urgentTypes: readonly number[];
  /** Int32Array of {@link CONTROL_SLOTS} slots, see CONTROL_*. */
  readonly control: SharedArrayBuffer;
}

export { CONTROL_STOP } from './subscriber-protocol.js';
/** Control slot: 1 while the main thread's queue is full; the worker stops reading. */
export const CONTROL_PAUSE = 1;
/**
 * Counter slot, kept by the worker: datagrams from a sender other than the
 * kernel (netlink port id ≠ 0), ignored. Shared memory rather than a
 * report, so that a flood of them costs no messages between threads.
 */
export const CONTROL_FOREIGN = 2;
/**
 * Counter slot, kept by the main thread: urgent records it has caused and
 * waits for (markers it sent). While the worker has seen fewer urgent
 * records than this, it posts a batch as soon as the socket is empty
 * instead of letting it wait for more records; the main thread notifies
 * this slot so that a worker waiting for more records wakes up at once.
 */
export const CONTROL_EXPECT = 3;
export const CONTROL_SLOTS = 4;

/**
 * A batch of records in transferable form: the payloads back to back in
 * `text` (moved, not copied, to the main thread), with each record's type
 * and the end offset of its payload. Cloning one buffer is much cheaper
 * than cloning an array of objects, and decoding each payload on its own
 * gives flat strings that do not keep the whole batch alive.
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

/** Reports from the worker. `enobufs` counts are totals since start. */
export type ReaderReport =
  | { readonly kind: 'ready'; readonly fd: number; readonly receiveBufferBytes: number }
  | { readonly kind: 'batch'; readonly batch: RecordBatch; readonly enobufs: number }
  | { readonly kind: 'closed'; readonly enobufs: number }
  | { readonly kind: 'error'; readonly message: string; readonly errno?: number; readonly enobufs: number };
