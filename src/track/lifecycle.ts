/**
 * The process-lifecycle syscalls the tracker acts on, per audit arch.
 *
 * A private table rather than the full syscall map: the tracker only needs
 * to know which records create, replace or end a process, and it must not
 * guess for arches it does not know (an unknown arch is simply "other").
 */

/** What a SYSCALL record means for the process table. */
export type LifecycleKind = 'clone' | 'clone3' | 'fork' | 'execve' | 'exit-group' | 'other';

// Audit arch values (AUDIT_ARCH_*) as the kernel prints them in `arch=`.
const X86_64 = 'c000003e';
const I386 = '40000003';
const AARCH64 = 'c00000b7';

const TABLES: ReadonlyMap<string, ReadonlyMap<number, LifecycleKind>> = new Map([
  [
    X86_64,
    new Map<number, LifecycleKind>([
      [56, 'clone'],
      [57, 'fork'],
      [58, 'fork'], // vfork
      [59, 'execve'],
      [322, 'execve'], // execveat
      [231, 'exit-group'],
      [435, 'clone3'],
    ]),
  ],
  [
    I386,
    new Map<number, LifecycleKind>([
      [2, 'fork'],
      [120, 'clone'],
      [190, 'fork'], // vfork
      [11, 'execve'],
      [358, 'execve'], // execveat
      [252, 'exit-group'],
      [435, 'clone3'],
    ]),
  ],
  [
    AARCH64,
    new Map<number, LifecycleKind>([
      [220, 'clone'],
      [221, 'execve'],
      [281, 'execve'], // execveat
      [94, 'exit-group'],
      [435, 'clone3'],
    ]),
  ],
]);

/**
 * Classifies a syscall by its record's raw `arch=` hex and `syscall=`
 * number. Plain `exit` (the thread exit) is deliberately "other": only
 * exit_group ends a whole process, and the record cannot tell whether the
 * exiting thread was the last one.
 */
export function lifecycleKind(archRaw: string, nr: number): LifecycleKind {
  return TABLES.get(archRaw.toLowerCase())?.get(nr) ?? 'other';
}

const CLONE_THREAD = 0x10000;
const CLONE_PARENT = 0x8000;
const CLONE_NEWPID = 0x20000000;

/** The low 32 bits of a clone flags word written in hex (`a0=`), or null. */
function lowFlags(raw: string): number | null {
  if (!/^[0-9a-fA-F]{1,16}$/.test(raw)) return null;
  return Number.parseInt(raw.slice(-8), 16);
}

/**
 * True when a clone(2) `a0=` flags word creates a thread (CLONE_THREAD).
 * Unparsable flags count as a thread: the tracker then records no birth,
 * which is the safe side (the child's own records still register it).
 */
export function isThreadClone(raw: string): boolean {
  const flags = lowFlags(raw);
  return flags === null || (flags & CLONE_THREAD) !== 0;
}

/** True when a clone(2) flags word has CLONE_PARENT (the child is the caller's sibling). */
export function isParentClone(raw: string): boolean {
  const flags = lowFlags(raw);
  return flags !== null && (flags & CLONE_PARENT) !== 0;
}

/**
 * True when a clone(2) flags word has CLONE_NEWPID: the child is the init
 * of a new pid namespace, so it and all its descendants are 'nested'.
 */
export function isNewPidClone(raw: string): boolean {
  const flags = lowFlags(raw);
  return flags !== null && (flags & CLONE_NEWPID) !== 0;
}
