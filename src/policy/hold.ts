/**
 * Holds back the events of provisional processes until they can be tagged.
 *
 * Records reach a reader out of order: the first event of a process can
 * arrive before any record of its parent, when nothing says which container
 * it is in (docs/labels.md, "Unknown parents seen late"). Instead of writing
 * such an event unlabelled, the stage keeps it until its process's wait is
 * over (the parent appeared: the event gets the label) or a bound is reached
 * (stream time or count: it is written as it is). Every other event passes
 * straight through, after any held event that became ready, so output order
 * is arrival order except for the events held. Deterministic: time is the
 * stream's.
 */
import type { LabelledEvent, Labeller } from './labeller.js';

export interface HoldOptions {
  /** Longest an event is held, in stream time (ms, default 2000: the assembler's event timeout). */
  readonly maxHoldMs?: number;
  /** Most events held at once (default 4096); past it the oldest is released as it is. */
  readonly maxHeld?: number;
}

interface Held {
  le: LabelledEvent;
  readonly untilMs: number;
}

export class HoldStage {
  readonly #labeller: Labeller;
  readonly #maxHoldMs: number;
  readonly #maxHeld: number;
  #held: Held[] = [];
  /** The labeller's settlements at the last check, and the earliest hold deadline. */
  #seenSettlements = 0;
  #nextDeadline = Number.POSITIVE_INFINITY;
  /** Events held, then written with a label. */
  resolved = 0;
  /** Events held, then written without one (the wait did not end in time). */
  expired = 0;

  constructor(labeller: Labeller, options: HoldOptions = {}) {
    this.#labeller = labeller;
    this.#maxHoldMs = options.maxHoldMs ?? 2000;
    this.#maxHeld = options.maxHeld ?? 4096;
  }

  /** Events currently held. */
  get held(): number {
    return this.#held.length;
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
      this.#held.length > 0 &&
      (this.#labeller.settlements !== this.#seenSettlements || le.event.timeMs > this.#nextDeadline)
    ) {
      this.#release(le.event.timeMs, out, false);
    }
    // With no live container, a wait can only end unset: nothing to hold for.
    // (Replaying a log without its parents' records makes most processes
    // provisional; holding them all would only delay them.)
    if (le.provisional && this.#labeller.liveContainers > 0) {
      const untilMs = le.event.timeMs + this.#maxHoldMs;
      this.#held.push({ le, untilMs });
      if (untilMs < this.#nextDeadline) this.#nextDeadline = untilMs;
      if (this.#held.length > this.#maxHeld) {
        const oldest = this.#held.shift()!;
        this.expired++;
        out.push(oldest.le);
      }
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

  #release(nowMs: number, out: LabelledEvent[], all: boolean): void {
    this.#seenSettlements = this.#labeller.settlements;
    this.#nextDeadline = Number.POSITIVE_INFINITY;
    const keep: Held[] = [];
    for (const h of this.#held) {
      const tagged = this.#labeller.retag(h.le);
      if (tagged !== null) {
        if (tagged.contid !== null) this.resolved++;
        else this.expired++;
        out.push(tagged);
      } else if (all || nowMs > h.untilMs) {
        this.expired++;
        out.push(h.le);
      } else {
        keep.push(h);
        if (h.untilMs < this.#nextDeadline) this.#nextDeadline = h.untilMs;
      }
    }
    this.#held = keep;
  }
}
