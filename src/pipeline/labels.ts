import { renderEvidence } from '../marker/evidence.js';
import { splitFields } from '../parse/fields.js';
import type { EventLabels } from '../output/json.js';
import type { ExtraRecord } from '../output/text.js';
import type { Forgery, LabelledEvent } from '../policy/labeller.js';
import { renderUntrusted } from '../policy/records.js';

/** contid's own record for a marker it refused to honour (not a kernel series record). */
export const FORGERY_TYPE = 'CONTID_FORGERY';

/**
 * contid's own record for what the markers prove beyond their MACs: a
 * marker missing or moved, a seal's verdict (src/marker/evidence.ts).
 */
export const EVIDENCE_TYPE = 'CONTID_EVIDENCE';

const NOTHING: LabelOutput = Object.freeze({ json: Object.freeze({ contid: null }), text: [], links: [] });

/** What a labelled event adds to the output, in both formats. */
export interface LabelOutput {
  readonly json: EventLabels;
  readonly text: readonly ExtraRecord[];
  /** 0-based indexes of the records that get ` record=N` in text. */
  readonly links: readonly number[];
}

/** A record body's fields by name, for JSON output (a repeated name: its last value). */
export function fieldsOf(body: string): Record<string, string> {
  const names: string[] = [];
  const values: string[] = [];
  splitFields(body, names, values);
  const out: Record<string, string> = {};
  names.forEach((n, i) => {
    out[n] = values[i]!;
  });
  return out;
}

/** `reason=wrong-sender pid=19271 uid=0 auid=4294967295 contid=42 start=… record=1`. */
export function renderForgery(f: Forgery): string {
  const n = (v: number | null): string => (v === null ? '?' : String(v));
  return (
    `reason=${f.reason} pid=${n(f.senderPid)} uid=${n(f.senderUid)} auid=${n(f.senderAuid)} ` +
    `contid=${f.senderContid ?? '-1'} start=${f.start === null ? '?' : renderUntrusted(f.start)} record=${f.record}`
  );
}

/**
 * Turns the labeller's verdict on an event into output: the event's contid,
 * CONTAINER_ID records (the acting process, then OBJ_PID targets),
 * CONTAINER_OP records, forgery reports and evidence findings, each as
 * text and as JSON fields.
 */
export function labelOutput(le: LabelledEvent): LabelOutput {
  // Most events (host processes) add nothing: share one answer.
  if (
    le.containerIdRecord === null &&
    le.objectRecords.length === 0 &&
    le.ops.length === 0 &&
    le.forgeries.length === 0 &&
    le.evidence.length === 0
  ) {
    return le.contid === null ? NOTHING : { json: { contid: le.contid }, text: [], links: [] };
  }
  const text: ExtraRecord[] = [];
  const links: number[] = [];
  if (le.containerIdRecord !== null) {
    text.push({ typeName: 'CONTAINER_ID', body: le.containerIdRecord.body });
    links.push(le.containerIdRecord.record - 1);
  }
  for (const o of le.objectRecords) {
    text.push({ typeName: 'CONTAINER_ID', body: o.body });
    links.push(o.record - 1);
  }
  for (const op of le.ops) text.push({ typeName: 'CONTAINER_OP', body: op.body });
  for (const f of le.forgeries) text.push({ typeName: FORGERY_TYPE, body: renderForgery(f) });
  for (const f of le.evidence) text.push({ typeName: EVIDENCE_TYPE, body: renderEvidence(f) });
  const json: EventLabels = {
    contid: le.contid,
    ...(text.length === 0
      ? {}
      : { records: text.map((t) => ({ type: t.typeName, fields: fieldsOf(t.body) })) }),
  };
  return { json, text, links };
}
