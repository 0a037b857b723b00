import { isUtf8 } from 'node:buffer';
import type { AuditEvent } from '../assemble/event.js';
import { GID_FIELDS, UID_FIELDS } from '../interpret/ids.js';
import { nextField } from '../parse/fields.js';
import type { AuditRecord, ParseIssue } from '../parse/record.js';
import { ByteSink, escapeInto } from './byte-sink.js';
import { FieldNames, NAME_PRIME, NAME_SEED } from './field-names.js';
import type { IdNames, RecordContext } from './interpretation.js';
import { ENCODED_FIELDS, FieldKind, interpretValue, recordArgv } from './interpretation.js';
import { RecordType } from '../interpret/record-types-generated.js';
import { asciiAt, hexDigitValue } from '../bytes.js';

/** Labels attached to an event by the tracker, when labels are in play. */
export interface EventLabels {
  /** The full chain, leaf to root, as rendered in CONTAINER_ID (`4,^2,^1`), or null when unset. */
  readonly contid: string | null;
  /** Extra records appended to the event (CONTAINER_ID, CONTAINER_OP), as JSON-ready objects. */
  readonly records?: readonly { readonly type: string; readonly fields: Readonly<Record<string, string>> }[];
}

/** Field names that have an interpretation (or need special handling), by a hash of their bytes. */
interface Known {
  readonly name: string;
  readonly hash: number;
  readonly kind: FieldKind | 'msg';
}

function hashBytes(b: Uint8Array, from: number, to: number): number {
  let h = NAME_SEED;
  for (let i = from; i < to; i++) h = Math.imul(h ^ b[i]!, NAME_PRIME);
  return h;
}

/**
 * The known names in buckets by the low bits of their hash: an array index
 * rejects most names (every field of every record is looked up) more
 * cheaply than a Map. A bucket is a chain through KNOWN_NEXT, rarely longer
 * than one name.
 */
const KNOWN_MASK = 4095;
const KNOWN_LIST: Known[] = [];
const KNOWN_FIRST = new Int16Array(KNOWN_MASK + 1).fill(-1);
const KNOWN_NEXT: number[] = [];
function know(name: string, kind: FieldKind | 'msg'): void {
  const bytes = Buffer.from(name, 'latin1');
  const hash = hashBytes(bytes, 0, bytes.length);
  KNOWN_NEXT.push(KNOWN_FIRST[hash & KNOWN_MASK]!);
  KNOWN_FIRST[hash & KNOWN_MASK] = KNOWN_LIST.length;
  KNOWN_LIST.push({ name, hash, kind });
}
know('arch', FieldKind.Arch);
know('syscall', FieldKind.Syscall);
know('exit', FieldKind.Exit);
know('a0', FieldKind.A0);
know('ses', FieldKind.Ses);
know('msg', 'msg');
for (const n of UID_FIELDS) know(n, FieldKind.Uid);
for (const n of GID_FIELDS) know(n, FieldKind.Gid);
for (const n of ENCODED_FIELDS) know(n, FieldKind.Encoded);

/**
 * `{"type":"NAME","fields":{` per record type name, encoded once: a log has
 * a handful of types, and escaping the name for every record was a
 * measurable part of writing it. Bounded (a type name is the input's text,
 * any string): past the bound, names are encoded each time.
 */
const openings = new Map<string, Buffer>();
const OPENINGS_MAX = 1024;

// Keys written for most records, as bytes (see put).
const INTERP_OPENING = Buffer.from(',"interp":{', 'latin1');
const ARGV_OPENING = Buffer.from(',"argv":[', 'latin1');
const EVENT_OPENING = Buffer.from('{"time":"', 'latin1');
const SERIAL_KEY = Buffer.from('","serial":', 'latin1');
const NODE_KEY = Buffer.from(',"node":', 'latin1');
const NULL_NODE = Buffer.from(',"node":null', 'latin1');
const CONTID_KEY = Buffer.from(',"contid":', 'latin1');
const NULL_CONTID = Buffer.from(',"contid":null', 'latin1');
const RECORDS_KEY = Buffer.from(',"records":[', 'latin1');
/** The keys after the serial of an event with no node and no contid (NULL_NODE, NULL_CONTID, RECORDS_KEY). */
const HOST_RECORDS_KEY = Buffer.from(',"node":null,"contid":null,"records":[', 'latin1');
const EVENT_CLOSING = Buffer.from(']}\n', 'latin1');

/** Copies `bytes` into `out` at `p` (which has room); returns the new position. */
function put(bytes: Uint8Array, out: Uint8Array, p: number): number {
  for (let k = 0; k < bytes.length; k++) out[p++] = bytes[k]!;
  return p;
}

/**
 * Writes `#m` into `out` at `p` (which has room for 16 bytes); returns the
 * new position. m > 0 is a name's suffix, at most the fields of a record: a
 * hostile record repeats one name thousands of times, so this is written in
 * place rather than through the sink's calls.
 */
function putSuffix(m: number, out: Uint8Array, p: number): number {
  out[p++] = 0x23;
  const digits = m < 10 ? 1 : m < 100 ? 2 : m < 1000 ? 3 : m < 10000 ? 4 : String(m).length;
  let q = p + digits;
  for (let x = m; x > 0; x = (x / 10) | 0) out[--q] = 0x30 + (x % 10);
  return p + digits;
}

function recordOpening(typeName: string): Buffer {
  let b = openings.get(typeName);
  if (b === undefined) {
    const sink = new ByteSink(64);
    sink.ascii('{"type":');
    sink.jsonString(typeName);
    sink.ascii(',"fields":{');
    b = Buffer.from(sink.take());
    if (openings.size < OPENINGS_MAX) openings.set(typeName, b);
  }
  return b;
}

/** Whether the ASCII string `name` is at `b[at..]`. */
function nameIs(name: string, b: Uint8Array, at: number): boolean {
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) !== b[at + i]) return false;
  return true;
}

/** Kinds the enriched part already covers when present (auditd writes ARCH, SYSCALL and id names). */
function coveredByEnriched(kind: FieldKind): boolean {
  return (
    kind === FieldKind.Arch || kind === FieldKind.Syscall || kind === FieldKind.Uid || kind === FieldKind.Gid
  );
}

/**
 * Whether a known field's value can have an interpretation, judged from its
 * first byte without cutting it out of the input: most values (quoted names,
 * ids the enriched part already names) have none.
 */
function worthDecoding(
  kind: FieldKind,
  b: Uint8Array,
  vs: number,
  ve: number,
  hasEnriched: boolean,
  resolveIds: boolean,
  ctx: RecordContext,
): boolean {
  const c = b[vs];
  switch (kind) {
    case FieldKind.Arch:
    case FieldKind.Syscall:
      // Needed for the context (clone flags) even when the enriched part names them.
      return true;
    case FieldKind.Exit:
      return c === 0x2d; // only negative values are errnos
    case FieldKind.A0:
      return ctx.syscall === 'clone';
    case FieldKind.Uid:
    case FieldKind.Gid:
      // Without names to look up, only `unset` (4294967295 or -1) is an interpretation.
      return !hasEnriched && (resolveIds || ve - vs === 10 || c === 0x2d);
    case FieldKind.Ses:
      return ve - vs === 10;
    case FieldKind.Encoded:
      return c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46));
    default:
      return true;
  }
}

/**
 * Most fields written per record; the text of any further fields is kept
 * whole, as the record's `rest` (counted). Kernel records stay far below:
 * the longest, a user message or an EXECVE piece, holds under 9 KB.
 */
export const MAX_FIELDS_PER_RECORD = 4096;
const REST_KEY = Buffer.from('},"rest":"', 'latin1');
const MSG_OPENING = Buffer.from(',"msg":{', 'latin1');
const PROCTITLE = RecordType.PROCTITLE;
const EXECVE = RecordType.EXECVE;
/** Scratch for decoded hex values (proctitles, EXECVE arguments), grown to the longest seen. */
let decoded = new Uint8Array(4096);

/** The scratch, with room for `n` bytes. */
function scratch(n: number): Uint8Array {
  if (n > decoded.length) {
    let size = decoded.length;
    while (size < n) size *= 2;
    decoded = new Uint8Array(size);
  }
  return decoded;
}

/** The canonical decimal number in `b[from..to)` (no sign, no leading zero), or -1. */
function decimalAt(b: Uint8Array, from: number, to: number): number {
  if (to <= from || to - from > 7 || (b[from] === 0x30 && to - from > 1)) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const d = b[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

function hasPercent(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] === 0x25) return true;
  return false;
}

/** Whether `b[from..to)` is what isHexEncoded accepts: non-empty, even, `0-9A-F` only. */
function isUpperHex(b: Uint8Array, from: number, to: number): boolean {
  if (to <= from || ((to - from) & 1) !== 0) return false;
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46))) return false;
  }
  return true;
}

/** Record types whose fields the kernel writes as `name=value` only (1300..1399 but TTY). */
function isFieldsOnlyType(type: number): boolean {
  return type >= 1300 && type <= 1399 && type !== 1319;
}

/** Options of a JsonEventWriter. */
export interface JsonWriterOptions {
  /** Names for uids/gids, only when the user asked for them. */
  readonly ids?: IdNames | null;
  /**
   * Told of input that JSON cannot hold as it is: a word with no `=` in a
   * kernel record that has only fields (`a1` alone), which is not a field.
   * The record is written all the same.
   */
  readonly onIssue?: (issue: ParseIssue) => void;
}

/** Counters of a JsonEventWriter. */
export interface JsonWriterStats {
  /** Records with more than MAX_FIELDS_PER_RECORD fields, whose further fields went into `rest`. */
  fieldCapped: number;
  /** Words with no `=` in records that have only fields (reported through onIssue). */
  wordsWithoutValue: number;
  /** Records whose bytes were not valid UTF-8, written with U+FFFD for each bad sequence. */
  invalidUtf8: number;
  /** EXECVE records written without `argv`: their argument numbers start too far past 0 (see argvFits). */
  argvOmitted: number;
}

/**
 * Writes events as JSON lines (schema: docs/json.md) into a ByteSink,
 * copying field text from the input bytes straight into the output.
 * Every step is linear in the record's bytes: repeated names are counted
 * in a hash table, and fields past MAX_FIELDS_PER_RECORD are kept as text.
 */
export class JsonEventWriter {
  readonly #sink: ByteSink;
  readonly #ids: IdNames | null;
  readonly #onIssue: ((issue: ParseIssue) => void) | null;
  readonly #range = new Int32Array(4);
  /** The names of the record's `fields`, and of its nested `msg`. */
  readonly #names = new FieldNames(MAX_FIELDS_PER_RECORD);
  readonly #msgNames = new FieldNames(MAX_FIELDS_PER_RECORD);
  /** The last input buffer checked for valid UTF-8, and whether it was. */
  #checkedSrc: Buffer | null = null;
  #checkedValid = true;
  /** Buffers checked for valid UTF-8 (records of an event may be in several). */
  readonly #validity = new WeakMap<Buffer, boolean>();
  readonly #stats: JsonWriterStats = { fieldCapped: 0, wordsWithoutValue: 0, invalidUtf8: 0, argvOmitted: 0 };
  /** The last value text interpreted, per field kind (see #rawText). */
  readonly #lastRaw: (string | undefined)[] = new Array<string | undefined>(16).fill(undefined);
  /** Interpretations of the current record: name, value pairs. */
  readonly #interp: string[] = [];
  readonly #ctx: RecordContext = { type: 0, arch: undefined, syscall: undefined };

  constructor(sink: ByteSink, options: JsonWriterOptions = {}) {
    this.#sink = sink;
    this.#ids = options.ids ?? null;
    this.#onIssue = options.onIssue ?? null;
  }

  /** Counters so far. */
  stats(): JsonWriterStats {
    return { ...this.#stats };
  }

  /**
   * Whether a record's bytes are valid UTF-8, judged a buffer at a time (the
   * records of one input buffer are all valid when it is), and for records
   * of a buffer that is not, one by one.
   */
  #isValidUtf8(r: AuditRecord): boolean {
    const src = r.src;
    if (src !== this.#checkedSrc) {
      let valid = this.#validity.get(src);
      if (valid === undefined) {
        valid = isUtf8(src);
        this.#validity.set(src, valid);
      }
      this.#checkedSrc = src;
      this.#checkedValid = valid;
    }
    if (this.#checkedValid) return true;
    const end = r.enrichedStart < 0 ? r.bodyEnd : r.enrichedEnd;
    return isUtf8(src.subarray(r.timeStart, end));
  }

  /** Writes one event and a newline. */
  write(event: AuditEvent, labels: EventLabels | null = null): void {
    const s = this.#sink;
    const first = event.records[0];
    // Constant keys are copied into reserved room, a few calls per event.
    if (first !== undefined) {
      const src = first.src;
      const to = first.timeEnd;
      const out = s.reserve(EVENT_OPENING.length + (to - first.timeStart) + SERIAL_KEY.length);
      let p = put(EVENT_OPENING, out, s.position);
      for (let k = first.timeStart; k < to; k++) out[p++] = src[k]!;
      s.commit(put(SERIAL_KEY, out, p));
    } else {
      // No records of its own (a container's copy of an event that holds only its label operations).
      s.bytes(EVENT_OPENING, 0, EVENT_OPENING.length);
      s.jsonChars(event.time, 0, event.time.length);
      s.bytes(SERIAL_KEY, 0, SERIAL_KEY.length);
    }
    s.decimal(event.serial);
    if (event.node === null && (labels === null || labels.contid === null)) {
      s.commit(put(HOST_RECORDS_KEY, s.reserve(HOST_RECORDS_KEY.length), s.position));
    } else {
      if (event.node === null) {
        s.bytes(NULL_NODE, 0, NULL_NODE.length);
      } else {
        s.bytes(NODE_KEY, 0, NODE_KEY.length);
        s.jsonString(event.node);
      }
      if (labels === null || labels.contid === null) {
        s.bytes(NULL_CONTID, 0, NULL_CONTID.length);
      } else {
        s.bytes(CONTID_KEY, 0, CONTID_KEY.length);
        s.jsonString(labels.contid);
      }
      s.bytes(RECORDS_KEY, 0, RECORDS_KEY.length);
    }
    const recs = event.records;
    for (let i = 0; i < recs.length; i++) {
      if (i > 0) s.byte(0x2c);
      this.#record(recs[i]!);
    }
    if (labels?.records !== undefined) {
      for (const extra of labels.records) {
        s.ascii(',{"type":');
        s.jsonString(extra.type);
        s.ascii(',"fields":');
        s.utf8(JSON.stringify(extra.fields));
        s.byte(0x7d);
      }
    }
    s.bytes(EVENT_CLOSING, 0, EVENT_CLOSING.length);
  }

  /**
   * A value's text for interpretValue. The values interpreted on every
   * record repeat (`arch=c000003e`, a process's syscalls): the last text of
   * each kind is reused when the bytes match, rather than cutting a new
   * string out of the input each time.
   */
  #rawText(kind: FieldKind, src: Buffer, vs: number, ve: number): string {
    const last = this.#lastRaw[kind];
    if (last !== undefined && last.length === ve - vs) {
      let same = true;
      for (let i = 0; i < last.length && same; i++) same = last.charCodeAt(i) === src[vs + i];
      if (same) return last;
    }
    const text = src.toString('latin1', vs, ve);
    this.#lastRaw[kind] = text;
    return text;
  }

  #record(r: AuditRecord): void {
    let src: Buffer;
    let bs: number;
    let be: number;
    let es = -1;
    let ee = -1;
    const bytes = this.#isValidUtf8(r);
    if (bytes) {
      src = r.src;
      bs = r.bodyStart;
      be = r.bodyEnd;
      es = r.enrichedStart;
      ee = r.enrichedEnd;
    } else {
      // Bytes that are not valid UTF-8: each bad sequence becomes U+FFFD, as
      // JSON text must be Unicode (--format text keeps the bytes). Encode once.
      this.#stats.invalidUtf8++;
      const enriched = r.enriched;
      src = Buffer.from(enriched === null ? r.body : `${r.body}\x1d${enriched}`, 'utf8');
      bs = 0;
      be = Buffer.byteLength(r.body);
      if (enriched !== null) {
        es = be + 1;
        ee = src.length;
      }
    }
    const s = this.#sink;
    const range = this.#range;
    const interp = this.#interp;
    const ctx = this.#ctx;
    const hasEnriched = es >= 0;
    const resolveIds = this.#ids !== null;
    // (Setting an array's length is a call into the runtime: most records have none.)
    if (interp.length > 0) interp.length = 0;
    ctx.type = r.type;
    ctx.arch = undefined;
    ctx.syscall = undefined;
    let msgStart = -1;
    let msgEnd = -1;
    const opening = recordOpening(r.typeName);
    let count = 0;
    const names = this.#names;
    names.begin(src, bs, be, false);
    const fieldsOnly = isFieldsOnlyType(r.type);
    let rest = -1;
    let i = bs;
    // Reserve room for the opening and the whole fields object at once, then
    // write into the buffer directly: six bytes per input byte covers any
    // escaping, plus punctuation and #N suffixes per field.
    let out = s.reserve(opening.length + (be - bs) * 8 + 16);
    let p = put(opening, out, s.position);
    // One pass per field: the name is hashed while it is scanned, and the
    // value is copied (escaped) while its end is looked for. The grammar is
    // nextField's; the rare single-quoted and braced values use it directly.
    while (i < be) {
      while (i < be && src[i] === 0x20) i++;
      if (i >= be) break;
      const ns = i;
      let h = NAME_SEED;
      let c = 0;
      while (i < be) {
        c = src[i]!;
        if (c === 0x3d || c === 0x20) break;
        h = Math.imul(h ^ c, NAME_PRIME);
        i++;
      }
      if (i >= be || c === 0x20) {
        // A word without '=': not a field.
        if (fieldsOnly) this.#wordWithoutValue(r, src, ns, i);
        continue;
      }
      if (count === MAX_FIELDS_PER_RECORD) {
        rest = ns;
        break;
      }
      const ne = i;
      const vs = i + 1;
      // A name repeated within a record: later copies get a #N suffix so that
      // no value is lost to JSON's last-key-wins rule.
      const suffix = names.add(ns, ne, h);
      if (count > 0) out[p++] = 0x2c;
      count++;
      out[p++] = 0x22;
      p = escapeInto(src, ns, ne, out, p);
      if (suffix > 0) {
        // Room for `#N` and the rest of the fields, as reserved above.
        s.commit(p);
        out = s.reserve((be - i) * 8 + 32);
        p = putSuffix(suffix, out, s.position);
      }
      out[p++] = 0x22;
      out[p++] = 0x3a;
      out[p++] = 0x22;
      const q = vs < be ? src[vs]! : 0;
      let ve: number;
      if (q === 0x27 || q === 0x7b) {
        nextField(src, ns, be, range);
        ve = range[3]!;
        p = escapeInto(src, vs, ve, out, p);
      } else {
        // Unquoted: up to the next space. Double-quoted: up to the closing
        // quote (an unterminated one takes the rest of the line).
        const stop = q === 0x22 ? 0x22 : 0x20;
        let k = q === 0x22 ? vs + 1 : vs;
        if (q === 0x22) {
          out[p++] = 0x5c;
          out[p++] = 0x22;
        }
        while (k < be) {
          const b = src[k]!;
          if (b === stop) break;
          if (b >= 0x20 && b !== 0x22 && b !== 0x5c && b !== 0x7f) out[p++] = b;
          else p = escapeInto(src, k, k + 1, out, p);
          k++;
        }
        if (q === 0x22 && k < be) {
          out[p++] = 0x5c;
          out[p++] = 0x22;
          k++;
        }
        ve = k;
      }
      i = ve;
      out[p++] = 0x22;
      let ki = KNOWN_FIRST[h & KNOWN_MASK]!;
      if (ki < 0) continue;
      let known: Known | undefined;
      for (; ki >= 0 && known === undefined; ki = KNOWN_NEXT[ki]!) {
        const k = KNOWN_LIST[ki]!;
        if (k.hash !== h || k.name.length !== ne - ns) continue;
        // A value that would be skipped if this is its name is skipped
        // before the name's bytes are compared: most known fields of a
        // record (ids the enriched part names) end here.
        const wanted =
          k.kind === 'msg'
            ? src[vs] === 0x27
            : worthDecoding(k.kind, src, vs, ve, hasEnriched, resolveIds, ctx);
        if (wanted && nameIs(k.name, src, ns)) known = k;
      }
      if (known === undefined) continue;
      if (known.kind === 'msg') {
        // The last msg='…' wins, as when it was a key of an object.
        const quoted = ve - vs >= 2 && src[ve - 1] === 0x27;
        msgStart = quoted ? vs + 1 : -1;
        msgEnd = ve - 1;
        continue;
      }
      // Interpretation uses no sink methods, so the reserved buffer stays valid.
      const kind = known.kind;
      const v = interpretValue(kind, known.name, this.#rawText(kind, src, vs, ve), ctx, this.#ids);
      if (v !== undefined && !(hasEnriched && coveredByEnriched(kind)) && suffix === 0) {
        interp.push(known.name, v);
      }
    }
    if (rest >= 0) {
      // Fields past the cap: their text, as written.
      this.#stats.fieldCapped++;
      p = put(REST_KEY, out, p);
      p = escapeInto(src, rest, be, out, p);
      out[p++] = 0x22;
    } else {
      out[p++] = 0x7d;
    }
    s.commit(p);
    if (hasEnriched || interp.length > 0) this.#interpretations(src, es, ee);
    if (msgStart >= 0) this.#nestedMsg(src, msgStart, msgEnd);
    if (
      bytes &&
      ((r.type === PROCTITLE && this.#proctitleBytes(r)) || (r.type === EXECVE && this.#execveBytes(r)))
    ) {
      s.byte(0x7d);
      return;
    }
    const argv = r.type === EXECVE && !argvFits(r) ? null : recordArgv(r);
    if (argv === null && r.type === EXECVE) this.#stats.argvOmitted++;
    if (argv !== null) {
      s.ascii(',"argv":[');
      for (let a = 0; a < argv.length; a++) {
        if (a > 0) s.byte(0x2c);
        s.jsonString(argv[a]!);
      }
      s.byte(0x5d);
    }
    s.byte(0x7d);
  }

  /**
   * Writes `,"msg":{…}`: the fields of a user message's `msg='…'` text,
   * `src[from..to)` (without its quotes), read as auparse reads them: a
   * leading `(` of a name and a trailing `,` or `)` of an unquoted value
   * are punctuation of old PAM texts (`(hostname=?, addr=?, terminal=cron
   * res=success)`). Repeated names are suffixed as in `fields`. At most
   * MAX_FIELDS_PER_RECORD of them (the text is whole in `fields.msg`).
   */
  #nestedMsg(src: Buffer, from: number, to: number): void {
    const s = this.#sink;
    const range = this.#range;
    const names = this.#msgNames;
    names.begin(src, from, to, true);
    let out = s.reserve((to - from) * 6 + 16);
    let p = s.position;
    p = put(MSG_OPENING, out, p);
    let count = 0;
    for (let i = from; count < MAX_FIELDS_PER_RECORD && (i = nextField(src, i, to, range, true)) >= 0;) {
      let ns = range[0]!;
      const ne = range[1]!;
      const vs = range[2]!;
      let ve = range[3]!;
      if (src[ns] === 0x28 /* ( */) ns++;
      const q = src[vs];
      if (q !== 0x22 && q !== 0x27) {
        if (ve > vs && src[ve - 1] === 0x2c /* , */) ve--;
        if (ve > vs && src[ve - 1] === 0x29 /* ) */ && indexOfByte(src, 0x28, vs, ve) < 0) ve--;
      }
      const suffix = names.add(ns, ne, hashBytes(src, ns, ne));
      if (count++ > 0) out[p++] = 0x2c;
      out[p++] = 0x22;
      p = escapeInto(src, ns, ne, out, p);
      if (suffix > 0) {
        s.commit(p);
        out = s.reserve((to - i) * 6 + 32);
        p = putSuffix(suffix, out, s.position);
      }
      out[p++] = 0x22;
      out[p++] = 0x3a;
      out[p++] = 0x22;
      p = escapeInto(src, vs, ve, out, p);
      out[p++] = 0x22;
    }
    out[p++] = 0x7d;
    s.commit(p);
  }

  #wordWithoutValue(r: AuditRecord, src: Buffer, from: number, to: number): void {
    this.#stats.wordsWithoutValue++;
    if (this.#onIssue === null) return;
    const word = src.toString('utf8', from, Math.min(to, from + 200));
    this.#onIssue({
      code: 'ERR_FIELD_WITHOUT_VALUE',
      message: `Record ${r.typeName} has a word with no value, which JSON leaves out: ${JSON.stringify(word)}`,
      line: r.line,
      excerpt: word,
      kept: true,
    });
  }

  /**
   * Writes a PROCTITLE's argv straight from its hex bytes, for the common
   * case of valid UTF-8 with no `%` (which the escaped-text form would have
   * to escape). Returns false, having written nothing, for any other value.
   */
  #proctitleBytes(r: AuditRecord): boolean {
    const src = r.src;
    const range = this.#range;
    if (nextField(src, r.bodyStart, r.bodyEnd, range) < 0) return false;
    const ns = range[0]!;
    if (range[1]! - ns !== 9 || !asciiAt(src, ns, 'proctitle')) return false;
    const vs = range[2]!;
    const ve = range[3]!;
    if (ve - vs >= 2 && src[vs] === 0x22 && src[ve - 1] === 0x22) {
      // The quoted form (one argument, printable ASCII): as decodeUntrustedString has it.
      if (hasPercent(src, vs + 1, ve - 1)) return false;
      const s = this.#sink;
      const out = s.reserve((ve - vs) * 6 + 16);
      let p = s.position;
      p = put(ARGV_OPENING, out, p);
      out[p++] = 0x22;
      p = escapeInto(src, vs + 1, ve - 1, out, p);
      out[p++] = 0x22;
      out[p++] = 0x5d;
      s.commit(p);
      return true;
    }
    const n = (ve - vs) >> 1;
    if (n === 0 || (ve - vs) % 2 !== 0) return false;
    const decoded = scratch(n);
    let high = 0;
    for (let i = 0; i < n; i++) {
      const hi = hexDigitValue(src[vs + 2 * i]!);
      const lo = hexDigitValue(src[vs + 2 * i + 1]!);
      if (hi < 0 || lo < 0) return false;
      const b = (hi << 4) | lo;
      if (b === 0x25 /* % */) return false;
      decoded[i] = b;
      high |= b;
    }
    // ASCII is valid UTF-8: the native check (and the view it needs) only for other bytes.
    if ((high & 0x80) !== 0 && !isUtf8(decoded.subarray(0, n))) return false;
    const s = this.#sink;
    const out = s.reserve(n * 6 + 16);
    let p = s.position;
    p = put(ARGV_OPENING, out, p);
    let start = 0;
    let first = true;
    for (let i = 0; i <= n; i++) {
      // A trailing NUL ends the last argument rather than starting an empty one.
      if (i < n && decoded[i] !== 0) continue;
      if (i === n && start === n) break;
      if (!first) out[p++] = 0x2c;
      first = false;
      out[p++] = 0x22;
      p = escapeInto(decoded, start, i, out, p);
      out[p++] = 0x22;
      start = i + 1;
    }
    out[p++] = 0x5d;
    s.commit(p);
    return true;
  }

  /**
   * Writes an EXECVE's argv straight from its fields, for the common form:
   * `argc=N a0=… a1=…` in order, each value quoted, hex or bare, valid
   * UTF-8 with no `%` once decoded (so decodeUntrustedString would return it
   * unchanged). Returns false, having written nothing, for anything else
   * (split arguments, other names): recordArgv handles those.
   */
  #execveBytes(r: AuditRecord): boolean {
    const src = r.src;
    const range = this.#range;
    const be = r.bodyEnd;
    const s = this.#sink;
    // Six output bytes per input byte cover a quoted or bare value, three
    // per input byte a hex one; the rest is punctuation.
    const out = s.reserve((be - r.bodyStart) * 6 + 16);
    let p = s.position;
    p = put(ARGV_OPENING, out, p);
    let argc = 0;
    let i = r.bodyStart;
    while ((i = nextField(src, i, be, range)) >= 0) {
      const ns = range[0]!;
      const ne = range[1]!;
      if (src[ns] !== 0x61 /* a */) continue;
      if (ne - ns === 4 && src[ns + 1] === 0x72 && src[ns + 2] === 0x67 && src[ns + 3] === 0x63) continue; // argc
      if (decimalAt(src, ns + 1, ne) !== argc) return false;
      if (argc++ > 0) out[p++] = 0x2c;
      out[p++] = 0x22;
      const vs = range[2]!;
      const ve = range[3]!;
      if (ve - vs >= 2 && src[vs] === 0x22 && src[ve - 1] === 0x22) {
        if (hasPercent(src, vs + 1, ve - 1)) return false;
        p = escapeInto(src, vs + 1, ve - 1, out, p);
      } else if (isUpperHex(src, vs, ve)) {
        const n = (ve - vs) >> 1;
        const decoded = scratch(n);
        let high = 0;
        for (let k = 0; k < n; k++) {
          const b = (hexDigitValue(src[vs + 2 * k]!) << 4) | hexDigitValue(src[vs + 2 * k + 1]!);
          if (b === 0x25) return false;
          decoded[k] = b;
          high |= b;
        }
        if ((high & 0x80) !== 0 && !isUtf8(decoded.subarray(0, n))) return false;
        p = escapeInto(decoded, 0, n, out, p);
      } else {
        if (hasPercent(src, vs, ve)) return false;
        p = escapeInto(src, vs, ve, out, p);
      }
      out[p++] = 0x22;
    }
    out[p++] = 0x5d;
    s.commit(p);
    return true;
  }

  #interpretations(src: Buffer, es: number, ee: number): void {
    const s = this.#sink;
    const interp = this.#interp;
    const range = this.#range;
    let n = 0;
    // The enriched part is written straight into the buffer, as in #record:
    // each field takes at least two input bytes (`N=`) and at most six
    // output bytes per input byte plus six of punctuation, so six per input
    // byte (and the opening) always fit.
    const out = s.reserve(Math.max(ee - es, 0) * 6 + 16);
    let p = s.position;
    p = put(INTERP_OPENING, out, p);
    // One pass per field, nextField's grammar: the value is copied while
    // its end is looked for. A double-quoted value goes without its quotes
    // (an unterminated one as it is); single-quoted and braced ones, which
    // auditd does not write here, use nextField itself.
    for (let i = es; es >= 0 && i < ee;) {
      while (i < ee && src[i] === 0x20) i++;
      if (i >= ee) break;
      const ns = i;
      let c = 0;
      while (i < ee) {
        c = src[i]!;
        if (c === 0x3d || c === 0x20) break;
        i++;
      }
      if (i >= ee || c === 0x20) continue; // a word without '=': not a field
      if (n++ > 0) out[p++] = 0x2c;
      out[p++] = 0x22;
      p = escapeLowerInto(src, ns, i, out, p);
      out[p++] = 0x22;
      out[p++] = 0x3a;
      out[p++] = 0x22;
      const vs = i + 1;
      const q = vs < ee ? src[vs]! : 0;
      if (q === 0x27 || q === 0x7b) {
        nextField(src, ns, ee, range);
        p = escapeInto(src, vs, range[3]!, out, p);
        i = range[3]!;
      } else {
        const stop = q === 0x22 ? 0x22 : 0x20;
        const valueAt = p;
        let k = q === 0x22 ? vs + 1 : vs;
        while (k < ee) {
          const b = src[k]!;
          if (b === stop) break;
          if (b >= 0x20 && b !== 0x22 && b !== 0x5c && b !== 0x7f) out[p++] = b;
          else p = escapeInto(src, k, k + 1, out, p);
          k++;
        }
        if (q !== 0x22) {
          i = k;
        } else if (k < ee) {
          i = k + 1; // past the closing quote
        } else {
          p = escapeInto(src, vs, ee, out, valueAt); // unterminated: the value as it is
          i = ee;
        }
      }
      out[p++] = 0x22;
    }
    s.commit(p);
    for (let x = 0; x < interp.length; x += 2) {
      if (n++ > 0) s.byte(0x2c);
      s.jsonString(interp[x]!);
      s.byte(0x3a);
      s.jsonString(interp[x + 1]!);
    }
    s.byte(0x7d);
  }
}

/** escapeInto for a name, with ASCII capitals lower-cased (the enriched part's names are upper case). */
function escapeLowerInto(src: Uint8Array, from: number, to: number, out: Uint8Array, p: number): number {
  for (let i = from; i < to; i++) {
    const c = src[i]!;
    if (c >= 0x41 && c <= 0x5a) out[p++] = c | 0x20;
    else if (c >= 0x20 && c !== 0x22 && c !== 0x5c && c !== 0x7f) out[p++] = c;
    else p = escapeInto(src, i, i + 1, out, p);
  }
  return p;
}

/**
 * Whether an EXECVE record's `argv` stays within a few output bytes per input
 * byte. A record that goes on a long argument list (the kernel splits one
 * over several records) numbers its arguments from where the last one
 * stopped, and argv fills the arguments before them with empty strings: an
 * argument numbered far past the record's size (`a1048575="x"`) would make
 * a million of them out of a few bytes.
 */
function argvFits(r: AuditRecord): boolean {
  const limit = 4 * (r.bodyEnd - r.bodyStart) + 16;
  for (const name of r.names) {
    if (name.charCodeAt(0) !== 0x61 /* a */) continue;
    let n = 0;
    let i = 1;
    for (; i < name.length; i++) {
      const d = name.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) break;
      n = n * 10 + d;
      if (n > limit) return false;
    }
  }
  return true;
}

function indexOfByte(b: Uint8Array, byte: number, from: number, to: number): number {
  for (let i = from; i < to; i++) if (b[i] === byte) return i;
  return -1;
}

/**
 * Formats one event as a JSON line (without the newline). A convenience for
 * callers outside the hot path; the pipeline uses JsonEventWriter.
 */
export function formatEventJson(event: AuditEvent, labels: EventLabels | null, ids: IdNames | null): string {
  const sink = new ByteSink(4096);
  new JsonEventWriter(sink, { ids }).write(event, labels);
  const bytes = sink.take();
  return bytes.toString('utf8', 0, bytes.length - 1);
}
