/**
 * Untrusted strings in audit records: quoted, or hex-encoded when they hold anything unsafe.
 *
 * The kernel (audit_log_n_untrustedstring) writes a string such as `comm`, `exe`, `name`,
 * `proctitle` or an EXECVE argument in double quotes when every byte is printable ASCII other than
 * `"` (0x21..0x7e), and as uppercase hex otherwise, so the bytes need not be text at all.
 *
 * **Escaped text.** Decoded strings must not lose bytes that are not valid UTF-8, yet must read
 * naturally. The representation used here (by bytesToEscapedText, decodeHexString and
 * decodeProctitle):
 *
 * - every well-formed UTF-8 sequence is its character, NUL and other controls included;
 * - every byte that is not part of a well-formed sequence is `%XX` (uppercase hex);
 * - a `%` that is followed by two hex digits (either case) is itself written `%25`, and every other
 *   `%` stays as it is, so `50% off` reads as is and `a%41` becomes `a%2541`.
 *
 * Reading `%XX` as byte XX and everything else as UTF-8 (escapedTextToBytes) gives back the exact
 * bytes. Strings that are valid UTF-8 and contain no `%XX` come out unchanged.
 */
import { isUtf8 } from 'node:buffer';
import { ContidSyntaxError } from '../errors.js';
import { hexDigitValue } from './hex-number.js';

/** Thrown by decodeHex for a value that is not hex. */
export class HexDecodeError extends ContidSyntaxError<'ERR_BAD_HEX'> {
  /** Index in the value of the first character that is not a hex digit, or its length when odd. */
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(message, 'ERR_BAD_HEX');
    this.offset = offset;
  }
}

const PERCENT = 0x25;
const QUOTE = 0x22;
// Enough of a bad value to recognise it in an error message without copying a huge one.
const EXCERPT_LENGTH = 40;
// `%XX` for every byte, built once: the escape path is per byte.
const BYTE_ESCAPES: readonly string[] = Array.from(
  { length: 256 },
  (_, b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
);

/**
 * Whether `raw` is an untrusted string that the kernel hex-encoded: unquoted, of even non-zero
 * length, and only `0-9A-F`. Only meaningful for fields that hold untrusted strings; a hex number
 * such as `a0=1200` passes too.
 */
export function isHexEncoded(raw: string): boolean {
  const n = raw.length;
  if (n === 0 || (n & 1) !== 0) return false;
  for (let i = 0; i < n; i++) {
    const c = raw.charCodeAt(i);
    // Uppercase only: the kernel's hex is uppercase, and lowercase would admit more plain words.
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46))) return false;
  }
  return true;
}

/**
 * The bytes of an even-length hex string in either case (`2F62696E` is `/bin`). Throws a
 * HexDecodeError (code `ERR_BAD_HEX`) when the length is odd or a character is not a hex digit,
 * rather than stopping at the bad character as Buffer.from does.
 */
export function decodeHex(raw: string): Buffer {
  const n = raw.length;
  for (let i = 0; i < n; i++) {
    if (hexDigitValue(raw.charCodeAt(i)) < 0) {
      throw new HexDecodeError(`Cannot decode hex value "${excerpt(raw)}": not a hex digit at ${i}`, i);
    }
  }
  if ((n & 1) !== 0) {
    throw new HexDecodeError(`Cannot decode hex value "${excerpt(raw)}": odd length ${n}`, n);
  }
  return Buffer.from(raw, 'hex');
}

/**
 * The escaped text (see above) of a hex-encoded untrusted string: `2F62696E2F7368` is `/bin/sh`,
 * `41FF` is `A%FF`. NULs are kept as U+0000 (auparse cuts EXECVE arguments at the first NUL).
 * Throws like decodeHex for a value that is not hex.
 */
export function decodeHexString(raw: string): string {
  return bytesToEscapedText(decodeHex(raw));
}

/**
 * The escaped text (see above) of any raw untrusted-string value: the content of a quoted value,
 * the decoded bytes of an uppercase hex one, and any other value (`(null)`, `?`) as written. Unlike
 * unquote followed by decodeHexString, every result is in the one representation, so a quoted
 * `"a%41"` gives `a%2541` just as its hex form would.
 */
export function decodeUntrustedString(raw: string): string {
  if (isQuoted(raw)) return escapePercents(raw.slice(1, -1));
  return isHexEncoded(raw) ? decodeHexString(raw) : escapePercents(raw);
}

/**
 * The argument vector in a PROCTITLE record's raw `proctitle=` value: the hex form split at NUL
 * bytes, each argument as escaped text (see above), or the one argument of the quoted form. A
 * trailing NUL ends the last argument rather than starting an empty one; empty arguments between
 * NULs are kept. Hex in either case is accepted, as auparse does. A value that is neither quoted
 * nor hex (the kernel writes none) is returned as one argument, as written.
 *
 * The kernel truncates proctitle to 128 bytes, so the last argument may be cut short.
 */
export function decodeProctitle(raw: string): string[] {
  if (isQuoted(raw)) return [escapePercents(raw.slice(1, -1))];
  if (!isHex(raw)) return [escapePercents(raw)];
  const bytes = Buffer.from(raw, 'hex');
  const args: string[] = [];
  let start = 0;
  for (let nul = bytes.indexOf(0); nul >= 0; nul = bytes.indexOf(0, start)) {
    args.push(bytesToEscapedText(bytes.subarray(start, nul)));
    start = nul + 1;
  }
  if (start < bytes.length) args.push(bytesToEscapedText(bytes.subarray(start)));
  return args;
}

/**
 * The content of a double-quoted value (`"/usr/bin/id"` is `/usr/bin/id`), or `raw` unchanged when
 * it is not quoted at both ends. The kernel hex-encodes any string that contains `"`, so there is
 * nothing to unescape inside the quotes.
 */
export function unquote(raw: string): string {
  return isQuoted(raw) ? raw.slice(1, -1) : raw;
}

/** Bytes as escaped text (see above). */
export function bytesToEscapedText(bytes: Uint8Array): string {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Fast path: a native validity check and decode; almost every string is valid UTF-8.
  if (isUtf8(buf)) return escapePercents(buf.toString('utf8'));
  return escapeInvalidUtf8(buf);
}

/** The bytes that escaped text (see above) stands for; the inverse of bytesToEscapedText. */
export function escapedTextToBytes(text: string): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  let i = text.indexOf('%');
  while (i >= 0) {
    const hi = hexDigitValue(text.charCodeAt(i + 1));
    const lo = hexDigitValue(text.charCodeAt(i + 2));
    if (hi >= 0 && lo >= 0) {
      parts.push(Buffer.from(text.slice(start, i), 'utf8'), Buffer.of(hi * 16 + lo));
      start = i + 3;
      i = text.indexOf('%', start);
    } else {
      i = text.indexOf('%', i + 1);
    }
  }
  parts.push(Buffer.from(text.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/** Whether raw is non-empty, even-length hex in either case. */
function isHex(raw: string): boolean {
  const n = raw.length;
  if (n === 0 || (n & 1) !== 0) return false;
  for (let i = 0; i < n; i++) if (hexDigitValue(raw.charCodeAt(i)) < 0) return false;
  return true;
}

function isQuoted(raw: string): boolean {
  return raw.length >= 2 && raw.charCodeAt(0) === QUOTE && raw.charCodeAt(raw.length - 1) === QUOTE;
}

function excerpt(raw: string): string {
  return raw.length <= EXCERPT_LENGTH ? raw : `${raw.slice(0, EXCERPT_LENGTH)}...`;
}

/** Whether the `%` at `i` in `text` starts a `%XX` and so must be written `%25`. */
function percentNeedsEscape(text: string, i: number): boolean {
  return hexDigitValue(text.charCodeAt(i + 1)) >= 0 && hexDigitValue(text.charCodeAt(i + 2)) >= 0;
}

/** Valid text with each `%` that is followed by two hex digits written `%25`. */
function escapePercents(text: string): string {
  let i = text.indexOf('%');
  if (i < 0) return text;
  let out = '';
  let start = 0;
  for (; i >= 0; i = text.indexOf('%', i + 1)) {
    if (percentNeedsEscape(text, i)) {
      out += `${text.slice(start, i)}%25`;
      start = i + 1;
    }
  }
  return out + text.slice(start);
}

/** Escaped text of bytes that are not valid UTF-8: runs of valid bytes decode, the rest escape. */
function escapeInvalidUtf8(buf: Buffer): string {
  const n = buf.length;
  let out = '';
  let start = 0; // start of the run of valid bytes not yet appended
  let i = 0;
  while (i < n) {
    const b = buf[i]!;
    if (b < 0x80) {
      // Checking the next two bytes is the same as checking the next two output characters: an
      // ASCII byte is itself, and anything else comes out non-ASCII or as `%XX`.
      if (b === PERCENT && isHexByte(buf[i + 1]) && isHexByte(buf[i + 2])) {
        out += `${buf.toString('utf8', start, i)}%25`;
        start = i + 1;
      }
      i++;
      continue;
    }
    const len = utf8SequenceLength(buf, i);
    if (len > 0) {
      i += len;
      continue;
    }
    out += buf.toString('utf8', start, i) + BYTE_ESCAPES[b]!;
    i++;
    start = i;
  }
  return out + buf.toString('utf8', start, n);
}

function isHexByte(b: number | undefined): boolean {
  return b !== undefined && hexDigitValue(b) >= 0;
}

function isContinuation(b: number | undefined): boolean {
  return b !== undefined && (b & 0xc0) === 0x80;
}

/**
 * The length (2 to 4) of the well-formed UTF-8 sequence that starts at `i` with a byte >= 0x80, or
 * 0 when there is none. Follows the Unicode standard's table of well-formed sequences (no
 * overlong forms, no surrogates, nothing above U+10FFFF), which is also what isUtf8 checks.
 */
function utf8SequenceLength(buf: Buffer, i: number): number {
  const b0 = buf[i]!;
  const b1 = buf[i + 1];
  if (b0 >= 0xc2 && b0 <= 0xdf) return isContinuation(b1) ? 2 : 0;
  let len: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    if (b0 === 0xe0)
      lo = 0xa0; // no overlong forms
    else if (b0 === 0xed) hi = 0x9f; // no surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    if (b0 === 0xf0)
      lo = 0x90; // no overlong forms
    else if (b0 === 0xf4) hi = 0x8f; // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (b1 === undefined || b1 < lo || b1 > hi) return 0;
  for (let k = 2; k < len; k++) if (!isContinuation(buf[i + k])) return 0;
  return len;
}
