// Provisional processes: a process first seen with a ppid the table does not
// know waits for that parent's first record, then takes the label the parent
// had when it forked it (docs/labels.md, "Unknown parents seen late").
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { FORK_FLAGS } from '../../test/support/text-records.js';
import { World } from '../../test/support/labeller-world.js';

const NEWPID_FLAGS = '6c020011'; // crun: CLONE_NEWPID|CLONE_NEWNS|…|SIGCHLD
const EXECVE = 59;

const RUNTIME = 27790;
const S = 27800; // the container shell, labelled 77, in its own pid namespace
const P = 27821; // background job `( … ) &`, a child of S
const G = 27823; // `sleep`, a child of P

/** crun (host) clones S into a new pid namespace; S gets 77 and forks P (`exit=2`, namespace-relative). */
function container(): World {
  const w = new World();
  w.seen(RUNTIME, 1000);
  w.sys({ pid: RUNTIME, ppid: 1000, nr: 56, a0: NEWPID_FLAGS, exit: S });
  w.sys({ pid: S, ppid: RUNTIME, nr: EXECVE });
  assert.equal(w.set(S, '77').errno, null);
  w.sys({ pid: S, ppid: RUNTIME, nr: 56, a0: FORK_FLAGS, exit: 2 });
  return w;
}

void describe('provisional processes (parent seen after the child)', () => {
  void it("a grandchild recorded before its parent's first record gets the container's label once the parent shows up", () => {
    const w = container();
    // G's execve reaches the labeller before any record of P.
    assert.equal(w.sys({ pid: G, ppid: P, nr: EXECVE }).contid, null, 'nothing is known yet');
    // G forks H (exit=2 in the namespace) while still provisional; H runs.
    w.sys({ pid: G, ppid: P, nr: 56, a0: FORK_FLAGS, exit: 2 });
    assert.equal(w.seen(27825, G).contid, null);
    // P's own record, with ppid = S.
    assert.equal(w.sys({ pid: P, ppid: S, nr: 39 }).contid, '77');
    const t = w.labeller.table;
    assert.equal(t.get(G)?.parent, t.get(P), 'G is attached to P');
    assert.equal(t.get(P)?.parent, t.get(S));
    assert.equal(w.sys({ pid: G, ppid: P, nr: 39 }).contid, '77');
    assert.equal(w.sys({ pid: P, ppid: S, nr: 39 }).contid, '77');
    assert.equal(w.seen(27825, G).contid, '77', 'the provisional descendant too');
    assert.equal(w.exit(G, P).contid, '77');
    assert.equal(w.labeller.container('77')?.refs, 3, 'S, P and H hold 77');
  });

  void it("the parent's own creation record may arrive after its child's first record (stream time decides)", () => {
    // Seen on the real kernel (crun, a background job): the reader got G's
    // execve, then S's fork that created P, stamped earlier, then P's own
    // fork that created G (stamped earlier still). Arrival order is not
    // creation order; pid reuse is judged by the records' timestamps.
    const w = new World();
    w.seen(RUNTIME, 1000);
    w.sys({ pid: RUNTIME, ppid: 1000, nr: 56, a0: NEWPID_FLAGS, exit: S });
    w.sys({ pid: S, ppid: RUNTIME, nr: EXECVE });
    assert.equal(w.set(S, '77').errno, null);
    assert.equal(w.sys({ pid: G, ppid: P, nr: EXECVE }, 10).contid, null, 'nothing is known yet');
    w.sys({ pid: S, ppid: RUNTIME, nr: 56, a0: FORK_FLAGS, exit: 2 }, -8); // S creates P, earlier
    assert.equal(w.sys({ pid: P, ppid: S, nr: 56, a0: FORK_FLAGS, exit: 3 }, 1).contid, '77');
    assert.equal(w.sys({ pid: G, ppid: P, nr: 39 }, 20).contid, '77', "G takes P's label");
  });

  void it('a provisional process whose parent turns out to be a host process stays unset', () => {
    const w = container();
    w.seen(2509, 1); // a host shell, unset
    assert.equal(w.sys({ pid: 3001, ppid: 3000, nr: EXECVE }).contid, null);
    assert.equal(w.seen(3000, 2509).contid, null);
    assert.equal(w.seen(3001, 3000).contid, null);
    assert.equal(w.labeller.table.get(3001)?.parent?.pid, 3000);
    assert.equal(w.labeller.table.get(3001)?.provisional, false, 'resolved: unset for good');
  });

  void it('a set on a process whose container is not known yet is refused with EAGAIN, and changes nothing', () => {
    const w = container();
    w.sys({ pid: G, ppid: P, nr: EXECVE });
    assert.equal(w.set(G, '88').errno, 'EAGAIN', 'G may be in 77: labelling it could move it out');
    w.sys({ pid: P, ppid: S, nr: 39 });
    assert.equal(w.seen(G, P).contid, '77');
    assert.equal(w.labeller.container('88'), undefined);
  });

  void it("the parent's label is the one from when the placeholder appeared, not a later relabel", () => {
    const w = new World();
    w.seen(2509, 2456);
    w.seen(4000, 2509); // unset, no open births
    w.sys({ pid: 4002, ppid: 4001, nr: EXECVE }); // 4001, a child of 4000, existed already
    assert.equal(w.set(4000, '5').errno, null, '4000 shows no children, so the set is accepted');
    assert.equal(w.seen(4001, 4000).contid, null, '4001 was forked before the set');
    assert.equal(w.seen(4002, 4001).contid, null);
  });

  void it('pid reuse of the never-seen parent never hands its label to the waiting child', () => {
    // The child is reparented (its parent exited); a new process then gets the pid.
    // Its container cannot be known any more: unknown, never host.
    let w = container();
    w.sys({ pid: G, ppid: P, nr: EXECVE });
    w.seen(G, 1);
    w.sys({ pid: P, ppid: S, nr: 39 });
    assert.equal(w.seen(G, 1).contid, 'unknown');

    // The daemon reports the never-seen parent gone.
    w = container();
    w.sys({ pid: G, ppid: P, nr: EXECVE });
    w.marker({ op: 'gone', pid: P });
    assert.equal(w.sys({ pid: P, ppid: S, nr: 39 }).contid, '77', 'the new P is a child of S');
    assert.equal(w.seen(G, P).contid, 'unknown', 'G is not its child');

    // In a pid namespace a child takes one of its parent's open births
    // without a pid match: a sibling took the birth made before 5003 ran, and
    // the one 5002 takes was recorded after. That says nothing of when 5002
    // was made. (A reused 5002 cannot be first seen here: the old 5002's own
    // fork of 5003 is recorded before it can exit, so before any record of
    // a new one.)
    w = container();
    w.seen(5000, S); // takes S's open birth (exit=2)
    w.sys({ pid: 5003, ppid: 5002, nr: EXECVE });
    w.sys({ pid: S, ppid: RUNTIME, nr: 56, a0: FORK_FLAGS, exit: 3 }); // recorded after 5003 ran
    assert.equal(w.seen(5002, S).contid, '77', '5002 is a child of S');
    assert.equal(w.seen(5003, 5002).contid, '77', 'its waiting child takes its label');

    // A creation matched by its pid (exit=) but recorded after its "child"
    // ran is another process with that pid: not trusted.
    w = new World();
    w.seen(1000, 1);
    w.fork(1000, 1100);
    w.seen(1100, 1000);
    assert.equal(w.set(1100, '9').errno, null);
    w.sys({ pid: 1300, ppid: 1200, nr: EXECVE });
    w.fork(1100, 1200, 1000); // recorded after 1300 ran
    assert.equal(w.seen(1200, 1100).contid, '9');
    assert.equal(
      w.seen(1300, 1200).contid,
      'unknown',
      'a creation recorded after its "child" ran is not trusted',
    );

    // The parent shows up after the placeholder expired (birthTtlMs).
    w = container();
    w.sys({ pid: G, ppid: P, nr: EXECVE });
    assert.equal(w.sys({ pid: P, ppid: S, nr: 39 }, 61_000).contid, '77');
    assert.equal(w.seen(G, P).contid, 'unknown');
  });
  void it('a provisional process with hundreds of thousands of children resolves them all (no argument-list limit)', () => {
    const w = container();
    w.sys({ pid: G, ppid: P, nr: EXECVE });
    const CHILDREN = 300_000;
    for (let i = 0; i < CHILDREN; i++) w.labeller.table.observe(100_000 + i, G);
    w.sys({ pid: P, ppid: S, nr: 39 });
    assert.equal(w.contid(G), '77');
    assert.equal(w.contid(100_000), '77');
    assert.equal(w.contid(100_000 + CHILDREN - 1), '77');
  });

  void it('a waiting process whose awaited pid turns up as its own child (pid reuse) is not linked under it: its container is unknown', () => {
    // Hostile or reused: 1054 names ppid 1053, never seen (it exited, its
    // pid free); 1054 then forks a child that gets pid 1053, which names
    // ppid 1054. Linking 1054 under that 1053 would make a cycle in the
    // ancestry that every walk up it (hold, grants, reaping) loops on.
    const w = container();
    assert.equal(w.sys({ pid: 1054, ppid: 1053, nr: EXECVE }).contid, null, 'waits for 1053');
    w.sys({ pid: 1053, ppid: 1054, nr: 39 });
    const t = w.labeller.table;
    const ancestry = (pid: number): number[] => {
      const seen: number[] = [];
      for (let p = t.get(pid)?.parent ?? null; p !== null && seen.length < 10; p = p.parent) seen.push(p.pid);
      return seen;
    };
    assert.deepEqual(ancestry(1054), [], '1054 has no known parent');
    assert.deepEqual(ancestry(1053), [1054]);
    assert.equal(t.get(1054)?.provisional, false, 'the wait is over');
    assert.equal(
      w.sys({ pid: 1054, ppid: 1053, nr: 39 }).contid,
      'unknown',
      'its real parent cannot be known',
    );
    assert.equal(w.sys({ pid: 1053, ppid: 1054, nr: 39 }).contid, 'unknown', "1054's child");
    assert.equal(w.set(S, '78').errno, 'EBUSY', 'markers still judged (S is labelled already)');
  });
});

void describe('provisional processes while no container is live', () => {
  void it('a process with an unknown parent does not wait: its parent was unset when it forked', () => {
    const w = new World();
    w.sys({ pid: 4002, ppid: 4001, nr: EXECVE });
    assert.equal(w.labeller.table.get(4002)?.provisional, false, 'unset for good, nothing to wait for');
    assert.equal(w.labeller.stats().containers, 0);
  });
});
