/**
 * Errno names and messages, and auparse's reading of a SYSCALL record's `exit=` field.
 *
 * Names come from the kernel's UAPI headers and messages from the C library's strerror(), both
 * through errno-generated.ts. They agree with libaudit's errno table for every number the kernel
 * defines (1..133), and with auparse's output: `exit=-13` is `EACCES(Permission denied)`.
 */
import { ERRNOS } from './errno-generated.js';

// auparse's whole interpretation of each known errno, built once so that the hot path allocates
// nothing. '' marks numbers the kernel does not define.
const EXIT_TEXT: readonly string[] = ERRNOS.map(([name, message]) =>
  name === '' ? '' : `${name}(${message})`,
);

// The kernel never returns an error below -MAX_ERRNO (-4095), so four digits are enough.
const MAX_EXIT_LENGTH = 5;

/** The name of a positive errno number (`13` is `EACCES`), or undefined when the kernel defines none. */
export function errnoName(n: number): string | undefined {
  const entry = ERRNOS[n];
  return entry === undefined || entry[0] === '' ? undefined : entry[0];
}

/**
 * The C library's message for a positive errno number (`13` is `Permission denied`), or undefined
 * when the kernel defines no errno with that number.
 */
export function errnoMessage(n: number): string | undefined {
  const entry = ERRNOS[n];
  return entry === undefined || entry[0] === '' ? undefined : entry[1];
}

/**
 * auparse's interpretation of a raw `exit=` value: `-13` is `EACCES(Permission denied)`. Returns
 * undefined for anything else (a zero or positive result, text that is not a negative decimal
 * integer, or an errno the kernel does not define) so that the caller keeps the raw value.
 *
 * auparse itself is looser: it prints `(null)(Unknown error 41)` for an undefined errno, reads
 * `-13x` as -13 (strtoll stops at the first non-digit), and prints `(null)(Success)` for
 * -9223372036854775808. Leading zeros (`-013`) are accepted here as they are by strtoll, though the
 * kernel never writes them.
 */
export function interpretExit(raw: string): string | undefined {
  const len = raw.length;
  if (len < 2 || len > MAX_EXIT_LENGTH || raw.charCodeAt(0) !== 0x2d /* - */) return undefined;
  let n = 0;
  for (let i = 1; i < len; i++) {
    const d = raw.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  const text = EXIT_TEXT[n];
  return text === '' ? undefined : text;
}
