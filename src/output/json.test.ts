import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuditEvent } from '../assemble/event.js';
import { decodeProctitle } from '../interpret/hex.js';
import { isUtf8 } from 'node:buffer';
import { isIssue, parseLine, RecordParser } from '../parse/parser.js';
import type { AuditRecord, ParseIssue } from '../parse/record.js';
import { ByteSink } from './byte-sink.js';
import { recordArgv } from './interpretation.js';
import { splitFields } from '../parse/fields.js';
import { formatEventJson, JsonEventWriter } from './json.js';
import { prngInt } from '../../test/support/prng.js';

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
  ['a quoted value with a percent sign', '"50%41"'],
  ['a quoted value with a backslash', '"a\\b"'],
];
for (const [name, value] of proctitles) {
  test(`JSON argv of a PROCTITLE with ${name} matches decodeProctitle`, () => {
    const line = `type=PROCTITLE msg=audit(1.000:1): proctitle=${value}`;
    const j = JSON.parse(formatEventJson(event([line]), null, null)) as J;
    assert.deepEqual(j.records[0]!.argv, decodeProctitle(value));
  });
}

const execves: [string, string][] = [
  ['quoted arguments', 'argc=3 a0="/bin/echo" a1="sub" a2="133"'],
  ['hex arguments', `argc=2 a0="sh" a1=${hex('echo "a b"')}`],
  ['a NUL and control bytes in hex', `argc=1 a0=${hex('a\0b\tc\x7f')}`],
  ['UTF-8 text in hex', `argc=1 a0=${hex('grüße ☃')}`],
  ['bytes that are not UTF-8', `argc=1 a0=${hex(Buffer.from([0x61, 0xff]))}`],
  ['a quoted percent sign', 'argc=1 a0="50%41"'],
  ['a percent sign in hex', `argc=1 a0=${hex('a%41')}`],
  ['a bare value', 'argc=2 a0="x" a1=(null)'],
  ['lower-case hex (not decoded)', 'argc=1 a0=6162'],
  ['a backslash', 'argc=1 a0="a\\b"'],
  ['split arguments', 'argc=2 a0="x" a1_len=4 a1[0]=6162 a1[1]=6364'],
  ['arguments out of order', 'argc=2 a1="b" a0="a"'],
  ['a missing argument', 'argc=3 a0="a" a2="c"'],
  ['a repeated argument', 'argc=1 a0="a" a0="b"'],
  ['odd names', 'argc=2 a00="a" a="b" a+1="c" a0x1="d"'],
  ['no arguments', 'argc=0'],
];
for (const [name, body] of execves) {
  test(`JSON argv of an EXECVE with ${name} matches recordArgv`, () => {
    const e = event([`type=EXECVE msg=audit(1.000:1): ${body}`]);
    const j = JSON.parse(formatEventJson(e, null, null)) as J;
    assert.deepEqual(j.records[0]!.argv, recordArgv(e.records[0]!));
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

/** The enriched part as the field grammar reads it: names lower-cased, double quotes taken off. */
function interpOf(enriched: string): Record<string, string> {
  const names: string[] = [];
  const values: string[] = [];
  splitFields(enriched, names, values);
  const o: Record<string, string> = {};
  names.forEach((n, i) => {
    const v = values[i]!;
    o[n.toLowerCase()] = v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
  });
  return o;
}

test('JSON interpretations of an enriched part follow the field grammar', () => {
  const parts = [
    'UID="root" GID="root" ARCH=x86_64',
    'A="unterminated',
    'A="" B=" " C="',
    "A='single quoted' B=x",
    'A={ braced } B=y',
    'loose A=1 word B=2 ',
    'A=a\\b B="c\\d" C=\x01 D="é"',
    'A= B=  C=3',
    'MiXeD=1 mixed=2',
    '"quoted"=name A="x"y B=z',
  ];
  const rand = prngInt(99);
  const pieces = ['A', 'b', '=', '"', "'", '{', '}', ' ', '\\', 'x', '\x01', 'é'];
  for (let n = 0; n < 500; n++) {
    let t = '';
    for (let k = rand(24); k > 0; k--) t += pieces[rand(pieces.length)]!;
    parts.push(t);
  }
  for (const part of parts) {
    const e = event([`type=CWD msg=audit(1.000:1): cwd="/tmp"\x1d${part}`]);
    const j = JSON.parse(formatEventJson(e, null, null)) as J;
    // The enriched part as the parser kept it (a line's trailing spaces are not part of it).
    const kept = e.records[0]!.enriched ?? '';
    assert.deepEqual(j.records[0]!.interp ?? {}, interpOf(kept), JSON.stringify(part));
  }
});

interface JMsg {
  records: { fields: Record<string, string>; msg?: Record<string, string>; rest?: string }[];
}

test('JSON suffixes a name repeated thousands of times in one pass, each suffix the next free one', () => {
  const body = Array.from({ length: 3000 }, (_, i) => `a=${i}`).join(' ');
  const j = JSON.parse(
    formatEventJson(event([`type=SYSCALL msg=audit(1.000:1): ${body} a#3=x`]), null, null),
  ) as JMsg;
  const f = j.records[0]!.fields;
  assert.equal(Object.keys(f).length, 3001);
  assert.equal(f['a'], '0');
  assert.equal(f['a#2'], '1');
  assert.equal(f['a#3'], '2');
  assert.equal(f['a#3000'], '2999');
  // The record's own a#3 takes the next free name rather than overwrite one.
  assert.equal(f['a#3#2'], 'x');
});

test("JSON expands a user message's msg='…' with its repeated names, any name included", () => {
  const text = `${'a=1 '.repeat(2000)}__proto__=p (hostname=?, res=success) a=x`;
  const line = `type=USER msg=audit(1.000:1): pid=7 uid=0 auid=4242 ses=3 msg='${text}'`;
  const j = JSON.parse(formatEventJson(event([line]), null, null)) as JMsg;
  const msg = j.records[0]!.msg!;
  assert.equal(Object.keys(msg).length, 2004);
  assert.equal(msg['a#2000'], '1');
  assert.equal(msg['a#2001'], 'x');
  assert.ok(Object.hasOwn(msg, '__proto__'));
  assert.equal(msg['hostname'], '?');
  assert.equal(msg['res'], 'success');
  assert.equal(j.records[0]!.fields['msg'], `'${text}'`);
});

test('JSON writes at most 4096 fields of a record and keeps the rest of its text whole', () => {
  const body = Array.from({ length: 5000 }, (_, i) => `f${i}=${i}`).join(' ');
  const j = JSON.parse(
    formatEventJson(event([`type=SYSCALL msg=audit(1.000:1): ${body}`]), null, null),
  ) as JMsg;
  // Distinct names, thousands of them sharing hash buckets: none gets a suffix.
  assert.deepEqual(
    Object.keys(j.records[0]!.fields),
    Array.from({ length: 4096 }, (_, i) => `f${i}`),
  );
  assert.equal(j.records[0]!.fields['f4095'], '4095');
  assert.equal(
    j.records[0]!.rest,
    Array.from({ length: 904 }, (_, i) => `f${i + 4096}=${i + 4096}`).join(' '),
  );
});

test('JSON has U+FFFD for bytes that are not UTF-8, and counts the record', () => {
  const bytes = Buffer.concat([
    Buffer.from('type=PATH msg=audit(1.000:1): name="a'),
    Buffer.from([0xff]),
    Buffer.from('b" x=1\n'),
  ]);
  const recs: AuditRecord[] = [];
  const p = new RecordParser({ onRecord: (r) => recs.push(r), onIssue: () => undefined });
  p.push(bytes);
  p.end();
  const sink = new ByteSink(64);
  const w = new JsonEventWriter(sink);
  w.write({ ...event(['type=PATH msg=audit(1.000:1): x=1']), records: recs });
  const out = sink.take();
  assert.ok(isUtf8(out));
  const j = JSON.parse(out.toString('utf8')) as JMsg;
  assert.equal(j.records[0]!.fields['name'], '"a\ufffdb"');
  assert.equal(w.stats().invalidUtf8, 1);
});

test('JSON reports a word with no value in a kernel record, not in free-text records', () => {
  const issues: ParseIssue[] = [];
  const sink = new ByteSink(64);
  const w = new JsonEventWriter(sink, { onIssue: (i) => issues.push(i) });
  w.write(event(['type=EXECVE msg=audit(1.000:1): argc=3 a0="ls" a1 a2="x"']));
  w.write(event(['type=AVC msg=audit(1.000:2): avc:  denied  { read } for  pid=1']));
  w.write(event(['type=DAEMON_START msg=audit(1.000:3): auditd start, ver=3.0.9']));
  assert.deepEqual(
    issues.map((i) => [i.code, i.excerpt, i.kept]),
    [['ERR_FIELD_WITHOUT_VALUE', 'a1', true]],
  );
  assert.equal(w.stats().wordsWithoutValue, 1);
});

test("JSON gives a user message's text, quotes and \\x1d included, as its msg field and nothing else", () => {
  const line = `type=USER_AUTH msg=audit(1.000:1): pid=7 uid=1000 auid=4242 ses=3 msg='a' uid=0\x1dUID="root" AUID="root" SYSCALL=execve'`;
  const j = JSON.parse(formatEventJson(event([line]), null, null)) as J;
  const r = j.records[0]!;
  assert.deepEqual(Object.keys(r.fields), ['pid', 'uid', 'auid', 'ses', 'msg']);
  assert.equal(r.fields['uid'], '1000');
  assert.equal(r.fields['msg'], `'a' uid=0\x1dUID="root" AUID="root" SYSCALL=execve'`);
  assert.equal(r.interp?.['uid'], undefined);
  assert.equal(r.interp?.['syscall'], undefined);
});

test('JSON leaves out the argv of an EXECVE record numbered far past its size, and counts it', () => {
  const sink = new ByteSink(64);
  const w = new JsonEventWriter(sink);
  w.write(event(['type=EXECVE msg=audit(1.000:1): a1048575="x"']));
  // A record that goes on a long argument list: empty strings for the arguments before it.
  w.write(event(['type=EXECVE msg=audit(1.000:2): a3="x" a4="y"']));
  const [far, near] = sink
    .take()
    .toString('utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as J);
  assert.equal(far!.records[0]!.argv, undefined);
  assert.equal(far!.records[0]!.fields['a1048575'], '"x"');
  assert.deepEqual(near!.records[0]!.argv, ['', '', '', 'x', 'y']);
  assert.equal(w.stats().argvOmitted, 1);
});
