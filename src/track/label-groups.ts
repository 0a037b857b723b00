/**
 * Label groups: the table's live entries by label (null: unset), each
 * group least recently seen first, for eviction when the table is full.
 *
 * The largest group gives way first: one container spawning processes
 * cannot push another's idle ones out. Each group is an intrusive list
 * through the entries' `lruPrev`/`lruNext` links, so touching an entry on
 * every event is O(1) and churns no map.
 */

import type { TableEntry } from './process-entry.js';

/** The live entries of one label, least recently seen first. */
class LruGroup<L> {
  head: TableEntry<L> | null = null;
  tail: TableEntry<L> | null = null;
  count = 0;

  has(entry: TableEntry<L>): boolean {
    return entry.lruPrev !== null || this.head === entry;
  }

  append(entry: TableEntry<L>): void {
    entry.lruPrev = this.tail;
    entry.lruNext = null;
    if (this.tail === null) this.head = entry;
    else this.tail.lruNext = entry;
    this.tail = entry;
    this.count++;
  }

  remove(entry: TableEntry<L>): void {
    const { lruPrev: prev, lruNext: next } = entry;
    if (prev === null) this.head = next;
    else prev.lruNext = next;
    if (next === null) this.tail = prev;
    else next.lruPrev = prev;
    entry.lruPrev = null;
    entry.lruNext = null;
    this.count--;
  }
}

/** The live entries of a table, grouped by label. */
export class LabelGroups<L> {
  readonly #groups = new Map<L | null, LruGroup<L>>();

  /** Adds a live entry as the most recently seen of its label's group. */
  add(entry: TableEntry<L>): void {
    let group = this.#groups.get(entry.label);
    if (group === undefined) this.#groups.set(entry.label, (group = new LruGroup<L>()));
    group.append(entry);
  }

  /** Takes an entry out of its group (nothing if it is in none). */
  remove(entry: TableEntry<L>): void {
    const group = this.#groups.get(entry.label);
    if (group === undefined || !group.has(entry)) return;
    group.remove(entry);
    if (group.count === 0) this.#groups.delete(entry.label);
  }

  /** True when the entry is in its label's group (it is live). */
  has(entry: TableEntry<L>): boolean {
    return this.#groups.get(entry.label)?.has(entry) === true;
  }

  /** Marks an entry as just seen. */
  touch(entry: TableEntry<L>): void {
    const group = this.#groups.get(entry.label);
    if (group === undefined || group.tail === entry) return;
    this.remove(entry);
    this.add(entry);
  }

  /** The least recently seen live entry of the largest group, other than `keep`. */
  victim(keep: TableEntry<L> | null): TableEntry<L> | null {
    let best: LruGroup<L> | null = null;
    for (const g of this.#groups.values()) {
      if (g.count === 1 && g.head === keep) continue;
      if (best === null || g.count > best.count) best = g;
    }
    if (best === null) return null;
    return best.head === keep ? (best.head?.lruNext ?? null) : best.head;
  }

  /** Every live entry, group by group, least recently seen first; the caller may end the one it holds. */
  *entries(): Generator<TableEntry<L>> {
    for (const group of [...this.#groups.values()]) {
      for (let e = group.head; e !== null;) {
        const next = e.lruNext; // the caller may end `e`
        yield e;
        e = next;
      }
    }
  }
}
