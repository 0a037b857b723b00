import type { AuditEvent } from '../assemble/event.js';
import type { AuditRecord } from '../parse/record.js';

/** An extra record to write after an event's own records (CONTAINER_ID, CONTAINER_OP). */
export interface ExtraRecord {
  readonly typeName: string;
  readonly body: string;
}

/** Writes one record in auditd's log format, with a trailing newline. */
export function formatRecordText(r: AuditRecord, suffix = ''): string {
  const head = r.node === null ? 'type=' : `node=${r.node} type=`;
  const tail = r.enriched === null ? '' : `\x1d${r.enriched}`;
  return `${head}${r.typeName} msg=audit(${r.time}:${r.serial}): ${r.body}${suffix}${tail}\n`;
}

/**
 * Writes an event in auditd's log format: its records in order (no EOE, as in
 * auditd's log files), then any extra records with the same stamp.
 * `linkIndex` (0-based) is the record that gets ` record=N` appended, the
 * kernel series' link from a record to the CONTAINER_ID that describes it.
 */
export function formatEventText(
  event: AuditEvent,
  extras: readonly ExtraRecord[] = [],
  linkIndex = -1,
): string {
  let out = '';
  const recs = event.records;
  for (let i = 0; i < recs.length; i++) {
    out += formatRecordText(recs[i]!, i === linkIndex ? ` record=${i + 1}` : '');
  }
  const head = event.node === null ? 'type=' : `node=${event.node} type=`;
  for (const x of extras) out += `${head}${x.typeName} msg=audit(${event.time}:${event.serial}): ${x.body}\n`;
  return out;
}
