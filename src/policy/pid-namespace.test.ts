// `exit=` as a host pid: used exactly when the caller is known to be in the
// initial pid namespace ('host'), never otherwise. Host pids here are ≥ 300
// (MIN_NAMED_PID), as on a running host; namespace-relative ones are small
// or coincide with unrelated host pids on purpose.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { FORK_FLAGS } from '../../test/support/text-records.js';
import { World } from '../../test/support/labeller-world.js';

const NEWPID_FLAGS = '6c020011'; // crun: CLONE_NEWPID|CLONE_NEWNS|…|SIGCHLD
const VFORK = 58;
const EXECVE = 59;
const CLONE3 = 435;

/**
 * Host shell 2509 (a child of 2456, which the stream never shows forking)
 * starts 2510 and 2511; their records confirm two births with pid == exit=,
 * so 2509 is 'host'. 2510 gets contid 100.
 */
function hostContainer(): World {
  const w = new World();
  w.seen(2509, 2456);
  w.fork(2509, 2510, 2456);
  w.seen(2510, 2509);
  w.fork(2509, 2511, 2456);
  w.seen(2511, 2509);
  assert.equal(w.set(2510, '100').errno, null);
  return w;
}

function ns(w: World, pid: number): string {
  const e = w.labeller.table.latest(pid);
  return e === undefined ? 'none' : w.labeller.table.pidNamespace(e);
}

void describe('pid namespaces and exit=', () => {
  void it('two births confirmed with pid == exit= make a caller host; its fork children inherit that', () => {
    const w = hostContainer();
    assert.equal(ns(w, 2509), 'host');
    assert.equal(ns(w, 2510), 'host', 'created by fork without CLONE_NEWPID');
    const one = new World();
    one.seen(2509, 2456);
    one.fork(2509, 2510, 2456);
    one.seen(2510, 2509);
    assert.equal(ns(one, 2509), 'unknown', 'one confirmation could be a coincidence');
  });

  void it('bug 1: a vfork child of a not-yet-seen process is placed through the host birth naming its parent', () => {
    const w = hostContainer();
    w.fork(2510, 2556, 2509);
    w.sys({ pid: 2556, ppid: 2510, nr: EXECVE });
    w.sys({ pid: 2556, ppid: 2510, nr: 56, a0: FORK_FLAGS, exit: 2557 }); // birth of 2557
    // 2557 vforks 2558, which execs before 2557 itself is ever recorded.
    assert.equal(w.sys({ pid: 2558, ppid: 2557, nr: EXECVE }).contid, '100');
    assert.equal(w.sys({ pid: 2557, ppid: 2556, nr: VFORK, exit: 2558 }).contid, '100');
    assert.equal(w.labeller.table.get(2557)?.parent?.pid, 2556);
    assert.equal(w.labeller.stats().births, 0, 'the vfork record confirmed 2558, it opened nothing');
    // Later, 2557 is reparented to init: same process, same label.
    w.exit(2556, 2510);
    assert.equal(w.sys({ pid: 2557, ppid: 1, nr: EXECVE }).contid, '100');
  });

  void it('bug 2: a double-forked grandchild first seen with ppid=1 keeps its container', () => {
    const w = hostContainer();
    w.fork(2510, 2559, 2509);
    w.seen(2559, 2510);
    w.fork(2559, 2560, 2510);
    w.exit(2559, 2510); // the parent exits before the child's first audited syscall
    assert.equal(w.sys({ pid: 2560, ppid: 1, nr: EXECVE }).contid, '100');
    assert.equal(w.labeller.stats().births, 0);
  });

  void it('bug 2 with a subreaper: the orphan may show a live ancestor of its creator as ppid', () => {
    const w = hostContainer();
    w.fork(2510, 2559, 2509);
    w.seen(2559, 2510);
    w.fork(2559, 2560, 2510);
    w.exit(2559, 2510);
    assert.equal(w.sys({ pid: 2560, ppid: 2510, nr: EXECVE }).contid, '100');
    // Not an ancestor (a sibling host process): no binding, the birth stays open.
    w.fork(2510, 2570, 2509);
    w.seen(2570, 2510);
    w.fork(2570, 2571, 2510);
    w.exit(2570, 2510);
    assert.equal(w.sys({ pid: 2571, ppid: 2511, nr: EXECVE }).contid, null);
  });

  void it("a host caller's birth naming a pid closes older births naming it: that child is gone", () => {
    const w = hostContainer();
    w.fork(2510, 2559, 2509);
    w.seen(2559, 2510);
    w.fork(2559, 3000, 2510); // labelled 100; the child leaves unseen (the raw exit syscall)
    w.fork(2511, 3000, 2509); // unlabelled: the kernel gave 3000 to another child, so the first is dead
    assert.equal(w.seen(3000, 2511).contid, null, "2511's child takes 2511's birth");
    w.exit(3000, 2511);
    w.exit(2559, 2510);
    // A later 3000 first seen with ppid 1 is a third process: 2559's birth no longer names it.
    assert.equal(w.sys({ pid: 3000, ppid: 1, nr: EXECVE }).contid, null);
  });

  void it('a fork record of a host caller ends the live process that held the pid before (a ghost)', () => {
    const w = hostContainer();
    w.fork(2510, 2559, 2509);
    assert.equal(w.seen(2559, 2510).contid, '100');
    w.exit(2510, 2509); // 2559 is the last process of 100
    // 2559 leaves by the raw exit syscall: no record. A host process is given its pid.
    const fork = w.fork(2511, 2559, 2509);
    assert.deepEqual(
      fork.ops.map((o) => `${o.op} ${o.oldContid}`),
      ['drop 100'],
      'the ghost ended there, and its container with it',
    );
    assert.equal(w.seen(2559, 2511).contid, null, 'the new 2559 is a child of 2511, unset');
    assert.equal(w.labeller.table.stats().reused, 1);
  });

  void it('an orphan binding needs the creator to have exited, and births expire (pid reuse)', () => {
    const w = hostContainer();
    w.fork(2510, 2559, 2509);
    w.seen(2559, 2510);
    w.fork(2559, 2560, 2510);
    // 2559 is alive: a process 2560 with ppid=1 is not its child.
    assert.equal(w.sys({ pid: 2560, ppid: 1, nr: EXECVE }).contid, null);
    w.fork(2559, 2561, 2510);
    w.exit(2559, 2510);
    // 61 s later (beyond birthTtlMs) pid 2561 is some other process.
    assert.equal(w.sys({ pid: 2561, ppid: 1, nr: EXECVE }, 61_000).contid, null);
  });

  void it('exit=2 inside a container never labels host pid 2, and a coincident exit= never labels a host pid', () => {
    const w = hostContainer();
    // 2510 (host) clones the container init with CLONE_NEWPID: it and its descendants are nested.
    w.sys({ pid: 2510, ppid: 2509, nr: 56, a0: NEWPID_FLAGS, exit: 2600 });
    w.sys({ pid: 2600, ppid: 2510, nr: EXECVE });
    assert.equal(ns(w, 2600), 'nested');
    w.fork(2600, 2601, 2510); // exit= is namespace-relative: a small value
    assert.equal(w.seen(2601, 2600).contid, '100');
    assert.equal(ns(w, 2601), 'nested');
    w.fork(2601, 2, 2600);
    w.fork(2601, 3, 2600);
    // A namespace pid that happens to equal an unrelated, never-seen host pid.
    w.fork(2601, 2511, 2600);
    w.fork(2601, 4321, 2600);
    w.exit(2601, 2600);
    assert.equal(w.seen(2, 0).contid, null, 'host pid 2');
    assert.equal(w.seen(3, 1).contid, null, 'host pid 3 with ppid=1');
    assert.equal(w.seen(4321, 1).contid, null, 'a host daemon 4321 (ppid=1) first seen now');
    assert.equal(w.seen(7000, 2511).contid, null, 'a child of host pid 2511 (known, unset)');
    assert.equal(w.seen(7001, 5555).contid, null);
    assert.equal(w.sys({ pid: 5555, ppid: 1, nr: EXECVE }).contid, null, 'unknown ppid is not placed');
  });

  void it('a caller believed host by inheritance (setns, unshare are not in the stream) turns nested on a small exit=', () => {
    const w = hostContainer();
    // 2620 is a fork child of host 2510, but really entered a pid namespace
    // (e.g. its parent did setns/unshare(CLONE_NEWPID) first).
    w.fork(2510, 2620, 2509);
    w.seen(2620, 2510);
    assert.equal(ns(w, 2620), 'host');
    w.fork(2620, 5, 2510);
    assert.equal(ns(w, 2620), 'nested');
    w.fork(2620, 3000, 2510);
    w.exit(2620, 2510);
    assert.equal(w.seen(3000, 1).contid, null);
  });

  void it('a caller whose children match none of its exit= values turns nested; a vfork race does not count', () => {
    const w = hostContainer();
    w.fork(2510, 2630, 2509);
    w.seen(2630, 2510);
    assert.equal(ns(w, 2630), 'host');
    w.fork(2630, 31000, 2510);
    // A vfork child's exec recorded before the vfork itself: a mismatch, taken back by the vfork record.
    w.seen(2631, 2630);
    w.sys({ pid: 2630, ppid: 2510, nr: VFORK, exit: 2631 });
    w.seen(2632, 2630);
    assert.equal(ns(w, 2630), 'host');
    w.fork(2630, 31001, 2510);
    w.seen(2633, 2630); // 2630's exit= values are namespace-relative after all
    assert.equal(ns(w, 2630), 'nested', 'two unexplained mismatches');
    w.exit(2630, 2510);
    assert.equal(w.seen(31001, 1).contid, null);
  });

  void it('an unknown caller whose exit= coincides once with its child pid is not trusted', () => {
    const w = new World();
    w.seen(8000, 1); // never seen forking before: unknown
    w.fork(8000, 8001, 1);
    w.seen(8001, 8000); // one pid == exit= (could be a coincidence in a namespace)
    assert.equal(w.set(8001, '7').errno, null);
    w.fork(8001, 8100, 8000);
    assert.equal(ns(w, 8001), 'unknown');
    w.exit(8001, 8000);
    assert.equal(w.seen(8100, 1).contid, null, 'the orphan is not bound: its creator is not known host');
    w.sys({ pid: 8001, ppid: 8000, nr: 56, a0: FORK_FLAGS, exit: 8201 }); // (8001 reused, unset)
    assert.equal(w.seen(8202, 8201).contid, null);
  });

  void it('clone3 children (flags not recorded, CLONE_NEWPID possible) do not inherit host', () => {
    const w = hostContainer();
    w.sys({ pid: 2510, ppid: 2509, nr: CLONE3, a0: '7ffe759b0810', exit: 2700 });
    assert.equal(w.sys({ pid: 2700, ppid: 2510, nr: EXECVE }).contid, '100', 'the label is inherited');
    assert.equal(ns(w, 2700), 'unknown', 'the namespace is not');
    w.fork(2700, 2701, 2510);
    w.exit(2700, 2510);
    assert.equal(w.seen(2701, 1).contid, null, 'so its exit= names nothing');
    // Its own confirmed births make it host.
    w.sys({ pid: 2510, ppid: 2509, nr: CLONE3, a0: '7ffe759b0810', exit: 2710 });
    w.seen(2710, 2510);
    for (const c of [2711, 2712]) {
      w.fork(2710, c, 2510);
      w.seen(c, 2710);
    }
    assert.equal(ns(w, 2710), 'host');
  });

  void it('the seeder may say a process is host (live mode)', () => {
    const w = new World();
    w.labeller.seed([
      { pid: 1, ppid: 0, pidns: 'host' },
      { pid: 2509, ppid: 1, pidns: 'host' },
      { pid: 2510, ppid: 2509 },
    ]);
    assert.equal(ns(w, 2509), 'host');
    assert.equal(ns(w, 2510), 'unknown', 'seeded without a status');
    w.fork(2509, 2520, 1);
    w.seen(2520, 2509);
    assert.equal(w.set(2520, '5').errno, null);
    w.fork(2520, 2521, 2509);
    w.exit(2520, 2509);
    assert.equal(w.seen(2521, 1).contid, '5');
    // A seeded status is not overturned by a small exit= (early boot).
    w.fork(2509, 250, 1);
    assert.equal(ns(w, 2509), 'host');
  });
});
