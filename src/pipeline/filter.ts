/**
 * The event filter of `contid replay` (`--contid`, `--since`, `--pid`,
 * `--key`, `--syscall`, `--type`, `--success`), after ausearch's: each
 * criterion given must hold (and), and a criterion given several values
 * holds when one of them does (or).
 *
 * It runs after labelling: labels are a function of the whole stream, so
 * events are filtered out of the output only, never out of the tracking.
 * Pure: the caller turns time words (`today`, `boot`) into milliseconds.
 */
import type { AuditEvent } from '../assemble/event.js';
import { syscallName } from '../interpret/syscalls.js';
import { isHexEncoded, unquote } from '../interpret/hex.js';
import type { AuditRecord } from '../parse/record.js';
import type { LabelledEvent } from '../policy/labeller.js';
import { EVIDENCE_TYPE, FORGERY_TYPE } from './labels.js';
import { RecordType } from '../interpret/record-types-generated.js';

const SYSCALL = RecordType.SYSCALL;

/** A syscall by number (any arch) or by name (in the record's arch). */
export type SyscallCriterion = { readonly nr: number } | { readonly name: string };

/** What to keep. Absent criteria hold for every event. */
export interface FilterCriteria {
  /** Decimal IDs: the event's chain, or a chain its label records name, holds one. */
  readonly contids?: readonly string[];
  /** Earliest event time, ms since the epoch (inclusive). */
  readonly sinceMs?: number;
  /** Latest event time, ms since the epoch (inclusive). */
  readonly untilMs?: number;
  /** A record's `pid=` is one of these. */
  readonly pids?: readonly number[];
  /** A record's key (one of its keys, when several) is one of these, whole. */
  readonly keys?: readonly string[];
  readonly syscalls?: readonly SyscallCriterion[];
  /**
   * Record types by number, or contid's own record names (CONTAINER_ID,
   * CONTAINER_OP, CONTID_FORGERY, CONTID_EVIDENCE), which exist only in the output.
   */
  readonly types?: readonly (number | string)[];
  /** The SYSCALL record's `success=` (or a message's `res=`) is yes (true) or no. */
  readonly success?: boolean;
}

/** The keys of a raw `key=` value: `"a"`, hex of `a\x01b` (several keys), or `(null)`. */
export function keysOf(raw: string): string[] {
  if (raw === '(null)') return [];
  if (raw.startsWith('"')) return [unquote(raw)];
  if (isHexEncoded(raw)) return Buffer.from(raw, 'hex').toString('utf8').split('\x01');
  return [raw];
}

/** The IDs of a rendered chain: `4,^2,^1` holds 4, 2 and 1. */
function chainIds(rendered: string): string[] {
  return rendered.split(',^');
}

/** Whether a `success=` or `res=` value says yes; null when it says neither (or is absent). */
export function successOf(raw: string | undefined): boolean | null {
  switch (raw === undefined ? undefined : unquote(raw)) {
    case 'yes':
    case 'success':
    case '1':
      return true;
    case 'no':
    case 'failed':
    case '0':
      return false;
    default:
      return null;
  }
}

/** Decides, for each event, whether it goes to the output. */
export class EventFilter {
  readonly #c: FilterCriteria;
  readonly #contids: ReadonlySet<string> | null;
  readonly #pids: ReadonlySet<number> | null;
  readonly #keys: ReadonlySet<string> | null;
  readonly #types: ReadonlySet<number | string> | null;

  constructor(criteria: FilterCriteria) {
    this.#c = criteria;
    const set = <T>(list: readonly T[] | undefined): ReadonlySet<T> | null =>
      list === undefined || list.length === 0 ? null : new Set(list);
    this.#contids = set(criteria.contids);
    this.#pids = set(criteria.pids);
    this.#keys = set(criteria.keys);
    this.#types = set(criteria.types);
  }

  /** Whether the filter needs labels (a `--contid` criterion). */
  get needsLabels(): boolean {
    return this.#contids !== null;
  }

  /** Whether a labelled event is kept. */
  matches(le: LabelledEvent): boolean {
    return this.matchesEvent(le.event, le) && (this.#contids === null || this.#matchesContid(le));
  }

  /**
   * Whether an event is kept, on its records (and its labels, when given;
   * without them no `--contid` or contid record type matches).
   */
  matchesEvent(event: AuditEvent, le: LabelledEvent | null = null): boolean {
    const c = this.#c;
    if (c.sinceMs !== undefined && event.timeMs < c.sinceMs) return false;
    if (c.untilMs !== undefined && event.timeMs > c.untilMs) return false;
    const records = event.records;
    if (this.#pids !== null && !records.some((r) => this.#pids!.has(r.fieldInt('pid') ?? -1))) return false;
    if (this.#keys !== null && !records.some((r) => this.#hasKey(r))) return false;
    if (c.syscalls !== undefined && c.syscalls.length > 0 && !this.#matchesSyscall(records, c.syscalls)) {
      return false;
    }
    if (this.#types !== null && !this.#matchesType(records, le)) return false;
    if (c.success !== undefined && this.#success(records) !== c.success) return false;
    if (this.#contids !== null && le === null) return false;
    return true;
  }

  #hasKey(r: AuditRecord): boolean {
    const raw = r.field('key');
    return raw !== undefined && keysOf(raw).some((k) => this.#keys!.has(k));
  }

  #matchesSyscall(records: readonly AuditRecord[], wanted: readonly SyscallCriterion[]): boolean {
    for (const r of records) {
      if (r.type !== SYSCALL) continue;
      const nr = r.fieldInt('syscall');
      if (nr === null) continue;
      const arch = r.field('arch') ?? '';
      for (const w of wanted) {
        if ('nr' in w ? w.nr === nr : syscallName(arch, nr) === w.name) return true;
      }
    }
    return false;
  }

  #matchesType(records: readonly AuditRecord[], le: LabelledEvent | null): boolean {
    const types = this.#types!;
    if (records.some((r) => types.has(r.type) || types.has(r.typeName))) return true;
    if (le === null) return false;
    return (
      (types.has('CONTAINER_ID') && (le.containerIdRecord !== null || le.objectRecords.length > 0)) ||
      (types.has('CONTAINER_OP') && le.ops.length > 0) ||
      (types.has(FORGERY_TYPE) && le.forgeries.length > 0) ||
      (types.has(EVIDENCE_TYPE) && le.evidence.length > 0)
    );
  }

  /** The event's outcome: its SYSCALL's `success=`, else the first `res=`. */
  #success(records: readonly AuditRecord[]): boolean | null {
    for (const r of records) {
      if (r.type !== SYSCALL) continue;
      const v = r.field('success');
      if (v !== undefined) return successOf(v);
    }
    for (const r of records) {
      const v = r.field('res');
      if (v !== undefined) return successOf(v);
    }
    return null;
  }

  #matchesContid(le: LabelledEvent): boolean {
    const wanted = this.#contids!;
    const any = (ids: readonly string[] | null): boolean => ids !== null && ids.some((id) => wanted.has(id));
    if (any(le.chain)) return true;
    for (const o of le.objectRecords) if (any(o.chain)) return true;
    for (const op of le.ops) if (any(chainIds(op.contid)) || any(chainIds(op.oldContid))) return true;
    for (const f of le.forgeries) if (f.senderContid !== null && any(chainIds(f.senderContid))) return true;
    return false;
  }
}
