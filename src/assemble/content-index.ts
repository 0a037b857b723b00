/**
 * An index of an event's records by a hash of their text, so that telling
 * whether a new record repeats one of them costs the record's own bytes
 * rather than a comparison with each record before it: without it, an
 * event of n records cost n²/2 comparisons (40,000 records with one stamp
 * took 71 s). The assembler builds one only for large events.
 */
import type { AuditRecord } from '../parse/record.js';

/**
 * The hash seed, different in every process: hashes only find records (the
 * output never depends on them), and a seed nobody knows keeps input from
 * choosing records whose hashes collide.
 */
const SEED = (Math.random() * 0x100000000) | 0;

/**
 * The hash of a record of type `type` whose fields are `b[from..to)` and
 * enriched part `b[enriched..enriched + enrichedLength)` (enriched -1: none).
 */
export function hashText(
  b: Uint8Array,
  type: number,
  from: number,
  to: number,
  enriched: number,
  enrichedLength: number,
): number {
  let h = Math.imul(SEED ^ type, 0x01000193);
  for (let i = from; i < to; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  if (enriched >= 0) {
    h = Math.imul(h ^ 0x1d, 0x01000193);
    const end = enriched + enrichedLength;
    for (let i = enriched; i < end; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  }
  return h;
}

/** A hash of a record's type and text (fields and enriched part). */
export function contentHash(r: AuditRecord): number {
  const e = r.enrichedStart;
  return hashText(r.src, r.type, r.bodyStart, r.bodyEnd, e, e < 0 ? 0 : r.enrichedEnd - e);
}

/** Whether two records have the same text (fields and enriched part). */
export function sameContent(a: AuditRecord, b: AuditRecord): boolean {
  const body = a.bodyEnd - a.bodyStart;
  if (body !== b.bodyEnd - b.bodyStart) return false;
  if (a.enrichedEnd - a.enrichedStart !== b.enrichedEnd - b.enrichedStart) return false;
  if (!sameBytes(a.src, a.bodyStart, b.src, b.bodyStart, body)) return false;
  return (
    a.enrichedStart < 0 ||
    sameBytes(a.src, a.enrichedStart, b.src, b.enrichedStart, a.enrichedEnd - a.enrichedStart)
  );
}

/** Bytes compared in a loop before a native comparison takes the rest. */
const SAME_BYTES_HEAD = 64;

/**
 * Whether `a[at..at+len)` and `b[bt..bt+len)` are equal. Records of one
 * event that are not duplicates (the PATH records of one syscall, of one
 * length) mostly differ in their first bytes (`item=0`, `item=1`): a loop
 * finds that in a few steps, where a native comparison costs a call into
 * the runtime, with its argument checks, whatever the answer. Equal heads
 * go on natively.
 */
function sameBytes(a: Buffer, at: number, b: Buffer, bt: number, len: number): boolean {
  const head = len < SAME_BYTES_HEAD ? len : SAME_BYTES_HEAD;
  for (let i = 0; i < head; i++) if (a[at + i] !== b[bt + i]) return false;
  return head === len || a.compare(b, bt + head, bt + len, at + head, at + len) === 0;
}

/** Records of one event by content hash; records are added in order and never removed. */
export class ContentIndex {
  /** Hash → index of the latest record with that hash. */
  readonly #latest = new Map<number, number>();
  /** Per record: the index of the previous record with the same hash, or -1. */
  readonly #previous: number[] = [];

  /** Adds records[i] (every record before it must have been added). */
  add(records: readonly AuditRecord[], i: number): void {
    const h = contentHash(records[i]!);
    this.#previous.push(this.#latest.get(h) ?? -1);
    this.#latest.set(h, i);
  }

  /** Whether `records` (those added) has one with the same type and text as `record`. */
  has(records: readonly AuditRecord[], record: AuditRecord): boolean {
    let i = this.#latest.get(contentHash(record)) ?? -1;
    while (i >= 0) {
      const r = records[i]!;
      if (r.type === record.type && sameContent(r, record)) return true;
      i = this.#previous[i]!;
    }
    return false;
  }
}
