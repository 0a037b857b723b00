/**
 * The process-lifecycle syscalls the tracker acts on, per audit arch.
 *
 * A private table rather than the full syscall map: the tracker only needs
 * to know which records create, replace or end a process, and it must not
 * guess for arches it does not know (an unknown arch is simply "other").
 */
import { hexDigitValue } from '../bytes.js';

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
  // The kernel writes arch in lower case: try it as it is before making a
  // lower-cased copy (a string per record otherwise).
  return (TABLES.get(archRaw) ?? TABLES.get(archRaw.toLowerCase()))?.get(nr) ?? 'other';
}

/**
 * The three arches' tables by `arch=` read as a number (the hex is 8 digits
 * in either case), each as an array indexed by syscall number: this runs
 * for every SYSCALL record, and arch codes are past the small-integer
 * range, where a Map would hash a heap number.
 */
const KINDS_BY_CODE: readonly { readonly code: number; readonly kinds: readonly LifecycleKind[] }[] = [
  ...TABLES,
].map(([arch, table]) => {
  const kinds = new Array<LifecycleKind>(Math.max(...table.keys()) + 1).fill('other');
  for (const [nr, kind] of table) kinds[nr] = kind;
  return { code: parseInt(arch, 16), kinds };
});

/**
 * lifecycleKind for an `arch=` value given as bytes `src[from..to)`: the
 * same answer, without making a string of it.
 */
export function lifecycleKindOfBytes(src: Uint8Array, from: number, to: number, nr: number): LifecycleKind {
  if (to - from !== 8) return 'other';
  let code = 0;
  for (let i = from; i < to; i++) {
    const c = src[i]!;
    const d = hexDigitValue(c);
    if (d < 0) return 'other';
    code = code * 16 + d;
  }
  for (const { code: known, kinds } of KINDS_BY_CODE) {
    if (known === code) return nr >= 0 && nr < kinds.length ? kinds[nr]! : 'other';
  }
  return 'other';
}

const CLONE_THREAD = 0x10000;
const CLONE_PARENT = 0x8000;
const CLONE_NEWPID = 0x20000000;

/** The low 32 bits of a clone flags word written in hex (`a0=`), or null. */
export function cloneFlagsWord(raw: string): number | null {
  return /^[0-9A-Fa-f]{1,16}$/.test(raw)
    ? cloneFlagsOfBytes(Buffer.from(raw, 'latin1'), 0, raw.length)
    : null;
}

/** cloneFlagsWord of the bytes `src[from..to)`, without making a string of them. */
export function cloneFlagsOfBytes(src: Uint8Array, from: number, to: number): number | null {
  if (to - from < 1 || to - from > 16) return null;
  let v = 0;
  for (let i = from; i < to; i++) {
    const d = hexDigitValue(src[i]!);
    if (d < 0) return null;
    // Only the last eight digits count; the product stays exact below 2^53.
    v = (v % 0x10000000) * 16 + d;
  }
  return v;
}

/** Whether a clone flags word (from cloneFlagsWord) creates a thread; null counts as one, see isThreadClone. */
export function threadFlag(flags: number | null): boolean {
  return flags === null || (flags & CLONE_THREAD) !== 0;
}

/** Whether a clone flags word has CLONE_PARENT. */
export function parentFlag(flags: number | null): boolean {
  return flags !== null && (flags & CLONE_PARENT) !== 0;
}

/** Whether a clone flags word has CLONE_NEWPID. */
export function newPidFlag(flags: number | null): boolean {
  return flags !== null && (flags & CLONE_NEWPID) !== 0;
}

/**
 * True when a clone(2) `a0=` flags word creates a thread (CLONE_THREAD).
 * Unparsable flags count as a thread: the tracker then records no birth,
 * which is the safe side (the child's own records still register it).
 */
export function isThreadClone(raw: string): boolean {
  return threadFlag(cloneFlagsWord(raw));
}

/** True when a clone(2) flags word has CLONE_PARENT (the child is the caller's sibling). */
export function isParentClone(raw: string): boolean {
  return parentFlag(cloneFlagsWord(raw));
}

/**
 * True when a clone(2) flags word has CLONE_NEWPID: the child is the init
 * of a new pid namespace, so it and all its descendants are 'nested'.
 */
export function isNewPidClone(raw: string): boolean {
  return newPidFlag(cloneFlagsWord(raw));
}
