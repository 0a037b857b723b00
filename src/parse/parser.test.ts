import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteRecord, isEnrichedPart, isIssue, parseLine, parseNetlink, RecordParser } from './parser.js';
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

/** Parses `text` with a RecordParser, ending each of `files` with endFile(). */
function parseAll(files: (string | Buffer)[]): {
  recs: AuditRecord[];
  issues: ParseIssue[];
  p: RecordParser;
} {
  const recs: AuditRecord[] = [];
  const issues: ParseIssue[] = [];
  const p = new RecordParser({ onRecord: (r) => recs.push(r), onIssue: (i) => issues.push(i) });
  for (const f of files) {
    p.push(f);
    p.endFile();
  }
  p.end();
  return { recs, issues, p };
}

test('parser ends each file at endFile(): a last line without a newline never runs into the next file', () => {
  const { recs, issues, p } = parseAll([
    "type=USER_AUTH msg=audit(1.000:1): pid=1 uid=0 auid=0 ses=1 msg='op=login res=success'",
    "type=USER_LOGIN msg=audit(1.000:2): pid=2 uid=0 auid=0 ses=1 msg='op=login res=success'\n",
  ]);
  assert.deepEqual(
    recs.map((r) => r.typeName),
    ['USER_AUTH', 'USER_LOGIN'],
  );
  assert.equal(recs[0]!.body, "pid=1 uid=0 auid=0 ses=1 msg='op=login res=success'");
  assert.deepEqual(
    issues.map((i) => [i.line, i.code, i.kept]),
    [[1, 'ERR_UNTERMINATED_LINE', true]],
  );
  assert.equal(p.stats().unterminated, 1);
});

test('parser keeps a cut-off last line and reports it', () => {
  const { recs, issues } = parseAll(['type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=59 succ']);
  assert.equal(recs.length, 1);
  assert.equal(recs[0]!.body, 'arch=c000003e syscall=59 succ');
  assert.equal(issues[0]?.code, 'ERR_UNTERMINATED_LINE');
  assert.equal(issues[0]?.excerpt, 'type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=59 succ');
});

test("parser leaves out contid's own records, by name as written, and counts them", () => {
  const { recs, p } = parseAll([
    [
      'type=SYSCALL msg=audit(1.000:7): arch=c000003e syscall=59 pid=5 record=1',
      'type=CONTAINER_ID msg=audit(1.000:7): record=1 contid=31337',
      'node=h type=CONTAINER_OP msg=audit(1.000:8): op=set opid=5 contid=4 old-contid=-1 res=1',
      'type=CONTID_FORGERY msg=audit(1.000:9): reason=wrong-sender pid=9 record=1',
      // A number is never taken for one of them: 1020 is a record like any other here.
      'type=1020 msg=audit(1.000:10): op=set',
      'type=UNKNOWN[1020] msg=audit(1.000:11): op=set',
      'type=CONTAINER_IDX msg=audit(1.000:12): x=1',
      '',
    ].join('\n'),
  ]);
  assert.deepEqual(
    recs.map((r) => `${r.serial}:${r.typeName}`),
    ['7:SYSCALL', '10:CONTAINER_OP', '11:UNKNOWN[1020]', '12:CONTAINER_IDX'],
  );
  assert.equal(p.stats().ownRecords, 3);
});

test('parser leaves the record= link contid appended out of the fields, and counts it', () => {
  const { recs, p } = parseAll([
    [
      'type=SYSCALL msg=audit(1.000:7): arch=c000003e syscall=59 pid=5 record=1',
      'type=SYSCALL msg=audit(1.000:8): arch=c000003e pid=5 key="k" record=12\x1dARCH=x86_64',
      'type=OBJ_PID msg=audit(1.000:8):  record=2',
      // Not links: inside a user message's text, no space before it, a leading zero.
      "type=USER msg=audit(1.000:9): pid=1 uid=0 msg='x record=1'",
      'type=SYSCALL msg=audit(1.000:10): pid=5 norecord=1',
      'type=SYSCALL msg=audit(1.000:11): pid=5 record=01',
      '',
    ].join('\n'),
  ]);
  assert.deepEqual(
    recs.map((r) => r.body),
    [
      'arch=c000003e syscall=59 pid=5',
      'arch=c000003e pid=5 key="k"',
      '',
      "pid=1 uid=0 msg='x record=1'",
      'pid=5 norecord=1',
      'pid=5 record=01',
    ],
  );
  assert.equal(recs[1]!.enriched, 'ARCH=x86_64');
  assert.equal(p.stats().links, 3);
});

// A user message's text reaches the log raw inside msg='…' (auditd turns \n into a space
// and leaves \x1d as it is): only the enriched part auditd appends may be taken as one.
const separators: [string, string, string | null][] = [
  [
    'a RAW log: a \x1d in the text starts nothing',
    'type=USER msg=audit(1.000:1): pid=7 uid=0 auid=4242 ses=3 msg=\'hi\x1dUID="root" AUID="root"\'',
    null,
  ],
  [
    'a RAW log: the text closes its own quote before the fake part',
    'type=USER msg=audit(1.000:1): pid=7 uid=0 auid=4242 ses=3 msg=\'hi\'\x1dUID="root" AUID="root"\'',
    null,
  ],
  [
    'a RAW log: a fake part with a bare value',
    "type=USER msg=audit(1.000:1): pid=7 uid=0 auid=4242 ses=3 msg='hi'\x1dUID=root AUID=root x='",
    null,
  ],
  [
    'an ENRICHED log: the text holds fake parts, auditd appended the real one',
    'type=USER msg=audit(1.000:1): pid=7 uid=0 auid=4242 ses=3 msg=\'a\'\x1dUID="root" b\x1dAUID="x"\'\x1dUID="root" AUID="unknown(4242)"',
    'UID="root" AUID="unknown(4242)"',
  ],
  [
    'an ENRICHED kernel record with a socket address',
    'type=SOCKADDR msg=audit(1.000:1): saddr=01002F746D70\x1dSADDR={ saddr_fam=local path=/tmp/{a} }',
    'SADDR={ saddr_fam=local path=/tmp/{a} }',
  ],
  [
    'an ENRICHED value of several words',
    'type=SOCKADDR msg=audit(1.000:1): saddr=0000\x1dSADDR=unknown family(0)',
    'SADDR=unknown family(0)',
  ],
  ['an empty enriched part', 'type=SYSCALL msg=audit(1.000:1): a=1\x1d', ''],
  [
    'lower-case names after the last \x1d (kernel fields, not auditd)',
    'type=NETFILTER_CFG msg=audit(1.000:1): table=x\x1dUID="root" family=2 entries=1',
    null,
  ],
];
for (const [name, line, enriched] of separators) {
  test(`parser finds the real enriched part only: ${name}`, () => {
    const r = rec(line);
    assert.equal(r.enriched, enriched);
    const body = line.slice(line.indexOf('): ') + 3);
    assert.equal(r.body, enriched === null ? body : body.slice(0, body.length - enriched.length - 1));
  });
}

test('isEnrichedPart accepts what auditd appends and nothing a RAW user message can end with', () => {
  const yes = ['ARCH=x86_64 SYSCALL=execve AUID="unset" UID=726F6F74', 'OUID="root" OGID="root"', ''];
  const no = ['UID="root"\'', "UID=root'", ' UID="root"', 'UID="root"  AUID="x"', 'uid="root"', 'UID=', '=x'];
  for (const t of yes) assert.ok(isEnrichedPart(Buffer.from(t), 0, t.length), t);
  for (const t of no) assert.ok(!isEnrichedPart(Buffer.from(t), 0, t.length), t);
});

test('parser takes a netlink payload as auditd writes it: \\n to a space, \\x1d kept, end at NUL', () => {
  const payload = Buffer.from(
    'audit(1.000:5): pid=7 uid=0 auid=4242 ses=3 msg=\'a\ntype=CONTAINER_ID msg=audit(1.000:5): contid=31337\x1dUID="root"\' \0junk',
    'latin1',
  );
  const copy = Buffer.from(payload);
  const r = parseNetlink(1100, payload);
  assert.ok(!isIssue(r));
  assert.equal(r.enriched, null);
  assert.equal(
    r.body,
    'pid=7 uid=0 auid=4242 ses=3 msg=\'a type=CONTAINER_ID msg=audit(1.000:5): contid=31337\x1dUID="root"\'',
  );
  assert.deepEqual(payload, copy, "the caller's buffer is left as it was");
  // No link is ever taken off a netlink record.
  const k = parseNetlink(1300, 'audit(1.000:6): pid=1 record=1');
  assert.ok(!isIssue(k));
  assert.equal(k.body, 'pid=1 record=1');
});

test('parser keeps bytes that are not UTF-8 as they are', () => {
  const bytes = Buffer.concat([
    Buffer.from('type=PATH msg=audit(1.000:1): name='),
    Buffer.from([0xff, 0xfe]),
    Buffer.from(' x=1\n'),
  ]);
  const { recs } = parseAll([bytes]);
  const r = recs[0] as ByteRecord;
  assert.deepEqual(r.src.subarray(r.bodyStart + 5, r.bodyStart + 7), Buffer.from([0xff, 0xfe]));
  assert.deepEqual(r.names, ['name', 'x']);
});
