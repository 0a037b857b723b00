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
 * never used to name a process: inside a pid namespace it is the child's pid
 * in that namespace (`exit=2`), and the record does not say which namespace
 * the caller is in. A birth is bound to a process only when that process's
 * own record names the caller as `ppid=` (a host pid, stamped by the
 * kernel). Among the caller's open births the one whose `exit=` equals the
 * child's pid is preferred, else the oldest; both are children of the same
 * caller, so the choice never crosses to another process's lineage.
 * See docs/labels.md.
 */

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
  /** Open births: children recorded by their creation syscall, not yet seen themselves. */
  births: Birth<L>[];
  /** Delegation (the kernel series' capcontid): may label its own descendants. */
  delegated: boolean;
  /** Stream time of death, for expiry. */
  diedAtMs: number;
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
  /** The `exit=` value: a host pid, or a pid in the caller's namespace. */
  readonly claimedPid: number;
  readonly label: L | null;
  readonly kind: 'fork' | 'clone3';
  readonly expiresAtMs: number;
  open: boolean;
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
  /** Stream time an exited process stays findable by pid (default 60 s). */
  readonly deadTtlMs?: number;
  readonly hooks?: LabelHooks<L>;
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
  readonly #clone3Ttl: number;
  readonly #deadTtl: number;
  readonly #hooks: LabelHooks<L>;
  /** pid → latest incarnation, alive or recently exited. */
  readonly #byPid = new Map<number, ProcessEntry<L>>();
  /** Live entries, least recently seen first (an intrusive list: touching is O(1), no map churn). */
  #lruHead: ProcessEntry<L> | null = null;
  #lruTail: ProcessEntry<L> | null = null;
  /** Exited entries in order of death; ones no longer mapped are skipped lazily. */
  #dead: ProcessEntry<L>[] = [];
  #deadHead = 0;
  /** Births by kind in creation order; each kind has one TTL, so each queue expires from its head. */
  readonly #forkBirths: BirthQueue<L>;
  readonly #clone3Births: BirthQueue<L>;
  #openBirths = 0;
  #birthSeq = 0;
  #generation = 0;
  #live = 0;
  #retainedUnmapped = 0;
  #nowMs = 0;
  #expired = 0;
  #evicted = 0;
  #reused = 0;
  #birthsMatched = 0;
  #birthsExpired = 0;
  #birthsEvicted = 0;

  constructor(options: ProcessTableOptions<L> = {}) {
    this.#max = Math.max(1, options.maxProcesses ?? 1_000_000);
    this.#maxBirths = Math.max(0, options.maxBirths ?? 100_000);
    this.#birthTtl = options.birthTtlMs ?? 60_000;
    this.#clone3Ttl = options.clone3BirthTtlMs ?? 2_000;
    this.#deadTtl = options.deadTtlMs ?? 60_000;
    this.#hooks = options.hooks ?? NO_HOOKS;
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
    if (timeMs > this.#nowMs) this.#nowMs = timeMs;
    this.#expireBirths();
    this.#expireDead();
  }

  /**
   * Loads a /proc snapshot into an empty table: every process alive and
   * unlabelled, parents linked by ppid.
   */
  seed(procs: readonly SeedProcess[]): void {
    if (this.#byPid.size !== 0) throw new Error('Cannot seed a process table that is not empty');
    const created: ProcessEntry<L>[] = [];
    for (const p of procs) {
      if (this.#byPid.has(p.pid)) continue;
      const e = this.#newEntry(p.pid, p.ppid, null, null, 'seed');
      e.confirmed = true;
      e.exe = p.exe ?? null;
      e.comm = p.comm ?? null;
      e.startTime = p.startTime ?? null;
      created.push(e);
    }
    for (const e of created) {
      const parent = this.#byPid.get(e.ppid);
      if (parent !== undefined && parent !== e) this.#link(e, parent);
    }
    this.#enforceBound(null);
  }

  /**
   * Accounts for a record of process `pid` with parent `ppid` (host pids).
   * A pid seen for the first time inherits from its parent at this point; a
   * changed ppid is a reparenting when the new parent is init or an
   * ancestor (the only places the kernel reparents to), otherwise the pid
   * was reused by a new process.
   */
  observe(pid: number, ppid: number): Observation<L> {
    const known = this.#byPid.get(pid);
    if (known !== undefined) {
      if (known.alive) {
        if (known.ppid === ppid || this.#reparent(known, ppid)) {
          this.#touch(known);
          return { entry: known, created: false };
        }
        this.#reused++;
        this.#end(known, null);
      }
      this.#unmap(known);
    }
    return { entry: this.#create(pid, ppid), created: true };
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
    options: { kind: 'fork' | 'clone3'; cloneParent?: boolean },
  ): void {
    const owner = options.cloneParent === true ? caller.parent : caller;
    if (owner === null || !owner.alive) return;
    // The child's own record may have come first (nothing orders them): if
    // an unconfirmed child of this owner has exactly that pid, this record
    // is its creation, not another child.
    const early = this.#byPid.get(claimedPid);
    if (early !== undefined && early.alive && early.parent === owner && !early.confirmed) {
      early.confirmed = true;
      return;
    }
    if (this.#maxBirths === 0) return;
    const ttl = options.kind === 'clone3' ? this.#clone3Ttl : this.#birthTtl;
    const birth: Birth<L> = {
      seq: ++this.#birthSeq,
      parent: owner,
      claimedPid,
      label: caller.label,
      kind: options.kind,
      expiresAtMs: this.#nowMs + ttl,
      open: true,
    };
    if (birth.label !== null) this.#hooks.retain(birth.label);
    owner.births.push(birth);
    (options.kind === 'clone3' ? this.#clone3Births : this.#forkBirths).push(birth);
    this.#openBirths++;
    while (this.#openBirths > this.#maxBirths) {
      const oldest = this.#oldestOpenBirth();
      if (oldest === undefined) break;
      this.#closeBirth(oldest);
      this.#birthsEvicted++;
    }
  }

  /** Ends a process (exit_group, or an exit reported by a live source). */
  exit(entry: ProcessEntry<L>): void {
    if (!entry.alive) return;
    this.#end(entry, entry);
    this.#dead.push(entry);
  }

  /** Replaces a live process's label, keeping the holder counts right. */
  relabel(entry: ProcessEntry<L>, label: L | null): void {
    if (!entry.alive || entry.label === label) return;
    if (label !== null) this.#hooks.retain(label);
    const old = entry.label;
    entry.label = label;
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

  stats(): ProcessTableStats {
    return {
      processes: this.#live,
      retained: this.#byPid.size - this.#live + this.#retainedUnmapped,
      max: this.#max,
      expired: this.#expired,
      evicted: this.#evicted,
      reused: this.#reused,
      births: this.#openBirths,
      birthsMatched: this.#birthsMatched,
      birthsExpired: this.#birthsExpired,
      birthsEvicted: this.#birthsEvicted,
    };
  }

  #create(pid: number, ppid: number): ProcessEntry<L> {
    const parent = this.#byPid.get(ppid);
    let label: L | null = null;
    let origin: 'birth' | 'ppid' = 'ppid';
    if (parent !== undefined && parent.pid !== pid) {
      const birth = this.#takeBirth(parent, pid);
      if (birth !== undefined) {
        label = birth.label; // the birth's hold passes to the process
        origin = 'birth';
        this.#birthsMatched++;
      } else {
        label = parent.label;
        if (label !== null) this.#hooks.retain(label);
      }
    }
    const e = this.#newEntry(pid, ppid, label, null, origin);
    e.confirmed = origin === 'birth';
    if (parent !== undefined && parent.pid !== pid) this.#link(e, parent);
    this.#enforceBound(e);
    return e;
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
      births: [],
      delegated: false,
      diedAtMs: 0,
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

  /** The open birth of `parent` for child `pid`: exact `exit=` match first, else the oldest. */
  #takeBirth(parent: ProcessEntry<L>, pid: number): Birth<L> | undefined {
    const births = parent.births;
    if (births.length === 0) return undefined;
    let i = births.findIndex((b) => b.claimedPid === pid);
    if (i < 0) i = 0;
    const birth = births[i]!;
    births.splice(i, 1);
    birth.open = false;
    this.#openBirths--;
    return birth;
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
    for (const b of entry.births.splice(0)) this.#closeBirth(b);
    if (entry.label !== null) this.#hooks.release(entry.label, by ?? entry);
  }

  /** Takes an entry out of the pid map; it lives on only while children hold it. */
  #unmap(entry: ProcessEntry<L>): void {
    if (!entry.mapped) return;
    entry.mapped = false;
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

  #touch(entry: ProcessEntry<L>): void {
    if (this.#lruTail === entry) return;
    this.#lruRemove(entry);
    this.#lruAppend(entry);
  }

  #lruAppend(entry: ProcessEntry<L>): void {
    entry.lruPrev = this.#lruTail;
    entry.lruNext = null;
    if (this.#lruTail === null) this.#lruHead = entry;
    else this.#lruTail.lruNext = entry;
    this.#lruTail = entry;
  }

  #lruRemove(entry: ProcessEntry<L>): void {
    const { lruPrev: prev, lruNext: next } = entry;
    if (prev === null) {
      if (this.#lruHead !== entry) return; // not in the list
      this.#lruHead = next;
    } else {
      prev.lruNext = next;
    }
    if (next === null) this.#lruTail = prev;
    else next.lruPrev = prev;
    entry.lruPrev = null;
    entry.lruNext = null;
  }

  /** The oldest exited entry still in the pid map. */
  #oldestDead(): ProcessEntry<L> | undefined {
    while (this.#deadHead < this.#dead.length && !this.#dead[this.#deadHead]!.mapped) this.#deadHead++;
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
      let victim = this.#lruHead;
      if (victim === keep && victim !== null) victim = victim.lruNext;
      if (victim === null) break;
      this.#evicted++;
      this.#end(victim, victim);
      this.#unmap(victim);
    }
  }

  #closeBirth(birth: Birth<L>): void {
    if (!birth.open) return;
    birth.open = false;
    this.#openBirths--;
    const list = birth.parent.births;
    const i = list.indexOf(birth);
    if (i >= 0) list.splice(i, 1);
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
    for (const queue of [this.#forkBirths, this.#clone3Births]) {
      for (let b = queue.peek(); b !== undefined && b.expiresAtMs <= this.#nowMs; b = queue.peek()) {
        this.#closeBirth(b);
        this.#birthsExpired++;
      }
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

/** A FIFO of births that skips the ones closed out of order (matched or ended with their parent). */
class BirthQueue<L> {
  #items: Birth<L>[] = [];
  #head = 0;
  readonly #limit: number;

  /** At most `2 * max + 1024` slots: closed births are squeezed out when that is reached. */
  constructor(max: number) {
    this.#limit = 2 * max + 1024;
  }

  push(birth: Birth<L>): void {
    if (this.#items.length >= this.#limit) {
      this.#items = this.#items.slice(this.#head).filter((b) => b.open);
      this.#head = 0;
    }
    this.#items.push(birth);
  }

  /** The oldest open birth, or undefined. */
  peek(): Birth<L> | undefined {
    while (this.#head < this.#items.length && !this.#items[this.#head]!.open) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return this.#items[this.#head];
  }
}
