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
import type { EvidenceFinding } from '../marker/evidence.js';
import type { Marker, MarkerBody, MarkerCaller } from '../marker/format.js';
import type { Keyring } from '../marker/keyring.js';
import { MarkerState, verifyMarker, type ForgeryReason, type Sender } from '../marker/verify.js';
import { newPidFlag, parentFlag, threadFlag } from '../track/lifecycle.js';
import { SyscallFacts } from '../track/syscall-facts.js';
import { MIN_NAMED_PID, ProcessTable, type ProcessEntry, type SeedProcess } from '../track/process-table.js';
import {
  CONTID_UNSET,
  UNKNOWN,
  UNSET_TEXT,
  makeContainer,
  parseChainToken,
  parseContid,
  renderChain,
  renderRequested,
  sameOwner,
} from './contid.js';
import type { Container, Owner } from './contid.js';
import type { ContidErrno } from './errno.js';
import { refusal, type Attempt, type LabelOp, type Subject } from './rules.js';
import { renderContainerId, renderContainerOp, type ContainerOpFields, type OpCaller } from './records.js';
import { RecordType } from '../interpret/record-types-generated.js';

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
  /**
   * Keep the never-seen parents that processes start waiting for, for
   * takeQuestions() (the live daemon answers them with markers; default false).
   */
  readonly questions?: boolean;
  /** The node whose records this labeller is fed (null: records without `node=`). */
  readonly node?: string | null;
  /** Which node each daemon start belongs to, shared by the labellers of one log's nodes. */
  readonly startNodes?: Map<string, string | null>;
  /**
   * Checks what the markers prove beyond their MACs (gaps, order, chain,
   * seals: src/marker/evidence.ts); the labeller only hands it the valid
   * markers and the events, and passes its findings on.
   */
  readonly evidence?: EvidenceWitness | null;
}

/** What the labeller hands the evidence checks (EvidenceVerifier). */
export interface EvidenceWitness {
  /** A valid marker, at its record. */
  marker(marker: Marker, record: AuditRecord): readonly EvidenceFinding[];
  /** Every event, after its markers were applied. */
  event(event: AuditEvent): readonly EvidenceFinding[];
}

/** One CONTAINER_OP: an attempt (accepted or refused) or a drop. */
export interface ContainerOp extends ContainerOpFields {
  readonly result: 'accepted' | 'refused';
  /** The record body, `op=set opid=… res=1`. */
  readonly body: string;
  /** The marker that asked for it (null for drop). */
  readonly marker: { readonly start: string; readonly seq: number } | null;
  /** The target's chain after an accepted set or adopt (`5,^42`), else null. */
  readonly chain: string | null;
  /** True for the accepted set that created the container (not an injection, adopt or grant). */
  readonly created: boolean;
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
  /** What the evidence checks found at this event (a marker missing, moved; a seal's verdict). */
  readonly evidence: readonly EvidenceFinding[];
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

/** A process no look-up found (see #lookup), and the caller of an adopt (the daemon, not looked up). */
const NOBODY: Subject = Object.freeze({
  entry: null,
  parent: null,
  label: null,
  provisional: false,
  exists: false,
});

const SYSCALL = RecordType.SYSCALL;
const OBJ_PID = RecordType.OBJ_PID;

/** The contid core: feed it events in stream order. */
// Shared by the events that have none (most of them), read-only by contract:
// a fresh array is made on the first push.
const NO_OBJECTS: LabelledEvent['objectRecords'][number][] = [];
const NO_OPS: ContainerOp[] = [];
const NO_FORGERIES: Forgery[] = [];
const NO_EVIDENCE: readonly EvidenceFinding[] = Object.freeze([]);

/** What a restore from a checkpoint brought back (a `restore-done` marker). */
export interface RestoreReport {
  /** The start whose checkpoint was restored, and the last serial it had read. */
  readonly from: string;
  readonly serial: number;
  readonly processes: number;
  readonly containers: number;
  readonly grants: number;
  /** Containers of the earlier start that no live process holds any more: dropped. */
  readonly dropped: number;
}

export class Labeller {
  #table: ProcessTable<Container>;
  readonly #tableOptions: ConstructorParameters<typeof ProcessTable<Container>>[0];
  /** Between a `start` with restore=1 and its `restore-done`: no label is known yet. */
  #restoring = false;
  /** Where the table stood at the start: what was made since inherits once the restore is done. */
  #restoreSince = { generation: 0, birthSeq: 0 };
  /** Raised when a restore ends, so that the hold stage looks at what it holds. */
  #epoch = 0;
  #restores: RestoreReport[] = [];
  /** Live top-level IDs (set by the host's orchestrators); nested ones hang from their parent. */
  readonly #roots = new Map<string, Container>();
  /** Live containers, nested ones included. */
  #liveCount = 0;
  readonly #keyring: Keyring;
  readonly #markers: MarkerState;
  readonly #evidence: EvidenceWitness | null;
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
    this.#evidence = options.evidence ?? null;
    this.#markers = new MarkerState({
      node: options.node ?? null,
      ...(options.startNodes === undefined ? {} : { startNodes: options.startNodes }),
    });
    this.#tableOptions = {
      ...(options.maxProcesses === undefined ? {} : { maxProcesses: options.maxProcesses }),
      ...(options.maxBirths === undefined ? {} : { maxBirths: options.maxBirths }),
      ...(options.birthTtlMs === undefined ? {} : { birthTtlMs: options.birthTtlMs }),
      ...(options.clone3BirthTtlMs === undefined ? {} : { clone3BirthTtlMs: options.clone3BirthTtlMs }),
      ...(options.deadTtlMs === undefined ? {} : { deadTtlMs: options.deadTtlMs }),
      // While a restore is under way any parent may turn out labelled: wait.
      anyLabelled: () => this.#liveCount > 0 || this.#restoring,
      unknownLabel: UNKNOWN,
      questions: options.questions ?? false,
      hooks: {
        retain: (c) => {
          if (c !== UNKNOWN) c.refs++;
        },
        release: (c, by) => {
          if (c !== UNKNOWN) this.#release(c, by);
        },
      },
    };
    this.#table = new ProcessTable<Container>(this.#tableOptions);
  }

  /** True between a start that announced a restore and its `restore-done`. */
  get restoring(): boolean {
    return this.#restoring;
  }

  /** The restores applied so far (the last 16). */
  get restores(): readonly RestoreReport[] {
    return this.#restores;
  }

  /**
   * Starts from a checkpoint's labels (`contid replay --state FILE`: a
   * replay of logs that begin after the daemon started, rotated ones say).
   * Its processes are taken as alive, with their parents, start times and
   * labels; its containers with their owners; its grants. A trusted local
   * file, so it is applied as the daemon's restore markers are, unverified.
   */
  loadCheckpoint(state: {
    readonly containers: readonly {
      chain: readonly string[];
      ownerUid: number;
      ownerExe: string;
      ownerName?: string;
    }[];
    readonly processes: readonly {
      pid: number;
      ppid: number;
      start: number;
      chain: readonly string[] | null;
    }[];
    readonly grants: readonly { pid: number; start: number; uid: number | null; exe: string | null }[];
  }): void {
    this.#table.seed(state.processes.map((p) => ({ pid: p.pid, ppid: p.ppid, startTime: p.start })));
    for (const c of state.containers) {
      this.#restoreContainer({
        op: 'restore-container',
        chain: c.chain,
        ownerUid: c.ownerUid,
        ownerExe: c.ownerExe,
        ...(c.ownerName === undefined ? {} : { ownerName: c.ownerName }),
      });
    }
    for (const p of state.processes) {
      const e = this.#table.get(p.pid);
      if (e === undefined || e.startTime !== p.start) continue;
      this.#table.restoreLabel(e, p.chain === null ? UNKNOWN : (this.containerByChain(p.chain) ?? UNKNOWN));
    }
    for (const g of state.grants) {
      const e = this.#table.get(g.pid);
      if (e !== undefined && e.startTime === g.start)
        this.#table.grant(e, { uid: g.uid, exe: g.exe, start: g.start });
    }
    this.#ops = NO_OPS;
    this.#dropUnheld();
    this.#ops = NO_OPS;
  }

  /**
   * The live daemon will restore a checkpoint: no label is known until its
   * restore is done, so events read before its own start marker wait too.
   */
  expectRestore(): void {
    this.#restoring = true;
  }

  /**
   * A daemon start. After another start (a restart in the log), the table
   * is emptied: a new daemon knows nothing of the earlier one's processes
   * but its snapshot and checkpoint, so a replay forgets them here too, and
   * both rebuild from the same seed and restore markers. Containers of the
   * earlier start are kept until the restore says which live on (without
   * one, they drop now). A live daemon's own start follows no other in its
   * stream: its table holds only what it read since it opened its source.
   */
  #begin(restore: boolean, restart: boolean): void {
    this.#restoring = restore;
    if (!restart) return;
    this.#table = new ProcessTable<Container>(this.#tableOptions);
    this.#restoreSince = { generation: this.#table.nextGeneration, birthSeq: this.#table.nextBirthSeq };
    // The processes and births that held them are gone; nested containers still hold their parents.
    for (const c of this.#allLive()) c.refs = c.nested === null ? 0 : [...c.nested.values()].length;
    this.#epoch++;
    if (!restore) this.#dropUnheld();
  }

  /** Every live container, parents before their nested ones. */
  liveContainerList(): Container[] {
    return this.#allLive();
  }

  #allLive(): Container[] {
    const out: Container[] = [];
    const visit = (scope: Map<string, Container> | null): void => {
      if (scope === null) return;
      for (const c of scope.values()) {
        out.push(c);
        visit(c.nested);
      }
    };
    visit(this.#roots);
    return out;
  }

  /** Drops the live containers nothing holds (after a start's table was emptied, and its restore). */
  #dropUnheld(): number {
    let n = 0;
    // Children first: a nested container holds its parent.
    for (const c of this.#allLive().reverse()) {
      if (c.refs > 0 || !c.live) continue;
      c.refs = 1;
      this.#release(c, null);
      n++;
    }
    return n;
  }

  /** The process table, for reads (`contid ps`, `get`). */
  get table(): ProcessTable<Container> {
    return this.#table;
  }

  /** The live container with this ID, if any. */
  container(id: string): Container | undefined {
    return this.#roots.get(id);
  }

  /**
   * The live container with this chain, leaf to root (`['5', '42']` or
   * `5,^42`), if any.
   */
  containerByChain(chain: string | readonly string[]): Container | undefined {
    const ids = typeof chain === 'string' ? chain.split(',^') : chain;
    const parsed: bigint[] = [];
    for (const id of ids) {
      const v = parseContid(id);
      if (v === null) return undefined;
      parsed.push(v);
    }
    return this.#byChain(parsed);
  }

  /** The IDs live under `parent` (null: the top level). */
  #scope(parent: Container | null): Map<string, Container> | null {
    return parent === null ? this.#roots : parent.nested;
  }

  #byChain(chain: readonly bigint[]): Container | undefined {
    let c: Container | undefined;
    for (let i = chain.length - 1; i >= 0; i--) {
      const scope = i === chain.length - 1 ? this.#roots : (c?.nested ?? null);
      c = scope?.get(chain[i]!.toString());
      if (c === undefined) return undefined;
    }
    return c;
  }

  /** Loads a /proc snapshot (live mode, once, before the first event). */
  seed(procs: readonly SeedProcess[]): void {
    this.#table.seed(procs);
  }

  /**
   * The never-seen parents processes started waiting for since the last
   * call (with `questions`): the live daemon looks each one up in /proc and
   * answers with a `proc` or `gone` marker, so the wait ends at a place in
   * the stream that a replay sees too.
   */
  takeQuestions(): number[] {
    return this.#table.takeQuestions();
  }

  /** True while processes wait for never-seen `pid` (a question is open). */
  isWaitedFor(pid: number): boolean {
    return this.#table.isWaitedFor(pid);
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
          this.#table.learnExec(subject, facts.comm(), facts.exe());
        }
        subjectIndex = sys;
      }
    } else {
      for (let i = 0; i < records.length && subject === undefined; i++) {
        const pid = records[i]!.fieldInt('pid');
        if (pid === null) continue;
        subject = this.#table.get(pid);
        subjectIndex = i;
      }
    }

    const label = subject?.label ?? null;
    // (UNKNOWN renders `contid=unknown`: never written as host.)
    const containerIdRecord =
      label === null
        ? null
        : { record: subjectIndex + 1, body: renderContainerId(subjectIndex + 1, label.rendered) };

    let objectRecords: LabelledEvent['objectRecords'][number][] = NO_OBJECTS;
    for (let i = 0; objects && i < records.length; i++) {
      const r = records[i]!;
      if (r.type !== OBJ_PID && r.typeName !== 'OBJ_PID') continue;
      const opid = r.fieldInt('opid');
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
    let evidence = NO_EVIDENCE;
    for (let i = 0; messages && i < records.length; i++) {
      const r = records[i]!;
      const current = this.#markers.current;
      const verdict = verifyMarker(r, this.#keyring, this.#markers);
      if (verdict.kind === 'valid') {
        this.#validMarkers++;
        if (verdict.marker.body.op === 'start') {
          this.#begin(
            verdict.marker.body.restore === true,
            current !== null && current !== verdict.marker.start,
          );
        }
        this.#apply(verdict.marker.body, { start: verdict.marker.start, seq: verdict.marker.seq });
        const found = this.#evidence?.marker(verdict.marker, r) ?? NO_EVIDENCE;
        if (found.length > 0) evidence = evidence.concat(found);
      } else if (verdict.kind === 'forged') {
        this.#forgeries++;
        if (forgeries === NO_FORGERIES) forgeries = [];
        forgeries.push(this.#forgery(verdict.reason, verdict.detail, verdict.sender, verdict.start, i + 1));
      }
    }

    if (this.#evidence !== null) {
      const found = this.#evidence.event(event);
      if (found.length > 0) evidence = evidence.concat(found);
    }

    // While a restore is under way no label is known: every process's event waits for it.
    const provisional =
      subject !== undefined && ((label === null && subject.provisional) || (this.#restoring && sys >= 0));
    const le: LabelledEvent = {
      event,
      contid: label?.rendered ?? null,
      chain: label === null || label === UNKNOWN ? null : label.chain,
      containerIdRecord,
      objectRecords,
      ops: this.#ops,
      forgeries,
      evidence,
      provisional,
    };
    // Only the hold stage retags, and it holds provisional events only while
    // a container is live (with none, every wait ends unset). Remembering
    // the others would cost a WeakMap entry for most events of a log whose
    // ancestors were never audited, and the collector's time to clear it.
    if (provisional && subject !== undefined && (this.#liveCount > 0 || this.#restoring)) {
      this.#pendingSubjects.set(le, { subject, index: subjectIndex });
    }
    return le;
  }

  /** Containers with a live process: while there are none, no wait can end in a label. */
  get liveContainers(): number {
    if (this.#restoring) return Math.max(1, this.#liveCount);
    return this.#liveCount;
  }

  /** Increases whenever a provisional wait ends (see retag). */
  get settlements(): number {
    return this.#table.settlements + this.#epoch;
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
    // An exited process still resolves (its parent may show up later).
    if (subject.provisional || this.#restoring) return null;
    this.#pendingSubjects.delete(le);
    // The label the wait resolved to: a later set (none can come while it
    // waits: EAGAIN) must not reach back to events from before it.
    const label = subject.history?.[0]?.before ?? subject.label;
    if (label === null) return { ...le, provisional: false };
    return {
      ...le,
      contid: label.rendered,
      chain: label === UNKNOWN ? null : label.chain,
      containerIdRecord: { record: index + 1, body: renderContainerId(index + 1, label.rendered) },
      provisional: false,
    };
  }

  /**
   * A held event released before its process's wait ended (a bound of the
   * hold stage): its container is not known, so it is written as unknown,
   * never as host.
   */
  tagUnknown(le: LabelledEvent): LabelledEvent {
    const pending = this.#pendingSubjects.get(le);
    if (pending === undefined) return le;
    this.#pendingSubjects.delete(le);
    const { index } = pending;
    return {
      ...le,
      contid: UNKNOWN.rendered,
      chain: null,
      containerIdRecord: { record: index + 1, body: renderContainerId(index + 1, UNKNOWN.rendered) },
      provisional: false,
    };
  }

  /**
   * What a held event waits for: the never-seen pid at the top of its
   * process's provisional ancestry (the hold stage bounds events per wait,
   * so that one flood cannot push out everyone else's). -1 when not waiting.
   */
  waitKey(le: LabelledEvent): number {
    const pending = this.#pendingSubjects.get(le);
    if (pending === undefined) return -1;
    let e = pending.subject;
    while (e.parent !== null && e.parent.provisional) e = e.parent;
    return e.parent === null ? e.ppid : e.parent.pid;
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
      containers: this.#liveCount,
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
      this.#table.learnExec(entry, facts.comm(), facts.exe());
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
      case 'start': // see #begin
      case 'stop':
      case 'seal':
        return;
      case 'restore-container':
        this.#restoreContainer(body);
        return;
      case 'restore':
        for (const p of body.procs) {
          // (Alive, or seen exiting in the moment before the snapshot: a zombie in it.)
          const e = this.#table.latest(p.pid);
          if (e === undefined || e.startTime !== p.start) continue;
          const label = p.chain === null ? UNKNOWN : (this.containerByChain(p.chain) ?? UNKNOWN);
          this.#table.restoreLabel(e, label);
        }
        return;
      case 'restore-grant': {
        const e = this.#table.get(body.pid);
        if (e !== undefined && e.startTime === body.start) {
          this.#table.grant(e, {
            uid: body.targetUid ?? null,
            exe: body.targetExe ?? null,
            start: body.start,
          });
        }
        return;
      }
      case 'restore-done': {
        // Processes made while the labels were not back inherit from their parents now.
        this.#table.inheritSince(this.#restoreSince.generation, this.#restoreSince.birthSeq);
        const dropped = this.#dropUnheld();
        this.#restoring = false;
        this.#epoch++;
        const { from, serial, processes, containers, grants } = body;
        this.#restores = [
          ...this.#restores.slice(-15),
          { from, serial, processes, containers, grants, dropped },
        ];
        return;
      }
      case 'seed':
        this.#table.seed(
          body.procs.map((p) => ({
            pid: p.pid,
            ppid: p.ppid,
            startTime: p.start,
            ...(p.pidns === null ? {} : { pidns: p.pidns }),
          })),
        );
        return;
      case 'proc':
        this.#learnProc(body.pid, body.ppid, body.start, body.nspid);
        return;
      case 'gone':
        this.#table.waitEnded(body.pid);
        this.#table.unseenExited(body.pid);
        return;
      case 'set':
        this.#set(body, marker);
        return;
      case 'adopt':
        this.#adopt(body, marker);
        return;
      case 'grant':
        this.#grant(body, marker);
        return;
      case 'exit':
        this.#reportedExit(body.pid, body.ppid, body.start);
        return;
    }
  }

  /**
   * The daemon saw `pid` (child of `ppid` in its table) exit without its
   * end being in the stream yet: a death by a signal, the raw exit syscall,
   * a thread group whose leader left first. End it here in the stream,
   * unless the table's process by that pid is another incarnation.
   */
  #reportedExit(pid: number, ppid: number, start: number | undefined): void {
    const entry = this.#table.get(pid);
    if (entry === undefined) {
      this.#table.unseenExited(pid);
      return;
    }
    if (entry.ppid !== ppid) return;
    if (start !== undefined && entry.startTime !== null && entry.startTime !== start) return;
    this.#table.exit(entry, { reported: true });
  }

  /**
   * What the daemon read in /proc of a process the stream named as a ppid
   * before any record of its own (a parent blocked in vfork, a parent whose
   * first record is late). Placed like a first record of it, binding its
   * parent's birth by its pid in the parent's namespace; the processes that
   * waited for it then take its label.
   */
  #learnProc(pid: number, ppid: number, start: number, nspid: number): void {
    const known = this.#table.get(pid);
    if (known !== undefined && known.startTime !== null && known.startTime !== start) {
      // The table's process by that pid ended unseen; this is a later one.
      this.#table.exit(known, { reported: true });
    }
    const entry = this.#table.observeEntry(pid, ppid, nspid);
    if (entry.alive) this.#table.learnStartTime(entry, start);
  }

  /**
   * A process named by a marker, as policy sees it before anything changes:
   * the live table entry when there is one for that incarnation, else what
   * placing it by `ppid` would give (see ProcessTable.peekNew).
   */
  #lookup(pid: number, ppid: number | undefined, start: number | undefined): Subject {
    const e = this.#table.get(pid);
    if (e !== undefined) {
      // Another incarnation of the pid than the one the daemon read.
      if (start !== undefined && e.startTime !== null && e.startTime !== start) return NOBODY;
      return { entry: e, parent: e.parent, label: e.label, provisional: e.provisional, exists: true };
    }
    if (ppid === undefined) return NOBODY;
    const peek = this.#table.peekNew(pid, ppid);
    if (peek !== null) return { entry: null, ...peek, exists: true };
    // Its parent is not known: a process the stream has not shown yet. While
    // a container is live its label is not known (the parent may be in one).
    const waits = ppid >= MIN_NAMED_PID && this.#liveCount > 0;
    return { entry: null, parent: null, label: null, provisional: waits, exists: true };
  }

  /** Places a looked-up process in the table (an accepted operation), with its start time. */
  #materialise(
    subject: Subject,
    pid: number,
    ppid: number | undefined,
    start: number | undefined,
  ): ProcessEntry<Container> {
    const entry = subject.entry ?? this.#table.observeEntry(pid, ppid ?? 0);
    if (start !== undefined) this.#table.learnStartTime(entry, start);
    return entry;
  }

  /** True when `target` is (or would be, placed under its parent) a strict descendant of `ancestor`. */
  #descendsFrom(target: Subject, ancestor: Subject): boolean {
    const a = ancestor.entry;
    if (a === null) return false;
    if (target.entry !== null) return this.#table.isDescendant(target.entry, a);
    const parent = target.parent;
    return parent !== null && (parent === a || this.#table.isDescendant(parent, a));
  }

  /** The owner a set names: the caller (uid, executable, its container), or the name it gave. */
  #ownerOf(body: Extract<MarkerBody, { op: 'set' }>, by: Subject): Owner {
    return { uid: body.caller.uid, exe: body.caller.exe, container: by.label, name: body.owner ?? null };
  }

  /** The caller holds a grant, given to its identity (uid, executable, start time). */
  #delegated(by: Subject, caller: MarkerCaller): boolean {
    const grant = by.entry?.grant ?? null;
    if (grant === null) return false;
    if (grant.uid !== null && grant.uid !== caller.uid) return false;
    if (grant.exe !== null && grant.exe !== caller.exe) return false;
    if (grant.start !== null && grant.start !== caller.start) return false;
    return true;
  }

  /**
   * The facts the rules read (src/policy/rules.ts) about one request: what
   * the look-ups found, and the costlier questions, asked only when a rule
   * needs them.
   */
  #attempt(
    request: { op: LabelOp; pid: number; caller: MarkerCaller; by: Subject; target: Subject },
    facts: { validValue: boolean; namesOwner: boolean; idTaken: () => boolean },
  ): Attempt {
    const { caller, by, target } = request;
    return {
      ...request,
      ...facts,
      restoring: this.#restoring,
      delegated: () => this.#delegated(by, caller),
      targetHasChildren: () => target.entry !== null && this.#table.hasChildren(target.entry),
      descendsFromCaller: () => this.#descendsFrom(target, by),
      placed: null,
    };
  }

  /**
   * A set, judged by the rules of src/policy/rules.ts in order (the first
   * that refuses decides). Only an accepted set changes the table (placing
   * a target not seen yet), so a refused request leaves no trace but its
   * CONTAINER_OP.
   */
  #set(body: Extract<MarkerBody, { op: 'set' }>, marker: { start: string; seq: number }): void {
    const { pid, ppid, start, contid: requested, caller } = body;
    const by = this.#lookup(caller.pid, caller.ppid, caller.start);
    const target = this.#lookup(pid, ppid, start);
    const old = target.label?.rendered ?? UNSET_TEXT;
    const value = parseContid(requested);
    // The ID live among the setter's container's: the set joins it, or is refused (ENOTUNIQ).
    const existing = value === null ? undefined : this.#scope(by.label)?.get(value.toString());
    const attempt = this.#attempt(
      { op: 'set', pid, caller, by, target },
      {
        validValue: value !== null && value !== CONTID_UNSET,
        namesOwner: body.owner !== undefined,
        idTaken: () =>
          existing !== undefined &&
          (body.create === true || !sameOwner(existing.owner, this.#ownerOf(body, by))),
      },
    );
    let refused = refusal(attempt, 'look-up');
    let result: Container | null = null;
    if (refused === null && value !== null) {
      const entry = this.#materialise(target, pid, ppid, start);
      if (by.entry !== null && caller.start !== undefined) this.#table.learnStartTime(by.entry, caller.start);
      refused = refusal({ ...attempt, placed: entry }, 'placed');
      if (refused === null) {
        result = existing ?? this.#create(value, this.#ownerOf(body, by));
        this.#table.relabel(entry, result);
      }
    }
    this.#record(
      {
        op: 'set',
        opid: pid,
        contid: renderRequested(requested),
        oldContid: old,
        ...(body.name === undefined ? {} : { name: body.name }),
        ...(body.meta === undefined ? {} : { meta: body.meta }),
      },
      caller,
      refused?.errno ?? null,
      marker,
      { chain: result?.rendered ?? null, created: result !== null && existing === undefined },
    );
  }

  /** Adopt: the daemon saw the target in a labelled container's cgroup. */
  #adopt(body: Extract<MarkerBody, { op: 'adopt' }>, marker: { start: string; seq: number }): void {
    const { pid, ppid, start, contid: requested, caller } = body;
    const target = this.#lookup(pid, ppid, start);
    const old = target.label?.rendered ?? UNSET_TEXT;
    const chain = parseChainToken(requested);
    const container = chain === null ? undefined : this.#byChain(chain);
    const attempt = this.#attempt(
      { op: 'adopt', pid, caller, by: NOBODY, target },
      { validValue: container !== undefined, namesOwner: false, idTaken: () => false },
    );
    let refused = refusal(attempt, 'look-up');
    if (refused === null && container !== undefined) {
      const entry = this.#materialise(target, pid, ppid, start);
      refused = refusal({ ...attempt, placed: entry }, 'placed');
      if (refused === null) this.#table.relabel(entry, container);
    }
    this.#record(
      { op: 'adopt', opid: pid, contid: renderRequestedChain(requested), oldContid: old },
      caller,
      refused?.errno ?? null,
      marker,
      { chain: refused === null ? (container?.rendered ?? null) : null, created: false },
    );
  }

  /**
   * A container of the checkpoint: the one still live (kept over the
   * start, its processes not yet restored), or made anew under its parent
   * (restored before it) with its owner.
   */
  #restoreContainer(body: Extract<MarkerBody, { op: 'restore-container' }>): void {
    if (this.containerByChain(body.chain) !== undefined) return;
    const parent = body.chain.length > 1 ? this.containerByChain(body.chain.slice(1)) : null;
    const value = parseContid(body.chain[0] ?? '');
    if (parent === undefined || value === null) return;
    // Held only once a process (or a nested container) is restored into it;
    // restore-done drops what nothing holds.
    this.#create(value, {
      uid: body.ownerUid,
      exe: body.ownerExe,
      container: parent,
      name: body.ownerName ?? null,
    });
  }

  /** Grant: delegation (capcontid) to label the target's own descendants, for that incarnation only. */
  #grant(body: Extract<MarkerBody, { op: 'grant' }>, marker: { start: string; seq: number }): void {
    const { pid, ppid, start, caller } = body;
    const by = this.#lookup(caller.pid, caller.ppid, caller.start);
    const target = this.#lookup(pid, ppid, start);
    const current = target.label?.rendered ?? UNSET_TEXT;
    const attempt = this.#attempt(
      { op: 'grant', pid, caller, by, target },
      { validValue: true, namesOwner: false, idTaken: () => false },
    );
    const refused = refusal(attempt, 'look-up');
    if (refused === null) {
      const entry = this.#materialise(target, pid, ppid, start);
      this.#table.grant(entry, {
        uid: body.targetUid ?? null,
        exe: body.targetExe ?? null,
        start: start ?? entry.startTime,
      });
    }
    this.#record(
      { op: 'grant', opid: pid, contid: current, oldContid: current },
      caller,
      refused?.errno ?? null,
      marker,
    );
  }

  /** A new container; its parent is the setter's own container (nesting), as in the kernel series. */
  #create(value: bigint, owner: Owner): Container {
    const parent = owner.container;
    const c = makeContainer(value, parent, owner);
    if (parent !== null) parent.refs++; // a nested container holds its parent
    if (parent === null) this.#roots.set(c.text, c);
    else (parent.nested ??= new Map()).set(c.text, c);
    this.#liveCount++;
    return c;
  }

  /**
   * A holder of `c` is gone; the last one drops it. `by` is the process
   * whose end released it, or null when no process did (a daemon restart
   * that left the container with no live process).
   */
  #release(c: Container, by: ProcessEntry<Container> | null): void {
    c.refs--;
    if (c.refs > 0 || !c.live) return;
    c.live = false;
    const scope = this.#scope(c.parent);
    if (scope?.get(c.text) === c) scope.delete(c.text);
    this.#liveCount--;
    const record = by !== null && this.#current?.entry === by ? this.#current.record : null;
    const who: OpCaller = {
      pid: by?.pid ?? 0,
      uid: record === null ? null : record.fieldInt('uid'),
      auid: record === null ? null : record.fieldInt('auid'),
      exe: decodeRaw(record === null ? (by?.exe ?? null) : (record.field('exe') ?? null)),
    };
    const fields: ContainerOpFields = {
      op: 'drop',
      opid: by?.pid ?? 0,
      contid: UNSET_TEXT,
      oldContid: c.rendered,
      caller: who,
      errno: null,
    };
    this.#drops++;
    this.#addOp({
      ...fields,
      result: 'accepted',
      body: renderContainerOp(fields),
      marker: null,
      chain: null,
      created: false,
    });
    if (c.parent !== null) this.#release(c.parent, by);
  }

  #record(
    f: Pick<ContainerOpFields, 'op' | 'opid' | 'contid' | 'oldContid' | 'name' | 'meta'>,
    caller: MarkerCaller,
    errno: ContidErrno | null,
    marker: { start: string; seq: number },
    outcome: { chain: string | null; created: boolean } = { chain: null, created: false },
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
      ...outcome,
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

/** An adopt's requested container as CONTAINER_OP's `contid=`: the chain (`5,^42`), or `?`. */
function renderRequestedChain(text: string): string {
  const chain = parseChainToken(text);
  return chain === null ? '?' : renderChain(chain.map(String));
}

/** A raw `exe=` value (`"/bin/sh"` or hex) as a string, or null. */
function decodeRaw(raw: string | null): string | null {
  if (raw === null || raw === '(null)' || raw === '?') return null;
  if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) return raw.slice(1, -1);
  if (/^(?:[0-9A-Fa-f]{2})+$/.test(raw)) return Buffer.from(raw, 'hex').toString('utf8');
  return raw;
}
