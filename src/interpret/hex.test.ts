import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bytesToEscapedText,
  decodeHex,
  decodeHexString,
  decodeProctitle,
  decodeUntrustedString,
  escapedTextToBytes,
  HexDecodeError,
  isHexEncoded,
  unquote,
} from './hex.js';

void test('isHexEncoded accepts only unquoted, even-length, uppercase hex', () => {
  const cases: readonly (readonly [string, boolean])[] = [
    ['2F62696E2F7368', true],
    ['00', true],
    ['ABCDEF0123456789', true],
    ['2f62696e', false],
    ['ABC', false],
    ['', false],
    ['"ls"', false],
    ['(null)', false],
    ['?', false],
    ['2F 62', false],
    ['GG', false],
  ];
  for (const [raw, expected] of cases) assert.equal(isHexEncoded(raw), expected, raw);
});

void test('decodeHex decodes either case', () => {
  assert.deepEqual(decodeHex('2F62696E'), Buffer.from('/bin'));
  assert.deepEqual(decodeHex('2f62696e'), Buffer.from('/bin'));
  assert.deepEqual(decodeHex(''), Buffer.alloc(0));
  assert.deepEqual(decodeHex('00FF'), Buffer.of(0, 255));
});

void test('decodeHex throws a coded SyntaxError for bad hex instead of truncating', () => {
  const cases: readonly (readonly [string, number, string])[] = [
    ['ABC', 3, 'Cannot decode hex value "ABC": odd length 3'],
    ['41G2', 2, 'Cannot decode hex value "41G2": not a hex digit at 2'],
    ['"41"', 0, 'Cannot decode hex value ""41"": not a hex digit at 0'],
  ];
  for (const [raw, offset, message] of cases) {
    assert.throws(
      () => decodeHex(raw),
      (err: unknown) => {
        assert.ok(err instanceof HexDecodeError);
        assert.ok(err instanceof SyntaxError);
        assert.equal(err.code, 'ERR_BAD_HEX');
        assert.equal(err.offset, offset);
        assert.equal(err.message, message);
        return true;
      },
      raw,
    );
  }
  const long = 'A'.repeat(99);
  assert.throws(() => decodeHex(long), {
    message: `Cannot decode hex value "${'A'.repeat(40)}...": odd length 99`,
  });
});

// Hex values from the corpus, with the text auparse 3.0.9 decoded them to.
const STRINGS: readonly (readonly [string, string])[] = [
  ['2F62696E2F7368', '/bin/sh'],
  ['737368643A206275726E205B707269765D', 'sshd: burn [priv]'],
  ['E282AC', '\u20ac'],
  ['F09F9880', '\u{1f600}'],
  ['EFBBBF41', '\ufeffA'],
  // Kept: auparse cuts EXECVE arguments at the first NUL instead.
  ['2D6300', '-c\u0000'],
  // Not valid UTF-8: the offending bytes are escaped.
  ['41FF', 'A%FF'],
  ['2D6300FF', '-c\u0000%FF'],
  ['C080', '%C0%80'],
  ['EDA080', '%ED%A0%80'],
  ['F4908080', '%F4%90%80%80'],
  ['E282', '%E2%82'],
  ['E28241', '%E2%82A'],
  ['80E282AC', '%80\u20ac'],
  // A literal `%` is escaped only where it would read as an escape.
  ['3530252066', '50% f'],
  ['2541', '%A'],
  ['254141', '%25AA'],
  ['25252541', '%%%A'],
  ['2525414141', '%%25AAA'],
  ['2541FF', '%A%FF'],
  ['254141FF', '%25AA%FF'],
];

void test('decodeHexString decodes UTF-8 and escapes what is not', () => {
  for (const [raw, expected] of STRINGS) assert.equal(decodeHexString(raw), expected, raw);
});

void test('escapedTextToBytes inverts bytesToEscapedText', () => {
  for (const [raw] of STRINGS) {
    const bytes = decodeHex(raw);
    assert.deepEqual(escapedTextToBytes(bytesToEscapedText(bytes)), bytes, raw);
  }
});

void test('bytesToEscapedText loses no bytes, whatever they are', () => {
  // A fixed-seed generator biased towards the bytes that matter: `%`, hex digits, UTF-8 lead and
  // continuation bytes, and invalid ones.
  let seed = 0x2545f491;
  const next = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const palette = [0x25, 0x41, 0x66, 0x30, 0x39, 0x20, 0x00, 0x80, 0xbf, 0xc2, 0xe2, 0xed, 0xf0, 0xf4, 0xff];
  for (let round = 0; round < 2000; round++) {
    const bytes = Buffer.alloc(next() % 12);
    for (let i = 0; i < bytes.length; i++) {
      bytes[i] = next() % 3 === 0 ? next() % 256 : palette[next() % palette.length]!;
    }
    const text = bytesToEscapedText(bytes);
    assert.deepEqual(escapedTextToBytes(text), bytes, bytes.toString('hex'));
  }
});

void test('bytesToEscapedText leaves valid UTF-8 without %XX unchanged', () => {
  for (const s of [
    '',
    'ls -la',
    '/usr/bin/\u00e9t\u00e9',
    '100%',
    '50% off',
    '%zz',
    'a\tb\nc\u0000',
    '\u{1f600}%',
  ]) {
    assert.equal(bytesToEscapedText(Buffer.from(s)), s, s);
  }
});

void test('bytesToEscapedText reads a plain Uint8Array view at its offset', () => {
  const backing = new Uint8Array([0x58, 0x41, 0xff, 0x42, 0x58]);
  assert.equal(bytesToEscapedText(backing.subarray(1, 4)), 'A%FFB');
});

void test('escapedTextToBytes reads a % without two hex digits as itself', () => {
  assert.deepEqual(escapedTextToBytes('50% off'), Buffer.from('50% off'));
  assert.deepEqual(escapedTextToBytes('%4'), Buffer.from('%4'));
  assert.deepEqual(escapedTextToBytes('%%41'), Buffer.from('%A'));
  assert.deepEqual(escapedTextToBytes('%ff%FF'), Buffer.of(0xff, 0xff));
});

void test('decodeUntrustedString gives escaped text for quoted, hex and other values', () => {
  const cases: readonly (readonly [string, string])[] = [
    ['"/usr/bin/id"', '/usr/bin/id'],
    ['2F7573722F62696E2F6964', '/usr/bin/id'],
    ['"a%41"', 'a%2541'],
    ['61253431', 'a%2541'],
    ['41FF', 'A%FF'],
    ['(null)', '(null)'],
    ['?', '?'],
    ['', ''],
    // Lower case is not the kernel's hex: kept as written.
    ['2f62', '2f62'],
  ];
  for (const [raw, expected] of cases) assert.equal(decodeUntrustedString(raw), expected, raw);
});

void test('decodeProctitle splits hex at NULs and keeps the quoted form whole', () => {
  const cases: readonly (readonly [string, string[]])[] = [
    // auparse shows this one as `/sbin/auditctl -R /etc/audit/audit.rules`.
    [
      '2F7362696E2F617564697463746C002D52002F6574632F61756469742F61756469742E72756C6573',
      ['/sbin/auditctl', '-R', '/etc/audit/audit.rules'],
    ],
    ['737368643A206275726E205B707269765D', ['sshd: burn [priv]']],
    // Lower case hex, as in laurel's record-syscall-nullkey.txt.
    ['536f6d6552616e646f6d50726f63657373', ['SomeRandomProcess']],
    ['"bash"', ['bash']],
    ['"(systemd)"', ['(systemd)']],
    ['"a%41"', ['a%2541']],
    ['6100', ['a']],
    ['61000062', ['a', '', 'b']],
    ['0061', ['', 'a']],
    ['00', ['']],
    ['6100FF', ['a', '%FF']],
    // Never written by the kernel: kept as one argument.
    ['(null)', ['(null)']],
    ['', ['']],
    ['ABC', ['ABC']],
  ];
  for (const [raw, expected] of cases) assert.deepEqual(decodeProctitle(raw), expected, raw);
});

void test('unquote strips double quotes at both ends only', () => {
  const cases: readonly (readonly [string, string])[] = [
    ['"/usr/bin/id"', '/usr/bin/id'],
    ['""', ''],
    ['"', '"'],
    ['"same', '"same'],
    ['same"', 'same"'],
    ["'x'", "'x'"],
    ['2F62', '2F62'],
    ['', ''],
  ];
  for (const [raw, expected] of cases) assert.equal(unquote(raw), expected, raw);
});
