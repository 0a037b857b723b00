/**
 * The record model shared by every stage of the pipeline.
 *
 * A record keeps its fields in input order as parallel arrays of names and
 * raw values (the text exactly as the kernel or auditd wrote it, quotes
 * included), which is both the cheapest shape to build on the hot path and
 * the one that round-trips to auditd's text format without loss.
 */
export interface AuditRecord {
  /** The `node=` prefix, or null when the line had none. */
  readonly node: string | null;
  /** Numeric record type (1300 for SYSCALL); 0 when only an unknown name was given. */
  readonly type: number;
  /** Type name as auditd prints it: `SYSCALL`, `UNKNOWN[2142]`. */
  readonly typeName: string;
  /** Timestamp exactly as written, `SEC.MS` (e.g. `1615114232.375`). */
  readonly time: string;
  /** The timestamp in milliseconds since the epoch, for ordering and timeouts. */
  readonly timeMs: number;
  /** The event serial number. */
  readonly serial: number;
  /** Field names in input order (may repeat). */
  readonly names: readonly string[];
  /** Raw field values, parallel to `names`. */
  readonly values: readonly string[];
  /** The fields text after `): `, as written (without the enriched part). */
  readonly body: string;
  /** The enriched part after `\x1d` (auditd ENRICHED format), or null. */
  readonly enriched: string | null;
  /** 1-based input line number; 0 when the record did not come from a text stream. */
  readonly line: number;
  /** The raw value of the first field called `name` (a faster path than `names`, when offered). */
  field?(name: string): string | undefined;
  /**
   * The first field called `name` as a decimal integer of at most ten digits
   * (optionally negative), or null when absent or not such a number.
   */
  fieldInt?(name: string): number | null;
}

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

/** Returns the raw value of the first field called `name`, or undefined. */
export function fieldValue(record: AuditRecord, name: string): string | undefined {
  if (record.field !== undefined) return record.field(name);
  const i = record.names.indexOf(name);
  return i < 0 ? undefined : record.values[i];
}

/**
 * The first field called `name` as a decimal integer of at most ten digits
 * (optionally negative), or null: AuditRecord.fieldInt where offered.
 */
export function fieldInt(record: AuditRecord, name: string): number | null {
  if (record.fieldInt !== undefined) return record.fieldInt(name);
  const v = fieldValue(record, name);
  if (v === undefined || !/^-?[0-9]{1,10}$/.test(v)) return null;
  return Number(v);
}

/** The key that groups records into events: node, time and serial. */
export function eventKey(node: string | null, time: string, serial: number): string {
  return node === null ? `${time}:${serial}` : `${node}\u0000${time}:${serial}`;
}
