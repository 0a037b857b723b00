/**
 * What the stream cannot show, the live daemon writes into it (docs/design.md,
 * "The stream is the source of truth"). The witness reads /proc and the proc
 * connector and turns what it learns into markers, so that the labeller, live
 * and in a replay, reaches the same labels without reading the machine:
 *
 * - **questions**: a process first seen with a parent the stream has not
 *   shown (a parent blocked in vfork, a parent whose first record is late)
 *   waits, provisional; the witness reads the parent in /proc and answers
 *   with `proc` markers (its parent, start time and pid in its parent's
 *   namespace, up to an ancestor the table knows) or `gone` (it exited);
 * - **exits**: every exit the proc connector reports is looked at once the
 *   stream has passed it; a process the table still holds alive left
 *   without an exit_group record (a signal, the raw exit syscall, a thread
 *   group whose leader left first) and gets an `exit` marker;
 * - **reconciliation**: periodically for labelled and delegated processes,
 *   and for every process after a loss (ENOBUFS), the table is checked
 *   against /proc (pid and start time); what is gone gets an `exit` marker.
 *
 * The witness only reads the table; the labeller changes it when the
 * markers come back in the stream.
 */
import type { ProcExit } from '../kernel/proc-connector.js';
import type { MarkerBody } from '../marker/format.js';
import type { Labeller } from '../policy/labeller.js';
import { MIN_NAMED_PID, type ProcessEntry } from '../track/process-table.js';
import type { Container } from '../policy/contid.js';
import type { Logger } from './logger.js';
import { pidInParentNamespace, readProcFacts, type ProcFacts } from './proc-seed.js';

export interface WitnessOptions {
  /** The labeller of this host's records (it may change once: see Daemon's local node). */
  readonly labeller: () => Labeller;
  /** Writes a marker into the kernel audit stream (throws when the kernel refuses it). */
  readonly send: (body: MarkerBody) => void;
  /** The timestamp of the newest record the daemon has processed (ms), 0 before any. */
  readonly streamTimeMs: () => number;
  /** True when every record received has been processed (nothing in flight in the daemon). */
  readonly idle: () => boolean;
  readonly log: Logger;
  /** Wall clock (ms); injected for tests. */
  readonly now?: () => number;
  /** The /proc to read (tests give another). */
  readonly proc?: string;
  /**
   * How far past an exit the stream must be before the exit is looked at
   * (records arrive a little out of order). Default 100 ms.
   */
  readonly exitMarginMs?: number;
  /** With nothing in flight, how long after an exit it is looked at anyway. Default 250 ms. */
  readonly idleMarginMs?: number;
  /** Most exits waiting to be looked at; the oldest are looked at early past it. Default 65,536. */
  readonly maxPendingExits?: number;
}

export interface WitnessStats {
  readonly questions: number;
  readonly procMarkers: number;
  readonly goneMarkers: number;
  readonly exitMarkers: number;
  readonly exitsSeen: number;
  readonly exitsPending: number;
  readonly reconciliations: number;
  readonly sendErrors: number;
}

interface PendingExit {
  readonly atMs: number;
  readonly thread: boolean;
  readonly status: number;
  readonly parent: number;
}

/** Ancestors read for one question at most (a chain of never-seen parents). */
const MAX_CHAIN = 64;

export class Witness {
  readonly #labellerOf: () => Labeller;
  readonly #send: (body: MarkerBody) => void;
  readonly #streamTimeMs: () => number;
  readonly #idle: () => boolean;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #proc: string;
  readonly #exitMargin: number;
  readonly #idleMargin: number;
  readonly #maxPending: number;
  /** Exits by tgid, in the order reported (a Map keeps insertion order). */
  readonly #exits = new Map<number, PendingExit>();
  #questions = 0;
  #procMarkers = 0;
  #goneMarkers = 0;
  #exitMarkers = 0;
  #exitsSeen = 0;
  #reconciliations = 0;
  #sendErrors = 0;

  get #labeller(): Labeller {
    return this.#labellerOf();
  }

  constructor(options: WitnessOptions) {
    this.#labellerOf = options.labeller;
    this.#send = options.send;
    this.#streamTimeMs = options.streamTimeMs;
    this.#idle = options.idle;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#proc = options.proc ?? '/proc';
    this.#exitMargin = options.exitMarginMs ?? 100;
    this.#idleMargin = options.idleMarginMs ?? 250;
    this.#maxPending = options.maxPendingExits ?? 65_536;
  }

  stats(): WitnessStats {
    return {
      questions: this.#questions,
      procMarkers: this.#procMarkers,
      goneMarkers: this.#goneMarkers,
      exitMarkers: this.#exitMarkers,
      exitsSeen: this.#exitsSeen,
      exitsPending: this.#exits.size,
      reconciliations: this.#reconciliations,
      sendErrors: this.#sendErrors,
    };
  }

  /** True while exits wait to be looked at (the daemon then keeps a timer running). */
  get busy(): boolean {
    return this.#exits.size > 0;
  }

  /** Answers the labeller's new questions (call after each batch of records). */
  answerQuestions(): void {
    const pids = this.#labeller.takeQuestions();
    for (const pid of pids) {
      this.#questions++;
      this.#answer(pid);
    }
  }

  #answer(pid: number): void {
    // Read the never-seen process and its ancestors up to one the table
    // knows (alive, and the same incarnation when its start time is known).
    const chain: ProcFacts[] = [];
    let facts = readProcFacts(pid, this.#proc);
    if (facts === null) {
      this.#mark({ op: 'gone', pid });
      this.#goneMarkers++;
      return;
    }
    while (facts !== null && chain.length < MAX_CHAIN) {
      chain.push(facts);
      if (facts.ppid < MIN_NAMED_PID || this.#knows(facts.ppid)) break;
      facts = readProcFacts(facts.ppid, this.#proc);
    }
    // Top down, so each one's parent is placed before it. The parent's
    // namespace depth gives the child's pid there (its creation's exit=).
    for (let i = chain.length - 1; i >= 0; i--) {
      const child = chain[i]!;
      const parent = chain[i + 1] ?? readProcFacts(child.ppid, this.#proc);
      const nspid = parent === null ? child.pid : pidInParentNamespace(child, parent);
      this.#mark({ op: 'proc', pid: child.pid, ppid: child.ppid, start: child.startTime, nspid });
      this.#procMarkers++;
    }
  }

  /**
   * Before an operation on `pid`: makes sure the table knows it and its
   * container, writing what /proc shows of its never-seen ancestors into
   * the stream first (policy refuses a target of unknown container with
   * EAGAIN). Nothing is written when the table knows it already.
   */
  place(pid: number): void {
    const table = this.#labeller.table;
    let e = table.get(pid);
    if (e === undefined) {
      if (readProcFacts(pid, this.#proc) !== null) this.#answer(pid);
      return;
    }
    if (!e.provisional) return;
    while (e.parent !== null && e.parent.provisional) e = e.parent;
    if (e.parent === null) this.#answer(e.ppid);
  }

  #knows(pid: number): boolean {
    return this.#labeller.table.get(pid) !== undefined;
  }

  /** A task exit from the proc connector (threads included). */
  onExit(exit: ProcExit): void {
    this.#exitsSeen++;
    const tgid = exit.tgid;
    // The latest report of a group is the one to wait for.
    this.#exits.delete(tgid);
    this.#exits.set(tgid, {
      atMs: this.#now(),
      thread: exit.pid !== tgid,
      status: exit.exitCode,
      parent: exit.parentTgid,
    });
    if (this.#exits.size > this.#maxPending) {
      const [oldest, pending] = this.#exits.entries().next().value as [number, PendingExit];
      this.#exits.delete(oldest);
      this.#judge(oldest, pending);
    }
  }

  /** Looks at the exits the stream has passed (call after each batch and from a timer). */
  check(): void {
    if (this.#exits.size === 0) return;
    const stream = this.#streamTimeMs();
    const now = this.#now();
    const idle = this.#idle();
    for (const [tgid, pending] of this.#exits) {
      const passed = stream >= pending.atMs + this.#exitMargin;
      const quiet = idle && now >= pending.atMs + this.#idleMargin;
      if (!passed && !quiet) break; // later ones are later still
      this.#exits.delete(tgid);
      this.#judge(tgid, pending);
    }
  }

  /** The stream has passed the exit: if the table still holds the process, it left unseen. */
  #judge(tgid: number, pending: PendingExit): void {
    const table = this.#labeller.table;
    const entry = table.get(tgid);
    if (entry === undefined) {
      // Never seen, but a birth names it or processes wait for it: say it is gone.
      if (table.isClaimed(tgid) || this.#labeller.isWaitedFor(tgid))
        this.#exit({ pid: tgid, ppid: pending.parent, status: pending.status });
      return;
    }
    // A thread's exit matters only for a process whose end matters now.
    if (pending.thread && entry.label === null && entry.grant === null) return;
    if (this.#dead(entry)) this.#exitOf(entry, pending.status);
  }

  /** True when /proc shows `entry`'s incarnation is over. */
  #dead(entry: ProcessEntry<Container>): boolean {
    const facts = readProcFacts(entry.pid, this.#proc);
    if (facts === null || facts.zombie) return true;
    if (entry.startTime !== null) return facts.startTime !== entry.startTime;
    // No start time known: another parent than the table's is another
    // process, unless it is where the kernel reparents orphans (init, or a
    // subreaper among its ancestors).
    if (facts.ppid === entry.ppid || facts.ppid === 1) return false;
    for (let p = entry.parent; p !== null; p = p.parent) if (p.pid === facts.ppid) return false;
    return true;
  }

  #exitOf(entry: ProcessEntry<Container>, status: number): void {
    this.#exit({
      pid: entry.pid,
      ppid: entry.ppid,
      status,
      ...(entry.startTime === null ? {} : { start: entry.startTime }),
    });
  }

  #exit(body: { pid: number; ppid: number; status: number; start?: number }): void {
    this.#mark({ op: 'exit', ...body });
    this.#exitMarkers++;
  }

  /**
   * Checks live processes against /proc: the labelled and delegated ones
   * (`all` false: cheap enough to run periodically), or every one (after a
   * loss, when exits may have gone unreported). What is gone gets an exit
   * marker. Returns how many were found gone.
   */
  reconcile(all: boolean): number {
    this.#reconciliations++;
    let gone = 0;
    for (const entry of this.#labeller.table.liveEntries()) {
      if (!all && entry.label === null && entry.grant === null) continue;
      if (!this.#dead(entry)) continue;
      gone++;
      this.#exitOf(entry, 0);
    }
    if (gone > 0)
      this.#log('info', `Reconciled the process table with /proc: ${gone} processes had ended unseen`);
    return gone;
  }

  #mark(body: MarkerBody): void {
    try {
      this.#send(body);
    } catch (error) {
      this.#sendErrors++;
      const message = error instanceof Error ? error.message : String(error);
      this.#log('warning', `Cannot send the ${body.op} marker: ${message}`);
    }
  }
}
