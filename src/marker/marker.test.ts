import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Stream } from '../../test/support/text-records.js';
import { encodeMarker, MARKER_TYPE, parseMarkerText, type Marker } from './format.js';
import { formatKeyringEntry, KeyringSyntaxError, parseKeyring, type Keyring } from './keyring.js';
import { MarkerState, verifyMarker } from './verify.js';

type SetBody = Extract<Marker['body'], { op: 'set' }>;
const SECRET = Buffer.alloc(32, 1);
const OTHER = Buffer.alloc(32, 2);
const RING: Keyring = new Map([
  ['S1', { startId: 'S1', daemonPid: 500, secret: SECRET }],
  ['S2', { startId: 'S2', daemonPid: 600, secret: OTHER }],
  ['S3', { startId: 'S3', daemonPid: null, secret: SECRET }],
]);
const SET: Marker = {
  start: 'S1',
  seq: 1,
  body: {
    op: 'set',
    pid: 8730,
    ppid: 8724,
    contid: '4',
    caller: { pid: 8724, uid: 0, auid: 4294967295, exe: '/usr/bin/runc', privileged: true },
  },
};

function verify(stream: Stream, state: MarkerState, pid: number, text: string, type = MARKER_TYPE) {
  const record = stream.user(type, pid, text).records[0]!;
  return verifyMarker(record, RING, state);
}

void describe('marker format', () => {
  void it('encodes the documented text and parses it back', () => {
    const text = encodeMarker(SET, SECRET);
    assert.match(
      text,
      /^contid-marker v=1 start=S1 seq=1 op=set pid=8730 ppid=8724 contid=4 caller-pid=8724 caller-uid=0 caller-auid=4294967295 caller-exe=2f7573722f62696e2f72756e63 privileged=1 mac=[0-9a-f]{64}$/,
    );
    const parsed = parseMarkerText(text);
    assert.ok(typeof parsed !== 'string');
    assert.deepEqual(parsed.marker, SET);
  });

  void it('encodes an exit (a death by signal) and parses it back', () => {
    const exit: Marker = { start: 'S1', seq: 2, body: { op: 'exit', pid: 8730, ppid: 8724, status: 9 } };
    const text = encodeMarker(exit, SECRET);
    assert.match(
      text,
      /^contid-marker v=1 start=S1 seq=2 op=exit pid=8730 ppid=8724 status=9 mac=[0-9a-f]{64}$/,
    );
    const parsed = parseMarkerText(text);
    assert.ok(typeof parsed !== 'string');
    assert.deepEqual(parsed.marker, exit);
    assert.equal(
      parseMarkerText(`contid-marker v=1 start=S1 seq=2 op=exit pid=1 status=9 mac=${'0'.repeat(64)}`),
      'bad exit fields',
    );
  });

  void it('encodes a seal with the stamp of the marker before it, and parses it back', () => {
    const seal: Marker = {
      start: 'S1',
      seq: 9,
      prev: { time: '1795886108.542', serial: 501888 },
      body: {
        op: 'seal',
        from: 501760,
        to: 502015,
        records: 731,
        since: '1795886100.001',
        until: '1795886106.990',
        late: 2,
        lossy: true,
        digest: 'ab'.repeat(32),
      },
    };
    const text = encodeMarker(seal, SECRET);
    assert.match(
      text,
      /^contid-marker v=1 start=S1 seq=9 prev=1795886108\.542:501888 op=seal from=501760 to=502015 records=731 since=1795886100\.001 until=1795886106\.990 late=2 lossy=1 digest=(ab){32} mac=[0-9a-f]{64}$/,
    );
    const parsed = parseMarkerText(text);
    assert.ok(typeof parsed !== 'string');
    assert.deepEqual(parsed.marker, seal);
    const empty: Marker = {
      start: 'S1',
      seq: 10,
      body: { op: 'seal', from: 1, to: 64, records: 0, lossy: false, digest: '0'.repeat(64) },
    };
    const back = parseMarkerText(encodeMarker(empty, SECRET));
    assert.ok(typeof back !== 'string');
    assert.deepEqual(back.marker, empty);
  });

  const malformed: [string, string][] = [
    ['bad prev', `contid-marker v=1 start=S1 seq=2 prev=1.5:7 op=stop mac=${'0'.repeat(64)}`],
    [
      'bad seal span',
      `contid-marker v=1 start=S1 seq=2 op=seal from=9 to=8 records=0 digest=${'0'.repeat(64)} mac=${'0'.repeat(64)}`,
    ],
    [
      'bad seal times',
      `contid-marker v=1 start=S1 seq=2 op=seal from=1 to=8 records=1 since=1.000 digest=${'0'.repeat(64)} mac=${'0'.repeat(64)}`,
    ],
    [
      'bad digest',
      `contid-marker v=1 start=S1 seq=2 op=seal from=1 to=8 records=0 digest=00 mac=${'0'.repeat(64)}`,
    ],
    ['no mac', 'contid-marker v=1 start=S1 seq=1 op=stop'],
    ['unsupported version', `contid-marker v=2 start=S1 seq=1 op=stop mac=${'0'.repeat(64)}`],
    ['unknown op', `contid-marker v=1 start=S1 seq=1 op=kill mac=${'0'.repeat(64)}`],
    ['unexpected field x', `contid-marker v=1 start=S1 seq=1 op=stop x=1 mac=${'0'.repeat(64)}`],
    ['repeated field seq', `contid-marker v=1 start=S1 seq=1 seq=2 op=stop mac=${'0'.repeat(64)}`],
    ['bad seq', `contid-marker v=1 start=S1 seq=-1 op=stop mac=${'0'.repeat(64)}`],
  ];
  for (const [reason, text] of malformed) {
    void it(`refuses a marker text with ${reason}`, () => {
      assert.equal(parseMarkerText(text), reason);
    });
  }

  void it('encodes a named owner (hex) and create-only for a set, and parses them back', () => {
    const owned: Marker = { ...SET, body: { ...(SET.body as SetBody), owner: 'oci:web_1', create: true } };
    const text = encodeMarker(owned, SECRET);
    assert.match(text, / contid=4 owner=6f63693a7765625f31 create=1 caller-pid=8724 .* mac=[0-9a-f]{64}$/);
    const parsed = parseMarkerText(text);
    assert.ok(typeof parsed !== 'string');
    assert.deepEqual(parsed.marker, owned);
    const tail = `caller-pid=1 caller-uid=0 caller-auid=0 caller-exe=2f privileged=1 mac=${'0'.repeat(64)}`;
    const head = 'contid-marker v=1 start=S1 seq=1';
    assert.equal(parseMarkerText(`${head} op=set pid=1 contid=4 owner=6f20 ${tail}`), 'bad owner');
    assert.equal(parseMarkerText(`${head} op=set pid=1 contid=4 owner= ${tail}`), 'bad owner');
    assert.equal(parseMarkerText(`${head} op=set pid=1 contid=4 create=0 ${tail}`), 'bad create');
    assert.equal(
      parseMarkerText(`${head} op=adopt pid=1 contid=4 create=1 ${tail}`),
      'unexpected field create',
    );
    assert.throws(
      () => encodeMarker({ ...SET, body: { ...(SET.body as SetBody), owner: 'oci:a b' } }, SECRET),
      { message: 'Cannot encode the marker: "oci:a b" is not an owner name' },
    );
  });

  void it('refuses to encode a contid that could inject fields', () => {
    assert.throws(
      () => encodeMarker({ ...SET, body: { ...SET.body, contid: "4 op=x'" } as Marker['body'] }, SECRET),
      RangeError,
    );
  });
});

void describe('marker verification', () => {
  void it('honours a marker sent by the daemon pid with a good MAC', () => {
    const v = verify(new Stream(), new MarkerState(), 500, encodeMarker(SET, SECRET));
    assert.equal(v.kind, 'valid');
  });

  const forgeries: { name: string; pid: number; text: () => string; type?: number; reason: string }[] = [
    {
      name: 'a marker from another pid',
      pid: 18617,
      text: () => encodeMarker(SET, SECRET),
      reason: 'wrong-sender',
    },
    {
      name: 'a marker with a bad MAC',
      pid: 500,
      text: () => encodeMarker(SET, OTHER),
      reason: 'bad-mac',
    },
    {
      name: 'a marker whose text was changed after signing',
      pid: 500,
      text: () => encodeMarker(SET, SECRET).replace('contid=4', 'contid=5'),
      reason: 'bad-mac',
    },
    {
      name: 'a marker of an unknown start',
      pid: 500,
      text: () => encodeMarker({ ...SET, start: 'S9' }, SECRET),
      reason: 'unknown-start',
    },
    {
      name: 'marker text in another user message type',
      pid: 500,
      text: () => encodeMarker(SET, SECRET),
      type: 1100,
      reason: 'wrong-type',
    },
    {
      name: 'garbage in the marker type',
      pid: 18617,
      text: () => 'op=set-contid pid=1 contid=666',
      reason: 'malformed',
    },
    {
      name: 'a marker of a start without a pid, before its start marker',
      pid: 500,
      text: () => encodeMarker({ ...SET, start: 'S3' }, SECRET),
      reason: 'wrong-sender',
    },
  ];
  for (const f of forgeries) {
    void it(`reports ${f.name} as ${f.reason}`, () => {
      const v = verify(new Stream(), new MarkerState(), f.pid, f.text(), f.type);
      assert.equal(v.kind, 'forged');
      assert.equal(v.kind === 'forged' ? v.reason : '', f.reason);
      assert.equal(v.kind === 'forged' ? v.sender.pid : 0, f.pid);
    });
  }

  void it('ignores user messages that do not look like markers', () => {
    const v = verify(new Stream(), new MarkerState(), 1, 'op=login acct="root" res=success', 1100);
    assert.equal(v.kind, 'none');
  });

  void it('reports a replayed marker (same seq) as replayed', () => {
    const s = new Stream();
    const state = new MarkerState();
    const text = encodeMarker(SET, SECRET);
    assert.equal(verify(s, state, 500, text).kind, 'valid');
    const again = verify(s, state, 500, text);
    assert.equal(again.kind === 'forged' ? again.reason : again.kind, 'replayed');
  });

  void it('reports a marker of an earlier start, after a later start began, as stale', () => {
    const s = new Stream();
    const state = new MarkerState();
    assert.equal(verify(s, state, 500, encodeMarker(SET, SECRET)).kind, 'valid');
    const s2 = encodeMarker({ start: 'S2', seq: 1, body: { op: 'start', daemonPid: 600 } }, OTHER);
    assert.equal(verify(s, state, 600, s2).kind, 'valid');
    const old = verify(s, state, 500, encodeMarker({ ...SET, seq: 2 }, SECRET));
    assert.equal(old.kind === 'forged' ? old.reason : old.kind, 'stale-start');
  });

  void it('reports markers of a stopped start as stale', () => {
    const s = new Stream();
    const state = new MarkerState();
    assert.equal(
      verify(s, state, 500, encodeMarker({ start: 'S1', seq: 1, body: { op: 'stop' } }, SECRET)).kind,
      'valid',
    );
    const late = verify(s, state, 500, encodeMarker({ ...SET, seq: 2 }, SECRET));
    assert.equal(late.kind === 'forged' ? late.reason : late.kind, 'stale-start');
  });

  void it('learns the daemon pid of a keyring entry without one from its start marker', () => {
    const s = new Stream();
    const state = new MarkerState();
    const start = encodeMarker({ start: 'S3', seq: 1, body: { op: 'start', daemonPid: 700 } }, SECRET);
    assert.equal(verify(s, state, 700, start).kind, 'valid');
    assert.equal(verify(s, state, 700, encodeMarker({ ...SET, start: 'S3', seq: 2 }, SECRET)).kind, 'valid');
    const other = verify(s, state, 701, encodeMarker({ ...SET, start: 'S3', seq: 3 }, SECRET));
    assert.equal(other.kind === 'forged' ? other.reason : other.kind, 'wrong-sender');
  });

  void it('refuses a start marker naming another pid than its sender', () => {
    const start = encodeMarker({ start: 'S3', seq: 1, body: { op: 'start', daemonPid: 1 } }, SECRET);
    const v = verify(new Stream(), new MarkerState(), 700, start);
    assert.equal(v.kind === 'forged' ? v.reason : v.kind, 'wrong-sender');
  });

  void it('takes the kernel-stamped pid, not one written inside the message', () => {
    const text = `x' pid=500 msg='${encodeMarker(SET, SECRET)}`;
    const v = verify(new Stream(), new MarkerState(), 18617, text);
    assert.equal(v.kind, 'forged');
    assert.equal(v.kind === 'forged' ? v.sender.pid : 0, 18617);
  });
});

void describe('keyring', () => {
  void it('parses entries and comments, and formats them back', () => {
    const text = `# contid keyring\n\nS1 500 ${SECRET.toString('hex')}\nS3 - ${SECRET.toString('hex')}\n`;
    const ring = parseKeyring(text);
    assert.equal(ring.get('S1')?.daemonPid, 500);
    assert.equal(ring.get('S3')?.daemonPid, null);
    assert.ok(ring.get('S1')?.secret.equals(SECRET));
    assert.equal(formatKeyringEntry(ring.get('S1')!), `S1 500 ${SECRET.toString('hex')}\n`);
  });

  const bad: [string, string][] = [
    ['S1 500', 'Cannot read keyring line 1: expected'],
    [`S1 0 ${SECRET.toString('hex')}`, 'Cannot read keyring line 1: "0" is not a daemon pid'],
    ['S1 500 abcd', 'Cannot read keyring line 1: the secret is not 32 to 128 hex digits'],
    [`S/1 500 ${SECRET.toString('hex')}`, 'Cannot read keyring line 1: "S/1" is not a start id'],
    [
      `S1 500 ${SECRET.toString('hex')}\nS1 501 ${SECRET.toString('hex')}`,
      'Cannot read keyring line 2: start id "S1" is repeated',
    ],
  ];
  for (const [text, message] of bad) {
    void it(`rejects "${text.slice(0, 24)}…" with a line number`, () => {
      assert.throws(
        () => parseKeyring(text),
        (e: unknown) =>
          e instanceof KeyringSyntaxError && e.code === 'ERR_BAD_KEYRING' && e.message.startsWith(message),
      );
    });
  }
});
