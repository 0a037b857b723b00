/**
 * Nothing a process writes becomes a line of the host log (issue 10, section
 * 3), on the real kernel: a process of loginuid 4242, as any process with
 * CAP_AUDIT_WRITE can (a container's, by default), sends user messages over
 * raw netlink whose text holds `\n`, `\x1d`, whole fake records (a SYSCALL
 * of sshd, a CONTAINER_ID with contid=31337) and a fake enriched part. The
 * kernel passes the text on raw; the daemon's host log, text and JSON, must
 * hold each message as exactly one record of its event, with nothing
 * forged: no extra line, record or field, no interpretation taken from the
 * text, no label.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RecordParser } from '../src/parse/parser.js';
import type { AuditRecord, ParseIssue } from '../src/parse/record.js';
import {
  auditSkipReason,
  runWithLoginuid,
  skipIfDaemonRegistered,
  TEST_LOGINUID,
  withAuditState,
} from './support/audit-state.js';
import { startDaemonProcess } from './support/daemon-process.js';

const MAIN = new URL('../src/cli/main.js', import.meta.url).pathname;
const NETLINK = new URL('../src/kernel/netlink.js', import.meta.url).href;
const skip = auditSkipReason();

/** USER_AUTH, a type any sender with CAP_AUDIT_WRITE may use. */
const TYPE = 1100;

/** The texts sent, each with a probe word that finds it in the log. */
function texts(probe: string): string[] {
  return [
    `op=login probe=${probe}-1 acct="x"\n` +
      'type=SYSCALL msg=audit(1700000000.000:1): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=1 ' +
      'auid=0 uid=0 comm="sshd" exe="/usr/sbin/sshd" key=(null)\n' +
      'type=CONTAINER_ID msg=audit(1700000000.000:1): record=1 contid=31337\n res=success',
    // A fake enriched part, after the text's own closing quote.
    `probe=${probe}-2 res=success'\x1dUID="root" AUID="root" SYSCALL=execve`,
    `probe=${probe}-3 a\x1db\r\x0bc\ttype=CONTAINER_OP msg=audit(1700000000.000:2): op=set contid=31337`,
  ];
}

// Runs in a process of loginuid 4242: sends each text of argv as a user message.
const SENDER = `
import { AuditNetlink } from ${JSON.stringify(NETLINK)};
const net = new AuditNetlink();
for (const text of JSON.parse(process.argv[1])) net.sendUserMessage(${TYPE}, text);
net.close();
`;

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'contid-untrusted-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Runs the daemon with a host log in `format`, sends the texts, stops it; returns the log. */
async function hostLogOf(t: TestContext, format: 'text' | 'json', probe: string): Promise<string> {
  return withAuditState(async (ctx) => {
    if (skipIfDaemonRegistered(t, ctx)) return '';
    const dir = tempDir(t);
    const log = join(dir, 'audit.log');
    const d = await startDaemonProcess(
      ['--socket', 'none', '--host-log', log, '--format', format, '--state-dir', join(dir, 'state')],
      { ready: 'Started:' },
    );
    try {
      const sent = await runWithLoginuid(TEST_LOGINUID, [
        process.execPath,
        '--input-type=module',
        '-e',
        SENDER,
        JSON.stringify(texts(probe)),
      ]);
      assert.equal(sent.code, 0, sent.stderr);
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        if (existsSync(log) && readFileSync(log, 'latin1').includes(`probe=${probe}-3`)) break;
        await sleep(50);
      }
    } finally {
      process.kill(d.pid, 'SIGTERM');
      assert.equal(await d.exited, 0, d.stderr());
    }
    return readFileSync(log, 'latin1');
  });
}

test(
  'user messages with \\n, \\x1d and whole fake records are one record each in the text host log',
  { skip, timeout: 120_000 },
  async (t) => {
    const probe = `p${process.pid}t${Date.now()}`;
    const log = await hostLogOf(t, 'text', probe);
    if (log === '') return;
    const lines = log.split('\n');
    for (const [i, text] of texts(probe).entries()) {
      const mine = lines.filter((l) => l.includes(`probe=${probe}-${i + 1}`));
      assert.equal(mine.length, 1, `message ${i + 1} is one line:\n${mine.join('\n')}`);
      // The kernel's record, the text inside msg='…' with each \n a space (as auditd writes it).
      const line = mine[0]!;
      assert.match(
        line,
        new RegExp(
          `^type=USER_AUTH msg=audit\\([0-9.]+:[0-9]+\\): pid=[0-9]+ uid=0 auid=${TEST_LOGINUID} ses=[0-9]+ msg='`,
        ),
      );
      assert.ok(line.endsWith(`msg='${text.replaceAll('\n', ' ')}'`), line);
    }
    // Nothing of the texts became a line of its own.
    assert.equal(lines.filter((l) => l.startsWith('type=SYSCALL msg=audit(1700000000.000:1)')).length, 0);
    assert.equal(lines.filter((l) => /^type=CONTAINER_(ID|OP) /.test(l) && l.includes('31337')).length, 0);
    // Read back as a log: one record per message, no enriched part, no label.
    const records: AuditRecord[] = [];
    const issues: ParseIssue[] = [];
    const p = new RecordParser({ onRecord: (r) => records.push(r), onIssue: (i) => issues.push(i) });
    p.push(Buffer.from(log, 'latin1'));
    p.end();
    assert.deepEqual(issues, []);
    const mine = records.filter((r) => r.body.includes(`probe=${probe}-`));
    assert.deepEqual(
      mine.map((r) => [r.typeName, r.enriched]),
      [
        ['USER_AUTH', null],
        ['USER_AUTH', null],
        ['USER_AUTH', null],
      ],
    );
    const stamps = new Set(mine.map((r) => `${r.time}:${r.serial}`));
    assert.equal(
      records.filter((r) => stamps.has(`${r.time}:${r.serial}`)).length,
      3,
      'no other record has their stamps',
    );
    assert.equal(p.stats().ownRecords, 0, 'no CONTAINER_ID, CONTAINER_OP or CONTID_FORGERY at all');
    // Replaying the host log gives it again: nothing in it reads differently the second time.
    const dir = tempDir(t);
    const file = join(dir, 'host.log');
    spawnSync('/bin/sh', ['-c', 'cat > "$1"', 'sh', file], { input: Buffer.from(log, 'latin1') });
    const replay = spawnSync(process.execPath, [MAIN, 'replay', '-q', '--format', 'text', file]);
    assert.equal(replay.status, 0, replay.stderr.toString());
    const again = replay.stdout.toString('latin1').split('\n');
    for (let i = 1; i <= 3; i++) {
      assert.deepEqual(
        again.filter((l) => l.includes(`probe=${probe}-${i}`)),
        lines.filter((l) => l.includes(`probe=${probe}-${i}`)),
      );
    }
  },
);

interface JsonEvent {
  contid: string | null;
  records: {
    type: string;
    fields: Record<string, string>;
    interp?: Record<string, string>;
    msg?: Record<string, string>;
  }[];
}

test(
  'user messages with \\n, \\x1d and whole fake records are one record each in the JSON host log',
  { skip, timeout: 120_000 },
  async (t) => {
    const probe = `p${process.pid}j${Date.now()}`;
    const log = await hostLogOf(t, 'json', probe);
    if (log === '') return;
    const events = log
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(Buffer.from(l, 'latin1').toString('utf8')) as JsonEvent);
    for (const [i, text] of texts(probe).entries()) {
      const mine = events.filter((e) =>
        e.records.some((r) => (r.fields['msg'] ?? '').includes(`probe=${probe}-${i + 1}`)),
      );
      assert.equal(mine.length, 1, `message ${i + 1} is one event`);
      const e = mine[0]!;
      assert.equal(e.contid, null);
      assert.equal(e.records.length, 1);
      const r = e.records[0]!;
      assert.equal(r.type, 'USER_AUTH');
      assert.equal(r.fields['auid'], String(TEST_LOGINUID));
      assert.equal(r.fields['msg'], `'${text.replaceAll('\n', ' ')}'`);
      // The fake UID="root" is text: nothing interprets it.
      assert.notEqual(r.interp?.['uid'], 'root');
      assert.notEqual(r.interp?.['auid'], 'root');
      assert.equal(r.interp?.['syscall'], undefined);
    }
    assert.ok(!events.some((e) => e.contid === '31337'));
    assert.ok(
      !events.some((e) => e.records.some((r) => r.type === 'CONTAINER_ID' && r.fields['contid'] === '31337')),
    );
  },
);
