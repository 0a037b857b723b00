/**
 * Births: child creations seen in the caller's fork/vfork/clone/clone3
 * record, waiting for the child's own records, and the indexes that find
 * the birth a new process binds.
 *
 * A birth fixes the child's label at its place in the stream (the caller's
 * label then) and counts as a child of its parent (the "no children" rule,
 * EBUSY) until it is bound or expires. It is kept on its parent's entry
 * (`births`, in creation order) and by its `exit=` value (`#byClaim`).
 *
 * Binding. `exit=` is the child's pid in the *caller's* pid namespace, so
 * a birth is bound to a process when that process's own record names the
 * caller as `ppid=` (a host pid, stamped by the kernel): the birth whose
 * `exit=` equals the child's pid, else (unless the caller is known to be
 * 'host') the oldest; both are children of the same caller, so the choice
 * never crosses to another process's lineage. Only a 'host' caller's
 * `exit=` (and only a value ≥ MIN_NAMED_PID) may also name a process
 * outright: an orphan whose creator exited before it was first seen, or a
 * parent never seen itself. See docs/labels.md.
 *
 * Labels are opaque here as in the table: a birth holds its label through
 * the table's LabelHooks, from when it is recorded until it is closed or
 * its hold passes to the child that binds it.
 */

import { EventKeyMap } from '../assemble/event-key-map.js';
import { ExpiryQueue } from './expiry.js';
import { isDescendant, liveAncestor, NO_BIRTHS, type LabelHooks, type TableEntry } from './process-entry.js';
import { MIN_NAMED_PID, pidNamespaceOf, voteHost, voteNested, type ChildNamespace } from './pid-namespace.js';

/** fork, vfork and clone are 'fork'; clone3, which also makes threads, expires sooner. */
export type BirthKind = 'fork' | 'clone3';

/** A child creation seen in its parent's clone/fork record, waiting for the child's own records. */
export interface Birth<L> {
  /** Creation order, table-wide. */
  readonly seq: number;
  readonly parent: TableEntry<L>;
  /**
   * The process that made the syscall: `parent` itself, or its child for
   * CLONE_PARENT. `exit=` is relative to its pid namespace.
   */
  readonly caller: TableEntry<L>;
  /** The `exit=` value: a host pid, or a pid in the caller's namespace. */
  readonly claimedPid: number;
  /** The caller's label at the fork (filled in later if the caller was provisional then). */
  label: L | null;
  /** True while `label` is unset only because the caller was provisional at the fork. */
  provisional: boolean;
  readonly kind: BirthKind;
  readonly childNs: ChildNamespace;
  /** The stream time of the event that recorded it. */
  readonly atMs: number;
  readonly expiresAtMs: number;
  open: boolean;
  /** The open births with the same `exit=` value, older and newer (see Births' #byClaim). */
  olderClaim: Birth<L> | null;
  newerClaim: Birth<L> | null;
}

export interface BirthsOptions<L> {
  /** Bound on open births. */
  readonly max: number;
  /** Stream time after which an unmatched fork/vfork/clone birth expires. */
  readonly ttlMs: number;
  /** Same for clone3. */
  readonly clone3TtlMs: number;
  readonly hooks: LabelHooks<L>;
}

/** What a new birth is: recorded by `caller` (see Births.record). */
export interface BirthRecord<L> {
  /** Its parent: the caller, or the caller's parent for CLONE_PARENT. */
  readonly owner: TableEntry<L>;
  readonly claimedPid: number;
  readonly kind: BirthKind;
  readonly childNs: ChildNamespace;
  /** Stream time of the event that recorded it, and the newest stream time (expiry counts from it). */
  readonly atMs: number;
  readonly nowMs: number;
}

/** The open births of a table, indexed by parent and by `exit=`, bounded, expiring by kind. */
export class Births<L> {
  readonly #max: number;
  readonly #ttl: number;
  readonly #clone3Ttl: number;
  readonly #hooks: LabelHooks<L>;
  /** By kind in creation order; each kind has one TTL, so each queue expires from its head. */
  readonly #forkQueue: ExpiryQueue<Birth<L>>;
  readonly #clone3Queue: ExpiryQueue<Birth<L>>;
  /**
   * The newest open birth of each `exit=` value, for the bindings that use
   * a 'host' caller's `exit=` as a pid; older ones with the same value
   * follow from it (`olderClaim`). Links, not a list per value: a birth is
   * added and taken out for nearly every process.
   */
  readonly #byClaim = new EventKeyMap<Birth<L>>();
  #open = 0;
  #seq = 0;
  #matched = 0;
  #expired = 0;
  #evicted = 0;
  /** Set by take() when the child's label cannot be known (see there); the table clears it. */
  doubtful = false;
  /**
   * Set by take(): the birth it returned was one of the parent's open
   * births taken without a pid match (a caller in a pid namespace).
   */
  inexact = false;

  constructor(options: BirthsOptions<L>) {
    this.#max = options.max;
    this.#ttl = options.ttlMs;
    this.#clone3Ttl = options.clone3TtlMs;
    this.#hooks = options.hooks;
    const isOpen = (b: Birth<L>): boolean => b.open;
    // At most `2 * max + 1024` slots: births closed out of order are squeezed out when that is reached.
    this.#forkQueue = new ExpiryQueue(isOpen, 2 * this.#max + 1024);
    this.#clone3Queue = new ExpiryQueue(isOpen, 2 * this.#max + 1024);
  }

  /** Open births. */
  get open(): number {
    return this.#open;
  }

  /** The sequence number of the last birth recorded (0: none yet). */
  get lastSeq(): number {
    return this.#seq;
  }

  get matched(): number {
    return this.#matched;
  }

  get expired(): number {
    return this.#expired;
  }

  /** Births dropped because the bound was reached. */
  get evicted(): number {
    return this.#evicted;
  }

  /**
   * Records a birth by `caller` with the caller's label now (held from
   * here), unless the bound is 0. The oldest births give way past the
   * bound. Returns it, or null when none was kept.
   */
  record(caller: TableEntry<L>, r: BirthRecord<L>): Birth<L> | null {
    if (this.#max === 0) return null;
    const ttl = r.kind === 'clone3' ? this.#clone3Ttl : this.#ttl;
    const { owner, claimedPid } = r;
    const birth: Birth<L> = {
      seq: ++this.#seq,
      parent: owner,
      caller,
      claimedPid,
      label: caller.label,
      provisional: caller.provisional,
      kind: r.kind,
      childNs: r.childNs,
      atMs: r.atMs,
      expiresAtMs: r.nowMs + ttl,
      open: true,
      olderClaim: this.#byClaim.get(claimedPid) ?? null,
      newerClaim: null,
    };
    if (birth.label !== null) this.#hooks.retain(birth.label);
    if (owner.births === NO_BIRTHS) owner.births = [birth];
    else (owner.births as Birth<L>[]).push(birth);
    if (birth.olderClaim !== null) birth.olderClaim.newerClaim = birth;
    this.#byClaim.set(claimedPid, birth);
    (r.kind === 'clone3' ? this.#clone3Queue : this.#forkQueue).push(birth);
    this.#open++;
    while (this.#open > this.#max) {
      const oldest = this.#oldest();
      if (oldest === undefined) break;
      this.close(oldest);
      this.#evicted++;
    }
    return birth;
  }

  /** True when an open birth names `pid` as its `exit=` (a child not seen yet). */
  isClaimed(pid: number): boolean {
    return this.#byClaim.get(pid) !== undefined;
  }

  /**
   * Closes the open births of 'host' callers that name `pid` as their
   * `exit=` (and were recorded at or before stream time `notAfterMs`, when
   * given): the process they made has gone (its pid was given to another
   * process, or a live source saw it exit), and they must not bind the next one.
   */
  closeClaims(pid: number, notAfterMs?: number): void {
    for (let b = this.#byClaim.get(pid) ?? null; b !== null;) {
      const older = b.olderClaim;
      if ((notAfterMs === undefined || b.atMs <= notAfterMs) && pidNamespaceOf(b.caller) === 'host')
        this.close(b);
      b = older;
    }
  }

  /**
   * The open birth of `parent` for child `pid`, taken out of the indexes
   * (its label hold passes to the caller of this): exact `exit=` match
   * first (or the child's pid in its parent's namespace, `nspid`, when a
   * live source read it from /proc), else the oldest whose caller is not
   * known to be 'host' (a 'host' caller's `exit=` is the child's pid, so its
   * other births belong to other children; this child's own fork record may
   * still come).
   *
   * A CLONE_PARENT birth (recorded by a child of `parent`, with that child's
   * label) binds only by exact evidence: `exit=` equal to the pid and its
   * caller in the initial pid namespace. Otherwise a process in a container
   * whose parent is a host process could plant its label on the host
   * parent's next child (a vfork'd runc whose exec is recorded before the
   * vfork).
   */
  take(parent: TableEntry<L>, pid: number, nspid: number): Birth<L> | undefined {
    this.inexact = false;
    const births = parent.births;
    if (births.length === 0) return undefined;
    // Loops rather than findIndex/find with closures: this runs for every
    // new process, and each closure would be an allocation.
    let i = -1;
    for (let k = 0; k < births.length && i < 0; k++) {
      const b = births[k]!;
      if (b.claimedPid !== pid) continue;
      if (b.caller === parent || pidNamespaceOf(b.caller) === 'host') {
        i = k;
      } else {
        // A CLONE_PARENT birth naming this pid by a caller whose pid
        // namespace is not known: the child may be that caller's (a
        // container's process), or the parent's own whose pid matches by
        // chance. Neither label can be claimed: the child's is unknown.
        this.close(b);
        this.doubtful = true;
        return undefined;
      }
    }
    if (i >= 0) {
      voteHost(births[i]!.caller, pid);
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
      // takes the vote back, see ProcessTable.recordBirth).
      let other: Birth<L> | undefined;
      for (let k = 0; k < births.length && other === undefined; k++) {
        const b = births[k]!;
        if (b.kind === 'fork' && b.caller === parent) other = b;
      }
      if (other !== undefined && nspid === 0) voteNested(other.caller);
      for (let k = 0; k < births.length && i < 0; k++) {
        const b = births[k]!;
        if (b.caller === parent && pidNamespaceOf(b.caller) !== 'host') i = k;
      }
      if (i < 0) return undefined;
      this.inexact = true;
    }
    const birth = births[i]!;
    this.#detach(birth);
    return birth;
  }

  /**
   * The birth take() would bind for child `pid` of `parent`, without
   * changing anything (no vote, nothing closed), or undefined when the
   * child would bind none.
   */
  peek(parent: TableEntry<L>, pid: number): Birth<L> | undefined {
    for (const b of parent.births) {
      if (b.claimedPid === pid && (b.caller === parent || pidNamespaceOf(b.caller) === 'host')) return b;
    }
    for (const b of parent.births) {
      if (b.caller === parent && pidNamespaceOf(b.caller) !== 'host') return b;
    }
    return undefined;
  }

  /**
   * The open birth of an orphan that `reaper` adopted, by the orphan's pid
   * in the reaper's (non-initial) pid namespace: made by a process that
   * descends from the reaper, the newest such. Taken out of the indexes.
   */
  #orphanInNamespace(reaper: TableEntry<L>, nspid: number): Birth<L> | undefined {
    for (let b = this.#byClaim.get(nspid) ?? null; b !== null; b = b.olderClaim) {
      if (b.kind !== 'fork' || b.parent === reaper || !isDescendant(b.parent, reaper)) continue;
      if (pidNamespaceOf(b.caller) === 'host') continue;
      this.#detach(b);
      return b;
    }
    return undefined;
  }

  /**
   * An open birth that names `pid` as an orphan: its caller is 'host' (so
   * `exit=` is the child's host pid), its owner has exited (the only way
   * the child's ppid can differ from it), and `ppid` is where the kernel
   * reparents orphans of a host process: init (1) or a live ancestor (a
   * subreaper). The newest such birth: an older one would have to be a pid
   * freed and reused since. Left in place: bind() takes it.
   */
  orphan(pid: number, ppid: number): Birth<L> | undefined {
    if (pid < MIN_NAMED_PID) return undefined;
    for (let b = this.#byClaim.get(pid) ?? null; b !== null; b = b.olderClaim) {
      if (b.kind !== 'fork' || b.parent.alive || b.parent.pid === ppid) continue;
      if (ppid !== 1 && liveAncestor(b.parent, ppid) === null) continue;
      if (pidNamespaceOf(b.caller) === 'host') return b;
    }
    return undefined;
  }

  /**
   * The open birth of a 'host' caller whose `exit=` is `ppid`: a process
   * named as `ppid=` but never seen was made by it (a vfork child's exec
   * can be recorded before its parent's own first record). Left in place:
   * bind() takes it.
   */
  ofUnseenParent(ppid: number): Birth<L> | undefined {
    if (ppid < MIN_NAMED_PID) return undefined;
    for (let b = this.#byClaim.get(ppid) ?? null; b !== null; b = b.olderClaim) {
      if (b.kind === 'fork' && pidNamespaceOf(b.caller) === 'host') return b;
    }
    return undefined;
  }

  /** A birth found by orphan() or ofUnseenParent() is bound to the process it made. */
  bind(birth: Birth<L>): void {
    this.#detach(birth);
    this.#matched++;
  }

  /** A birth returned by take() was bound (counted apart: take() may also find none). */
  bound(): void {
    this.#matched++;
  }

  /**
   * `parent` has ended: its births close, but for those that may still
   * name an orphan by pid. A 'host' caller's births stay open (until they
   * expire) after it ends: the child may be seen first as an orphan
   * (ppid=1 or a subreaper).
   */
  parentEnded(parent: TableEntry<L>): void {
    // (A copy: closing a birth takes it out of the list. Most processes have none.)
    if (parent.births.length > 0)
      for (const b of parent.births.slice()) {
        if (!this.#mayNameOrphan(b)) this.close(b);
      }
  }

  #mayNameOrphan(birth: Birth<L>): boolean {
    return (
      birth.kind === 'fork' && birth.claimedPid >= MIN_NAMED_PID && pidNamespaceOf(birth.caller) === 'host'
    );
  }

  /** Closes an open birth, releasing its label. */
  close(birth: Birth<L>): void {
    if (!birth.open) return;
    this.#detach(birth);
    if (birth.label !== null) this.#hooks.release(birth.label, birth.parent);
  }

  /** Closes the births whose time is up at stream time `nowMs`. */
  expire(nowMs: number): void {
    // Each queue by name, not a loop over an array of them: this runs whenever anything is due.
    this.#expireQueue(this.#forkQueue, nowMs);
    this.#expireQueue(this.#clone3Queue, nowMs);
  }

  /** The earlier of `ms` and the next expiry of an open birth. */
  nextExpiry(ms: number): number {
    let due = ms;
    const fork = this.#forkQueue.peek();
    if (fork !== undefined && fork.expiresAtMs < due) due = fork.expiresAtMs;
    const clone3 = this.#clone3Queue.peek();
    if (clone3 !== undefined && clone3.expiresAtMs < due) due = clone3.expiresAtMs;
    return due;
  }

  #expireQueue(queue: ExpiryQueue<Birth<L>>, nowMs: number): void {
    for (let b = queue.peek(); b !== undefined && b.expiresAtMs <= nowMs; b = queue.peek()) {
      this.close(b);
      this.#expired++;
    }
  }

  #oldest(): Birth<L> | undefined {
    const a = this.#forkQueue.peek();
    const b = this.#clone3Queue.peek();
    if (a === undefined) return b;
    if (b === undefined) return a;
    return a.seq < b.seq ? a : b;
  }

  /** Takes an open birth out of every index (its label hold passes to the caller of this). */
  #detach(birth: Birth<L>): void {
    birth.open = false;
    this.#open--;
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
}

/**
 * Removes `list[i]`, keeping the order. Unlike splice it allocates no array
 * of the removed element: this runs for every birth matched to its child.
 */
function removeAt(list: unknown[], i: number): void {
  for (let k = i + 1; k < list.length; k++) list[k - 1] = list[k];
  list.length--;
}
