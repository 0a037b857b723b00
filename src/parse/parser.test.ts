import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isIssue, parseLine, parseNetlink, RecordParser } from './parser.js';
import type { AuditRecord, ParseIssue } from './record.js';

function rec(line: string): AuditRecord {
  const r = parseLine(line, 1);
  if (isIssue(r)) throw new Error(`unexpected issue: ${r.message}`);
  return r;
}

test('parser reads a log line with its type, stamp and fields in order', () => {
  const r = rec(
    'type=SYSCALL msg=audit(1615114232.375:15558): arch=c000003e syscall=59 success=yes comm="whoami"',
  );
  assert.equal(r.type, 1300);
  assert.equal(r.typeName, 'SYSCALL');
  assert.equal(r.time, '1615114232.375');
  assert.equal(r.timeMs, 1615114232375);
  assert.equal(r.serial, 15558);
  assert.equal(r.node, null);
  assert.deepEqual(r.names, ['arch', 'syscall', 'success', 'comm']);
  assert.deepEqual(r.values, ['c000003e', '59', 'yes', '"whoami"']);
});

test('parser reads the node= prefix', () => {
  const r = rec('node=work type=CWD msg=audit(1615114232.375:15558): cwd="/home/user/tmp"');
  assert.equal(r.node, 'work');
  assert.equal(r.typeName, 'CWD');
});

test('parser separates the enriched part after \\x1d', () => {
  const r = rec('type=SYSCALL msg=audit(1.001:2): arch=c000003e uid=0\x1dARCH=x86_64 UID="root"');
  assert.deepEqual(r.names, ['arch', 'uid']);
  assert.equal(r.enriched, 'ARCH=x86_64 UID="root"');
});

test('parser keeps UNKNOWN[n] types with their number', () => {
  const r = rec("type=UNKNOWN[2142] msg=audit(1.000:3): pid=1 uid=0 msg='op=x'");
  assert.equal(r.type, 2142);
  assert.equal(r.typeName, 'UNKNOWN[2142]');
});

test('parser names numeric types', () => {
  const r = rec('type=1300 msg=audit(1.000:3): arch=c000003e');
  assert.equal(r.type, 1300);
  assert.equal(r.typeName, 'SYSCALL');
});

test('parser accepts the old form without a colon after the stamp', () => {
  const r = rec('type=CONFIG_CHANGE msg=audit(1.000:34) config changed, x=1');
  assert.deepEqual(r.names, ['x']);
});

test('parser reads an EOE with a trailing space (plugin RAW format)', () => {
  const r = rec('type=EOE msg=audit(1795884974.142:24): ');
  assert.equal(r.type, 1320);
  assert.equal(r.names.length, 0);
});

test('parser reads the netlink payload form with a separate numeric type', () => {
  const r = parseNetlink(1300, 'audit(1795885312.714:28070): arch=c000003e syscall=59\0');
  assert.ok(!isIssue(r));
  assert.equal(r.typeName, 'SYSCALL');
  assert.equal(r.serial, 28070);
  assert.deepEqual(r.values, ['c000003e', '59']);
  const u = parseNetlink(2142, "audit(1.000:5): pid=10 uid=0 msg='op=set'");
  assert.ok(!isIssue(u));
  assert.equal(u.typeName, 'UNKNOWN[2142]');
});

const bad: [string, string, ParseIssue['code']][] = [
  ['text that is not a record', 'hello world', 'ERR_BAD_RECORD'],
  ['a type without a stamp', 'type=UNKNOWN[1329] msg=?', 'ERR_BAD_RECORD'],
  ['a truncated stamp', 'type=SYSCALL msg=audit(1615114232.375:155', 'ERR_BAD_TIMESTAMP'],
  ['letters in the stamp', 'type=SYSCALL msg=audit(16x.375:1): a=1', 'ERR_BAD_TIMESTAMP'],
  ['a node prefix alone', 'node=abc', 'ERR_BAD_RECORD'],
  ['a type alone', 'type=SYSCALL', 'ERR_BAD_RECORD'],
];
for (const [name, line, code] of bad) {
  test(`parser reports ${name} as ${code}`, () => {
    const r = parseLine(line, 7);
    assert.ok(isIssue(r));
    assert.equal(r.code, code);
    assert.equal(r.line, 7);
  });
}

test('parser skips blank and comment lines and reports bad ones with line numbers', () => {
  const recs: AuditRecord[] = [];
  const issues: ParseIssue[] = [];
  const p = new RecordParser({ onRecord: (r) => recs.push(r), onIssue: (i) => issues.push(i) });
  p.push('# comment\n\ntype=EOE msg=audit(1.000:1): \ngarbage\n   \ntype=EOE msg=audit(1.000:2): ');
  p.end();
  assert.equal(recs.length, 2);
  // Line 4 is skipped; line 6, the last, has no newline: read, and reported as possibly cut off.
  assert.deepEqual(
    issues.map((i) => [i.line, i.code, i.kept ?? false]),
    [
      [4, 'ERR_BAD_RECORD', false],
      [6, 'ERR_UNTERMINATED_LINE', true],
    ],
  );
  assert.equal(p.skipped, 3);
  assert.equal(p.lines, 6);
});

test('parser turns an overlong line into an issue, not a crash', () => {
  const issues: ParseIssue[] = [];
  const recs: AuditRecord[] = [];
  const p = new RecordParser({
    maxLineBytes: 64,
    onRecord: (r) => recs.push(r),
    onIssue: (i) => issues.push(i),
  });
  p.push(`type=SYSCALL msg=audit(1.000:1): a=${'x'.repeat(100)}\ntype=EOE msg=audit(1.000:1): \n`);
  p.end();
  assert.equal(issues[0]?.code, 'ERR_LINE_TOO_LONG');
  assert.equal(recs.length, 1);
});

test("parser finds each line's enriched part however the input is split", () => {
  const lines = [
    'type=SYSCALL msg=audit(1.000:1): arch=c000003e uid=0\x1dARCH=x86_64 UID="root"',
    'type=PROCTITLE msg=audit(1.000:1): proctitle=2F62696E',
    '# a comment with a \x1d in it',
    'type=CWD msg=audit(1.000:2): cwd="/"',
    'type=PATH msg=audit(1.000:2): name="a\x1db" x=1\x1dOUID="root"',
    'type=X\x1dY msg=audit(1.000:3): a=1',
    'type=PATH msg=audit(1.000:4): a=1\x1d',
    'type=PATH msg=audit(1.000:5): \x1dA=1',
    'type=EOE msg=audit(1.000:5): ',
    'type=SYSCALL msg=audit(1.000:6): a=1\x1dB=2\x1dC=3',
  ];
  const text = Buffer.from(lines.join('\n') + '\n');
  const expected = lines.flatMap((l, i) => {
    if (l.startsWith('#')) return [];
    const r = parseLine(l, i + 1);
    return [isIssue(r) ? { issue: r.code } : { body: r.body, enriched: r.enriched }];
  });
  const parse = (chunks: Buffer[]): unknown[] => {
    const out: unknown[] = [];
    const p = new RecordParser({
      onRecord: (r) => out.push({ body: r.body, enriched: r.enriched }),
      onIssue: (i) => out.push({ issue: i.code }),
    });
    for (const c of chunks) p.push(c);
    p.end();
    return out;
  };
  assert.deepEqual(parse([text]), expected);
  for (let i = 1; i < text.length; i++) {
    assert.deepEqual(parse([text.subarray(0, i), text.subarray(i)]), expected, `split at ${i}`);
  }
});
