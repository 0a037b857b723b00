/**
 * A growable byte buffer that output is written into directly, so that
 * formatting an event allocates no intermediate strings: the replay hot path
 * copies characters from the input text straight into bytes.
 */
export class ByteSink {
  #buf: Buffer;
  #pos = 0;
  readonly #initial: number;
  /** The buffer behind the last take(), until it is recycled. */
  #taken: Buffer | null = null;
  #spare: Buffer | null = null;

  constructor(initialBytes = 1 << 20) {
    this.#initial = initialBytes;
    this.#buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Bytes written and not yet taken. */
  get length(): number {
    return this.#pos;
  }

  /** Returns what was written and starts a fresh buffer (a recycled one when offered). */
  take(): Buffer {
    const out = this.#buf.subarray(0, this.#pos);
    this.#taken = this.#buf;
    const spare = this.#spare;
    this.#spare = null;
    // The next buffer gets the room this one grew to: sized to what was
    // written, the next take's worth would grow it again, copying it all.
    const room = Math.max(this.#initial, this.#buf.length);
    this.#buf = spare !== null && spare.length >= room ? spare : Buffer.allocUnsafe(room);
    this.#pos = 0;
    return out;
  }

  /**
   * Returns a copy of what was written, sized to it, and keeps writing into
   * the same buffer: for many small outputs (a container's copies per
   * batch), a small copy from Node's buffer pool costs less than a fresh
   * buffer of the initial size each time.
   */
  takeCopy(): Buffer {
    const out = Buffer.allocUnsafe(this.#pos);
    this.#buf.copy(out, 0, 0, this.#pos);
    this.#pos = 0;
    return out;
  }

  /**
   * Hands back a buffer that take() returned, once the caller is done with
   * it (its write completed), for the next take() to reuse. Reuse matters:
   * every buffer is memory outside V8's heap, and allocating one per chunk
   * makes V8 run full collections for the external memory alone. Only the
   * most recently taken buffer is accepted; anything else is ignored.
   */
  recycle(bytes: Buffer): void {
    const taken = this.#taken;
    if (taken === null || bytes.buffer !== taken.buffer || bytes.byteOffset !== taken.byteOffset) return;
    this.#taken = null;
    this.#spare = taken;
  }

  #grow(need: number): void {
    let size = this.#buf.length * 2;
    while (size < this.#pos + need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
  }

  /** Writes a string known to be ASCII and to need no escaping (keys, punctuation, digits). */
  ascii(s: string): void {
    const n = s.length;
    if (this.#pos + n > this.#buf.length) this.#grow(n);
    const b = this.#buf;
    let p = this.#pos;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.#pos = p;
  }

  /** Writes a string as UTF-8, as is (already-encoded JSON). */
  utf8(s: string): void {
    const max = s.length * 3;
    if (this.#pos + max > this.#buf.length) this.#grow(max);
    this.#pos += this.#buf.write(s, this.#pos, 'utf8');
  }

  /**
   * Makes room for `n` more bytes and returns the buffer to write into, from
   * `position`; the writer then calls commit() with its new position. For
   * hot loops that write many small pieces.
   */
  reserve(n: number): Buffer {
    if (this.#pos + n > this.#buf.length) this.#grow(n);
    return this.#buf;
  }

  /** The write position in the buffer reserve() returned. */
  get position(): number {
    return this.#pos;
  }

  /** Sets the write position after writing into the reserved buffer. */
  commit(position: number): void {
    this.#pos = position;
  }

  /** Writes a non-negative integer in decimal, without making a string of it. */
  decimal(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) {
      this.ascii(String(n));
      return;
    }
    if (this.#pos + 16 > this.#buf.length) this.#grow(16);
    const b = this.#buf;
    let digits = n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : 5;
    if (digits === 5) for (let x = n; x >= 100000; x = Math.floor(x / 10)) digits++;
    let p = this.#pos + digits;
    this.#pos = p;
    let x = n;
    // Integer division while it fits 31 bits (serials, suffixes): much cheaper than Math.floor.
    for (; x > 0x7fffffff; x = Math.floor(x / 10)) b[--p] = 0x30 + (x % 10);
    do {
      b[--p] = 0x30 + (x % 10);
      x = (x / 10) | 0;
    } while (x > 0);
  }

  /** Writes one byte. */
  byte(c: number): void {
    if (this.#pos + 1 > this.#buf.length) this.#grow(1);
    this.#buf[this.#pos++] = c;
  }

  /**
   * Writes characters `from`..`to` of `s` as the inside of a JSON string:
   * `"` and `\` escaped, control characters as `\u00XX`, everything else as
   * UTF-8. With `lower`, ASCII capitals are lower-cased on the way.
   */
  jsonChars(s: string, from: number, to: number, lower = false): void {
    // Worst case is six bytes per character (\u00XX), or three for UTF-8.
    if (this.#pos + (to - from) * 6 > this.#buf.length) this.#grow((to - from) * 6);
    const b = this.#buf;
    let p = this.#pos;
    for (let i = from; i < to; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x20 && c < 0x7f) {
        if (c === 0x22 || c === 0x5c) {
          b[p++] = 0x5c;
          b[p++] = c;
        } else {
          b[p++] = lower && c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
        }
      } else if (c < 0x20 || c === 0x7f) {
        b[p++] = 0x5c;
        b[p++] = 0x75; // u
        b[p++] = 0x30;
        b[p++] = 0x30;
        b[p++] = HEX[c >> 4]!;
        b[p++] = HEX[c & 15]!;
      } else {
        // A run of non-ASCII characters: let the encoder handle surrogate pairs.
        let j = i + 1;
        while (j < to && s.charCodeAt(j) >= 0x80) j++;
        p += b.write(s.slice(i, j), p, 'utf8');
        i = j - 1;
      }
    }
    this.#pos = p;
  }

  /**
   * Copies bytes `from`..`to` of `src` (valid UTF-8) as the inside of a JSON
   * string: `"` and `\` escaped, control bytes as `\u00XX`, the rest as is.
   * With `lower`, ASCII capitals are lower-cased on the way.
   */
  jsonBytes(src: Uint8Array, from: number, to: number, lower = false): void {
    if (this.#pos + (to - from) * 6 > this.#buf.length) this.#grow((to - from) * 6);
    const b = this.#buf;
    let p = this.#pos;
    for (let i = from; i < to; i++) {
      const c = src[i]!;
      if (c >= 0x20 && c !== 0x22 && c !== 0x5c && c !== 0x7f) {
        b[p++] = lower && c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
      } else if (c === 0x22 || c === 0x5c) {
        b[p++] = 0x5c;
        b[p++] = c;
      } else {
        b[p++] = 0x5c;
        b[p++] = 0x75; // u
        b[p++] = 0x30;
        b[p++] = 0x30;
        b[p++] = HEX[c >> 4]!;
        b[p++] = HEX[c & 15]!;
      }
    }
    this.#pos = p;
  }

  /**
   * Copies bytes `from`..`to` of `src` as they are. Up to a line's worth in
   * a loop: a native copy needs a view of `src` made first, which costs
   * about as much as a loop over 60 bytes, and is garbage that brings the
   * next collection nearer (text output makes one per record, and while
   * thousands of events are open each collection has their records to move).
   */
  bytes(src: Uint8Array, from: number, to: number): void {
    const n = to - from;
    if (this.#pos + n > this.#buf.length) this.#grow(n);
    if (n < LOOP_COPY_MAX) {
      const b = this.#buf;
      let p = this.#pos;
      for (let i = from; i < to; i++) b[p++] = src[i]!;
      this.#pos = p;
    } else {
      this.#buf.set(src.subarray(from, to), this.#pos);
      this.#pos += n;
    }
  }

  /** Writes `s` as a JSON string literal. */
  jsonString(s: string): void {
    this.byte(0x22);
    this.jsonChars(s, 0, s.length);
    this.byte(0x22);
  }
}

/** Copies shorter than this are made in a loop (see ByteSink.bytes). */
const LOOP_COPY_MAX = 256;

const HEX = Buffer.from('0123456789abcdef');

/**
 * Copies `src[from..to)` into `out` at `p` as the inside of a JSON string
 * (the escaping of ByteSink.jsonBytes); returns the new position. `out` must
 * have room for six bytes per input byte.
 */
export function escapeInto(src: Uint8Array, from: number, to: number, out: Uint8Array, p: number): number {
  for (let i = from; i < to; i++) {
    const c = src[i]!;
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c && c !== 0x7f) {
      out[p++] = c;
    } else if (c === 0x22 || c === 0x5c) {
      out[p++] = 0x5c;
      out[p++] = c;
    } else {
      out[p++] = 0x5c;
      out[p++] = 0x75;
      out[p++] = 0x30;
      out[p++] = 0x30;
      out[p++] = HEX[c >> 4]!;
      out[p++] = HEX[c & 15]!;
    }
  }
  return p;
}
