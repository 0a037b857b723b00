import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ipv6Bytes, encodeSockaddr } from './netns-connect.js';
import {
  encodeHeader,
  encodeRecords,
  HEADER_SIZE,
  MAX_RECORD_BYTES,
  MessageType,
  nextSeq,
  ProtocolError,
  recordRanges,
  ReplyReader,
  type Reply,
} from './remote-protocol.js';

void test('a header is laid out as auditd packs it: magic, versions, type, length, sequence, little-endian', () => {
  const b = Buffer.alloc(HEADER_SIZE);
  encodeHeader(b, 0, { type: MessageType.ACK, length: 0x0102, seq: 0x0a0b0c0d });
  assert.equal(b.toString('hex'), 'fe0000ff' + '00' + '00' + '00000040' + '0201' + '0d0c0b0a');
  assert.ok(
    !b.subarray(0, 4).includes(0x0a),
    'the magic has no line feed, so auditd tells managed from ASCII',
  );
});

void test('records are the lines of the bytes, without line feeds, empty lines skipped', () => {
  const bytes = Buffer.from('type=A msg=audit(1.0:1): a\n\ntype=B msg=audit(1.0:1): b\ntype=C tail');
  const { ranges, tooLong } = recordRanges(bytes);
  assert.equal(tooLong, undefined);
  const lines = [];
  for (let i = 0; i < ranges.length; i += 2) lines.push(bytes.toString('latin1', ranges[i], ranges[i + 1]));
  assert.deepEqual(lines, ['type=A msg=audit(1.0:1): a', 'type=B msg=audit(1.0:1): b', 'type=C tail']);
});

void test('a record longer than auditd reads whole is found', () => {
  const ok = 'x'.repeat(MAX_RECORD_BYTES);
  assert.equal(recordRanges(Buffer.from(`${ok}\n`)).tooLong, undefined);
  assert.equal(recordRanges(Buffer.from(`a\n${ok}x\nb\n`)).tooLong, 1);
});

void test('records are encoded one message each with consecutive sequence ids', () => {
  const bytes = Buffer.from('one\ntwo\nthree\n');
  const { ranges } = recordRanges(bytes);
  const { buffer, nextSeq: after } = encodeRecords(bytes, { ranges, from: 1, to: 3 }, 41);
  assert.equal(after, 43);
  assert.equal(buffer.length, 2 * HEADER_SIZE + 3 + 5);
  assert.equal(buffer.readUInt32LE(6), MessageType.MESSAGE);
  assert.equal(buffer.readUInt16LE(10), 3);
  assert.equal(buffer.readUInt32LE(12), 41);
  assert.equal(buffer.toString('latin1', HEADER_SIZE, HEADER_SIZE + 3), 'two');
  assert.equal(buffer.readUInt32LE(HEADER_SIZE + 3 + 12), 42);
  assert.equal(buffer.toString('latin1', 2 * HEADER_SIZE + 3), 'three');
});

void test('sequence ids wrap at 2^32 and skip 0, which ENDING uses', () => {
  assert.equal(nextSeq(1), 2);
  assert.equal(nextSeq(0xffffffff), 1);
});

function replyBytes(type: number, seq: number, text = ''): Buffer {
  const b = Buffer.alloc(HEADER_SIZE + text.length);
  encodeHeader(b, 0, { type, length: text.length, seq });
  b.write(text, HEADER_SIZE, 'latin1');
  return b;
}

void test('the reply reader gives the same replies however the stream is cut', () => {
  const stream = Buffer.concat([
    replyBytes(MessageType.ACK, 1),
    replyBytes(MessageType.DISKLOW, 2),
    replyBytes(MessageType.DISKFULL, 3, 'disk full'),
    replyBytes(MessageType.ENDING, 0),
  ]);
  const expected: Reply[] = [
    { type: MessageType.ACK, length: 0, seq: 1, text: '' },
    { type: MessageType.DISKLOW, length: 0, seq: 2, text: '' },
    { type: MessageType.DISKFULL, length: 9, seq: 3, text: 'disk full' },
    { type: MessageType.ENDING, length: 0, seq: 0, text: '' },
  ];
  assert.deepEqual(new ReplyReader().push(stream), expected);
  for (let cut = 0; cut <= stream.length; cut++) {
    const r = new ReplyReader();
    assert.deepEqual(
      [...r.push(stream.subarray(0, cut)), ...r.push(stream.subarray(cut))],
      expected,
      `cut ${cut}`,
    );
  }
  const r = new ReplyReader();
  const bytewise = [...stream].flatMap((byte) => r.push(Buffer.from([byte])));
  assert.deepEqual(bytewise, expected);
});

void test('the reply reader refuses a bad magic number and an impossible length', () => {
  assert.throws(() => new ReplyReader().push(Buffer.alloc(HEADER_SIZE, 0x41)), ProtocolError);
  const long = replyBytes(MessageType.ACK, 1);
  long.writeUInt16LE(MAX_RECORD_BYTES + 1, 10);
  assert.throws(() => new ReplyReader().push(long), /length 8955 is over 8954/);
});

void test('socket addresses are encoded for IPv4 and IPv6 literals only', () => {
  assert.equal(
    encodeSockaddr('127.0.0.1', 60).sockaddr.toString('hex'),
    '0200' + '003c' + '7f000001' + '0000000000000000',
  );
  const v6 = encodeSockaddr('::1', 60);
  assert.equal(v6.family, 10);
  assert.equal(v6.sockaddr.length, 28);
  assert.equal(v6.sockaddr.toString('hex', 8, 24), '00000000000000000000000000000001');
  assert.equal(ipv6Bytes('fe80::1:2').toString('hex'), 'fe800000000000000000000000010002');
  assert.equal(ipv6Bytes('::ffff:127.0.0.1').toString('hex'), '00000000000000000000ffff7f000001');
  assert.equal(ipv6Bytes('2001:db8:0:0:1:0:0:1').toString('hex'), '20010db8000000000001000000000001');
  assert.throws(() => encodeSockaddr('localhost', 60), /must be an IP literal/);
});
