import type { AuditEvent } from '../assemble/event.js';
import type { IdNames } from './interpretation.js';
import { interpretRecord } from './interpretation.js';

/** Labels attached to an event by the tracker, when labels are in play. */
export interface EventLabels {
  /** The full chain, leaf to root, as rendered in CONTAINER_ID (`4,^2,^1`), or null when unset. */
  readonly contid: string | null;
  /** Extra records appended to the event (CONTAINER_ID, CONTAINER_OP), as JSON-ready objects. */
  readonly records?: readonly { readonly type: string; readonly fields: Readonly<Record<string, string>> }[];
}

// Strings that need no escaping are by far the common case in audit logs, so
// test for the few characters that do before calling JSON.stringify.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u2028\u2029\ud800-\udfff]/;

/** Encodes a string as a JSON string literal. */
export function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

// Reused across calls (the writer is synchronous) to avoid a Set per record.
const seenNames = new Set<string>();

function fieldsObject(names: readonly string[], values: readonly string[]): string {
  let out = '{';
  seenNames.clear();
  for (let i = 0; i < names.length; i++) {
    let name = names[i]!;
    // A name can repeat within a record; later copies get a #N suffix so
    // that no value is lost to JSON's last-key-wins rule.
    if (seenNames.has(name)) {
      let n = 2;
      while (seenNames.has(`${name}#${n}`)) n++;
      name = `${name}#${n}`;
    }
    seenNames.add(name);
    if (i > 0) out += ',';
    out += jsonString(name) + ':' + jsonString(values[i]!);
  }
  return out + '}';
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
    const r = recs[i]!;
    if (i > 0) out += ',';
    out += `{"type":${jsonString(r.typeName)},"fields":${fieldsObject(r.names, r.values)}`;
    const interp = interpretRecord(r, ids);
    if (interp.fields !== null) out += `,"interp":${JSON.stringify(interp.fields)}`;
    if (interp.argv !== null) out += `,"argv":${JSON.stringify(interp.argv)}`;
    out += '}';
  }
  if (labels?.records !== undefined) {
    for (const extra of labels.records) {
      out += `,{"type":${jsonString(extra.type)},"fields":${JSON.stringify(extra.fields)}}`;
    }
  }
  return out + ']}';
}
