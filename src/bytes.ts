/**
 * Byte helpers of the hot paths: records are read where they lie in the
 * input's buffers, so the parser, the writers and the trackers compare and
 * read bytes rather than strings. Index loops rather than `indexOf` with a
 * range or `toString` first: they run per field, and make no garbage.
 */

/** Whether the ASCII string `text` is at `b[at..]` (a shorter `b` does not match). */
export function asciiAt(b: Uint8Array, at: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** Whether the ASCII string `text` is at `b[at..end)`. */
export function asciiAtWithin(b: Uint8Array, at: number, end: number, text: string): boolean {
  return at + text.length <= end && asciiAt(b, at, text);
}

/** The index of the first `byte` in `b[from..to)`, or -1. */
export function indexIn(b: Uint8Array, byte: number, from: number, to: number): number {
  for (let i = from; i < to; i++) if (b[i] === byte) return i;
  return -1;
}

/** Whether `a[at..at+len)` and `b[bt..bt+len)` hold the same bytes. */
export function bytesEqual(a: Uint8Array, at: number, b: Uint8Array, bt: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[at + i] !== b[bt + i]) return false;
  return true;
}

/** The value of the hex digit with char code `c` (either case), or -1 when it is not one. */
export function hexDigitValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  // Setting bit 5 folds 'A'-'F' onto 'a'-'f' and maps no other character into that range.
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}

/** The decimal digits `b[from..to)` as a number; -1 when empty or not all digits. */
export function decimalDigits(b: Uint8Array, from: number, to: number): number {
  if (to <= from) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const d = b[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}
