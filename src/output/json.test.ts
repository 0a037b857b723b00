import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuditEvent } from '../assemble/event.js';
import { decodeProctitle } from '../interpret/hex.js';
import { isIssue, parseLine } from '../parse/parser.js';
import type { AuditRecord } from '../parse/record.js';
import { formatEventJson } from './json.js';

function event(lines: string[]): AuditEvent {
  const records = lines.map((l, i) => {
    const r = parseLine(l, i + 1);
    if (isIssue(r)) throw new Error(r.message);
    return r;
  });
  const first = records[0]!;
  return {
    node: first.node,
    time: first.time,
    timeMs: first.timeMs,
    serial: first.serial,
    records,
    closedBy: 'end',
  };
}

interface J {
  records: {
    type: string;
    fields: Record<string, string>;
    interp?: Record<string, string>;
    argv?: string[];
  }[];
}

const hex = (s: string | Buffer): string => Buffer.from(s).toString('hex').toUpperCase();
const proctitles: [string, string][] = [
  ['arguments split at NUL', hex('sh\0-c\0echo "x" | cat')],
  ['a trailing NUL ends the last argument', hex('ls\0-l\0')],
  ['empty arguments between NULs are kept', hex('a\0\0b')],
  ['backslashes and quotes', hex('printf\0a\\b"c')],
  ['UTF-8 text', hex('echo\0grüße ☃')],
  ['a percent sign', hex('echo\x0050%41')],
  ['bytes that are not UTF-8', hex(Buffer.from([0x61, 0xff, 0x00, 0x62]))],
  ['lower-case hex', hex('abc').toLowerCase()],
  ['a control character', hex('a\tb\x01')],
  ['a quoted value', '"/bin/sh"'],
];
for (const [name, value] of proctitles) {
  test(`JSON argv of a PROCTITLE with ${name} matches decodeProctitle`, () => {
    const line = `type=PROCTITLE msg=audit(1.000:1): proctitle=${value}`;
    const j = JSON.parse(formatEventJson(event([line]), null, null)) as J;
    assert.deepEqual(j.records[0]!.argv, decodeProctitle(value));
  });
}

test('JSON keeps repeated field names with a #N suffix', () => {
  const j = JSON.parse(
    formatEventJson(event(['type=SYSCALL msg=audit(1.000:1): key="a" key="b" key="c"']), null, null),
  ) as J;
  assert.deepEqual(j.records[0]!.fields, { key: '"a"', 'key#2': '"b"', 'key#3': '"c"' });
});

test('JSON escapes hostile bytes in names and values and stays valid', () => {
  const line = 'type=SYSCALL msg=audit(1.000:1): a\\b="x\\y" c=\x01\x7f d="é"';
  const j = JSON.parse(formatEventJson(event([line]), null, null)) as J;
  assert.deepEqual(j.records[0]!.fields, { 'a\\b': '"x\\y"', c: '\x01\x7f', d: '"é"' });
});

test('JSON writes records built outside the parser the same as parsed ones', () => {
  const parsed = event(['type=CWD msg=audit(1.000:1): cwd="/tmp"\x1dX=1']);
  const r = parsed.records[0]!;
  const plain: AuditRecord = {
    node: null,
    type: r.type,
    typeName: r.typeName,
    time: r.time,
    timeMs: r.timeMs,
    serial: r.serial,
    names: ['cwd'],
    values: ['"/tmp"'],
    body: 'cwd="/tmp"',
    enriched: 'X=1',
    line: 1,
  };
  assert.equal(
    formatEventJson({ ...parsed, records: [plain] }, null, null),
    formatEventJson(parsed, null, null),
  );
});
