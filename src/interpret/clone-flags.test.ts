import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLONE_THREAD, cloneFlags, isThreadClone } from './clone-flags.js';

// Expected values were checked against auparse 3.0.9 (python3-audit), which formats clone flags in
// a SYSCALL record's a2 field (see cloneFlags), except where a comment says otherwise.
const CASES: readonly (readonly [string, string])[] = [
  // fork() and posix_spawn through glibc's clone
  ['1200011', 'CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD'],
  ['11', 'SIGCHLD'],
  // pthread_create through clone
  [
    '3d0f00',
    'CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|' +
      'CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID',
  ],
  // vfork() through clone
  ['4111', 'CLONE_VM|CLONE_VFORK|SIGCHLD'],
  ['10000', 'CLONE_THREAD'],
  ['80000000', 'CLONE_IO'],
  ['6c020011', 'CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWPID|CLONE_NEWNET|SIGCHLD'],
  ['AbC', 'CLONE_FS|CLONE_SIGHAND'],
  ['1', 'SIGHUP'],
  ['10', 'SIGSTKFLT'],
  ['1f', 'SIGSYS'],
  // No flag and no signal 1..31: the value in hex.
  ['0', '0x0'],
  ['20', '0x20'],
  ['22', '0x22'],
  ['80', '0x80'],
  // A low byte outside 1..31 is dropped when there are flags.
  ['1000080', 'CLONE_CHILD_SETTID'],
  // Only the low 32 bits count.
  ['100000000', '0x0'],
  ['300000011', 'SIGCHLD'],
  ['ffffffff00000011', 'SIGCHLD'],
  // Kernel names where auparse 3.0.9 differs: it prints CLONE_STOPPED, `0x1000` and `IGPWR`.
  ['2000000', 'CLONE_NEWCGROUP'],
  ['1000', 'CLONE_PIDFD'],
  ['1e', 'SIGPWR'],
  [
    '7e020000',
    'CLONE_NEWNS|CLONE_NEWCGROUP|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET',
  ],
  [
    'ffffffff',
    'CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_PIDFD|CLONE_PTRACE|CLONE_VFORK|CLONE_PARENT|' +
      'CLONE_THREAD|CLONE_NEWNS|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID|' +
      'CLONE_DETACHED|CLONE_UNTRACED|CLONE_CHILD_SETTID|CLONE_NEWCGROUP|CLONE_NEWUTS|CLONE_NEWIPC|' +
      'CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET|CLONE_IO',
  ],
  // Not hex: returned as is (auparse reads a hex prefix, or prints a conversion error).
  ['zz', 'zz'],
  ['1200011zz', '1200011zz'],
  ['', ''],
  ['12345678901234567', '12345678901234567'],
  ['0x11', '0x11'],
];

void test('cloneFlags formats flags then the exit signal, auparse style', () => {
  for (const [raw, expected] of CASES) assert.equal(cloneFlags(raw), expected, raw);
});

void test('CLONE_THREAD is the kernel value', () => {
  assert.equal(CLONE_THREAD, 0x10000);
});

const THREADS: readonly (readonly [string, boolean])[] = [
  ['3d0f00', true],
  ['10000', true],
  ['FFFFFFFF', true],
  ['1200011', false],
  ['11', false],
  ['0', false],
  ['100010000', true],
  ['1000000000', false],
  ['zz', false],
  ['', false],
];

void test('isThreadClone tests CLONE_THREAD in the low 32 bits', () => {
  for (const [raw, expected] of THREADS) assert.equal(isThreadClone(raw), expected, raw);
});
