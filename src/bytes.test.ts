import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asciiAt, asciiAtWithin, bytesEqual, decimalDigits, hexDigitValue, indexIn } from './bytes.js';

const b = Buffer.from('type=SYSCALL msg=audit(1.5:42)', 'latin1');

test('ASCII matches, within a bound or to the end of the bytes', () => {
  assert.equal(asciiAt(b, 0, 'type='), true);
  assert.equal(asciiAt(b, 1, 'type='), false);
  assert.equal(asciiAt(b, b.length - 1, ')x'), false, 'past the end');
  assert.equal(asciiAtWithin(b, 0, 4, 'type='), false, 'past the bound');
  assert.equal(asciiAtWithin(b, 0, 5, 'type='), true);
});

test('byte search and comparison stay in their ranges', () => {
  assert.equal(indexIn(b, 0x3a, 0, b.length), b.indexOf(':'));
  assert.equal(indexIn(b, 0x3a, 0, b.indexOf(':')), -1);
  assert.equal(bytesEqual(b, 0, Buffer.from('xtype'), 1, 4), true);
  assert.equal(bytesEqual(b, 0, Buffer.from('xtypo'), 1, 5), false);
});

test('hex digits of either case and decimal digits', () => {
  const hex = '0123456789abcdefABCDEF';
  for (const c of hex) assert.equal(hexDigitValue(c.charCodeAt(0)), parseInt(c, 16), c);
  for (const c of 'gG/:@`xX ') assert.equal(hexDigitValue(c.charCodeAt(0)), -1, c);
  assert.equal(decimalDigits(Buffer.from('a4242b'), 1, 5), 4242);
  assert.equal(decimalDigits(Buffer.from('42x'), 0, 3), -1);
  assert.equal(decimalDigits(Buffer.from('42'), 1, 1), -1, 'empty');
});
