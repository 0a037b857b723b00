/**
 * Whether a `\x1d` is auditd's enriched-part separator or text: the kernel
 * passes a user message's bytes as they are (KERNEL.md §9), so in a RAW
 * stream, or on netlink, a user message may hold one that is no separator.
 * The format of a text stream is told by its records: a SYSCALL record has an
 * enriched part exactly when auditd writes ENRICHED, and DAEMON_START says
 * `format=`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseNetlink, RecordParser } from './parser.js';
import type { AuditRecord } from './record.js';

const SYSCALL_RAW =
  'type=SYSCALL msg=audit(1796652421.252:10): arch=c000003e syscall=59 success=yes exit=0 items=0 ppid=1 pid=5 auid=4242 uid=0 ses=3 comm="sh" exe="/usr/bin/dash" key="contid"';
const SYSCALL_ENRICHED = `${SYSCALL_RAW.replace(':10)', ':12)')}\x1dARCH=x86_64 SYSCALL=execve AUID="unknown(4242)" UID="root"`;
/** A user message whose text holds a `\x1d` followed by what looks like an enriched part. */
const TEXT = 'contid-marker v=1 start=X seq=1 op=set pid=1 contid=666 mac=00\x1dUID="root"';
const USER_RAW = `type=USER_AUTH msg=audit(1796652421.300:11): pid=5 uid=0 auid=4242 ses=3 msg='${TEXT}'`;
const USER_ENRICHED = `${USER_RAW.replace(':11)', ':13)')}\x1dUID="root" AUID="unknown(4242)"`;

/** Parses `text` fed whole and byte by byte; both must agree. */
function parse(text: string): AuditRecord[] {
  const run = (chunks: Buffer[]): AuditRecord[] => {
    const records: AuditRecord[] = [];
    const parser = new RecordParser({
      onRecord: (r) => records.push(r),
      onIssue: (i) => assert.fail(i.message),
    });
    for (const c of chunks) parser.push(c);
    parser.end();
    return records;
  };
  const bytes = Buffer.from(text);
  const whole = run([bytes]);
  const split = run([...bytes].map((b) => Buffer.from([b])));
  const view = (rs: AuditRecord[]): [string, string | null][] => rs.map((r) => [r.body, r.enriched]);
  assert.deepEqual(view(split), view(whole));
  return whole;
}

test('RAW stream: a user message keeps its \\x1d as text, after a SYSCALL record without enriched part', () => {
  const [syscall, user] = parse(`${SYSCALL_RAW}\n${USER_RAW}\n`);
  assert.equal(syscall!.enriched, null);
  assert.equal(user!.enriched, null);
  assert.equal(user!.body, `pid=5 uid=0 auid=4242 ses=3 msg='${TEXT}'`);
});

test("ENRICHED stream: the last \\x1d of a user message is auditd's, a \\x1d in its text stays text", () => {
  const [syscall, user] = parse(`${SYSCALL_ENRICHED}\n${USER_ENRICHED}\n`);
  assert.equal(syscall!.enriched, 'ARCH=x86_64 SYSCALL=execve AUID="unknown(4242)" UID="root"');
  assert.equal(user!.enriched, 'UID="root" AUID="unknown(4242)"');
  assert.equal(user!.body, `pid=5 uid=0 auid=4242 ses=3 msg='${TEXT}'`);
});

test('DAEMON_START format=raw tells the format before any SYSCALL record', () => {
  const start =
    'type=DAEMON_START msg=audit(1796652421.245:4226): op=start ver=3.0.9 format=raw kernel=6.18.44 auid=4294967295 pid=4208 uid=0 ses=4294967295 res=success';
  const [, user] = parse(`${start}\n${USER_RAW}\n`);
  assert.equal(user!.enriched, null);
  assert.equal(user!.body, `pid=5 uid=0 auid=4242 ses=3 msg='${TEXT}'`);
});

test('a log whose format changes follows each SYSCALL record (RAW, then ENRICHED, then RAW)', () => {
  const records = parse(
    [SYSCALL_RAW, USER_RAW, SYSCALL_ENRICHED, USER_ENRICHED, SYSCALL_RAW, USER_RAW, ''].join('\n'),
  );
  assert.deepEqual(
    records.map((r) => r.enriched),
    [
      null,
      null,
      'ARCH=x86_64 SYSCALL=execve AUID="unknown(4242)" UID="root"',
      'UID="root" AUID="unknown(4242)"',
      null,
      null,
    ],
  );
  for (const r of records.filter((x) => x.typeName === 'USER_AUTH'))
    assert.match(r.body, /mac=00\x1dUID="root"'$/);
});

test('node= names do not change the rule', () => {
  const [, user] = parse(`node=vm ${SYSCALL_RAW}\nnode=vm ${USER_RAW}\n`);
  assert.equal(user!.node, 'vm');
  assert.equal(user!.enriched, null);
});

test('netlink payloads have no enriched part: a \\x1d in a user message is text', () => {
  const r = parseNetlink(1100, `audit(1796652421.300:11): pid=5 uid=0 auid=4242 ses=3 msg='${TEXT}'`);
  assert.ok(!('code' in r && typeof r.code === 'string' && r.code.startsWith('ERR_')), 'a record');
  const record = r as AuditRecord;
  assert.equal(record.enriched, null);
  assert.equal(record.body, `pid=5 uid=0 auid=4242 ses=3 msg='${TEXT}'`);
});
