/**
 * Waits for never-seen parents: a pid named as `ppid=` by processes seen
 * before it (and never seen itself) gets a placeholder, and those
 * processes wait on it, provisional, for its first record. The table
 * resolves them when it comes (they take its label), or gives them the
 * unknown label when the wait ends without it (the parent exited unseen,
 * the wait expired or was evicted). See docs/labels.md.
 *
 * This file holds the placeholders (bounded, expiring in the order they
 * were made) and the questions a live daemon answers from /proc; what a
 * wait's end does to the waiting entries is the table's (#settle,
 * #resolve, #dropPlaceholder in process-table.ts).
 */

import type { TableEntry } from './process-entry.js';

/** A never-seen parent, and the processes waiting for it. */
export interface Placeholder<L> {
  readonly pid: number;
  /** The table's tick when the first waiting child was seen: the pid's process existed by then. */
  readonly tick: number;
  /**
   * The stream time of the event in which the first waiting child was seen.
   * A birth recorded in an event with a later timestamp cannot be that
   * process's creation (it is a later process with the same pid). Stream
   * time, not arrival order: records reach a reader out of order, so the
   * parent's own creation can arrive after its child's first record.
   */
  readonly atMs: number;
  readonly expiresAtMs: number;
  readonly waiting: TableEntry<L>[];
}

/** The placeholders of a table, by pid, oldest first (one TTL, so they expire from the head). */
export class Waits<L> {
  readonly #placeholders = new Map<number, Placeholder<L>>();
  /** Pids that processes started waiting for since the last takeQuestions(). */
  #questions: number[] = [];
  readonly #asks: boolean;
  /**
   * No placeholder expires before this stream time: the oldest one's
   * expiry when last looked at (placeholders only leave early, and new
   * ones expire later), so the table need not look at them every event.
   */
  #dueMs = Number.POSITIVE_INFINITY;

  /** `asks`: keep the pids waited for, for takeQuestions() (live mode). */
  constructor(asks: boolean) {
    this.#asks = asks;
  }

  get size(): number {
    return this.#placeholders.size;
  }

  /** The earliest stream time at which a placeholder can expire (Infinity: none). */
  get dueMs(): number {
    return this.#dueMs;
  }

  get(pid: number): Placeholder<L> | undefined {
    return this.#placeholders.get(pid);
  }

  /** True while processes wait, provisional, for never-seen `pid`. */
  has(pid: number): boolean {
    return this.#placeholders.has(pid);
  }

  /** The pid of the oldest placeholder, if any. */
  oldest(): number | undefined {
    const first = this.#placeholders.keys().next();
    return first.done === true ? undefined : first.value;
  }

  /** Opens a placeholder for `ph.pid` (none is open for it). */
  open(ph: Placeholder<L>): void {
    this.#placeholders.set(ph.pid, ph);
    if (ph.expiresAtMs < this.#dueMs) this.#dueMs = ph.expiresAtMs;
  }

  /** Takes the placeholder of `pid` out (its wait ended). */
  delete(pid: number): void {
    this.#placeholders.delete(pid);
  }

  /** A first process waits for `pid`: a question for the live daemon, when it asks. */
  ask(pid: number): void {
    if (this.#asks) this.#questions.push(pid);
  }

  /** The questions since the last call, oldest first. */
  takeQuestions(): number[] {
    const out = this.#questions;
    if (out.length > 0) this.#questions = [];
    return out;
  }

  /** Ends, through `end`, the waits whose time is up at stream time `nowMs`. */
  expire(nowMs: number, end: (pid: number) => void): void {
    if (nowMs < this.#dueMs) return;
    this.#dueMs = Number.POSITIVE_INFINITY;
    for (const ph of this.#placeholders.values()) {
      if (ph.expiresAtMs > nowMs) {
        this.#dueMs = ph.expiresAtMs;
        break;
      }
      end(ph.pid);
    }
  }
}
