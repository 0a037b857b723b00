/**
 * A process as the process table knows it: `ProcessEntry`, the read-only
 * view everyone outside src/track gets, and `TableEntry`, the mutable
 * record behind it that only the table (and its parts in src/track:
 * births, pid-namespace evidence, label groups, waits) changes.
 *
 * Why two types: policy, the daemon and the CLI read entries on every
 * event, but a field written from outside the table would bypass what the
 * table keeps consistent with it (holder counts, the label groups, the
 * pid map). The view makes such a write a type error; the table's methods
 * (relabel, grant, learnExec, learnStartTime, …) are the only way in.
 * eslint.config.js keeps `TableEntry` from being imported outside src/track.
 */

import type { Birth } from './births.js';
import type { PidNamespace } from './pid-namespace.js';

/** What a grant was given to: a caller claiming it must be the same (null: not known then). */
export interface Grant {
  readonly uid: number | null;
  readonly exe: string | null;
  readonly start: number | null;
}

/** An accepted relabel (set, adopt): the label before it. */
export interface Relabel<L> {
  readonly tick: number;
  readonly before: L | null;
}

/** How the table first learnt of a process. */
export type EntryOrigin = 'seed' | 'birth' | 'ppid';

/** A process as the table knows it, read-only: change it through the table's methods. */
export interface ProcessEntry<L> {
  readonly pid: number;
  /** Table-wide creation number: (pid, generation) names one incarnation. */
  readonly generation: number;
  /** The host ppid last seen in this process's records. */
  readonly ppid: number;
  /** The parent's entry (possibly exited), or null when the parent was never seen. */
  readonly parent: ProcessEntry<L> | null;
  readonly label: L | null;
  /** Raw `comm=` / `exe=` values as last seen (quotes or hex kept). */
  readonly comm: string | null;
  readonly exe: string | null;
  /** Start time from a /proc snapshot or a marker (clock ticks since boot), or null. */
  readonly startTime: number | null;
  readonly alive: boolean;
  readonly origin: EntryOrigin;
  /** True once a creation record (a birth) of this process has been seen. */
  readonly confirmed: boolean;
  /** Live entries whose parent is this one. */
  readonly children: number;
  /**
   * Delegation (the kernel series' capcontid): may label its own
   * descendants. It belongs to this incarnation, and to the identity it was
   * granted to (uid, executable, start time), which a caller must match.
   */
  readonly grant: Grant | null;
  /**
   * True while the label is unset only because the parent was not known when
   * this process was created (a never-seen ppid, or a provisional creator):
   * resolved once that parent is first seen. Implies `label === null`.
   */
  readonly provisional: boolean;
  /** Accepted relabels (set, adopt) in order, or null when never relabelled. */
  readonly history: readonly Relabel<L>[] | null;
  /** Stream time of the event in which the table first learnt of it. */
  readonly seenAtMs: number;
  /** Stream time of death (0 while alive). */
  readonly diedAtMs: number;
}

/** Told when a label gains or loses a holder (a live process or an open birth). */
export interface LabelHooks<L> {
  retain(label: L): void;
  /** `by` is the process whose end released it (for a closed birth: the parent that recorded it). */
  release(label: L, by: ProcessEntry<L>): void;
}

/** The births of every process that has recorded none: one frozen array, never written. */
export const NO_BIRTHS: readonly never[] = Object.freeze([]);

/**
 * The table's mutable record of a process. Internal to src/track: the
 * table hands it out as a `ProcessEntry`, and takes a `ProcessEntry` back
 * as the `TableEntry` it made (see `own`).
 */
export interface TableEntry<L> extends ProcessEntry<L> {
  ppid: number;
  parent: TableEntry<L> | null;
  label: L | null;
  comm: string | null;
  exe: string | null;
  startTime: number | null;
  alive: boolean;
  confirmed: boolean;
  children: number;
  /** Entries (live, or exited and retained) whose parent is this one. */
  holds: number;
  /**
   * Open births: children recorded by their creation syscall, not yet seen
   * themselves. Replaced, not written, while it is NO_BIRTHS (most
   * processes share that one empty array); see births.ts.
   */
  births: readonly Birth<L>[];
  grant: Grant | null;
  /**
   * Pid-namespace status as known so far; 'unknown' defers to `nsFrom`.
   * Read it through `pidNamespaceOf` (pid-namespace.ts), which resolves the
   * inheritance.
   */
  pidns: PidNamespace;
  /** True when `pidns` can no longer change: seeded, or 'nested' (a process never leaves a pid namespace). */
  pidnsFixed: boolean;
  /** The process this one inherits its pid-namespace status from (its creator), while that is unresolved. */
  nsFrom: TableEntry<L> | null;
  /** Births of this process confirmed with the child's pid == `exit=` (≥ MIN_NAMED_PID). */
  hostVotes: number;
  /** Children of this process that matched none of its open fork births (less those confirmed late). */
  nestedVotes: number;
  provisional: boolean;
  /** Provisional children created under this one while it was provisional, or null. */
  pending: TableEntry<L>[] | null;
  history: Relabel<L>[] | null;
  diedAtMs: number;
  /** Ended by a reported exit (see ProcessTable.exit), not by its own exit_group. */
  reported: boolean;
  /** False once the pid map no longer points at this entry. */
  mapped: boolean;
  /** Links of the least-recently-seen list of its label group (label-groups.ts). */
  lruPrev: TableEntry<L> | null;
  lruNext: TableEntry<L> | null;
}

/**
 * A new entry, alive, with no parent linked yet. An object literal, not a
 * class with field initialisers: made that way, entries cost about 5% more
 * CPU on bench/labels.mjs's labelled replay (one entry per process).
 */
export function newTableEntry<L>(
  pid: number,
  identity: { generation: number; ppid: number; label: L | null; origin: EntryOrigin; seenAtMs: number },
): TableEntry<L> {
  return {
    pid,
    generation: identity.generation,
    ppid: identity.ppid,
    parent: null,
    label: identity.label,
    comm: null,
    exe: null,
    startTime: null,
    alive: true,
    origin: identity.origin,
    confirmed: false,
    children: 0,
    holds: 0,
    births: NO_BIRTHS,
    grant: null,
    pidns: 'unknown',
    pidnsFixed: false,
    nsFrom: null,
    hostVotes: 0,
    nestedVotes: 0,
    provisional: false,
    pending: null,
    history: null,
    seenAtMs: identity.seenAtMs,
    diedAtMs: 0,
    reported: false,
    mapped: true,
    lruPrev: null,
    lruNext: null,
  };
}

/**
 * The table's own record behind a view it handed out. Every ProcessEntry
 * is made by a table (the view has no other implementation), so this
 * narrows the type only.
 */
export function own<L>(entry: ProcessEntry<L>): TableEntry<L> {
  return entry as TableEntry<L>;
}

/** True when `entry` descends (strictly) from `ancestor`, by creation links. */
export function isDescendant<L>(entry: ProcessEntry<L>, ancestor: ProcessEntry<L>): boolean {
  for (let p = entry.parent; p !== null; p = p.parent) {
    if (p === ancestor) return true;
  }
  return false;
}

/** The live ancestor of `entry` (strict) with this pid, or null. */
export function liveAncestor<L>(entry: TableEntry<L>, pid: number): TableEntry<L> | null {
  for (let p = entry.parent; p !== null; p = p.parent) {
    if (p.pid === pid) return p.alive ? p : null;
  }
  return null;
}
