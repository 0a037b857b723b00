import type { AuditRecord } from '../../src/parse/record.js';

/**
 * The same record as a plain object, not the parser's ByteRecord: code
 * with a fast path for parsed bytes reads it through its general path, so
 * tests can compare the two.
 */
export function plainRecord(r: AuditRecord): AuditRecord {
  return {
    node: r.node,
    type: r.type,
    typeName: r.typeName,
    time: r.time,
    timeMs: r.timeMs,
    serial: r.serial,
    names: [...r.names],
    values: [...r.values],
    body: r.body,
    enriched: r.enriched,
    line: r.line,
  };
}
