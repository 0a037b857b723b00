/**
 * auditd's remote logging protocol, as audisp-remote speaks it to auditd's
 * `tcp_listen_port` ("managed" transport; audit-userspace lib/private.h,
 * src/auditd-listen.c). Pure: no I/O.
 *
 * Every message is a 16-byte header and at most MAX_AUDIT_MESSAGE_LENGTH
 * bytes of text, one audit record per message. All fields are little-endian:
 *
 * | offset | size | field                                                  |
 * | ------ | ---- | ------------------------------------------------------ |
 * | 0      | 4    | magic 0xff0000fe (no 0x0a byte: auditd tells managed from ASCII by it) |
 * | 4      | 1    | header version, 0                                       |
 * | 5      | 1    | message version, 0                                      |
 * | 6      | 4    | type: 0 a record, 1 a heartbeat; replies have 0x40000000 |
 * | 10     | 2    | length of the text that follows                        |
 * | 12     | 4    | sequence id, copied into the reply                     |
 *
 * auditd answers each record, once it has handed it to its log, with a
 * reply carrying the same sequence id: ACK, DISKLOW (logged, with a
 * warning), DISKFULL or DISKERROR (fatal: not logged), and ENDING (sequence
 * 0) when it shuts down. The reply's text, if any, is a message in words.
 */
import { ContidSyntaxError } from '../errors.js';

export const HEADER_SIZE = 16;
export const MAGIC = 0xff0000fe;

/** Message types (AUDIT_RMW_TYPE_*). */
export const MessageType = {
  MESSAGE: 0x00000000,
  HEARTBEAT: 0x00000001,
  ACK: 0x40000000,
  ENDING: 0x40000001,
  DISKLOW: 0x50000001,
  DISKFULL: 0x60000001,
  DISKERROR: 0x60000002,
} as const;

/** Reply type bits. */
export const REPLY_MASK = 0x40000000;
export const FATAL_MASK = 0x20000000;
export const WARN_MASK = 0x10000000;

/** auditd's MAX_AUDIT_MESSAGE_LENGTH: its read buffer, header included. */
export const MAX_AUDIT_MESSAGE_LENGTH = 8970;
/** The longest record auditd 3.x reads whole: a longer one wedges the connection. */
export const MAX_RECORD_BYTES = MAX_AUDIT_MESSAGE_LENGTH - HEADER_SIZE;

/** A decoded header. */
export interface Header {
  readonly type: number;
  readonly length: number;
  readonly seq: number;
}

/** Writes a header at `offset` of `out`. */
export function encodeHeader(out: Buffer, offset: number, header: Header): void {
  out.writeUInt32LE(MAGIC, offset);
  out[offset + 4] = 0;
  out[offset + 5] = 0;
  out.writeUInt32LE(header.type >>> 0, offset + 6);
  out.writeUInt16LE(header.length, offset + 10);
  out.writeUInt32LE(header.seq >>> 0, offset + 12);
}

/**
 * The records of `bytes` (auditd text, one record per line) as a flat list
 * of `[start, end)` offsets without the line feed; empty lines are skipped
 * and a last line without a line feed counts. Returns the index of the
 * first record longer than {@link MAX_RECORD_BYTES} as `tooLong`.
 */
export function recordRanges(bytes: Buffer): { ranges: number[]; tooLong: number | undefined } {
  const ranges: number[] = [];
  let tooLong: number | undefined;
  let start = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    const next = end < 0 ? bytes.length : end + 1;
    if (end < 0) end = bytes.length;
    if (end > start) {
      if (end - start > MAX_RECORD_BYTES && tooLong === undefined) tooLong = ranges.length / 2;
      ranges.push(start, end);
    }
    start = next;
  }
  return { ranges, tooLong };
}

/**
 * Encodes records `from`..`to` of `ranges` (from {@link recordRanges}) as
 * record messages with sequence ids `firstSeq`, `firstSeq + 1`... (wrapping
 * at 2^32, skipping 0, which auditd's ENDING uses), in one buffer.
 * Returns the buffer and the next sequence id.
 */
export function encodeRecords(
  bytes: Buffer,
  span: { readonly ranges: readonly number[]; readonly from: number; readonly to: number },
  firstSeq: number,
): { buffer: Buffer; nextSeq: number } {
  let size = 0;
  for (let i = span.from; i < span.to; i++)
    size += HEADER_SIZE + span.ranges[2 * i + 1]! - span.ranges[2 * i]!;
  const buffer = Buffer.allocUnsafe(size);
  let p = 0;
  let seq = firstSeq;
  for (let i = span.from; i < span.to; i++) {
    const start = span.ranges[2 * i]!;
    const end = span.ranges[2 * i + 1]!;
    encodeHeader(buffer, p, { type: MessageType.MESSAGE, length: end - start, seq });
    bytes.copy(buffer, p + HEADER_SIZE, start, end);
    p += HEADER_SIZE + end - start;
    seq = nextSeq(seq);
  }
  return { buffer, nextSeq: seq };
}

/** The sequence id after `seq` (never 0). */
export function nextSeq(seq: number): number {
  const n = (seq + 1) >>> 0;
  return n === 0 ? 1 : n;
}

/** A reply from auditd. */
export interface Reply extends Header {
  /** Its text (e.g. "disk full"), empty for a plain ACK. */
  readonly text: string;
}

/** Raised by {@link ReplyReader} for bytes that are not replies. */
export class ProtocolError extends ContidSyntaxError<'ERR_REMOTE_PROTOCOL'> {
  constructor(message: string) {
    super(message, 'ERR_REMOTE_PROTOCOL');
  }
}

/**
 * A push parser for auditd's replies: feed it what the socket reads, in any
 * chunking; it returns the whole replies. Throws {@link ProtocolError} for a
 * bad magic number or a length over the protocol's limit (the stream cannot
 * be resynchronised after that: close the connection).
 */
export class ReplyReader {
  #pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Reply[] {
    const buf = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const replies: Reply[] = [];
    let p = 0;
    while (buf.length - p >= HEADER_SIZE) {
      const magic = buf.readUInt32LE(p);
      if (magic !== MAGIC) {
        throw new ProtocolError(
          `Cannot read a reply: bad magic number 0x${magic.toString(16).padStart(8, '0')}`,
        );
      }
      const length = buf.readUInt16LE(p + 10);
      if (length > MAX_RECORD_BYTES) {
        throw new ProtocolError(`Cannot read a reply: length ${length} is over ${MAX_RECORD_BYTES}`);
      }
      if (buf.length - p < HEADER_SIZE + length) break;
      replies.push({
        type: buf.readUInt32LE(p + 6),
        length,
        seq: buf.readUInt32LE(p + 12),
        text: buf.toString('latin1', p + HEADER_SIZE, p + HEADER_SIZE + length),
      });
      p += HEADER_SIZE + length;
    }
    this.#pending = p === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(p));
    return replies;
  }
}
