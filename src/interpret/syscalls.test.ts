import assert from 'node:assert/strict';
import { test } from 'node:test';
import { syscallName } from './syscalls.js';

const X86_64 = 'c000003e';
const I386 = '40000003';
const AARCH64 = 'c00000b7';

// Expected names were checked with `ausyscall <arch> <nr>` (auditd 3.0.9); undefined where it says
// "Unknown syscall".
const CASES: readonly (readonly [string, number, string | undefined])[] = [
  [X86_64, 0, 'read'],
  [X86_64, 56, 'clone'],
  [X86_64, 57, 'fork'],
  [X86_64, 58, 'vfork'],
  [X86_64, 59, 'execve'],
  [X86_64, 60, 'exit'],
  [X86_64, 101, 'ptrace'],
  [X86_64, 231, 'exit_group'],
  [X86_64, 272, 'unshare'],
  [X86_64, 308, 'setns'],
  [X86_64, 334, 'rseq'],
  [X86_64, 335, undefined],
  [X86_64, 423, undefined],
  [X86_64, 424, 'pidfd_send_signal'],
  [X86_64, 435, 'clone3'],
  [X86_64, 450, 'set_mempolicy_home_node'],
  [X86_64, 451, undefined],
  [I386, 0, 'restart_syscall'],
  [I386, 1, 'exit'],
  [I386, 2, 'fork'],
  [I386, 11, 'execve'],
  [I386, 59, 'oldolduname'],
  [I386, 102, 'socketcall'],
  [I386, 120, 'clone'],
  [I386, 190, 'vfork'],
  [I386, 222, undefined],
  [I386, 252, 'exit_group'],
  [I386, 285, undefined],
  [I386, 435, 'clone3'],
  [I386, 450, 'set_mempolicy_home_node'],
  [AARCH64, 0, 'io_setup'],
  [AARCH64, 59, 'pipe2'],
  [AARCH64, 93, 'exit'],
  [AARCH64, 94, 'exit_group'],
  [AARCH64, 97, 'unshare'],
  [AARCH64, 220, 'clone'],
  [AARCH64, 221, 'execve'],
  [AARCH64, 244, undefined],
  [AARCH64, 260, 'wait4'],
  [AARCH64, 268, 'setns'],
  [AARCH64, 295, undefined],
  [AARCH64, 435, 'clone3'],
  [AARCH64, 450, 'set_mempolicy_home_node'],
];

void test('syscallName gives ausyscall names per architecture', () => {
  for (const [arch, nr, expected] of CASES) assert.equal(syscallName(arch, nr), expected, `${arch} ${nr}`);
});

void test('syscallName reads the arch value in either case', () => {
  assert.equal(syscallName('C000003E', 59), 'execve');
  assert.equal(syscallName('C00000B7', 221), 'execve');
});

void test('syscallName has no table for other architectures', () => {
  // s390x, ppc64le, arm, riscv64 and a value that is no architecture at all.
  for (const arch of ['80000016', 'c0000015', '40000028', 'c00000f3', '0', '', 'x86_64']) {
    assert.equal(syscallName(arch, 1), undefined, arch);
  }
});

void test('syscallName returns undefined for numbers that index nothing', () => {
  for (const nr of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 32, 0x40000000 + 59]) {
    assert.equal(syscallName(X86_64, nr), undefined, String(nr));
  }
});
