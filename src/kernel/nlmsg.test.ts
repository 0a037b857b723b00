import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeMessages, encodeMessage, NLMSG_HDRLEN } from './nlmsg.js';
import { decodeStatus, encodeStatusChange } from './status.js';

void test('encodeMessage writes the header and pads to 4 bytes', () => {
  const message = encodeMessage(1000, 5, 7, Buffer.from('abcde'));
  assert.equal(message.length, 24);
  assert.equal(message.readUInt32LE(0), 21);
  assert.equal(message.readUInt16LE(4), 1000);
  assert.equal(message.readUInt16LE(6), 5);
  assert.equal(message.readUInt32LE(8), 7);
  assert.equal(message.toString('latin1', 16, 21), 'abcde');
});

void test('decodeMessages reads every message of a standard datagram', () => {
  const datagram = Buffer.concat([
    encodeMessage(1013, 2, 9, Buffer.from('rule')),
    encodeMessage(1013, 2, 9, Buffer.from('other')),
    encodeMessage(3, 2, 9, Buffer.alloc(4)),
  ]);
  const messages = decodeMessages(datagram, datagram.length);
  assert.deepEqual(
    messages.map((m) => [m.type, m.seq, m.payload.toString('latin1')]),
    [
      [1013, 9, 'rule'],
      [1013, 9, 'other'],
      [3, 9, '\0\0\0\0'],
    ],
  );
});

void test('decodeMessages takes the recv length for unicast records whose nlmsg_len excludes the header', () => {
  // Measured: recv 287 bytes, nlmsg_len 271, type 1300.
  const text = 'audit(1795888799.646:269037): arch=c000003e syscall=59';
  const datagram = Buffer.alloc(NLMSG_HDRLEN + text.length);
  datagram.writeUInt32LE(text.length, 0);
  datagram.writeUInt16LE(1300, 4);
  datagram.write(text, NLMSG_HDRLEN, 'latin1');
  const [record, ...rest] = decodeMessages(datagram, datagram.length);
  assert.equal(rest.length, 0);
  assert.equal(record?.type, 1300);
  assert.equal(record?.payload.toString('latin1'), text);
});

void test('decodeMessages handles unicast records shorter than a header', () => {
  const datagram = Buffer.alloc(NLMSG_HDRLEN + 4);
  datagram.writeUInt32LE(4, 0);
  datagram.writeUInt16LE(1329, 4);
  datagram.writeUInt32LE(1234, 16);
  const [message] = decodeMessages(datagram, datagram.length);
  assert.equal(message?.payload.readUInt32LE(0), 1234);
});

void test('decodeMessages refuses a header that points outside the datagram', () => {
  const datagram = encodeMessage(1300, 0, 0, Buffer.from('abcdefgh'));
  datagram.writeUInt32LE(100, 0);
  assert.throws(() => decodeMessages(datagram, datagram.length), { code: 'EPROTO' });
  datagram.writeUInt32LE(3, 0);
  assert.throws(() => decodeMessages(datagram, datagram.length), { code: 'EPROTO' });
});

void test('decodeMessages ignores a trailing fragment shorter than a header', () => {
  const datagram = Buffer.concat([encodeMessage(1000, 0, 1, Buffer.alloc(4)), Buffer.alloc(8)]);
  assert.equal(decodeMessages(datagram, datagram.length).length, 1);
});

void test('decodeStatus reads struct audit_status, padding an older, shorter one', () => {
  const payload = Buffer.alloc(44);
  [0x7f, 1, 1, 4321, 0, 8192, 3, 2, 127, 15000, 9].forEach((value, i) => payload.writeUInt32LE(value, 4 * i));
  assert.deepEqual(decodeStatus(payload), {
    enabled: 1,
    failure: 1,
    pid: 4321,
    rateLimit: 0,
    backlogLimit: 8192,
    lost: 3,
    backlog: 2,
    featureBitmap: 127,
    backlogWaitTime: 15000,
    backlogWaitTimeActual: 9,
  });
  const old = decodeStatus(payload.subarray(0, 32));
  assert.equal(old.backlogLimit, 8192);
  assert.equal(old.backlogWaitTime, 0);
});

void test('encodeStatusChange sets exactly the mask bits of the given fields', () => {
  const change = encodeStatusChange({ enabled: true, backlogLimit: 8192 });
  assert.equal(change.readUInt32LE(0), 0x01 | 0x10);
  assert.equal(change.readUInt32LE(4), 1);
  assert.equal(change.readUInt32LE(20), 8192);
  const unregister = encodeStatusChange({ pid: 0 });
  assert.equal(unregister.readUInt32LE(0), 0x04);
  assert.equal(unregister.readUInt32LE(12), 0);
  assert.equal(encodeStatusChange({}).readUInt32LE(0), 0);
  assert.throws(() => encodeStatusChange({ backlogLimit: -1 }), RangeError);
});
