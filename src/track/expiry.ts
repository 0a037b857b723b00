/**
 * Expiry: what the process table lets go of as stream time passes, and
 * the clock it is measured by.
 *
 * Three things expire, each after one time-to-live from when it was made,
 * so each kind expires in the order it was made (a FIFO, `ExpiryQueue`):
 * open births (births.ts: 60 s for fork, vfork and clone, 2 s for clone3),
 * exited entries still findable by pid (10 s), and never-seen parents that
 * processes wait for (waits.ts). Things also leave a queue early (a birth
 * bound to its child, an entry unmapped because the table was full): the
 * queue skips them lazily rather than searching for them.
 *
 * The clock is stream time, never the machine's: a replay expires the same
 * things at the same records as the live daemon did. It takes the
 * timestamps of events in arrival order, which are not monotonic (records
 * reach a reader out of order), so it keeps two times: the event being
 * processed, and the newest seen, which only moves forward and is what
 * expiry is measured against.
 */

/** Stream time, and the earliest time at which anything can expire. */
export class StreamClock {
  /** The timestamp of the event being processed. */
  eventMs = 0;
  /** The newest timestamp seen: never goes back. */
  nowMs = 0;
  /**
   * Nothing (birth, dead entry, placeholder) expires before this stream
   * time: the earliest expiry when the owner last looked, lowered as new
   * ones come. Most events move the clock less than that, and the owner
   * then has nothing to look at.
   */
  #dueMs = Number.POSITIVE_INFINITY;

  /** Moves to the time of the next event; true when something may be due. */
  advance(timeMs: number): boolean {
    this.eventMs = timeMs;
    if (timeMs > this.nowMs) this.nowMs = timeMs;
    return this.nowMs >= this.#dueMs;
  }

  /** Something can expire at stream time `ms` (a new birth, death or placeholder). */
  due(ms: number): void {
    if (ms < this.#dueMs) this.#dueMs = ms;
  }

  /** After the owner expired what was due: the earliest expiry left (Infinity: none). */
  nextDue(ms: number): void {
    this.#dueMs = ms;
  }
}

/**
 * A FIFO of things that expire in the order they were queued, skipping the
 * ones that left early (`isCurrent` false). Slots already passed are
 * cleared, so that they hold nothing (and nothing it points at) past its
 * time, and the array is compacted once most of it is passed.
 */
export class ExpiryQueue<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  readonly #isCurrent: (item: T) => boolean;
  readonly #limit: number;

  /**
   * `limit` bounds the slots (default: none): reaching it squeezes out the
   * items that left early. A queue whose items mostly leave early (births,
   * bound to their children) needs it; one whose items leave in order does not.
   */
  constructor(isCurrent: (item: T) => boolean, limit = Number.POSITIVE_INFINITY) {
    this.#isCurrent = isCurrent;
    this.#limit = limit;
  }

  push(item: T): void {
    if (this.#items.length >= this.#limit) {
      this.#items = this.#items.slice(this.#head).filter((x) => x !== undefined && this.#isCurrent(x));
      this.#head = 0;
    }
    this.#items.push(item);
  }

  /** The oldest item still current, or undefined. */
  peek(): T | undefined {
    while (this.#head < this.#items.length && !this.#isCurrent(this.#items[this.#head]!))
      this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return this.#items[this.#head];
  }

  /** Every item not yet passed, oldest first (current or not: the caller checks). */
  *pending(): Generator<T> {
    for (let i = this.#head; i < this.#items.length; i++) {
      const item = this.#items[i];
      if (item !== undefined) yield item;
    }
  }
}
