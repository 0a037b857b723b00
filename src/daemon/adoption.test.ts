import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { ORCH, World } from '../../test/support/labeller-world.js';
import { CgroupAdoption, readProcCgroup } from './adoption.js';
import type { Logger } from './logger.js';

const HOST = '1:pids:/\n0::/\n';
const IN_CONTAINER = '1:pids:/ctr\n0::/\n';

/** An adoption watcher over a World, with cgroup files by pid and adopts applied as markers. */
function setup(options: { maxReads?: number } = {}): {
  w: World;
  adoption: CgroupAdoption;
  cgroups: Map<number, string>;
  reads: number[];
  adopts: [number, string][];
  logs: string[];
} {
  const w = new World();
  const cgroups = new Map<number, string>();
  const reads: number[] = [];
  const adopts: [number, string][] = [];
  const logs: string[] = [];
  const log: Logger = (_level, message) => logs.push(message);
  const adoption = new CgroupAdoption({
    readCgroup: (pid) => {
      reads.push(pid);
      return Promise.resolve(cgroups.get(pid) ?? null);
    },
    readCgroupNow: (pid) => cgroups.get(pid) ?? null,
    adopt: (pid, chain) => {
      adopts.push([pid, chain]);
      const contid = chain.split(',^').join('+');
      const e = w.marker({ op: 'adopt', pid, contid, caller: { ...ORCH, pid: 500 } });
      adoption.onEvent(e);
      return Promise.resolve();
    },
    isLive: (chain) => w.labeller.containerByChain(chain) !== undefined,
    hostRefs: [HOST],
    log,
    ...(options.maxReads === undefined ? {} : { maxReads: options.maxReads }),
  });
  const feed = w.labeller.process.bind(w.labeller);
  w.labeller.process = (event) => {
    const le = feed(event);
    adoption.onEvent(le);
    return le;
  };
  return { w, adoption, cgroups, reads, adopts, logs };
}

/** Lets the watcher's reads and adopts settle. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await tick();
}

/** An orchestrator (100) labels its child 101, which lives in cgroup /ctr. */
async function container(s: ReturnType<typeof setup>): Promise<void> {
  s.w.seen(100, 1);
  s.w.fork(100, 101);
  s.w.seen(101, 100);
  s.cgroups.set(101, IN_CONTAINER);
  assert.equal(s.w.set(101, '78').errno, null);
  await settle();
}

void describe('CgroupAdoption', () => {
  void it('reads nothing while no labelled container has a cgroup', async () => {
    const s = setup();
    s.w.seen(200, 1);
    s.w.sys({ pid: 200, ppid: 1, nr: 59 });
    await settle();
    assert.deepEqual(s.reads, []);
    assert.equal(s.adoption.stats().containers, 0);
  });

  void it('adopts an unlabelled process found in the container cgroup, once', async () => {
    const s = setup();
    await container(s);
    assert.equal(s.adoption.stats().containers, 1);
    assert.match(s.logs.join('\n'), /container 78 is cgroup \/ctr \(1:pids\)/);
    s.cgroups.set(300, IN_CONTAINER); // entered from outside, child of host process 299
    s.w.seen(300, 299);
    await settle();
    assert.deepEqual(s.adopts, [[300, '78']]);
    assert.equal(s.w.contid(300), '78');
    // Its later events are labelled: no more reads for it.
    const before = s.reads.length;
    s.w.seen(300, 299);
    s.w.sys({ pid: 300, ppid: 299, nr: 59 });
    await settle();
    assert.equal(s.reads.length, before);
    assert.equal(s.adoption.stats().adopted, 1);
  });

  void it('checks a host process once, again at execve, and never adopts it', async () => {
    const s = setup();
    await container(s);
    s.cgroups.set(400, HOST);
    s.w.seen(400, 1);
    s.w.seen(400, 1);
    await settle();
    assert.deepEqual(
      s.reads.filter((p) => p === 400),
      [400],
    );
    // It moves into the container's cgroup, then execs.
    s.cgroups.set(400, IN_CONTAINER);
    s.w.sys({ pid: 400, ppid: 1, nr: 59 });
    await settle();
    assert.deepEqual(s.adopts, [[400, '78']]);
  });

  void it('adopts a process with children; the children are checked on their own', async () => {
    const s = setup();
    await container(s);
    s.w.seen(500, 1);
    s.w.fork(500, 501);
    s.cgroups.set(500, IN_CONTAINER);
    s.cgroups.set(501, IN_CONTAINER);
    s.w.sys({ pid: 500, ppid: 1, nr: 59 });
    await settle();
    assert.equal(s.w.contid(500), '78', 'no EBUSY for adopt');
    assert.equal(s.w.contid(501), null, 'forked before the adopt');
    s.w.seen(501, 500);
    await settle();
    assert.equal(s.w.contid(501), '78');
  });

  void it('forgets the cgroup when the container is dropped', async () => {
    const s = setup();
    await container(s);
    s.w.exit(101, 100);
    assert.equal(s.adoption.stats().containers, 0);
    s.cgroups.set(600, IN_CONTAINER);
    s.w.seen(600, 1);
    await settle();
    assert.deepEqual(s.adopts, []);
  });

  void it('a container in the host cgroup cannot adopt, and says so', async () => {
    const s = setup();
    s.w.seen(100, 1);
    s.w.fork(100, 101);
    s.w.seen(101, 100);
    s.cgroups.set(101, HOST);
    s.w.set(101, '78');
    await settle();
    assert.equal(s.adoption.stats().containers, 0);
    assert.match(s.logs.join('\n'), /container 78 \(pid 101\) shares the host's cgroups/);
  });

  void it('counts checks skipped when too many reads are in flight', async () => {
    const s = setup({ maxReads: 1 });
    await container(s);
    s.w.seen(700, 1);
    s.w.seen(701, 1);
    s.w.seen(702, 1);
    await settle();
    assert.equal(s.adoption.stats().skipped, 2);
  });

  void it("an injected process (nsenter from an operator's session) never makes its cgroup the container's", async () => {
    const s = setup();
    await container(s);
    // The operator's shell, in its SSH session's cgroup, is injected into 78.
    const SESSION = '1:pids:/user.slice/session-4.scope\n0::/\n';
    s.w.seen(800, 1);
    s.cgroups.set(800, SESSION);
    assert.equal(s.w.set(800, '78').errno, null, 'injection by the owner');
    await settle();
    assert.equal(s.adoption.stats().containers, 1, 'still only /ctr');
    // A later host command in that session is not adopted.
    s.cgroups.set(801, SESSION);
    s.w.seen(801, 1);
    await settle();
    assert.deepEqual(s.adopts, []);
  });

  void it('a nested ID set on a process left in its parent cgroup neither registers nor blocks adoption', async () => {
    const s = setup();
    await container(s);
    // 101 (in 78) is granted and labels its child 102 (same cgroup) as 5.
    assert.equal(s.w.grant(101).errno, null);
    s.w.fork(101, 1020, 100);
    s.w.seen(1020, 101);
    s.cgroups.set(1020, IN_CONTAINER);
    assert.equal(
      s.w.set(1020, '5', { pid: 101, uid: 0, auid: 4294967295, exe: '/usr/bin/runc', privileged: false })
        .errno,
      null,
    );
    await settle();
    assert.equal(s.w.contid(1020), '5,^78');
    assert.match(s.logs.join('\n'), /nested container 5,\^78 is in cgroup \/ctr, not below its parent's/);
    // 78 still adopts.
    s.cgroups.set(900, IN_CONTAINER);
    s.w.seen(900, 1);
    await settle();
    assert.deepEqual(s.adopts, [[900, '78']]);
  });

  void it('a nested container in a cgroup below its parent adopts there, its parent elsewhere', async () => {
    const s = setup();
    await container(s);
    assert.equal(s.w.grant(101).errno, null);
    s.w.fork(101, 1020, 100);
    s.w.seen(1020, 101);
    s.cgroups.set(1020, '1:pids:/ctr/inner\n0::/\n');
    s.w.set(1020, '5', { pid: 101, uid: 0, auid: 4294967295, exe: '/usr/bin/runc', privileged: false });
    await settle();
    assert.equal(s.adoption.stats().containers, 2);
    s.cgroups.set(910, '1:pids:/ctr/inner\n0::/\n');
    s.cgroups.set(911, IN_CONTAINER);
    s.w.seen(910, 1);
    s.w.seen(911, 1);
    await settle();
    assert.deepEqual(s.adopts, [
      [910, '5,^78'],
      [911, '78'],
    ]);
    assert.equal(s.w.contid(910), '5,^78');
  });

  void it('a process that left the cgroup before the adopt is sent is not adopted', async () => {
    const s = setup();
    await container(s);
    s.cgroups.set(920, IN_CONTAINER);
    s.w.seen(920, 1);
    s.cgroups.set(920, HOST); // moved out before the first read resolved
    await settle();
    assert.deepEqual(s.adopts, []);
    assert.equal(s.adoption.stats().moved, 1);
  });
});

void describe('readProcCgroup', () => {
  void it('maps a vanished process to null and passes other errors on', async () => {
    const gone = Object.assign(new Error('gone'), { code: 'ENOENT' });
    assert.equal(await readProcCgroup(1, () => Promise.reject(gone)), null);
    const denied = Object.assign(new Error('denied'), { code: 'EACCES' });
    await assert.rejects(
      readProcCgroup(1, () => Promise.reject(denied)),
      /denied/,
    );
    assert.equal(await readProcCgroup(7, (p) => Promise.resolve(p)), '/proc/7/cgroup');
  });
});
