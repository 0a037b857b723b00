/**
 * Estimates lost records from gaps in the kernel's serial numbers.
 *
 * The kernel numbers events in order per boot, so a serial that jumps ahead
 * leaves a gap that a later (out-of-order) record may still fill. Missing
 * serials are remembered, within a bound, so that late arrivals are not
 * counted as lost; a jump so large (or a fall so deep) that it can only be a
 * reboot or a different log starts a new sequence instead of counting a gap.
 */
export interface SerialGapOptions {
  /** Missing serials remembered per node (default 65,536); beyond it gaps are only counted. */
  readonly maxRemembered?: number;
  /** A jump larger than this is a new sequence, not a gap (default 1,000,000). */
  readonly resetThreshold?: number;
}

interface NodeState {
  max: number;
  missing: Set<number>;
}

export class SerialGapTracker {
  readonly #maxRemembered: number;
  readonly #reset: number;
  readonly #nodes = new Map<string, NodeState>();
  /** Serials estimated lost (gaps not filled later). */
  lost = 0;
  /** Sequences restarted (reboots, concatenated logs). */
  resets = 0;

  constructor(options: SerialGapOptions = {}) {
    this.#maxRemembered = options.maxRemembered ?? 65536;
    this.#reset = options.resetThreshold ?? 1_000_000;
  }

  /** Notes a serial seen on a node (null for the local one). */
  see(node: string | null, serial: number): void {
    const key = node ?? '';
    const st = this.#nodes.get(key);
    if (st === undefined) {
      // Bounded by the number of distinct nodes, which is small in practice;
      // cap it anyway since node names come from input.
      if (this.#nodes.size >= 4096) return;
      this.#nodes.set(key, { max: serial, missing: new Set() });
      return;
    }
    if (serial === st.max) return;
    if (serial > st.max) {
      const gap = serial - st.max - 1;
      if (gap > this.#reset) {
        this.resets++;
        st.missing.clear();
      } else if (gap > 0) {
        this.lost += gap;
        // Remember the newest gaps; the oldest are forgotten first (they are
        // the least likely to be filled by a late record).
        for (let s = Math.max(st.max + 1, serial - this.#maxRemembered); s < serial; s++) {
          if (st.missing.size >= this.#maxRemembered) {
            const oldest = st.missing.values().next().value;
            if (oldest !== undefined) st.missing.delete(oldest);
          }
          st.missing.add(s);
        }
      }
      st.max = serial;
      return;
    }
    if (st.missing.delete(serial)) {
      this.lost--;
    } else if (st.max - serial > this.#reset) {
      this.resets++;
      st.missing.clear();
      st.max = serial;
    }
  }
}
