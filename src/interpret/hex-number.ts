/**
 * Hex numbers as the kernel prints them with `%x` and `%lx` (`arch=c000003e`, `a0=1200011`).
 *
 * Index loops rather than `parseInt` or a regex: these run once per field on the hot path, and
 * `parseInt` would accept inputs such as `12zz` or `0x12` that the kernel never writes.
 */
import { hexDigitValue } from '../bytes.js';

export { hexDigitValue };

/** The value of 1 to 8 hex digits (either case) as an unsigned 32-bit number, or -1 otherwise. */
export function parseHexU32(raw: string): number {
  const n = raw.length;
  if (n === 0 || n > 8) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = hexDigitValue(raw.charCodeAt(i));
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/**
 * The low 32 bits, unsigned, of 1 to 16 hex digits (either case), or -1 otherwise. Syscall
 * arguments are 64-bit on 64-bit kernels, but the flag words contid reads are 32-bit.
 */
export function parseHexLow32(raw: string): number {
  const n = raw.length;
  if (n === 0 || n > 16) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = hexDigitValue(raw.charCodeAt(i));
    if (d < 0) return -1;
    // Only the last eight digits contribute, so v never exceeds 2^32 - 1 and stays exact.
    if (i >= n - 8) v = v * 16 + d;
  }
  return v;
}
