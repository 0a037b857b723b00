import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FORK_FLAGS } from '../../test/support/text-records.js';
import { HoldStage } from './hold.js';
import type { LabelledEvent } from './labeller.js';
import { ORCH, World } from '../../test/support/labeller-world.js';

const RUNTIME = 13289;
const S = 13291; // container init, labelled 77, own pid namespace
const P = 13303; // a background subshell of S, whose first record arrives late
const G = 13304; // P's child, whose execve arrives first

function container(): { w: World; hold: HoldStage; out: LabelledEvent[] } {
  const w = new World();
  w.seen(RUNTIME, 1000);
  w.sys({ pid: RUNTIME, ppid: 1000, nr: 56, a0: '6c020011', exit: S });
  assert.equal(w.set(S, '77', ORCH, RUNTIME).errno, null);
  w.sys({ pid: S, ppid: RUNTIME, nr: 56, a0: FORK_FLAGS, exit: 2 });
  return { w, hold: new HoldStage(w.labeller), out: [] };
}

const pids = (out: LabelledEvent[]): string[] =>
  out.map((le) => `${/ pid=(\d+)/.exec(le.event.records[0]!.body)?.[1] ?? '?'}:${le.contid ?? '-'}`);

void describe('hold stage', () => {
  void it("holds a child's event that arrived before its parent, then writes it with the label", () => {
    const { w, hold, out } = container();
    out.push(...hold.push(w.sys({ pid: G, ppid: P, nr: 59 }, 0)));
    assert.equal(out.length, 0, 'held: nothing is known of G yet');
    out.push(...hold.push(w.sys({ pid: P, ppid: S, nr: 56, a0: FORK_FLAGS, exit: 3 }, 0)));
    out.push(...hold.push(w.sys({ pid: G, ppid: P, nr: 231 }, 5)));
    out.push(...hold.end());
    assert.deepEqual(pids(out), [`${G}:77`, `${P}:77`, `${G}:77`]);
    const first = out[0]!;
    assert.equal(first.containerIdRecord?.body, 'record=1 contid=77');
    assert.equal(hold.resolved, 1);
    assert.equal(hold.expired, 0);
  });

  void it('writes a held event as unknown, never as host, once the hold time has passed', () => {
    const { w, out } = container();
    const hold = new HoldStage(w.labeller, { maxHoldMs: 2000 });
    out.push(...hold.push(w.sys({ pid: G, ppid: P, nr: 59 }, 0)));
    out.push(...hold.push(w.sys({ pid: 2000, ppid: 1, nr: 39 }, 2500)));
    assert.deepEqual(pids(out), [`${G}:unknown`, '2000:-']);
    assert.equal(out[0]!.containerIdRecord?.body, 'record=1 contid=unknown');
    assert.equal(hold.expired, 1);
  });

  void it('releases everything at the end of input, in arrival order, as unknown', () => {
    const { w, hold, out } = container();
    out.push(...hold.push(w.sys({ pid: G, ppid: P, nr: 59 }, 0)));
    out.push(...hold.push(w.sys({ pid: 4001, ppid: 4000, nr: 59 }, 1)));
    out.push(...hold.end());
    assert.deepEqual(pids(out), [`${G}:unknown`, '4001:unknown']);
    assert.equal(hold.held, 0);
  });

  void it('a child that exited while it waited still gets the label when its parent shows up', () => {
    // Seen live (crun, a background job): the child's execve and exit_group
    // arrived before any record of its parent; its parent's first record came
    // after the child had exited.
    const { w, hold, out } = container();
    out.push(...hold.push(w.sys({ pid: G, ppid: P, nr: 59 }, 0)));
    out.push(...hold.push(w.sys({ pid: G, ppid: P, nr: 231 }, 0)));
    assert.equal(out.length, 0);
    out.push(...hold.push(w.sys({ pid: P, ppid: S, nr: 56, a0: FORK_FLAGS, exit: 3 }, 0)));
    out.push(...hold.end());
    assert.deepEqual(pids(out), [`${G}:77`, `${G}:77`, `${P}:77`]);
  });

  void it("the daemon's answer about a parent blocked in vfork resolves the wait, however late", () => {
    // P forks, then vforks G and stays blocked: no record of P at all. G runs
    // for longer than any hold time of its own; the daemon read /proc/P.
    const { w, hold, out } = container();
    out.push(...hold.push(w.sys({ pid: G, ppid: P, nr: 59 }, 0)));
    out.push(...hold.push(w.sys({ pid: 2000, ppid: 1, nr: 39 }, 30_000)));
    w.marker({ op: 'proc', pid: P, ppid: S, start: 123, nspid: 2 });
    out.push(...hold.push(w.sys({ pid: G, ppid: P, nr: 39 }, 1)));
    out.push(...hold.end());
    assert.deepEqual(pids(out), ['2000:-', `${G}:77`, `${G}:77`]);
    assert.equal(w.labeller.table.get(P)?.startTime, 123);
  });

  void it("a 'gone' answer ends the wait at once: the held events are written as unknown", () => {
    const { w, hold, out } = container();
    out.push(...hold.push(w.sys({ pid: G, ppid: P, nr: 59 }, 0)));
    w.marker({ op: 'gone', pid: P });
    out.push(...hold.push(w.sys({ pid: 2000, ppid: 1, nr: 39 }, 1)));
    assert.deepEqual(pids(out), [`${G}:unknown`, '2000:-']);
  });

  void it('holds nothing while no container is live', () => {
    const w = new World();
    const hold = new HoldStage(w.labeller);
    assert.equal(hold.push(w.sys({ pid: 5000, ppid: 6000, nr: 59 }, 0)).length, 1);
    assert.equal(hold.held, 0);
  });

  void it('bounds the events held', () => {
    const { w } = container();
    const hold = new HoldStage(w.labeller, { maxHeld: 3 });
    const out: LabelledEvent[] = [];
    for (let i = 0; i < 10; i++) out.push(...hold.push(w.sys({ pid: 5000 + i, ppid: 6000 + i, nr: 59 }, 0)));
    assert.equal(hold.held, 3);
    assert.equal(out.length, 7);
    assert.ok(out.every((le) => le.contid === 'unknown'));
  });

  void it("one wait's flood cannot push out another wait's events", () => {
    const { w } = container();
    const hold = new HoldStage(w.labeller, { maxHeld: 8, maxPerWait: 4 });
    const out: LabelledEvent[] = [];
    // A victim: G waits for P.
    out.push(...hold.push(w.sys({ pid: G, ppid: P, nr: 59 }, 0)));
    // A flood: 100 children of one never-seen 7000, then of ten others.
    for (let i = 0; i < 100; i++) out.push(...hold.push(w.sys({ pid: 8000 + i, ppid: 7000, nr: 59 }, 0)));
    for (let i = 0; i < 100; i++)
      out.push(...hold.push(w.sys({ pid: 9000 + i, ppid: 7100 + (i % 20), nr: 59 }, 0)));
    assert.ok(!pids(out).some((p) => p.startsWith(`${G}:`)), 'the victim is still held');
    out.push(...hold.push(w.sys({ pid: P, ppid: S, nr: 56, a0: FORK_FLAGS, exit: 3 }, 0)));
    assert.ok(pids(out).includes(`${G}:77`), 'and gets its label');
    assert.equal(hold.stats().overflowed, 200 - hold.held, "the flood's own events went");
  });

  void it('a held process whose awaited pid turns up as its own child (pid reuse) is written as unknown, and the stage goes on', () => {
    const { w, hold, out } = container();
    out.push(...hold.push(w.sys({ pid: 1054, ppid: 1053, nr: 59 }, 0)));
    out.push(...hold.push(w.sys({ pid: 1053, ppid: 1054, nr: 39 }, 0)));
    out.push(...hold.push(w.sys({ pid: 1054, ppid: 1053, nr: 231 }, 5)));
    w.set(S, '78'); // a marker on the way: refused (S is labelled), and judged without walking a cycle
    out.push(...hold.end());
    assert.deepEqual(pids(out).slice(0, 3), ['1054:unknown', '1053:unknown', '1054:unknown']);
    assert.equal(hold.held, 0);
  });
});
