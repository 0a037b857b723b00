import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProcTracker, type ProcChange, type ProcEvent, type ProcSpan } from './procs.js';
import type { Lifecycle } from './row.js';

const C = 7;
const D = 8;

/** The tracker with the `procs` table its changes make, as rows by id. */
function world(options: { maxOpen?: number; maxBirths?: number } = {}) {
  const tracker = new ProcTracker({ nextId: 1, ...options });
  const rows = new Map<number, ProcSpan & { endMs: number | null; endHow: string | null }>();
  let id = 0;
  let t = 1_000_000;
  const apply = (changes: readonly ProcChange[]): void => {
    for (const c of changes) {
      if (c.kind === 'open') rows.set(c.span.id, { ...c.span, endMs: null, endHow: null });
      else if (c.kind === 'close') Object.assign(rows.get(c.id)!, { endMs: c.endMs, endHow: c.how });
      else Object.assign(rows.get(c.id)!, { how: 'fork', startMs: c.startMs, bornMs: c.startMs, born: true });
    }
  };
  const ev = (e: Partial<ProcEvent> & { pid: number; ppid: number }, step = 10): void => {
    t += step;
    apply(tracker.event({ id: ++id, timeMs: t, node: null, chain: C, exe: 1, life: null, drops: [], ...e }));
  };
  const fork = (parent: number, exit: number, extra: Partial<Lifecycle> = {}): Lifecycle => ({
    kind: 'fork',
    child: exit,
    parent,
    newPidNamespace: false,
    ...extra,
  });
  const alive = (): number[] =>
    [...rows.values()]
      .filter((r) => r.endMs === null)
      .map((r) => r.pid)
      .sort((a, b) => a - b);
  return { tracker, rows, ev, fork, alive, now: () => t };
}

test('in a container with its own pid namespace, a child is known by its own first event', () => {
  const w = world();
  w.ev({ pid: 5000, ppid: 4990 }); // the container's init, labelled before: seen
  w.ev({ pid: 5000, ppid: 4990, life: w.fork(5000, 2) }); // exit=2: its pid in the namespace
  assert.deepEqual(w.alive(), [5000], 'not opened as pid 2');
  const forkedAt = w.now();
  w.ev({ pid: 5001, ppid: 5000, exe: 2, life: { kind: 'exec' } }, 50);
  assert.deepEqual(w.alive(), [5000, 5001]);
  const child = [...w.rows.values()].filter((r) => r.pid === 5001);
  assert.equal(child[0]!.how, 'fork');
  assert.equal(child[0]!.startMs, forkedAt, 'born at the fork');
  assert.equal(child[0]!.endHow, 'exec');
  assert.equal(child[1]!.exe, 2);
  // Its parent is now known to number pids differently: the next birth waits too.
  w.ev({ pid: 5000, ppid: 4990, life: w.fork(5000, 3) });
  assert.deepEqual(w.alive(), [5000, 5001]);
  w.ev({ pid: 5001, ppid: 5000, life: { kind: 'exit' } });
  assert.deepEqual(w.alive(), [5000]);
});

test('in a container that shares the host pid numbers, births open at once once that is known', () => {
  const w = world();
  w.ev({ pid: 600, ppid: 1 });
  w.ev({ pid: 600, ppid: 1, life: w.fork(600, 601) });
  w.ev({ pid: 601, ppid: 600 }); // confirms: exit= is the pid
  w.ev({ pid: 600, ppid: 1, life: w.fork(600, 602) });
  assert.deepEqual(w.alive(), [600, 601, 602], 'an idle child is shown');
  w.ev({ pid: 600, ppid: 1, life: { kind: 'exit' } });
  assert.deepEqual(w.alive(), [601, 602]);
});

test("a vfork child's events come before its parent's record: one birth, at the earlier time", () => {
  const w = world();
  w.ev({ pid: 700, ppid: 1 });
  w.ev({ pid: 700, ppid: 1, life: w.fork(700, 701) });
  w.ev({ pid: 701, ppid: 700 });
  const childAt = w.now() + 10;
  w.ev({ pid: 702, ppid: 700, life: { kind: 'exec' } }); // the vfork child execs first
  w.ev({ pid: 700, ppid: 1, life: w.fork(700, 702) }); // then the parent's vfork returns
  const spans = [...w.rows.values()].filter((r) => r.pid === 702);
  assert.equal(spans.length, 1);
  assert.equal(spans[0]!.how, 'fork');
  assert.equal(spans[0]!.startMs, childAt);
  // A vfork child that ran and exited before its parent's record: no second life.
  w.ev({ pid: 703, ppid: 700, life: { kind: 'exit' } });
  w.ev({ pid: 700, ppid: 1, life: w.fork(700, 703) });
  const short = [...w.rows.values()].filter((r) => r.pid === 703);
  assert.equal(short.length, 1);
  assert.equal(short[0]!.endHow, 'exit');
  assert.equal(short[0]!.born, true);
  assert.deepEqual(w.alive(), [700, 701, 702]);
});

test('a drop ends what is left of the container; a host fork of a pid ends the stale span', () => {
  const w = world();
  w.ev({ pid: 800, ppid: 1 });
  w.ev({ pid: 801, ppid: 800 });
  w.ev({ pid: 900, ppid: 1, chain: D });
  w.ev({ pid: 801, ppid: 800, life: { kind: 'exit' }, drops: [C] });
  assert.deepEqual(w.alive(), [900]);
  assert.equal([...w.rows.values()].find((r) => r.pid === 800)!.endHow, 'drop');
  w.ev({ pid: 1, ppid: 0, chain: null, life: w.fork(1, 900) });
  assert.deepEqual(w.alive(), []);
  assert.equal([...w.rows.values()].find((r) => r.pid === 900)!.endHow, 'reuse');
});

test('a process labelled while running moves into the container; threads made by clone3 never appear', () => {
  const w = world();
  w.ev({ pid: 1000, ppid: 1, chain: null });
  assert.deepEqual(w.alive(), [], 'host processes are not followed');
  w.ev({ pid: 1000, ppid: 1 });
  assert.equal([...w.rows.values()][0]!.how, 'seen');
  w.ev({ pid: 1000, ppid: 1, chain: D });
  const spans = [...w.rows.values()];
  assert.deepEqual(
    spans.map((r) => [r.chain, r.how, r.endHow]),
    [
      [C, 'seen', 'label'],
      [D, 'label', null],
    ],
  );
  for (let i = 0; i < 5; i++)
    w.ev({
      pid: 1000,
      ppid: 1,
      chain: D,
      life: { kind: 'clone3', child: 1001 + i, parent: 1000, newPidNamespace: false },
    });
  // The threads' own events carry their process's pid.
  w.ev({ pid: 1000, ppid: 1, chain: D });
  assert.deepEqual(w.alive(), [1000]);
  assert.equal(w.tracker.stats().heldBirths, 5);
  w.ev({ pid: 1000, ppid: 1, chain: D }, 120_000);
  assert.equal(w.tracker.stats().heldBirths, 0, 'held births expire');
});

test('open spans and held births are bounded, and evictions counted', () => {
  const w = world({ maxOpen: 100, maxBirths: 10 });
  for (let pid = 2000; pid < 2300; pid++) w.ev({ pid, ppid: 1 });
  assert.equal(w.alive().length, 100);
  assert.deepEqual(w.alive().slice(0, 1), [2200], 'the oldest went first');
  assert.equal(w.tracker.stats().evicted, 200);
  for (let i = 0; i < 50; i++) w.ev({ pid: 2299, ppid: 1, life: w.fork(2299, 3 + i) });
  assert.equal(w.tracker.stats().heldBirths, 10);
});
