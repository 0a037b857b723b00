import type { ByteRecord } from './parser.js';

/**
 * The record model shared by every stage of the pipeline: the parser's
 * ByteRecord, the one kind of record there is. Records are made only by
 * parsing bytes (a log line, a netlink payload, a stored event), and keep
 * their fields in those bytes, as the kernel or auditd wrote them: the
 * writers copy them out unchanged, and fields are decoded only when read.
 */
export type AuditRecord = ByteRecord;

/** A line or message that could not be parsed into a record. */
export interface ParseIssue {
  /** Stable code: see docs/errors.md. */
  readonly code:
    | 'ERR_LINE_TOO_LONG'
    | 'ERR_BAD_RECORD'
    | 'ERR_BAD_TIMESTAMP'
    | 'ERR_UNTERMINATED_LINE'
    | 'ERR_FIELD_WITHOUT_VALUE';
  readonly message: string;
  /**
   * True when the record was read all the same and the issue is only
   * reported (a last line without a newline, a word JSON cannot hold); absent
   * when the line was skipped.
   */
  readonly kept?: boolean;
  /** 1-based input line number (0 for netlink messages). */
  readonly line: number;
  /** The start of the offending text, at most 200 characters. */
  readonly excerpt: string;
}

/** The key that groups records into events: node, time and serial. */
export function eventKey(node: string | null, time: string, serial: number): string {
  return node === null ? `${time}:${serial}` : `${node}\u0000${time}:${serial}`;
}
