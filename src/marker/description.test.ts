// A container's name and metadata in the set marker: round trips of hostile
// text, the bounds (at the edge and one past it), the MAC over them, and
// markers written before they existed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Stream } from '../../test/support/text-records.js';
import { prng } from '../../test/support/prng.js';
import { isContidError } from '../errors.js';
import { AUDIT_MESSAGE_TEXT_MAX } from '../kernel/netlink.js';
import { MAX_META_BYTES, MAX_META_ENTRIES, MAX_META_VALUE_BYTES, MAX_NAME_BYTES } from './description.js';
import { encodeMarker, MARKER_TYPE, parseMarkerText, type Marker, type MarkerBody } from './format.js';
import type { Keyring } from './keyring.js';
import { MarkerState, verifyMarker } from './verify.js';

type SetBody = Extract<MarkerBody, { op: 'set' }>;
const SECRET = Buffer.alloc(32, 3);
const RING: Keyring = new Map([['S1', { startId: 'S1', daemonPid: 500, secret: SECRET }]]);
const CALLER = { pid: 8724, uid: 0, auid: 4294967295, exe: '/usr/bin/crun', privileged: true };

function setMarker(extra: Partial<SetBody>, seq = 1): Marker {
  return {
    start: 'S1',
    seq,
    body: { op: 'set', pid: 8730, ppid: 8724, contid: '42', caller: CALLER, ...extra },
  };
}

function roundTrip(marker: Marker): Marker {
  const text = encodeMarker(marker, SECRET);
  const parsed = parseMarkerText(text);
  assert.ok(typeof parsed !== 'string', `${parsed as string}: ${text}`);
  return parsed.marker;
}

/** Throws a ContidRangeError (ERR_OUT_OF_RANGE) whose message says `why`. */
function refused(marker: Marker, why: RegExp): void {
  assert.throws(
    () => encodeMarker(marker, SECRET),
    (err: unknown) =>
      err instanceof RangeError &&
      isContidError(err) &&
      err.code === 'ERR_OUT_OF_RANGE' &&
      /^Cannot encode the set marker: /.test(err.message) &&
      why.test(err.message),
  );
}

const HOSTILE_NAMES = [
  'web',
  'web front',
  `it's "quoted"`,
  "' pid=1 msg='",
  'x mac=0000 op=stop',
  'contid-marker v=1 start=S1 seq=9 op=stop',
  'ünïcödé – 漢字 🐳',
  '\u2028\u2029\u0085', // line separators and NEL: not C0 controls, carried as given
  '%41%25',
  '\\n\\x00',
  'é'.repeat(MAX_NAME_BYTES / 2), // exactly 256 bytes, two per character
  'a'.repeat(MAX_NAME_BYTES),
];

void describe('set marker: name and metadata', () => {
  for (const name of HOSTILE_NAMES) {
    void it(`carries the name ${JSON.stringify(name.slice(0, 24))} (${Buffer.byteLength(name)} bytes) and gives it back`, () => {
      const marker = setMarker({ name, meta: { 'oci.bundle': name, image: 'nginx:1.27' } });
      const text = encodeMarker(marker, SECRET);
      // One line of the daemon's characters: the text itself is only in hex.
      assert.match(text, /^[A-Za-z0-9._=+,^ :-]+$/);
      assert.equal(text.split(' ').filter((w) => w.startsWith('name=')).length, 1);
      assert.ok(!/ op=stop/.test(text) && text.split(' mac=').length === 2);
      assert.deepEqual(roundTrip(marker), marker);
    });
  }

  void it('writes name= and meta= after create=1, as hex of UTF-8 and of KEY=VALUE lines', () => {
    const text = encodeMarker(
      setMarker({ create: true, name: 'web', meta: { a: '1', 'b/c': 'x=y' } }),
      SECRET,
    );
    const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex');
    assert.match(
      text,
      new RegExp(
        ` contid=42 create=1 name=${hex('web')} meta=${hex('a=1\nb/c=x=y')} caller-pid=8724 .* mac=[0-9a-f]{64}$`,
      ),
    );
  });

  void it('keeps the metadata in the order given, with keys that are Object.prototype names', () => {
    const meta = Object.fromEntries([
      ['z', '1'],
      ['__proto__', 'p'],
      ['constructor', 'c'],
      ['a', ''],
    ]);
    const back = roundTrip(setMarker({ meta })).body as SetBody;
    assert.deepEqual(Object.entries(back.meta ?? {}), Object.entries(meta));
    assert.ok(Object.hasOwn(back.meta!, '__proto__'));
  });

  void it('carries random Unicode names and values unchanged', () => {
    const rnd = prng(17);
    const pick = (): string => {
      const ranges = [
        [0x20, 0x7e],
        [0xa0, 0x2fff],
        [0x1f300, 0x1f6ff],
      ] as const;
      const [lo, hi] = ranges[Math.floor(rnd() * ranges.length)]!;
      return String.fromCodePoint(lo + Math.floor(rnd() * (hi - lo + 1)));
    };
    for (let i = 0; i < 300; i++) {
      let name = '';
      while (Buffer.byteLength(name + 'xxxx') <= MAX_NAME_BYTES && rnd() < 0.97) name += pick();
      if (name === '') name = pick();
      const value = `v:${name}`;
      const marker = setMarker({ name, meta: { k: value } }, i + 1);
      assert.deepEqual(roundTrip(marker), marker, JSON.stringify(name));
    }
  });

  void it('the largest description still fits a user message, with a long caller path', () => {
    const meta: Record<string, string> = {};
    // 32 entries whose keys and values are 2,048 bytes together.
    for (let i = 0; i < MAX_META_ENTRIES; i++) meta[`key-${String(i).padStart(2, '0')}`] = 'v'.repeat(58);
    const total = Object.entries(meta).reduce((n, [k, v]) => n + k.length + v.length, 0);
    assert.equal(total, MAX_META_BYTES);
    const marker: Marker = {
      start: 'S'.repeat(64),
      seq: 4294967295,
      prev: { time: '999999999999.999', serial: 4294967295 },
      body: {
        op: 'set',
        pid: 4294967295,
        ppid: 4294967295,
        start: Number.MAX_SAFE_INTEGER,
        contid: '9'.repeat(64),
        owner: `oci:${'c'.repeat(252)}`,
        create: true,
        name: '🐳'.repeat(MAX_NAME_BYTES / 4),
        meta,
        caller: {
          ...CALLER,
          pid: 4294967295,
          uid: 4294967295,
          auid: 4294967295,
          exe: `/${'p'.repeat(1023)}`,
          ppid: 4294967295,
          start: Number.MAX_SAFE_INTEGER,
        },
      },
    };
    const text = encodeMarker(marker, SECRET);
    // The daemon sends the text and a NUL.
    assert.ok(text.length + 1 <= AUDIT_MESSAGE_TEXT_MAX, `${text.length} bytes`);
    assert.deepEqual(roundTrip(marker), marker);
  });

  void it('refuses a name over its bounds, or with a control character, with the reason', () => {
    refused(setMarker({ name: 'a'.repeat(MAX_NAME_BYTES + 1) }), /the name is 257 bytes, more than 256/);
    refused(setMarker({ name: `${'é'.repeat(MAX_NAME_BYTES / 2 - 1)}é!` }), /257 bytes, more than 256/);
    refused(setMarker({ name: '' }), /the name is empty/);
    refused(setMarker({ name: 'web\nfront' }), /the name has a control character/);
    refused(setMarker({ name: 'web\x7f' }), /control character/);
    refused(setMarker({ name: 'a\x00' }), /control character/);
  });

  void it('refuses metadata over its bounds, with the reason', () => {
    const many = Object.fromEntries(Array.from({ length: MAX_META_ENTRIES + 1 }, (_, i) => [`k${i}`, 'v']));
    refused(setMarker({ meta: many }), /33 entries, more than 32/);
    refused(setMarker({ meta: { k: 'v'.repeat(MAX_META_VALUE_BYTES + 1) } }), /value of "k" is 1025 bytes/);
    refused(setMarker({ meta: { 'a b': 'v' } }), /key "a b" is not 1-64 of/);
    refused(setMarker({ meta: { 'a=b': 'v' } }), /key "a=b" is not/);
    refused(setMarker({ meta: { k: 'line\nbreak' } }), /value of "k" has a control character/);
    const big = { a: 'v'.repeat(MAX_META_VALUE_BYTES), b: 'v'.repeat(MAX_META_VALUE_BYTES - 1) };
    refused(setMarker({ meta: big }), /keys and values are 2049 bytes together, more than 2048/);
    assert.doesNotThrow(() =>
      encodeMarker(setMarker({ meta: { a: 'v'.repeat(MAX_META_VALUE_BYTES), b: big.b.slice(1) } }), SECRET),
    );
  });

  void it('writes no meta= for empty metadata', () => {
    const text = encodeMarker(setMarker({ meta: {} }), SECRET);
    assert.ok(!text.includes(' meta='));
    assert.equal((roundTrip(setMarker({ meta: {} })).body as SetBody).meta, undefined);
  });

  const mac = '0'.repeat(64);
  const head = 'contid-marker v=1 start=S1 seq=1 op=set pid=1 contid=4';
  const tail = `caller-pid=2 caller-uid=0 caller-auid=0 caller-exe=2f privileged=1 mac=${mac}`;
  const hex = (s: string | Buffer) => Buffer.from(s).toString('hex');
  const malformed: [string, string][] = [
    ['name not hex', `${head} name=web ${tail}`],
    ['name in odd hex', `${head} name=abc ${tail}`],
    ['empty name', `${head} name= ${tail}`],
    ['name with a newline', `${head} name=${hex('a\nb')} ${tail}`],
    ['name of invalid UTF-8', `${head} name=${hex(Buffer.from([0x61, 0xff]))} ${tail}`],
    ['name too long', `${head} name=${hex('a'.repeat(257))} ${tail}`],
    ['meta without =', `${head} meta=${hex('abc')} ${tail}`],
    ['meta with a key twice', `${head} meta=${hex('a=1\na=2')} ${tail}`],
    ['meta with a bad key', `${head} meta=${hex('a b=1')} ${tail}`],
    ['empty meta', `${head} meta= ${tail}`],
    ['meta with a control character', `${head} meta=${hex('a=1\tb')} ${tail}`],
  ];
  for (const [what, text] of malformed) {
    void it(`refuses a set marker with ${what}`, () => {
      const parsed = parseMarkerText(text);
      assert.equal(parsed, what.includes('name') ? 'bad name' : 'bad meta');
    });
  }

  void it('parses a set marker written before names were carried', () => {
    // A set of testdata/captures/a-fork-tree.log, as the daemon wrote it then.
    const text =
      'contid-marker v=1 start=fixture-a-fork-tree seq=2 op=set pid=2510 ppid=2509 contid=100 caller-pid=2456 ' +
      'caller-uid=0 caller-auid=4294967295 caller-exe=2f7573722f62696e2f6e6f6465 privileged=1 caller-ppid=2455 ' +
      'mac=6f4949cbfe5ee11e39696818b35e4cc3d890280470d5d0289d9887295cc799a5';
    const parsed = parseMarkerText(text);
    assert.ok(typeof parsed !== 'string', typeof parsed === 'string' ? parsed : '');
    const body = parsed.marker.body as SetBody;
    assert.equal(body.contid, '100');
    assert.equal(body.name, undefined);
    assert.equal(body.meta, undefined);
  });

  void it('the MAC covers the name and metadata: changing them is a forgery (bad-mac)', () => {
    const stream = new Stream();
    const state = new MarkerState();
    const text = encodeMarker(setMarker({ name: 'web', meta: { image: 'nginx' } }), SECRET);
    const verify = (t: string) => verifyMarker(stream.user(MARKER_TYPE, 500, t).records[0]!, RING, state);
    const renamed = text.replace(` name=${hex('web')} `, ` name=${hex('wEb')} `);
    const remeta = text.replace(` meta=${hex('image=nginx')} `, ` meta=${hex('image=evil!')} `);
    const unnamed = text.replace(` name=${hex('web')} `, ' ');
    for (const forged of [renamed, remeta, unnamed]) {
      assert.notEqual(forged, text);
      const v = verify(forged);
      assert.equal(v.kind, 'forged');
      assert.equal(v.kind === 'forged' ? v.reason : null, 'bad-mac');
    }
    assert.equal(verify(text).kind, 'valid');
  });
});
