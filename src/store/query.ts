/**
 * Search criteria → one SQL query, after ausearch: each criterion given
 * must hold, a criterion given several values holds when one does. Pure:
 * IDs and text are resolved to row ids by the callbacks the store passes.
 *
 * The matching event ids are computed first (a MATERIALIZED CTE, so that
 * SQLite picks the index for the criteria, not for the ordering), then
 * joined to their payloads in stream order.
 */
import { StrKind } from './schema.js';

/** What `contid search` asks for. Absent criteria hold for every event. */
export interface SearchQuery {
  /**
   * Decimal IDs (an event matches when its chain, or a chain its contid
   * records name, holds one), `unknown`, or `unset` (host events).
   */
  readonly contids?: readonly string[];
  /** With contids: the ID itself only (the chain's leaf), not containers nested in it. */
  readonly exact?: boolean;
  /** Inclusive bounds, ms since the epoch. */
  readonly sinceMs?: number;
  readonly untilMs?: number;
  readonly pids?: readonly number[];
  readonly ppids?: readonly number[];
  /** Executables: a full path, or a name without `/` that matches the path's last part. */
  readonly exes?: readonly string[];
  /** Syscall names as stored (the name in the record's arch, or the number when unnamed). */
  readonly syscalls?: readonly string[];
  /** Keys, whole; an event with several keys matches on any. */
  readonly keys?: readonly string[];
  /** Record type names (the event has a record of the type). */
  readonly types?: readonly string[];
  readonly success?: boolean;
  readonly limit?: number;
}

/** How the builder turns criteria into row ids. */
export interface QueryResolvers {
  chains(ids: readonly string[], exact: boolean): number[];
  strs(kind: StrKind, match: (text: string) => boolean): number[];
}

export interface BuiltQuery {
  readonly text: string;
  readonly params: readonly (number | string)[];
}

function ints(values: readonly number[]): string {
  return `(${values.map((n) => String(Math.trunc(n))).join(',')})`;
}

function exeMatches(wanted: readonly string[]): (text: string) => boolean {
  return (text) => wanted.some((w) => (w.includes('/') ? text === w : text === w || text.endsWith(`/${w}`)));
}

/**
 * The query, or null when a criterion can match nothing in this store (an
 * ID, executable or key it has never seen).
 */
export function buildSearch(q: SearchQuery, r: QueryResolvers): BuiltQuery | null {
  const where: string[] = [];
  const params: number[] = [];
  const time = (column: string): string => {
    const parts: string[] = [];
    if (q.sinceMs !== undefined) {
      parts.push(`${column} >= ?`);
      params.push(q.sinceMs);
    }
    if (q.untilMs !== undefined) {
      parts.push(`${column} <= ?`);
      params.push(q.untilMs);
    }
    return parts.map((p) => ` AND ${p}`).join('');
  };
  const dim = (
    column: string,
    kind: StrKind,
    list: readonly string[] | undefined,
    match: (t: string) => boolean,
  ) => {
    if (list === undefined || list.length === 0) return true;
    const ids = r.strs(kind, match);
    if (ids.length === 0) return false;
    where.push(`e.${column} IN ${ints(ids)}`);
    return true;
  };
  if (q.pids !== undefined && q.pids.length > 0) where.push(`e.pid IN ${ints(q.pids)}`);
  if (q.ppids !== undefined && q.ppids.length > 0) where.push(`e.ppid IN ${ints(q.ppids)}`);
  if (q.success !== undefined) where.push(`e.success = ${q.success ? 1 : 0}`);
  const keys = q.keys ?? [];
  const types = q.types ?? [];
  const syscalls = q.syscalls ?? [];
  if (
    !dim('exe', StrKind.exe, q.exes, exeMatches(q.exes ?? [])) ||
    !dim('key', StrKind.key, keys, (t) => t.split('\x01').some((k) => keys.includes(k))) ||
    !dim('syscall', StrKind.syscall, syscalls, (t) => syscalls.includes(t)) ||
    !dim('types', StrKind.types, types, (t) => t.split(' ').some((n) => types.includes(n)))
  ) {
    return null;
  }
  let matching: string;
  if (q.contids !== undefined && q.contids.length > 0) {
    const unset = q.contids.includes('unset');
    const chains = r.chains(
      q.contids.filter((c) => c !== 'unset'),
      q.exact === true,
    );
    const parts: string[] = [];
    if (chains.length > 0) {
      const list = ints(chains);
      const rest = where.length === 0 ? '' : ` AND ${where.join(' AND ')}`;
      parts.push(`SELECT e.id FROM events e WHERE e.chain IN ${list}${time('e.time_ms')}${rest}`);
      parts.push(
        `SELECT e.id FROM event_refs x JOIN events e ON e.id = x.event WHERE x.chain IN ${list}` +
          `${time('x.time_ms')}${rest}`,
      );
    }
    if (unset) {
      const rest = where.length === 0 ? '' : ` AND ${where.join(' AND ')}`;
      parts.push(`SELECT e.id FROM events e WHERE e.chain IS NULL${time('e.time_ms')}${rest}`);
    }
    if (parts.length === 0) return null;
    matching = parts.join(' UNION ');
  } else {
    const conds = [...where];
    const t = time('e.time_ms');
    matching = `SELECT e.id FROM events e WHERE 1${t}${conds.length === 0 ? '' : ` AND ${conds.join(' AND ')}`}`;
  }
  const limit = q.limit === undefined ? '' : ` LIMIT ${Math.trunc(q.limit)}`;
  const text =
    `WITH m(id) AS MATERIALIZED (${matching}) ` +
    `SELECT e.id, e.time_ms AS timeMs, c.chain AS contid, p.data FROM m ` +
    `JOIN events e ON e.id = m.id JOIN payloads p ON p.id = e.id LEFT JOIN chains c ON c.id = e.chain ` +
    `ORDER BY e.id${limit}`;
  return { text, params };
}
