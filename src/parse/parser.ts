import { recordTypeName, recordTypeNumber } from '../interpret/record-types.js';
import { nextField, splitFieldsOf } from './fields.js';
import { LineSplitter } from './lines.js';
import type { AuditRecord, ParseIssue } from './record.js';

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
): ParseIssue {
  return { code, message, line, excerpt: buf.toString('utf8', start, Math.min(end, start + EXCERPT)) };
}

/** True when the value is a ParseIssue rather than a record. */
export function isIssue(value: AuditRecord | ParseIssue): value is ParseIssue {
  return (value as ParseIssue).code !== undefined;
}

/**
 * A record that points into the bytes it was parsed from. Strings (body,
 * enriched part, fields) are decoded only when asked for: the writers on the
 * hot path copy bytes straight from `src`.
 */
export class ByteRecord implements AuditRecord {
  /**
   * Strings decoded on request, in one object made on the first request:
   * most records never need one, and a record is made per line, so every
   * slot counts.
   */
  #decoded: Decoded | null = null;

  constructor(
    /** The bytes the record was parsed from (valid UTF-8). */
    readonly src: Buffer,
    readonly node: string | null,
    readonly type: number,
    readonly typeName: string,
    /** Range of the `SEC.MS` text in `src`. */
    readonly timeStart: number,
    readonly timeEnd: number,
    readonly timeMs: number,
    readonly serial: number,
    /** Range of the fields text in `src`. */
    readonly bodyStart: number,
    readonly bodyEnd: number,
    /** Range of the enriched part (after `\x1d`), or -1 when there is none. */
    readonly enrichedStart: number,
    readonly enrichedEnd: number,
    readonly line: number,
  ) {}

  get time(): string {
    const d = (this.#decoded ??= newDecoded());
    return (d.time ??= this.src.toString('latin1', this.timeStart, this.timeEnd));
  }

  get body(): string {
    const d = (this.#decoded ??= newDecoded());
    return (d.body ??= this.src.toString('utf8', this.bodyStart, this.bodyEnd));
  }

  get enriched(): string | null {
    return this.enrichedStart < 0 ? null : this.src.toString('utf8', this.enrichedStart, this.enrichedEnd);
  }

  get names(): readonly string[] {
    return this.#split().names!;
  }

  get values(): readonly string[] {
    return this.#split().values!;
  }

  /** The first field called `name` as an integer (see AuditRecord.fieldInt), read from the bytes. */
  fieldInt(name: string): number | null {
    const f = this.#find(name);
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
    const f = this.#find(name);
    return f < 0 ? undefined : rawValueText(this.src, indexScratch[f + 2]!, indexScratch[f + 3]!);
  }

  /** The offset in indexScratch of the first field called `name`, or -1. */
  #find(name: string): number {
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

  #split(): Decoded {
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

const fieldRange = new Int32Array(4);
const indexScratch = new Int32Array(4 * 4096);
let indexSrc: Buffer | null = null;
let indexStart = -1;
let indexLength = 0;
/** Where indexing the record goes on from, or -1 once all its fields are indexed. */
let indexNext = -1;

/** Whether the ASCII string `text` is at `src[at..]`. */
/**
 * The value `src[from..to)` as a decimal integer of at most ten digits,
 * optionally negative (what AuditRecord.fieldInt accepts), or null.
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

/** Whether the ASCII string `text` is at `src[at..]`. */
export function asciiAt(src: Buffer, at: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (src[at + i] !== text.charCodeAt(i)) return false;
  return true;
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

function startsWith(buf: Buffer, at: number, end: number, ascii: string): boolean {
  if (at + ascii.length > end) return false;
  for (let i = 0; i < ascii.length; i++) if (buf[at + i] !== ascii.charCodeAt(i)) return false;
  return true;
}

/** Reads decimal digits in `buf[from..to)`; -1 when empty or not all digits. */
function digits(buf: Buffer, from: number, to: number): number {
  if (to <= from) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = buf[i]! - 0x30;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

function indexIn(buf: Buffer, byte: number, from: number, to: number): number {
  for (let i = from; i < to; i++) if (buf[i] === byte) return i;
  return -1;
}

/**
 * Parses `audit(SEC.MS:SERIAL)` at `at` (the index of `audit(`) and the
 * fields after it. Shared by the log-line and netlink forms.
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
): AuditRecord | ParseIssue {
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
  const sec = digits(buf, open, dot);
  let ms = digits(buf, dot + 1, colon);
  const serial = digits(buf, colon + 1, close);
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
  let gs = separator >= bs ? separator : -1;
  if (separator === SEARCH_SEPARATOR) {
    // The enriched part is at the end: search backwards, within the line.
    for (let i = end - 1; i >= bs; i--) {
      if (buf[i] === 0x1d) {
        gs = i;
        break;
      }
    }
  }
  let be = gs < 0 ? end : gs;
  while (bs < be && buf[bs] === SPACE) bs++;
  while (be > bs && buf[be - 1] === SPACE) be--;
  return new ByteRecord(
    buf, node, entry.type, entry.name, open, colon, timeMs, serial, bs, be,
    gs < 0 ? -1 : gs + 1, gs < 0 ? -1 : end, lineNo,
  ); // prettier-ignore
}

const SYSCALL_TYPE = 1300;
const DAEMON_START_TYPE = 1200;

/** Whether a DAEMON_START record says auditd writes RAW (`format=raw`); `raw` when it does not say. */
function formatOf(record: AuditRecord, raw: boolean): boolean {
  const m = / format=(raw|enriched)(?: |$)/.exec(record.body);
  return m === null ? raw : m[1] === 'raw';
}

/** For parseLineBytes: the caller does not know where the line's last `\x1d` is. */
export const SEARCH_SEPARATOR = -2;

/**
 * Parses one line of an audit log or of auditd's plugin stream from
 * `buf[start..end)`: `[node=N ]type=T msg=audit(SEC.MS:SERIAL): fields[\x1denriched]`.
 * `separator` is where the line's last `\x1d` is when the caller knows it
 * (-1: it has none), which spares a search of the line.
 */
export function parseLineBytes(
  buf: Buffer,
  start: number,
  end: number,
  lineNo: number,
  separator = SEARCH_SEPARATOR,
): AuditRecord | ParseIssue {
  // Trailing spaces and CR (RAW EOE lines end with a space).
  while (end > start && (buf[end - 1] === SPACE || buf[end - 1] === 0x0d)) end--;
  let pos = start;
  let node: string | null = null;
  if (startsWith(buf, pos, end, 'node=')) {
    const sp = indexIn(buf, SPACE, pos, end);
    if (sp < 0)
      return issue('ERR_BAD_RECORD', 'Line has a node= prefix but no record', lineNo, buf, start, end);
    node = buf.toString('utf8', pos + 5, sp);
    pos = sp + 1;
  }
  if (!startsWith(buf, pos, end, 'type=')) {
    return issue('ERR_BAD_RECORD', 'Line is not an audit record: expected type=', lineNo, buf, start, end);
  }
  const typeEnd = indexIn(buf, SPACE, pos + 5, end);
  if (typeEnd < 0)
    return issue('ERR_BAD_RECORD', 'Record has a type but no msg=audit(...)', lineNo, buf, start, end);
  if (!startsWith(buf, typeEnd + 1, end, 'msg=audit(')) {
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
 * Parses a record in the netlink payload form, `audit(SEC.MS:SERIAL): fields`,
 * whose type arrives separately as the netlink message type.
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
 * of a batch of payloads laid end to end. The record keeps `buf` alive.
 */
export function parseNetlinkBytes(
  type: number,
  buf: Buffer,
  start: number,
  end: number,
  node: string | null = null,
): AuditRecord | ParseIssue {
  // Some senders include the C string's terminating NUL.
  while (end > start && buf[end - 1] === 0) end--;
  if (!startsWith(buf, start, end, 'audit(')) {
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
  // The kernel's records have no enriched part (auditd adds it when it
  // writes): a \x1d on netlink is a user message's text.
  return parseStamped(buf, start, end, start, node, entry, 0, -1);
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
  /**
   * The stream is RAW as far as its records tell: a SYSCALL record without
   * an enriched part (auditd's ENRICHED format gives every one an ARCH and
   * SYSCALL interpretation), or DAEMON_START `format=raw`. A \x1d is then
   * text: the kernel passes a user message's bytes as sent (it escapes every
   * other string), so a user message may hold one, and only auditd's
   * ENRICHED writer adds the separator after it. Until a record tells, a
   * line's last \x1d is taken as the separator.
   */
  #raw = false;

  constructor(options: RecordParserOptions) {
    this.#onRecord = options.onRecord;
    this.#onIssue = options.onIssue;
    const max = options.maxLineBytes ?? 1024 * 1024;
    this.#lines = new LineSplitter({
      maxLineBytes: max,
      onLine: (buf, start, end, lineNo) => {
        this.#line(buf, start, end, lineNo);
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

  /** Feeds a chunk; it must not be modified afterwards (records refer to it). */
  push(chunk: Buffer | string): void {
    // A buffer the splitter reuses for lines across chunks is looked at afresh.
    this.#sepBuf = null;
    this.#lines.push(chunk);
  }

  end(): void {
    this.#lines.end();
  }

  /** Where the last \x1d of `buf[from..end)` is, or -1 (lines are asked for in order). */
  #lastSeparator(buf: Buffer, from: number, end: number): number {
    if (buf !== this.#sepBuf || from < this.#sepFrom || (this.#sepAt >= 0 && this.#sepAt < from)) {
      this.#sepBuf = buf;
      this.#sepFrom = from;
      this.#sepAt = buf.indexOf(0x1d, from);
    }
    let at = this.#sepAt;
    if (at < 0 || at >= end) return -1;
    // The one found is in this line: look on for a later one (and for the next line's).
    for (;;) {
      const next = buf.indexOf(0x1d, at + 1);
      this.#sepFrom = at + 1;
      this.#sepAt = next;
      if (next < 0 || next >= end) return at;
      at = next;
    }
  }

  #line(buf: Buffer, start: number, end: number, lineNo: number): void {
    let i = start;
    while (i < end && (buf[i] === SPACE || buf[i] === 0x09 || buf[i] === 0x0d)) i++;
    if (i === end || buf[start] === 0x23 /* # */) {
      this.#skipped++;
      return;
    }
    const separator = this.#lastSeparator(buf, start, end);
    let r = parseLineBytes(buf, start, end, lineNo, this.#raw ? -1 : separator);
    if (isIssue(r)) {
      this.#onIssue(r);
      return;
    }
    if (r.type === SYSCALL_TYPE || r.type === DAEMON_START_TYPE) {
      // These tell the format, and hold no \x1d of their own: a RAW stream that
      // turned ENRICHED (a log file across a change of auditd.conf) shows it here.
      const enriched = this.#raw && separator >= 0 ? parseLineBytes(buf, start, end, lineNo, separator) : r;
      if (!isIssue(enriched)) r = enriched;
      this.#raw = r.type === SYSCALL_TYPE ? r.enriched === null : formatOf(r, this.#raw);
    }
    this.#onRecord(r);
  }
}
