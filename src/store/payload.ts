/**
 * An event's records as the store keeps them: each record's line in auditd's
 * text format, byte for byte as contid's text output writes it, so that any
 * stored event prints back as auditd text, JSON or the interpreted view with
 * the same writers `contid replay` uses.
 *
 * Layout, per record: a flags byte, the line's length (u32, little-endian),
 * then the line and its newline. Flags: bit 0, the line has auditd's
 * enriched part (its last `\x1d` starts it; a `\x1d` in a line without one is
 * text, as in a RAW log); bit 1, contid's own record (CONTAINER_ID,
 * CONTAINER_OP, CONTID_FORGERY), which follows the event's records.
 *
 * Stored, a payload is compressed with deflate and a preset dictionary of
 * audit text when that makes it smaller (docs/store.md has the figures).
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { AuditEvent } from '../assemble/event.js';
import { ByteSink } from '../output/byte-sink.js';
import { TextEventWriter, type ExtraRecord } from '../output/text.js';
import { isIssue, parseLineBytes } from '../parse/parser.js';
import type { AuditRecord } from '../parse/record.js';
import { AUDIT_DICTIONARY } from './dictionary.js';

/** contid's own record types: they follow the event's records and are not part of its input. */
export const CONTID_TYPES: ReadonlySet<string> = new Set(['CONTAINER_ID', 'CONTAINER_OP', 'CONTID_FORGERY']);

const ENRICHED = 1;
const EXTRA = 2;
const HEADER = 5;

/** The first byte of a stored payload: how the rest is encoded. */
const enum Codec {
  Plain = 0,
  /** deflate (raw) with AUDIT_DICTIONARY version 1. */
  DeflateDict1 = 1,
}

/** The event with other records: a copy, as the assembler's events keep their stamp behind getters. */
function withRecords(event: AuditEvent, records: AuditRecord[]): AuditEvent {
  const { node, time, timeMs, serial, closedBy } = event;
  return { node, time, timeMs, serial, records, closedBy };
}

/** Builds one event's payload. Reusable: `take()` returns the bytes and starts over. */
export class PayloadBuilder {
  readonly #sink = new ByteSink(16 * 1024);
  readonly #text = new TextEventWriter(this.#sink);

  /** Adds one of the event's own records, as auditd's text format writes it. */
  record(event: AuditEvent, record: AuditRecord): void {
    const at = this.#open(record.enriched === null ? 0 : ENRICHED);
    this.#text.write(withRecords(event, [record]));
    this.#close(at);
  }

  /** Adds one of contid's own records (CONTAINER_ID, CONTAINER_OP, CONTID_FORGERY) to the event. */
  extra(event: AuditEvent, extra: ExtraRecord): void {
    const at = this.#open(EXTRA);
    this.#text.write(withRecords(event, []), [extra]);
    this.#close(at);
  }

  /** Adds a record given as one line of text (no newline), with or without an enriched part. */
  line(text: string, options: { readonly enriched?: boolean; readonly extra?: boolean } = {}): void {
    const at = this.#open((options.enriched === true ? ENRICHED : 0) | (options.extra === true ? EXTRA : 0));
    this.#sink.utf8(text);
    this.#sink.byte(0x0a);
    this.#close(at);
  }

  /** The payload built so far, as a fresh buffer; the builder starts over. */
  take(): Buffer {
    return Buffer.from(this.#sink.take());
  }

  #open(flags: number): number {
    const at = this.#sink.length;
    this.#sink.byte(flags);
    this.#sink.ascii('\0\0\0\0');
    return at;
  }

  #close(at: number): void {
    const buf = this.#sink.reserve(0);
    buf.writeUInt32LE(this.#sink.length - at - HEADER, at + 1);
  }
}

/** One stored event, decoded: the event, contid's records for it, and which records they link to. */
export interface DecodedEvent {
  readonly event: AuditEvent;
  readonly extras: readonly ExtraRecord[];
  /** 0-based indexes of the records a CONTAINER_ID names with `record=N`. */
  readonly links: readonly number[];
}

/** Why a stored payload could not be read back. */
export class PayloadError extends Error {
  readonly code = 'ERR_STORE_PAYLOAD';
  constructor(message: string) {
    super(message);
    this.name = 'PayloadError';
  }
}

const LINK = /^record=([0-9]{1,6}) /;

/**
 * Reads a payload (uncompressed) back into an event. `closedBy` is not
 * stored; decoded events say 'end'.
 */
export function decodePayload(payload: Buffer): DecodedEvent {
  const records: AuditRecord[] = [];
  const extras: ExtraRecord[] = [];
  const links: number[] = [];
  let p = 0;
  while (p < payload.length) {
    if (p + HEADER > payload.length) throw new PayloadError(`Truncated record header at byte ${p}`);
    const flags = payload[p]!;
    const len = payload.readUInt32LE(p + 1);
    const start = p + HEADER;
    const end = start + len;
    if (end > payload.length || len === 0) throw new PayloadError(`Truncated record at byte ${p}`);
    // The newline is not part of the record.
    const lineEnd = end - 1;
    const sep = (flags & ENRICHED) !== 0 ? payload.lastIndexOf(0x1d, lineEnd - 1) : -1;
    const r = parseLineBytes(payload, start, lineEnd, 0, sep >= start ? sep : -1);
    if (isIssue(r))
      throw new PayloadError(`Stored record ${records.length + extras.length + 1}: ${r.message}`);
    if ((flags & EXTRA) !== 0) {
      extras.push({ typeName: r.typeName, body: r.body });
      if (r.typeName === 'CONTAINER_ID') {
        const m = LINK.exec(r.body);
        if (m !== null) links.push(Number(m[1]) - 1);
      }
    } else {
      records.push(r);
    }
    p = end;
  }
  const first = records[0];
  if (first === undefined) throw new PayloadError('Stored event has no record');
  const event: AuditEvent = {
    node: first.node,
    time: first.time,
    timeMs: first.timeMs,
    serial: first.serial,
    records,
    closedBy: 'end',
  };
  return { event, extras, links };
}

/**
 * The payload as stored: deflated with the audit dictionary when that is
 * smaller, else as is, behind a one-byte codec tag.
 */
export function packPayload(payload: Buffer, options: { readonly level?: number } = {}): Buffer {
  const deflated = deflateRawSync(payload, {
    dictionary: AUDIT_DICTIONARY,
    level: options.level ?? 6,
    // An 8 KiB window holds the dictionary and most events, and costs less
    // to set up per event than the default 32 KiB (inflate reads any window).
    windowBits: 13,
  });
  if (deflated.length + 1 < payload.length + 1) {
    const out = Buffer.allocUnsafe(deflated.length + 1);
    out[0] = Codec.DeflateDict1;
    deflated.copy(out, 1);
    return out;
  }
  const out = Buffer.allocUnsafe(payload.length + 1);
  out[0] = Codec.Plain;
  payload.copy(out, 1);
  return out;
}

/** Reverses packPayload. */
export function unpackPayload(stored: Uint8Array): Buffer {
  const bytes = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  switch (bytes[0]) {
    case Codec.Plain:
      return Buffer.from(bytes.subarray(1));
    case Codec.DeflateDict1:
      try {
        return inflateRawSync(bytes.subarray(1), { dictionary: AUDIT_DICTIONARY });
      } catch (err) {
        throw new PayloadError(`Stored event cannot be inflated: ${(err as Error).message}`);
      }
    default:
      throw new PayloadError(`Stored event has unknown encoding ${bytes[0] ?? 'none'}`);
  }
}
