/**
 * What the store keeps of one event: the facts it is searched by, and its
 * records as a payload. Built by pure adapters from contid's two shapes of
 * a labelled event (the labeller's LabelledEvent, and a line of contid's
 * JSON output; see labelled-row.ts and json-row.ts), so both land in the
 * same rows.
 */
import { keysOf, successOf } from '../pipeline/filter.js';
import { isUtf8 } from 'node:buffer';
import { decodeHexString, decodeUntrustedString, isHexEncoded } from '../interpret/hex.js';
import { syscallName } from '../interpret/syscalls.js';
import { isNewPidClone, isParentClone, isThreadClone, lifecycleKind } from '../track/lifecycle.js';
import { splitFields } from '../parse/fields.js';
import { RecordType } from '../interpret/record-types-generated.js';

/** A CONTAINER_OP record's facts (`op=set opid=8730 contid=4 old-contid=-1 pid=… res=1`). */
export interface StoreOp {
  readonly op: string;
  readonly opid: number | null;
  /** The value asked for (set, adopt), or the target's chain (grant). */
  readonly contid: string;
  /** The target's chain before the operation, `-1` when unset. */
  readonly oldContid: string;
  /** 1 accepted, 0 refused, null when the record does not say. */
  readonly res: number | null;
  readonly errno: string | null;
  readonly callerPid: number | null;
  readonly uid: number | null;
  readonly auid: number | null;
  readonly exe: string | null;
  /** The container's name a set gave (`name=`), decoded; null when it gave none. */
  readonly name: string | null;
  /** The container's metadata a set gave (`meta.KEY=`), decoded, in order; null when it gave none. */
  readonly meta: Readonly<Record<string, string>> | null;
  /** The whole record body, for fields this version does not know. */
  readonly body: string;
}

/** What a process-lifecycle syscall did, when it succeeded. */
export type Lifecycle =
  /**
   * fork, vfork, clone without CLONE_THREAD: `child` is the `exit=` value
   * (the new process's pid in the parent's pid namespace), `parent` its
   * parent (the caller, or the caller's parent with CLONE_PARENT).
   */
  | {
      readonly kind: 'fork';
      readonly child: number;
      readonly parent: number;
      readonly newPidNamespace: boolean;
    }
  /** clone3: a process or a thread, which the record cannot tell. */
  | {
      readonly kind: 'clone3';
      readonly child: number;
      readonly parent: number;
      readonly newPidNamespace: boolean;
    }
  | { readonly kind: 'exec' }
  | { readonly kind: 'exit' };

/** One event as the store ingests it. */
export interface StoreRow {
  readonly timeMs: number;
  readonly serial: number;
  readonly node: string | null;
  /** The acting process's chain leaf to root (`4,^2,^1`), `unknown`, or null for the host. */
  readonly contid: string | null;
  /**
   * Other chains the event's contid records name: OBJ_PID targets, the
   * IDs of CONTAINER_OP records, forgery senders. Distinct, without `contid`.
   */
  readonly refs: readonly string[];
  readonly pid: number | null;
  readonly ppid: number | null;
  /** The executable, decoded (`/usr/bin/id`). */
  readonly exe: string | null;
  /** The syscall's name in the record's arch, or its number when contid has no name for it. */
  readonly syscall: string | null;
  readonly exit: number | null;
  /** The keys of the event's records, joined by `\x01` (auditd's own separator for several keys). */
  readonly key: string | null;
  readonly success: boolean | null;
  /** The distinct record type names, contid's records included, sorted and joined by spaces. */
  readonly types: string;
  readonly life: Lifecycle | null;
  readonly ops: readonly StoreOp[];
  readonly forgeries: number;
  /** The records (payload.ts layout), uncompressed. */
  readonly payload: Uint8Array;
}

/** A record as the fact extraction reads it: its type and its raw field values by name. */
export interface FieldSource {
  readonly type: number;
  readonly typeName: string;
  value(name: string): string | undefined;
}

const SYSCALL = RecordType.SYSCALL;

function int(raw: string | undefined): number | null {
  if (raw === undefined || !/^-?[0-9]{1,19}$/.test(raw)) return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : null;
}

function exeOf(raw: string | undefined): string | null {
  if (raw === undefined || raw === '(null)' || raw === '?' || raw === '') return null;
  return decodeUntrustedString(raw);
}

function fieldsOf(body: string): Map<string, string> {
  const names: string[] = [];
  const values: string[] = [];
  splitFields(body, names, values);
  const out = new Map<string, string>();
  for (let i = 0; i < names.length; i++) if (!out.has(names[i]!)) out.set(names[i]!, values[i]!);
  return out;
}

/**
 * An untrusted-string value (`"web"`, or hex) as the text it holds: the
 * name and metadata are shown as given, so, unlike an executable's path,
 * a `%` stays itself. Bytes that are not UTF-8 are written `%XX`.
 */
function describedText(raw: string): string {
  if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) return raw.slice(1, -1);
  if (!isHexEncoded(raw)) return raw;
  const bytes = Buffer.from(raw, 'hex');
  return isUtf8(bytes) ? bytes.toString('utf8') : decodeHexString(raw);
}

/** A set's `meta.KEY=` fields, decoded, or null when it has none. */
function metaOf(f: ReadonlyMap<string, string>): Record<string, string> | null {
  const entries: [string, string][] = [];
  for (const [name, raw] of f) {
    if (name.startsWith('meta.') && name.length > 5) entries.push([name.slice(5), describedText(raw)]);
  }
  // fromEntries makes own properties, a `__proto__` key included.
  return entries.length === 0 ? null : Object.fromEntries(entries);
}

/** A CONTAINER_OP body's facts. */
export function parseOp(body: string): StoreOp {
  const f = fieldsOf(body);
  const name = f.get('name');
  return {
    op: f.get('op') ?? '?',
    opid: int(f.get('opid')),
    contid: f.get('contid') ?? '?',
    oldContid: f.get('old-contid') ?? '?',
    res: int(f.get('res')),
    errno: f.get('errno') ?? null,
    callerPid: int(f.get('pid')),
    uid: int(f.get('uid')),
    auid: int(f.get('auid')),
    exe: exeOf(f.get('exe')),
    name: name === undefined ? null : describedText(name),
    meta: metaOf(f),
    body,
  };
}

/** Whether `text` is a chain worth indexing: `4`, `4,^2,^1` or `unknown` (not `-1` or `?`). */
function isChain(text: string | undefined): text is string {
  return text !== undefined && (text === 'unknown' || /^[0-9]{1,20}(,\^[0-9]{1,20})*$/.test(text));
}

/** The facts of an event from its records and contid's records for it. */
export function eventFacts(
  records: readonly FieldSource[],
  extras: readonly { readonly typeName: string; readonly body: string }[],
  contid: string | null,
): Omit<StoreRow, 'timeMs' | 'serial' | 'node' | 'contid' | 'payload'> {
  let pid: number | null = null;
  let ppid: number | null = null;
  let exe: string | null = null;
  let syscall: string | null = null;
  let exit: number | null = null;
  let key: string | null = null;
  let success: boolean | null = null;
  let life: Lifecycle | null = null;
  const sys = records.find((r) => r.type === SYSCALL);
  if (sys !== undefined) {
    pid = int(sys.value('pid'));
    ppid = int(sys.value('ppid'));
    exe = exeOf(sys.value('exe'));
    exit = int(sys.value('exit'));
    success = successOf(sys.value('success'));
    const arch = sys.value('arch') ?? '';
    const nr = int(sys.value('syscall'));
    if (nr !== null) {
      syscall = syscallName(arch, nr) ?? String(nr);
      // exit_group never returns: its record has no success= (nor exit=).
      if (success !== false) life = lifecycleOf(sys, arch, nr, { pid, ppid, exit, success });
    }
  } else {
    for (const r of records) {
      pid ??= int(r.value('pid'));
      exe ??= exeOf(r.value('exe'));
      success ??= successOf(r.value('res'));
    }
  }
  // Any record's key, as ausearch -k matches (a CONFIG_CHANGE names the rule's key).
  const keys = new Set<string>();
  for (const r of records) {
    const raw = r.value('key');
    if (raw !== undefined) for (const k of keysOf(raw)) keys.add(k);
  }
  key = keys.size === 0 ? null : [...keys].join('\x01');
  const types = new Set<string>();
  for (const r of records) types.add(r.typeName);
  const refs = new Set<string>();
  const ops: StoreOp[] = [];
  let forgeries = 0;
  for (const x of extras) {
    types.add(x.typeName);
    if (x.typeName === 'CONTAINER_OP') {
      const op = parseOp(x.body);
      ops.push(op);
      if (isChain(op.contid)) refs.add(op.contid);
      if (isChain(op.oldContid)) refs.add(op.oldContid);
    } else if (x.typeName === 'CONTAINER_ID') {
      const c = fieldsOf(x.body).get('contid');
      if (isChain(c)) refs.add(c);
    } else if (x.typeName === 'CONTID_FORGERY') {
      forgeries++;
      const c = fieldsOf(x.body).get('contid');
      if (isChain(c)) refs.add(c);
    }
  }
  if (contid !== null) refs.delete(contid);
  return {
    refs: [...refs],
    pid,
    ppid,
    exe,
    syscall,
    exit,
    key,
    success,
    types: [...types].sort().join(' '),
    life,
    ops,
    forgeries,
  };
}

function lifecycleOf(
  sys: FieldSource,
  arch: string,
  nr: number,
  f: { pid: number | null; ppid: number | null; exit: number | null; success: boolean | null },
): Lifecycle | null {
  const kind = lifecycleKind(arch, nr);
  if (kind !== 'exit-group' && f.success !== true) return null;
  switch (kind) {
    case 'execve':
      return { kind: 'exec' };
    case 'exit-group':
      return { kind: 'exit' };
    case 'fork':
    case 'clone':
    case 'clone3': {
      if (f.exit === null || f.exit <= 0 || f.pid === null) return null;
      if (kind === 'clone') {
        const a0 = sys.value('a0') ?? '';
        if (isThreadClone(a0)) return null;
        // CLONE_PARENT: the child is the caller's sibling.
        const parent = isParentClone(a0) ? (f.ppid ?? f.pid) : f.pid;
        return { kind: 'fork', child: f.exit, parent, newPidNamespace: isNewPidClone(a0) };
      }
      return {
        kind: kind === 'clone3' ? 'clone3' : 'fork',
        child: f.exit,
        parent: f.pid,
        newPidNamespace: false,
      };
    }
    case 'other':
      return null;
  }
}
