/**
 * A line of contid's JSON output (docs/json.md: `contid replay --format
 * json`) → a store row, so that `contid store import` fills a store from
 * output already written. Pure.
 *
 * JSON keeps every field with its raw value, in order, so each record's
 * auditd text is rebuilt as `type=T msg=audit(TIME:SERIAL): name=value …`.
 * Two things JSON does not carry are not in the store either: auditd's
 * enriched part (the names `ENRICHED` logs add after `\x1d`; uids stay
 * numbers) and words of a record that are not `name=value` (`PAM:`).
 */
import { recordTypeNumber } from '../interpret/record-types.js';
import { CONTID_TYPES, PayloadBuilder } from './payload.js';
import { eventFacts, type FieldSource, type StoreRow } from './row.js';

/** A JSON line that is not one of contid's events. */
export interface JsonRowIssue {
  readonly code: 'ERR_BAD_JSON_EVENT';
  readonly line: number;
  readonly message: string;
}

interface JsonRecord {
  readonly type: string;
  readonly fields: Readonly<Record<string, string>>;
}

const TIME = /^([0-9]{1,12})\.([0-9]{3})$/;
// The JSON writer names a field's later copies `name#2`, `name#3`.
const REPEAT_SUFFIX = /#[0-9]+$/;
// What may stand between `type=` and ` msg=`, and in `node=`, without changing the line's shape.
const WORD = /^[^\s\x00-\x1f]+$/;

function isRecord(value: unknown): value is JsonRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as { type?: unknown; fields?: unknown };
  if (typeof r.type !== 'string' || typeof r.fields !== 'object' || r.fields === null) return false;
  return Object.values(r.fields).every((v) => typeof v === 'string');
}

function bodyOf(fields: Readonly<Record<string, string>>): string {
  return Object.entries(fields)
    .map(([name, value]) => `${name.replace(REPEAT_SUFFIX, '')}=${value}`)
    .join(' ');
}

function fieldSource(r: JsonRecord): FieldSource {
  return {
    type: recordTypeNumber(r.type) ?? 0,
    typeName: r.type,
    value: (name) => (Object.hasOwn(r.fields, name) ? r.fields[name] : undefined),
  };
}

/** Turns JSON lines into rows; one builder's buffers serve every line. */
export class JsonRowAdapter {
  readonly #payload = new PayloadBuilder();

  /** The row of one JSON line, or why it is not an event (`line` is for the message). */
  row(text: string, line: number): StoreRow | JsonRowIssue {
    const bad = (message: string): JsonRowIssue => ({ code: 'ERR_BAD_JSON_EVENT', line, message });
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return bad(`Line is not JSON: ${(err as Error).message}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return bad('Line is not a JSON object');
    }
    const e = value as {
      time?: unknown;
      serial?: unknown;
      node?: unknown;
      contid?: unknown;
      records?: unknown;
    };
    const time = typeof e.time === 'string' ? TIME.exec(e.time) : null;
    if (time === null) return bad('Event has no "time" in SEC.MS form');
    if (typeof e.serial !== 'number' || !Number.isSafeInteger(e.serial) || e.serial < 0) {
      return bad('Event has no "serial" number');
    }
    if (e.node !== null && e.node !== undefined && (typeof e.node !== 'string' || !WORD.test(e.node))) {
      return bad('Event has a "node" that is not a word');
    }
    if (e.contid !== null && e.contid !== undefined && typeof e.contid !== 'string') {
      return bad('Event has a "contid" that is not a string');
    }
    if (!Array.isArray(e.records) || e.records.length === 0 || !e.records.every(isRecord)) {
      return bad('Event has no "records" array of {type, fields}');
    }
    const records = e.records;
    if (records.some((r) => !WORD.test(r.type))) return bad('A record "type" is not a word');
    // contid's records come last; everything before is the event's own.
    let own = records.length;
    while (own > 0 && CONTID_TYPES.has(records[own - 1]!.type)) own--;
    if (own === 0) return bad('Event has no record of its own');
    const node = typeof e.node === 'string' ? e.node : null;
    const stamp = `msg=audit(${e.time as string}:${e.serial}): `;
    const head = node === null ? 'type=' : `node=${node} type=`;
    const bodies = records.map((r) => bodyOf(r.fields));
    const broken = bodies.findIndex((b) => b.includes('\n'));
    if (broken >= 0) return bad(`Record ${broken + 1} has a newline in a value`);
    const extras: { typeName: string; body: string }[] = [];
    for (let i = 0; i < records.length; i++) {
      const type = records[i]!.type;
      this.#payload.line(`${head}${type} ${stamp}${bodies[i]!}`, { extra: i >= own });
      if (i >= own) extras.push({ typeName: type, body: bodies[i]! });
    }
    const contid = typeof e.contid === 'string' ? e.contid : null;
    const facts = eventFacts(records.slice(0, own).map(fieldSource), extras, contid);
    return {
      timeMs: Number(time[1]) * 1000 + Number(time[2]),
      serial: e.serial,
      node,
      contid,
      payload: this.#payload.take(),
      ...facts,
    };
  }
}

/** Whether `row` is an issue rather than a row. */
export function isJsonRowIssue(row: StoreRow | JsonRowIssue): row is JsonRowIssue {
  return (row as JsonRowIssue).code === 'ERR_BAD_JSON_EVENT';
}
