import { recordTypeName, recordTypeNumber } from '../interpret/record-types.js';
import { nextField, splitFieldsOf } from './fields.js';
import { LineSplitter } from './lines.js';
import type { AuditRecord, ParseIssue } from './record.js';
import { asciiAt, asciiAtWithin, decimalDigits, indexIn } from '../bytes.js';

/** Longest excerpt of a bad line kept in a ParseIssue. */
const EXCERPT = 200;
const SPACE = 0x20;

function issue(
  code: ParseIssue['code'],
  message: string,
  line: number,
  buf: Buffer,
  start: number,
  end: number,
  kept = false,
): ParseIssue {
  const excerpt = buf.toString('utf8', start, Math.min(end, start + EXCERPT));
  return kept ? { code, message, line, excerpt, kept } : { code, message, line, excerpt };
}

/** True when the value is a ParseIssue rather than a record. */
export function isIssue(value: AuditRecord | ParseIssue): value is ParseIssue {
  return (value as ParseIssue).code !== undefined;
}

/**
 * A record (see AuditRecord, the name the pipeline knows it by) that points
 * into the bytes it was parsed from. Its fields are kept in input order,
 * with their raw values (the text exactly as the kernel or auditd wrote it,
 * quotes included), which round-trips to auditd's text format without loss.
 * Strings (body, enriched part, fields) are decoded only when asked for: the
 * writers on the hot path copy bytes straight from `src`.
 */
export class ByteRecord {
  /**
   * Strings decoded on request, in one object made on the first request:
   * most records never need one, and a record is made per line, so every
   * slot counts.
   */
  #decoded: Decoded | null = null;
  /**
   * The time in ms as seconds and milliseconds: each fits a small integer,
   * which V8 keeps in the record itself, where the product (over 2^31) would
   * be a number boxed on the heap, an object more per record for the
   * collector to move while the record's event is open.
   */
  readonly #sec: number;
  readonly #ms: number;

  constructor(
    /** The bytes the record was parsed from (valid UTF-8). */
    readonly src: Buffer,
    /** The `node=` prefix, or null when the line had none. */
    readonly node: string | null,
    /** Numeric record type (1300 for SYSCALL); 0 when only an unknown name was given. */
    readonly type: number,
    /** Type name as auditd prints it: `SYSCALL`, `UNKNOWN[2142]`. */
    readonly typeName: string,
    /** Range of the `SEC.MS` text in `src`. */
    readonly timeStart: number,
    readonly timeEnd: number,
    timeMs: number,
    /** The event serial number. */
    readonly serial: number,
    /** Range of the fields text in `src`. */
    readonly bodyStart: number,
    readonly bodyEnd: number,
    /** Range of the enriched part (after `\x1d`), or -1 when there is none. */
    readonly enrichedStart: number,
    readonly enrichedEnd: number,
    /** 1-based input line number; 0 when the record did not come from a text stream. */
    readonly line: number,
    /**
     * Where the record's line starts in `src` (its `node=` or `type=`), for
     * writers that copy it as it came in; -1 for a netlink payload, which
     * starts at `audit(` and has no `type=` of its own.
     */
    readonly lineStart: number,
    /**
     * Where a netlink payload's text ends in `src` (at its first NUL, less
     * one trailing space), -1 for a log line, which ends at its line end.
     * The live reader lays payloads end to end in one buffer, with nothing
     * between them to stop at.
     */
    readonly payloadEnd: number,
  ) {
    const sec = Math.floor(timeMs / 1000);
    this.#sec = sec;
    this.#ms = (timeMs - sec * 1000) | 0;
  }

  /** The time of the record's event, in ms since the epoch. */
  get timeMs(): number {
    return this.#sec * 1000 + this.#ms;
  }

  /** Timestamp exactly as written, `SEC.MS` (e.g. `1615114232.375`). */
  get time(): string {
    const d = (this.#decoded ??= newDecoded());
    return (d.time ??= this.src.toString('latin1', this.timeStart, this.timeEnd));
  }

  /** The fields text after `): `, as written (without the enriched part). */
  get body(): string {
    const d = (this.#decoded ??= newDecoded());
    return (d.body ??= this.src.toString('utf8', this.bodyStart, this.bodyEnd));
  }

  /** The enriched part after `\x1d` (auditd ENRICHED format), or null. */
  get enriched(): string | null {
    return this.enrichedStart < 0 ? null : this.src.toString('utf8', this.enrichedStart, this.enrichedEnd);
  }

  /** Field names in input order (may repeat). */
  get names(): readonly string[] {
    return this.splitFields().names!;
  }

  /** Raw field values, parallel to `names`. */
  get values(): readonly string[] {
    return this.splitFields().values!;
  }

  /**
   * The first field called `name` as a decimal integer of at most ten digits
   * (optionally negative), or null when absent or not such a number.
   */
  fieldInt(name: string): number | null {
    const f = this.findField(name);
    if (f < 0) return null;
    return decimalField(this.src, indexScratch[f + 2]!, indexScratch[f + 3]!);
  }

  /**
   * The raw value of the first field called `name`. Looks fields up by
   * their bytes and decodes only the value asked for: the labeller reads a
   * few fields of every SYSCALL record, and splitting all of them into
   * strings would cost more than the rest of its work.
   */
  field(name: string): string | undefined {
    const values = this.#decoded?.values ?? null;
    if (values !== null) {
      const i = this.#decoded!.names!.indexOf(name);
      return i < 0 ? undefined : values[i];
    }
    const f = this.findField(name);
    return f < 0 ? undefined : rawValueText(this.src, indexScratch[f + 2]!, indexScratch[f + 3]!);
  }

  // findField and splitFields are private to the class by TypeScript only:
  // a `#` method makes V8 keep a brand in every instance, a slot per record.

  /** The offset in indexScratch of the first field called `name`, or -1. */
  private findField(name: string): number {
    // One shared index, of the record asked last: callers read several
    // fields of one record, then move on, so a per-record index would only
    // add garbage. (A record is identified by its bytes' buffer and offset.)
    // It is built only as far as the fields asked for: the labeller's are
    // in the first half of a SYSCALL record.
    const src = this.src;
    if (indexSrc !== src || indexStart !== this.bodyStart) {
      indexSrc = src;
      indexStart = this.bodyStart;
      indexLength = 0;
      indexNext = this.bodyStart;
    }
    const index = indexScratch;
    const len = name.length;
    for (let f = 0; f < indexLength; f += 4) {
      if (index[f + 1]! - index[f]! === len && asciiAt(src, index[f]!, name)) return f;
    }
    // A name asked of records that lack it (the labeller asks each record of
    // an event without a SYSCALL record for its pid=) is not there when its
    // `name=` is nowhere in the rest: one look per byte, not the fields
    // tokenized. The index stays where it is for the next name asked.
    if (indexNext >= 0 && !mayHoldField(src, indexNext, this.bodyEnd, name)) return -1;
    while (indexNext >= 0 && indexLength + 4 <= index.length) {
      // (A record of over 4096 fields: the rest stays unindexed.)
      indexNext = nextField(src, indexNext, this.bodyEnd, fieldRange);
      if (indexNext < 0) break;
      const f = indexLength;
      index[f] = fieldRange[0]!;
      index[f + 1] = fieldRange[1]!;
      index[f + 2] = fieldRange[2]!;
      index[f + 3] = fieldRange[3]!;
      indexLength += 4;
      if (index[f + 1]! - index[f] === len && asciiAt(src, index[f], name)) return f;
    }
    return -1;
  }

  private splitFields(): Decoded {
    const d = (this.#decoded ??= newDecoded());
    if (d.names === null) {
      const names: string[] = [];
      const values: string[] = [];
      splitFieldsOf(this.src, this.bodyStart, this.bodyEnd, names, values);
      d.names = names;
      d.values = values;
    }
    return d;
  }
}

/** A ByteRecord's decoded strings, each null until asked for. */
interface Decoded {
  time: string | null;
  body: string | null;
  names: string[] | null;
  values: string[] | null;
}

function newDecoded(): Decoded {
  return { time: null, body: null, names: null, values: null };
}

/**
 * Whether `name=` occurs in `src[from..end)` with its `=` before `end`: a
 * field called `name` there would (a field's name is followed by its `=`).
 */
function mayHoldField(src: Uint8Array, from: number, end: number, name: string): boolean {
  const n = name.length;
  if (n === 0) return true; // (a field may have an empty name: `=x`)
  const first = name.charCodeAt(0);
  for (let i = from; i + n < end; i++) {
    if (src[i] === first && src[i + n] === 0x3d /* = */ && asciiAt(src, i, name)) return true;
  }
  return false;
}

const fieldRange = new Int32Array(4);
const indexScratch = new Int32Array(4 * 4096);
let indexSrc: Buffer | null = null;
let indexStart = -1;
let indexLength = 0;
/** Where indexing the record goes on from, or -1 once all its fields are indexed. */
let indexNext = -1;

/**
 * The value `src[from..to)` as a decimal integer of at most ten digits,
 * optionally negative (what ByteRecord.fieldInt accepts), or null.
 */
export function decimalField(src: Buffer, from: number, to: number): number | null {
  let i = from;
  let sign = 1;
  if (i < to && src[i] === 0x2d) {
    sign = -1;
    i++;
  }
  if (to - i < 1 || to - i > 10) return null;
  let v = 0;
  for (; i < to; i++) {
    const d = src[i]! - 0x30;
    if (d < 0 || d > 9) return null;
    v = v * 10 + d;
  }
  return sign * v;
}

/**
 * Values decoded lately, by a hash of their bytes: values repeat from
 * record to record (`arch=c000003e`, `success=yes`, the `comm` and `exe` of
 * every process running the same program), and comparing bytes is cheaper
 * than decoding, then collecting, a new string each time (a process table
 * keeps one per process for a while). Only short ASCII values are kept, so
 * that a string's characters are its bytes; a slot holds the last value
 * that hashed to it.
 */
const INTERN_SLOTS = 1024;
const INTERN_MAX_BYTES = 64;
const interned: (string | undefined)[] = new Array<string | undefined>(INTERN_SLOTS).fill(undefined);

/** The raw value `src[from..to)` of a field, as `field()` returns it (repeated values share one string). */
export function rawValueText(src: Buffer, from: number, to: number): string {
  const n = to - from;
  if (n > INTERN_MAX_BYTES) return src.toString('utf8', from, to);
  let h = n;
  for (let i = from; i < to; i++) h = (Math.imul(h, 31) + src[i]!) | 0;
  const slot = (h ^ (h >>> 15)) & (INTERN_SLOTS - 1);
  const last = interned[slot];
  if (last !== undefined && last.length === n && asciiAt(src, from, last)) return last;
  const text = src.toString('utf8', from, to);
  if (text.length === n) interned[slot] = text;
  return text;
}

/** Record type names seen so far, by a hash of their bytes: spares a string per record. */
interface TypeEntry {
  readonly bytes: Buffer;
  readonly name: string;
  readonly type: number;
}
const typeCache = new Map<number, TypeEntry>();
const TYPE_CACHE_MAX = 1024;

function typeOf(buf: Buffer, start: number, end: number): TypeEntry {
  let h = end - start;
  for (let i = start; i < end; i++) h = (Math.imul(h, 31) + buf[i]!) | 0;
  const hit = typeCache.get(h);
  if (hit !== undefined && sameAs(hit.bytes, buf, start, end)) return hit;
  const text = buf.toString('utf8', start, end);
  let type = recordTypeNumber(text);
  let name = text;
  // The table's own string for a canonical name: the same text, but a
  // constant, which later comparisons with literals ('SYSCALL') settle at once.
  if (type !== undefined && recordTypeName(type) === text) name = recordTypeName(type);
  if (type === undefined) {
    // A bare number (some tools write the type numerically): name it.
    if (/^[0-9]{1,5}$/.test(text)) {
      type = Number(text);
      name = recordTypeName(type);
    } else {
      type = 0;
    }
  }
  const entry = { bytes: Buffer.from(buf.subarray(start, end)), name, type };
  if (typeCache.size < TYPE_CACHE_MAX) typeCache.set(h, entry);
  return entry;
}

/**
 * Whether `buf[start..end)` equals `bytes`. A loop rather than
 * Buffer.compare: type names are a few bytes, and the native call costs
 * more than the comparison on every record.
 */
function sameAs(bytes: Buffer, buf: Buffer, start: number, end: number): boolean {
  if (bytes.length !== end - start) return false;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== buf[start + i]) return false;
  return true;
}

/** Bytes of a name in auditd's enriched part (an upper-cased field name): 1, else 0. */
const ENRICHED_NAME = new Uint8Array(256);
for (const c of Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-', 'latin1')) ENRICHED_NAME[c] = 1;

/**
 * Whether `buf[from..end)` is an enriched part as auditd writes one after
 * the record's own text: `NAME=VALUE` fields, one space apart, each name an
 * upper-cased field name, each value `"…"`, `{ … }` or words with no quote
 * and no `=` (hex, `x86_64`, `execve`, `unknown family(0)`). Empty is one
 * too (auditd found nothing to add).
 *
 * This is how the real separator is told from a `\x1d` inside a user
 * message's text, which the kernel passes on raw: the enriched part is
 * always last and never holds a `\x1d`, so only the line's last `\x1d` can
 * start it; and text after a `\x1d` of the message never reads as one,
 * since the message ends with the kernel's closing `'` (a RAW log) or is
 * followed by the real separator (an ENRICHED log), and neither can be in a
 * valid enriched part. It runs for every line of an ENRICHED log: one pass,
 * no calls.
 */
export function isEnrichedPart(buf: Uint8Array, from: number, end: number): boolean {
  let i = from;
  while (i < end) {
    const token = i;
    while (i < end && ENRICHED_NAME[buf[i]!] === 1) i++;
    if (i > token && i < end && buf[i] === 0x3d /* = */) {
      i++;
      if (i === end) return false;
      const q = buf[i];
      if (q === 0x22 /* " */) {
        i++;
        while (i < end && buf[i] !== 0x22) i++;
        if (i === end) return false;
        i++;
      } else if (q === 0x7b /* { */) {
        // A socket address, `{ saddr_fam=local path=/tmp/{x} }`: up to a ` }` that ends a word.
        i++;
        while (
          i < end &&
          !(buf[i] === 0x7d && buf[i - 1] === SPACE && (i + 1 === end || buf[i + 1] === SPACE))
        ) {
          i++;
        }
        if (i === end) return false;
        i++;
      } else {
        while (i < end) {
          const c = buf[i];
          if (c === SPACE) break;
          if (c === 0x22 || c === 0x27) return false;
          i++;
        }
      }
    } else {
      // A word with no `=` goes on with the value before it (`SADDR=unknown family(0)`).
      if (token === from || token === end || buf[token] === SPACE) return false;
      for (i = token; i < end; i++) {
        const c = buf[i];
        if (c === SPACE) break;
        if (c === 0x3d || c === 0x22 || c === 0x27) return false;
      }
    }
    if (i === end) return true;
    if (buf[i] !== SPACE || i + 1 === end) return false;
    i++;
  }
  return true;
}

/** For parseStamped: a netlink payload, which has no enriched part, no link and no line of its own. */
const NETLINK_FORM = -3;
/** For parseLineBytes: the caller does not know where the line's last `\x1d` is. */
export const SEARCH_SEPARATOR = -2;

const LINK = ' record=';

/**
 * Where the body ends without the ` record=N` that contid appends to a
 * record it links a CONTAINER_ID to (the kernel series' link), or `be`
 * when it has none. contid recomputes its records and links on every
 * replay, so that replaying its own host log gives that log again; no
 * kernel record ends with such a field (the kernel never writes `record=`,
 * a user message ends with its closing quote).
 */
function withoutLink(buf: Buffer, bs: number, be: number): number {
  let d = be;
  while (d > bs && buf[d - 1]! >= 0x30 && buf[d - 1]! <= 0x39) d--;
  const digits = be - d;
  if (digits === 0 || digits > 9 || buf[d] === 0x30) return be;
  const at = d - LINK.length;
  if (at >= bs) {
    if (!asciiAt(buf, at, LINK)) return be;
    let e = at;
    while (e > bs && buf[e - 1] === SPACE) e--;
    return e;
  }
  // A record with no fields of its own: only the link, after `): `. Its
  // (empty) body ends where the link starts, at the link's space.
  if (at + 1 === bs && buf[bs - 1] === SPACE && asciiAt(buf, bs, LINK.slice(1))) return at;
  return be;
}

/**
 * Where the ` record=N` link that was left out of a record ends, when one
 * follows its body (`bodyEnd`); else -1. A body's trimmed end is followed
 * only by spaces and then the enriched part or the line's end, unless a
 * link was left out there, so this finds exactly the links withoutLink
 * took off.
 */
export function linkEnd(src: Uint8Array, bodyEnd: number): number {
  let i = bodyEnd;
  while (src[i] === SPACE) i++;
  if (!asciiAt(src, i, LINK.slice(1))) return -1;
  i += LINK.length - 1;
  while (i < src.length && src[i]! >= 0x30 && src[i]! <= 0x39) i++;
  return i;
}

/**
 * Parses `audit(SEC.MS:SERIAL)` at `at` (the index of `audit(`) and the
 * fields after it. Shared by the log-line and netlink forms. `separator` is
 * the line's last `\x1d` (SEARCH_SEPARATOR: find it; NO_SEPARATOR: the
 * record has no enriched part).
 */
function parseStamped(
  buf: Buffer,
  start: number,
  end: number,
  at: number,
  node: string | null,
  entry: TypeEntry,
  lineNo: number,
  separator: number,
): ByteRecord | ParseIssue {
  const open = at + 6; // after 'audit('
  const close = indexIn(buf, 0x29 /* ) */, open, end);
  const dot = close < 0 ? -1 : indexIn(buf, 0x2e /* . */, open, close);
  const colon = dot < 0 ? -1 : indexIn(buf, 0x3a /* : */, dot, close);
  if (colon < 0) {
    return issue(
      'ERR_BAD_TIMESTAMP',
      'Malformed timestamp: expected audit(SEC.MS:SERIAL)',
      lineNo,
      buf,
      start,
      end,
    );
  }
  const sec = decimalDigits(buf, open, dot);
  let ms = decimalDigits(buf, dot + 1, colon);
  const serial = decimalDigits(buf, colon + 1, close);
  if (sec < 0 || ms < 0 || serial < 0) {
    return issue(
      'ERR_BAD_TIMESTAMP',
      'Malformed timestamp: expected digits in audit(SEC.MS:SERIAL)',
      lineNo,
      buf,
      start,
      end,
    );
  }
  // The kernel always writes three digits; read other widths as a decimal
  // fraction (".5" is 500 ms), which is what the text means.
  const msDigits = colon - dot - 1;
  if (msDigits !== 3) ms = Math.floor(ms * 10 ** (3 - msDigits));
  const timeMs = sec * 1000 + ms;
  if (!Number.isSafeInteger(timeMs) || !Number.isSafeInteger(serial)) {
    return issue('ERR_BAD_TIMESTAMP', 'Timestamp out of range', lineNo, buf, start, end);
  }
  // Fields start after '): ' (or ') ' in old formats without the colon).
  let bs = close + 1;
  if (bs < end && buf[bs] === 0x3a) bs++;
  let gs = separator === NETLINK_FORM ? -1 : separator;
  if (separator === SEARCH_SEPARATOR) {
    gs = -1;
    for (let i = end - 1; i >= bs; i--) {
      if (buf[i] === 0x1d) {
        gs = i;
        break;
      }
    }
  }
  if (gs >= 0 && (gs < bs || !isEnrichedPart(buf, gs + 1, end))) gs = -1;
  let be = gs < 0 ? end : gs;
  while (bs < be && buf[bs] === SPACE) bs++;
  while (be > bs && buf[be - 1] === SPACE) be--;
  if (separator !== NETLINK_FORM) {
    be = withoutLink(buf, bs, be);
    if (be < bs) bs = be;
  }
  return new ByteRecord(
    buf, node, entry.type, entry.name, open, colon, timeMs, serial, bs, be,
    gs < 0 ? -1 : gs + 1, gs < 0 ? -1 : end, lineNo, separator === NETLINK_FORM ? -1 : start,
    separator === NETLINK_FORM ? end : -1,
  ); // prettier-ignore
}

/**
 * Parses one line of an audit log or of auditd's plugin stream from
 * `buf[start..end)`: `[node=N ]type=T msg=audit(SEC.MS:SERIAL): fields[\x1denriched]`.
 * `separator` is where the line's last `\x1d` is when the caller knows it
 * (-1: it has none), which spares a search of the line. A ` record=N` link
 * that contid appended is left out of the record's fields.
 */
export function parseLineBytes(
  buf: Buffer,
  start: number,
  end: number,
  lineNo: number,
  separator = SEARCH_SEPARATOR,
): ByteRecord | ParseIssue {
  // Trailing spaces and CR (RAW EOE lines end with a space).
  while (end > start && (buf[end - 1] === SPACE || buf[end - 1] === 0x0d)) end--;
  let pos = start;
  let node: string | null = null;
  if (asciiAtWithin(buf, pos, end, 'node=')) {
    const sp = indexIn(buf, SPACE, pos, end);
    if (sp < 0)
      return issue('ERR_BAD_RECORD', 'Line has a node= prefix but no record', lineNo, buf, start, end);
    node = buf.toString('utf8', pos + 5, sp);
    pos = sp + 1;
  }
  if (!asciiAtWithin(buf, pos, end, 'type=')) {
    return issue('ERR_BAD_RECORD', 'Line is not an audit record: expected type=', lineNo, buf, start, end);
  }
  const typeEnd = indexIn(buf, SPACE, pos + 5, end);
  if (typeEnd < 0)
    return issue('ERR_BAD_RECORD', 'Record has a type but no msg=audit(...)', lineNo, buf, start, end);
  if (!asciiAtWithin(buf, typeEnd + 1, end, 'msg=audit(')) {
    return issue('ERR_BAD_RECORD', 'Record has no msg=audit(...) after its type', lineNo, buf, start, end);
  }
  const entry = typeOf(buf, pos + 5, typeEnd);
  return parseStamped(buf, start, end, typeEnd + 5, node, entry, lineNo, separator);
}

/** Parses one line given as a string (see parseLineBytes). */
export function parseLine(line: string, lineNo: number): AuditRecord | ParseIssue {
  const buf = Buffer.from(line, 'utf8');
  return parseLineBytes(buf, 0, buf.length, lineNo);
}

/**
 * Type names of the records contid itself adds to its output. On input they
 * are not evidence but contid's earlier verdict, which a replay recomputes:
 * they are left out (and counted), so that replaying contid's host log gives
 * that log again rather than a second copy of each. Matched by name as
 * written, never by number: a kernel record is never one of them.
 */
const OWN_TYPES: readonly Buffer[] = ['CONTAINER_ID', 'CONTAINER_OP', 'CONTID_FORGERY'].map((n) =>
  Buffer.from(`type=${n} `, 'latin1'),
);

/** Whether the line `buf[start..end)` is one of contid's own records (see OWN_TYPES). */
export function isOwnRecordLine(buf: Buffer, start: number, end: number): boolean {
  let pos = start;
  if (asciiAtWithin(buf, pos, end, 'node=')) {
    const sp = indexIn(buf, SPACE, pos, end);
    if (sp < 0) return false;
    pos = sp + 1;
  }
  // CONTAINER_*, CONTID_*: most lines are told apart by two bytes.
  if (buf[pos + 5] !== 0x43 /* C */ || buf[pos + 6] !== 0x4f /* O */) return false;
  for (const t of OWN_TYPES) if (pos + t.length <= end && sameAs(t, buf, pos, pos + t.length)) return true;
  return false;
}

/**
 * Parses a record in the netlink payload form, `audit(SEC.MS:SERIAL): fields`,
 * whose type arrives separately as the netlink message type.
 *
 * The payload is taken as auditd's writer takes it, so that the record
 * reads and writes as it would in auditd's log: it ends at its first NUL
 * (auditd prints it with `%.*s`), each `\n` becomes a space (a user
 * message's text is the sender's own bytes, and a newline would start a
 * line of its choosing), one trailing space goes, and every other byte
 * stays as it is. The kernel never sends an enriched part, so a `\x1d` is
 * the sender's text too.
 */
export function parseNetlink(
  type: number,
  payload: string | Buffer,
  node: string | null = null,
): AuditRecord | ParseIssue {
  const buf = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return parseNetlinkBytes(type, buf, 0, buf.length, node);
}

/**
 * {@link parseNetlink} of the payload at `buf[start..end)`, e.g. one record
 * of a batch of payloads laid end to end. The record keeps `buf` alive
 * (or, for a payload holding a newline, a copy of it).
 */
export function parseNetlinkBytes(
  type: number,
  buf: Buffer,
  start: number,
  end: number,
  node: string | null = null,
): AuditRecord | ParseIssue {
  // auditd prints a payload with `%.*s`: it ends at its first NUL. (The
  // searches stay within the payload: a batch buffer holds many.)
  const view = buf.subarray(start, end);
  const nul = view.indexOf(0);
  if (nul >= 0) end = start + nul;
  let nl = view.indexOf(0x0a);
  if (nl >= 0 && start + nl < end) {
    // A copy: the caller's buffer is not ours to change.
    buf = Buffer.from(buf.subarray(start, end));
    end -= start;
    start = 0;
    for (; nl >= 0; nl = buf.indexOf(0x0a, nl + 1)) buf[nl] = SPACE;
  }
  if (end > start && buf[end - 1] === SPACE) end--;
  if (!asciiAtWithin(buf, start, end, 'audit(')) {
    return issue(
      'ERR_BAD_RECORD',
      `Netlink message of type ${type} has no audit(...) stamp`,
      0,
      buf,
      start,
      end,
    );
  }
  let entry = NETLINK_TYPES.get(type);
  if (entry === undefined) {
    entry = { bytes: EMPTY, name: recordTypeName(type), type };
    // Bounded: a netlink type is 16 bits.
    NETLINK_TYPES.set(type, entry);
  }
  return parseStamped(buf, start, end, start, node, entry, 0, NETLINK_FORM);
}

const EMPTY = Buffer.alloc(0);
/** The type entry of each netlink type seen, made once. */
const NETLINK_TYPES = new Map<number, TypeEntry>();

export interface RecordParserOptions {
  /** Longest line accepted, in bytes (default 1 MiB). */
  readonly maxLineBytes?: number;
  readonly onRecord: (record: AuditRecord) => void;
  readonly onIssue: (issue: ParseIssue) => void;
}

/** Counters of a RecordParser. */
export interface RecordParserStats {
  /** Lines read. */
  lines: number;
  /** Blank and comment lines skipped. */
  skipped: number;
  /** contid's own CONTAINER_ID, CONTAINER_OP and CONTID_FORGERY records left out (recomputed). */
  ownRecords: number;
  /** ` record=N` links contid had appended, left out of their records' fields (recomputed). */
  links: number;
  /** Last lines of an input without a final newline: read, and reported as possibly cut off. */
  unterminated: number;
}

/**
 * A push parser from text (log files, auditd's plugin stream) to records.
 * Blank lines and `#` comment lines are skipped silently; anything else that
 * is not a record is reported through `onIssue` with its line number.
 */
export class RecordParser {
  readonly #lines: LineSplitter;
  readonly #onRecord: (record: AuditRecord) => void;
  readonly #onIssue: (issue: ParseIssue) => void;
  #skipped = 0;
  #own = 0;
  #links = 0;
  #unterminated = 0;
  /**
   * The buffer whose \x1d bytes (auditd's enriched-part separators) are
   * being looked for, the position looked from, and the first one there
   * (-1: none to the buffer's end). Lines come in order, so each byte of a
   * buffer is searched once, natively, instead of each line byte by byte
   * (a RAW log's buffers have none, and are searched once in all).
   */
  #sepBuf: Buffer | null = null;
  #sepFrom = 0;
  #sepAt = -1;

  constructor(options: RecordParserOptions) {
    this.#onRecord = options.onRecord;
    this.#onIssue = options.onIssue;
    const max = options.maxLineBytes ?? 1024 * 1024;
    this.#lines = new LineSplitter({
      maxLineBytes: max,
      onLine: (buf, start, end, lineNo, terminated) => {
        this.#line(buf, start, end, lineNo, terminated);
      },
      onOverlong: (lineNo, bytes, head) => {
        this.#onIssue({
          code: 'ERR_LINE_TOO_LONG',
          message: `Line of ${bytes} bytes exceeds the limit of ${max}`,
          line: lineNo,
          excerpt: head,
        });
      },
    });
  }

  /** Lines read so far. */
  get lines(): number {
    return this.#lines.lines;
  }

  /** Blank and comment lines skipped so far. */
  get skipped(): number {
    return this.#skipped;
  }

  /** Counters so far. */
  stats(): RecordParserStats {
    return {
      lines: this.#lines.lines,
      skipped: this.#skipped,
      ownRecords: this.#own,
      links: this.#links,
      unterminated: this.#unterminated,
    };
  }

  /** Feeds a chunk; it must not be modified afterwards (records refer to it). */
  push(chunk: Buffer | string): void {
    // A buffer the splitter reuses for lines across chunks is looked at afresh.
    this.#sepBuf = null;
    this.#lines.push(chunk);
  }

  /**
   * Ends one input of several (a file): its last line ends there even
   * without a newline, and is reported if it has none.
   */
  endFile(): void {
    this.#sepBuf = null;
    this.#lines.endFile();
  }

  end(): void {
    this.#sepBuf = null;
    this.#lines.end();
  }

  /** Where the last \x1d of `buf[from..end)` is, or -1 (lines are asked for in order). */
  #lastSeparator(buf: Buffer, from: number, end: number): number {
    if (buf !== this.#sepBuf || from < this.#sepFrom || (this.#sepAt >= 0 && this.#sepAt < from)) {
      this.#sepBuf = buf;
      this.#sepFrom = from;
      this.#sepAt = buf.indexOf(0x1d, from);
    }
    const at = this.#sepAt;
    if (at < 0 || at >= end) return -1;
    // The one found is in this line: look on for the next (usually the next line's).
    const next = buf.indexOf(0x1d, at + 1);
    if (next < 0 || next >= end) {
      this.#sepFrom = at + 1;
      this.#sepAt = next;
      return at;
    }
    // Several in this line (a message's text may hold any number): its last,
    // then the first after it, in two searches whatever their number.
    this.#sepFrom = end;
    this.#sepAt = buf.indexOf(0x1d, end);
    return buf.lastIndexOf(0x1d, end - 1);
  }

  #line(buf: Buffer, start: number, end: number, lineNo: number, terminated: boolean): void {
    let i = start;
    while (i < end && (buf[i] === SPACE || buf[i] === 0x09 || buf[i] === 0x0d)) i++;
    if (i === end || buf[start] === 0x23 /* # */) {
      this.#skipped++;
      return;
    }
    if (isOwnRecordLine(buf, start, end)) {
      this.#own++;
      return;
    }
    const r = parseLineBytes(buf, start, end, lineNo, this.#lastSeparator(buf, start, end));
    if (!(r instanceof ByteRecord)) {
      this.#onIssue(r);
      return;
    }
    if (!terminated) {
      this.#unterminated++;
      this.#onIssue(
        issue(
          'ERR_UNTERMINATED_LINE',
          'Last line of the input has no newline: the record may be cut off',
          lineNo,
          buf,
          start,
          end,
          true,
        ),
      );
    }
    // A left-out link follows the body: most bodies end at their line's end or \x1d.
    const after = r.src[r.bodyEnd];
    if ((after === SPACE || after === 0x72) /* r */ && linkEnd(r.src, r.bodyEnd) >= 0) this.#links++;
    this.#onRecord(r);
  }
}
