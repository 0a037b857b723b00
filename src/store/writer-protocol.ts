/**
 * Messages between StoreWriter (the thread that produces events) and the
 * worker thread that owns the EventStore (writer-worker.ts).
 */
import type { StoreErrorCode } from './errors.js';
import type { RetentionResult, StoreInfo } from './store.js';
import type { StoreRow } from './row.js';

/** What the worker is started with (workerData). */
export interface WriterWorkerConfig {
  readonly path: string;
  readonly maxAgeMs: number | null;
  readonly maxBytes: number | null;
  readonly maxOpenProcesses: number | null;
  readonly compressionLevel: number | null;
  /** Least time between retention passes, wall clock. */
  readonly retainEveryMs: number;
}

/** A StoreError crossing the thread boundary. */
export interface WireError {
  readonly code: StoreErrorCode;
  readonly message: string;
}

export type ToWorker =
  | { readonly type: 'rows'; readonly seq: number; readonly rows: readonly StoreRow[] }
  | { readonly type: 'flush'; readonly seq: number }
  | { readonly type: 'retain'; readonly seq: number }
  | { readonly type: 'close' };

export type FromWorker =
  | { readonly type: 'ready'; readonly info: StoreInfo }
  | { readonly type: 'open-failed'; readonly error: WireError }
  /** A `rows` message is done: stored, or lost with `error`. */
  | {
      readonly type: 'ack';
      readonly seq: number;
      readonly events: number;
      readonly payloadBytes: number;
      readonly storedBytes: number;
      readonly error: WireError | null;
    }
  | { readonly type: 'flushed'; readonly seq: number }
  | { readonly type: 'retained'; readonly result: RetentionResult | null; readonly error: WireError | null }
  | { readonly type: 'closed'; readonly error: WireError | null };
