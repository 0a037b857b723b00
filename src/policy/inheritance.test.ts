// Inheritance of labels through the process lifecycle as the audit stream
// shows it: forks, threads, vfork, exec, reparenting, pid reuse, and
// containers whose clone records carry namespace-relative pids.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { FORK_FLAGS, THREAD_FLAGS } from '../../test/support/text-records.js';
import { World } from '../../test/support/labeller-world.js';

/** O = 100 with a labelled child C = 101 (contid 4). */
/** A host shim 1000 whose child 1001 is labelled 4 (pids above the boot-time range). */
function shimmed(): World {
  const w = new World();
  w.seen(1000, 1);
  w.fork(1000, 1001);
  w.seen(1001, 1000);
  assert.equal(w.set(1001, '4').errno, null);
  return w;
}

function labelled(): World {
  const w = new World();
  w.seen(100, 1);
  w.fork(100, 101);
  w.seen(101, 100);
  assert.equal(w.set(101, '4').errno, null);
  return w;
}

void describe('inheritance', () => {
  void it('a fork storm passes the label to every descendant', () => {
    const w = labelled();
    let next = 1000;
    const parentOf = new Map<number, number>([[101, 100]]);
    let generation = [101];
    const all: [number, number][] = [];
    for (let round = 0; round < 4; round++) {
      const born: number[] = [];
      for (const p of generation) {
        for (let k = 0; k < 3; k++) {
          const child = next++;
          w.fork(p, child, parentOf.get(p));
          parentOf.set(child, p);
          all.push([child, p]);
          born.push(child);
        }
      }
      generation = born;
    }
    for (const [child, parent] of all) assert.equal(w.seen(child, parent).contid, '4', `pid ${child}`);
    assert.equal(all.length, 3 + 9 + 27 + 81);
  });

  void it('a child fixes its label when it is created, not when it is first seen', () => {
    const w = new World();
    w.seen(100, 1);
    w.fork(100, 101);
    w.seen(101, 100);
    w.fork(101, 102, 100); // 101 forks before it is labelled…
    w.exit(101, 100); // …exits (so it is no longer busy)…
    assert.equal(w.seen(102, 101).contid, null, '…and its child stays unset');
  });

  const threads: { name: string; nr: number; a0: string }[] = [
    { name: 'clone with CLONE_THREAD', nr: 56, a0: THREAD_FLAGS },
  ];
  for (const t of threads) {
    void it(`a thread made by ${t.name} never becomes a process and never makes its creator busy`, () => {
      const w = labelled();
      w.sys({ pid: 101, ppid: 100, nr: t.nr, a0: t.a0, exit: 5000 });
      assert.equal(w.labeller.table.get(5000), undefined);
      assert.equal(w.labeller.stats().births, 0);
      // The thread's syscalls show the process's pid: they are the process's events.
      assert.equal(w.seen(101, 100).contid, '4');
    });
  }

  void it('a clone3 birth (thread or process: the record cannot tell) expires quickly when no process appears', () => {
    const w = labelled();
    w.sys({ pid: 101, ppid: 100, nr: 435, a0: '7ffe759b08c0', exit: 5001 });
    assert.equal(w.labeller.stats().births, 1);
    w.sys({ pid: 101, ppid: 100, nr: 39, exit: 101 }, 3000);
    assert.equal(w.labeller.stats().births, 0);
    assert.equal(w.labeller.stats().birthsExpired, 1);
    assert.equal(w.labeller.table.get(5001), undefined);
  });

  void it('a clone3 process (posix_spawn) inherits the label', () => {
    const w = labelled();
    w.sys({ pid: 101, ppid: 100, nr: 435, a0: '7ffe759b0810', exit: 5002 });
    assert.equal(w.sys({ pid: 5002, ppid: 101, nr: 59, exe: '/bin/ls' }).contid, '4');
  });

  void it('vfork children inherit', () => {
    const w = labelled();
    w.sys({ pid: 101, ppid: 100, nr: 58, a0: '0', exit: 6000 });
    assert.equal(w.sys({ pid: 6000, ppid: 101, nr: 59 }).contid, '4');
  });

  void it('an exec chain keeps the label and updates exe', () => {
    const w = labelled();
    for (const exe of ['/bin/sh', '/usr/bin/env', '/usr/bin/python3']) {
      assert.equal(w.sys({ pid: 101, ppid: 100, nr: 59, exe }).contid, '4');
      assert.equal(w.labeller.table.get(101)?.exe, `"${exe}"`);
    }
  });

  void it('a child reparented to init keeps the label it was created with', () => {
    const w = labelled();
    w.fork(101, 102, 100);
    w.seen(102, 101);
    w.exit(101, 100);
    const before = w.labeller.table.get(102);
    assert.equal(w.seen(102, 1).contid, '4');
    assert.equal(w.labeller.table.get(102), before, 'same incarnation');
  });

  void it('a child reparented to a subreaper ancestor keeps its label and its identity', () => {
    const w = labelled();
    w.fork(101, 102, 100);
    w.fork(102, 103, 101);
    w.seen(103, 102);
    const before = w.labeller.table.get(103);
    w.exit(102, 101);
    assert.equal(w.seen(103, 101).contid, '4');
    assert.equal(w.labeller.table.get(103), before);
  });

  void it('a reused pid is a new process with a new generation and its own parent', () => {
    const w = labelled();
    w.fork(101, 102, 100);
    w.seen(102, 101);
    const old = w.labeller.table.get(102)!;
    w.exit(102, 101);
    // pid 102 comes back as a child of unlabelled host process 300.
    w.seen(300, 1);
    w.fork(300, 102);
    const e = w.seen(102, 300);
    assert.equal(e.contid, null);
    const now = w.labeller.table.get(102)!;
    assert.notEqual(now, old);
    assert.ok(now.generation > old.generation);
  });

  void it('a reused pid is detected without an exit record (process killed by a signal)', () => {
    const w = labelled();
    w.fork(101, 102, 100);
    w.seen(102, 101);
    w.seen(300, 1);
    // 102 was SIGKILLed (no exit_group); its pid now belongs to a child of 300.
    const e = w.seen(102, 300);
    assert.equal(e.contid, null);
    assert.equal(w.labeller.stats().reused, 1);
  });

  void it('namespace-relative exit= values never label host processes', () => {
    const w = labelled();
    // Host pid 2 (and 3) exist, unlabelled.
    w.seen(2, 0);
    w.seen(3, 1);
    // The labelled container init 101 forks inside its pid namespace: exit=2, exit=3.
    w.fork(101, 2, 100);
    w.fork(101, 3, 100);
    assert.equal(w.seen(2, 0).contid, null, 'host pid 2 keeps its own (unset) label');
    assert.equal(w.seen(3, 1).contid, null);
    // The real children appear with host pids and ppid=101.
    assert.equal(w.seen(18634, 101).contid, '4');
    assert.equal(w.seen(18635, 101).contid, '4');
    assert.equal(w.labeller.stats().births, 0, 'both births were bound to the real children');
  });

  void it('an unlabelled caller in a pid namespace cannot move a labelled host process out of its container', () => {
    const w = labelled();
    w.fork(101, 150, 100);
    w.seen(150, 101);
    // An unlabelled process 400 in some pid namespace clones: exit=150 is namespace-relative.
    w.seen(400, 1);
    w.fork(400, 150);
    assert.equal(w.seen(150, 101).contid, '4');
  });

  void it('a child seen before its parent clone record is not counted twice', () => {
    const w = labelled();
    w.seen(102, 101); // the child's first record raced ahead of the parent's clone record
    w.fork(101, 102, 100);
    assert.equal(w.labeller.stats().births, 0);
    w.exit(102, 101);
    assert.equal(w.set(101, '9').errno, 'EEXIST', 'not EBUSY: 101 has no child left');
  });

  void it('a CLONE_PARENT child belongs to the caller parent but inherits the caller label', () => {
    const w = shimmed();
    // 1001 (in 4) shows it is in the initial pid namespace: two children seen with pid == exit=.
    for (const child of [1701, 1702]) {
      w.fork(1001, child, 1000);
      w.seen(child, 1001);
    }
    // 1001 clones with CLONE_PARENT|SIGCHLD: the child's parent is 1000 (unlabelled).
    w.sys({ pid: 1001, ppid: 1000, nr: 56, a0: '8011', exit: 1703 });
    assert.equal(w.seen(1703, 1000).contid, '4');
  });

  void it("a CLONE_PARENT birth by a caller of unknown pid namespace makes the child's container unknown", () => {
    const w = shimmed();
    w.sys({ pid: 1001, ppid: 1000, nr: 56, a0: '8011', exit: 1703 });
    assert.equal(w.seen(1703, 1000).contid, 'unknown', 'neither host (an escape) nor 4 (a plant)');
  });

  void it('a CLONE_PARENT birth planted on a host parent never labels its next child', () => {
    // 1000 is a host process (a shim); 1001, a child of it, is in container 4.
    // 1001 clones with CLONE_PARENT a child that leaves by the raw exit
    // syscall, never audited: the birth stays open on 1000.
    const w = shimmed();
    w.sys({ pid: 1001, ppid: 1000, nr: 56, a0: '8011', exit: 2 }); // namespace-relative exit=
    // 1000 vforks runc; runc's exec is recorded before 1000's vfork.
    assert.equal(w.sys({ pid: 1800, ppid: 1000, nr: 59 }).contid, null, 'runc is not planted into 4');
    w.sys({ pid: 1000, ppid: 1, nr: 58, exit: 1800 });
    assert.equal(w.seen(1801, 1800).contid, null, "nor runc's children");
  });

  void it('drop, then the same ID is reused by a new container', () => {
    const w = labelled();
    assert.equal(w.exit(101, 100).ops[0]?.op, 'drop');
    w.fork(100, 105);
    w.seen(105, 100);
    assert.equal(w.set(105, '4').errno, null);
    assert.equal(w.seen(105, 100).contid, '4');
  });

  void it('FORK_FLAGS and THREAD_FLAGS are told apart', () => {
    const w = new World();
    w.seen(100, 1);
    w.sys({ pid: 100, ppid: 1, nr: 56, a0: FORK_FLAGS, exit: 101 });
    w.sys({ pid: 100, ppid: 1, nr: 56, a0: THREAD_FLAGS, exit: 102 });
    assert.equal(w.labeller.stats().births, 1);
  });
});
