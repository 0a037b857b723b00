import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hexDigitValue, parseHexLow32, parseHexU32 } from './hex-number.js';

void test('hexDigitValue accepts 0-9, a-f and A-F only', () => {
  const digits = '0123456789abcdef';
  for (let i = 0; i < 16; i++) {
    assert.equal(hexDigitValue(digits.charCodeAt(i)), i);
    assert.equal(hexDigitValue(digits.toUpperCase().charCodeAt(i)), i);
  }
  for (const c of ['g', 'G', '@', '`', '/', ':', ' ', 'x', '\u0130']) {
    assert.equal(hexDigitValue(c.charCodeAt(0)), -1, c);
  }
  assert.equal(hexDigitValue(Number.NaN), -1);
});

void test('parseHexU32 reads 1 to 8 hex digits', () => {
  const cases: readonly (readonly [string, number])[] = [
    ['0', 0],
    ['c000003e', 0xc000003e],
    ['C000003E', 0xc000003e],
    ['ffffffff', 0xffffffff],
    ['00000001', 1],
    ['', -1],
    ['fffffffff', -1],
    ['-1', -1],
    ['0x1', -1],
    ['1 ', -1],
  ];
  for (const [raw, expected] of cases) assert.equal(parseHexU32(raw), expected, raw);
});

void test('parseHexLow32 reads the low 32 bits of 1 to 16 hex digits', () => {
  const cases: readonly (readonly [string, number])[] = [
    ['1200011', 0x1200011],
    ['ffffffffffffffff', 0xffffffff],
    ['123456789abcdef0', 0x9abcdef0],
    ['100000000', 0],
    ['g00000000', -1],
    ['', -1],
    ['12345678901234567', -1],
  ];
  for (const [raw, expected] of cases) assert.equal(parseHexLow32(raw), expected, raw);
});
