// Whole-stream properties of the labeller: forged markers, determinism,
// and the bounded process table.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { encodeMarker, MARKER_TYPE } from '../marker/format.js';
import { Labeller } from './labeller.js';
import { DAEMON_PID, ORCH, SECRET, START, World } from '../../test/support/labeller-world.js';

void describe('forged markers', () => {
  void it('a marker forged from inside a container is ignored and reported with the sender contid', () => {
    const w = new World();
    w.seen(100, 1);
    w.fork(100, 101);
    w.seen(101, 100);
    w.set(101, '4');
    w.fork(101, 102, 100);
    w.seen(102, 101);
    // 102 (in container 4) holds CAP_AUDIT_WRITE and replays a marker it guessed.
    const text = encodeMarker(
      { start: START, seq: 99, body: { op: 'set', pid: 200, contid: '666', caller: ORCH } },
      Buffer.alloc(32, 9),
    );
    const e = w.labeller.process(w.stream.user(MARKER_TYPE, 102, text));
    assert.deepEqual(e.ops, []);
    assert.equal(e.forgeries.length, 1);
    assert.deepEqual(
      { ...e.forgeries[0], detail: undefined },
      {
        reason: 'wrong-sender',
        detail: undefined,
        senderPid: 102,
        senderUid: 0,
        senderAuid: 4294967295,
        senderContid: '4',
        start: START,
        record: 1,
      },
    );
    assert.equal(e.contid, '4', 'the forged message itself is tagged as the sender event');
    assert.equal(w.labeller.stats().forgeries, 1);
  });

  void it('a genuine marker replayed by another process with the daemon text is refused', () => {
    const w = new World();
    w.seen(100, 1);
    w.fork(100, 101);
    w.seen(101, 100);
    const text = encodeMarker(
      { start: START, seq: 1, body: { op: 'set', pid: 101, contid: '4', caller: ORCH } },
      SECRET,
    );
    assert.equal(w.labeller.process(w.stream.user(MARKER_TYPE, DAEMON_PID, text)).ops[0]?.errno, null);
    const replay = w.labeller.process(w.stream.user(MARKER_TYPE, 101, text));
    assert.equal(replay.forgeries[0]?.reason, 'wrong-sender');
    const again = w.labeller.process(w.stream.user(MARKER_TYPE, DAEMON_PID, text));
    assert.equal(again.forgeries[0]?.reason, 'replayed');
  });

  void it('without a keyring every marker is a forgery', () => {
    const l = new Labeller();
    const w = new World();
    const text = encodeMarker({ start: START, seq: 1, body: { op: 'stop' } }, SECRET);
    assert.equal(
      l.process(w.stream.user(MARKER_TYPE, DAEMON_PID, text)).forgeries[0]?.reason,
      'unknown-start',
    );
  });
});

/** A scripted stream with forks, threads, sets, forgeries, exits and reuse. */
function script(w: World): unknown[] {
  const out: unknown[] = [];
  const keep = (x: unknown) =>
    out.push(JSON.parse(JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))));
  keep(w.seen(100, 1));
  for (let i = 0; i < 20; i++) {
    keep(w.fork(100, 200 + i));
    keep(w.seen(200 + i, 100));
    keep(w.set(200 + i, String(1 + (i % 3))));
    keep(w.sys({ pid: 200 + i, ppid: 100, nr: 56, a0: '3d0f00', exit: 900 + i }));
    keep(w.labeller.process(w.stream.user(MARKER_TYPE, 200 + i, 'contid-marker v=1 forged')));
  }
  for (let i = 0; i < 20; i += 2) keep(w.exit(200 + i, 100));
  keep(w.labeller.stats());
  return out;
}

void describe('determinism', () => {
  void it('the same input twice gives identical output', () => {
    const a = script(new World());
    const b = script(new World());
    assert.deepEqual(a, b);
    assert.equal(JSON.stringify(a), JSON.stringify(b));
  });
});

void describe('bounded table', () => {
  void it('filling beyond the bound evicts, counts it, and never grows past the bound', () => {
    const w = new World({ maxProcesses: 100 });
    for (let pid = 1000; pid < 3000; pid++) {
      w.seen(pid, 1);
      const s = w.labeller.stats();
      assert.ok(s.processes + s.retained <= 100, `size ${s.processes + s.retained} at pid ${pid}`);
    }
    const s = w.labeller.stats();
    assert.equal(s.processes, 100);
    assert.equal(s.evicted, 1900);
    assert.equal(s.max, 100);
  });

  void it('an evicted labelled process releases its hold on its ID', () => {
    const w = new World({ maxProcesses: 4 });
    w.seen(1000, 1);
    w.fork(1000, 1001);
    w.seen(1001, 1000);
    w.set(1001, '4');
    for (let pid = 3000; pid < 3010; pid++) {
      w.fork(1001, pid, 1000);
      w.seen(pid, 1001);
    }
    let live = 0;
    for (const e of w.labeller.table.liveEntries()) if (e.label?.text === '4') live++;
    assert.ok(w.labeller.stats().evicted >= 8);
    assert.equal(w.labeller.container('4')?.refs, live, 'one hold per live process, none for the evicted');
  });

  void it("one container's flood evicts its own processes, never another container's idle ones", () => {
    const w = new World({ maxProcesses: 50 });
    w.seen(1000, 1);
    for (const [child, id] of [
      [1001, '4'],
      [1002, '5'],
    ] as const) {
      w.fork(1000, child);
      w.seen(child, 1000);
      assert.equal(w.set(child, id).errno, null);
    }
    // 5's init idles; 4 forks processes that live on (killed unseen, say).
    let next = 3000;
    for (let i = 0; i < 500; i++) {
      w.fork(1001, next, 1000);
      w.seen(next, 1001);
      next++;
    }
    assert.equal(w.contid(1002), '5', "the idle container's init is still known");
    assert.equal(w.contid(1000), null);
    assert.ok(w.labeller.table.get(1000) !== undefined, 'and the host orchestrator');
    assert.ok(w.labeller.stats().evicted >= 450);
  });

  void it('open births are bounded and counted', () => {
    const w = new World({ maxBirths: 5 });
    w.seen(100, 1);
    for (let i = 0; i < 20; i++) w.fork(100, 1000 + i);
    assert.equal(w.labeller.stats().births, 5);
  });
});
