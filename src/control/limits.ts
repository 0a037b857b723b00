/**
 * How many control connections each caller may hold at once, so that no
 * one who can connect locks the orchestrator out. Pure bookkeeping; the
 * server asks before it serves a connection and tells when one closes.
 *
 * Root (uid 0: the orchestrator, the OCI hook of every container starting
 * at once) has a pool of its own. Every other uid has a bound of its own,
 * and all of them together share one more pool: however many users
 * connect, and however many connections each holds, root still gets in, and
 * one user cannot take the others' share.
 */

/** Bounds for {@link ConnectionLimits}. */
export interface ConnectionLimitOptions {
  /** Connections at once from root, and from all other uids together. */
  readonly maxConnections: number;
  /** Connections at once from any one uid other than 0. */
  readonly maxConnectionsPerUid: number;
}

/** The connections held, by uid. */
export class ConnectionLimits {
  readonly #options: ConnectionLimitOptions;
  readonly #byUid = new Map<number, number>();
  #others = 0;

  constructor(options: ConnectionLimitOptions) {
    this.#options = options;
  }

  /** Connections held by uids other than 0. */
  get others(): number {
    return this.#others;
  }

  /**
   * Takes a slot for a connection of `uid`; returns null when it may be
   * served, or why not ("uid 1000 holds 16 connections…").
   */
  admit(uid: number): string | null {
    const held = this.#byUid.get(uid) ?? 0;
    const bound = uid === 0 ? this.#options.maxConnections : this.#options.maxConnectionsPerUid;
    if (held >= bound) return `uid ${uid} holds ${held} connections, the most it may hold`;
    if (uid !== 0 && this.#others >= this.#options.maxConnections) {
      return `users other than root hold ${this.#others} connections, the most they may hold together`;
    }
    this.#byUid.set(uid, held + 1);
    if (uid !== 0) this.#others++;
    return null;
  }

  /** Gives back the slot of a connection of `uid` that {@link admit} took. */
  release(uid: number): void {
    const held = this.#byUid.get(uid) ?? 0;
    if (held <= 1) this.#byUid.delete(uid);
    else this.#byUid.set(uid, held - 1);
    if (uid !== 0 && held > 0) this.#others--;
  }
}
