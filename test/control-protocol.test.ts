import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ControlRequestError,
  encodeResponse,
  LineFramer,
  parseRequest,
  refusalMessage,
} from '../src/control/protocol.js';

const STREAM = '{"op":"status"}\n{"op":"get","pid":1}\r\n\n{"op":"set","pid":812,"contid":"42"}\n';

test('framer gives the same lines whatever the chunk boundaries', () => {
  const bytes = Buffer.from(STREAM);
  const whole = new LineFramer().push(bytes);
  assert.deepEqual(whole, [
    '{"op":"status"}',
    '{"op":"get","pid":1}',
    '',
    '{"op":"set","pid":812,"contid":"42"}',
  ]);
  for (let i = 0; i <= bytes.length; i++) {
    const framer = new LineFramer();
    const lines = [...framer.push(bytes.subarray(0, i)), ...framer.push(bytes.subarray(i))];
    assert.deepEqual(lines, whole, `split at ${i}`);
  }
  const framer = new LineFramer();
  const bytewise = [...bytes].flatMap((b) => framer.push(Buffer.from([b])));
  assert.deepEqual(bytewise, whole);
});

test('framer refuses a line over the bound, whole or in pieces', () => {
  assert.throws(
    () => new LineFramer(8).push(Buffer.from('123456789\n')),
    (e: unknown) => e instanceof ControlRequestError && e.code === 'ERR_REQUEST_TOO_LARGE',
  );
  const framer = new LineFramer(8);
  assert.deepEqual(framer.push(Buffer.from('1234')), []);
  assert.equal(framer.held, 4);
  assert.throws(() => framer.push(Buffer.from('56789')), /longer than 8 bytes/);
  assert.equal(framer.held, 0);
  assert.deepEqual(new LineFramer(8).push(Buffer.from('12345678\n')), ['12345678']);
});

test('requests parse into their validated forms', () => {
  assert.deepEqual(parseRequest('{"op":"status"}'), { op: 'status' });
  assert.deepEqual(parseRequest('{"op":"get","pid":5,"id":"a1"}'), { op: 'get', pid: 5, id: 'a1' });
  assert.deepEqual(parseRequest('{"op":"grant","pid":7}'), { op: 'grant', pid: 7 });
  assert.deepEqual(
    parseRequest('{"op":"set","pid":812,"contid":"42","name":"web","meta":{"image":"nginx:1.27"}}'),
    { op: 'set', pid: 812, contid: '42', name: 'web', meta: { image: 'nginx:1.27' } },
  );
  assert.deepEqual(parseRequest('{"op":"set","pid":1,"contid":"4","owner":"oci:web","create":true}'), {
    op: 'set',
    pid: 1,
    contid: '4',
    owner: 'oci:web',
    create: true,
  });
  assert.deepEqual(parseRequest('{"op":"set","pid":1,"contid":"4","create":false}'), {
    op: 'set',
    pid: 1,
    contid: '4',
  });
  // Values policy refuses with EINVAL still reach the daemon, so the attempt is recorded.
  assert.deepEqual(parseRequest('{"op":"set","pid":1,"contid":"-1"}'), { op: 'set', pid: 1, contid: '-1' });
});

const BAD: readonly [string, string, string][] = [
  ['not json', '{"op":', 'ERR_BAD_JSON'],
  ['an array', '[1]', 'ERR_BAD_REQUEST'],
  ['no op', '{"pid":1}', 'ERR_BAD_REQUEST'],
  ['unknown op', '{"op":"drop","pid":1}', 'ERR_BAD_REQUEST'],
  ['pid zero', '{"op":"get","pid":0}', 'ERR_BAD_REQUEST'],
  ['pid as string', '{"op":"get","pid":"5"}', 'ERR_BAD_REQUEST'],
  ['fractional pid', '{"op":"get","pid":1.5}', 'ERR_BAD_REQUEST'],
  ['contid as number', '{"op":"set","pid":1,"contid":42}', 'ERR_BAD_REQUEST'],
  ['contid with a space', '{"op":"set","pid":1,"contid":"4 2"}', 'ERR_BAD_REQUEST'],
  ['extra field', '{"op":"status","pid":1}', 'ERR_BAD_REQUEST'],
  ['contid on grant', '{"op":"grant","pid":1,"contid":"4"}', 'ERR_BAD_REQUEST'],
  ['name with newline', '{"op":"set","pid":1,"contid":"4","name":"a\\nb"}', 'ERR_BAD_REQUEST'],
  ['meta not strings', '{"op":"set","pid":1,"contid":"4","meta":{"a":1}}', 'ERR_BAD_REQUEST'],
  ['meta bad key', '{"op":"set","pid":1,"contid":"4","meta":{"a b":"c"}}', 'ERR_BAD_REQUEST'],
  ['bad id', '{"op":"status","id":"a b"}', 'ERR_BAD_REQUEST'],
  ['owner with a space', '{"op":"set","pid":1,"contid":"4","owner":"oci:a b"}', 'ERR_BAD_REQUEST'],
  ['empty owner', '{"op":"set","pid":1,"contid":"4","owner":""}', 'ERR_BAD_REQUEST'],
  ['create as string', '{"op":"set","pid":1,"contid":"4","create":"yes"}', 'ERR_BAD_REQUEST'],
  ['owner on grant', '{"op":"grant","pid":1,"owner":"oci:a"}', 'ERR_BAD_REQUEST'],
];

for (const [what, line, code] of BAD) {
  test(`a request with ${what} is refused with ${code}`, () => {
    assert.throws(
      () => parseRequest(line),
      (e: unknown) => e instanceof ControlRequestError && e.code === code,
    );
  });
}

test('a refused request keeps its id so the client can match the answer', () => {
  assert.throws(
    () => parseRequest('{"op":"get","id":"r7","pid":-3}'),
    (e: unknown) => e instanceof ControlRequestError && e.id === 'r7',
  );
});

test('too many meta entries are refused', () => {
  const meta = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']));
  assert.throws(() => parseRequest(JSON.stringify({ op: 'set', pid: 1, contid: '1', meta })), /more than 32/);
});

test('meta the set marker cannot carry is refused, with the bytes counted', () => {
  const request = (meta: Record<string, string>): string =>
    JSON.stringify({ op: 'set', pid: 1, contid: '1', meta });
  // 2,048 bytes of keys and values together is the most a marker carries.
  const most = { a: 'v'.repeat(1024), b: 'v'.repeat(1022) };
  assert.deepEqual(parseRequest(request(most)), { op: 'set', pid: 1, contid: '1', meta: most });
  assert.throws(
    () => parseRequest(request({ ...most, c: '' })),
    (e: unknown) =>
      e instanceof ControlRequestError &&
      e.code === 'ERR_BAD_REQUEST' &&
      e.message ===
        'Cannot parse the request: "meta" keys and values are 2049 bytes together, more than 2048',
  );
  // Multi-byte characters count as their UTF-8 bytes.
  assert.throws(
    () => parseRequest(request({ k: 'é'.repeat(512), l: 'é'.repeat(512) })),
    /2050 bytes together/,
  );
});

test('a meta key named like an Object.prototype property stays an entry of its own', () => {
  const parsed = parseRequest('{"op":"set","pid":1,"contid":"1","meta":{"__proto__":"x","constructor":"y"}}');
  assert.ok(parsed.op === 'set' && parsed.meta !== undefined);
  assert.deepEqual(Object.entries(parsed.meta), [
    ['__proto__', 'x'],
    ['constructor', 'y'],
  ]);
});

test('refusal messages name the op, the pid, the reason and the errno', () => {
  assert.equal(
    refusalMessage('set', 812, 'EBUSY'),
    'Cannot set contid of pid 812: the target has children (EBUSY)',
  );
  assert.equal(
    refusalMessage('grant', 9, 'EPERM'),
    'Cannot grant pid 9 the right to label its descendants: the caller is neither privileged nor delegated (EPERM)',
  );
});

test('responses are one line of JSON', () => {
  const line = encodeResponse({ ok: false, code: 'ERR_BAD_JSON', message: 'x\ny' });
  assert.equal(line.indexOf('\n'), line.length - 1);
  assert.deepEqual(JSON.parse(line), { ok: false, code: 'ERR_BAD_JSON', message: 'x\ny' });
});
