/**
 * The labeller's output → store rows: what `contid run --store` and
 * `contid replay --store` hand the store. Pure; the records' text is the
 * text output's, byte for byte (src/output/text.ts), and contid's records
 * are the ones the host log writes (src/pipeline/labels.ts).
 */
import type { AuditEvent } from '../assemble/event.js';
import { labelOutput } from '../pipeline/labels.js';
import type { AuditRecord } from '../parse/record.js';
import type { LabelledEvent } from '../policy/labeller.js';
import { PayloadBuilder } from './payload.js';
import { eventFacts, type FieldSource, type StoreRow } from './row.js';

function source(r: AuditRecord): FieldSource {
  return { type: r.type, typeName: r.typeName, value: (name) => r.field(name) };
}

/** Builds rows from labelled events; one builder's buffers serve every event. */
export class LabelledRowAdapter {
  readonly #payload = new PayloadBuilder();

  /** The row of one labelled event. */
  row(le: LabelledEvent): StoreRow {
    const event: AuditEvent = le.event;
    const labels = labelOutput(le);
    for (const r of event.records) this.#payload.record(event, r);
    for (const x of labels.text) this.#payload.extra(event, x);
    const payload = this.#payload.take();
    const facts = eventFacts(event.records.map(source), labels.text, le.contid);
    return {
      timeMs: event.timeMs,
      serial: event.serial,
      node: event.node,
      contid: le.contid,
      payload,
      ...facts,
    };
  }
}
