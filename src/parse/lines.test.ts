import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineSplitter } from './lines.js';

function split(chunks: (string | Buffer)[], max = 1024): string[] {
  const out: string[] = [];
  const s = new LineSplitter({
    maxLineBytes: max,
    onLine: (b, s, e, n) => out.push(`${n}:${b.toString('utf8', s, e)}`),
    onOverlong: (n, bytes, head) => out.push(`${n}!${bytes}:${head}`),
  });
  for (const c of chunks) s.push(c);
  s.end();
  return out;
}

test('line splitter emits the last line without a newline at end()', () => {
  assert.deepEqual(split(['a\nb']), ['1:a', '2:b']);
});

test('line splitter gives the same lines for every split point of the input', () => {
  const text = 'type=A x=1\nnode=h type=B y="é ü"\n\nlast';
  const whole = split([text]);
  const bytes = Buffer.from(text);
  for (let i = 0; i <= bytes.length; i++) {
    assert.deepEqual(split([bytes.subarray(0, i), bytes.subarray(i)]), whole, `split at ${i}`);
  }
  // One byte at a time splits every multi-byte character too.
  assert.deepEqual(split([...bytes].map((b) => Buffer.from([b]))), whole);
});

test('line splitter reports an overlong line once and goes on with the next', () => {
  const long = 'x'.repeat(50);
  const whole = split([`ok\n${long}\nafter\n`], 20);
  assert.deepEqual(whole, ['1:ok', `2!50:${long.slice(0, 20)}`, '3:after']);
  const bytes = Buffer.from(`ok\n${long}\nafter\n`);
  for (let i = 0; i <= bytes.length; i++) {
    assert.deepEqual(split([bytes.subarray(0, i), bytes.subarray(i)], 20), whole, `split at ${i}`);
  }
});

test('line splitter never holds more than the bound for an endless line', () => {
  const out: string[] = [];
  const s = new LineSplitter({
    maxLineBytes: 100,
    onLine: (b, st, e) => out.push(b.toString('utf8', st, e)),
    onOverlong: (n, b) => out.push(`!${n}:${b}`),
  });
  for (let i = 0; i < 10000; i++) s.push('y'.repeat(1000));
  s.push('\nz\n');
  s.end();
  assert.deepEqual(out, ['!1:10000000', 'z']);
});

test('line splitter ends a line at endFile() and says it had no newline', () => {
  const out: string[] = [];
  const s = new LineSplitter({
    onLine: (b, st, e, n, terminated) => out.push(`${n}:${b.toString('utf8', st, e)}:${terminated}`),
    onOverlong: () => undefined,
  });
  s.push('a\nb');
  s.endFile();
  s.push('c\n');
  s.endFile();
  s.push('d');
  s.end();
  assert.deepEqual(out, ['1:a:true', '2:b:false', '3:c:true', '4:d:false']);
});

test('line splitter hands over bytes that are not UTF-8 unchanged', () => {
  const bytes = Buffer.from([0x61, 0xff, 0x0a, 0xc3, 0x28, 0x0a]);
  const out: Buffer[] = [];
  const s = new LineSplitter({
    onLine: (b, st, e) => out.push(Buffer.from(b.subarray(st, e))),
    onOverlong: () => undefined,
  });
  s.push(bytes.subarray(0, 4));
  s.push(bytes.subarray(4));
  s.end();
  assert.deepEqual(out, [Buffer.from([0x61, 0xff]), Buffer.from([0xc3, 0x28])]);
});
