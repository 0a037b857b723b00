import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { MarkerBody } from '../marker/format.js';
import type { Checkpoint } from './checkpoint.js';
import { planRestore } from './restore-plan.js';

const HOST = '1:pids:/\n0::/\n';

function checkpoint(over: Partial<Checkpoint> = {}): Checkpoint {
  return {
    version: 1,
    startId: 'S1',
    savedAt: '2026-12-07T00:00:00.000Z',
    node: null,
    stream: { serial: 500, timeMs: 1_700_000_000_000 },
    containers: [
      {
        chain: ['4'],
        ownerUid: 0,
        ownerExe: '/usr/bin/runc',
        anchor: { hierarchy: '1:pids', path: '/ctr4' },
      },
      { chain: ['5', '4'], ownerUid: 1000, ownerExe: '/usr/bin/lxc' },
      { chain: ['6'], ownerUid: 0, ownerExe: '/usr/bin/runc' },
    ],
    processes: [
      { pid: 1001, ppid: 1000, start: 11, chain: ['4'] },
      { pid: 1002, ppid: 1001, start: 12, chain: ['5', '4'] },
      { pid: 1003, ppid: 1000, start: 13, chain: ['6'] },
      { pid: 1004, ppid: 1000, start: 14, chain: null },
    ],
    grants: [
      { pid: 1001, start: 11, uid: 1000, exe: '/usr/bin/lxc' },
      { pid: 1003, start: 13, uid: 0, exe: null },
    ],
    leftOut: 0,
    ...over,
  };
}

function ops(markers: readonly MarkerBody[]): string[] {
  return markers.map((m) => {
    switch (m.op) {
      case 'restore-container':
        return `container ${m.chain.join('+')}`;
      case 'restore':
        return `procs ${m.procs.map((p) => `${p.pid}:${p.chain === null ? 'u' : p.chain.join('+')}`).join(' ')}`;
      case 'restore-grant':
        return `grant ${m.pid}`;
      case 'restore-done':
        return `done ${m.processes} ${m.containers} ${m.grants}`;
      default:
        return m.op;
    }
  });
}

void describe('restore plan', () => {
  void it('keeps the same incarnations, follows ancestry for those born while down, drops the dead', () => {
    const cgroups = new Map([
      [1101, '1:pids:/ctr4\n0::/\n'],
      [1200, HOST],
    ]);
    const plan = planRestore(
      checkpoint(),
      [
        { pid: 1, ppid: 0, startTime: 1 },
        { pid: 1000, ppid: 1, startTime: 10 },
        { pid: 1001, ppid: 1000, startTime: 11 }, // kept
        { pid: 1002, ppid: 1001, startTime: 12 }, // kept (nested)
        { pid: 1003, ppid: 1000, startTime: 99 }, // another incarnation: 6 has died
        { pid: 1004, ppid: 1000, startTime: 14 }, // kept, unknown
        { pid: 1005, ppid: 1002, startTime: 20 }, // born while down, child of 1002
        { pid: 1006, ppid: 1005, startTime: 21 }, // and its child
        { pid: 1101, ppid: 1, startTime: 30 }, // reparented, in 4's cgroup
        { pid: 1200, ppid: 1, startTime: 40 }, // a host process
      ],
      { cgroupOf: (pid) => cgroups.get(pid) ?? null, hostRefs: [HOST], perMarker: 200 },
    );
    assert.deepEqual(ops(plan.markers), [
      'container 4',
      'container 5+4',
      'procs 1001:4 1002:5+4 1004:u 1005:5+4 1006:5+4 1101:4',
      'grant 1001',
      'done 6 2 1',
    ]);
    assert.deepEqual(plan.counts, { kept: 3, inherited: 2, adopted: 1, ended: 1 });
  });

  void it('splits the processes over markers and says where the restored start stopped reading', () => {
    const procs = Array.from({ length: 5 }, (_, i) => ({ pid: 2000 + i, ppid: 1, start: i, chain: ['4'] }));
    const plan = planRestore(
      checkpoint({ processes: procs, grants: [] }),
      procs.map((p) => ({ pid: p.pid, ppid: 1, startTime: p.start })),
      { cgroupOf: () => null, hostRefs: [HOST], perMarker: 2 },
    );
    assert.deepEqual(
      plan.markers.map((m) => m.op),
      ['restore-container', 'restore', 'restore', 'restore', 'restore-done'],
    );
    const done = plan.markers.at(-1)!;
    assert.ok(done.op === 'restore-done' && done.from === 'S1' && done.serial === 500);
  });
});
