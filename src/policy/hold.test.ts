import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FORK_FLAGS } from '../track/testing.js';
import { HoldStage } from './hold.js';
import type { LabelledEvent } from './labeller.js';
import { ORCH, World } from './testing-world.js';

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

  void it('writes a held event unlabelled once its parent has not appeared within the hold time', () => {
    const { w, hold, out } = container();
    out.push(...hold.push(w.sys({ pid: G, ppid: P, nr: 59 }, 0)));
    out.push(...hold.push(w.sys({ pid: 2000, ppid: 1, nr: 39 }, 2500)));
    assert.deepEqual(pids(out), [`${G}:-`, '2000:-']);
    assert.equal(hold.expired, 1);
  });

  void it('releases everything at the end of input, in arrival order', () => {
    const { w, hold, out } = container();
    out.push(...hold.push(w.sys({ pid: G, ppid: P, nr: 59 }, 0)));
    out.push(...hold.push(w.sys({ pid: 4001, ppid: 4000, nr: 59 }, 1)));
    out.push(...hold.end());
    assert.deepEqual(pids(out), [`${G}:-`, '4001:-']);
    assert.equal(hold.held, 0);
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
  });
});
