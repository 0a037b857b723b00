import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { ProcessTable } from './process-table.js';
import { isParentClone, isThreadClone, lifecycleKind } from './lifecycle.js';

void describe('process table', () => {
  void it('seed loads a /proc snapshot with parents linked, whatever the order', () => {
    const t = new ProcessTable<string>();
    t.seed([
      { pid: 300, ppid: 200, exe: '/bin/sh', startTime: 5 },
      { pid: 1, ppid: 0, exe: '/sbin/init' },
      { pid: 200, ppid: 1 },
    ]);
    const sh = t.get(300)!;
    assert.equal(sh.parent?.pid, 200);
    assert.equal(sh.parent?.parent?.pid, 1);
    assert.equal(sh.startTime, 5);
    assert.ok(t.isDescendant(sh, t.get(1)!));
    assert.ok(t.hasChildren(t.get(200)!));
  });

  void it('a snapshot that arrives after records of its processes adds only what the table lacks', () => {
    const t = new ProcessTable<string>();
    const early = t.observe(400, 300).entry; // seen before the snapshot, same process
    const newer = t.observe(401, 1).entry; // a later process with a pid the snapshot names
    t.seed([
      { pid: 300, ppid: 1, startTime: 7 },
      { pid: 400, ppid: 300, startTime: 8 },
      { pid: 401, ppid: 300, startTime: 9 },
    ]);
    assert.equal(t.get(400), early, 'the same process');
    assert.equal(early.startTime, 8, 'learns its start time');
    assert.equal(t.get(401), newer, 'left alone: it is not the process of the snapshot');
    assert.equal(newer.startTime, null);
    assert.equal(t.get(300)?.startTime, 7);
    assert.equal(early.parent, t.get(300), 'and its parent, now known');
    assert.equal(newer.parent, null);
  });

  void it('an exited ancestor of a live process is retained, and let go when no longer needed', () => {
    const t = new ProcessTable<string>({ deadTtlMs: 10 });
    const a = t.observe(10, 1).entry;
    const b = t.observe(11, 10).entry;
    t.exit(a);
    t.advance(100);
    assert.equal(t.latest(10), undefined, 'no longer findable by pid');
    assert.equal(t.stats().retained, 1, 'but kept as an ancestor');
    assert.equal(b.parent, a);
    t.exit(b);
    t.advance(200);
    assert.deepEqual([t.stats().retained, t.stats().processes, t.stats().expired], [0, 0, 2]);
  });

  void it('an expired process and the births it recorded become garbage', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const t = new ProcessTable<string>({ deadTtlMs: 10 });
    const refs = ((): WeakRef<object>[] => {
      const parent = t.observe(1000, 1).entry;
      t.recordBirth(parent, 1001, { kind: 'fork' });
      const child = t.observe(1001, 1000).entry;
      assert.equal(t.stats().birthsMatched, 1);
      t.exit(child);
      t.exit(parent);
      return [new WeakRef(parent), new WeakRef(child)];
    })();
    // Later processes come and go; the first two expire.
    for (let pid = 2000; pid < 2010; pid++) {
      t.advance(100 * (pid - 1999));
      const e = t.observe(pid, 1).entry;
      t.recordBirth(e, pid + 100, { kind: 'fork' });
      t.observe(pid + 100, pid);
    }
    assert.equal(t.latest(1000), undefined);
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    assert.deepEqual(
      refs.map((r) => r.deref()),
      [undefined, undefined],
    );
  });

  void it('generations grow on pid reuse and parents are entries, not pids', () => {
    const labels: string[] = [];
    const t = new ProcessTable<string>({
      hooks: { retain: (l) => labels.push(`+${l}`), release: (l) => labels.push(`-${l}`) },
    });
    const p = t.observe(10, 1).entry;
    t.relabel(p, 'x');
    const c = t.observe(11, 10).entry;
    assert.equal(c.label, 'x');
    t.exit(c);
    const c2 = t.observe(11, 1).entry;
    assert.ok(c2.generation > c.generation);
    assert.equal(c2.label, null);
    assert.deepEqual(labels, ['+x', '+x', '-x']);
  });

  void it('a birth claimed by a host pid binds by exact pid among several open births', () => {
    const t = new ProcessTable<string>();
    const p = t.observe(10, 1).entry;
    t.recordBirth(p, 20, { kind: 'fork' });
    t.relabel(p, 'late'); // (the policy would refuse this: busy; the table just records)
    t.recordBirth(p, 21, { kind: 'fork' });
    assert.equal(t.observe(21, 10).entry.label, 'late');
    assert.equal(t.observe(20, 10).entry.label, null);
    assert.equal(t.stats().birthsMatched, 2);
  });
});

void describe('lifecycle syscalls', () => {
  const cases: [string, number, string][] = [
    ['c000003e', 56, 'clone'],
    ['c000003e', 57, 'fork'],
    ['c000003e', 58, 'fork'],
    ['c000003e', 59, 'execve'],
    ['c000003e', 322, 'execve'],
    ['c000003e', 231, 'exit-group'],
    ['c000003e', 60, 'other'],
    ['c000003e', 435, 'clone3'],
    ['40000003', 120, 'clone'],
    ['40000003', 190, 'fork'],
    ['40000003', 252, 'exit-group'],
    ['c00000b7', 220, 'clone'],
    ['c00000b7', 221, 'execve'],
    ['c00000b7', 94, 'exit-group'],
    ['deadbeef', 56, 'other'],
  ];
  for (const [arch, nr, kind] of cases) {
    void it(`arch ${arch} syscall ${nr} is ${kind}`, () => {
      assert.equal(lifecycleKind(arch, nr), kind);
    });
  }

  void it('reads CLONE_THREAD and CLONE_PARENT from a0', () => {
    assert.equal(isThreadClone('1200011'), false);
    assert.equal(isThreadClone('50f00'), true);
    assert.equal(isThreadClone('zz'), true, 'unparsable flags: treated as a thread (no birth)');
    assert.equal(isParentClone('8011'), true);
    assert.equal(isParentClone('6c020011'), false);
  });
});
