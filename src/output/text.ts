import type { AuditEvent } from '../assemble/event.js';
import { ByteRecord } from '../parse/parser.js';
import type { AuditRecord } from '../parse/record.js';
import { ByteSink } from './byte-sink.js';

/** An extra record to write after an event's own records (CONTAINER_ID, CONTAINER_OP). */
export interface ExtraRecord {
  readonly typeName: string;
  readonly body: string;
}

/**
 * Writes events in auditd's log format into a ByteSink: each record as
 * `[node=N ]type=T msg=audit(SEC.MS:SERIAL): fields[\x1denriched]`, copying
 * the fields from the input bytes. No EOE, as in auditd's log files.
 */
export class TextEventWriter {
  readonly #sink: ByteSink;

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  /**
   * Writes an event, then any extra records with the same stamp. `links`
   * (0-based) are the records that get ` record=N` appended, the kernel
   * series' link from a record to the CONTAINER_ID that describes it.
   */
  write(event: AuditEvent, extras: readonly ExtraRecord[] = [], links: readonly number[] = []): void {
    const recs = event.records;
    for (let i = 0; i < recs.length; i++) this.#record(recs[i]!, links.includes(i) ? ` record=${i + 1}` : '');
    const s = this.#sink;
    for (const x of extras) {
      this.#head(event.node);
      s.utf8(x.typeName);
      s.ascii(` msg=audit(${event.time}:${event.serial}): `);
      s.utf8(x.body);
      s.byte(0x0a);
    }
  }

  #head(node: string | null): void {
    if (node === null) {
      this.#sink.ascii('type=');
    } else {
      this.#sink.ascii('node=');
      this.#sink.utf8(node);
      this.#sink.ascii(' type=');
    }
  }

  #record(r: AuditRecord, suffix: string): void {
    const s = this.#sink;
    this.#head(r.node);
    s.utf8(r.typeName);
    s.ascii(' msg=audit(');
    if (r instanceof ByteRecord) {
      s.bytes(r.src, r.timeStart, r.timeEnd);
      s.ascii(`:${r.serial}): `);
      if (r.line === 0) this.#netlinkBody(r.src, r.bodyStart, r.bodyEnd);
      else s.bytes(r.src, r.bodyStart, r.bodyEnd);
      s.ascii(suffix);
      if (r.enrichedStart >= 0) {
        s.byte(0x1d);
        s.bytes(r.src, r.enrichedStart, r.enrichedEnd);
      }
    } else {
      s.ascii(`${r.time}:${r.serial}): `);
      s.utf8(r.body.includes('\n') ? r.body.replaceAll('\n', ' ') : r.body);
      s.ascii(suffix);
      if (r.enriched !== null) {
        s.byte(0x1d);
        s.utf8(r.enriched);
      }
    }
    s.byte(0x0a);
  }

  /**
   * A record's fields as the kernel sent them, a newline written as a
   * space, as auditd writes it: a user message carries its sender's bytes
   * (KERNEL.md §9), and a newline would start a line of the sender's making.
   */
  #netlinkBody(src: Buffer, start: number, end: number): void {
    const s = this.#sink;
    let from = start;
    for (let nl = src.indexOf(0x0a, from); nl >= 0 && nl < end; nl = src.indexOf(0x0a, from)) {
      s.bytes(src, from, nl);
      s.byte(0x20);
      from = nl + 1;
    }
    s.bytes(src, from, end);
  }
}

/** Formats an event in auditd's log format (see TextEventWriter). */
export function formatEventText(
  event: AuditEvent,
  extras: readonly ExtraRecord[] = [],
  links: readonly number[] = [],
): string {
  const sink = new ByteSink(4096);
  new TextEventWriter(sink).write(event, extras, links);
  return sink.take().toString('utf8');
}
