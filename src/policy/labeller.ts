/**
 * The labeller: process tracking, the contid policy and markers, put
 * together. `process(event)` is called once per assembled event, in stream
 * order, and returns the event's label, its CONTAINER_ID record, and the
 * CONTAINER_OP records and forgery reports the event caused. Pure and
 * deterministic: the same events give the same results on any machine.
 */
import type { AuditEvent } from '../assemble/event.js';
import { isUserMessageType } from '../interpret/record-types.js';
import type { AuditRecord } from '../parse/record.js';
import { fieldInt, fieldValue } from '../parse/record.js';
import type { MarkerBody, MarkerCaller } from '../marker/format.js';
import type { Keyring } from '../marker/keyring.js';
import { MarkerState, verifyMarker, type ForgeryReason, type Sender } from '../marker/verify.js';
import { newPidFlag, parentFlag, threadFlag } from '../track/lifecycle.js';
import { SyscallFacts } from '../track/syscall-facts.js';
import { ProcessTable, type ProcessEntry, type SeedProcess } from '../track/process-table.js';
import {
  CONTID_UNSET,
  UNSET_TEXT,
  makeContainer,
  parseContid,
  renderRequested,
  sameOwner,
} from './contid.js';
import type { Container, Owner } from './contid.js';
import type { ContidErrno } from './errno.js';
import { renderContainerId, renderContainerOp, type ContainerOpFields, type OpCaller } from './records.js';

export interface LabellerOptions {
  /** Bound on the process table (default 1,000,000). */
  readonly maxProcesses?: number;
  /** Bound on open births (default 100,000). */
  readonly maxBirths?: number;
  readonly birthTtlMs?: number;
  readonly clone3BirthTtlMs?: number;
  readonly deadTtlMs?: number;
  /** Secrets of the daemon starts whose markers are honoured (default: none). */
  readonly keyring?: Keyring;
}

/** One CONTAINER_OP: an attempt (accepted or refused) or a drop. */
export interface ContainerOp extends ContainerOpFields {
  readonly result: 'accepted' | 'refused';
  /** The record body, `op=set opid=… res=1`. */
  readonly body: string;
  /** The marker that asked for it (null for drop). */
  readonly marker: { readonly start: string; readonly seq: number } | null;
}

/** Something that looked like a marker and was not honoured. */
export interface Forgery {
  readonly reason: ForgeryReason;
  readonly detail: string;
  /** Kernel-stamped sender. */
  readonly senderPid: number | null;
  readonly senderUid: number | null;
  readonly senderAuid: number | null;
  /** The sender's contid chain when it sent it (`4,^2`), or null when unset or unknown. */
  readonly senderContid: string | null;
  readonly start: string | null;
  /** 1-based index of the record in its event. */
  readonly record: number;
}

/** A CONTAINER_ID record for the event, linked by `record=` to the record it describes. */
export interface ContainerIdRecord {
  readonly record: number;
  readonly body: string;
}

export interface LabelledEvent {
  readonly event: AuditEvent;
  /** The acting process's chain leaf to root (`4,^2,^1`), or null when unset. */
  readonly contid: string | null;
  readonly chain: readonly string[] | null;
  readonly containerIdRecord: ContainerIdRecord | null;
  /** One more per OBJ_PID record whose target has a contid (signal and ptrace targets). */
  readonly objectRecords: readonly (ContainerIdRecord & { readonly chain: readonly string[] })[];
  readonly ops: readonly ContainerOp[];
  readonly forgeries: readonly Forgery[];
  /**
   * True when the event's process was provisional (its parent not yet seen
   * in the stream) and so carried no label yet: see Labeller.retag and
   * src/policy/hold.ts.
   */
  readonly provisional: boolean;
}

export interface LabellerStats {
  readonly processes: number;
  readonly retained: number;
  readonly max: number;
  readonly expired: number;
  readonly evicted: number;
  readonly reused: number;
  readonly births: number;
  readonly birthsExpired: number;
  readonly containers: number;
  readonly markers: number;
  readonly forgeries: number;
  readonly ops: { readonly accepted: number; readonly refused: number; readonly drops: number };
}

const SYSCALL = 1300;
const OBJ_PID = 1318;

/** The contid core: feed it events in stream order. */
// Shared by the events that have none (most of them), read-only by contract:
// a fresh array is made on the first push.
const NO_OBJECTS: LabelledEvent['objectRecords'][number][] = [];
const NO_OPS: ContainerOp[] = [];
const NO_FORGERIES: Forgery[] = [];

export class Labeller {
  readonly #table: ProcessTable<Container>;
  readonly #live = new Map<string, Container>();
  readonly #keyring: Keyring;
  readonly #markers = new MarkerState();
  /** The SYSCALL record of the event being processed, as read once. */
  readonly #facts = new SyscallFacts();
  /** The acting process of each provisional event handed out, for retag(). */
  readonly #pendingSubjects = new WeakMap<
    LabelledEvent,
    { subject: ProcessEntry<Container>; index: number }
  >();
  /** Ops produced while handling the current event (drops come from table callbacks). */
  #ops: ContainerOp[] = [];
  /** The record whose process is ending, to attribute a drop. */
  #current: { entry: ProcessEntry<Container>; record: AuditRecord } | null = null;
  #accepted = 0;
  #refused = 0;
  #drops = 0;
  #validMarkers = 0;
  #forgeries = 0;

  constructor(options: LabellerOptions = {}) {
    this.#keyring = options.keyring ?? new Map();
    this.#table = new ProcessTable<Container>({
      ...(options.maxProcesses === undefined ? {} : { maxProcesses: options.maxProcesses }),
      ...(options.maxBirths === undefined ? {} : { maxBirths: options.maxBirths }),
      ...(options.birthTtlMs === undefined ? {} : { birthTtlMs: options.birthTtlMs }),
      ...(options.clone3BirthTtlMs === undefined ? {} : { clone3BirthTtlMs: options.clone3BirthTtlMs }),
      ...(options.deadTtlMs === undefined ? {} : { deadTtlMs: options.deadTtlMs }),
      anyLabelled: () => this.#live.size > 0,
      hooks: {
        retain: (c) => {
          c.refs++;
        },
        release: (c, by) => {
          this.#release(c, by);
        },
      },
    });
  }

  /** The process table, for reads (`contid ps`, `get`). */
  get table(): ProcessTable<Container> {
    return this.#table;
  }

  /** The live container with this ID, if any. */
  container(id: string): Container | undefined {
    return this.#live.get(id);
  }

  /** Loads a /proc snapshot (live mode, once, before the first event). */
  seed(procs: readonly SeedProcess[]): void {
    this.#table.seed(procs);
  }

  /** Ends a process reported dead by a live source (the proc connector); returns any drops. */
  processExited(pid: number): readonly ContainerOp[] {
    this.#ops = [];
    const entry = this.#table.get(pid);
    if (entry !== undefined) this.#table.exit(entry);
    else this.#table.unseenExited(pid);
    return this.#ops;
  }

  process(event: AuditEvent): LabelledEvent {
    this.#ops = NO_OPS;
    let forgeries: Forgery[] = NO_FORGERIES;
    this.#table.advance(event.timeMs);
    const records = event.records;

    // One look at each record's type: the SYSCALL record, and whether any
    // record needs more (an OBJ_PID target, a user message that may be a
    // marker). Most events have neither, and each check below reads fields.
    let sys = -1;
    let objects = false;
    let messages = false;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      const t = r.type;
      if (t === SYSCALL || (t === 0 && r.typeName === 'SYSCALL')) {
        if (sys < 0) sys = i;
      } else if (t === OBJ_PID || (t === 0 && r.typeName === 'OBJ_PID')) {
        objects = true;
      } else if (t === 0 || isUserMessageType(t)) {
        messages = true;
      }
    }

    // The acting process: the SYSCALL record's, else the first pid= of the event.
    let subject: ProcessEntry<Container> | undefined;
    let subjectIndex = -1;
    if (sys >= 0) {
      const facts = this.#facts;
      facts.read(records[sys]!);
      const pid = facts.pid;
      const ppid = facts.ppid;
      if (pid !== null && ppid !== null) {
        subject = this.#table.observeEntry(pid, ppid);
        // comm and exe change only at exec (see #lifecycle); reading them for
        // every event would decode two strings per SYSCALL record for nothing.
        if (this.#table.lastObserveCreated || subject.exe === undefined) {
          subject.comm = facts.comm() ?? subject.comm;
          subject.exe = facts.exe() ?? subject.exe;
        }
        subjectIndex = sys;
      }
    } else {
      for (let i = 0; i < records.length && subject === undefined; i++) {
        const pid = fieldInt(records[i]!, 'pid');
        if (pid === null) continue;
        subject = this.#table.get(pid);
        subjectIndex = i;
      }
    }

    const label = subject?.label ?? null;
    const containerIdRecord =
      label === null
        ? null
        : { record: subjectIndex + 1, body: renderContainerId(subjectIndex + 1, label.rendered) };

    let objectRecords: LabelledEvent['objectRecords'][number][] = NO_OBJECTS;
    for (let i = 0; objects && i < records.length; i++) {
      const r = records[i]!;
      if (r.type !== OBJ_PID && r.typeName !== 'OBJ_PID') continue;
      const opid = fieldInt(r, 'opid');
      const target = opid === null ? undefined : this.#table.get(opid);
      if (target?.label != null) {
        if (objectRecords === NO_OBJECTS) objectRecords = [];
        objectRecords.push({
          record: i + 1,
          body: renderContainerId(i + 1, target.label.rendered),
          chain: target.label.chain,
        });
      }
    }

    // Effects come after tagging: an event carries the label its process had when it ran.
    if (subject !== undefined && sys >= 0) this.#lifecycle(subject, records[sys]!, this.#facts);
    for (let i = 0; messages && i < records.length; i++) {
      const r = records[i]!;
      const verdict = verifyMarker(r, this.#keyring, this.#markers);
      if (verdict.kind === 'valid') {
        this.#validMarkers++;
        this.#apply(verdict.marker.body, { start: verdict.marker.start, seq: verdict.marker.seq });
      } else if (verdict.kind === 'forged') {
        this.#forgeries++;
        if (forgeries === NO_FORGERIES) forgeries = [];
        forgeries.push(this.#forgery(verdict.reason, verdict.detail, verdict.sender, verdict.start, i + 1));
      }
    }

    const provisional = label === null && subject !== undefined && subject.provisional;
    const le: LabelledEvent = {
      event,
      contid: label?.rendered ?? null,
      chain: label?.chain ?? null,
      containerIdRecord,
      objectRecords,
      ops: this.#ops,
      forgeries,
      provisional,
    };
    // Only the hold stage retags, and it holds provisional events only while
    // a container is live (with none, every wait ends unset). Remembering
    // the others would cost a WeakMap entry for most events of a log whose
    // ancestors were never audited, and the collector's time to clear it.
    if (provisional && subject !== undefined && this.#live.size > 0) {
      this.#pendingSubjects.set(le, { subject, index: subjectIndex });
    }
    return le;
  }

  /** Containers with a live process: while there are none, no wait can end in a label. */
  get liveContainers(): number {
    return this.#live.size;
  }

  /** Increases whenever a provisional wait ends (see retag). */
  get settlements(): number {
    return this.#table.settlements;
  }

  /**
   * For an event whose process was provisional when it was processed (its
   * parent not yet seen): the same event tagged with the label its process
   * has now, once the wait is over; null while the process still waits. An
   * event that ran before its parent appeared still ran with the label it
   * inherited at its creation, which is the one the resolution gives it.
   * An event processed while no container was live is returned as it is
   * (its wait can only end unset; the hold stage does not hold it).
   */
  retag(le: LabelledEvent): LabelledEvent | null {
    const pending = this.#pendingSubjects.get(le);
    if (pending === undefined) return le;
    const { subject, index } = pending;
    if (subject.provisional && subject.alive) return null;
    this.#pendingSubjects.delete(le);
    const label = subject.label;
    if (label === null) return { ...le, provisional: false };
    return {
      ...le,
      contid: label.rendered,
      chain: label.chain,
      containerIdRecord: { record: index + 1, body: renderContainerId(index + 1, label.rendered) },
      provisional: false,
    };
  }

  #addOp(op: ContainerOp): void {
    if (this.#ops === NO_OPS) this.#ops = [];
    this.#ops.push(op);
  }

  stats(): LabellerStats {
    const t = this.#table.stats();
    return {
      processes: t.processes,
      retained: t.retained,
      max: t.max,
      expired: t.expired,
      evicted: t.evicted,
      reused: t.reused,
      births: t.births,
      birthsExpired: t.birthsExpired,
      containers: this.#live.size,
      markers: this.#validMarkers,
      forgeries: this.#forgeries,
      ops: { accepted: this.#accepted, refused: this.#refused, drops: this.#drops },
    };
  }

  /** Acts on the SYSCALL record `r` of `entry`, read into `facts`. */
  #lifecycle(entry: ProcessEntry<Container>, r: AuditRecord, facts: SyscallFacts): void {
    const kind = facts.kind;
    if (kind === null || kind === 'other') return;
    if (kind === 'execve') {
      entry.comm = facts.comm() ?? entry.comm;
      entry.exe = facts.exe() ?? entry.exe;
      return;
    }
    if (kind === 'exit-group') {
      this.#current = { entry, record: r };
      this.#table.exit(entry);
      this.#current = null;
      return;
    }
    if (!facts.success) return;
    const child = facts.exit;
    if (child === null || child <= 0) return;
    if (kind === 'clone') {
      const flags = facts.cloneFlags;
      if (threadFlag(flags)) return;
      this.#table.recordBirth(entry, child, {
        kind: 'fork',
        cloneParent: parentFlag(flags),
        newPidNamespace: newPidFlag(flags),
      });
    } else {
      // fork and vfork: the child shares the caller's pid namespace (for
      // children) with the caller; clone3's flags are not in the record.
      this.#table.recordBirth(entry, child, { kind: kind === 'clone3' ? 'clone3' : 'fork' });
    }
  }

  #apply(body: MarkerBody, marker: { start: string; seq: number }): void {
    switch (body.op) {
      case 'start':
      case 'stop':
        return;
      case 'set':
        this.#set(body, marker);
        return;
      case 'adopt':
        this.#adopt(body.pid, body.ppid, body.contid, body.caller, marker);
        return;
      case 'grant':
        this.#grant(body.pid, body.ppid, body.caller, marker);
        return;
      case 'exit':
        this.#signalled(body.pid, body.ppid);
        return;
    }
  }

  /** The daemon saw `pid` (child of `ppid` in its table) die by a signal: end it here in the stream. */
  #signalled(pid: number, ppid: number): void {
    const entry = this.#table.get(pid);
    if (entry === undefined || !entry.alive || entry.ppid !== ppid) return;
    this.#table.exit(entry);
  }

  #resolve(pid: number, ppid: number | undefined): ProcessEntry<Container> | undefined {
    return ppid === undefined ? this.#table.get(pid) : this.#table.observe(pid, ppid).entry;
  }

  /**
   * DESIGN.md's rules 1–7, in order; the first that fails decides. Naming
   * the owner is privileged (rule 2: a delegated caller could otherwise
   * join any named ID), and a create-only set (the OCI hook's) refuses an
   * ID that is live whoever owns it (rule 7).
   */
  #set(body: MarkerBody & { op: 'set' }, marker: { start: string; seq: number }): void {
    const { pid, ppid, contid: requested, caller } = body;
    const by = this.#resolve(caller.pid, caller.ppid);
    const target = this.#resolve(pid, ppid);
    const old = target?.label?.rendered ?? UNSET_TEXT;
    const value = parseContid(requested);
    const owner: Owner = {
      uid: caller.uid,
      exe: caller.exe,
      container: by?.label ?? null,
      name: body.owner ?? null,
    };
    let errno: ContidErrno | null = null;
    let existing: Container | undefined;
    if (value === null || value === CONTID_UNSET) errno = 'EINVAL';
    else if (!caller.privileged && (by?.delegated !== true || owner.name !== null)) errno = 'EPERM';
    else if (target === undefined || !target.alive) errno = 'ESRCH';
    else if (this.#table.hasChildren(target)) errno = 'EBUSY';
    else if (pid === caller.pid || target === by || (!caller.privileged && !this.#descends(target, by)))
      errno = 'EXDEV';
    else if (target.label !== null && !(by?.label != null && target.label === by.label)) errno = 'EEXIST';
    else {
      existing = this.#live.get(value.toString());
      if (existing !== undefined && (body.create === true || !sameOwner(existing.owner, owner))) {
        errno = 'ENOTUNIQ';
      }
    }
    if (errno === null && target !== undefined && value !== null) {
      const container = existing ?? this.#create(value, owner);
      this.#table.relabel(target, container);
    }
    this.#record(
      { op: 'set', opid: pid, contid: renderRequested(requested), oldContid: old },
      caller,
      errno,
      marker,
    );
  }

  /** Adopt: the daemon saw the target in a labelled container's cgroup. */
  #adopt(
    pid: number,
    ppid: number | undefined,
    requested: string,
    caller: MarkerCaller,
    marker: { start: string; seq: number },
  ): void {
    const target = this.#resolve(pid, ppid);
    const old = target?.label?.rendered ?? UNSET_TEXT;
    const value = parseContid(requested);
    const container = value === null ? undefined : this.#live.get(value.toString());
    let errno: ContidErrno | null = null;
    if (container === undefined) errno = 'EINVAL';
    else if (!caller.privileged) errno = 'EPERM';
    else if (target === undefined || !target.alive) errno = 'ESRCH';
    else if (target.label !== null) errno = 'EEXIST';
    // No EBUSY: children the target forked before are checked (and adopted) on their own.
    if (errno === null && target !== undefined && container !== undefined)
      this.#table.relabel(target, container);
    this.#record(
      { op: 'adopt', opid: pid, contid: renderRequested(requested), oldContid: old },
      caller,
      errno,
      marker,
    );
  }

  /** Grant: delegation (capcontid) to label the target's own descendants. */
  #grant(
    pid: number,
    ppid: number | undefined,
    caller: MarkerCaller,
    marker: { start: string; seq: number },
  ): void {
    const by = this.#resolve(caller.pid, caller.ppid);
    const target = this.#resolve(pid, ppid);
    const current = target?.label?.rendered ?? UNSET_TEXT;
    let errno: ContidErrno | null = null;
    if (!caller.privileged && by?.delegated !== true) errno = 'EPERM';
    else if (target === undefined || !target.alive) errno = 'ESRCH';
    else if (pid === caller.pid || target === by || (!caller.privileged && !this.#descends(target, by)))
      errno = 'EXDEV';
    if (errno === null && target !== undefined) target.delegated = true;
    this.#record({ op: 'grant', opid: pid, contid: current, oldContid: current }, caller, errno, marker);
  }

  #descends(target: ProcessEntry<Container>, ancestor: ProcessEntry<Container> | undefined): boolean {
    return ancestor !== undefined && this.#table.isDescendant(target, ancestor);
  }

  /** A new container; its parent is the setter's own container (nesting), as in the kernel series. */
  #create(value: bigint, owner: Owner): Container {
    const parent = owner.container;
    const c = makeContainer(value, parent, owner);
    if (parent !== null) parent.refs++; // a nested container holds its parent
    this.#live.set(c.text, c);
    return c;
  }

  #release(c: Container, by: ProcessEntry<Container>): void {
    c.refs--;
    if (c.refs > 0 || !c.live) return;
    c.live = false;
    if (this.#live.get(c.text) === c) this.#live.delete(c.text);
    const record = this.#current?.entry === by ? this.#current.record : null;
    const who: OpCaller = {
      pid: by.pid,
      uid: record === null ? null : fieldInt(record, 'uid'),
      auid: record === null ? null : fieldInt(record, 'auid'),
      exe: decodeRaw(record === null ? by.exe : (fieldValue(record, 'exe') ?? null)),
    };
    const fields: ContainerOpFields = {
      op: 'drop',
      opid: by.pid,
      contid: UNSET_TEXT,
      oldContid: c.rendered,
      caller: who,
      errno: null,
    };
    this.#drops++;
    this.#addOp({ ...fields, result: 'accepted', body: renderContainerOp(fields), marker: null });
    if (c.parent !== null) this.#release(c.parent, by);
  }

  #record(
    f: Pick<ContainerOpFields, 'op' | 'opid' | 'contid' | 'oldContid'>,
    caller: MarkerCaller,
    errno: ContidErrno | null,
    marker: { start: string; seq: number },
  ): void {
    const fields: ContainerOpFields = {
      ...f,
      caller: { pid: caller.pid, uid: caller.uid, auid: caller.auid, exe: caller.exe },
      errno,
    };
    if (errno === null) this.#accepted++;
    else this.#refused++;
    this.#addOp({
      ...fields,
      result: errno === null ? 'accepted' : 'refused',
      body: renderContainerOp(fields),
      marker: { start: marker.start, seq: marker.seq },
    });
  }

  #forgery(
    reason: ForgeryReason,
    detail: string,
    sender: Sender,
    start: string | null,
    record: number,
  ): Forgery {
    const from = sender.pid === null ? undefined : this.#table.get(sender.pid);
    return {
      reason,
      detail,
      senderPid: sender.pid,
      senderUid: sender.uid,
      senderAuid: sender.auid,
      senderContid: from?.label?.rendered ?? null,
      start,
      record,
    };
  }
}

/** A raw `exe=` value (`"/bin/sh"` or hex) as a string, or null. */
function decodeRaw(raw: string | null): string | null {
  if (raw === null || raw === '(null)' || raw === '?') return null;
  if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) return raw.slice(1, -1);
  if (/^(?:[0-9A-Fa-f]{2})+$/.test(raw)) return Buffer.from(raw, 'hex').toString('utf8');
  return raw;
}
