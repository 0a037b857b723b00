/**
 * What the event store takes and gives: its options and the rows its
 * queries return (store.ts).
 */
import type { SpanStart } from './procs.js';
import type { StoreOp } from './row.js';

export interface EventStoreOptions {
  /** Open for reading only (search, ps, report): never creates or writes, except to migrate an old schema. */
  readonly readOnly?: boolean;
  /** Delete events older than this, measured from the newest stored event (ms). */
  readonly maxAgeMs?: number | null;
  /** Keep the database file's used pages under this many bytes by deleting the oldest events. */
  readonly maxBytes?: number | null;
  /** Bound on processes followed at once for `contid ps` (default 1,000,000). */
  readonly maxOpenProcesses?: number;
  /** deflate level of payloads, 1–9 (default 6). */
  readonly compressionLevel?: number;
  /** SQLite busy timeout in ms (default 5000). */
  readonly busyTimeoutMs?: number;
}

/** What one ingest call stored. */
export interface IngestResult {
  readonly events: number;
  /** Payload bytes before compression, and as stored. */
  readonly payloadBytes: number;
  readonly storedBytes: number;
}

/** What one retention pass deleted. */
export interface RetentionResult {
  readonly deletedByAge: number;
  readonly deletedBySize: number;
  /** Pages handed back to the file system by incremental vacuum. */
  readonly vacuumedPages: number;
}

/** The store's size and contents, for `contid store info`. */
export interface StoreInfo {
  readonly path: string;
  readonly schemaVersion: number;
  readonly events: number;
  readonly firstMs: number | null;
  readonly lastMs: number | null;
  readonly containers: number;
  readonly processes: number;
  readonly fileBytes: number;
  readonly walBytes: number;
  readonly usedBytes: number;
  /** The records' text before compression (what an auditd log of them would hold, about). */
  readonly payloadBytes: number;
  readonly storedPayloadBytes: number;
}

/** A stored event as a search returns it. */
export interface StoredEvent {
  readonly id: number;
  readonly timeMs: number;
  /** The chain, `unknown`, or null for the host. */
  readonly contid: string | null;
  readonly data: Buffer;
}

/** A chain (container) and what the store knows of it. */
export interface ChainRow {
  readonly id: number;
  readonly chain: string;
  readonly firstMs: number | null;
  readonly lastMs: number | null;
  readonly events: number;
}

/** A stored CONTAINER_OP: its facts (row.ts), with its row and its event's. */
export interface OpRow extends StoreOp {
  readonly id: number;
  readonly event: number;
  readonly timeMs: number;
}

/** A process span as `contid ps` shows it. */
export interface ProcRow {
  readonly id: number;
  readonly pid: number;
  readonly ppid: number | null;
  readonly chain: number | null;
  readonly exe: string | null;
  /** When this span began (birth, exec, label, new parent). */
  readonly startMs: number;
  readonly how: SpanStart;
  /** When the process began (its fork, or when it was first seen). */
  readonly bornMs: number;
  /** 1 when `bornMs` is its fork, 0 when only when it was first seen. */
  readonly born: number;
  readonly endMs: number | null;
  readonly endHow: string | null;
}

/** Per chain, what happened in a time range (`contid report`). */
export interface ReportRow {
  readonly chain: number | null;
  readonly events: number;
  readonly execs: number;
  readonly failed: number;
  readonly forgeries: number;
  readonly ops: number;
  readonly firstMs: number;
  readonly lastMs: number;
}

/** A count of one value within one chain. */
export interface CountRow {
  readonly chain: number | null;
  readonly text: string;
  readonly count: number;
}
