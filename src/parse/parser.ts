import { recordTypeName, recordTypeNumber } from '../interpret/record-types.js';
import { splitFields } from './fields.js';
import { LineSplitter } from './lines.js';
import type { AuditRecord, ParseIssue } from './record.js';

/** Longest excerpt of a bad line kept in a ParseIssue. */
const EXCERPT = 200;

function issue(code: ParseIssue['code'], message: string, line: number, text: string): ParseIssue {
  return { code, message, line, excerpt: text.length > EXCERPT ? text.slice(0, EXCERPT) : text };
}

/** True when the value is a ParseIssue rather than a record. */
export function isIssue(value: AuditRecord | ParseIssue): value is ParseIssue {
  return (value as ParseIssue).code !== undefined;
}

function isDigits(s: string, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/**
 * Parses `audit(SEC.MS:SERIAL)` starting at `at` (the index of `audit(`) and
 * the fields after it. Shared by the log-line and netlink forms.
 */
function parseStamped(
  text: string,
  at: number,
  node: string | null,
  type: number,
  typeName: string,
  lineNo: number,
): AuditRecord | ParseIssue {
  const open = at + 6; // after 'audit('
  const close = text.indexOf(')', open);
  const dot = text.indexOf('.', open);
  const colon = text.indexOf(':', open);
  if (close < 0 || dot < 0 || colon < 0 || !(dot < colon && colon < close)) {
    return issue('ERR_BAD_TIMESTAMP', 'Malformed timestamp: expected audit(SEC.MS:SERIAL)', lineNo, text);
  }
  if (!isDigits(text, open, dot) || !isDigits(text, dot + 1, colon) || !isDigits(text, colon + 1, close)) {
    return issue(
      'ERR_BAD_TIMESTAMP',
      'Malformed timestamp: expected digits in audit(SEC.MS:SERIAL)',
      lineNo,
      text,
    );
  }
  const time = text.slice(open, colon);
  const msDigits = colon - dot - 1;
  // The kernel always writes three digits; read other widths as a decimal
  // fraction (".5" is 500 ms), which is what the text means.
  let ms = Number(text.slice(dot + 1, colon));
  if (msDigits !== 3) ms = Math.floor(ms * 10 ** (3 - msDigits));
  const timeMs = Number(text.slice(open, dot)) * 1000 + ms;
  const serial = Number(text.slice(colon + 1, close));
  if (!Number.isSafeInteger(timeMs) || !Number.isSafeInteger(serial)) {
    return issue('ERR_BAD_TIMESTAMP', 'Timestamp out of range', lineNo, text);
  }
  // Fields start after '): ' (or ') ' in old formats without the colon).
  let start = close + 1;
  if (text.charCodeAt(start) === 0x3a /* : */) start++;
  const gs = text.indexOf('\x1d', start);
  const body = (gs < 0 ? text.slice(start) : text.slice(start, gs)).trim();
  const enriched = gs < 0 ? null : text.slice(gs + 1);
  return new ParsedRecord(node, type, typeName, time, timeMs, serial, body, enriched, lineNo);
}

/**
 * A record whose fields are split on first use. Most consumers on the hot
 * path (text output, the JSON writer, the assembler) work from the header
 * and the body text, so splitting every record up front would be wasted.
 */
class ParsedRecord implements AuditRecord {
  #names: string[] | null = null;
  #values: string[] | null = null;

  constructor(
    readonly node: string | null,
    readonly type: number,
    readonly typeName: string,
    readonly time: string,
    readonly timeMs: number,
    readonly serial: number,
    readonly body: string,
    readonly enriched: string | null,
    readonly line: number,
  ) {}

  get names(): readonly string[] {
    if (this.#names === null) this.#split();
    return this.#names!;
  }

  get values(): readonly string[] {
    if (this.#values === null) this.#split();
    return this.#values!;
  }

  #split(): void {
    const names: string[] = [];
    const values: string[] = [];
    splitFields(this.body, names, values);
    this.#names = names;
    this.#values = values;
  }
}

/**
 * Parses one line of an audit log or of auditd's plugin stream:
 * `[node=N ]type=T msg=audit(SEC.MS:SERIAL): fields[\x1denriched]`.
 */
export function parseLine(line: string, lineNo: number): AuditRecord | ParseIssue {
  let text = line;
  const last = text.charCodeAt(text.length - 1);
  if (last === 0x0d /* \r */ || last === 0x20) text = text.trimEnd();
  let pos = 0;
  let node: string | null = null;
  if (text.startsWith('node=')) {
    const sp = text.indexOf(' ');
    if (sp < 0) return issue('ERR_BAD_RECORD', 'Line has a node= prefix but no record', lineNo, text);
    node = text.slice(5, sp);
    pos = sp + 1;
  }
  if (!text.startsWith('type=', pos)) {
    return issue('ERR_BAD_RECORD', 'Line is not an audit record: expected type=', lineNo, text);
  }
  const typeEnd = text.indexOf(' ', pos + 5);
  if (typeEnd < 0) return issue('ERR_BAD_RECORD', 'Record has a type but no msg=audit(...)', lineNo, text);
  const typeName = text.slice(pos + 5, typeEnd);
  if (!text.startsWith('msg=audit(', typeEnd + 1)) {
    return issue('ERR_BAD_RECORD', 'Record has no msg=audit(...) after its type', lineNo, text);
  }
  let type = recordTypeNumber(typeName);
  let name = typeName;
  if (type === undefined) {
    // A bare number (some tools write the type numerically): name it.
    if (isDigits(typeName, 0, typeName.length) && typeName.length <= 5) {
      type = Number(typeName);
      name = recordTypeName(type);
    } else {
      type = 0;
    }
  }
  return parseStamped(text, typeEnd + 5, node, type, name, lineNo);
}

/**
 * Parses a record in the netlink payload form, `audit(SEC.MS:SERIAL): fields`,
 * whose type arrives separately as the netlink message type.
 */
export function parseNetlink(
  type: number,
  payload: string,
  node: string | null = null,
): AuditRecord | ParseIssue {
  let text = payload;
  // Some senders include the C string's terminating NUL.
  while (text.length > 0 && text.charCodeAt(text.length - 1) === 0) text = text.slice(0, -1);
  if (!text.startsWith('audit(')) {
    return issue('ERR_BAD_RECORD', `Netlink message of type ${type} has no audit(...) stamp`, 0, text);
  }
  return parseStamped(text, 0, node, type, recordTypeName(type), 0);
}

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

  constructor(options: RecordParserOptions) {
    this.#onRecord = options.onRecord;
    this.#onIssue = options.onIssue;
    const max = options.maxLineBytes ?? 1024 * 1024;
    this.#lines = new LineSplitter({
      maxLineBytes: max,
      onLine: (line, lineNo) => {
        this.#line(line, lineNo);
      },
      onOverlong: (lineNo, bytes, head) => {
        this.#onIssue(
          issue('ERR_LINE_TOO_LONG', `Line of ${bytes} bytes exceeds the limit of ${max}`, lineNo, head),
        );
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

  push(chunk: Buffer | string): void {
    this.#lines.push(chunk);
  }

  end(): void {
    this.#lines.end();
  }

  #line(line: string, lineNo: number): void {
    const c = line.charCodeAt(0);
    if (
      line.length === 0 ||
      c === 0x23 /* # */ ||
      ((c === 0x20 || c === 0x09 || c === 0x0d) && line.trim() === '')
    ) {
      this.#skipped++;
      return;
    }
    const r = parseLine(line, lineNo);
    if (isIssue(r)) this.#onIssue(r);
    else this.#onRecord(r);
  }
}
