import type { AuditRecord } from '../parse/record.js';

/**
 * An audit event: the records that share one (node, time, serial), in the
 * order they arrived.
 */
export interface AuditEvent {
  readonly node: string | null;
  readonly time: string;
  readonly timeMs: number;
  readonly serial: number;
  readonly records: AuditRecord[];
  /**
   * Why the assembler closed the event; `limit` when it reached the most
   * records an event may have (the records after it form another event).
   */
  readonly closedBy: 'eoe' | 'standalone' | 'proctitle' | 'timeout' | 'end' | 'capacity' | 'limit';
}
