// One process incarnation, one identity: what the daemon learns from /proc
// (start times, parents it found for never-seen pids, exits the stream does
// not show) enters the stream as markers, and policy judges every operation
// against the incarnation the daemon named (docs/labels.md, docs/markers.md).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { FORK_FLAGS } from '../track/testing.js';
import { callerAt, ORCH, World } from './testing-world.js';

/** The orchestrator 1000 (child of 1) and its fresh children 1001 and 1002. */
function world(): World {
  const w = new World();
  w.seen(1000, 1);
  for (const child of [1001, 1002]) {
    w.fork(1000, child);
    w.seen(child, 1000);
  }
  return w;
}

void describe('markers the daemon writes from /proc', () => {
  void it('a seed gives a replay the same table as the live daemon: parents, start times', () => {
    const w = new World();
    w.seen(3000, 2000); // seen before the snapshot: its parent is not known yet
    w.marker({
      op: 'seed',
      procs: [
        { pid: 1, ppid: 0, start: 1, pidns: 'host' },
        { pid: 2000, ppid: 1, start: 50, pidns: 'host' },
        { pid: 3000, ppid: 2000, start: 60, pidns: null },
      ],
    });
    const t = w.labeller.table;
    assert.equal(t.get(3000)?.parent, t.get(2000));
    assert.equal(t.get(3000)?.startTime, 60);
    assert.equal(t.pidNamespace(t.get(2000)!), 'host');
    // A set needs the ancestry: 3000 has a parent, so 2000 is busy.
    assert.equal(w.set(2000, '5').errno, 'EBUSY');
  });

  void it('a proc answer places a never-seen parent by its pid in its parent namespace (exit=)', () => {
    const w = new World();
    w.seen(1000, 1);
    w.sys({ pid: 1000, ppid: 1, nr: 56, a0: '6c020011', exit: 1100 }); // a container init, new pid ns
    w.seen(1100, 1000);
    assert.equal(w.set(1100, '7').errno, null);
    // The init forks two children (exit=2, exit=3); only the second one's child shows up.
    w.sys({ pid: 1100, ppid: 1000, nr: 56, a0: FORK_FLAGS, exit: 2 });
    w.sys({ pid: 1100, ppid: 1000, nr: 56, a0: FORK_FLAGS, exit: 3 });
    assert.equal(w.sys({ pid: 1203, ppid: 1103, nr: 59 }).contid, null, 'waits');
    assert.deepEqual(w.labeller.takeQuestions(), [], 'no one asked for questions');
    w.marker({ op: 'proc', pid: 1103, ppid: 1100, start: 99, nspid: 3 });
    assert.equal(w.contid(1203), '7');
    assert.equal(w.labeller.stats().births, 1, 'the birth with exit=2 is still open: 1103 took exit=3');
  });

  void it("a proc answer naming a reaper binds the orphan's own birth by its namespace pid, never the reaper's next", () => {
    // In a container's pid namespace, subshell 1102 forks 1146 (exit=46) and
    // exits; 1146 is reparented to the container's init 1100. 1146's child
    // execs before any record of 1146, and the init forks again (exit=48)
    // before the daemon's answer: /proc names the init as 1146's parent.
    const w = new World();
    w.seen(1000, 1);
    w.sys({ pid: 1000, ppid: 1, nr: 56, a0: '6c020011', exit: 1100 }); // a container init, new pid ns
    w.seen(1100, 1000);
    assert.equal(w.set(1100, '7').errno, null);
    w.sys({ pid: 1100, ppid: 1000, nr: 56, a0: FORK_FLAGS, exit: 2 });
    w.sys({ pid: 1102, ppid: 1100, nr: 56, a0: FORK_FLAGS, exit: 46 });
    w.exit(1102, 1100);
    assert.equal(w.sys({ pid: 1205, ppid: 1146, nr: 59 }).contid, null, 'waits');
    w.sys({ pid: 1100, ppid: 1000, nr: 56, a0: FORK_FLAGS, exit: 48 });
    w.marker({ op: 'proc', pid: 1146, ppid: 1100, start: 99, nspid: 46 });
    assert.equal(w.contid(1146), '7');
    assert.equal(w.contid(1205), '7', 'the waiting child takes the orphan birth label, not unknown');
    assert.equal(
      w.labeller.stats().births,
      1,
      "the init's birth with exit=48 is still open for its own child",
    );
  });

  void it('a live labeller lists the never-seen parents it waits for, once each', () => {
    const w = new World({ questions: true });
    w.seen(1000, 1);
    w.fork(1000, 1100);
    w.seen(1100, 1000);
    assert.equal(w.set(1100, '7').errno, null);
    w.seen(1300, 1200);
    w.seen(1301, 1200);
    w.seen(1302, 1250);
    assert.deepEqual(w.labeller.takeQuestions(), [1200, 1250]);
    assert.deepEqual(w.labeller.takeQuestions(), []);
  });

  void it('an exit marker ends a process the stream saw no end of, and its late records stay its own', () => {
    const w = world();
    assert.equal(w.set(1001, '4').errno, null);
    // 1001 called the raw exit syscall (not audited); the daemon saw it go.
    const ops = w.marker({ op: 'exit', pid: 1001, ppid: 1000, status: 0 }).ops;
    assert.deepEqual(
      ops.map((o) => o.op),
      ['drop'],
    );
    // One of its records, delivered late, is not a new process.
    assert.equal(w.seen(1001, 1000).contid, '4');
    assert.equal(w.labeller.table.get(1001), undefined, 'still ended');
  });

  void it('an exit marker for another incarnation (other start time) changes nothing', () => {
    const w = world();
    w.marker({ op: 'seed', procs: [{ pid: 1001, ppid: 1000, start: 500, pidns: null }] });
    w.marker({ op: 'exit', pid: 1001, ppid: 1000, status: 9, start: 499 });
    assert.ok(w.labeller.table.get(1001)?.alive);
  });

  void it("an exit marker for a never-seen pid closes a host caller's open birth naming it", () => {
    const w = world(); // 1000 is in the initial pid namespace: two children seen with pid == exit=
    w.fork(1000, 1800); // a child that leaves unseen (raw exit syscall)
    assert.equal(w.labeller.stats().births, 1);
    w.marker({ op: 'exit', pid: 1800, ppid: 1000, status: 0 });
    assert.equal(w.labeller.stats().births, 0, 'the birth of 1800 is closed');
    // So the next process to get 1800, a child of someone else, takes nothing from it.
    assert.equal(w.seen(1800, 1).contid, null);
  });
});

void describe('operations name one incarnation', () => {
  void it('a refused set changes nothing: the table does not learn of a target it never saw', () => {
    const w = world();
    const op = w.set(5000, '4', callerAt(1001), 1000);
    assert.equal(op.errno, 'EPERM');
    assert.equal(w.labeller.table.latest(5000), undefined, 'not placed');
    assert.equal(w.labeller.table.hasChildren(w.labeller.table.get(1000)!), true, 'still only 1001 and 1002');
    assert.equal(w.labeller.table.get(1000)!.children, 2);
  });

  void it('a target reused since the daemon read it (another start time) is ESRCH, not relabelled', () => {
    const w = world();
    w.marker({ op: 'seed', procs: [{ pid: 1001, ppid: 1000, start: 500, pidns: null }] });
    const op = only(
      w.marker({ op: 'set', pid: 1001, ppid: 1000, start: 777, contid: '4', caller: ORCH }).ops,
    );
    assert.equal(op.errno, 'ESRCH');
    assert.equal(w.contid(1001), null);
  });

  void it('a set learns its target start time: a later set naming another incarnation is ESRCH', () => {
    const w = world();
    const set = only(
      w.marker({ op: 'set', pid: 1001, ppid: 1000, start: 600, contid: '4', caller: ORCH }).ops,
    );
    assert.equal(set.errno, null);
    assert.equal(w.labeller.table.get(1001)?.startTime, 600);
    const grant = only(w.marker({ op: 'grant', pid: 1001, start: 601, caller: ORCH }).ops);
    assert.equal(grant.errno, 'ESRCH');
  });

  void it('a grant is for the identity it was given to: uid, executable and start time', () => {
    const w = world();
    assert.equal(w.set(1001, '2').errno, null);
    const granted = w.marker({
      op: 'grant',
      pid: 1001,
      ppid: 1000,
      start: 900,
      targetUid: 1000,
      targetExe: '/usr/bin/lxc',
      caller: ORCH,
    });
    assert.equal(only(granted.ops).errno, null);
    w.fork(1001, 1101, 1000);
    w.seen(1101, 1001);
    const as = { ...callerAt(1001, '/usr/bin/lxc'), uid: 1000, start: 900 };
    assert.equal(
      w.set(1101, '40', { ...as, exe: '/bin/sh' }).errno,
      'EPERM',
      'another executable (it exec-ed)',
    );
    assert.equal(w.set(1101, '40', { ...as, uid: 0 }).errno, 'EPERM', 'another uid');
    assert.equal(w.set(1101, '40', { ...as, start: 901 }).errno, 'EPERM', 'another incarnation');
    const noStart = { ...callerAt(1001, '/usr/bin/lxc'), uid: 1000 };
    assert.equal(w.set(1101, '40', noStart).errno, 'EPERM', 'no start time to match');
    assert.equal(w.set(1101, '40', as).errno, null, 'the grantee itself');
    assert.equal(w.contid(1101), '40,^2');
  });

  void it('a grantee that died unseen leaves its grant with it: the next process at its pid has none', () => {
    const w = world();
    const grant = only(w.marker({ op: 'grant', pid: 1001, ppid: 1000, start: 900, caller: ORCH }).ops);
    assert.equal(grant.errno, null);
    // 1001 is killed by a signal (no record); the daemon reports it.
    w.marker({ op: 'exit', pid: 1001, ppid: 1000, status: 9, start: 900 });
    // A host daemon's double-forked child gets pid 1001, first seen with ppid 1.
    w.seen(1001, 1);
    w.fork(1001, 1201, 1);
    w.seen(1201, 1001);
    assert.equal(w.set(1201, '40', { ...callerAt(1001), start: 950 }).errno, 'EPERM');
  });
});

function only<T>(items: readonly T[]): T {
  assert.equal(items.length, 1);
  return items[0]!;
}

void describe('IDs are unique among the children of one parent', () => {
  void it("a tenant's nested IDs never take the host's: the operator's 1001 is still free", () => {
    const w = world();
    assert.equal(w.set(1001, '2').errno, null);
    assert.equal(only(w.marker({ op: 'grant', pid: 1001, ppid: 1000, caller: ORCH }).ops).errno, null);
    const tenant = callerAt(1001, '/usr/bin/runc');
    for (const [child, id] of [
      [1101, '1001'],
      [1102, '18446744073709551614'],
    ] as const) {
      w.fork(1001, child, 1000);
      w.seen(child, 1001);
      assert.equal(w.set(child, id, tenant).errno, null);
      assert.equal(w.contid(child), `${id},^2`);
    }
    // The host operator labels a fresh process 1001: a top-level ID, not the tenant's.
    assert.equal(w.set(1002, '1001').errno, null);
    assert.equal(w.contid(1002), '1001');
    assert.equal(w.labeller.container('1001')?.rendered, '1001');
    assert.equal(w.labeller.containerByChain('1001,^2')?.rendered, '1001,^2');
    assert.equal(w.labeller.stats().containers, 4);
  });

  void it('0 is an ID like any other', () => {
    const w = world();
    assert.equal(w.set(1001, '0').errno, null);
    assert.equal(w.contid(1001), '0');
    assert.equal(w.seen(1001, 1000).containerIdRecord?.body, 'record=1 contid=0');
    assert.equal(
      w.exit(1001, 1000).ops[0]?.body.startsWith('op=drop opid=1001 contid=-1 old-contid=0 '),
      true,
    );
  });
});
