import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import type { MarkerCaller } from '../marker/format.js';
import { ProcessTable } from '../track/process-table.js';
import { UNKNOWN, type Container } from './contid.js';
import { refusal, RULES, type Attempt, type LabelOp, type Subject } from './rules.js';

const docs = readFileSync(new URL('../../../docs/labels.md', import.meta.url), 'utf8');

/** The rows of docs/labels.md's rule table: operations (and stage), reason, errno. */
function documentedRules(): { ops: string; reason: string; errno: string }[] {
  const rows = docs
    .split('\n')
    .filter((l) => /^\| \d+ +\|/.test(l))
    .map((l) => l.split('|').map((c) => c.trim()));
  return rows.map((c) => ({ ops: c[3] ?? '', reason: c[4] ?? '', errno: (c[5] ?? '').replace(/`/g, '') }));
}

const NOBODY: Subject = { entry: null, parent: null, label: null, provisional: false, exists: false };
const caller: MarkerCaller = { pid: 10, uid: 1000, auid: 1000, exe: '/bin/x', privileged: false };

/** An attempt that breaks every rule that can be broken. */
function breaksAll(op: LabelOp): Attempt {
  return {
    op,
    pid: caller.pid,
    caller,
    by: NOBODY,
    target: { ...NOBODY, provisional: true },
    validValue: false,
    restoring: true,
    namesOwner: true,
    delegated: () => false,
    targetHasChildren: () => true,
    descendsFromCaller: () => false,
    idTaken: () => true,
    placed: null,
  };
}

void describe('label rules', () => {
  void it('docs/labels.md lists the rule table as src/policy/rules.ts checks it, row for row', () => {
    const expected = RULES.map((r) => ({
      ops: r.ops.join(', ') + (r.stage === 'placed' ? ' (placed)' : ''),
      reason: r.reason,
      errno: r.errno,
    }));
    assert.deepEqual(documentedRules(), expected);
  });

  void it('the first rule of the operation that refuses decides', () => {
    // Breaking everything: each operation gets the first row that names it.
    assert.equal(refusal(breaksAll('set'), 'look-up')?.reason, RULES[0]!.reason);
    assert.equal(refusal(breaksAll('adopt'), 'look-up')?.reason, 'no live container has that chain');
    assert.equal(refusal(breaksAll('grant'), 'look-up')?.errno, 'EAGAIN');
    // Past the permission rows, a delegated caller's grant meets ESRCH before EXDEV.
    const grant = { ...breaksAll('grant'), restoring: false, delegated: () => true };
    assert.equal(refusal(grant, 'look-up')?.errno, 'ESRCH');
  });

  void it('placed rules are checked only after placing, and look-up rules only before', () => {
    // A target that looked unknown-labelled, placed unset: the placing changed its label.
    const a: Attempt = {
      ...breaksAll('adopt'),
      target: { ...NOBODY, exists: true, label: UNKNOWN },
      validValue: true,
      restoring: false,
      caller: { ...caller, privileged: true },
    };
    assert.equal(refusal(a, 'look-up'), null, 'an unknown target may be adopted');
    assert.equal(refusal(a, 'placed'), null, 'nothing placed yet');
    const placed = new ProcessTable<Container>().observe(100, 1).entry;
    assert.equal(refusal({ ...a, placed }, 'placed')?.errno, 'EEXIST');
    assert.equal(refusal({ ...a, target: { ...a.target, label: null }, placed }, 'placed'), null);
  });
});
