/**
 * The names of one JSON object as the writer fills it from a record's bytes,
 * for the `#N` suffix that keeps a repeated name's later values: the first
 * `key`, then `key#2`, `key#3`, each the smallest suffix not already a name
 * of the object (a record may itself have a field called `key#2`), so that
 * no two keys are equal and JSON's last-key-wins rule loses nothing.
 *
 * An open-addressing table (linear probing) of the names so far, emptied by
 * a stamp per object. Each name costs its own bytes, whatever the object
 * holds: a message of n copies of `a=1` costs n steps, not n²/2. The
 * hashes are seeded per process (see NAME_SEED), so input cannot choose
 * names that collide.
 */

import { nextField } from '../parse/fields.js';

/** The seed of name hashes: a different one in every process (output never depends on it). */
export const NAME_SEED = (Math.random() * 0x100000000) | 0;
/** One step of the name hash (FNV-1a's multiplier). */
export const NAME_PRIME = 0x01000193;

const HASH = 0x23; // '#'
const BUCKETS = 4096;

/** The decimal digits of a suffix (at most 10): no string is made for each. */
const digits = new Uint8Array(10);

/** How many decimal digits m (> 0, a suffix: at most the fields of a record) has. */
function digitCount(m: number): number {
  return m < 10 ? 1 : m < 100 ? 2 : m < 1000 ? 3 : m < 10000 ? 4 : m < 100000 ? 5 : String(m).length;
}

/** Writes the digits of m (> 0) to `digits`; returns how many. */
function digitsOf(m: number): number {
  const n = digitCount(m);
  for (let i = n - 1, x = m; i >= 0; i--, x = (x / 10) | 0) digits[i] = 0x30 + (x % 10);
  return n;
}

/** The hash of `name#m` from the hash `h` of `name`. */
function suffixedHash(h: number, m: number): number {
  let x = Math.imul(h ^ HASH, NAME_PRIME);
  if (m < 100) {
    // The usual suffixes, one or two digits, without writing them out.
    if (m >= 10) x = Math.imul(x ^ (0x30 + ((m / 10) | 0)), NAME_PRIME);
    return Math.imul(x ^ (0x30 + (m % 10)), NAME_PRIME);
  }
  const n = digitsOf(m);
  for (let i = 0; i < n; i++) x = Math.imul(x ^ digits[i]!, NAME_PRIME);
  return x;
}

/** The bytes a suffix adds to a name: `#` and its digits, or nothing for 0. */
/** Whether `src[from..to)` has a `#`. */
function indexOfHash(src: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (src[i] === HASH) return true;
  return false;
}

function suffixLength(m: number): number {
  return m === 0 ? 0 : digitCount(m) + 1;
}

/** Byte `i` of the name `src[start..start+len)` followed by `#m` (m > 0: its digits in `digits`). */
function byteAt(src: Uint8Array, start: number, len: number, i: number): number {
  if (i < len) return src[start + i]!;
  return i === len ? HASH : digits[i - len - 1]!;
}

/** Slot layout in the table: each slot's ints together, so that a probe reads one cache line. */
const STAMP = 0;
const HASH_OF = 1;
const START = 2;
const LEN = 3;
/** 0: the name as written; m: `name#m`. */
const SUFFIX = 4;
/** For a name, the next suffix to try for its next copy. */
const NEXT = 5;
const SLOT = 8;

export class FieldNames {
  readonly #mask: number;
  readonly #slots: Int32Array;
  #current = 0;
  #src: Uint8Array = new Uint8Array(0);
  /** The fields text the names are read from, and whether it is a user message's (see begin). */
  #from = 0;
  #end = 0;
  #nested = false;
  /**
   * Most objects repeat no name, and a table insert per name costs more
   * than the rest of writing it. So a name first only stamps its bucket of
   * hashes; the first name whose bucket is taken (a repeat, or two names
   * sharing a bucket) puts the names before it into the table, read again
   * from the fields text, once per object.
   */
  readonly #bucket = new Int32Array(BUCKETS);
  /** Names added to the current object. */
  #count = 0;
  #tabled = false;
  /**
   * Whether a name of the current object has a `#`. Until one has, no
   * name can be `name#m`, so a repeat's suffix is its name's next one and
   * is not put in the table (a hostile record repeats one name thousands
   * of times, each insert a cache miss). The first name with a `#` puts
   * the names so far into the table again, suffixes included (#suffixed).
   */
  #anyHash = false;
  readonly #range = new Int32Array(4);

  /** A table for objects of at most `maxNames` names. */
  constructor(maxNames: number) {
    let size = 16;
    while (size < 2 * maxNames + 2) size *= 2;
    this.#mask = size - 1;
    this.#slots = new Int32Array(size * SLOT);
  }

  /**
   * Starts a new object whose names are those of the fields of
   * `src[from..end)`, in order, as nextField reads them (`nested`: a user
   * message's text, whose names may start with a `(` that is not theirs).
   * add() must be given each of those names in turn, from the first.
   */
  begin(src: Uint8Array, from: number, end: number, nested: boolean): void {
    this.#src = src;
    this.#from = from;
    this.#end = end;
    this.#nested = nested;
    this.#current = (this.#current + 1) | 0;
    if (this.#current === 0) {
      this.#slots.fill(0);
      this.#bucket.fill(0);
      this.#current = 1;
    }
    this.#count = 0;
    this.#tabled = false;
    this.#anyHash = false;
  }

  /**
   * Adds the name `src[from..to)` (the next field's), whose hash
   * (NAME_SEED, NAME_PRIME) is `h`; returns 0 to write it as it is, or the
   * suffix m to write `name#m`.
   */
  add(from: number, to: number, h: number): number {
    if (!this.#anyHash && indexOfHash(this.#src, from, to)) this.#suffixed();
    if (!this.#tabled) {
      const b = (h ^ (h >>> 12)) & (BUCKETS - 1);
      if (this.#bucket[b] !== this.#current) {
        this.#bucket[b] = this.#current;
        this.#count++;
        return 0;
      }
      this.#tabled = true;
      this.#tableNamesSoFar();
    }
    this.#count++;
    return this.#add(from, to, h);
  }

  /** A name with a `#` comes: from now on suffixes are in the table, those given so far too. */
  #suffixed(): void {
    this.#anyHash = true;
    if (!this.#tabled) return; // no repeat yet, so no suffix
    this.#current = (this.#current + 1) | 0;
    if (this.#current === 0) {
      this.#slots.fill(0);
      this.#bucket.fill(0);
      this.#current = 1;
    }
    this.#tableNamesSoFar();
  }

  /** Puts the names added so far into the table: the first #count fields' names. */
  #tableNamesSoFar(): void {
    const src = this.#src;
    const range = this.#range;
    let i = this.#from;
    for (let n = 0; n < this.#count; n++) {
      i = nextField(src, i, this.#end, range, this.#nested);
      if (i < 0) break; // (cannot happen: each name added was a field's)
      let ns = range[0]!;
      const ne = range[1]!;
      if (this.#nested && src[ns] === 0x28 /* ( */) ns++;
      let h = NAME_SEED;
      for (let k = ns; k < ne; k++) h = Math.imul(h ^ src[k]!, NAME_PRIME);
      this.#add(ns, ne, h);
    }
  }

  #add(from: number, to: number, h: number): number {
    // One probe for the usual new name: where the search ends, it goes.
    const slots = this.#slots;
    const len = to - from;
    const current = this.#current;
    let k = (h ^ (h >>> 16)) & this.#mask;
    for (; slots[k * SLOT + STAMP] === current; k = (k + 1) & this.#mask) {
      const at = k * SLOT;
      if (slots[at + HASH_OF] === h && slots[at + LEN]! + suffixLength(slots[at + SUFFIX]!) === len) {
        if (this.#same(at, from, to, 0)) return this.#repeat(at, from, to, h);
      }
    }
    this.#fill(k * SLOT, h, from, to, 0);
    return 0;
  }

  /** A name already in the object (slot at `at`): its next free suffix, added as a name too. */
  #repeat(at: number, from: number, to: number, h: number): number {
    const slots = this.#slots;
    let m = slots[at + NEXT]!;
    if (!this.#anyHash) {
      slots[at + NEXT] = m + 1;
      return m;
    }
    let hm = suffixedHash(h, m);
    let found = this.#find(hm, from, to, m);
    while (found >= 0) {
      hm = suffixedHash(h, ++m);
      found = this.#find(hm, from, to, m);
    }
    slots[at + NEXT] = m + 1;
    // The free name goes where the search for it ended.
    this.#fill(-1 - found, hm, from, to, m);
    return m;
  }

  #fill(at: number, h: number, from: number, to: number, suffix: number): void {
    const slots = this.#slots;
    slots[at + STAMP] = this.#current;
    slots[at + HASH_OF] = h;
    slots[at + START] = from;
    slots[at + LEN] = to - from;
    slots[at + SUFFIX] = suffix;
    slots[at + NEXT] = 2;
  }

  /**
   * Where the name `src[from..to)` with suffix `suffix` (0: none) is in the
   * table; when it is not, -1 - the free slot where the search ended.
   */
  #find(h: number, from: number, to: number, suffix: number): number {
    const slots = this.#slots;
    const len = to - from + suffixLength(suffix);
    let k = (h ^ (h >>> 16)) & this.#mask;
    for (; slots[k * SLOT + STAMP] === this.#current; k = (k + 1) & this.#mask) {
      const at = k * SLOT;
      if (slots[at + HASH_OF] !== h) continue;
      if (slots[at + LEN]! + suffixLength(slots[at + SUFFIX]!) !== len) continue;
      if (this.#same(at, from, to, suffix)) return at;
    }
    return -1 - k * SLOT;
  }

  /** Whether the name at slot `at` is the name `src[from..to)` with suffix `suffix`, byte for byte. */
  #same(at: number, from: number, to: number, suffix: number): boolean {
    const src = this.#src;
    const slots = this.#slots;
    const aStart = slots[at + START]!;
    const aLen = slots[at + LEN]!;
    const aSuffix = slots[at + SUFFIX]!;
    const bLen = to - from;
    if (aSuffix === 0 && suffix === 0) {
      for (let i = 0; i < aLen; i++) if (src[aStart + i] !== src[from + i]) return false;
      return true;
    }
    // Names of equal length, one or both suffixed: at most one suffix is in `digits` at a time.
    const total = aLen + suffixLength(aSuffix);
    if (aSuffix === 0) {
      digitsOf(suffix);
      for (let i = 0; i < total; i++) if (src[aStart + i] !== byteAt(src, from, bLen, i)) return false;
      return true;
    }
    if (suffix === 0) {
      digitsOf(aSuffix);
      for (let i = 0; i < total; i++) if (byteAt(src, aStart, aLen, i) !== src[from + i]) return false;
      return true;
    }
    // Both suffixed: equal only with equal names and equal suffixes (a suffix has no `#`).
    if (aSuffix !== suffix || aLen !== bLen) return false;
    for (let i = 0; i < aLen; i++) if (src[aStart + i] !== src[from + i]) return false;
    return true;
  }
}
