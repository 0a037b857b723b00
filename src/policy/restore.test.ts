// A daemon restart: the new start's table begins empty (live and in a
// replay alike), the /proc snapshot and the checkpoint's labels come back
// through seed and restore markers, and events wait for the restore.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { encodeMarker, MARKER_TYPE, type MarkerBody } from '../marker/format.js';
import type { Keyring } from '../marker/keyring.js';
import { FORK_FLAGS, Stream } from '../../test/support/text-records.js';
import { HoldStage } from './hold.js';
import { Labeller, type LabelledEvent } from './labeller.js';

const SECRET = Buffer.alloc(32, 3);
const KEYRING: Keyring = new Map([
  ['S1', { startId: 'S1', daemonPid: 500, secret: SECRET }],
  ['S2', { startId: 'S2', daemonPid: 600, secret: SECRET }],
]);
const ORCH = { pid: 100, uid: 0, auid: 4294967295, exe: '/usr/bin/runc', privileged: true };

class Run {
  readonly stream = new Stream();
  readonly labeller = new Labeller({ keyring: KEYRING });
  readonly hold = new HoldStage(this.labeller);
  readonly out: LabelledEvent[] = [];
  #seq = new Map<string, number>();

  marker(start: 'S1' | 'S2', body: MarkerBody): LabelledEvent {
    const seq = (this.#seq.get(start) ?? 0) + 1;
    this.#seq.set(start, seq);
    const pid = start === 'S1' ? 500 : 600;
    const le = this.labeller.process(
      this.stream.user(MARKER_TYPE, pid, encodeMarker({ start, seq, body }, SECRET)),
    );
    this.out.push(...this.hold.push(le));
    return le;
  }

  sys(f: { pid: number; ppid: number; nr: number; exit?: number; a0?: string }): void {
    this.out.push(...this.hold.push(this.labeller.process(this.stream.syscall(f))));
  }

  contid(pid: number): string | null {
    return this.labeller.table.get(pid)?.label?.rendered ?? null;
  }
}

/** Start S1: 1000 (host) forks 1001 (container 4) and 1002 (container 5); 1001 forks 1003. */
function before(): Run {
  const r = new Run();
  r.marker('S1', { op: 'start', daemonPid: 500 });
  r.sys({ pid: 1000, ppid: 1, nr: 39 });
  for (const c of [1001, 1002]) {
    r.sys({ pid: 1000, ppid: 1, nr: 56, a0: FORK_FLAGS, exit: c });
    r.sys({ pid: c, ppid: 1000, nr: 39 });
  }
  assert.equal(only(r.marker('S1', { op: 'set', pid: 1001, contid: '4', caller: ORCH }).ops).errno, null);
  assert.equal(only(r.marker('S1', { op: 'set', pid: 1002, contid: '5', caller: ORCH }).ops).errno, null);
  r.sys({ pid: 1001, ppid: 1000, nr: 56, a0: FORK_FLAGS, exit: 1003 });
  r.sys({ pid: 1003, ppid: 1001, nr: 39 });
  return r;
}

type SeedProcs = Extract<MarkerBody, { op: 'seed' }>['procs'];

/** The new start's /proc snapshot: 1000, 1001 and 1003 still run, and `more`. */
function seed(r: Run, more: SeedProcs = []): void {
  r.marker('S2', {
    op: 'seed',
    procs: [
      { pid: 1000, ppid: 1, start: 10, pidns: 'host' },
      { pid: 1001, ppid: 1000, start: 11, pidns: 'host' },
      { pid: 1003, ppid: 1001, start: 13, pidns: 'host' },
      ...more,
    ],
  });
}

type RestoreProcs = Extract<MarkerBody, { op: 'restore' }>['procs'];

/** The checkpoint's labels come back: container 4, held by 1001, 1003 and `more`. */
function restore(r: Run, more: RestoreProcs = []): void {
  r.marker('S2', { op: 'restore-container', chain: ['4'], ownerUid: 0, ownerExe: '/usr/bin/runc' });
  r.marker('S2', {
    op: 'restore',
    procs: [{ pid: 1001, start: 11, chain: ['4'] }, { pid: 1003, start: 13, chain: ['4'] }, ...more],
  });
}

void describe('a restart with a checkpoint', () => {
  void it("restores the checkpoint's labels, holds events until then, and drops what died while down", () => {
    const r = before();
    // contid was killed; 1002 (all of 5) died meanwhile, 1004 was born to 1003 while down.
    r.marker('S2', { op: 'start', daemonPid: 600, restore: true });
    assert.equal(r.contid(1001), null, 'the new start knows nothing yet');
    seed(r, [{ pid: 1004, ppid: 1003, start: 14, pidns: 'host' }]);
    // An event of the container during the restore: held, not written as host.
    r.sys({ pid: 1003, ppid: 1001, nr: 59 });
    const setMeanwhile = only(r.marker('S2', { op: 'set', pid: 1000, contid: '9', caller: ORCH }).ops);
    assert.equal(setMeanwhile.errno, 'EAGAIN', 'no operation before the labels are back');
    assert.equal(r.hold.held, 1);
    restore(r, [{ pid: 1004, start: 14, chain: ['4'] }]);
    const done = r.marker('S2', {
      op: 'restore-done',
      from: 'S1',
      serial: 40,
      processes: 3,
      containers: 1,
      grants: 0,
    });
    assert.deepEqual(
      done.ops.map((o) => `${o.op} ${o.oldContid}`),
      ['drop 5'],
      '5 had no process left',
    );
    r.sys({ pid: 1004, ppid: 1003, nr: 39 });
    const labels = r.out.filter((le) => le.event.records[0]!.type === 1300).map((le) => le.contid);
    assert.deepEqual(labels.slice(-2), ['4', '4'], 'the held event and the next one carry 4');
    assert.equal(r.contid(1000), null);
    assert.equal(r.labeller.restores.at(-1)?.dropped, 1);
    // The owner can inject again; another orchestrator cannot take 4.
    r.sys({ pid: 1000, ppid: 1, nr: 56, a0: FORK_FLAGS, exit: 1005 });
    r.sys({ pid: 1005, ppid: 1000, nr: 39 });
    assert.equal(
      only(
        r.marker('S2', { op: 'set', pid: 1005, contid: '4', caller: { ...ORCH, exe: '/usr/bin/crun' } }).ops,
      ).errno,
      'ENOTUNIQ',
    );
    assert.equal(only(r.marker('S2', { op: 'set', pid: 1005, contid: '4', caller: ORCH }).ops).errno, null);
  });

  void it('processes made during the restore, each seen before its parent, all take the label of the first labelled ancestor', () => {
    const r = before();
    r.marker('S2', { op: 'start', daemonPid: 600, restore: true });
    seed(r);
    // A chain below 1003, each process recorded before its parent: creation
    // order is the reverse of the chain's.
    const DEPTH = 400;
    for (let i = DEPTH - 1; i >= 0; i--) r.sys({ pid: 3000 + i, ppid: i === 0 ? 1003 : 2999 + i, nr: 39 });
    // A host process's child seen before it: stays unset.
    r.sys({ pid: 4001, ppid: 4000, nr: 39 });
    r.sys({ pid: 4000, ppid: 1000, nr: 39 });
    restore(r);
    r.marker('S2', { op: 'restore-done', from: 'S1', serial: 40, processes: 2, containers: 1, grants: 0 });
    for (let i = 0; i < DEPTH; i++) assert.equal(r.contid(3000 + i), '4', `pid ${3000 + i}`);
    assert.equal(r.contid(4000), null);
    assert.equal(r.contid(4001), null);
  });

  void it('a restart without a checkpoint drops every container of the earlier start', () => {
    const r = before();
    const start = r.marker('S2', { op: 'start', daemonPid: 600 });
    assert.deepEqual(start.ops.map((o) => `${o.op} ${o.oldContid}`).sort(), ['drop 4', 'drop 5']);
    assert.equal(r.labeller.stats().containers, 0);
  });
});

function only<T>(items: readonly T[]): T {
  assert.equal(items.length, 1, JSON.stringify(items));
  return items[0]!;
}
