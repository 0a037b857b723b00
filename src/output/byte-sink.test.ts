import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteSink } from './byte-sink.js';

test('byte sink reuses a recycled buffer and ignores a stale one', () => {
  const s = new ByteSink(8192); // above Buffer's pool size, so each buffer has its own memory
  s.ascii('one');
  const a = s.take(); // the sink moves on to a second buffer
  s.recycle(a); // a's buffer becomes the spare
  s.ascii('two');
  const b = s.take(); // written in the second buffer; the sink moves on to the spare
  assert.notEqual(b.buffer, a.buffer);
  s.ascii('three');
  const c = s.take();
  assert.equal(c.buffer, a.buffer, 'the recycled buffer is written again');
  assert.deepEqual([b.toString(), c.toString()], ['two', 'three']);
  s.ascii('four');
  const d = s.take();
  s.recycle(c); // stale: d was taken since, so c's buffer may be in use
  s.ascii('five');
  const e = s.take();
  s.ascii('six');
  const f = s.take();
  assert.notEqual(f.buffer, c.buffer);
  assert.deepEqual([d.toString(), e.toString(), f.toString()], ['four', 'five', 'six']);
});

test('byte sink grows past its initial size and escapes JSON', () => {
  const s = new ByteSink(4);
  s.jsonString('a"b\\c\n\u0001é');
  assert.equal(s.take().toString(), '"a\\"b\\\\c\\u000a\\u0001é"');
  assert.equal(JSON.parse('"a\\"b\\\\c\\u000a\\u0001é"'), 'a"b\\c\n\u0001é');
});

test('byte sink writes integers in decimal as String() does', () => {
  const values = [0, 7, 10, 99, 100, 2750473, 4294967295, 2 ** 53 - 1, 2 ** 53, -1, 1.5];
  const s = new ByteSink(4);
  for (const v of values) {
    s.decimal(v);
    s.byte(0x20);
  }
  assert.equal(s.take().toString(), values.map((v) => `${v} `).join(''));
});
