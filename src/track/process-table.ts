/**
 * The process table: which host processes exist at this point of the audit
 * stream, who their parents are, and which label each one carries.
 *
 * Pure and synchronous: it is fed pids and stream times by the caller and
 * never reads /proc or a clock. Labels are opaque to the table (type `L`);
 * it only tells its owner, through `LabelHooks`, when a label gains or loses
 * a holder, so the owner can count processes per container.
 *
 * Identity. A process is its pid plus a generation. The table maps a pid to
 * its latest incarnation only; code that holds an entry keeps the right
 * process even after the pid is reused, and parents are object references,
 * never pids, so a label or parent can never pass to a later process that
 * happens to get the same pid. Entries are handed out read-only
 * (`ProcessEntry`); every change goes through a method of the table.
 *
 * Its parts, each in a file of its own: the entry (process-entry.ts); the
 * births a process's creation record leaves, which a new process binds to
 * take its label (births.ts); the evidence of which pid namespace a
 * caller's `exit=` values belong to (pid-namespace.ts); what expires by
 * stream time (expiry.ts); the label groups that decide eviction
 * (label-groups.ts); the waits for never-seen parents (waits.ts).
 * See docs/labels.md.
 */

import { EventKeyMap } from '../assemble/event-key-map.js';
import { Births, type Birth } from './births.js';
import { ExpiryQueue, StreamClock } from './expiry.js';
import { LabelGroups } from './label-groups.js';
import {
  isDescendant,
  liveAncestor,
  newTableEntry,
  own,
  type TableEntry,
  type EntryOrigin,
  type Grant,
  type LabelHooks,
  type ProcessEntry,
} from './process-entry.js';
import {
  fixPidNamespace,
  inheritPidNamespace,
  markNested,
  MIN_NAMED_PID,
  pidNamespaceOf,
  retractNestedVote,
  voteHost,
  type ChildNamespace,
  type PidNamespace,
} from './pid-namespace.js';
import { Waits } from './waits.js';

export type { Grant, LabelHooks, ProcessEntry, Relabel } from './process-entry.js';
export { MIN_NAMED_PID, type PidNamespace } from './pid-namespace.js';

/** Bound on the provisional children waiting for one never-seen parent (more are simply unset). */
const MAX_WAITING = 1024;

/** One process of a /proc snapshot, for `seed`. */
export interface SeedProcess {
  readonly pid: number;
  readonly ppid: number;
  readonly exe?: string | null;
  readonly comm?: string | null;
  readonly startTime?: number | null;
  /**
   * The process's pid namespace as the seeder read it (`/proc/PID/ns/pid`
   * compared with the initial namespace's); omitted when not known.
   */
  readonly pidns?: 'host' | 'nested';
}

export interface ProcessTableOptions<L> {
  /** Bound on live plus retained entries (default 1,000,000). */
  readonly maxProcesses?: number;
  /** Bound on open births (default 100,000). */
  readonly maxBirths?: number;
  /** Stream time after which an unmatched fork/vfork/clone birth expires (default 60 s). */
  readonly birthTtlMs?: number;
  /**
   * Same for clone3, which is also how threads are made (the record cannot
   * tell them apart), so its births go stale often (default 2 s).
   */
  readonly clone3BirthTtlMs?: number;
  /**
   * Stream time an exited process stays findable by pid (default 10 s: five
   * times the assembler's event timeout, past which records are not late
   * but lost).
   */
  readonly deadTtlMs?: number;
  readonly hooks?: LabelHooks<L>;
  /**
   * Whether any process holds a label. While none does, a process whose
   * parent is unknown cannot inherit one (its parent was unset when it
   * forked it), so it does not wait: it is unset for good. Its parent's
   * placeholder is still kept, as the record that the parent existed then
   * (default: always wait).
   */
  readonly anyLabelled?: () => boolean;
  /**
   * The label of a process whose wait for a never-seen parent ended without
   * an answer (the parent exited unseen, the wait expired or was evicted):
   * its container cannot be known, and unset would claim "host". Default:
   * null (unset), for owners that do not tell the two apart.
   */
  readonly unknownLabel?: L | null;
  /**
   * Keep the pids that processes start waiting for, for takeQuestions()
   * (live mode; default false: nobody would take them).
   */
  readonly questions?: boolean;
}

export interface ProcessTableStats {
  /** Live processes. */
  readonly processes: number;
  /** Exited processes kept as ancestors of live ones, or still findable by pid. */
  readonly retained: number;
  readonly max: number;
  /** Exited entries that were let go. */
  readonly expired: number;
  /** Live entries dropped because the table was full. */
  readonly evicted: number;
  /** Processes ended because their pid was seen again on a different process. */
  readonly reused: number;
  /**
   * Labelled processes seen with ppid 1 while their parent was alive in the
   * table: the process at the pid was taken as a new one, of unknown container.
   */
  readonly ambiguous: number;
  readonly births: number;
  readonly birthsMatched: number;
  readonly birthsExpired: number;
  /** Births dropped because `maxBirths` was reached. */
  readonly birthsEvicted: number;
}

/** The outcome of `observe`: the process, and whether this record made it known. */
export interface Observation<L> {
  readonly entry: ProcessEntry<L>;
  readonly created: boolean;
}

const NO_HOOKS: LabelHooks<never> = { retain() {}, release() {} };

/** A bounded, generation-keyed process table fed by the audit stream. */
export class ProcessTable<L> {
  readonly #max: number;
  readonly #maxBirths: number;
  readonly #birthTtl: number;
  readonly #deadTtl: number;
  readonly #hooks: LabelHooks<L>;
  /** pid → latest incarnation, alive or recently exited. */
  readonly #byPid = new EventKeyMap<TableEntry<L>>();
  readonly #groups = new LabelGroups<L>();
  readonly #clock = new StreamClock();
  /** Exited entries in order of death; ones no longer mapped are skipped. */
  readonly #dead = new ExpiryQueue<TableEntry<L>>((e) => e.mapped);
  readonly #births: Births<L>;
  readonly #waits: Waits<L>;
  readonly #endWait = (pid: number): void => {
    this.#dropPlaceholder(pid);
  };
  /** Orders relabels and placeholders. */
  #tick = 0;
  readonly #anyLabelled: () => boolean;
  readonly #unknown: L | null;
  /** Waits ended (a never-seen parent appeared, or will not): lets callers holding provisional events re-check. */
  #settlements = 0;
  #lastCreated = false;
  #generation = 0;
  #live = 0;
  #retainedUnmapped = 0;
  #expired = 0;
  #evicted = 0;
  #reused = 0;
  #ambiguous = 0;

  constructor(options: ProcessTableOptions<L> = {}) {
    this.#max = Math.max(1, options.maxProcesses ?? 1_000_000);
    this.#maxBirths = Math.max(0, options.maxBirths ?? 100_000);
    this.#birthTtl = options.birthTtlMs ?? 60_000;
    this.#deadTtl = options.deadTtlMs ?? 10_000;
    this.#hooks = options.hooks ?? NO_HOOKS;
    this.#anyLabelled = options.anyLabelled ?? ((): boolean => true);
    this.#unknown = options.unknownLabel ?? null;
    this.#births = new Births<L>({
      max: this.#maxBirths,
      ttlMs: this.#birthTtl,
      clone3TtlMs: options.clone3BirthTtlMs ?? 2_000,
      hooks: this.#hooks,
    });
    this.#waits = new Waits<L>(options.questions ?? false);
  }

  /** The latest incarnation of `pid` if it is alive. */
  get(pid: number): ProcessEntry<L> | undefined {
    const e = this.#byPid.get(pid);
    return e?.alive === true ? e : undefined;
  }

  /** The latest incarnation of `pid`, alive or recently exited. */
  latest(pid: number): ProcessEntry<L> | undefined {
    return this.#byPid.get(pid);
  }

  /** Waits ended (a never-seen parent appeared, or will not): lets callers holding provisional events re-check. */
  get settlements(): number {
    return this.#settlements;
  }

  /** Moves stream time forward (never back) and expires what is due. */
  advance(timeMs: number): void {
    const clock = this.#clock;
    if (!clock.advance(timeMs)) return;
    const now = clock.nowMs;
    this.#births.expire(now);
    this.#waits.expire(now, this.#endWait);
    this.#expireDead();
    let due = this.#births.nextExpiry(this.#waits.dueMs);
    const dead = this.#dead.peek();
    if (dead !== undefined && dead.diedAtMs + this.#deadTtl < due) due = dead.diedAtMs + this.#deadTtl;
    clock.nextDue(due);
  }

  /**
   * A live source (the proc connector) reports that `pid` exited while the
   * table has no entry for it: a process waiting for it as a never-seen
   * parent can no longer be resolved (a later process with that pid is
   * another incarnation).
   */
  unseenExited(pid: number): void {
    if (this.#byPid.get(pid)?.alive === true) return;
    this.#dropPlaceholder(pid);
    // An open birth of a host caller naming that pid was of this process:
    // it has exited without a record (the raw exit syscall), and the birth
    // must not bind the next process to get the pid.
    if (pid < MIN_NAMED_PID) return;
    this.#births.closeClaims(pid);
  }

  /**
   * What observe(pid, ppid) would make of a process not in the table,
   * without changing anything: its parent and the label it would take
   * (the same birth the binding would take, else the parent's label), and
   * whether that is provisional. Null when the parent is not a live entry.
   * Lets policy check an operation on a process not yet seen before it
   * changes the table (a refused operation must change nothing).
   */
  peekNew(
    pid: number,
    ppid: number,
  ): { parent: ProcessEntry<L>; label: L | null; provisional: boolean } | null {
    const parent = this.#byPid.get(ppid);
    if (parent === undefined || !parent.alive || parent.pid === pid) return null;
    const b = this.#births.peek(parent, pid);
    if (b !== undefined) return { parent, label: b.label, provisional: b.provisional };
    return { parent, label: parent.label, provisional: parent.provisional };
  }

  /**
   * Loads a /proc snapshot: every process not in the table yet is added,
   * alive and unlabelled, parents linked by ppid. The snapshot may arrive
   * after records of some of its processes (the daemon writes it into the
   * stream, see the `seed` marker): a live entry with the same pid and ppid
   * is the same process and only learns its start time and pid namespace;
   * one with another ppid is newer than the snapshot and is left alone.
   */
  seed(procs: readonly SeedProcess[]): void {
    const created: TableEntry<L>[] = [];
    for (const p of procs) {
      const known = this.#byPid.get(p.pid);
      if (known?.alive === true) {
        if (known.ppid === p.ppid) {
          known.startTime ??= p.startTime ?? null;
          if (p.pidns !== undefined) fixPidNamespace(known, p.pidns);
        }
        continue;
      }
      if (known !== undefined && known.ppid === p.ppid && known.diedAtMs + 1000 >= this.#clock.nowMs) {
        // Seen exiting just now: a zombie in the snapshot, not a live process.
        known.startTime ??= p.startTime ?? null;
        continue;
      }
      if (known !== undefined) this.#unmap(known);
      const e = this.#newEntry(p.pid, p.ppid, null, 'seed');
      e.confirmed = true;
      e.exe = p.exe ?? null;
      e.comm = p.comm ?? null;
      e.startTime = p.startTime ?? null;
      if (p.pidns !== undefined) fixPidNamespace(e, p.pidns);
      created.push(e);
    }
    for (const e of created) {
      const parent = this.#byPid.get(e.ppid);
      if (parent?.alive === true && parent !== e) this.#link(e, parent);
    }
    // Processes seen before the snapshot whose parent was unknown then and
    // is a process of the snapshot. (Once per start: a walk of the table.)
    if (created.length > 0) {
      const isNew = new Set(created);
      for (const e of this.#groups.entries()) {
        if (e.parent !== null || isNew.has(e) || e.provisional) continue;
        const parent = this.#byPid.get(e.ppid);
        if (parent !== undefined && isNew.has(parent) && parent !== e && !isDescendant(parent, e))
          this.#link(e, parent);
      }
    }
    // Processes that waited for one of these (seen first, parent unknown):
    // their parent was a process of the snapshot, unset.
    for (const e of created) this.#settle(e, undefined);
    this.#enforceBound(null);
  }

  /** The generation the next process will get: processes made from now on have a higher one. */
  get nextGeneration(): number {
    return this.#generation + 1;
  }

  /** The birth sequence number the next birth will get. */
  get nextBirthSeq(): number {
    return this.#births.lastSeq + 1;
  }

  /**
   * After labels were restored: processes made (and births recorded) since
   * `generation`/`birthSeq`, while their parents' labels were not back yet,
   * take the labels their parents have now, parents before children. An
   * entry or birth that has a label already keeps it.
   */
  inheritSince(generation: number, birthSeq: number): void {
    const made: TableEntry<L>[] = [];
    for (const e of this.#groups.entries()) if (e.generation >= generation && e.label === null) made.push(e);
    // Those that exited meanwhile too: their events are still held.
    for (const e of this.#dead.pending()) {
      if (e.mapped && e.generation >= generation && e.label === null) made.push(e);
    }
    made.sort((a, b) => a.generation - b.generation);
    for (const e of made) {
      if (e.parent !== null) continue;
      // Seen before its parent was known: the parent came with the snapshot
      // (it existed then, so it is the one), or was made after it.
      const parent = this.#byPid.get(e.ppid);
      if (
        parent !== undefined &&
        parent !== e &&
        (parent.origin === 'seed' || parent.generation < e.generation) &&
        !isDescendant(parent, e)
      )
        this.#link(e, parent);
    }
    // Parents before children: each takes the label of its nearest labelled
    // ancestor through processes made meanwhile. A child seen before its
    // parent comes first in creation order, so the way up is walked once for
    // each process (not round after round: a deep chain in reverse order
    // would take as many rounds as it is deep).
    const isMade = new Set(made);
    const walked = new Set<TableEntry<L>>();
    const chain: TableEntry<L>[] = [];
    for (const e of made) {
      let p: TableEntry<L> | null = e;
      for (; p !== null && p.label === null && isMade.has(p) && !walked.has(p); p = p.parent) {
        walked.add(p);
        chain.push(p);
      }
      const label = p?.label ?? null;
      for (let c = chain.pop(); c !== undefined; c = chain.pop()) {
        if (label === null) continue;
        if (c.alive) this.#hooks.retain(label);
        this.#setLabel(c, label);
        c.provisional = false;
      }
    }
    for (const e of this.#groups.entries()) {
      for (const b of e.births) {
        if (b.seq < birthSeq || b.label !== null || b.caller.label === null) continue;
        this.#hooks.retain(b.caller.label);
        b.label = b.caller.label;
      }
    }
  }

  /**
   * Records a process's start time (clock ticks since boot, as /proc shows
   * it), learnt from a marker. A start time already known is kept.
   */
  learnStartTime(entry: ProcessEntry<L>, startTime: number): void {
    own(entry).startTime ??= startTime;
  }

  /**
   * Records what a process runs, from a record of it (raw `comm=` and
   * `exe=`; null or undefined: the record did not say, and what was known
   * is kept).
   */
  learnExec(entry: ProcessEntry<L>, comm: string | null | undefined, exe: string | null | undefined): void {
    const e = own(entry);
    e.comm = comm ?? e.comm;
    e.exe = exe ?? e.exe;
  }

  /**
   * Gives a process the right to label its own descendants (a grant), for
   * the identity it is given to; it ends with the process.
   */
  grant(entry: ProcessEntry<L>, grant: Grant): void {
    own(entry).grant = grant;
  }

  /**
   * Accounts for a record of process `pid` with parent `ppid` (host pids).
   * A pid seen for the first time inherits from its parent at this point; a
   * changed ppid is a reparenting when the new parent is init or an
   * ancestor (the only places the kernel reparents to), otherwise the pid
   * was reused by a new process.
   */
  observe(pid: number, ppid: number): Observation<L> {
    const entry = this.observeEntry(pid, ppid);
    return { entry, created: this.lastObserveCreated };
  }

  /**
   * observe() without the result object, for the labeller's per-event
   * path: whether the entry was made by this call is in
   * `lastObserveCreated` until the next call.
   */
  observeEntry(pid: number, ppid: number, nspid = 0): ProcessEntry<L> {
    const doubt = this.#ambiguous;
    this.#births.doubtful = false;
    const known = this.#byPid.get(pid);
    if (known !== undefined) {
      if (!known.alive && known.reported && known.ppid === ppid) {
        // A late record of a process whose end was reported before its own
        // last records arrived: the same process, not a new one.
        this.#lastCreated = false;
        return known;
      }
      if (known.alive) {
        if (known.ppid === ppid || this.#reparent(known, ppid)) {
          this.#groups.touch(known);
          this.#lastCreated = false;
          return known;
        }
        this.#reused++;
        this.#end(known, null);
      }
      this.#unmap(known);
    }
    const entry = this.#create(pid, ppid, nspid);
    if (
      (this.#ambiguous !== doubt || this.#births.doubtful) &&
      entry.label === null &&
      this.#unknown !== null
    ) {
      this.#hooks.retain(this.#unknown);
      this.#setLabel(entry, this.#unknown);
    }
    this.#lastCreated = true;
    return entry;
  }

  /** Whether the last observeEntry() call made a new entry. */
  get lastObserveCreated(): boolean {
    return this.#lastCreated;
  }

  /**
   * Records a child creation by `caller` (a fork, vfork, non-thread clone or
   * clone3 record whose `exit=` is `claimedPid`). With CLONE_PARENT the
   * child belongs to the caller's parent but still inherits the caller's
   * label, as the kernel copies it from the calling task.
   */
  recordBirth(
    callerEntry: ProcessEntry<L>,
    claimedPid: number,
    options: { kind: 'fork' | 'clone3'; cloneParent?: boolean; newPidNamespace?: boolean },
  ): void {
    const caller = own(callerEntry);
    // A host caller's `exit=` is a host pid, and host pids this small are
    // boot-time only: the caller is (almost surely) in a pid namespace.
    if (claimedPid < MIN_NAMED_PID) markNested(caller);
    const childNs: ChildNamespace =
      options.newPidNamespace === true ? 'nested' : options.kind === 'clone3' ? 'unknown' : 'inherit';
    const owner = options.cloneParent === true ? caller.parent : caller;
    if (owner === null || !owner.alive) return;
    // The child's own record may have come first (nothing orders them): if
    // an unconfirmed child of this owner has exactly that pid, this record
    // is its creation, not another child. The child may even have exited
    // already (a vfork child's _exit is recorded before the vfork).
    const early = this.#byPid.get(claimedPid);
    if (early !== undefined && early.parent === owner && !early.confirmed) {
      early.confirmed = true;
      retractNestedVote(caller);
      voteHost(caller, claimedPid);
      inheritPidNamespace(early, caller, childNs);
      return;
    }
    const eventMs = this.#clock.eventMs;
    if (claimedPid >= MIN_NAMED_PID && pidNamespaceOf(caller) === 'host') {
      // The kernel just gave this pid to a new child: whatever held it
      // before is dead, whether or not its end was recorded (a process that
      // left by the raw exit syscall, a ghost).
      // (Not one first seen after this record's time: records arrive out
      // of order, and that one is the newer process.)
      if (early?.alive === true && early.seenAtMs <= eventMs) {
        this.#reused++;
        this.exit(early, { reported: true });
      }
      // Likewise an open birth of a host caller naming the same pid is of
      // a child that has gone unseen (one planted through CLONE_PARENT and
      // left by the raw exit syscall, say): it must not bind the new one.
      this.#births.closeClaims(claimedPid, eventMs);
    }
    const birth = this.#births.record(caller, {
      owner,
      claimedPid,
      kind: options.kind,
      childNs,
      atMs: eventMs,
      nowMs: this.#clock.nowMs,
    });
    if (birth !== null) this.#clock.due(birth.expiresAtMs);
  }

  /**
   * Ends a process: its exit_group, or (`reported`) an exit reported by a
   * live source or proved by the stream (its pid given to another process).
   * A reported end may come before the process's own last records, which
   * are then taken as late records of it, not a new process (see
   * observeEntry).
   */
  exit(entry: ProcessEntry<L>, options: { reported?: boolean } = {}): void {
    const e = own(entry);
    if (!e.alive) return;
    if (options.reported === true) e.reported = true;
    this.#end(e, e);
    this.#dead.push(e);
    this.#clock.due(e.diedAtMs + this.#deadTtl);
  }

  /**
   * Gives a live process the label it had all along (a restore from a
   * checkpoint): not a relabel, so nothing records a label before it.
   */
  restoreLabel(entry: ProcessEntry<L>, label: L): void {
    const e = own(entry);
    if (e.label === label) return;
    if (!e.alive) {
      // It exited before the restore (its events may still be held): no hold on the label.
      e.label = label;
      e.provisional = false;
      return;
    }
    this.#hooks.retain(label);
    const old = e.label;
    this.#setLabel(e, label);
    e.provisional = false;
    e.history = null;
    if (old !== null) this.#hooks.release(old, e);
  }

  /** Replaces a live process's label, keeping the holder counts right. */
  relabel(entry: ProcessEntry<L>, label: L | null): void {
    const e = own(entry);
    if (!e.alive || e.label === label) return;
    if (label !== null) this.#hooks.retain(label);
    const old = e.label;
    this.#setLabel(e, label);
    // Evidence: the label is no longer provisional. Its pending children
    // (forked before this) still wait for the label it had then.
    e.provisional = false;
    (e.history ??= []).push({ tick: ++this.#tick, before: old });
    if (old !== null) this.#hooks.release(old, e);
  }

  /** True when the process has children, seen or only recorded by their creation syscall. */
  hasChildren(entry: ProcessEntry<L>): boolean {
    const e = own(entry);
    return e.children > 0 || e.births.length > 0;
  }

  /** True when `entry` descends (strictly) from `ancestor`, by creation links. */
  isDescendant(entry: ProcessEntry<L>, ancestor: ProcessEntry<L>): boolean {
    return isDescendant(entry, ancestor);
  }

  /**
   * The process's pid namespace: its own evidence, else its creator's, else
   * 'unknown' (see pid-namespace.ts for what counts as evidence).
   */
  pidNamespace(entry: ProcessEntry<L>): PidNamespace {
    return pidNamespaceOf(own(entry));
  }

  stats(): ProcessTableStats {
    return {
      processes: this.#live,
      retained: this.#byPid.size - this.#live + this.#retainedUnmapped,
      max: this.#max,
      expired: this.#expired,
      evicted: this.#evicted,
      reused: this.#reused,
      ambiguous: this.#ambiguous,
      births: this.#births.open,
      birthsMatched: this.#births.matched,
      birthsExpired: this.#births.expired,
      birthsEvicted: this.#births.evicted,
    };
  }

  /**
   * The pids that processes started waiting for (never-seen parents) since
   * the last call, oldest first. A live daemon looks each one up in /proc
   * and writes what it found into the stream (see Labeller).
   */
  takeQuestions(): number[] {
    return this.#waits.takeQuestions();
  }

  /** True when an open birth names `pid` as its `exit=` (a child not seen yet). */
  isClaimed(pid: number): boolean {
    return this.#births.isClaimed(pid);
  }

  /** The live processes, least recently seen first (for a reconciliation against /proc). */
  liveEntries(): Generator<ProcessEntry<L>> {
    return this.#groups.entries();
  }

  /** True while processes wait, provisional, for never-seen `pid`. */
  isWaitedFor(pid: number): boolean {
    return this.#waits.has(pid);
  }

  /**
   * A live source reports that never-seen `pid` is gone: nothing more will
   * be learnt of it, and the processes waiting for it take the unknown label.
   */
  waitEnded(pid: number): void {
    if (this.#byPid.get(pid)?.alive !== true) this.#dropPlaceholder(pid);
  }

  #create(pid: number, ppid: number, nspid: number): TableEntry<L> {
    const orphan = this.#births.orphan(pid, ppid);
    if (orphan !== undefined) return this.#createFromOrphanBirth(pid, ppid, orphan);
    let parent = this.#byPid.get(ppid);
    if (parent === undefined && ppid !== pid) parent = this.#placeParent(ppid);
    // Processes already seen with this pid as their ppid: this one existed
    // before the first of them was seen.
    const placeholder = this.#waits.get(pid);
    let label: L | null = null;
    let birth: Birth<L> | undefined;
    if (parent !== undefined && parent.pid !== pid) {
      birth = this.#births.take(parent, pid, nspid);
      if (birth !== undefined) {
        label = birth.label; // the birth's hold passes to the process
        this.#births.bound();
      } else {
        // The parent's label when this process is known to have existed
        // already, not a relabel that came after (see #labelAt).
        label = placeholder === undefined ? parent.label : this.#labelAt(parent, placeholder.tick);
        if (label !== null) this.#hooks.retain(label);
      }
    }
    const e = this.#newEntry(pid, ppid, label, birth === undefined ? 'ppid' : 'birth');
    e.confirmed = birth !== undefined;
    if (birth !== undefined) inheritPidNamespace(e, birth.caller, birth.childNs);
    if (parent !== undefined && parent.pid !== pid) {
      this.#link(e, parent);
      this.#inheritProvisional(e, parent, birth);
    } else if (ppid !== pid) {
      this.#wait(e, ppid);
    }
    this.#settle(e, birth, birth !== undefined && this.#births.inexact);
    this.#enforceBound(e);
    return e;
  }

  /** The label `entry` had at `tick`: before the first relabel after it. */
  #labelAt(entry: TableEntry<L>, tick: number): L | null {
    for (const h of entry.history ?? []) if (h.tick > tick) return h.before;
    return entry.label;
  }

  /**
   * A new, unset child of a provisional creator is provisional too: it
   * waits on the creator (its `pending` list). `birth`, when the child
   * bound one, says whether the creator was provisional at the fork.
   */
  #inheritProvisional(e: TableEntry<L>, parent: TableEntry<L>, birth: Birth<L> | undefined): void {
    if (e.label !== null) return;
    const from = birth === undefined ? parent : birth.provisional ? birth.caller : null;
    if (from === null || !from.provisional) return;
    e.provisional = true;
    (from.pending ??= []).push(e);
  }

  /** A new process whose ppid the table does not know: provisional, waiting for that pid's first record. */
  #wait(e: TableEntry<L>, ppid: number): void {
    if (ppid < MIN_NAMED_PID || this.#maxBirths === 0) return;
    let ph = this.#waits.get(ppid);
    if (ph === undefined) {
      if (this.#waits.size >= this.#maxBirths) {
        const oldest = this.#waits.oldest();
        if (oldest !== undefined) this.#dropPlaceholder(oldest);
      }
      ph = {
        pid: ppid,
        tick: ++this.#tick,
        atMs: this.#clock.eventMs,
        expiresAtMs: this.#clock.nowMs + this.#birthTtl,
        waiting: [],
      };
      this.#waits.open(ph);
      this.#clock.due(ph.expiresAtMs);
    }
    if (!this.#anyLabelled()) return;
    if (ph.waiting.length >= MAX_WAITING) {
      // Past the bound a waiting process cannot be resolved later: its
      // container is unknown (never unset, which would claim "host").
      if (this.#unknown !== null) {
        this.#hooks.retain(this.#unknown);
        this.#setLabel(e, this.#unknown);
      }
      return;
    }
    if (ph.waiting.length === 0) this.#waits.ask(ppid);
    e.provisional = true;
    ph.waiting.push(e);
  }

  /**
   * `e` is seen for the first time: the processes that named its pid as
   * their ppid before are its children. Each still in that state (same
   * incarnation: `ppid` unchanged, no parent since) is attached to it, and
   * it and its provisional descendants take `e`'s label, which is the one
   * `e` had when it forked them (it was never seen, so never relabelled).
   * Not trusted when `e` bound a birth recorded in an event later (in stream
   * time) than the first of them: that birth is a later process with the
   * same pid.
   */
  #settle(e: TableEntry<L>, birth: Birth<L> | undefined, inexact = false): void {
    const ph = this.#waits.get(e.pid);
    if (ph === undefined) return;
    this.#settlements++;
    // (A birth taken without a pid match says nothing of when this process
    // was made: the one that named it may have gone to a sibling.)
    if (birth !== undefined && !inexact && birth.atMs > ph.atMs) {
      this.#dropPlaceholder(e.pid);
      return;
    }
    this.#waits.delete(e.pid);
    for (const c of ph.waiting) {
      if (c.parent !== null || c.ppid !== e.pid) continue;
      if (c === e || isDescendant(e, c)) {
        // `e` descends from the process that waited for its pid: a later
        // process with the pid of that one's parent (reused, or a hostile
        // log). Linking would make the ancestry a cycle; the real parent
        // is gone unseen, so its container is unknown.
        this.#resolve(c, this.#unknown);
        continue;
      }
      if (c.mapped) this.#link(c, e);
      if (e.provisional) {
        if (c.provisional || c.pending !== null) (e.pending ??= []).push(c);
      } else {
        this.#resolve(c, e.label);
      }
    }
  }

  /**
   * Ends the provisional state of `root` and of the processes pending under
   * it: the unset and alive ones take `label` (null: they stay unset), and
   * so do the open births they recorded while provisional.
   */
  #resolve(root: TableEntry<L>, label: L | null): void {
    const stack = [root];
    for (let c = stack.pop(); c !== undefined; c = stack.pop()) {
      // An exited process resolves too: its events may still be held.
      if (c.provisional && label !== null) {
        if (c.alive) this.#hooks.retain(label);
        this.#setLabel(c, label);
      }
      c.provisional = false;
      for (const b of c.births) {
        if (!b.provisional || b.caller !== c) continue;
        b.provisional = false;
        if (label !== null && b.open) {
          this.#hooks.retain(label);
          b.label = label;
        }
      }
      if (c.pending !== null) {
        // (One at a time: a spread of a list this long would overflow the call stack.)
        for (const p of c.pending) stack.push(p);
        c.pending = null;
      }
    }
  }

  /**
   * Lets go of the processes waiting for `pid`: they can no longer be
   * resolved. Their container is unknown, not host: they take the unknown
   * label (and so do their provisional descendants).
   */
  #dropPlaceholder(pid: number): void {
    const ph = this.#waits.get(pid);
    if (ph === undefined) return;
    this.#waits.delete(pid);
    this.#settlements++;
    for (const c of ph.waiting) {
      if (c.parent === null && c.ppid === pid) this.#resolve(c, this.#unknown);
    }
  }

  #createFromOrphanBirth(pid: number, ppid: number, birth: Birth<L>): TableEntry<L> {
    this.#births.bind(birth);
    const reaper =
      ppid === 1
        ? this.#byPid.get(1)?.alive === true
          ? this.#byPid.get(1)!
          : null
        : liveAncestor(birth.parent, ppid);
    const e = this.#newEntry(pid, ppid, birth.label, 'birth');
    e.confirmed = true;
    inheritPidNamespace(e, birth.caller, birth.childNs);
    if (reaper !== null && reaper !== e) this.#link(e, reaper);
    if (reaper !== null) this.#inheritProvisional(e, reaper, birth);
    this.#settle(e, birth);
    this.#enforceBound(e);
    return e;
  }

  /**
   * A process named as `ppid=` but never seen: placed through an open
   * birth of a 'host' caller whose `exit=` is that pid (a vfork child's
   * exec can be recorded before its parent's own first record). Returns
   * undefined when there is none: the child is then created unparented.
   */
  #placeParent(ppid: number): TableEntry<L> | undefined {
    const birth = this.#births.ofUnseenParent(ppid);
    if (birth === undefined) return undefined;
    this.#births.bind(birth);
    const e = this.#newEntry(ppid, birth.parent.pid, birth.label, 'birth');
    e.confirmed = true;
    inheritPidNamespace(e, birth.caller, birth.childNs);
    this.#link(e, birth.parent);
    this.#inheritProvisional(e, birth.parent, birth);
    this.#settle(e, birth);
    this.#enforceBound(e);
    return e;
  }

  #newEntry(pid: number, ppid: number, label: L | null, origin: EntryOrigin): TableEntry<L> {
    const e = newTableEntry<L>(pid, {
      generation: ++this.#generation,
      ppid,
      label,
      origin,
      seenAtMs: this.#clock.eventMs,
    });
    this.#byPid.set(pid, e);
    this.#live++;
    this.#groups.add(e);
    return e;
  }

  #link(child: TableEntry<L>, parent: TableEntry<L>): void {
    child.parent = parent;
    parent.holds++;
    if (child.alive && parent.alive) parent.children++;
  }

  #unlink(child: TableEntry<L>): void {
    const parent = child.parent;
    if (parent === null) return;
    child.parent = null;
    if (child.alive && parent.alive) parent.children--;
    parent.holds--;
    this.#maybeRelease(parent);
  }

  #reparent(entry: TableEntry<L>, ppid: number): boolean {
    let target: TableEntry<L> | null = null;
    for (let p = entry.parent; p !== null; p = p.parent) {
      if (p.pid === ppid && p.alive) {
        target = p;
        break;
      }
    }
    if (target === null && ppid !== 1) return false;
    if (target === null && entry.parent?.alive === true && entry.label !== null) {
      // The kernel reparents to init only when the parent dies, and the
      // table holds this process's parent alive: either the parent ended
      // unseen, or this process did and its pid went to a new process
      // (a host daemon's double-forked child, say). The first would leave
      // the label, the second plant it on the host; neither is known, so
      // the process at this pid is a new one whose container is unknown.
      this.#ambiguous++;
      return false;
    }
    // Reparented before its never-seen parent showed up: that parent has
    // exited, and a later process with its pid is another incarnation.
    if (entry.parent === null) this.#dropPlaceholder(entry.ppid);
    if (target === null) {
      const init = this.#byPid.get(1);
      target = init?.alive === true ? init : null;
    }
    this.#unlink(entry);
    entry.ppid = ppid;
    if (target !== null && target !== entry) this.#link(entry, target);
    return true;
  }

  #end(entry: TableEntry<L>, by: TableEntry<L> | null): void {
    const parent = entry.parent;
    if (parent !== null && parent.alive) parent.children--;
    entry.alive = false;
    entry.diedAtMs = this.#clock.nowMs;
    this.#live--;
    this.#groups.remove(entry);
    this.#births.parentEnded(entry);
    if (entry.label !== null) this.#hooks.release(entry.label, by ?? entry);
  }

  /** Takes an entry out of the pid map; it lives on only while children hold it. */
  #unmap(entry: TableEntry<L>): void {
    if (!entry.mapped) return;
    entry.mapped = false;
    pidNamespaceOf(entry); // resolve (and drop the chain) while the chain is still there
    if (this.#byPid.get(entry.pid) === entry) this.#byPid.delete(entry.pid);
    if (entry.holds > 0) {
      this.#retainedUnmapped++;
    } else {
      this.#expired++;
      this.#unlink(entry);
    }
  }

  /** Lets go of an exited, unmapped entry once nothing points at it. */
  #maybeRelease(entry: TableEntry<L>): void {
    if (entry.alive || entry.mapped || entry.holds > 0) return;
    this.#retainedUnmapped--;
    this.#expired++;
    this.#unlink(entry);
  }

  /** Changes an entry's label, moving a live one to its new group. */
  #setLabel(entry: TableEntry<L>, label: L | null): void {
    if (entry.label === label) return;
    const listed = this.#groups.has(entry);
    if (listed) this.#groups.remove(entry);
    entry.label = label;
    if (listed) this.#groups.add(entry);
  }

  #enforceBound(keep: TableEntry<L> | null): void {
    while (this.#byPid.size + this.#retainedUnmapped > this.#max) {
      const dead = this.#dead.peek();
      if (dead !== undefined) {
        this.#unmap(dead);
        continue;
      }
      const victim = this.#groups.victim(keep);
      if (victim === null) break;
      this.#evicted++;
      this.#end(victim, victim);
      this.#unmap(victim);
    }
  }

  #expireDead(): void {
    for (
      let e = this.#dead.peek();
      e !== undefined && e.diedAtMs + this.#deadTtl <= this.#clock.nowMs;
      e = this.#dead.peek()
    ) {
      this.#unmap(e);
    }
  }
}
