/**
 * The flags argument of clone(2), as auparse formats it.
 *
 * clone's first argument (`a0=` of the SYSCALL record on x86_64, i386 and aarch64) holds CLONE_*
 * flags in its upper bits and, in its low byte (CSIGNAL), the signal the child sends its parent
 * when it exits. auparse prints the set flags in ascending bit order, then the signal name, joined
 * by `|`: `1200011` is `CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD`.
 *
 * clone3(2) is different: its a0 is a pointer to `struct clone_args`, so the audit record does not
 * carry its flags at all, and nothing here applies to it.
 */
import { ContidError } from '../errors.js';
import { CLONE_FLAGS, SIGNAL_NAMES } from './clone-flags-generated.js';
import { parseHexLow32 } from './hex-number.js';

/** The low byte of clone's flags: the exit signal, not flags. */
const CSIGNAL = 0xff;

// The flags clone() can carry: above CSIGNAL and within 32 bits. The kernel takes clone()'s flags
// from lower_32_bits(a0), so CLONE_CLEAR_SIGHAND and CLONE_INTO_CGROUP (bits 32, 33) exist only for
// clone3(); CLONE_NEWTIME (0x80) sits inside CSIGNAL and is likewise clone3/unshare only.
const FLAGS: readonly (readonly [number, string])[] = CLONE_FLAGS.filter(
  ([bit]) => bit > CSIGNAL && bit <= 0x80000000,
);

function flagBit(name: string): number {
  const entry = CLONE_FLAGS.find(([, n]) => n === name);
  if (entry === undefined)
    throw new ContidError(`Cannot find clone flag "${name}" in clone-flags-generated.ts`, 'ERR_INTERNAL');
  return entry[0];
}

/** CLONE_THREAD: the child joins the caller's thread group, so it is a thread, not a process. */
export const CLONE_THREAD: number = flagBit('CLONE_THREAD');

/**
 * The CLONE_* names and exit signal of clone's raw hex flags argument, auparse style:
 * `1200011` gives `CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD`, `11` gives `SIGCHLD`, and a
 * value with no flag and no signal 1..31 gives its hex form with the `0x` prefix (`0` gives `0x0`).
 * Only the low 32 bits count, as for the kernel and for auparse. A value that is not 1 to 16 hex
 * digits is returned unchanged.
 *
 * Where this differs from auparse 3.0.9: the names are the kernel's current ones, so 0x02000000
 * is CLONE_NEWCGROUP (auparse still says CLONE_STOPPED, a flag removed in Linux 2.6.38) and
 * 0x1000 is CLONE_PIDFD (auparse has no name and prints `0x1000` when it is alone); signal 30 is
 * SIGPWR (auparse prints `IGPWR`); and input that is not hex is returned as is rather than read as a
 * hex prefix (auparse turns `zz` into `0x0`). Also note that auparse 3.0.9 applies this formatting
 * to clone's **a2**, not a0 (`ausearch -i` shows `a0=0x1200011` and an interpreted a2); later
 * auparse versions moved it to a0.
 */
export function cloneFlags(raw: string): string {
  // A program clones with the same flags every time: building the names once per value spares a
  // string per fork in the output path.
  const known = formatted.get(raw);
  if (known !== undefined) return known;
  const out = formatCloneFlags(raw);
  if (formatted.size >= FORMATTED_MAX) formatted.clear();
  formatted.set(raw, out);
  return out;
}

/** cloneFlags results by raw value; input-keyed, so bounded (cleared when full). */
const formatted = new Map<string, string>();
const FORMATTED_MAX = 256;

function formatCloneFlags(raw: string): string {
  const value = parseHexLow32(raw);
  if (value < 0) return raw;
  let out = '';
  for (const [bit, name] of FLAGS) {
    // `&` works on int32, so bit 31 tests negative: compare with 0, not with > 0.
    if ((value & bit) !== 0) out = out === '' ? name : `${out}|${name}`;
  }
  const signal = value & CSIGNAL;
  // auparse names only signals 1..31 and drops a low byte outside that range without a word.
  if (signal > 0 && signal < 32) {
    const name = SIGNAL_NAMES[signal] ?? '';
    if (name !== '') out = out === '' ? name : `${out}|${name}`;
  }
  return out === '' ? `0x${value.toString(16)}` : out;
}

/**
 * Whether clone's raw hex flags argument has CLONE_THREAD set, i.e. the new task is a thread of
 * the caller's process. False for a value that is not 1 to 16 hex digits. Meaningless for clone3,
 * whose a0 is a pointer (see above): glibc 2.34 and later create threads with clone3, so a clone3
 * record alone cannot tell a thread from a process.
 */
export function isThreadClone(raw: string): boolean {
  const value = parseHexLow32(raw);
  return value >= 0 && (value & CLONE_THREAD) !== 0;
}
