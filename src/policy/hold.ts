/**
 * Holds back the events of provisional processes until they can be tagged.
 *
 * Records reach a reader out of order: the first event of a process can
 * arrive before any record of its parent, when nothing says which container
 * it is in (docs/labels.md, "Unknown parents seen late"). Instead of writing
 * such an event unlabelled, the stage keeps it until its process's wait is
 * over: the parent appeared, or the daemon answered with a `proc` or `gone`
 * marker (the event gets the label the wait resolved to, possibly unknown).
 * A bound (stream time, events per wait, events in all) releases an event
 * early: it is then written as **unknown**, never as host.
 *
 * Every other event passes straight through, after any held event that
 * became ready, so output order is arrival order except for the events held.
 * Deterministic: time is the stream's, bounds are counts.
 */
import type { LabelledEvent, Labeller } from './labeller.js';

export interface HoldOptions {
  /**
   * Longest an event is held, in stream time (ms, default 60,000: as long as
   * a wait for a never-seen parent lasts; the live daemon answers within
   * milliseconds, this bounds replays of logs without its answers).
   */
  readonly maxHoldMs?: number;
  /**
   * Most events held at once (default 4096); past it, the oldest event of
   * the largest wait is written (as unknown), the newest wait among equals.
   */
  readonly maxHeld?: number;
  /** Most events held for one wait (one never-seen pid; default 1024). */
  readonly maxPerWait?: number;
}

interface Held {
  le: LabelledEvent;
  readonly untilMs: number;
  /** The never-seen pid its process waits for (Labeller.waitKey). */
  readonly key: number;
  /** Released early (a bound) and written already; its slot is squeezed out later. */
  gone: boolean;
}

/** Counters of the hold stage. */
export interface HoldStats {
  readonly held: number;
  /** Events held, then written with the label their wait resolved to. */
  readonly resolved: number;
  /** Events held, then written as unknown because a bound released them. */
  readonly expired: number;
  /** Of those, released because their wait or the stage was full. */
  readonly overflowed: number;
}

export class HoldStage {
  readonly #labeller: Labeller;
  readonly #maxHoldMs: number;
  readonly #maxHeld: number;
  readonly #maxPerWait: number;
  #held: Held[] = [];
  #live = 0;
  /** Held events per wait key, oldest first (written ones are skipped from the head). */
  readonly #perWait = new Map<number, { items: Held[]; head: number; count: number }>();
  /** The labeller's settlements at the last check, and the earliest hold deadline. */
  #seenSettlements = 0;
  #nextDeadline = Number.POSITIVE_INFINITY;
  /** Events held, then written with the label their wait resolved to (unset included). */
  resolved = 0;
  /** Events held, then written as unknown (a bound released them first). */
  expired = 0;
  overflowed = 0;

  constructor(labeller: Labeller, options: HoldOptions = {}) {
    this.#labeller = labeller;
    this.#maxHoldMs = options.maxHoldMs ?? 60_000;
    this.#maxHeld = Math.max(1, options.maxHeld ?? 4096);
    this.#maxPerWait = Math.max(1, options.maxPerWait ?? 1024);
  }

  /** Events currently held. */
  get held(): number {
    return this.#live;
  }

  stats(): HoldStats {
    return { held: this.#live, resolved: this.resolved, expired: this.expired, overflowed: this.overflowed };
  }

  /**
   * Takes the next labelled event; returns the events ready to write, in
   * order, appended to `out` when given (a caller that empties and reuses
   * one array spares an allocation per event).
   */
  push(le: LabelledEvent, out: LabelledEvent[] = []): LabelledEvent[] {
    // Re-check the held events only when a wait ended or a deadline passed:
    // this runs for every event.
    if (
      this.#live > 0 &&
      (this.#labeller.settlements !== this.#seenSettlements || le.event.timeMs > this.#nextDeadline)
    ) {
      this.#release(le.event.timeMs, out, false);
    }
    // With no live container, a wait can only end unset: nothing to hold for.
    // (Replaying a log without its parents' records makes most processes
    // provisional; holding them all would only delay them.)
    if (le.provisional && this.#labeller.liveContainers > 0) {
      const key = this.#labeller.waitKey(le);
      const untilMs = le.event.timeMs + this.#maxHoldMs;
      this.#held.push({ le, untilMs, key, gone: false });
      this.#live++;
      const h: Held = this.#held[this.#held.length - 1]!;
      let wait = this.#perWait.get(key);
      if (wait === undefined) this.#perWait.set(key, (wait = { items: [], head: 0, count: 0 }));
      wait.items.push(h);
      const n = ++wait.count;
      if (untilMs < this.#nextDeadline) this.#nextDeadline = untilMs;
      // One wait's flood is bounded on its own; past the total, the largest wait gives way.
      if (n > this.#maxPerWait) this.#evict(key, out);
      else if (this.#live > this.#maxHeld) this.#evict(this.#largestWait(), out);
    } else {
      out.push(le);
    }
    return out;
  }

  /** Releases everything still held (end of input, stop). */
  end(): LabelledEvent[] {
    const out: LabelledEvent[] = [];
    this.#release(Number.POSITIVE_INFINITY, out, true);
    return out;
  }

  /** Writes the oldest held event of wait `key` now, as unknown. */
  #evict(key: number, out: LabelledEvent[]): void {
    const wait = this.#perWait.get(key);
    if (wait === undefined) return;
    while (wait.head < wait.items.length && wait.items[wait.head]!.gone) wait.head++;
    const h = wait.items[wait.head];
    if (h !== undefined) {
      h.gone = true;
      this.#forget(h);
      this.overflowed++;
      this.expired++;
      out.push(this.#labeller.tagUnknown(h.le));
    }
    // Squeeze out written slots once they are most of the queue (amortised).
    if (this.#held.length > 2 * this.#live + 64) this.#held = this.#held.filter((h) => !h.gone);
  }

  #largestWait(): number {
    let key = -1;
    let most = 0;
    // Ties go to the newest wait: a flood of fresh waits gives way before an older one.
    for (const [k, w] of this.#perWait) {
      if (w.count >= most) {
        most = w.count;
        key = k;
      }
    }
    return key;
  }

  #forget(h: Held): void {
    this.#live--;
    h.gone = true;
    const wait = this.#perWait.get(h.key);
    if (wait === undefined) return;
    if (--wait.count <= 0) {
      this.#perWait.delete(h.key);
    } else if (wait.head > 64 && wait.head * 2 > wait.items.length) {
      wait.items = wait.items.slice(wait.head);
      wait.head = 0;
    }
  }

  #release(nowMs: number, out: LabelledEvent[], all: boolean): void {
    this.#seenSettlements = this.#labeller.settlements;
    this.#nextDeadline = Number.POSITIVE_INFINITY;
    const keep: Held[] = [];
    for (const h of this.#held) {
      if (h.gone) continue;
      const tagged = this.#labeller.retag(h.le);
      if (tagged !== null) {
        this.#forget(h);
        if (tagged.contid === 'unknown') this.expired++;
        else this.resolved++;
        out.push(tagged);
      } else if (all || nowMs > h.untilMs) {
        this.#forget(h);
        this.expired++;
        out.push(this.#labeller.tagUnknown(h.le));
      } else {
        keep.push(h);
        if (h.untilMs < this.#nextDeadline) this.#nextDeadline = h.untilMs;
      }
    }
    this.#held = keep;
  }
}
