/**
 * Replaying contid's own host log gives that host log again, byte for byte:
 * contid's CONTAINER_ID, CONTAINER_OP and CONTID_FORGERY records and its
 * `record=N` links are recomputed, not read as evidence. Checked on every
 * kernel capture of testdata/captures with its keyring.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseKeyring } from '../src/marker/keyring.js';
import type { OutputFormat, ReplayOptions, ReplayStats } from '../src/pipeline/replay.js';
import { ReplayPipeline } from '../src/pipeline/replay.js';

const DIR = new URL('../../testdata/captures/', import.meta.url);
const scenarios = readdirSync(DIR)
  .filter((f) => f.endsWith('.log'))
  .map((f) => f.slice(0, -4));

function replay(
  input: Buffer,
  format: OutputFormat,
  options: Partial<ReplayOptions> = {},
): { out: Buffer; stats: ReplayStats } {
  const p = new ReplayPipeline({ format, ...options });
  const out = Buffer.concat([p.push(input), p.end()]);
  return { out, stats: p.stats() };
}

for (const name of scenarios) {
  test(`replaying the host log of capture ${name} gives the same host log, byte for byte`, () => {
    const log = readFileSync(new URL(`${name}.log`, DIR));
    const keyring = parseKeyring(readFileSync(new URL(`${name}.keyring`, DIR), 'utf8'));
    const host = replay(log, 'text', { keyring });
    const own =
      host.out.toString('latin1').match(/^type=(CONTAINER_ID|CONTAINER_OP|CONTID_FORGERY) /gm) ?? [];
    assert.ok(own.length > 0, 'the capture labels something');
    const again = replay(host.out, 'text', { keyring });
    assert.ok(again.out.equals(host.out), 'same bytes');
    assert.equal(again.stats.ownRecords, own.length);
    const linked = host.out
      .toString('latin1')
      .split('\n')
      .filter(
        (l) => !/^type=(CONTAINER_ID|CONTAINER_OP|CONTID_FORGERY) /.test(l) && / record=\d+(\x1d|$)/.test(l),
      );
    assert.ok(linked.length > 0);
    assert.equal(again.stats.links, linked.length);
    assert.equal(again.stats.late, 0);
    assert.equal(again.stats.events, host.stats.events);
    // And the JSON of the host log is the JSON of the log.
    assert.ok(replay(host.out, 'json', { keyring }).out.equals(replay(log, 'json', { keyring }).out));
  });
}

test('a forged CONTAINER_ID in an old host log is left out and counted, and takes no record with it', () => {
  const log = [
    'type=SYSCALL msg=audit(1700000000.000:7): arch=c000003e syscall=59 success=yes exit=0 a0=0 a1=0 a2=0 a3=0 items=0 ppid=1 pid=5 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="sshd" exe="/usr/sbin/sshd" key=(null)',
    'type=CONTAINER_ID msg=audit(1700000000.000:7): record=1 contid=31337',
    'type=PROCTITLE msg=audit(1700000000.000:7): proctitle=73736864',
    'type=CONTAINER_OP msg=audit(1700000000.000:8): op=set opid=5 contid=31337 old-contid=-1 res=1',
    '',
  ].join('\n');
  const { out, stats } = replay(Buffer.from(log), 'text');
  assert.equal(
    out.toString('utf8'),
    [
      'type=SYSCALL msg=audit(1700000000.000:7): arch=c000003e syscall=59 success=yes exit=0 a0=0 a1=0 a2=0 a3=0 items=0 ppid=1 pid=5 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="sshd" exe="/usr/sbin/sshd" key=(null)',
      'type=PROCTITLE msg=audit(1700000000.000:7): proctitle=73736864',
      '',
    ].join('\n'),
  );
  assert.equal(stats.ownRecords, 2);
  assert.equal(stats.records, 2);
  assert.equal(stats.badLines, 0);
});

test('two files, the first without a final newline: no line runs into the next file, the cut is reported', () => {
  const first = Buffer.from(
    'type=USER_AUTH msg=audit(1700000000.000:1): pid=1 uid=0 auid=0 ses=1 msg=\'op=PAM:authentication acct="root" res=success\'',
  );
  const second = Buffer.from(
    "type=USER_LOGIN msg=audit(1700000000.100:2): pid=1 uid=0 auid=0 ses=1 msg='op=login id=0 res=success'\n",
  );
  const p = new ReplayPipeline({ format: 'json' });
  const out = Buffer.concat([p.push(first), p.endFile(), p.push(second), p.endFile(), p.end()]);
  const events = out
    .toString('utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { records: { type: string; fields: Record<string, string> }[] });
  assert.deepEqual(
    events.map((e) => e.records[0]!.type),
    ['USER_AUTH', 'USER_LOGIN'],
  );
  assert.equal(events[0]!.records[0]!.fields['msg'], '\'op=PAM:authentication acct="root" res=success\'');
  const st = p.stats();
  assert.equal(st.unterminatedLines, 1);
  assert.equal(st.badLines, 0);
  assert.deepEqual(
    st.issues.map((i) => [i.line, i.code]),
    [[1, 'ERR_UNTERMINATED_LINE']],
  );
});

/** Events as (serial, record types, contid), the outlier's own event left out. */
function grouping(out: Buffer, without: number): string[] {
  return (
    out
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { serial: number; contid: string | null; records: { type: string }[] })
      .filter((e) => e.serial !== without)
      // (A record dated a day ahead, or a clock set back, also moves the markers against the
      // events around them: the evidence checks say so in CONTID_EVIDENCE records, left out here.)
      .map(
        (e) =>
          `${e.serial} ${e.records
            .map((r) => r.type)
            .filter((t) => t !== 'CONTID_EVIDENCE')
            .join(',')} ${e.contid ?? '-'}`,
      )
      .sort()
  );
}

test('a crun capture keeps its events and their contid past a record dated a day ahead and a clock set back', () => {
  const log = readFileSync(new URL('e-crun.log', DIR), 'utf8');
  const keyring = parseKeyring(readFileSync(new URL('e-crun.keyring', DIR), 'utf8'));
  const base = replay(Buffer.from(log), 'json', { keyring });
  const events = grouping(base.out, -1);
  // The capture has container events of several records (SYSCALL, EXECVE, CWD, PATH…) with a contid.
  assert.ok(events.some((e) => / SYSCALL,.*EXECVE,CWD,PATH.* 42$/.test(e)));
  const lines = log.trimEnd().split('\n');
  const at = 8;
  const stamp = /audit\((\d+)\.(\d+):/;
  const sec = Number(stamp.exec(lines[at]!)![1]);
  const outlier = `type=USER_LOGIN msg=audit(${sec + 86_400}.000:99999999): pid=1 uid=0 auid=0 ses=1 msg='op=login id=0 res=success'`;
  const poisoned = [...lines.slice(0, at), outlier, ...lines.slice(at), ''].join('\n');
  const p = replay(Buffer.from(poisoned), 'json', { keyring });
  assert.deepEqual(grouping(p.out, 99999999), events);
  assert.equal(p.stats.clockOutliers, 1);
  assert.equal(p.stats.timedOut, base.stats.timedOut);
  // The machine's clock set back an hour between two events halfway through: the same events.
  const serialOf = (l: string): string => /:(\d+)\)/.exec(l)![1]!;
  let half = Math.floor(lines.length / 2);
  while (serialOf(lines[half]!) === serialOf(lines[half - 1]!)) half++;
  const back = lines.map((l, i) =>
    i < half ? l : l.replace(stamp, (_, s: string, ms: string) => `audit(${Number(s) - 3600}.${ms}:`),
  );
  const b = replay(Buffer.from([...back, ''].join('\n')), 'json', { keyring });
  assert.deepEqual(grouping(b.out, -1), events);
  assert.equal(b.stats.clockSteps, 1);
});
