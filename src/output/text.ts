import type { AuditEvent } from '../assemble/event.js';
import { linkEnd } from '../parse/parser.js';
import type { AuditRecord } from '../parse/record.js';
import { ByteSink } from './byte-sink.js';

/** An extra record to write after an event's own records (CONTAINER_ID, CONTAINER_OP). */
export interface ExtraRecord {
  readonly typeName: string;
  readonly body: string;
}

const LINE_END = 0x0a;

/**
 * Writes events in auditd's log format into a ByteSink, no EOE (as in
 * auditd's log files). A record read from a line is written as that line,
 * byte for byte (spacing, numeric types, invalid UTF-8, the enriched part):
 * evidence comes out as it went in. A netlink record is written as auditd
 * writes one, `[node=N ]type=T msg=` and the payload. The only bytes contid
 * adds are its own records and the ` record=N` links to them; a link that
 * the input carried is replaced by the one recomputed.
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
    // Usually one link or none; an event with many (OBJ_PID targets) looks them up in a set,
    // so that writing it stays linear in its records.
    const many = links.length > 8 ? new Set(links) : null;
    for (let i = 0; i < recs.length; i++) {
      const linked = links.length === 0 ? false : many === null ? links.includes(i) : many.has(i);
      this.#record(recs[i]!, linked ? i + 1 : 0);
    }
    const s = this.#sink;
    for (let e = 0; e < extras.length; e++) {
      const x = extras[e]!;
      this.#head(event.node);
      s.utf8(x.typeName);
      s.ascii(` msg=audit(${event.time}:${event.serial}): `);
      s.utf8(x.body);
      s.byte(LINE_END);
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

  #link(record: number): void {
    if (record === 0) return;
    this.#sink.ascii(' record=');
    this.#sink.decimal(record);
  }

  /** Writes a record and its newline; `link` is its 1-based number when it gets a link, else 0. */
  #record(r: AuditRecord, link: number): void {
    const s = this.#sink;
    const src = r.src;
    const from = r.lineStart;
    if (from < 0) {
      // A netlink payload: `audit(…): fields`, to the end of the payload
      // (which may share its buffer with others, end to end).
      this.#head(r.node);
      s.utf8(r.typeName);
      s.ascii(' msg=');
      s.bytes(src, r.timeStart - 6, r.bodyEnd);
      this.#link(link);
      s.bytes(src, r.bodyEnd, r.payloadEnd);
      s.byte(LINE_END);
      return;
    }
    // The rest of the line: after a link the input had (it was recomputed), else after the body.
    const dropped = linkEnd(src, r.bodyEnd);
    const rest = dropped < 0 ? r.bodyEnd : dropped;
    let end = Math.max(rest, r.enrichedEnd);
    while (end < src.length && src[end] !== LINE_END) end++;
    if (link === 0 && dropped < 0) {
      // The usual record: its line as it came, with its newline when the
      // input has one there, in one copy.
      if (end < src.length) {
        s.bytes(src, from, end + 1);
      } else {
        s.bytes(src, from, end);
        s.byte(LINE_END);
      }
      return;
    }
    s.bytes(src, from, r.bodyEnd);
    this.#link(link);
    s.bytes(src, rest, end);
    s.byte(LINE_END);
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
