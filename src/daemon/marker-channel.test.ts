import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Stream } from '../../test/support/text-records.js';
import { MARKER_TYPE, parseMarkerText, type Marker } from '../marker/format.js';
import type { AuditRecord } from '../parse/record.js';
import { MarkerChannel } from './marker-channel.js';

const START = '20261128T175500Z-4242-abcd';
const PID = 4242;

/** A channel whose markers go to a list instead of the kernel; `fail` makes the next send throw. */
function channel(sealIntervalMs = 0, clock: { losses?: () => number; now?: () => number } = {}) {
  const sent: string[] = [];
  const echoes: (string | null)[] = [];
  const lines: string[] = [];
  const state = { fail: false, expected: 0 };
  const markers = new MarkerChannel({
    keyring: { startId: START, daemonPid: PID, secret: Buffer.alloc(32, 7) },
    selfPid: PID,
    send: (type, text) => {
      assert.equal(type, MARKER_TYPE);
      if (state.fail) throw new Error('ENOBUFS');
      sent.push(text);
    },
    expectMarker: () => {
      state.expected++;
    },
    sealIntervalMs,
    losses: clock.losses ?? (() => 0),
    onEcho: (node) => echoes.push(node),
    log: (_level, message) => lines.push(message),
    now: clock.now ?? (() => 1_700_000_000_000),
  });
  return { markers, sent, echoes, lines, state };
}

function parsed(text: string): Marker {
  const m = parseMarkerText(text);
  if (typeof m === 'string') assert.fail(m);
  return m.marker;
}

/** The record of a marker as the kernel sends it back, stamped with `pid`. */
function echo(stream: Stream, text: string, pid = PID): AuditRecord {
  return stream.user(MARKER_TYPE, pid, text).records[0]!;
}

test('markers count up from 1; one that cannot be sent takes no seq', () => {
  const { markers, sent, state } = channel();
  assert.equal(markers.nextSeq, 1);
  assert.equal(markers.send({ op: 'start', daemonPid: PID }), 1);
  state.fail = true;
  assert.throws(() => markers.send({ op: 'stop' }), /ENOBUFS/);
  state.fail = false;
  assert.equal(markers.nextSeq, 2);
  assert.equal(markers.send({ op: 'stop' }), 2);
  assert.deepEqual(
    sent.map((t) => parsed(t).seq),
    [1, 2],
  );
  // The reader is told before each send, the failed one included.
  assert.equal(state.expected, 3);
});

test("a marker names the kernel stamp of this start's latest marker read back as prev", () => {
  const { markers, sent } = channel();
  const stream = new Stream();
  markers.send({ op: 'start', daemonPid: PID });
  assert.equal(parsed(sent[0]!).prev, undefined);
  const own = echo(stream, sent[0]!);
  markers.noteOwn(own);
  // Another process's copy of the text, stamped with its own pid, is not the daemon's marker.
  markers.noteOwn(echo(stream, sent[0]!, PID + 1));
  markers.send({ op: 'stop' });
  assert.deepEqual(parsed(sent[1]!).prev, { time: own.time, serial: own.serial });
});

test('awaitEcho resolves when the marker is read back, and reports its node', async () => {
  const { markers, sent, echoes } = channel();
  const stream = new Stream();
  const seq = markers.send({ op: 'start', daemonPid: PID });
  let done = false;
  const confirmed = markers.awaitEcho(seq).then(() => (done = true));
  assert.equal(markers.awaiting, true);
  markers.checkEcho(echo(stream, sent[0]!, PID + 1));
  await Promise.resolve();
  assert.equal(done, false);
  assert.deepEqual(echoes, []);
  markers.checkEcho(echo(stream, sent[0]!));
  await confirmed;
  assert.deepEqual(echoes, [null]);
  assert.equal(markers.awaiting, false);
});

test("sealing begins with this start's own start marker read back", () => {
  const { markers, sent } = channel(1000);
  const stream = new Stream();
  markers.send({ op: 'start', daemonPid: PID });
  markers.noteOwn(echo(stream, sent[0]!, PID + 1));
  assert.equal(markers.sealNode, undefined);
  assert.equal(markers.sealer!.begun, false);
  markers.noteOwn(echo(stream, sent[0]!));
  assert.equal(markers.sealNode, null);
  assert.equal(markers.sealer!.begun, true);
});

test('sealIfDue() seals from a wake-up that happens anyway, once per interval, only while sealing', (t) => {
  let now = 1_700_000_000_000;
  // Every seal() looks at the losses first: a count of the seals attempted.
  let seals = 0;
  const { markers } = channel(10_000, {
    now: () => now,
    losses: () => {
      seals++;
      return 0;
    },
  });
  markers.sealIfDue();
  assert.equal(seals, 0, 'sealed before sealing started');
  markers.startSealing();
  t.after(() => {
    markers.stopSealing();
  });
  now += 9_999;
  markers.sealIfDue();
  assert.equal(seals, 0, 'sealed before the interval passed');
  now += 1;
  markers.sealIfDue();
  assert.equal(seals, 1);
  markers.sealIfDue();
  assert.equal(seals, 1, 'sealed twice in one interval');
  now += 10_000;
  markers.sealIfDue();
  assert.equal(seals, 2);
  // Within the slack (a quarter of the interval at most) a batch seals early.
  now += 9_000;
  markers.sealIfDue(1_000);
  assert.equal(seals, 3, 'a seal due within the slack waited for its timer');
  now += 7_000;
  markers.sealIfDue(5_000);
  assert.equal(seals, 3, 'the slack went past a quarter of the interval');
  now += 500;
  markers.sealIfDue(5_000);
  assert.equal(seals, 4);
});

test('without a seal interval there is no sealer and seal() sends nothing', () => {
  const { markers, sent } = channel(0);
  assert.equal(markers.sealer, null);
  markers.seal(true);
  assert.deepEqual(sent, []);
  assert.equal(markers.stats(), null);
});
