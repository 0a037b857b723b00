/**
 * {@link Descriptions}: what orchestrators said about the containers they
 * labelled (name, metadata), kept for `contid status` while each container
 * is live. The set's marker and its CONTAINER_OP carry the same, so the
 * stream and the store have them too; this is the daemon's quick view.
 */

/** Most container descriptions kept; the oldest go first. */
const MAX_DESCRIPTIONS = 10_000;

/** What an orchestrator said about a container it labelled. */
export interface ContainerDescription {
  /** The chain (`5,^42`; a top-level ID is itself). */
  readonly contid: string;
  readonly name?: string;
  readonly meta?: Readonly<Record<string, string>>;
  /** The pid the set that described it labelled. */
  readonly pid: number;
}

export class Descriptions {
  readonly #byChain = new Map<string, ContainerDescription>();
  /** Whether a container with this chain is live. */
  readonly #isLive: (chain: string) => boolean;

  constructor(isLive: (chain: string) => boolean) {
    this.#isLive = isLive;
  }

  /**
   * Keeps a description, by chain (a nested ID is unique only among its
   * parent's). A later set of the same container (an injected process)
   * that describes it again wins.
   */
  describe(description: ContainerDescription): void {
    this.#byChain.delete(description.contid);
    this.#byChain.set(description.contid, description);
    if (this.#byChain.size > MAX_DESCRIPTIONS) this.#prune();
  }

  /** The live containers described, in the order they were set. */
  live(): ContainerDescription[] {
    this.#prune();
    return [...this.#byChain.values()];
  }

  /** Forgets descriptions of containers that are no longer live, then the oldest beyond the bound. */
  #prune(): void {
    for (const id of this.#byChain.keys()) {
      if (!this.#isLive(id)) this.#byChain.delete(id);
    }
    for (const id of this.#byChain.keys()) {
      if (this.#byChain.size <= MAX_DESCRIPTIONS) break;
      this.#byChain.delete(id);
    }
  }
}
