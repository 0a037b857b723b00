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
 * happens to get the same pid.
 *
 * Births and `exit=`. A fork/vfork/clone/clone3 record is kept as a *birth*
 * on its caller: it fixes the child's label at that point of the stream and
 * counts as a child of the caller (for the "no children" rule). `exit=` is
 * the child's pid in the *caller's* pid namespace (`exit=2` in a container),
 * so each process carries a pid-namespace status, 'host' | 'nested' |
 * 'unknown', from evidence in the stream (see `pidNamespace`). A birth is
 * bound to a process when that process's own record names the caller as
 * `ppid=` (a host pid, stamped by the kernel): the birth whose `exit=` equals
 * the child's pid, else (unless the caller is known to be 'host') the
 * oldest; both are children of the same caller, so the choice never crosses
 * to another process's lineage. Only a 'host' caller's `exit=` (and only a
 * value ≥ MIN_NAMED_PID) may also name a process outright: an orphan whose
 * creator exited before it was first seen, or an unknown parent.
 * See docs/labels.md.
 */

import { EventKeyMap } from '../assemble/event-key-map.js';

/** A process's pid namespace as far as the stream shows it. */
export type PidNamespace = 'host' | 'nested' | 'unknown';

/**
 * `exit=` values below this never name a process and never count as
 * evidence of the host namespace. The kernel hands out pids below
 * RESERVED_PIDS (300) only until the first wrap, in every namespace: on the
 * host they belong to boot-time processes (init, kernel threads), while in a
 * pid namespace they are the common case (`exit=2`). A value below it is
 * instead taken as evidence that the caller is 'nested' (the safe side).
 */
export const MIN_NAMED_PID = 300;

/** Confirmed births (child's pid == `exit=`) needed before a caller counts as 'host'. */
const HOST_VOTES = 2;
/** Children matching none of the caller's open fork births before it counts as 'nested'. */
const NESTED_VOTES = 2;
/** Bound on the provisional children waiting for one never-seen parent (more are simply unset). */
const MAX_WAITING = 1024;

/** A process as the table knows it. Mutable fields change as the stream goes on. */
export interface ProcessEntry<L> {
  readonly pid: number;
  /** Table-wide creation number: (pid, generation) names one incarnation. */
  readonly generation: number;
  /** The host ppid last seen in this process's records. */
  ppid: number;
  /** The parent's entry (possibly exited), or null when the parent was never seen. */
  parent: ProcessEntry<L> | null;
  label: L | null;
  /** Raw `comm=` / `exe=` values as last seen (quotes or hex kept). */
  comm: string | null;
  exe: string | null;
  /** Start time from a /proc snapshot (clock ticks since boot), or null. */
  startTime: number | null;
  alive: boolean;
  /** How the table first learnt of it. */
  readonly origin: 'seed' | 'birth' | 'ppid';
  /** True once a creation record (a birth) of this process has been seen. */
  confirmed: boolean;
  /** Live entries whose parent is this one. */
  children: number;
  /** Entries (live, or exited and retained) whose parent is this one. */
  holds: number;
  /**
   * Open births: children recorded by their creation syscall, not yet seen
   * themselves. Read-only: the table replaces it (most processes share one
   * empty array, never written).
   */
  births: readonly Birth<L>[];
  /**
   * Delegation (the kernel series' capcontid): may label its own
   * descendants. It belongs to this incarnation, and to the identity it was
   * granted to (uid, executable, start time), which a caller must match.
   */
  grant: Grant | null;
  /**
   * Pid-namespace status as known so far; 'unknown' defers to `nsFrom`. Read
   * it through `ProcessTable.pidNamespace`, which resolves the inheritance.
   */
  pidns: PidNamespace;
  /** True when `pidns` can no longer change: seeded, or 'nested' (a process never leaves a pid namespace). */
  pidnsFixed: boolean;
  /** The process this one inherits its pid-namespace status from (its creator), while that is unresolved. */
  nsFrom: ProcessEntry<L> | null;
  /** Births of this process confirmed with the child's pid == `exit=` (≥ MIN_NAMED_PID). */
  hostVotes: number;
  /** Children of this process that matched none of its open fork births (less those confirmed late). */
  nestedVotes: number;
  /**
   * True while the label is unset only because the parent was not known when
   * this process was created (a never-seen ppid, or a provisional creator):
   * resolved once that parent is first seen (see `#settle`). Implies `label === null`.
   */
  provisional: boolean;
  /** Provisional children created under this one while it was provisional, or null. */
  pending: ProcessEntry<L>[] | null;
  /** Accepted relabels (set, adopt) in order: the label before each, or null when never relabelled. */
  history: { readonly tick: number; readonly before: L | null }[] | null;
  /** Stream time of the event in which the table first learnt of it. */
  readonly seenAtMs: number;
  /** Stream time of death, for expiry. */
  diedAtMs: number;
  /** Ended by a reported exit (see ProcessTable.exit), not by its own exit_group. */
  reported: boolean;
  /** False once the pid map no longer points at this entry. */
  mapped: boolean;
  /** Internal: links of the table's least-recently-seen list of live entries. */
  lruPrev: ProcessEntry<L> | null;
  lruNext: ProcessEntry<L> | null;
}

/** A child creation seen in its parent's clone/fork record, waiting for the child's own records. */
export interface Birth<L> {
  /** Creation order, table-wide. */
  readonly seq: number;
  readonly parent: ProcessEntry<L>;
  /**
   * The process that made the syscall: `parent` itself, or its child for
   * CLONE_PARENT. `exit=` is relative to its pid namespace.
   */
  readonly caller: ProcessEntry<L>;
  /** The `exit=` value: a host pid, or a pid in the caller's namespace. */
  readonly claimedPid: number;
  /** The caller's label at the fork (filled in later if the caller was provisional then). */
  label: L | null;
  /** True while `label` is unset only because the caller was provisional at the fork. */
  provisional: boolean;
  readonly kind: 'fork' | 'clone3';
  /**
   * The child's pid namespace: the caller's ('inherit': fork, vfork, clone
   * without CLONE_NEWPID), 'nested' (clone with CLONE_NEWPID), or 'unknown'
   * (clone3, whose flags the record does not show).
   */
  readonly childNs: 'inherit' | 'nested' | 'unknown';
  /** The stream time of the event that recorded it. */
  readonly atMs: number;
  readonly expiresAtMs: number;
  open: boolean;
  /** Internal: the open births with the same `exit=` value, older and newer (see ProcessTable's #byClaim). */
  olderClaim: Birth<L> | null;
  newerClaim: Birth<L> | null;
}

/** What a grant was given to: a caller claiming it must be the same (null: not known then). */
export interface Grant {
  readonly uid: number | null;
  readonly exe: string | null;
  readonly start: number | null;
}

/** Told when a label gains or loses a holder (a live process or an open birth). */
export interface LabelHooks<L> {
  retain(label: L): void;
  /** `by` is the process whose end released it (for a closed birth: the parent that recorded it). */
  release(label: L, by: ProcessEntry<L>): void;
}

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
/** The births of every process that has recorded none: one frozen array, never written. */
const NO_BIRTHS: readonly never[] = Object.freeze([]);

/**
 * A pid named as `ppid=` by processes seen before it (and never seen
 * itself): they wait here, provisional, for its first record.
 */
interface Placeholder<L> {
  readonly pid: number;
  /** `#tick` when the first waiting child was seen: the pid's process existed by then. */
  readonly tick: number;
  /** `#birthSeq` at that point. */
  readonly birthSeq: number;
  /**
   * The stream time of the event in which the first waiting child was seen.
   * A birth recorded in an event with a later timestamp cannot be that
   * process's creation (it is a later process with the same pid). Stream
   * time, not arrival order: records reach a reader out of order, so the
   * parent's own creation can arrive after its child's first record.
   */
  readonly atMs: number;
  readonly expiresAtMs: number;
  readonly waiting: ProcessEntry<L>[];
}

/** A bounded, generation-keyed process table fed by the audit stream. */
export class ProcessTable<L> {
  readonly #max: number;
  readonly #maxBirths: number;
  readonly #birthTtl: number;
  readonly #clone3Ttl: number;
  readonly #deadTtl: number;
  readonly #hooks: LabelHooks<L>;
  /** pid → latest incarnation, alive or recently exited. */
  readonly #byPid = new EventKeyMap<ProcessEntry<L>>();
  /**
   * Live entries by label (null: unset), each group least recently seen
   * first (intrusive lists: touching is O(1), no map churn). When the table
   * is full, the largest group gives way first: one container spawning
   * processes cannot push another's idle ones out.
   */
  readonly #groups = new Map<L | null, LruGroup<L>>();
  /** Exited entries in order of death; ones no longer mapped are skipped lazily. */
  #dead: (ProcessEntry<L> | undefined)[] = [];
  #deadHead = 0;
  /** Births by kind in creation order; each kind has one TTL, so each queue expires from its head. */
  readonly #forkBirths: BirthQueue<L>;
  readonly #clone3Births: BirthQueue<L>;
  /**
   * The newest open birth of each `exit=` value, for the bindings that use
   * a 'host' caller's `exit=` as a pid; older ones with the same value
   * follow from it (`olderClaim`). Links, not a list per value: a birth is
   * added and taken out for nearly every process.
   */
  readonly #byClaim = new EventKeyMap<Birth<L>>();
  /** Never-seen parents of provisional processes, by pid, oldest first (one TTL, so they expire from the head). */
  readonly #placeholders = new Map<number, Placeholder<L>>();
  /** Orders relabels and placeholders. */
  #tick = 0;
  #openBirths = 0;
  readonly #anyLabelled: () => boolean;
  readonly #unknown: L | null;
  /** Pids that processes started waiting for since the last takeQuestions(). */
  #questions: number[] = [];
  readonly #asks: boolean;
  #birthSeq = 0;
  /** Waits ended (a never-seen parent appeared): lets callers holding provisional events re-check. */
  settlements = 0;
  /** The timestamp of the event being processed (advance()); #nowMs is the newest seen. */
  #eventMs = 0;
  #lastCreated = false;
  /**
   * No placeholder expires before this stream time: the oldest one's
   * expiry when last looked at (placeholders only leave early, and new
   * ones expire later), so advance() need not look at them every event.
   */
  #placeholdersDueMs = Number.POSITIVE_INFINITY;
  /**
   * Nothing (birth, dead entry, placeholder) expires before this stream
   * time: the earliest expiry when advance() last looked, lowered as new
   * ones come. Most events move the clock less than that, and advance()
   * then has nothing to look at.
   */
  #dueMs = Number.POSITIVE_INFINITY;
  #generation = 0;
  #live = 0;
  #retainedUnmapped = 0;
  #nowMs = 0;
  #expired = 0;
  #evicted = 0;
  #reused = 0;
  #ambiguous = 0;
  /** Set by #takeBirth when the child's label cannot be known (see there). */
  #doubtful = false;
  #birthsMatched = 0;
  #birthsExpired = 0;
  #birthsEvicted = 0;

  constructor(options: ProcessTableOptions<L> = {}) {
    this.#max = Math.max(1, options.maxProcesses ?? 1_000_000);
    this.#maxBirths = Math.max(0, options.maxBirths ?? 100_000);
    this.#birthTtl = options.birthTtlMs ?? 60_000;
    this.#clone3Ttl = options.clone3BirthTtlMs ?? 2_000;
    this.#deadTtl = options.deadTtlMs ?? 10_000;
    this.#hooks = options.hooks ?? NO_HOOKS;
    this.#anyLabelled = options.anyLabelled ?? ((): boolean => true);
    this.#unknown = options.unknownLabel ?? null;
    this.#asks = options.questions ?? false;
    this.#forkBirths = new BirthQueue<L>(this.#maxBirths);
    this.#clone3Births = new BirthQueue<L>(this.#maxBirths);
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

  /** Moves stream time forward (never back) and expires what is due. */
  advance(timeMs: number): void {
    this.#eventMs = timeMs;
    if (timeMs > this.#nowMs) this.#nowMs = timeMs;
    if (this.#nowMs < this.#dueMs) return;
    this.#expireBirths();
    this.#expirePlaceholders();
    this.#expireDead();
    let due = this.#placeholdersDueMs;
    const fork = this.#forkBirths.peek();
    if (fork !== undefined && fork.expiresAtMs < due) due = fork.expiresAtMs;
    const clone3 = this.#clone3Births.peek();
    if (clone3 !== undefined && clone3.expiresAtMs < due) due = clone3.expiresAtMs;
    const dead = this.#oldestDead();
    if (dead !== undefined && dead.diedAtMs + this.#deadTtl < due) due = dead.diedAtMs + this.#deadTtl;
    this.#dueMs = due;
  }

  /** Nothing can expire before stream time `ms` (a new birth, death or placeholder). */
  #due(ms: number): void {
    if (ms < this.#dueMs) this.#dueMs = ms;
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
    for (let b = this.#byClaim.get(pid) ?? null; b !== null;) {
      const older = b.olderClaim;
      if (this.pidNamespace(b.caller) === 'host') this.#closeBirth(b);
      b = older;
    }
  }

  /**
   * What observe(pid, ppid) would make of a process not in the table,
   * without changing anything: its parent and the label it would take
   * (the same birth #takeBirth would bind, else the parent's label), and
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
    for (const b of parent.births) {
      if (b.claimedPid === pid && (b.caller === parent || this.pidNamespace(b.caller) === 'host'))
        return { parent, label: b.label, provisional: b.provisional };
    }
    for (const b of parent.births) {
      if (b.caller === parent && this.pidNamespace(b.caller) !== 'host')
        return { parent, label: b.label, provisional: b.provisional };
    }
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
    const created: ProcessEntry<L>[] = [];
    for (const p of procs) {
      const known = this.#byPid.get(p.pid);
      if (known?.alive === true) {
        if (known.ppid === p.ppid) {
          known.startTime ??= p.startTime ?? null;
          if (p.pidns !== undefined && !known.pidnsFixed) {
            known.pidns = p.pidns;
            known.pidnsFixed = true;
            known.nsFrom = null;
          }
        }
        continue;
      }
      if (known !== undefined && known.ppid === p.ppid && known.diedAtMs + 1000 >= this.#nowMs) {
        // Seen exiting just now: a zombie in the snapshot, not a live process.
        known.startTime ??= p.startTime ?? null;
        continue;
      }
      if (known !== undefined) this.#unmap(known);
      const e = this.#newEntry(p.pid, p.ppid, null, null, 'seed');
      e.confirmed = true;
      e.exe = p.exe ?? null;
      e.comm = p.comm ?? null;
      e.startTime = p.startTime ?? null;
      if (p.pidns !== undefined) {
        e.pidns = p.pidns;
        e.pidnsFixed = true;
      }
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
      for (const e of this.liveEntries()) {
        if (e.parent !== null || isNew.has(e) || e.provisional) continue;
        const parent = this.#byPid.get(e.ppid);
        if (parent !== undefined && isNew.has(parent) && parent !== e) this.#link(e, parent);
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
    return this.#birthSeq + 1;
  }

  /**
   * After labels were restored: processes made (and births recorded) since
   * `generation`/`birthSeq`, while their parents' labels were not back yet,
   * take the labels their parents have now, parents before children. An
   * entry or birth that has a label already keeps it.
   */
  inheritSince(generation: number, birthSeq: number): void {
    const made: ProcessEntry<L>[] = [];
    for (const e of this.liveEntries()) if (e.generation >= generation && e.label === null) made.push(e);
    // Those that exited meanwhile too: their events are still held.
    for (let i = this.#deadHead; i < this.#dead.length; i++) {
      const e = this.#dead[i];
      if (e !== undefined && e.mapped && e.generation >= generation && e.label === null) made.push(e);
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
        (parent.origin === 'seed' || parent.generation < e.generation)
      )
        this.#link(e, parent);
    }
    // Parents before children; a child seen before its parent comes first
    // in creation order, so go round until nothing changes.
    for (let changed = true; changed;) {
      changed = false;
      for (const e of made) {
        const label = e.parent?.label ?? null;
        if (label === null || e.label !== null) continue;
        if (e.alive) this.#hooks.retain(label);
        this.#setLabel(e, label);
        e.provisional = false;
        changed = true;
      }
    }
    for (const e of this.liveEntries()) {
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
    entry.startTime ??= startTime;
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
    this.#doubtful = false;
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
          this.#touch(known);
          this.#lastCreated = false;
          return known;
        }
        this.#reused++;
        this.#end(known, null);
      }
      this.#unmap(known);
    }
    const entry = this.#create(pid, ppid, nspid);
    if ((this.#ambiguous !== doubt || this.#doubtful) && entry.label === null && this.#unknown !== null) {
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
    caller: ProcessEntry<L>,
    claimedPid: number,
    options: { kind: 'fork' | 'clone3'; cloneParent?: boolean; newPidNamespace?: boolean },
  ): void {
    // A host caller's `exit=` is a host pid, and host pids this small are
    // boot-time only: the caller is (almost surely) in a pid namespace.
    if (claimedPid < MIN_NAMED_PID) this.#markNested(caller);
    const childNs: Birth<L>['childNs'] =
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
      if (caller.nestedVotes > 0) caller.nestedVotes--;
      this.#voteHost(caller, claimedPid);
      this.#inheritNs(early, caller, childNs);
      return;
    }
    if (claimedPid >= MIN_NAMED_PID && this.pidNamespace(caller) === 'host') {
      // The kernel just gave this pid to a new child: whatever held it
      // before is dead, whether or not its end was recorded (a process that
      // left by the raw exit syscall, a ghost).
      // (Not one first seen after this record's time: records arrive out
      // of order, and that one is the newer process.)
      if (early?.alive === true && early.seenAtMs <= this.#eventMs) {
        this.#reused++;
        this.exit(early, { reported: true });
      }
      // Likewise an open birth of a host caller naming the same pid is of
      // a child that has gone unseen (one planted through CLONE_PARENT and
      // left by the raw exit syscall, say): it must not bind the new one.
      for (let b = this.#byClaim.get(claimedPid) ?? null; b !== null;) {
        const older = b.olderClaim;
        if (b.atMs <= this.#eventMs && this.pidNamespace(b.caller) === 'host') this.#closeBirth(b);
        b = older;
      }
    }
    if (this.#maxBirths === 0) return;
    const ttl = options.kind === 'clone3' ? this.#clone3Ttl : this.#birthTtl;
    const birth: Birth<L> = {
      seq: ++this.#birthSeq,
      parent: owner,
      caller,
      claimedPid,
      label: caller.label,
      provisional: caller.provisional,
      kind: options.kind,
      childNs,
      atMs: this.#eventMs,
      expiresAtMs: this.#nowMs + ttl,
      open: true,
      olderClaim: this.#byClaim.get(claimedPid) ?? null,
      newerClaim: null,
    };
    if (birth.label !== null) this.#hooks.retain(birth.label);
    if (owner.births === NO_BIRTHS) owner.births = [birth];
    else (owner.births as Birth<L>[]).push(birth);
    if (birth.olderClaim !== null) birth.olderClaim.newerClaim = birth;
    this.#byClaim.set(claimedPid, birth);
    (options.kind === 'clone3' ? this.#clone3Births : this.#forkBirths).push(birth);
    this.#due(birth.expiresAtMs);
    this.#openBirths++;
    while (this.#openBirths > this.#maxBirths) {
      const oldest = this.#oldestOpenBirth();
      if (oldest === undefined) break;
      this.#closeBirth(oldest);
      this.#birthsEvicted++;
    }
  }

  /**
   * Ends a process: its exit_group, or (`reported`) an exit reported by a
   * live source or proved by the stream (its pid given to another process).
   * A reported end may come before the process's own last records, which
   * are then taken as late records of it, not a new process (see
   * observeEntry).
   */
  exit(entry: ProcessEntry<L>, options: { reported?: boolean } = {}): void {
    if (!entry.alive) return;
    if (options.reported === true) entry.reported = true;
    this.#end(entry, entry);
    this.#dead.push(entry);
    this.#due(entry.diedAtMs + this.#deadTtl);
  }

  /**
   * Gives a live process the label it had all along (a restore from a
   * checkpoint): not a relabel, so nothing records a label before it.
   */
  restoreLabel(entry: ProcessEntry<L>, label: L): void {
    if (entry.label === label) return;
    if (!entry.alive) {
      // It exited before the restore (its events may still be held): no hold on the label.
      entry.label = label;
      entry.provisional = false;
      return;
    }
    this.#hooks.retain(label);
    const old = entry.label;
    this.#setLabel(entry, label);
    entry.provisional = false;
    entry.history = null;
    if (old !== null) this.#hooks.release(old, entry);
  }

  /** Replaces a live process's label, keeping the holder counts right. */
  relabel(entry: ProcessEntry<L>, label: L | null): void {
    if (!entry.alive || entry.label === label) return;
    if (label !== null) this.#hooks.retain(label);
    const old = entry.label;
    this.#setLabel(entry, label);
    // Evidence: the label is no longer provisional. Its pending children
    // (forked before this) still wait for the label it had then.
    entry.provisional = false;
    (entry.history ??= []).push({ tick: ++this.#tick, before: old });
    if (old !== null) this.#hooks.release(old, entry);
  }

  /** True when the process has children, seen or only recorded by their creation syscall. */
  hasChildren(entry: ProcessEntry<L>): boolean {
    return entry.children > 0 || entry.births.length > 0;
  }

  /** True when `entry` descends (strictly) from `ancestor`, by creation links. */
  isDescendant(entry: ProcessEntry<L>, ancestor: ProcessEntry<L>): boolean {
    for (let p = entry.parent; p !== null; p = p.parent) {
      if (p === ancestor) return true;
    }
    return false;
  }

  /**
   * The process's pid namespace: its own evidence, else its creator's (for
   * a child made without CLONE_NEWPID by fork, vfork or clone), else
   * 'unknown'. Evidence: the seeder; CLONE_NEWPID ('nested', inherited by
   * every descendant); `exit=` values below MIN_NAMED_PID ('nested');
   * HOST_VOTES births confirmed by the child's own record with pid ==
   * `exit=` ('host'); NESTED_VOTES children that matched none of the
   * caller's open births ('nested', which always wins over 'host' votes).
   */
  pidNamespace(entry: ProcessEntry<L>): PidNamespace {
    let p = entry;
    while (p.pidns === 'unknown' && p.nsFrom !== null) p = p.nsFrom;
    const ns = p.pidns;
    if (p !== entry && ns !== 'unknown') {
      // Cache it (and let go of the chain): 'nested' is inherited for good.
      entry.pidns = ns;
      entry.pidnsFixed = ns === 'nested';
      entry.nsFrom = null;
    }
    return ns;
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
      births: this.#openBirths,
      birthsMatched: this.#birthsMatched,
      birthsExpired: this.#birthsExpired,
      birthsEvicted: this.#birthsEvicted,
    };
  }

  #create(pid: number, ppid: number, nspid: number): ProcessEntry<L> {
    const orphan = this.#orphanBirth(pid, ppid);
    if (orphan !== undefined) return this.#createFromOrphanBirth(pid, ppid, orphan);
    let parent = this.#byPid.get(ppid);
    if (parent === undefined && ppid !== pid) parent = this.#placeParent(ppid);
    // Processes already seen with this pid as their ppid: this one existed
    // before the first of them was seen.
    const placeholder = this.#placeholders.get(pid);
    let label: L | null = null;
    let birth: Birth<L> | undefined;
    if (parent !== undefined && parent.pid !== pid) {
      birth = this.#takeBirth(parent, pid, nspid);
      if (birth !== undefined) {
        label = birth.label; // the birth's hold passes to the process
        this.#birthsMatched++;
      } else {
        // The parent's label when this process is known to have existed
        // already, not a relabel that came after (see #labelAt).
        label = placeholder === undefined ? parent.label : this.#labelAt(parent, placeholder.tick);
        if (label !== null) this.#hooks.retain(label);
      }
    }
    const e = this.#newEntry(pid, ppid, label, null, birth === undefined ? 'ppid' : 'birth');
    e.confirmed = birth !== undefined;
    if (birth !== undefined) this.#inheritNs(e, birth.caller, birth.childNs);
    if (parent !== undefined && parent.pid !== pid) {
      this.#link(e, parent);
      this.#inheritProvisional(e, parent, birth);
    } else if (ppid !== pid) {
      this.#wait(e, ppid);
    }
    this.#settle(e, birth);
    this.#enforceBound(e);
    return e;
  }

  /** The label `entry` had at `tick`: before the first relabel after it. */
  #labelAt(entry: ProcessEntry<L>, tick: number): L | null {
    for (const h of entry.history ?? []) if (h.tick > tick) return h.before;
    return entry.label;
  }

  /**
   * A new, unset child of a provisional creator is provisional too: it
   * waits on the creator (its `pending` list). `birth`, when the child
   * bound one, says whether the creator was provisional at the fork.
   */
  #inheritProvisional(e: ProcessEntry<L>, parent: ProcessEntry<L>, birth: Birth<L> | undefined): void {
    if (e.label !== null) return;
    const from = birth === undefined ? parent : birth.provisional ? birth.caller : null;
    if (from === null || !from.provisional) return;
    e.provisional = true;
    (from.pending ??= []).push(e);
  }

  /** A new process whose ppid the table does not know: provisional, waiting for that pid's first record. */
  #wait(e: ProcessEntry<L>, ppid: number): void {
    if (ppid < MIN_NAMED_PID || this.#maxBirths === 0) return;
    let ph = this.#placeholders.get(ppid);
    if (ph === undefined) {
      if (this.#placeholders.size >= this.#maxBirths) {
        const oldest = this.#placeholders.keys().next();
        if (oldest.done !== true) this.#dropPlaceholder(oldest.value);
      }
      ph = {
        pid: ppid,
        tick: ++this.#tick,
        birthSeq: this.#birthSeq,
        atMs: this.#eventMs,
        expiresAtMs: this.#nowMs + this.#birthTtl,
        waiting: [],
      };
      this.#placeholders.set(ppid, ph);
      if (ph.expiresAtMs < this.#placeholdersDueMs) this.#placeholdersDueMs = ph.expiresAtMs;
      this.#due(ph.expiresAtMs);
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
    if (ph.waiting.length === 0 && this.#asks) this.#questions.push(ppid);
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
  #settle(e: ProcessEntry<L>, birth: Birth<L> | undefined): void {
    const ph = this.#placeholders.get(e.pid);
    if (ph === undefined) return;
    this.settlements++;
    if (birth !== undefined && birth.atMs > ph.atMs) {
      this.#dropPlaceholder(e.pid);
      return;
    }
    this.#placeholders.delete(e.pid);
    for (const c of ph.waiting) {
      if (c.parent !== null || c.ppid !== e.pid) continue;
      if (c.mapped && c !== e) this.#link(c, e);
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
  #resolve(root: ProcessEntry<L>, label: L | null): void {
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
        stack.push(...c.pending);
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
    const ph = this.#placeholders.get(pid);
    if (ph === undefined) return;
    this.#placeholders.delete(pid);
    this.settlements++;
    for (const c of ph.waiting) {
      if (c.parent === null && c.ppid === pid) this.#resolve(c, this.#unknown);
    }
  }

  /**
   * The pids that processes started waiting for (never-seen parents) since
   * the last call, oldest first. A live daemon looks each one up in /proc
   * and writes what it found into the stream (see Labeller).
   */
  takeQuestions(): number[] {
    const out = this.#questions;
    if (out.length > 0) this.#questions = [];
    return out;
  }

  /** True when an open birth names `pid` as its `exit=` (a child not seen yet). */
  isClaimed(pid: number): boolean {
    return this.#byClaim.get(pid) !== undefined;
  }

  /** The live processes, least recently seen first (for a reconciliation against /proc). */
  *liveEntries(): Generator<ProcessEntry<L>> {
    for (const group of [...this.#groups.values()]) {
      for (let e = group.head; e !== null;) {
        const next = e.lruNext; // the caller may end `e`
        yield e;
        e = next;
      }
    }
  }

  /** True while processes wait, provisional, for never-seen `pid`. */
  isWaitedFor(pid: number): boolean {
    return this.#placeholders.has(pid);
  }

  /**
   * A live source reports that never-seen `pid` is gone: nothing more will
   * be learnt of it, and the processes waiting for it take the unknown label.
   */
  waitEnded(pid: number): void {
    if (this.#byPid.get(pid)?.alive !== true) this.#dropPlaceholder(pid);
  }

  #expirePlaceholders(): void {
    if (this.#nowMs < this.#placeholdersDueMs) return;
    this.#placeholdersDueMs = Number.POSITIVE_INFINITY;
    for (const ph of this.#placeholders.values()) {
      if (ph.expiresAtMs > this.#nowMs) {
        this.#placeholdersDueMs = ph.expiresAtMs;
        break;
      }
      this.#dropPlaceholder(ph.pid);
    }
  }

  /**
   * An open birth that names `pid` as an orphan: its caller is 'host' (so
   * `exit=` is the child's host pid), its owner has exited (the only way
   * the child's ppid can differ from it), and `ppid` is where the kernel
   * reparents orphans of a host process: init (1) or a live ancestor (a
   * subreaper). The newest such birth: an older one would have to be a pid
   * freed and reused since.
   */
  #orphanBirth(pid: number, ppid: number): Birth<L> | undefined {
    if (pid < MIN_NAMED_PID) return undefined;
    for (let b = this.#byClaim.get(pid) ?? null; b !== null; b = b.olderClaim) {
      if (b.kind !== 'fork' || b.parent.alive || b.parent.pid === ppid) continue;
      if (ppid !== 1 && this.#liveAncestor(b.parent, ppid) === null) continue;
      if (this.pidNamespace(b.caller) === 'host') return b;
    }
    return undefined;
  }

  #createFromOrphanBirth(pid: number, ppid: number, birth: Birth<L>): ProcessEntry<L> {
    this.#detachBirth(birth);
    this.#birthsMatched++;
    const reaper =
      ppid === 1
        ? this.#byPid.get(1)?.alive === true
          ? this.#byPid.get(1)!
          : null
        : this.#liveAncestor(birth.parent, ppid);
    const e = this.#newEntry(pid, ppid, birth.label, null, 'birth');
    e.confirmed = true;
    this.#inheritNs(e, birth.caller, birth.childNs);
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
  #placeParent(ppid: number): ProcessEntry<L> | undefined {
    if (ppid < MIN_NAMED_PID) return undefined;
    let birth: Birth<L> | undefined;
    for (let b = this.#byClaim.get(ppid) ?? null; b !== null && birth === undefined; b = b.olderClaim) {
      if (b.kind === 'fork' && this.pidNamespace(b.caller) === 'host') birth = b;
    }
    if (birth === undefined) return undefined;
    this.#detachBirth(birth);
    this.#birthsMatched++;
    const e = this.#newEntry(ppid, birth.parent.pid, birth.label, null, 'birth');
    e.confirmed = true;
    this.#inheritNs(e, birth.caller, birth.childNs);
    this.#link(e, birth.parent);
    this.#inheritProvisional(e, birth.parent, birth);
    this.#settle(e, birth);
    this.#enforceBound(e);
    return e;
  }

  /** The live ancestor of `entry` (strict) with this pid, or null. */
  #liveAncestor(entry: ProcessEntry<L>, pid: number): ProcessEntry<L> | null {
    for (let p = entry.parent; p !== null; p = p.parent) {
      if (p.pid === pid) return p.alive ? p : null;
    }
    return null;
  }

  /** Sets a new child's pid-namespace link from the birth that made it. */
  #inheritNs(child: ProcessEntry<L>, caller: ProcessEntry<L>, childNs: Birth<L>['childNs']): void {
    if (child.pidnsFixed) return;
    if (childNs === 'nested') {
      child.pidns = 'nested';
      child.pidnsFixed = true;
      child.nsFrom = null;
    } else if (childNs === 'inherit' && child.pidns === 'unknown' && caller !== child) {
      child.nsFrom = caller;
    }
  }

  /** Evidence that `caller` is in a pid namespace (never taken back). */
  #markNested(caller: ProcessEntry<L>): void {
    if (caller.pidnsFixed) return;
    caller.pidns = 'nested';
    caller.pidnsFixed = true;
    caller.nsFrom = null;
  }

  /** A birth of `caller` confirmed by the child's own record with pid == `exit=`. */
  #voteHost(caller: ProcessEntry<L>, pid: number): void {
    if (pid < MIN_NAMED_PID || caller.pidnsFixed) return;
    if (++caller.hostVotes >= HOST_VOTES && caller.pidns === 'unknown') {
      caller.pidns = 'host';
      caller.nsFrom = null;
    }
  }

  #newEntry(
    pid: number,
    ppid: number,
    label: L | null,
    parent: ProcessEntry<L> | null,
    origin: ProcessEntry<L>['origin'],
  ): ProcessEntry<L> {
    const e: ProcessEntry<L> = {
      pid,
      generation: ++this.#generation,
      ppid,
      parent,
      label,
      comm: null,
      exe: null,
      startTime: null,
      alive: true,
      origin,
      confirmed: false,
      children: 0,
      holds: 0,
      births: NO_BIRTHS,
      grant: null,
      pidns: 'unknown',
      pidnsFixed: false,
      nsFrom: null,
      hostVotes: 0,
      nestedVotes: 0,
      provisional: false,
      pending: null,
      history: null,
      seenAtMs: this.#eventMs,
      diedAtMs: 0,
      reported: false,
      mapped: true,
      lruPrev: null,
      lruNext: null,
    };
    this.#byPid.set(pid, e);
    this.#live++;
    this.#lruAppend(e);
    return e;
  }

  #link(child: ProcessEntry<L>, parent: ProcessEntry<L>): void {
    child.parent = parent;
    parent.holds++;
    if (child.alive && parent.alive) parent.children++;
  }

  #unlink(child: ProcessEntry<L>): void {
    const parent = child.parent;
    if (parent === null) return;
    child.parent = null;
    if (child.alive && parent.alive) parent.children--;
    parent.holds--;
    this.#maybeRelease(parent);
  }

  /**
   * The open birth of `parent` for child `pid`: exact `exit=` match first
   * (or the child's pid in its parent's namespace, `nspid`, when a live
   * source read it from /proc), else the oldest whose caller is not known to
   * be 'host' (a 'host' caller's `exit=` is the child's pid, so its other
   * births belong to other children; this child's own fork record may still
   * come).
   *
   * A CLONE_PARENT birth (recorded by a child of `parent`, with that child's
   * label) binds only by exact evidence: `exit=` equal to the pid and its
   * caller in the initial pid namespace. Otherwise a process in a container
   * whose parent is a host process could plant its label on the host
   * parent's next child (a vfork'd runc whose exec is recorded before the
   * vfork).
   */
  #takeBirth(parent: ProcessEntry<L>, pid: number, nspid: number): Birth<L> | undefined {
    const births = parent.births;
    if (births.length === 0) return undefined;
    // Loops rather than findIndex/find with closures: this runs for every
    // new process, and each closure would be an allocation.
    let i = -1;
    for (let k = 0; k < births.length && i < 0; k++) {
      const b = births[k]!;
      if (b.claimedPid !== pid) continue;
      if (b.caller === parent || this.pidNamespace(b.caller) === 'host') {
        i = k;
      } else {
        // A CLONE_PARENT birth naming this pid by a caller whose pid
        // namespace is not known: the child may be that caller's (a
        // container's process), or the parent's own whose pid matches by
        // chance. Neither label can be claimed: the child's is unknown.
        this.#detachBirth(b);
        if (b.label !== null) this.#hooks.release(b.label, b.parent);
        this.#doubtful = true;
        return undefined;
      }
    }
    if (i >= 0) {
      this.#voteHost(births[i]!.caller, pid);
    } else if (nspid > 0) {
      for (let k = 0; k < births.length && i < 0; k++) {
        const b = births[k]!;
        if (b.claimedPid === nspid && b.caller === parent) i = k;
      }
      // /proc named the pid in the parent's namespace: exact evidence. A
      // parent with no birth of it is the reaper of an orphan (the process's
      // creator exited and the kernel reparented it); never another birth.
      if (i < 0) return this.#orphanInNamespace(parent, nspid);
    }
    if (i < 0) {
      // A child that matches no open fork birth of its parent: evidence
      // that the caller's `exit=` values are namespace-relative, unless
      // this child's own fork record comes later (a vfork race; it then
      // takes the vote back, see recordBirth).
      let other: Birth<L> | undefined;
      for (let k = 0; k < births.length && other === undefined; k++) {
        const b = births[k]!;
        if (b.kind === 'fork' && b.caller === parent) other = b;
      }
      if (other !== undefined && nspid === 0 && ++other.caller.nestedVotes >= NESTED_VOTES)
        this.#markNested(other.caller);
      for (let k = 0; k < births.length && i < 0; k++) {
        const b = births[k]!;
        if (b.caller === parent && this.pidNamespace(b.caller) !== 'host') i = k;
      }
      if (i < 0) return undefined;
    }
    const birth = births[i]!;
    this.#detachBirth(birth);
    return birth;
  }

  /**
   * The open birth of an orphan that `reaper` adopted, by the orphan's pid
   * in the reaper's (non-initial) pid namespace: made by a process that
   * descends from the reaper, the newest such. Taken out of the indexes.
   */
  #orphanInNamespace(reaper: ProcessEntry<L>, nspid: number): Birth<L> | undefined {
    for (let b = this.#byClaim.get(nspid) ?? null; b !== null; b = b.olderClaim) {
      if (b.kind !== 'fork' || b.parent === reaper || !this.isDescendant(b.parent, reaper)) continue;
      if (this.pidNamespace(b.caller) === 'host') continue;
      this.#detachBirth(b);
      return b;
    }
    return undefined;
  }

  /** Takes an open birth out of every index (its label hold passes to the caller of this). */
  #detachBirth(birth: Birth<L>): void {
    birth.open = false;
    this.#openBirths--;
    const list = birth.parent.births;
    const i = list.indexOf(birth);
    if (i >= 0) removeAt(list as Birth<L>[], i);
    const { olderClaim: older, newerClaim: newer } = birth;
    if (older !== null) older.newerClaim = newer;
    if (newer !== null) newer.olderClaim = older;
    else if (older !== null) this.#byClaim.set(birth.claimedPid, older);
    else this.#byClaim.delete(birth.claimedPid);
    birth.olderClaim = birth.newerClaim = null;
  }

  #reparent(entry: ProcessEntry<L>, ppid: number): boolean {
    let target: ProcessEntry<L> | null = null;
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

  #end(entry: ProcessEntry<L>, by: ProcessEntry<L> | null): void {
    const parent = entry.parent;
    if (parent !== null && parent.alive) parent.children--;
    entry.alive = false;
    entry.diedAtMs = this.#nowMs;
    this.#live--;
    this.#lruRemove(entry);
    // A 'host' caller's births stay open (until they expire) after it ends:
    // the child may be seen first as an orphan (ppid=1 or a subreaper).
    // (A copy: closing a birth takes it out of the list. Most processes have none.)
    if (entry.births.length > 0)
      for (const b of entry.births.slice()) {
        if (!this.#mayNameOrphan(b)) this.#closeBirth(b);
      }
    if (entry.label !== null) this.#hooks.release(entry.label, by ?? entry);
  }

  #mayNameOrphan(birth: Birth<L>): boolean {
    return (
      birth.kind === 'fork' && birth.claimedPid >= MIN_NAMED_PID && this.pidNamespace(birth.caller) === 'host'
    );
  }

  /** Takes an entry out of the pid map; it lives on only while children hold it. */
  #unmap(entry: ProcessEntry<L>): void {
    if (!entry.mapped) return;
    entry.mapped = false;
    this.pidNamespace(entry); // resolve (and drop the chain) while the chain is still there
    if (this.#byPid.get(entry.pid) === entry) this.#byPid.delete(entry.pid);
    if (entry.holds > 0) {
      this.#retainedUnmapped++;
    } else {
      this.#expired++;
      this.#unlink(entry);
    }
  }

  /** Lets go of an exited, unmapped entry once nothing points at it. */
  #maybeRelease(entry: ProcessEntry<L>): void {
    if (entry.alive || entry.mapped || entry.holds > 0) return;
    this.#retainedUnmapped--;
    this.#expired++;
    this.#unlink(entry);
  }

  /** Changes an entry's label, moving a live one to its new group. */
  #setLabel(entry: ProcessEntry<L>, label: L | null): void {
    if (entry.label === label) return;
    const listed = this.#groups.get(entry.label)?.has(entry) === true;
    if (listed) this.#lruRemove(entry);
    entry.label = label;
    if (listed) this.#lruAppend(entry);
  }

  #touch(entry: ProcessEntry<L>): void {
    const group = this.#groups.get(entry.label);
    if (group === undefined || group.tail === entry) return;
    this.#lruRemove(entry);
    this.#lruAppend(entry);
  }

  #lruAppend(entry: ProcessEntry<L>): void {
    let group = this.#groups.get(entry.label);
    if (group === undefined) this.#groups.set(entry.label, (group = new LruGroup<L>()));
    group.append(entry);
  }

  #lruRemove(entry: ProcessEntry<L>): void {
    const group = this.#groups.get(entry.label);
    if (group === undefined || !group.has(entry)) return;
    group.remove(entry);
    if (group.count === 0) this.#groups.delete(entry.label);
  }

  /** The least recently seen live entry of the largest label group, other than `keep`. */
  #evictionVictim(keep: ProcessEntry<L> | null): ProcessEntry<L> | null {
    let best: LruGroup<L> | null = null;
    for (const g of this.#groups.values()) {
      if (g.count === 1 && g.head === keep) continue;
      if (best === null || g.count > best.count) best = g;
    }
    if (best === null) return null;
    return best.head === keep ? (best.head?.lruNext ?? null) : best.head;
  }

  /** The oldest exited entry still in the pid map. */
  #oldestDead(): ProcessEntry<L> | undefined {
    // Passed slots are cleared, so that they hold no entry (and its parents) past its time.
    while (this.#deadHead < this.#dead.length && !this.#dead[this.#deadHead]!.mapped)
      this.#dead[this.#deadHead++] = undefined;
    if (this.#deadHead > 1024 && this.#deadHead * 2 > this.#dead.length) {
      this.#dead = this.#dead.slice(this.#deadHead);
      this.#deadHead = 0;
    }
    return this.#dead[this.#deadHead];
  }

  #enforceBound(keep: ProcessEntry<L> | null): void {
    while (this.#byPid.size + this.#retainedUnmapped > this.#max) {
      const dead = this.#oldestDead();
      if (dead !== undefined) {
        this.#unmap(dead);
        continue;
      }
      const victim = this.#evictionVictim(keep);
      if (victim === null) break;
      this.#evicted++;
      this.#end(victim, victim);
      this.#unmap(victim);
    }
  }

  #closeBirth(birth: Birth<L>): void {
    if (!birth.open) return;
    this.#detachBirth(birth);
    if (birth.label !== null) this.#hooks.release(birth.label, birth.parent);
  }

  #oldestOpenBirth(): Birth<L> | undefined {
    const a = this.#forkBirths.peek();
    const b = this.#clone3Births.peek();
    if (a === undefined) return b;
    if (b === undefined) return a;
    return a.seq < b.seq ? a : b;
  }

  #expireBirths(): void {
    // Each queue by name, not a loop over an array of them: this runs for every event.
    this.#expireQueue(this.#forkBirths);
    this.#expireQueue(this.#clone3Births);
  }

  #expireQueue(queue: BirthQueue<L>): void {
    for (let b = queue.peek(); b !== undefined && b.expiresAtMs <= this.#nowMs; b = queue.peek()) {
      this.#closeBirth(b);
      this.#birthsExpired++;
    }
  }

  #expireDead(): void {
    for (
      let e = this.#oldestDead();
      e !== undefined && e.diedAtMs + this.#deadTtl <= this.#nowMs;
      e = this.#oldestDead()
    ) {
      this.#unmap(e);
    }
  }
}

/**
 * Removes `list[i]`, keeping the order. Unlike splice it allocates no array
 * of the removed element: this runs for every birth matched to its child.
 */
function removeAt(list: unknown[], i: number): void {
  for (let k = i + 1; k < list.length; k++) list[k - 1] = list[k];
  list.length--;
}

/** The live entries of one label, least recently seen first (intrusive, through lruPrev/lruNext). */
class LruGroup<L> {
  head: ProcessEntry<L> | null = null;
  tail: ProcessEntry<L> | null = null;
  count = 0;

  has(entry: ProcessEntry<L>): boolean {
    return entry.lruPrev !== null || this.head === entry;
  }

  append(entry: ProcessEntry<L>): void {
    entry.lruPrev = this.tail;
    entry.lruNext = null;
    if (this.tail === null) this.head = entry;
    else this.tail.lruNext = entry;
    this.tail = entry;
    this.count++;
  }

  remove(entry: ProcessEntry<L>): void {
    const { lruPrev: prev, lruNext: next } = entry;
    if (prev === null) this.head = next;
    else prev.lruNext = next;
    if (next === null) this.tail = prev;
    else next.lruPrev = prev;
    entry.lruPrev = null;
    entry.lruNext = null;
    this.count--;
  }
}

/** A FIFO of births that skips the ones closed out of order (matched or ended with their parent). */
class BirthQueue<L> {
  #items: (Birth<L> | undefined)[] = [];
  #head = 0;
  readonly #limit: number;

  /** At most `2 * max + 1024` slots: closed births are squeezed out when that is reached. */
  constructor(max: number) {
    this.#limit = 2 * max + 1024;
  }

  push(birth: Birth<L>): void {
    if (this.#items.length >= this.#limit) {
      this.#items = this.#items.slice(this.#head).filter((b) => b?.open === true);
      this.#head = 0;
    }
    this.#items.push(birth);
  }

  /** The oldest open birth, or undefined. */
  peek(): Birth<L> | undefined {
    while (this.#head < this.#items.length && !this.#items[this.#head]!.open)
      this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return this.#items[this.#head];
  }
}
