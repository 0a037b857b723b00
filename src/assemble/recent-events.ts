/**
 * The assembler's memory of recently closed events: each one's key, time
 * and records, to recognise a record that arrives again (a duplicate) or
 * after its event closed (late).
 *
 * Why not keep the events' record arrays: thousands of closed events, each
 * with its record objects, would stay reachable for a few thousand events
 * after they were written. That is long enough for the collector to copy
 * them, then move them to the old generation, for every event of a log:
 * most of the pipeline's collection time. Keeping just their input buffers
 * has the same effect on those buffers, which are outside V8's heap: once
 * moved to the old generation, dead ones wait for a full collection, tens
 * of megabytes of them. Here a record is remembered as a copy of its text
 * (fields and enriched part) in one reused byte arena, with its type and
 * lengths in typed arrays, so that record objects and input buffers die
 * young. The copies are made a run of input at a time: the arena holds the
 * recent input of one buffer as it is, lines between events included, so
 * that a buffer takes a few copies rather than one per event (see #runSrc).
 *
 * Bounded by events (`maxEvents`), by records (a ring that grows up to
 * `maxRecords`) and by bytes (an arena that grows up to `maxBytes`); past
 * any bound the oldest events are forgotten first.
 */
import type { AuditRecord } from '../parse/record.js';
import { contentHash, hashText } from './content-index.js';
import { EventKeyMap } from './event-key-map.js';
import { bytesEqual } from '../bytes.js';

type Key = number | string;

/**
 * Most bytes of other lines a run takes in to hold an event. They are
 * mostly records of events still open, which will be remembered in turn
 * (records of events on several CPUs interleave), so a run reaches over
 * them rather than ending.
 */
const MAX_RUN_GAP = 64 << 10;

/** Most records remembered per key (an event and later ones with its key). */
const MAX_PER_KEY = 1024;

/**
 * Most remembered records a new record is compared with: the newest with
 * its key. Enough for any event the kernel writes; a bound so that records
 * arriving again and again after a huge event closed cost a few steps each,
 * not the whole event (a record beyond it is kept as a late one, not lost).
 */
const MAX_COMPARED = 64;

/**
 * A key whose walk in isDuplicate passed this many records keeps the hashes
 * of its newest records in a ring of its own (see HotKey).
 */
const HOT_AFTER = 16;
/** Keys with a ring at a time; past it the oldest loses its own. */
const MAX_HOT_KEYS = 64;
/**
 * Hashes in a ring: enough to hold every record the walk may compare (up to
 * MAX_COMPARED, each event's first ones), as each event adds its first
 * MAX_COMPARED at most.
 */
const RING = 2 * MAX_COMPARED;

/**
 * The hashes of a key's newest remembered records (each event's first
 * MAX_COMPARED), whatever events came between: a superset of the records
 * isDuplicate compares. A record whose hash is in none of them is no
 * duplicate, found by one scan of a small array rather than a walk through
 * as many events (late records of one large event, each an event of its
 * own under the same key, made the walk most of their cost).
 */
interface HotKey {
  readonly hashes: Int32Array;
  next: number;
}

export class RecentEvents {
  readonly #maxEvents: number;
  readonly #maxRecords: number;
  readonly #maxBytes: number;
  /** Key → number of the newest remembered event with that key. */
  readonly #byKey = new EventKeyMap<number>();
  /** Keys with a ring of hashes (see HotKey), oldest first. */
  readonly #hot = new Map<Key, HotKey>();
  // Events, numbered from 0 in the order remembered; event n is in slot n & #evMask.
  #evKey: (Key | undefined)[];
  #evTime: Float64Array;
  /** Number of the event's first record, and its record count. */
  #evFirst: Float64Array;
  #evCount: Int32Array;
  /** Where the event's first byte is in the arena (absolute, see #arenaNext). */
  #evBytes: Float64Array;
  /** The earlier event remembered with the same key, or -1. */
  #evPrev: Float64Array;
  #evMask: number;
  #evOldest = 0;
  #evNext = 0;
  // Records, numbered from 0; record n is in slot n & #recMask.
  /** The record's type; -1 for one too large to keep (it matches nothing). */
  #recType: Int32Array;
  /**
   * Where its fields are in the arena (absolute) and their length; where its
   * enriched part starts, counted from its fields', and its length (-1: none).
   */
  #recAt: Float64Array;
  #recBody: Int32Array;
  #recGap: Int32Array;
  #recEnriched: Int32Array;
  /** A hash of the record's text (contentHash), made when first compared; 0 until then. */
  #recHash: Int32Array;
  #recMask: number;
  #recNext = 0;
  /**
   * Copies of the records' text. Positions are absolute (they only grow);
   * byte n is at n & #arenaMask. A record never wraps around the end: it
   * starts at the next lap instead.
   */
  #arena: Uint8Array;
  #arenaMask: number;
  #arenaNext = 0;
  /**
   * The pending run: `#runSrc[#runFrom..#runTo)` belongs at arena position
   * `#runAt` on, and is not copied yet. Consecutive events of one input
   * buffer are laid out in the arena as they are in the buffer (the lines
   * between them included), so that they take one copy, made when the run
   * ends (another buffer, a lap, a gap) or before the arena is read: one
   * per input buffer, rather than one per event.
   */
  #runSrc: Buffer | null = null;
  #runFrom = 0;
  #runTo = 0;
  #runAt = 0;

  constructor(maxEvents: number, maxRecords = Math.max(maxEvents, 1) * 64, maxBytes = 64 << 20) {
    this.#maxEvents = Math.max(1, maxEvents);
    const evSlots = powerOfTwoAtLeast(this.#maxEvents);
    this.#evKey = new Array<Key | undefined>(evSlots).fill(undefined);
    this.#evTime = new Float64Array(evSlots);
    this.#evFirst = new Float64Array(evSlots);
    this.#evCount = new Int32Array(evSlots);
    this.#evBytes = new Float64Array(evSlots);
    this.#evPrev = new Float64Array(evSlots);
    this.#evMask = evSlots - 1;
    this.#maxRecords = powerOfTwoAtLeast(Math.max(maxRecords, 16));
    const recSlots = Math.min(this.#maxRecords, powerOfTwoAtLeast(this.#maxEvents * 4));
    this.#recType = new Int32Array(recSlots);
    this.#recAt = new Float64Array(recSlots);
    this.#recBody = new Int32Array(recSlots);
    this.#recGap = new Int32Array(recSlots);
    this.#recEnriched = new Int32Array(recSlots);
    this.#recHash = new Int32Array(recSlots);
    this.#recMask = recSlots - 1;
    this.#maxBytes = powerOfTwoAtLeast(Math.max(maxBytes, 1024));
    const bytes = Math.min(this.#maxBytes, powerOfTwoAtLeast(this.#maxEvents * 1024));
    this.#arena = new Uint8Array(bytes);
    this.#arenaMask = bytes - 1;
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
    if (n !== undefined) this.#flush();
    let checked = 0;
    // Compared by hash first (the new record's once, each remembered one's
    // once ever), so that each comparison costs a few steps, not the text.
    const h = n !== undefined ? nonZero(contentHash(record)) : 0;
    if (h !== 0) {
      const hot = this.#hot.get(key);
      if (hot !== undefined && !ringHas(hot.hashes, h)) return false;
    }
    const head = n;
    while (n !== undefined && n >= this.#evOldest && checked < MAX_COMPARED) {
      const slot = n & this.#evMask;
      const first = this.#evFirst[slot]!;
      const count = this.#evCount[slot]!;
      for (let i = 0; i < count && checked < MAX_COMPARED; i++, checked++) {
        if (h !== 0) {
          const known = this.#hashOf(first + i);
          if (known !== 0 && known !== h) continue;
        }
        if (this.#sameAs(first + i, record)) return true;
      }
      const prev = this.#evPrev[slot]!;
      n = prev < 0 ? undefined : prev;
    }
    if (checked >= HOT_AFTER && head !== undefined && !this.#hot.has(key)) this.#makeHot(key, head);
    return false;
  }

  /** Gives `key` (newest event `head`) a ring of its newest records' hashes, unless one cannot be known. */
  #makeHot(key: Key, head: number): void {
    const found: number[] = [];
    for (let n = head; n >= this.#evOldest && found.length < RING;) {
      const slot = n & this.#evMask;
      const first = this.#evFirst[slot]!;
      const count = Math.min(this.#evCount[slot]!, MAX_COMPARED);
      for (let i = 0; i < count && found.length < RING; i++) {
        const h = this.#hashOf(first + i);
        if (h === 0) return; // a record too large to keep
        found.push(h);
      }
      const prev = this.#evPrev[slot]!;
      if (prev < 0) break;
      n = prev;
    }
    if (this.#hot.size >= MAX_HOT_KEYS) this.#hot.delete(this.#hot.keys().next().value!);
    const hashes = new Int32Array(RING);
    // Oldest first, so that the newest are overwritten last.
    for (let i = 0; i < found.length; i++) hashes[i] = found[found.length - 1 - i]!;
    this.#hot.set(key, { hashes, next: found.length % RING });
  }

  /** Adds an event's records to its key's ring, if it has one. */
  #toRing(key: Key, records: readonly AuditRecord[], count: number): void {
    const hot = this.#hot.get(key);
    if (hot === undefined) return;
    const n = Math.min(count, MAX_COMPARED);
    for (let i = 0; i < n; i++) {
      hot.hashes[hot.next] = nonZero(contentHash(records[i]!));
      hot.next = (hot.next + 1) % RING;
    }
  }

  /** Remembers a closed event's records under its key (after any earlier event with that key). */
  remember(key: Key, timeMs: number, records: readonly AuditRecord[]): void {
    const count = Math.min(records.length, MAX_PER_KEY, this.#maxRecords);
    // The usual event is lines of the input buffer the pending run is laid
    // out from, in it or after it: it takes no copy of its own. Otherwise,
    // when its records are consecutive lines of one buffer, they start a
    // new run; else each record takes a copy.
    let own = 0;
    for (let i = 0; i < count; i++) own += extentOf(records[i]!);
    const runEnd = this.#runSrc === null ? -1 : this.#coverableTo(records, count, own);
    let span = -1;
    if (runEnd < 0) {
      this.#flush();
      span = spanOf(records, count);
      // Not when other lines between them would take much more than their own text.
      if (span > own + MAX_RUN_GAP) span = -1;
    }
    const bytes = runEnd >= 0 ? runEnd - this.#runTo : span < 0 ? own : span;
    // Each copy may skip to the arena's next lap: room for twice the text covers it.
    this.#makeRoom(count, Math.min(2 * bytes, this.#maxBytes));
    let covered = runEnd >= 0 && this.#runSrc !== null; // (growing the arena copies the run)
    if (covered) {
      // The run grows to the event's end if that stays within the lap and the arena.
      const size = this.#arenaMask + 1;
      const end = this.#runAt + (runEnd - this.#runFrom);
      if (end > this.#arenaNext) {
        const eventStart =
          this.#evNext > this.#evOldest ? this.#evBytes[this.#evOldest & this.#evMask]! : this.#runAt;
        if ((this.#runAt % size) + (runEnd - this.#runFrom) > size || end - eventStart > size) {
          covered = false;
        } else {
          this.#arenaNext = end;
          this.#runTo = runEnd;
        }
      }
    }
    if (!covered) {
      this.#flush();
      if (runEnd >= 0) {
        span = spanOf(records, count);
        if (span > own + MAX_RUN_GAP) span = -1;
      }
    }
    const prev = this.#byKey.get(key);
    if (this.#hot.size > 0) this.#toRing(key, records, count);
    const n = this.#evNext++;
    const slot = n & this.#evMask;
    this.#evKey[slot] = key;
    this.#evTime[slot] = timeMs;
    this.#evFirst[slot] = this.#recNext;
    this.#evCount[slot] = count;
    this.#evPrev[slot] = prev === undefined ? -1 : prev;
    this.#byKey.set(key, n);
    const eventStart = this.#arenaNext;
    if (!covered && span >= 0) {
      const first = records[0]!;
      const at = this.#place(span, eventStart);
      if (at >= 0) {
        this.#runSrc = first.src;
        this.#runFrom = first.bodyStart;
        this.#runTo = first.bodyStart + span;
        this.#runAt = at;
        covered = true;
      }
    }
    if (covered) {
      // Its bytes are kept while the run's are: the event counts from the run's start.
      this.#evBytes[slot] = this.#runAt;
      for (let i = 0; i < count; i++) {
        const r = records[i]!;
        this.#note(r, this.#runAt + (r.bodyStart - this.#runFrom));
      }
      return;
    }
    this.#evBytes[slot] = eventStart;
    for (let i = 0; i < count; i++) this.#store(records[i]!, eventStart);
  }

  /**
   * How far the pending run must reach in its buffer to hold these records
   * (its end as it is when they are in it already), or -1 when they cannot
   * be in it: another buffer, before its start, or after it past lines
   * that take more than their own text.
   */
  #coverableTo(records: readonly AuditRecord[], count: number, own: number): number {
    const src = this.#runSrc;
    let end = this.#runTo;
    for (let i = 0; i < count; i++) {
      const r = records[i]!;
      if (r.src !== src || r.bodyStart < this.#runFrom) return -1;
      const e = r.enrichedStart < 0 ? r.bodyEnd : r.enrichedEnd;
      if (e > end) end = e;
    }
    return end - this.#runTo > own + MAX_RUN_GAP ? -1 : end;
  }

  /** Copies the pending run into the arena. */
  #flush(): void {
    const src = this.#runSrc;
    if (src === null) return;
    this.#runSrc = null;
    src.copy(this.#arena, this.#runAt % (this.#arenaMask + 1), this.#runFrom, this.#runTo);
  }

  /**
   * Takes `len` bytes of arena for the event whose bytes start at
   * `eventStart`: their absolute position, or -1 when they would cover the
   * event's own first bytes (an event larger than the whole arena).
   */
  #place(len: number, eventStart: number): number {
    const size = this.#arenaMask + 1;
    let at = this.#arenaNext;
    if ((at % size) + len > size) at += size - (at % size); // the next lap: never across the end
    if (at + len - eventStart > size) return -1;
    this.#arenaNext = at + len;
    return at;
  }

  /**
   * Forgets the oldest events (and grows the record ring and the arena)
   * until one more event with `records` records and `bytes` bytes fits.
   */
  #makeRoom(records: number, bytes: number): void {
    while (this.#evNext - this.#evOldest >= this.#maxEvents) this.#forgetOldest();
    for (;;) {
      // The records and bytes still needed start at the oldest event's first.
      const any = this.#evNext > this.#evOldest;
      const oldest = this.#evOldest & this.#evMask;
      const keptRecords = any ? this.#recNext - this.#evFirst[oldest]! : 0;
      const keptBytes = any ? this.#arenaNext - this.#evBytes[oldest]! : 0;
      const recordsFit = keptRecords + records <= this.#recMask + 1;
      const bytesFit = keptBytes + bytes <= this.#arenaMask + 1;
      if (recordsFit && bytesFit) return;
      if (!recordsFit && this.#recMask + 1 < this.#maxRecords) this.#growRecords();
      else if (!bytesFit && this.#arenaMask + 1 < this.#maxBytes) this.#growArena();
      else if (any) this.#forgetOldest();
      else return; // an event larger than the arena: #store keeps what fits
    }
  }

  #forgetOldest(): void {
    const n = this.#evOldest++;
    const slot = n & this.#evMask;
    const key = this.#evKey[slot]!;
    // A newer event with the same key keeps the key (and reaches this one no more).
    if (this.#byKey.get(key) === n) {
      this.#byKey.delete(key);
      this.#hot.delete(key);
    }
    this.#evKey[slot] = undefined;
  }

  #growRecords(): void {
    const oldSlots = this.#recMask + 1;
    const slots = oldSlots * 2;
    const type = new Int32Array(slots);
    const at = new Float64Array(slots);
    const body = new Int32Array(slots);
    const gap = new Int32Array(slots);
    const enriched = new Int32Array(slots);
    const hash = new Int32Array(slots);
    // Every record still in the old ring moves to its slot in the new one.
    for (let r = Math.max(0, this.#recNext - oldSlots); r < this.#recNext; r++) {
      const a = r & this.#recMask;
      const b = r & (slots - 1);
      type[b] = this.#recType[a]!;
      at[b] = this.#recAt[a]!;
      body[b] = this.#recBody[a]!;
      gap[b] = this.#recGap[a]!;
      enriched[b] = this.#recEnriched[a]!;
      hash[b] = this.#recHash[a]!;
    }
    this.#recType = type;
    this.#recAt = at;
    this.#recBody = body;
    this.#recGap = gap;
    this.#recEnriched = enriched;
    this.#recHash = hash;
    this.#recMask = slots - 1;
  }

  /**
   * Doubles the arena. Positions stay as they are: a record that did not
   * cross a lap of the old size crosses none of the new one, and the bytes
   * still needed span less than the old size, so none overlap.
   */
  #growArena(): void {
    this.#flush();
    const old = this.#arena;
    const oldMask = this.#arenaMask;
    const size = (oldMask + 1) * 2;
    const arena = new Uint8Array(size);
    if (this.#evNext > this.#evOldest) {
      const from = this.#evFirst[this.#evOldest & this.#evMask]!;
      for (let r = from; r < this.#recNext; r++) {
        const slot = r & this.#recMask;
        if (this.#recType[slot] === -1) continue;
        const at = this.#recAt[slot]!;
        const enriched = this.#recEnriched[slot]!;
        const len = enriched < 0 ? this.#recBody[slot]! : this.#recGap[slot]! + enriched;
        const src = at % (oldMask + 1);
        arena.set(old.subarray(src, src + len), at % size);
      }
    }
    this.#arena = arena;
    this.#arenaMask = size - 1;
  }

  /** Stores one record of the event whose bytes start at `eventStart`, in a copy of its own. */
  #store(record: AuditRecord, eventStart: number): void {
    const len = extentOf(record);
    const at = this.#place(len, eventStart);
    if (at >= 0) copyInto(this.#arena, at % (this.#arenaMask + 1), record.src, record.bodyStart, len);
    this.#note(record, at);
  }

  /** Notes a record whose text was copied to arena position `at` (-1: not kept, it matches nothing). */
  #note(record: AuditRecord, at: number): void {
    const slot = this.#recNext++ & this.#recMask;
    this.#recType[slot] = at < 0 ? -1 : record.type;
    this.#recAt[slot] = at;
    this.#recBody[slot] = record.bodyEnd - record.bodyStart;
    this.#recGap[slot] = record.enrichedStart < 0 ? -1 : record.enrichedStart - record.bodyStart;
    this.#recEnriched[slot] = record.enrichedStart < 0 ? -1 : record.enrichedEnd - record.enrichedStart;
    this.#recHash[slot] = 0;
  }

  /**
   * The contentHash of remembered record `n` (made now if it was not), or 0
   * when it has none to compare with: not kept.
   */
  #hashOf(n: number): number {
    const slot = n & this.#recMask;
    const known = this.#recHash[slot]!;
    if (known !== 0) return known;
    const type = this.#recType[slot]!;
    if (type === -1) return 0;
    const size = this.#arenaMask + 1;
    const p = this.#recAt[slot]! % size;
    const enriched = this.#recEnriched[slot]!;
    const h = nonZero(
      hashText(
        this.#arena,
        type,
        p,
        p + this.#recBody[slot]!,
        enriched < 0 ? -1 : p + this.#recGap[slot]!,
        enriched,
      ),
    );
    this.#recHash[slot] = h;
    return h;
  }

  /** Whether remembered record `n` has the same type and text as `b`. */
  #sameAs(n: number, b: AuditRecord): boolean {
    const slot = n & this.#recMask;
    if (this.#recType[slot] !== b.type) return false;
    const p = this.#recAt[slot]! % (this.#arenaMask + 1);
    const body = this.#recBody[slot]!;
    const enriched = this.#recEnriched[slot]!;
    const arena = this.#arena;
    if (b.bodyEnd - b.bodyStart !== body) return false;
    if ((b.enrichedStart < 0 ? -1 : b.enrichedEnd - b.enrichedStart) !== enriched) return false;
    if (!bytesEqual(arena, p, b.src, b.bodyStart, body)) return false;
    return enriched < 0 || bytesEqual(arena, p + this.#recGap[slot]!, b.src, b.enrichedStart, enriched);
  }
}

/** The bytes of a record's text: its fields, through its enriched part when it has one. */
function extentOf(r: AuditRecord): number {
  return (r.enrichedStart < 0 ? r.bodyEnd : r.enrichedEnd) - r.bodyStart;
}

/**
 * The length of the text from the first record's fields to the last one's
 * end when the first `count` records are of one buffer, each after the one
 * before (lines in order); -1 otherwise.
 */
function spanOf(records: readonly AuditRecord[], count: number): number {
  if (count === 0) return -1;
  const first = records[0]!;
  let end = first.bodyStart;
  for (let i = 0; i < count; i++) {
    const r = records[i]!;
    if (r.src !== first.src || r.bodyStart < end) return -1;
    end = r.enrichedStart < 0 ? r.bodyEnd : r.enrichedEnd;
  }
  return end - first.bodyStart;
}

/** Records up to this size are copied in a loop (see copyInto). */
const LOOP_COPY_MAX = 256;

/**
 * Copies `src[from..from+len)` to `dst` at `at`. A record copied on its
 * own (its event's records are far apart in the input: events interleaved
 * by the thousand) is short, and Buffer#copy costs about as much as a loop
 * over 60 bytes before it copies any: it makes a view of the source, which
 * is garbage that the collector must make room for while many events are
 * open. Longer records go natively.
 */
function copyInto(dst: Uint8Array, at: number, src: Buffer, from: number, len: number): void {
  if (len > LOOP_COPY_MAX) {
    src.copy(dst, at, from, from + len);
    return;
  }
  for (let i = 0; i < len; i++) dst[at + i] = src[from + i]!;
}

/** Whether `hashes` holds `h`. */
function ringHas(hashes: Int32Array, h: number): boolean {
  for (let i = 0; i < hashes.length; i++) if (hashes[i] === h) return true;
  return false;
}

/** A hash as the hashes above hold it: 0 means "none yet". */
function nonZero(h: number): number {
  return h === 0 ? 1 : h;
}

function powerOfTwoAtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
