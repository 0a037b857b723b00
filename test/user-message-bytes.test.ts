/**
 * A user message's text is whatever its sender wrote: the kernel passes its
 * bytes as they are, `\x1d` included (KERNEL.md §9), and any process with
 * CAP_AUDIT_WRITE (containers get it by default) can send one. On netlink no
 * record has an enriched part, so such a byte is text; read as auditd's
 * separator, it would cut the message there and hide a forgery. (Through
 * auditd's plugin stream, RAW and ENRICHED: test/auditd-plugin.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  auditSkipReason,
  runWithLoginuid,
  skipIfDaemonRegistered,
  TEST_LOGINUID,
  withAuditState,
} from './support/audit-state.js';
import { startDaemonProcess } from './support/daemon-process.js';
import { field, waitForEvents, type LogEvent } from './support/log-events.js';
import { compileForge, gccSkipReason } from './support/programs.js';

const skip = auditSkipReason() ?? gccSkipReason('a user message sender');

/**
 * Runs `contid run` on private paths, sends `text` as a USER_AUTH message
 * (fx-forge, from a process with a login uid) and gives `check` the event
 * of that message in the host log, with the sender's pid.
 */
async function checkUserAuth(
  t: TestContext,
  text: string,
  check: (event: LogEvent, pid: number, hostLog: string) => void,
): Promise<void> {
  await withAuditState(async (ctx) => {
    if (skipIfDaemonRegistered(t, ctx)) return;
    const dir = mkdtempSync(join(tmpdir(), 'contid-usermsg-'));
    t.after(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    const forge = join(dir, 'fx-forge');
    compileForge(forge);
    writeFileSync(join(dir, 'message.txt'), text);
    const hostLog = join(dir, 'audit.log');
    const d = await startDaemonProcess(
      ['--host-log', hostLog, '--state-dir', join(dir, 'state'), '--socket', 'none'],
      { ready: 'Started:', timeoutMs: 60_000 },
    );
    try {
      const sent = await runWithLoginuid(TEST_LOGINUID, [forge, '1100', join(dir, 'message.txt')]);
      assert.match(sent.stdout, /ack error=0/, sent.stderr);
      const event = await waitForEvents(hostLog, `the USER_AUTH message of pid ${sent.pid}`, (events) =>
        events.find((e) =>
          e.lines.some((l) => l.startsWith('type=USER_AUTH ') && field(l, 'pid') === String(sent.pid)),
        ),
      );
      check(event, sent.pid, hostLog);
    } finally {
      process.kill(d.pid, 'SIGTERM');
      assert.equal(await d.exited, 0, d.stderr());
    }
  });
}

test(
  'unicast: a user message holding \\x1d is read whole, and its marker text of the wrong type reported',
  { skip, timeout: 120_000 },
  async (t) => {
    const text = 'contid-marker v=1 start=X seq=1 op=set pid=1 contid=666 mac=00\x1dUID="root"';
    await checkUserAuth(t, text, (event, pid) => {
      const forgery = event.lines.find((l) => l.startsWith('type=CONTID_FORGERY '));
      assert.ok(forgery !== undefined, `a forgery report:\n${event.lines.join('\n')}`);
      assert.match(forgery, new RegExp(` reason=wrong-type pid=${pid} `));
    });
  },
);

test(
  'unicast: a newline in a user message is written as a space, as auditd writes it, so it adds no line to the host log',
  { skip, timeout: 120_000 },
  async (t) => {
    const fake = 'type=SYSCALL msg=audit(1700000000.001:1): arch=c000003e syscall=59 pid=1 comm="planted"';
    await checkUserAuth(t, `hello\n${fake}`, (event, _pid, hostLog) => {
      const message = event.lines.find((l) => l.startsWith('type=USER_AUTH '))!;
      assert.ok(message.endsWith(` msg='hello ${fake}'`), message);
      assert.ok(
        !readFileSync(hostLog, 'utf8')
          .split('\n')
          .some((l) => l.startsWith(fake)),
        'no planted line',
      );
    });
  },
);
