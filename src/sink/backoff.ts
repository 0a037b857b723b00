/** Reconnect and retry delays: doubling from a first delay up to a ceiling. */
import { ContidRangeError } from '../errors.js';

/** Options of {@link Backoff}. */
export interface BackoffOptions {
  /** The first delay (default 100 ms). */
  readonly initialMs?: number;
  /** The ceiling (default 30,000 ms). */
  readonly maxMs?: number;
}

/** Exponential backoff, bounded; reset() after a success. */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  #nextMs: number;

  constructor(options: BackoffOptions = {}) {
    this.#initialMs = options.initialMs ?? 100;
    this.#maxMs = Math.max(options.maxMs ?? 30_000, this.#initialMs);
    if (!(this.#initialMs > 0))
      throw new ContidRangeError('Cannot use a backoff of 0 ms or less', 'ERR_OUT_OF_RANGE');
    this.#nextMs = this.#initialMs;
  }

  /** The delay to wait now; the one after is twice as long, up to the ceiling. */
  next(): number {
    const ms = this.#nextMs;
    this.#nextMs = Math.min(ms * 2, this.#maxMs);
    return ms;
  }

  reset(): void {
    this.#nextMs = this.#initialMs;
  }
}
