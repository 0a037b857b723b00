import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isIssue, parseLine } from './parser.js';
import type { AuditRecord } from './record.js';

function rec(line: string): AuditRecord {
  const r = parseLine(line, 1);
  if (isIssue(r)) throw new Error(r.message);
  return r;
}

test('field lookups by bytes agree with the split fields', () => {
  const a = rec(
    'type=SYSCALL msg=audit(1.000:1): pid=12 ppid=-3 comm="a b" exit=-13 big=12345678901 x=1a empty=',
  );
  const b = rec('type=SYSCALL msg=audit(1.000:2): pid=99 other=1');
  // Interleaved lookups on two records must not mix up their shared index.
  assert.equal(a.field('comm'), '"a b"');
  assert.equal(b.field('pid'), '99');
  assert.equal(a.fieldInt('pid'), 12);
  assert.equal(a.fieldInt('ppid'), -3);
  assert.equal(a.fieldInt('exit'), -13);
  assert.equal(a.fieldInt('big'), null);
  assert.equal(a.fieldInt('x'), null);
  assert.equal(a.fieldInt('empty'), null);
  assert.equal(a.fieldInt('missing'), null);
  assert.equal(b.fieldInt('pid'), 99);
  for (const name of a.names) assert.equal(a.field(name), a.values[a.names.indexOf(name)]);
  assert.equal(a.field('missing'), undefined);
});

test('field lookups find the first field of a repeated name, whatever earlier records held', () => {
  const a = rec('type=SYSCALL msg=audit(1.000:1): x=1 pid=5');
  const b = rec('type=SYSCALL msg=audit(1.000:2): pid=6 pid=7');
  assert.equal(a.fieldInt('pid'), 5);
  assert.equal(b.fieldInt('pid'), 6);
  assert.equal(b.field('pid'), '6');
  // Values repeat across records (a decoded value is reused): each record still gets its own.
  const c = rec('type=SYSCALL msg=audit(1.000:3): arch=c000003e success=yes');
  const d = rec('type=SYSCALL msg=audit(1.000:4): arch=c000003e success=no');
  assert.deepEqual([c.field('arch'), c.field('success')], ['c000003e', 'yes']);
  assert.deepEqual([d.field('arch'), d.field('success')], ['c000003e', 'no']);
  assert.equal(c.field('success'), 'yes');
});
