// The kernel series' test suite (audit-testsuite tests/containerid, T1–T12)
// replayed against the labeller, plus the rules table of docs/design.md.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { event, FORK_FLAGS } from '../../test/support/text-records.js';
import { callerAt, ORCH, World } from '../../test/support/labeller-world.js';

/** O (pid 100, the orchestrator, child of 1) and its fresh children 101 and 102. */
function world(): World {
  const w = new World();
  w.seen(100, 1);
  w.fork(100, 101);
  w.fork(100, 102);
  w.seen(101, 100);
  w.seen(102, 100);
  return w;
}

void describe('kernel series tests', () => {
  void it('T1: self-set is refused with EXDEV and still recorded', () => {
    const w = world();
    // A privileged process without children labelling itself (rule 4, EBUSY, comes first).
    const op = w.set(102, '4', { ...ORCH, pid: 102 });
    assert.equal(op.errno, 'EXDEV');
    assert.equal(
      op.body,
      'op=set opid=102 contid=4 old-contid=-1 pid=102 uid=0 auid=4294967295 exe="/usr/bin/runc" res=0 errno=EXDEV',
    );
    assert.equal(w.contid(102), null);
  });

  void it('a caller with children asking for itself is refused with EBUSY (rule 4 before rule 5)', () => {
    const w = world();
    assert.equal(w.set(100, '4').errno, 'EBUSY');
  });

  void it('T2: set on a fresh child succeeds and tags its events', () => {
    const w = world();
    const op = w.set(101, '4');
    assert.equal(
      op.body,
      'op=set opid=101 contid=4 old-contid=-1 pid=100 uid=0 auid=4294967295 exe="/usr/bin/runc" res=1',
    );
    const e = w.seen(101, 100);
    assert.equal(e.contid, '4');
    assert.deepEqual(e.chain, ['4']);
    assert.deepEqual(e.containerIdRecord, { record: 1, body: 'record=1 contid=4' });
  });

  void it("a set's name and metadata go on its CONTAINER_OP, accepted or refused, never on later ones", () => {
    const w = world();
    const meta = { image: 'nginx:1.27', 'oci.bundle': '/run/b "x"' };
    const set = (pid: number, contid: string) =>
      w.marker({ op: 'set', pid, contid, caller: ORCH, name: 'web front', meta }).ops;
    const [op] = set(101, '4');
    assert.equal(op?.errno, null);
    assert.equal(op?.name, 'web front');
    assert.deepEqual(op?.meta, meta);
    assert.equal(
      op?.body,
      'op=set opid=101 contid=4 old-contid=-1 pid=100 uid=0 auid=4294967295 exe="/usr/bin/runc" ' +
        'name=7765622066726F6E74 meta.image="nginx:1.27" meta.oci.bundle=2F72756E2F6220227822 res=1',
    );
    const [again] = set(101, '4');
    assert.match(
      again?.body ?? '',
      / name=7765622066726F6E74 meta\.image="nginx:1\.27" .* res=0 errno=EEXIST$/,
    );
    // The drop names no one.
    const [drop] = w.exit(101, 100).ops;
    assert.equal(drop?.op, 'drop');
    assert.equal(drop.name, undefined);
    assert.ok(!/ name=| meta\./.test(drop.body), drop.body);
  });

  const refusals: { name: string; value: string; errno: string; rendered: string }[] = [
    { name: 'T3: the same value again is refused with EEXIST', value: '4', errno: 'EEXIST', rendered: '4' },
    {
      name: 'T4: the unset value is refused with EINVAL',
      value: '18446744073709551615',
      errno: 'EINVAL',
      rendered: '-1',
    },
    { name: 'T5: a different value is refused with EEXIST', value: '5', errno: 'EEXIST', rendered: '5' },
    {
      name: 'a value above u64 is refused with EINVAL',
      value: '18446744073709551616',
      errno: 'EINVAL',
      rendered: '?',
    },
    { name: 'a non-decimal value is refused with EINVAL', value: '0x10', errno: 'EINVAL', rendered: '?' },
  ];
  for (const c of refusals) {
    void it(c.name, () => {
      const w = world();
      w.set(101, '4');
      const op = w.set(101, c.value);
      assert.equal(op.errno, c.errno);
      assert.equal(op.contid, c.rendered);
      assert.equal(op.oldContid, '4');
      assert.match(op.body, new RegExp(`res=0 errno=${c.errno}$`));
      assert.equal(w.contid(101), '4');
    });
  }

  void it('T6: the owner injects another fresh child into its live ID', () => {
    const w = world();
    w.set(101, '4');
    assert.equal(w.set(102, '4').errno, null);
    assert.equal(w.seen(102, 100).contid, '4');
  });

  void it('T7: a target with a child is refused with EBUSY', () => {
    const w = world();
    w.fork(101, 103, 100);
    w.seen(103, 101);
    assert.equal(w.set(101, '4').errno, 'EBUSY');
  });

  void it('T7: a child known only from its fork record makes the target busy', () => {
    const w = world();
    w.fork(101, 103, 100); // 103 has not run an audited syscall yet
    assert.equal(w.set(101, '4').errno, 'EBUSY');
  });

  void it('a target whose children have exited is no longer busy', () => {
    const w = world();
    w.fork(101, 103, 100);
    w.seen(103, 101);
    w.exit(103, 101);
    assert.equal(w.set(101, '4').errno, null);
  });

  void it('ENOTUNIQ: another orchestrator cannot take a live ID', () => {
    const w = world();
    w.set(101, '4');
    const crun = { ...ORCH, pid: 200, exe: '/usr/bin/crun' };
    w.seen(200, 1);
    w.fork(200, 201);
    w.seen(201, 200);
    const op = w.set(201, '4', crun);
    assert.equal(op.errno, 'ENOTUNIQ');
    assert.match(op.body, /pid=200 uid=0 auid=4294967295 exe="\/usr\/bin\/crun" res=0 errno=ENOTUNIQ$/);
  });

  void it('EPERM: a caller neither privileged nor delegated is refused', () => {
    const w = world();
    assert.equal(w.set(101, '4', callerAt(100)).errno, 'EPERM');
  });

  void it('ESRCH: an unknown or exited target is refused', () => {
    const w = world();
    assert.equal(w.set(999, '4').errno, 'ESRCH');
    w.exit(102, 100);
    assert.equal(w.set(102, '4').errno, 'ESRCH');
  });

  void it('rules are checked in order: EINVAL before EPERM before ESRCH', () => {
    const w = world();
    assert.equal(w.set(999, '-1', callerAt(100)).errno, 'EINVAL');
    assert.equal(w.set(999, '4', callerAt(100)).errno, 'EPERM');
    assert.equal(w.set(999, '4').errno, 'ESRCH');
  });

  void it('T8/T12: a delegated nested orchestrator labels its children with parent chains', () => {
    const w = world();
    // N = 101 becomes container 2 and is granted delegation.
    assert.equal(w.set(101, '2').errno, null);
    const g = w.grant(101);
    assert.equal(
      g.body,
      'op=grant opid=101 contid=2 old-contid=2 pid=100 uid=0 auid=4294967295 exe="/usr/bin/runc" res=1',
    );
    w.fork(101, 110, 100);
    w.fork(101, 111, 100);
    w.seen(110, 101);
    w.seen(111, 101);
    const lxc = callerAt(101);
    assert.equal(w.set(110, '40', lxc).errno, null);
    assert.equal(w.set(111, '41', lxc).errno, null);
    assert.equal(w.seen(110, 101).contid, '40,^2');
    assert.equal(w.seen(111, 101).contid, '41,^2');
    // One level deeper: 110 is granted by N and labels its own child.
    assert.equal(w.grant(110, lxc).errno, null);
    w.fork(110, 120, 101);
    w.seen(120, 110);
    assert.equal(w.set(120, '9', callerAt(110)).errno, null);
    const e = w.seen(120, 110);
    assert.equal(e.contid, '9,^40,^2');
    assert.deepEqual(e.chain, ['9', '40', '2']);
    assert.equal(e.containerIdRecord?.body, 'record=1 contid=9,^40,^2');
  });

  void it('a delegated caller may not label a process outside its descendants (EXDEV)', () => {
    const w = world();
    w.set(101, '2');
    w.grant(101);
    assert.equal(w.set(102, '7', callerAt(101)).errno, 'EXDEV');
  });

  void it('a grant is refused to a caller that is neither privileged nor delegated', () => {
    const w = world();
    assert.equal(w.grant(102, callerAt(101)).errno, 'EPERM');
  });

  void it('a nesting set needs the caller and target in the same container (EEXIST otherwise)', () => {
    const w = world();
    w.set(101, '2');
    w.grant(101);
    w.fork(101, 110, 100);
    w.seen(110, 101);
    w.set(110, '40', callerAt(101));
    // 110 is now in 40, not in the caller's container 2.
    assert.equal(w.set(110, '41', callerAt(101)).errno, 'EEXIST');
  });

  void it('T8: a kill between containers tags the killer and the target', () => {
    const w = world();
    w.set(101, '2');
    w.grant(101);
    w.fork(101, 110, 100);
    w.seen(110, 101);
    w.set(110, '40', callerAt(101));
    w.set(102, '7');
    const stamp = w.stream.next();
    const e = w.labeller.process(
      event(
        `type=SYSCALL ${stamp}: arch=c000003e syscall=62 success=yes exit=0 a0=6e a1=f a2=0 a3=0 items=0 ppid=100 pid=102 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="killer" exe="/bin/killer" key="k"`,
        `type=OBJ_PID ${stamp}: opid=110 oauid=0 ouid=0 oses=1 ocomm="victim"`,
      ),
    );
    assert.deepEqual(e.containerIdRecord, { record: 1, body: 'record=1 contid=7' });
    assert.deepEqual(e.objectRecords, [{ record: 2, body: 'record=2 contid=40,^2', chain: ['40', '2'] }]);
  });

  void it('T9: every attempt, accepted or refused, becomes one CONTAINER_OP', () => {
    const w = world();
    const attempts: [number, string][] = [
      [100, '4'],
      [999, '4'],
      [101, '4'],
      [101, '4'],
      [101, '18446744073709551615'],
      [101, '5'],
      [102, '4'],
    ];
    const ops = attempts.map(([pid, value]) => w.set(pid, value));
    assert.deepEqual(
      ops.map((o) => [o.opid, o.contid, o.errno]),
      [
        [100, '4', 'EBUSY'],
        [999, '4', 'ESRCH'],
        [101, '4', null],
        [101, '4', 'EEXIST'],
        [101, '-1', 'EINVAL'],
        [101, '5', 'EEXIST'],
        [102, '4', null],
      ],
    );
    assert.deepEqual(w.labeller.stats().ops, { accepted: 2, refused: 5, drops: 0 });
  });

  void it('T10: a keyed event of a labelled child carries its contid', () => {
    const w = world();
    w.set(101, '4');
    const e = w.sys({ pid: 101, ppid: 100, nr: 257, exit: 3 });
    assert.equal(e.containerIdRecord?.body, 'record=1 contid=4');
  });

  void it('events of unlabelled host processes get no contid and no CONTAINER_ID', () => {
    const w = world();
    const e = w.seen(100, 1);
    assert.equal(e.contid, null);
    assert.equal(e.chain, null);
    assert.equal(e.containerIdRecord, null);
  });

  void it('the last process of an ID exiting records a drop, and the ID can then be reused by anyone', () => {
    const w = world();
    w.set(101, '4');
    w.fork(101, 103, 100);
    w.seen(103, 101);
    assert.deepEqual(w.exit(103, 101).ops, []);
    const e = w.exit(101, 100);
    assert.equal(e.contid, '4', 'the exit itself is still tagged');
    assert.deepEqual(
      e.ops.map((o) => o.body),
      ['op=drop opid=101 contid=-1 old-contid=4 pid=101 uid=0 auid=0 exe="/bin/t" res=1'],
    );
    assert.equal(w.labeller.container('4'), undefined);
    const crun = { ...ORCH, pid: 200, exe: '/usr/bin/crun' };
    w.seen(200, 1);
    w.fork(200, 201);
    w.seen(201, 200);
    assert.equal(w.set(201, '4', crun).errno, null);
  });

  void it('a nested container keeps its parent ID live until it is dropped itself', () => {
    const w = world();
    w.set(101, '2');
    w.grant(101);
    w.fork(101, 110, 100);
    w.seen(110, 101);
    w.set(110, '40', callerAt(101));
    assert.deepEqual(w.exit(101, 100).ops, []);
    assert.deepEqual(
      w.exit(110, 1).ops.map((o) => o.oldContid),
      ['40,^2', '2'],
    );
  });

  void it('a target not yet seen in the stream is placed by the ppid the daemon gives', () => {
    const w = world();
    w.fork(101, 130, 100); // 101 cloned 130; 130 has not run yet
    w.exit(101, 100); // …and its parent is gone, but the marker names 130's parent
    const op = w.set(130, '4', ORCH, 101);
    assert.equal(op.errno, null);
    assert.equal(w.seen(130, 1).contid, '4');
  });

  void it('adopt puts an unlabelled process into a live container', () => {
    const w = world();
    w.set(101, '4');
    const e = w.marker({
      op: 'adopt',
      pid: 102,
      contid: '4',
      caller: { ...ORCH, pid: 500, exe: '/usr/bin/contid' },
    });
    assert.equal(e.ops[0]?.op, 'adopt');
    assert.equal(e.ops[0]?.errno, null);
    assert.equal(w.contid(102), '4');
    const again = w.marker({ op: 'adopt', pid: 102, contid: '9', caller: { ...ORCH, pid: 500 } });
    assert.equal(again.ops[0]?.errno, 'EINVAL', 'no live container 9');
  });

  void it('an exit marker (death by signal) ends the process and drops its container', () => {
    const w = world();
    w.set(101, '4');
    assert.equal(w.labeller.stats().containers, 1);
    const e = w.marker({ op: 'exit', pid: 101, ppid: 100, status: 9 });
    assert.equal(e.ops.length, 1);
    assert.equal(e.ops[0]?.op, 'drop');
    assert.equal(e.ops[0]?.oldContid, '4');
    assert.equal(w.labeller.stats().containers, 0);
    assert.equal(w.labeller.table.get(101)?.alive ?? false, false);
    // The ID is free again: another owner may take it.
    w.fork(100, 103);
    w.seen(103, 100);
    assert.equal(w.set(103, '4', { ...ORCH, exe: '/usr/bin/other' }).errno, null);
  });

  void it('an exit marker naming another parent leaves a reused pid alone', () => {
    const w = world();
    w.set(101, '4');
    const e = w.marker({ op: 'exit', pid: 101, ppid: 77, status: 9 });
    assert.deepEqual(e.ops, []);
    assert.equal(w.contid(101), '4');
    assert.equal(w.labeller.table.get(101)?.alive, true);
  });

  void it('FORK_FLAGS is a process clone in these tests', () => {
    assert.equal(FORK_FLAGS, '1200011');
  });
});
