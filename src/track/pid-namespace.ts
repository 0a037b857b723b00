/**
 * Pid-namespace evidence: whether a process's `exit=` values (the pids of
 * the children it makes) are host pids or pids of a nested pid namespace.
 *
 * A fork record's `exit=` is the child's pid in the *caller's* pid
 * namespace (`exit=2` in a container), while `ppid=`/`pid=` are host pids.
 * Only a caller known to be in the initial ('host') namespace may have its
 * `exit=` taken as the child's pid; births of every other caller bind by
 * parent only (see births.ts). The stream never says which namespace a
 * process is in, so each entry collects evidence:
 *
 * - the seeder read `/proc/PID/ns/pid` (fixed for good);
 * - a CLONE_NEWPID child is 'nested', and so is everything it makes;
 * - `exit=` values below MIN_NAMED_PID are 'nested' evidence;
 * - HOST_VOTES births confirmed by the child's own record with pid ==
 *   `exit=` make a caller 'host';
 * - NESTED_VOTES children that matched none of the caller's open fork
 *   births make it 'nested', which always wins over 'host' votes (a
 *   process never leaves a pid namespace, and 'nested' is the safe side).
 *
 * A child made without CLONE_NEWPID inherits its creator's status until it
 * has evidence of its own (`nsFrom`). The fields live on the entry
 * (TableEntry), not in an object of their own: one more allocation per
 * process would cost memory on a table of a million.
 */

import type { TableEntry } from './process-entry.js';

/** A process's pid namespace as far as the stream shows it. */
export type PidNamespace = 'host' | 'nested' | 'unknown';

/**
 * `exit=` values below this never name a process and never count as
 * evidence of the host namespace. The kernel hands out pids below
 * RESERVED_PIDS (300) only until the first wrap, in every namespace: on the
 * host they belong to boot-time processes (init, kernel threads), while in a
 * pid namespace they are the common case (`exit=2`). A value below it is
 * instead taken as evidence that the caller is 'nested' (the safe side).
 */
export const MIN_NAMED_PID = 300;

/** Confirmed births (child's pid == `exit=`) needed before a caller counts as 'host'. */
const HOST_VOTES = 2;
/** Children matching none of the caller's open fork births before it counts as 'nested'. */
const NESTED_VOTES = 2;

/**
 * A child's pid namespace as its creation record shows it: the caller's
 * ('inherit': fork, vfork, clone without CLONE_NEWPID), 'nested' (clone
 * with CLONE_NEWPID), or 'unknown' (clone3, whose flags the record does
 * not show).
 */
export type ChildNamespace = 'inherit' | 'nested' | 'unknown';

/**
 * The process's pid namespace: its own evidence, else its creator's (for
 * a child made without CLONE_NEWPID by fork, vfork or clone), else
 * 'unknown'.
 */
export function pidNamespaceOf<L>(entry: TableEntry<L>): PidNamespace {
  let p = entry;
  while (p.pidns === 'unknown' && p.nsFrom !== null) p = p.nsFrom;
  const ns = p.pidns;
  if (p !== entry && ns !== 'unknown') {
    // Cache it (and let go of the chain): 'nested' is inherited for good.
    entry.pidns = ns;
    entry.pidnsFixed = ns === 'nested';
    entry.nsFrom = null;
  }
  return ns;
}

/** What the seeder read in /proc: fixed for good (unless fixed already). */
export function fixPidNamespace<L>(entry: TableEntry<L>, ns: 'host' | 'nested'): void {
  if (entry.pidnsFixed) return;
  entry.pidns = ns;
  entry.pidnsFixed = true;
  entry.nsFrom = null;
}

/** Sets a new child's pid-namespace link from the birth that made it. */
export function inheritPidNamespace<L>(
  child: TableEntry<L>,
  caller: TableEntry<L>,
  childNs: ChildNamespace,
): void {
  if (child.pidnsFixed) return;
  if (childNs === 'nested') {
    child.pidns = 'nested';
    child.pidnsFixed = true;
    child.nsFrom = null;
  } else if (childNs === 'inherit' && child.pidns === 'unknown' && caller !== child) {
    child.nsFrom = caller;
  }
}

/** Evidence that `caller` is in a pid namespace (never taken back). */
export function markNested<L>(caller: TableEntry<L>): void {
  if (caller.pidnsFixed) return;
  caller.pidns = 'nested';
  caller.pidnsFixed = true;
  caller.nsFrom = null;
}

/** A birth of `caller` confirmed by the child's own record with pid == `exit=`. */
export function voteHost<L>(caller: TableEntry<L>, pid: number): void {
  if (pid < MIN_NAMED_PID || caller.pidnsFixed) return;
  if (++caller.hostVotes >= HOST_VOTES && caller.pidns === 'unknown') {
    caller.pidns = 'host';
    caller.nsFrom = null;
  }
}

/**
 * A child of `caller` that matched none of its open fork births: evidence
 * that its `exit=` values are namespace-relative (NESTED_VOTES of them
 * make it 'nested').
 */
export function voteNested<L>(caller: TableEntry<L>): void {
  if (++caller.nestedVotes >= NESTED_VOTES) markNested(caller);
}

/**
 * The fork record of a child already counted by voteNested came late (a
 * vfork race): that child did match a birth after all, so its vote is
 * taken back.
 */
export function retractNestedVote<L>(caller: TableEntry<L>): void {
  if (caller.nestedVotes > 0) caller.nestedVotes--;
}
