/**
 * Seals: which spans of a log hold exactly the records the daemon read.
 *
 * The daemon hashes every kernel record it reads (its canonical form, with a
 * key derived from the start's secret), sums the hashes modulo 2^256 per
 * bucket of {@link SEAL_BUCKET_SERIALS} kernel serials, and once the stream
 * is well past a run of buckets writes an `op=seal` marker with the span,
 * the record count and an HMAC of the sum. A sum does not depend on order,
 * so a replay checks the span in any log of the same records: auditd's (in
 * the kernel's queue order), contid's host log (records grouped into
 * events, some held back). The hashes are keyed, so that nobody without the
 * secret can compute what a changed record adds to the sum (an unkeyed sum
 * of hashes modulo 2^256 falls to a generalised birthday search); no single
 * hash, nor the sum, ever leaves the daemon: the marker carries an HMAC of it.
 *
 * Canonical form of a record, the bytes hashed after the key:
 *
 *     <type number> <time as written>:<serial> <fields text>
 *
 * The fields text is the kernel's, as auditd and contid's text host log
 * write it: without `node=`, without auditd's enriched part, without a
 * trailing ` record=N` (contid appends it to a record a CONTAINER_ID
 * describes; no kernel record ends so: a user message ends with its
 * closing quote, other strings the kernel quotes or hex-encodes), a newline
 * as a space (auditd writes a user message's newline so) and bytes that are
 * not UTF-8 as U+FFFD (how every reader of a text log decodes them).
 * Not sealed: contid's own records, EOE (not in log files) and auditd's
 * own records (1200–1299, numbered by auditd, not the kernel).
 */
import { isUtf8 } from 'node:buffer';
import { createHmac, hash, timingSafeEqual } from 'node:crypto';

import { ByteRecord } from '../parse/parser.js';
import type { AuditRecord } from '../parse/record.js';

/** Kernel serials per bucket: a seal's span begins and ends on a multiple of it. */
export const SEAL_BUCKET_SERIALS = 64;

const EOE = 1320;
const CONTAINER_OP = 1020;
/** Half the serial space: a serial this far below another is past a wrap of the kernel's counter. */
export const SERIAL_WRAP = 2 ** 31;

/** Whether records of this type are sealed (see the module comment). */
export function isSealedType(type: number): boolean {
  // Type 0: a name contid cannot number (its own CONTAINER_ID, CONTID_*).
  return type !== 0 && type !== CONTAINER_OP && type !== EOE && (type < 1200 || type > 1299);
}

/** The key a start's seals use, derived from its secret (never the marker MAC key itself). */
export function sealKey(secret: Uint8Array): Buffer {
  return createHmac('sha256', secret).update('contid-seal v1').digest();
}

/** `SEC.MS` of a time in ms, as the kernel writes it. */
export function renderTime(ms: number): string {
  return `${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}`;
}

/**
 * Keyed hashes of records' canonical forms: SHA-256(key ‖ canonical). The
 * bytes are laid out in one reused buffer, so hashing a record allocates
 * nothing but its digest.
 */
export class RecordHasher {
  #scratch: Buffer;
  readonly #keyLength: number;

  constructor(key: Uint8Array) {
    this.#keyLength = key.length;
    this.#scratch = Buffer.alloc(key.length + 1024);
    this.#scratch.set(key, 0);
  }

  /** The keyed hash of `record`'s canonical form. */
  hash(record: AuditRecord): Buffer {
    let at = this.#keyLength;
    if (record instanceof ByteRecord) {
      const bodyEnd = record.bodyEnd - linkLength(record.src, record.bodyStart, record.bodyEnd);
      const room = 24 + (record.timeEnd - record.timeStart) + Math.max(0, bodyEnd - record.bodyStart);
      const s = this.#room(at + room);
      at = digits(s, at, record.type);
      s[at++] = 0x20;
      at += record.src.copy(s, at, record.timeStart, record.timeEnd);
      s[at++] = 0x3a;
      at = digits(s, at, record.serial);
      s[at++] = 0x20;
      const body = at;
      if (bodyEnd > record.bodyStart) at += record.src.copy(s, at, record.bodyStart, bodyEnd);
      // Text from a log is UTF-8 already (the line splitter decodes it) and
      // cannot hold a newline; a netlink record's bytes are the kernel's.
      if (record.line === 0) return this.#digest(this.#canonicalBody(body, at));
      return this.#digest(at);
    }
    let text = record.body.replace(LINK, '');
    if (text.includes('\n')) text = text.replaceAll('\n', ' ');
    const head = `${record.type} ${record.time}:${record.serial} `;
    const s = this.#room(at + head.length + Buffer.byteLength(text, 'utf8'));
    at += s.write(head, at, 'latin1');
    at += s.write(text, at, 'utf8');
    return this.#digest(at);
  }

  /** Newlines as spaces, and the bytes from `from` to `end` as valid UTF-8; returns the new end. */
  #canonicalBody(from: number, end: number): number {
    const s = this.#scratch;
    for (let i = s.indexOf(0x0a, from); i >= 0 && i < end; i = s.indexOf(0x0a, i + 1)) s[i] = 0x20;
    const body = s.subarray(from, end);
    if (isUtf8(body)) return end;
    const fixed = Buffer.from(body.toString('utf8'), 'utf8');
    return from + fixed.copy(this.#room(from + fixed.length), from);
  }

  #room(bytes: number): Buffer {
    if (bytes > this.#scratch.length) {
      const bigger = Buffer.alloc(Math.max(bytes, this.#scratch.length * 2));
      this.#scratch.copy(bigger, 0, 0, this.#scratch.length);
      this.#scratch = bigger;
    }
    return this.#scratch;
  }

  #digest(end: number): Buffer {
    return hash('sha256', this.#scratch.subarray(0, end), 'buffer');
  }
}

const LINK = / record=[0-9]{1,5}$/;

/** The length of a trailing ` record=N` (1–5 digits) of `src[from..to)`, else 0. */
function linkLength(src: Buffer, from: number, to: number): number {
  let i = to;
  while (i > from && to - i < 5 && src[i - 1]! >= 0x30 && src[i - 1]! <= 0x39) i--;
  if (i === to || i - from < 8) return 0;
  // ' record=' backwards.
  const word = ' record=';
  for (let k = 0; k < word.length; k++) if (src[i - word.length + k] !== word.charCodeAt(k)) return 0;
  return to - i + word.length;
}

/** Writes `n` in decimal at `at`; returns the end. */
function digits(s: Buffer, at: number, n: number): number {
  if (n === 0) {
    s[at] = 0x30;
    return at + 1;
  }
  let len = 0;
  for (let v = n; v > 0; v = Math.floor(v / 10)) len++;
  for (let i = at + len - 1, v = n; v > 0; i--, v = Math.floor(v / 10)) s[i] = 0x30 + (v % 10);
  return at + len;
}

/** A sum of records' hashes over a bucket or a span: count, sum modulo 2^256, time range. */
export class SealSum {
  records = 0;
  /** Little-endian 32-bit words of the 256-bit sum. */
  readonly words = new Uint32Array(8);
  /** Earliest and latest record time (ms); meaningless while `records` is 0. */
  sinceMs = Number.MAX_SAFE_INTEGER;
  untilMs = 0;

  /** Adds one record's hash (32 bytes, read as a little-endian number). */
  addHash(digest: Uint8Array, timeMs: number): void {
    const w = this.words;
    let carry = 0;
    for (let i = 0; i < 8; i++) {
      const o = 4 * i;
      const v =
        w[i]! +
        (digest[o]! | (digest[o + 1]! << 8) | (digest[o + 2]! << 16)) +
        digest[o + 3]! * 0x1000000 +
        carry;
      w[i] = v >>> 0;
      carry = v > 0xffffffff ? 1 : 0;
    }
    this.records++;
    if (timeMs < this.sinceMs) this.sinceMs = timeMs;
    if (timeMs > this.untilMs) this.untilMs = timeMs;
  }

  /** Adds another sum into this one. */
  addSum(other: SealSum): void {
    const w = this.words;
    let carry = 0;
    for (let i = 0; i < 8; i++) {
      const v = w[i]! + other.words[i]! + carry;
      w[i] = v >>> 0;
      carry = v > 0xffffffff ? 1 : 0;
    }
    this.records += other.records;
    if (other.records > 0) {
      if (other.sinceMs < this.sinceMs) this.sinceMs = other.sinceMs;
      if (other.untilMs > this.untilMs) this.untilMs = other.untilMs;
    }
  }

  /** The sum as 64 hex digits, most significant first. */
  hex(): string {
    let out = '';
    for (let i = 7; i >= 0; i--) out += this.words[i]!.toString(16).padStart(8, '0');
    return out;
  }
}

/** What a seal says about its span: `digest` is HMAC(seal key, `contid-seal FROM TO RECORDS SUM`). */
export function sealDigest(key: Uint8Array, span: { from: number; to: number; sum: SealSum }): string {
  const { from, to, sum } = span;
  return createHmac('sha256', key)
    .update(`contid-seal ${from} ${to} ${sum.records} ${sum.hex()}`, 'latin1')
    .digest('hex');
}

/** Whether `sum` is what the seal's `digest` says the span held. */
export function sealMatches(
  key: Uint8Array,
  span: { from: number; to: number; sum: SealSum; digest: string },
): boolean {
  const want = Buffer.from(sealDigest(key, span), 'hex');
  const got = Buffer.from(span.digest, 'hex');
  return got.length === want.length && timingSafeEqual(want, got);
}

/**
 * Sums per bucket of SEAL_BUCKET_SERIALS serials, for the daemon (what it
 * has read and not sealed yet) and a replay (what it has seen and not
 * judged yet). Bounded: at most `maxBuckets`; past it the lowest bucket is
 * dropped (counted), so its span can no longer be shown intact.
 */
export class SealBuckets {
  readonly #buckets = new Map<number, SealSum>();
  readonly #max: number;
  /** Buckets dropped at the bound. */
  dropped = 0;

  constructor(maxBuckets = 65_536) {
    this.#max = Math.max(1, maxBuckets);
  }

  get size(): number {
    return this.#buckets.size;
  }

  add(serial: number, timeMs: number, digest: Uint8Array): void {
    const key = Math.floor(serial / SEAL_BUCKET_SERIALS);
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= this.#max) this.#dropLowest();
      b = new SealSum();
      this.#buckets.set(key, b);
    }
    b.addHash(digest, timeMs);
  }

  /** Takes (removes) the buckets of serials `from`..`to` and returns their sum. */
  take(from: number, to: number): SealSum {
    const sum = new SealSum();
    const first = Math.floor(from / SEAL_BUCKET_SERIALS);
    const last = Math.floor(to / SEAL_BUCKET_SERIALS);
    if (last - first + 1 <= this.#buckets.size) {
      for (let k = first; k <= last; k++) {
        const b = this.#buckets.get(k);
        if (b === undefined) continue;
        sum.addSum(b);
        this.#buckets.delete(k);
      }
    } else {
      for (const [k, b] of this.#buckets) {
        if (k < first || k > last) continue;
        sum.addSum(b);
        this.#buckets.delete(k);
      }
    }
    return sum;
  }

  /** Drops the buckets wholly below `serial`; returns how many records they held. */
  dropBelow(serial: number): number {
    const limit = Math.floor(serial / SEAL_BUCKET_SERIALS);
    let records = 0;
    for (const [k, b] of this.#buckets) {
      if (k >= limit) continue;
      records += b.records;
      this.#buckets.delete(k);
    }
    return records;
  }

  clear(): void {
    this.#buckets.clear();
  }

  #dropLowest(): void {
    let lowest = Infinity;
    for (const k of this.#buckets.keys()) if (k < lowest) lowest = k;
    this.#buckets.delete(lowest);
    this.dropped++;
  }
}

/** The first serial of the bucket after the one holding `serial`. */
export function nextBucket(serial: number): number {
  return (Math.floor(serial / SEAL_BUCKET_SERIALS) + 1) * SEAL_BUCKET_SERIALS;
}
