import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isIssue, parseLine } from '../parse/parser.js';
import type { AuditRecord } from '../parse/record.js';
import { prngInt } from '../../test/support/prng.js';
import { cloneFlagsWord, lifecycleKind } from './lifecycle.js';
import { SyscallFacts } from './syscall-facts.js';

function parsed(body: string): AuditRecord {
  const r = parseLine(`type=SYSCALL msg=audit(1.000:1): ${body}`, 1);
  if (isIssue(r)) throw new Error(r.message);
  return r;
}

function facts(r: AuditRecord): Record<string, unknown> {
  const f = new SyscallFacts();
  f.read(r);
  // comm and exe are asked for after the core fields, as the labeller does.
  return {
    pid: f.pid,
    ppid: f.ppid,
    kind: f.kind,
    success: f.success,
    exit: f.exit,
    cloneFlags: f.cloneFlags,
    comm: f.comm(),
    exe: f.exe(),
  };
}

/**
 * The facts as the general lookup reads them: from a record's fields split
 * into names and values, the first of each name, integers of at most ten
 * digits. The reference that reading the bytes must agree with.
 */
function general(r: AuditRecord): Record<string, unknown> {
  const value = (name: string): string | undefined => {
    const i = r.names.indexOf(name);
    return i < 0 ? undefined : r.values[i];
  };
  const int = (name: string): number | null => {
    const v = value(name);
    return v === undefined || !/^-?[0-9]{1,10}$/.test(v) ? null : Number(v);
  };
  const arch = value('arch');
  const nr = int('syscall');
  const kind = arch === undefined || nr === null ? null : lifecycleKind(arch, nr);
  return {
    pid: int('pid'),
    ppid: int('ppid'),
    kind,
    success: value('success') === 'yes',
    exit: int('exit'),
    cloneFlags: kind === 'clone' ? cloneFlagsWord(value('a0') ?? '') : null,
    comm: value('comm'),
    exe: value('exe'),
  };
}

/** Asserts that SyscallFacts reads the record of `body` as the general lookup does. */
function agrees(body: string, message = body): void {
  // Two records of one text: splitting a record's fields changes how it looks them up.
  assert.deepEqual(facts(parsed(body)), general(parsed(body)), message);
}

test('syscall facts of a kernel record', () => {
  const r = parsed(
    'arch=c000003e syscall=56 success=yes exit=4242 a0=1200011 a1=0 a2=0 a3=7f items=0 ppid=10 pid=11 ' +
      'auid=4242 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=3 comm="bash" ' +
      'exe="/usr/bin/bash" subj=unconfined key="contid-bench"',
  );
  assert.deepEqual(facts(r), {
    pid: 11,
    ppid: 10,
    kind: 'clone',
    success: true,
    exit: 4242,
    cloneFlags: 0x1200011,
    comm: '"bash"',
    exe: '"/usr/bin/bash"',
  });
  assert.deepEqual(general(r), facts(r));
});

test('syscall facts agree with the general lookup on odd records', () => {
  const bodies = [
    // Upper-case arch, execve on aarch64, i386 exit_group.
    'arch=C000003E syscall=59 success=yes exit=0 ppid=1 pid=2 comm="sh" exe="/bin/sh"',
    'arch=c00000b7 syscall=221 success=yes exit=0 ppid=1 pid=2 comm=7368 exe="/bin/sh"',
    'arch=40000003 syscall=252 success=yes exit=0 ppid=1 pid=2',
    // Repeated names: the first counts.
    'arch=c000003e syscall=57 success=yes exit=900 pid=5 ppid=4 pid=6 exit=1 comm="a" comm="b"',
    // Quoted values where numbers belong, and values with spaces hiding fields.
    'arch=c000003e syscall=56 success=yes exit="901" a0="1 pid=9" ppid=4 pid=5',
    'arch=c000003e syscall=56 success=yes exit=902 a0=11 ppid=4 pid=5 comm="x y" exe="a b"',
    // Single-quoted and braced values: the general lookup decides.
    'arch=c000003e syscall=56 success=yes exit=903 a0=\'1 pid=9\' ppid=4 pid=5 comm="c"',
    'arch=c000003e syscall=57 success=yes exit=904 ppid=4 pid=5 data={ pid=7 } comm="d"',
    'arch=c000003e syscall=57 success=yes exit=905 ppid=4 pid=5 exe={"/x y"} comm="e"',
    // Words without '=', empty values, unterminated quotes, missing fields.
    'word arch=c000003e syscall= success=no exit=-2 ppid=4 pid=5 comm="unterminated',
    'arch=c000003e syscall=56 success=yes exit=12345678901 a0= ppid=-4 pid=5',
    'arch=abc syscall=56 success=YES exit=1 ppid=4 pid=5',
    'arch=0c000003e syscall=57 success=yes exit=1 ppid=4',
    'pid=5',
    '',
  ];
  for (const body of bodies) agrees(body);
});

test('syscall facts agree with the general lookup on random records', () => {
  const rand = prngInt(12345);
  const names = [
    'arch',
    'syscall',
    'success',
    'exit',
    'a0',
    'ppid',
    'pid',
    'comm',
    'exe',
    'uid',
    'pi',
    'pidx',
  ];
  const values = [
    'c000003e',
    '40000003',
    'c00000b7',
    '56',
    '57',
    '59',
    '231',
    '435',
    'yes',
    'no',
    '-1',
    '1200011',
    '10000',
    '"q"',
    '"with space pid=3"',
    "'single pid=3'",
    '{ brace }',
    '',
    '4294967295',
    '0123',
    '"unterminated',
  ];
  for (let n = 0; n < 3000; n++) {
    const fields: string[] = [];
    const count = 1 + rand(14);
    for (let i = 0; i < count; i++) {
      if (rand(12) === 0) fields.push('loose');
      else fields.push(`${names[rand(names.length)]!}=${values[rand(values.length)]!}`);
    }
    agrees(fields.join(rand(5) === 0 ? '  ' : ' '));
  }
});

test('syscall facts agree with the general lookup on kernel layouts, whole and altered', () => {
  const rand = prngInt(777);
  const kernel = (): string[] => {
    const f = [
      `arch=${['c000003e', '40000003', 'c00000b7'][rand(3)]!}`,
      `syscall=${[56, 57, 59, 231, 435][rand(5)]!}`,
    ];
    if (rand(8) === 0) f.push('per=400000');
    if (rand(4) !== 0)
      f.push(`success=${rand(2) === 0 ? 'yes' : 'no'}`, `exit=${rand(2) === 0 ? rand(100_000) : -rand(40)}`);
    f.push(
      `a0=${rand(2) === 0 ? '1200011' : (0x10000 + rand(1 << 30)).toString(16)}`,
      'a1=0',
      'a2=7ffd',
      'a3=0',
      'items=2',
    );
    f.push(`ppid=${rand(5000)}`, `pid=${rand(5000)}`);
    for (const n of ['auid', 'uid', 'gid', 'euid', 'suid', 'fsuid', 'egid', 'sgid', 'fsgid'])
      f.push(`${n}=${rand(3)}`);
    f.push('tty=(none)', 'ses=4294967295');
    f.push(rand(3) === 0 ? 'comm=6120622063' : `comm="c${rand(9)}"`);
    f.push(rand(3) === 0 ? 'exe=2F612062' : `exe="/usr/bin/e${rand(9)}"`, 'subj=unconfined', 'key=(null)');
    return f;
  };
  const others = [
    'pid=1',
    'ppid=2',
    'exit=3',
    'comm="x"',
    'exe="/y"',
    'a0=10000',
    'loose',
    'items="2"',
    "a1='q'",
    'a2={ b }',
  ];
  for (let n = 0; n < 3000; n++) {
    const f = kernel();
    // Most records stay as the kernel writes them; the rest get one change.
    const change = rand(10);
    const at = rand(f.length);
    if (change === 1) f.splice(at, 1);
    else if (change === 2) f.splice(at, 0, others[rand(others.length)]!);
    else if (change === 3) f[at] = `${f[at]!.split('=')[0]!}="${f[at]!.split('=')[1] ?? ''}"`;
    else if (change === 4 && at + 1 < f.length) [f[at], f[at + 1]] = [f[at + 1]!, f[at]!];
    const body = change === 5 ? f.join(' ').replace(' ', '  ') : f.join(' ');
    agrees(change === 6 ? body.slice(0, rand(body.length)) : body, body);
  }
});

test('one reader reads records one after another', () => {
  const f = new SyscallFacts();
  f.read(parsed('arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=2 comm="a" exe="/a"'));
  assert.equal(f.exe(), '"/a"');
  f.read(parsed('arch=c000003e syscall=231 success=yes exit=0 ppid=3 pid=4'));
  assert.deepEqual([f.pid, f.ppid, f.kind, f.comm(), f.exe()], [4, 3, 'exit-group', undefined, undefined]);
  // A single-quoted value: read through the general lookup, between records read from their bytes.
  f.read(parsed('arch=c000003e syscall=57 success=yes exit=9 a0=\'q\' ppid=5 pid=6 comm="b"'));
  assert.deepEqual([f.pid, f.kind, f.exit, f.comm()], [6, 'fork', 9, '"b"']);
  f.read(parsed('arch=c000003e syscall=57 success=no exit=-11 ppid=7 pid=8 comm="c"'));
  assert.deepEqual([f.pid, f.success, f.exit, f.comm()], [8, false, -11, '"c"']);
});
