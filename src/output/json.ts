import type { AuditEvent } from '../assemble/event.js';
import { splitFields, splitNestedMsg } from '../parse/fields.js';
import type { AuditRecord } from '../parse/record.js';
import type { IdNames, RecordContext } from './interpretation.js';
import { FieldKind, fieldKind, forEachEnriched, interpretValue, recordArgv } from './interpretation.js';

/** Labels attached to an event by the tracker, when labels are in play. */
export interface EventLabels {
  /** The full chain, leaf to root, as rendered in CONTAINER_ID (`4,^2,^1`), or null when unset. */
  readonly contid: string | null;
  /** Extra records appended to the event (CONTAINER_ID, CONTAINER_OP), as JSON-ready objects. */
  readonly records?: readonly { readonly type: string; readonly fields: Readonly<Record<string, string>> }[];
}

// Strings that need no escaping are by far the common case in audit logs, so
// test for the few characters that do before calling JSON.stringify.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** Characters that force the careful path for a whole record body. */
const BODY_NEEDS_CARE = /[\\\u0000-\u001f\ud800-\udfff]/;

/** Encodes a string as a JSON string literal. */
export function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/**
 * Per field name, decided once: its JSON key, how it is interpreted, and the
 * last record it was seen in (to spot a name repeated within a record).
 */
interface NameInfo {
  readonly key: string;
  readonly kind: FieldKind;
  seenIn: number;
}

/** Field names come from input, so the cache is bounded; past it names are looked up afresh. */
const MAX_NAMES = 4096;
const names = new Map<string, NameInfo>();
let recordSerial = 0;

function nameInfo(name: string): NameInfo {
  let info = names.get(name);
  if (info === undefined) {
    info = { key: jsonString(name) + ':', kind: fieldKind(name), seenIn: 0 };
    if (names.size < MAX_NAMES) names.set(name, info);
  }
  return info;
}

/**
 * Encodes a raw value. In a body without backslashes or control characters
 * (`clean`), a double quote can only be the value's own quoting, so the
 * common cases need no scan.
 */
function valueJson(v: string, clean: boolean): string {
  if (clean) {
    const c = v.charCodeAt(0);
    if (c === 0x22) {
      if (v.length >= 2 && v.indexOf('"', 1) === v.length - 1) return `"\\"${v.slice(1, -1)}\\""`;
    } else if (c !== 0x27 && !v.includes('"')) {
      return `"${v}"`;
    }
  }
  return JSON.stringify(v);
}

/** Reused across records (the writer is synchronous): the current record's fields. */
const scratchNames: string[] = [];
const scratchValues: string[] = [];

/** Reused across records: interpretations of the current record as name, value pairs. */
const interp: string[] = [];

function addInterp(name: string, value: string): void {
  for (let i = 0; i < interp.length; i += 2) if (interp[i] === name) return;
  interp.push(name, value);
}

function recordJson(r: AuditRecord, ids: IdNames | null): string {
  const body = r.body;
  const clean = !BODY_NEEDS_CARE.test(body);
  const rec = ++recordSerial;
  interp.length = 0;
  if (r.enriched !== null) forEachEnriched(r.enriched, addInterp);
  const ctx: RecordContext = { type: r.type, arch: undefined, syscall: undefined };
  let fields = '{';
  let msg: string | null = null;
  scratchNames.length = 0;
  scratchValues.length = 0;
  splitFields(body, scratchNames, scratchValues);
  for (let i = 0; i < scratchNames.length; i++) {
    const name = scratchNames[i]!;
    const value = scratchValues[i]!;
    const info = nameInfo(name);
    let key = info.key;
    if (info.seenIn === rec) {
      // A name repeated within a record: later copies get a #N suffix so
      // that no value is lost to JSON's last-key-wins rule.
      let m = 2;
      while (fields.includes(jsonString(`${name}#${m}`) + ':')) m++;
      key = jsonString(`${name}#${m}`) + ':';
    } else {
      info.seenIn = rec;
    }
    if (fields.length > 1) fields += ',';
    fields += key + valueJson(value, clean);
    if (info.kind !== FieldKind.None) {
      const v = interpretValue(info.kind, name, value, ctx, ids);
      if (v !== undefined) addInterp(name, v);
    } else if (name === 'msg' && value.charCodeAt(0) === 0x27) {
      msg = nestedMsgJson(value);
    }
  }
  let out = `{"type":${jsonString(r.typeName)},"fields":${fields}}`;
  if (interp.length > 0) {
    out += ',"interp":{';
    for (let x = 0; x < interp.length; x += 2) {
      if (x > 0) out += ',';
      out += jsonString(interp[x]!) + ':' + jsonString(interp[x + 1]!);
    }
    out += '}';
  }
  if (msg !== null) out += `,"msg":${msg}`;
  const argv = recordArgv(r);
  if (argv !== null) out += `,"argv":${JSON.stringify(argv)}`;
  return out + '}';
}

function nestedMsgJson(value: string): string | null {
  const n: string[] = [];
  const v: string[] = [];
  if (!splitNestedMsg(value, n, v)) return null;
  const o: Record<string, string> = {};
  for (let i = 0; i < n.length; i++) {
    let name = n[i]!;
    if (Object.hasOwn(o, name)) {
      let m = 2;
      while (Object.hasOwn(o, `${name}#${m}`)) m++;
      name = `${name}#${m}`;
    }
    o[name] = v[i]!;
  }
  return JSON.stringify(o);
}

/**
 * Writes one event as a JSON line (without the newline). The schema is
 * documented in docs/json.md.
 */
export function formatEventJson(event: AuditEvent, labels: EventLabels | null, ids: IdNames | null): string {
  let out = `{"time":"${event.time}","serial":${event.serial},"node":${event.node === null ? 'null' : jsonString(event.node)}`;
  out += `,"contid":${labels === null || labels.contid === null ? 'null' : jsonString(labels.contid)},"records":[`;
  const recs = event.records;
  for (let i = 0; i < recs.length; i++) {
    if (i > 0) out += ',';
    out += recordJson(recs[i]!, ids);
  }
  if (labels?.records !== undefined) {
    for (const extra of labels.records) {
      out += `,{"type":${jsonString(extra.type)},"fields":${JSON.stringify(extra.fields)}}`;
    }
  }
  return out + ']}';
}
