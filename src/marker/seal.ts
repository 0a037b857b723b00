/**
 * Seals: which spans of a log hold exactly the records the daemon read.
 *
 * The daemon computes a keyed value of every kernel record it reads (a PRF
 * of its canonical form, keyed from the start's secret), sums the values
 * modulo 2^128 per bucket of {@link SEAL_BUCKET_SERIALS} kernel serials,
 * and once the stream is well past a run of buckets writes an `op=seal`
 * marker with the span, the record count and an HMAC of the sum. A sum does
 * not depend on order, so a replay checks the span in any log of the same
 * records: auditd's (in the kernel's queue order), contid's host log
 * (records grouped into events, some held back). The values are keyed, so
 * that nobody without the secret can compute what a changed record adds to
 * the sum (an unkeyed sum of hashes falls to a generalised birthday
 * search); no value, nor the sum, ever leaves the daemon: the marker
 * carries an HMAC of it.
 *
 * The PRF is AES-128 CBC-MAC (zero IV, key {@link recordKey}) of the
 * canonical form with its length in a first block (a little-endian 32-bit
 * byte count, then zeros) and zeros to a whole block after it: a length
 * prefix makes the messages prefix-free, so the MAC is a PRF for any
 * length (as in CCM). It is computed for a batch of records at once, one
 * AES-ECB call per block position, because a call per record is what
 * costs: a keyed SHA-256 per record, one call each, took longer
 * (bench/README.md, "Seals").
 *
 * Canonical form of a record, the bytes MACed:
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
import { createCipheriv, createHmac, timingSafeEqual, type Cipher } from 'node:crypto';

import type { AuditRecord } from '../parse/record.js';
import { RecordType } from '../interpret/record-types-generated.js';
import { CONTAINER_OP } from '../interpret/record-types.js';

/** Kernel serials per bucket: a seal's span begins and ends on a multiple of it. */
export const SEAL_BUCKET_SERIALS = 64;

const EOE = RecordType.EOE;
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

/** Where a record's value goes (a SealBuckets). */
export interface SealSink {
  add(serial: number, timeMs: number, value: Uint8Array, offset: number): void;
}

/** Records per batch, and bytes: a batch is MACed when either is reached, or when asked. */
const BATCH_RECORDS = 2048;
const BATCH_BYTES = 1 << 20;

/**
 * The keyed values of records (see the module comment), computed a batch
 * at a time: add() lays a record's canonical form out in the batch, flush()
 * MACs the batch and hands each value to the sink. Call flush() before
 * reading the sink.
 */
export class SealHasher {
  readonly #cipher: Cipher;
  readonly #sink: SealSink;
  /** The batch: per record a length block, then its canonical form zero-padded to 16 bytes. */
  #bytes = Buffer.alloc(BATCH_BYTES + 16 * 1024);
  #words = new Int32Array(this.#bytes.buffer, this.#bytes.byteOffset, this.#bytes.length >> 2);
  /** Bytes used (a multiple of 16). */
  #used = 0;
  #count = 0;
  /** Per record: its first block, its number of blocks, serial and time. */
  readonly #first = new Int32Array(BATCH_RECORDS);
  readonly #blocks = new Int32Array(BATCH_RECORDS);
  readonly #serials = new Float64Array(BATCH_RECORDS);
  readonly #times = new Float64Array(BATCH_RECORDS);

  constructor(key: Uint8Array, sink: SealSink) {
    // ECB computes one block of many CBC-MACs at a time.
    this.#cipher = createCipheriv('aes-128-ecb', recordKey(key), null);
    this.#cipher.setAutoPadding(false);
    this.#sink = sink;
  }

  /** Adds a record to the batch (MACed at once when the batch is full). */
  add(record: AuditRecord): void {
    const start = this.#used;
    let at = start + 16;
    const bodyEnd = record.bodyEnd - linkLength(record.src, record.bodyStart, record.bodyEnd);
    const body = Math.max(0, bodyEnd - record.bodyStart);
    const b = this.#room(at + 40 + (record.timeEnd - record.timeStart) + body);
    at = digits(b, at, record.type);
    b[at++] = 0x20;
    at += record.src.copy(b, at, record.timeStart, record.timeEnd);
    b[at++] = 0x3a;
    at = digits(b, at, record.serial);
    b[at++] = 0x20;
    const from = at;
    if (body > 0) at += record.src.copy(b, at, record.bodyStart, bodyEnd);
    // Text from a log is UTF-8 already (the line splitter decodes it) and
    // cannot hold a newline; a netlink record's bytes are the kernel's.
    if (record.line === 0) at = this.#canonicalBody(from, at);
    const length = at - start - 16;
    const end = (at + 15) & ~15;
    const s = this.#bytes;
    s.fill(0, at, end);
    // The length block: a CBC-MAC over a length-prefixed message is a PRF for any length.
    s.fill(0, start, start + 16);
    s.writeUInt32LE(length, start);
    const i = this.#count++;
    const blocks = (end - start) >> 4;
    this.#first[i] = start >> 4;
    this.#blocks[i] = blocks;
    this.#serials[i] = record.serial;
    this.#times[i] = record.timeMs;
    this.#used = end;
    if (this.#count === BATCH_RECORDS || this.#used >= BATCH_BYTES) this.flush();
  }

  /** MACs the batch and hands every value to the sink. */
  flush(): void {
    const n = this.#count;
    if (n === 0) return;
    const w = this.#words;
    const first = this.#first;
    const blocks = this.#blocks;
    // The records still going, and their chaining values in the same order.
    let act = new Int32Array(n);
    let act2 = new Int32Array(n);
    let input = Buffer.alloc(n * 16);
    let iw = new Int32Array(input.buffer, input.byteOffset, n * 4);
    for (let r = 0; r < n; r++) {
      act[r] = r;
      const b = first[r]! << 2;
      iw[4 * r] = w[b]!;
      iw[4 * r + 1] = w[b + 1]!;
      iw[4 * r + 2] = w[b + 2]!;
      iw[4 * r + 3] = w[b + 3]!;
    }
    let live = n;
    let state = aligned(this.#cipher.update(input));
    for (let k = 1; live > 0; k++) {
      const sw = new Int32Array(state.buffer, state.byteOffset, live * 4);
      let next = 0;
      for (let j = 0; j < live; j++) {
        const r = act[j]!;
        if (blocks[r]! <= k) {
          // Block k - 1 was its last: the state is its MAC.
          this.#sink.add(this.#serials[r]!, this.#times[r]!, state, 16 * j);
          continue;
        }
        const b = (first[r]! + k) << 2;
        const o = 4 * j;
        const d = 4 * next;
        iw[d] = sw[o]! ^ w[b]!;
        iw[d + 1] = sw[o + 1]! ^ w[b + 1]!;
        iw[d + 2] = sw[o + 2]! ^ w[b + 2]!;
        iw[d + 3] = sw[o + 3]! ^ w[b + 3]!;
        act2[next++] = r;
      }
      if (next === 0) break;
      [act, act2] = [act2, act];
      live = next;
      state = aligned(this.#cipher.update(input.subarray(0, 16 * live)));
      if (live < input.length >> 5) {
        // Mostly long records are left: a smaller input for the rounds to come.
        input = Buffer.alloc(live * 16);
        iw = new Int32Array(input.buffer, input.byteOffset, live * 4);
      }
    }
    this.#count = 0;
    this.#used = 0;
  }

  /** Newlines as spaces, and the bytes from `from` to `end` as valid UTF-8; returns the new end. */
  #canonicalBody(from: number, end: number): number {
    // Searched within the record only: past `end` the batch holds stale bytes.
    const body = this.#bytes.subarray(from, end);
    for (let i = body.indexOf(0x0a); i >= 0; i = body.indexOf(0x0a, i + 1)) body[i] = 0x20;
    if (isUtf8(body)) return end;
    const fixed = Buffer.from(body.toString('utf8'), 'utf8');
    return from + fixed.copy(this.#room(from + fixed.length + 16), from);
  }

  /** The batch, grown when it has no room for `bytes`. */
  #room(bytes: number): Buffer {
    if (bytes + 16 > this.#bytes.length) {
      const bigger = Buffer.alloc(Math.max(bytes + 16, this.#bytes.length * 2));
      this.#bytes.copy(bigger);
      this.#bytes = bigger;
      this.#words = new Int32Array(bigger.buffer, bigger.byteOffset, bigger.length >> 2);
    }
    return this.#bytes;
  }
}

/**
 * The AES-128 key of the records' CBC-MAC: its own key, derived from the
 * seal key (which also keys the HMAC of a seal's sum).
 */
export function recordKey(sealKey: Uint8Array): Buffer {
  return createHmac('sha256', sealKey).update('contid-seal record v1').digest().subarray(0, 16);
}

/** `b`, or a copy of it that an Int32Array can view (its offset a multiple of 4). */
function aligned(b: Buffer): Buffer {
  return (b.byteOffset & 3) === 0 ? b : Buffer.from(b);
}

/** The keyed value of one record (tests and tools; the pipeline batches them). */
export function recordValue(key: Uint8Array, record: AuditRecord): Buffer {
  let out = Buffer.alloc(0);
  const hasher = new SealHasher(key, {
    add: (_serial, _time, value, offset) => {
      out = Buffer.from(value.subarray(offset, offset + 16));
    },
  });
  hasher.add(record);
  hasher.flush();
  return out;
}

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

/** A sum of records' values over a bucket or a span: count, sum modulo 2^128, time range. */
export class SealSum {
  records = 0;
  /** Little-endian 32-bit words of the 128-bit sum. */
  readonly words = new Uint32Array(4);
  /** Earliest and latest record time (ms); meaningless while `records` is 0. */
  sinceMs = Number.MAX_SAFE_INTEGER;
  untilMs = 0;

  /** Adds one record's value (16 bytes at `offset`, read as a little-endian number). */
  addValue(value: Uint8Array, offset: number, timeMs: number): void {
    const w = this.words;
    let carry = 0;
    for (let i = 0; i < 4; i++) {
      const o = offset + 4 * i;
      const v =
        w[i]! +
        (value[o]! | (value[o + 1]! << 8) | (value[o + 2]! << 16)) +
        value[o + 3]! * 0x1000000 +
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
    for (let i = 0; i < 4; i++) {
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

  /** The sum as 32 hex digits, most significant first. */
  hex(): string {
    let out = '';
    for (let i = 3; i >= 0; i--) out += this.words[i]!.toString(16).padStart(8, '0');
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
export class SealBuckets implements SealSink {
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

  add(serial: number, timeMs: number, value: Uint8Array, offset: number): void {
    const key = Math.floor(serial / SEAL_BUCKET_SERIALS);
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= this.#max) this.#dropLowest();
      b = new SealSum();
      this.#buckets.set(key, b);
    }
    b.addValue(value, offset, timeMs);
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
