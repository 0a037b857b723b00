/**
 * The label rules: what a set, adopt or grant must satisfy, as one ordered
 * table. The labeller evaluates it in order and the first rule an attempt
 * breaks decides the errno (the kernel series' errnos); an attempt that
 * breaks none is accepted. docs/labels.md lists the same table, in the
 * same order (src/policy/rules.test.ts keeps the two equal).
 *
 * Every check reads; nothing in the table changes state. The look-up rules
 * are checked on what the table shows before anything changes (a target
 * not seen yet is looked at where its ppid would place it), so a refused
 * request leaves no trace but its CONTAINER_OP. Only an accepted set or
 * adopt places a target, and the one 'placed' rule re-checks what placing
 * it bound.
 *
 * The order is the kernel series' (v11's audit_set_contid(): the value,
 * the caller's permission, the target's children, self and descent, a
 * label already set, uniqueness). contid adds what the kernel did not
 * need: ESRCH once the caller is known to be allowed (the kernel's target
 * is a /proc file that exists), and EAGAIN where a label is not known yet
 * (a restore under way; a target or caller whose parent the stream has not
 * shown). Adopt (the daemon's, from a container's cgroup) and grant (the
 * series' capcontid) take the rows that apply to them, in the same order.
 */

import type { MarkerCaller } from '../marker/format.js';
import type { ProcessEntry } from '../track/process-table.js';
import type { Container } from './contid.js';
import { UNKNOWN } from './contid.js';
import type { ContidErrno } from './errno.js';

/** The operations the rules judge. */
export type LabelOp = 'set' | 'adopt' | 'grant';

/** A process named by a marker, as policy sees it before it changes anything. */
export interface Subject {
  /** The live table entry, or null for a process not in the table. */
  readonly entry: ProcessEntry<Container> | null;
  /** Its parent: the entry's, or the one it would be placed under. */
  readonly parent: ProcessEntry<Container> | null;
  readonly label: Container | null;
  /** Its label is not known yet (its parent has not been seen). */
  readonly provisional: boolean;
  readonly exists: boolean;
}

/**
 * One request as the rules see it: what the labeller looked up, and the
 * questions that cost more than a field read, asked only when a rule
 * needs them.
 */
export interface Attempt {
  readonly op: LabelOp;
  /** The target's pid as the marker names it. */
  readonly pid: number;
  readonly caller: MarkerCaller;
  /** The caller as looked up in the table. */
  readonly by: Subject;
  readonly target: Subject;
  /** set: the value is a decimal u64 other than the unset value; adopt: the chain is a live container's. */
  readonly validValue: boolean;
  /** Labels are being restored after a restart: none is known yet. */
  readonly restoring: boolean;
  /** set: the caller named the owner (`owner=`). */
  readonly namesOwner: boolean;
  /** The caller holds a grant given to its identity (uid, executable, start time). */
  delegated(): boolean;
  /** The target has children (live, or recorded by their creation syscall only). */
  targetHasChildren(): boolean;
  /** The target is (or would be, placed under its parent) a strict descendant of the caller. */
  descendsFromCaller(): boolean;
  /** set: the ID is live among the setter's container's and may not be joined (another owner, or create-only). */
  idTaken(): boolean;
  /** After an accepted look-up: the target's entry as placed in the table (null before). */
  readonly placed: ProcessEntry<Container> | null;
}

/** One rule: the operations it applies to, when it refuses, and the errno and reason it refuses with. */
export interface Rule {
  readonly ops: readonly LabelOp[];
  /** 'look-up': checked before anything changes; 'placed': after an accepted look-up placed the target. */
  readonly stage: 'look-up' | 'placed';
  readonly errno: ContidErrno;
  /** Why the attempt is refused, as a message says it ("the target has children"). */
  readonly reason: string;
  /** True when the attempt breaks the rule. */
  readonly refuses: (a: Attempt) => boolean;
}

/** The rules, in the order they are checked. */
export const RULES: readonly Rule[] = [
  {
    ops: ['set'],
    stage: 'look-up',
    errno: 'EINVAL',
    reason: 'the value is the unset value or not a decimal u64',
    refuses: (a) => !a.validValue,
  },
  {
    ops: ['adopt'],
    stage: 'look-up',
    errno: 'EINVAL',
    reason: 'no live container has that chain',
    refuses: (a) => !a.validValue,
  },
  {
    ops: ['set', 'adopt', 'grant'],
    stage: 'look-up',
    // Labels and grants are not known until a restore is done: try again.
    errno: 'EAGAIN',
    reason: 'labels are being restored after a restart',
    refuses: (a) => a.restoring,
  },
  {
    ops: ['set', 'grant'],
    stage: 'look-up',
    errno: 'EPERM',
    reason: 'the caller is neither privileged nor delegated',
    refuses: (a) => !a.caller.privileged && !a.delegated(),
  },
  {
    ops: ['set'],
    stage: 'look-up',
    // Naming the owner is privileged: a delegated caller could otherwise join any named ID.
    errno: 'EPERM',
    reason: 'only a privileged caller names an owner',
    refuses: (a) => !a.caller.privileged && a.namesOwner,
  },
  {
    ops: ['adopt'],
    stage: 'look-up',
    errno: 'EPERM',
    reason: 'the caller is not privileged',
    refuses: (a) => !a.caller.privileged,
  },
  {
    ops: ['set', 'adopt', 'grant'],
    stage: 'look-up',
    errno: 'ESRCH',
    reason: 'the target does not exist or has exited',
    refuses: (a) => !a.target.exists,
  },
  {
    ops: ['set'],
    stage: 'look-up',
    // No EBUSY for adopt: children the target forked before are checked (and adopted) on their own.
    errno: 'EBUSY',
    reason: 'the target has children',
    refuses: (a) => a.targetHasChildren(),
  },
  {
    ops: ['set', 'grant'],
    stage: 'look-up',
    errno: 'EXDEV',
    reason: 'the target is the caller',
    refuses: (a) => a.pid === a.caller.pid || (a.target.entry !== null && a.target.entry === a.by.entry),
  },
  {
    ops: ['set', 'grant'],
    stage: 'look-up',
    errno: 'EXDEV',
    reason: 'a delegated caller asked for a process that does not descend from it',
    refuses: (a) => !a.caller.privileged && !a.descendsFromCaller(),
  },
  {
    ops: ['set', 'adopt'],
    stage: 'look-up',
    errno: 'EAGAIN',
    reason: "the target's container is not known yet (its parent has not been seen)",
    refuses: (a) => a.target.provisional,
  },
  {
    ops: ['set'],
    stage: 'look-up',
    // A caller the table has never seen counts as on the host, as before
    // markers named callers; one it knows must have a known container.
    errno: 'EAGAIN',
    reason: "the caller's container is not known yet",
    refuses: (a) => a.by.entry !== null && (a.by.provisional || a.by.label === UNKNOWN),
  },
  {
    ops: ['set'],
    stage: 'look-up',
    errno: 'EEXIST',
    reason: 'the target already has a contid and this is not a nesting set',
    refuses: (a) => a.target.label !== null && !(a.by.label !== null && a.target.label === a.by.label),
  },
  {
    ops: ['adopt'],
    stage: 'look-up',
    // An unknown container is what adoption resolves: the cgroup is evidence.
    errno: 'EEXIST',
    reason: 'the target already has a contid',
    refuses: (a) => a.target.label !== null && a.target.label !== UNKNOWN,
  },
  {
    ops: ['set'],
    stage: 'look-up',
    // Unique among the IDs of one parent: the setter's own container.
    errno: 'ENOTUNIQ',
    reason: 'the ID is live and owned by another orchestrator, or live at all for a create-only set',
    refuses: (a) => a.idTaken(),
  },
  {
    ops: ['set', 'adopt'],
    stage: 'placed',
    // Placing a target not seen yet can bind evidence the look-up did not
    // see (an orphan's birth), and with it a label.
    errno: 'EEXIST',
    reason: 'placing the target gave it a contid',
    refuses: (a) => a.placed !== null && a.placed.label !== a.target.label,
  },
];

/** The first rule of `stage` that `attempt` breaks, or null when it breaks none. */
export function refusal(attempt: Attempt, stage: Rule['stage']): Rule | null {
  for (const rule of RULES) {
    if (rule.stage === stage && rule.ops.includes(attempt.op) && rule.refuses(attempt)) return rule;
  }
  return null;
}
