/**
 * The assembler's memory of recently closed events: each one's key, time
 * and records, to recognise a record that arrives again (a duplicate) or
 * after its event closed (late).
 *
 * Why not keep the events' record arrays: thousands of closed events, each
 * with its record objects, would stay reachable for a few thousand events
 * after they were written. That is long enough for the collector to copy
 * them, then move them to the old generation, for every event of a log:
 * most of the pipeline's collection time. Here a record is remembered as
 * where its text is (its input buffer and the byte ranges of its fields and
 * enriched part) in typed arrays, and record objects die young. Records
 * that did not come from a parser's bytes are kept as they are.
 *
 * Bounded by events (`maxEvents`) and by records (a ring that grows up to
 * `maxRecords`); past either bound the oldest events are forgotten first.
 */
import { ByteRecord } from '../parse/parser.js';
import type { AuditRecord } from '../parse/record.js';
import { EventKeyMap } from './event-key-map.js';

type Key = number | string;

/** Most records remembered per key (an event and later ones with its key). */
const MAX_PER_KEY = 1024;

export class RecentEvents {
  readonly #maxEvents: number;
  readonly #maxRecords: number;
  /** Key → number of the newest remembered event with that key. */
  readonly #byKey = new EventKeyMap<number>();
  // Events, numbered from 0 in the order remembered; event n is in slot n & #evMask.
  #evKey: (Key | undefined)[];
  #evTime: Float64Array;
  /** Number of the event's first record, and its record count. */
  #evFirst: Float64Array;
  #evCount: Int32Array;
  /** The earlier event remembered with the same key, or -1. */
  #evPrev: Float64Array;
  #evMask: number;
  #evOldest = 0;
  #evNext = 0;
  // Records, numbered from 0; record n is in slot n & #recMask.
  #recType: Int32Array;
  /** Per record: body start and end, enriched start and end (-1 when none). */
  #recRange: Int32Array;
  /** Per record: its input buffer (ByteRecord), or the record itself. */
  #recSrc: (Buffer | AuditRecord | undefined)[];
  #recMask: number;
  #recNext = 0;

  constructor(maxEvents: number, maxRecords = Math.max(maxEvents, 1) * 64) {
    this.#maxEvents = Math.max(1, maxEvents);
    const evSlots = powerOfTwoAtLeast(this.#maxEvents);
    this.#evKey = new Array<Key | undefined>(evSlots).fill(undefined);
    this.#evTime = new Float64Array(evSlots);
    this.#evFirst = new Float64Array(evSlots);
    this.#evCount = new Int32Array(evSlots);
    this.#evPrev = new Float64Array(evSlots);
    this.#evMask = evSlots - 1;
    this.#maxRecords = powerOfTwoAtLeast(Math.max(maxRecords, 16));
    const recSlots = Math.min(this.#maxRecords, powerOfTwoAtLeast(this.#maxEvents * 4));
    this.#recType = new Int32Array(recSlots);
    this.#recRange = new Int32Array(recSlots * 4);
    this.#recSrc = new Array<Buffer | AuditRecord | undefined>(recSlots).fill(undefined);
    this.#recMask = recSlots - 1;
  }

  /** Events remembered. */
  get size(): number {
    return this.#evNext - this.#evOldest;
  }

  /** Whether an event with this key was closed recently. */
  has(key: Key): boolean {
    return this.#byKey.has(key);
  }

  /** The time (ms) of the newest remembered event with this key, or undefined. */
  timeOf(key: Key): number | undefined {
    const n = this.#byKey.get(key);
    return n === undefined ? undefined : this.#evTime[n & this.#evMask]!;
  }

  /** Whether a remembered event with this key has a record with the same type and text. */
  isDuplicate(key: Key, record: AuditRecord): boolean {
    let n = this.#byKey.get(key);
    let checked = 0;
    while (n !== undefined && n >= this.#evOldest && checked < MAX_PER_KEY) {
      const slot = n & this.#evMask;
      const first = this.#evFirst[slot]!;
      const count = this.#evCount[slot]!;
      for (let i = 0; i < count && checked < MAX_PER_KEY; i++, checked++) {
        if (this.#sameAs(first + i, record)) return true;
      }
      const prev = this.#evPrev[slot]!;
      n = prev < 0 ? undefined : prev;
    }
    return false;
  }

  /** Remembers a closed event's records under its key (after any earlier event with that key). */
  remember(key: Key, timeMs: number, records: readonly AuditRecord[]): void {
    const count = Math.min(records.length, MAX_PER_KEY, this.#maxRecords);
    this.#makeRoom(count);
    const prev = this.#byKey.get(key);
    const n = this.#evNext++;
    const slot = n & this.#evMask;
    this.#evKey[slot] = key;
    this.#evTime[slot] = timeMs;
    this.#evFirst[slot] = this.#recNext;
    this.#evCount[slot] = count;
    this.#evPrev[slot] = prev === undefined ? -1 : prev;
    this.#byKey.set(key, n);
    for (let i = 0; i < count; i++) this.#store(records[i]!);
  }

  /** Forgets the oldest events (and grows the record ring) until one more event and `records` more records fit. */
  #makeRoom(records: number): void {
    while (this.#evNext - this.#evOldest >= this.#maxEvents) this.#forgetOldest();
    for (;;) {
      // The records still needed start at the oldest event's first record.
      const kept =
        this.#evNext > this.#evOldest ? this.#recNext - this.#evFirst[this.#evOldest & this.#evMask]! : 0;
      if (kept + records <= this.#recMask + 1) return;
      if (this.#recMask + 1 < this.#maxRecords) this.#growRecords();
      else this.#forgetOldest();
    }
  }

  #forgetOldest(): void {
    const n = this.#evOldest++;
    const slot = n & this.#evMask;
    const key = this.#evKey[slot]!;
    // A newer event with the same key keeps the key (and reaches this one no more).
    if (this.#byKey.get(key) === n) this.#byKey.delete(key);
    this.#evKey[slot] = undefined;
  }

  #growRecords(): void {
    const oldSlots = this.#recMask + 1;
    const slots = oldSlots * 2;
    const type = new Int32Array(slots);
    const range = new Int32Array(slots * 4);
    const src = new Array<Buffer | AuditRecord | undefined>(slots).fill(undefined);
    // Every record still in the old ring moves to its slot in the new one.
    const from = Math.max(0, this.#recNext - oldSlots);
    for (let r = from; r < this.#recNext; r++) {
      const a = r & this.#recMask;
      const b = r & (slots - 1);
      type[b] = this.#recType[a]!;
      for (let k = 0; k < 4; k++) range[b * 4 + k] = this.#recRange[a * 4 + k]!;
      src[b] = this.#recSrc[a];
    }
    this.#recType = type;
    this.#recRange = range;
    this.#recSrc = src;
    this.#recMask = slots - 1;
  }

  #store(record: AuditRecord): void {
    const slot = this.#recNext++ & this.#recMask;
    this.#recType[slot] = record.type;
    const at = slot * 4;
    if (record instanceof ByteRecord) {
      this.#recSrc[slot] = record.src;
      this.#recRange[at] = record.bodyStart;
      this.#recRange[at + 1] = record.bodyEnd;
      this.#recRange[at + 2] = record.enrichedStart;
      this.#recRange[at + 3] = record.enrichedEnd;
    } else {
      this.#recSrc[slot] = record;
    }
  }

  /** Whether remembered record `n` has the same type and text as `b`. */
  #sameAs(n: number, b: AuditRecord): boolean {
    const slot = n & this.#recMask;
    if (this.#recType[slot] !== b.type) return false;
    const src = this.#recSrc[slot];
    if (src === undefined) return false;
    if (!Buffer.isBuffer(src)) {
      const a = src;
      return a.body === b.body && a.enriched === b.enriched;
    }
    const at = slot * 4;
    const bs = this.#recRange[at]!;
    const be = this.#recRange[at + 1]!;
    const es = this.#recRange[at + 2]!;
    const ee = this.#recRange[at + 3]!;
    if (b instanceof ByteRecord) {
      return sameBytes(src, { bodyStart: bs, bodyEnd: be, enrichedStart: es, enrichedEnd: ee }, b);
    }
    return (
      src.toString('utf8', bs, be) === b.body && (es < 0 ? null : src.toString('utf8', es, ee)) === b.enriched
    );
  }
}

interface Ranges {
  readonly bodyStart: number;
  readonly bodyEnd: number;
  readonly enrichedStart: number;
  readonly enrichedEnd: number;
}

/** Whether the body and enriched part at `a` in `src` have the same bytes as record `b`'s. */
function sameBytes(src: Buffer, a: Ranges, b: ByteRecord): boolean {
  if (a.bodyEnd - a.bodyStart !== b.bodyEnd - b.bodyStart) return false;
  if (a.enrichedEnd - a.enrichedStart !== b.enrichedEnd - b.enrichedStart) return false;
  if (src.compare(b.src, b.bodyStart, b.bodyEnd, a.bodyStart, a.bodyEnd) !== 0) return false;
  return (
    a.enrichedStart < 0 ||
    src.compare(b.src, b.enrichedStart, b.enrichedEnd, a.enrichedStart, a.enrichedEnd) === 0
  );
}

function powerOfTwoAtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
