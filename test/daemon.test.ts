/**
 * `contid run` on the real kernel, as root. Each test holds the audit lock
 * and restores the audit state (withAuditState), starts the daemon as a
 * child process with its files in a temporary directory, and stops it by
 * its pid.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { formatRule } from '../src/kernel/netlink.js';
import { Daemon } from '../src/daemon/daemon.js';
import { resolveConfig } from '../src/daemon/config.js';
import { contidRuleOwner, contidRules } from '../src/daemon/rules.js';
import type { LogLevel } from '../src/daemon/logger.js';
import {
  auditSkipReason,
  runWithLoginuid,
  skipIfDaemonRegistered,
  spawnWithLoginuid,
  TEST_LOGINUID,
  withAuditState,
} from './support/audit-state.js';
import { startDaemonChild } from './support/daemon-child.js';
import type { DaemonProcess } from './support/daemon-process.js';
import { startDaemonProcess } from './support/daemon-process.js';

const MAIN = new URL('../src/cli/main.js', import.meta.url).pathname;
const skip = auditSkipReason();

/** A `contid run` child process. */
type RunningDaemon = DaemonProcess;

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'contid-daemon-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Starts `contid run ARGS` (no control socket) and resolves once it reports "Started:". */
async function startRun(
  args: readonly string[],
  stdin: 'ignore' | 'pipe' = 'ignore',
): Promise<RunningDaemon> {
  return startDaemonProcess(['--socket', 'none', ...args], { ready: 'Started:', stdin });
}

/** Starts `contid run` in plugin mode, reading auditd's plugin stream from its stdin, logging to `log`. */
async function startPlugin(dir: string, log: string): Promise<RunningDaemon> {
  const args = ['--source', 'plugin', '--host-log', log, '--state-dir', join(dir, 'state')];
  return startRun([...args, '--seed-proc', 'no'], 'pipe');
}

/** Sends `signal` to the daemon by pid and resolves with its exit code. */
async function stopRun(d: RunningDaemon, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  process.kill(d.pid, signal);
  return d.exited;
}

/** Polls `file` until `predicate` holds for one of its lines. */
async function waitForLine(
  file: string,
  predicate: (line: string) => boolean,
  what: string,
): Promise<string> {
  const deadline = Date.now() + 8000;
  while (Date.now() < deadline) {
    if (existsSync(file)) {
      const line = readFileSync(file, 'utf8').split('\n').find(predicate);
      if (line !== undefined) return line;
    }
    await sleep(50);
  }
  throw new Error(`No ${what} in ${file} within 8 s`);
}

const isTrueExecve = (line: string): boolean =>
  line.startsWith('type=SYSCALL ') &&
  line.includes(' syscall=59 ') &&
  line.includes(` auid=${TEST_LOGINUID} `) &&
  line.includes('exe="/usr/bin/true"');

test(
  'unicast: registers, installs exactly its rules, logs a loginuid-4242 execve, and undoes it all on SIGTERM',
  { skip },
  async (t) => {
    await withAuditState(async (ctx) => {
      if (skipIfDaemonRegistered(t, ctx)) return;
      const { netlink, snapshot } = ctx;
      const dir = tempDir(t);
      const log = join(dir, 'audit.log');
      const d = await startRun(['--host-log', log, '--state-dir', join(dir, 'state')]);
      try {
        assert.match(d.stderr(), /source unicast/);
        const status = netlink.getStatus();
        assert.equal(status.pid, d.pid);
        assert.equal(status.enabled, 1);
        assert.ok(status.backlogLimit >= 8192);
        const ours = netlink
          .listRules()
          .filter((r) => contidRuleOwner(r) !== null)
          .map(formatRule);
        assert.deepEqual(ours, contidRules(d.pid).map(formatRule));

        const run = await runWithLoginuid(TEST_LOGINUID, ['/bin/true']);
        assert.equal(run.code, 0);
        const line = await waitForLine(log, isTrueExecve, 'execve of /bin/true');
        assert.match(line, new RegExp(` pid=${run.pid} `));
      } finally {
        assert.equal(await stopRun(d), 0, d.stderr());
      }
      const after = netlink.getStatus();
      assert.equal(after.pid, 0);
      assert.equal(after.enabled, snapshot.status.enabled);
      assert.equal(after.backlogLimit, snapshot.status.backlogLimit);
      assert.deepEqual(netlink.listRules().map(formatRule), snapshot.rules.map(formatRule));
      assert.equal(statSync(log).mode & 0o777, 0o600);
    });
  },
);

test(
  'unicast with --rules no enables audit as auditd does, so its start marker arrives, and disables it on stop',
  { skip },
  async (t) => {
    await withAuditState(async (ctx) => {
      if (skipIfDaemonRegistered(t, ctx)) return;
      const { netlink, snapshot } = ctx;
      // As on a fresh boot (restored by withAuditState).
      netlink.setStatus({ enabled: false });
      const dir = tempDir(t);
      const log = join(dir, 'audit.log');
      const d = await startRun([
        '--rules',
        'no',
        '--host-log',
        log,
        '--state-dir',
        join(dir, 'state'),
        '--seed-proc',
        'no',
        '--proc-connector',
        'no',
      ]);
      try {
        assert.equal(netlink.getStatus().enabled, 1);
        await waitForLine(log, (l) => l.includes(`op=start daemon-pid=${d.pid} `), 'start marker');
        assert.deepEqual(netlink.listRules().map(formatRule), snapshot.rules.map(formatRule));
      } finally {
        assert.equal(await stopRun(d), 0, d.stderr());
      }
      assert.equal(netlink.getStatus().enabled, 0);
      assert.doesNotMatch(d.stderr(), /did not come back/);
    });
  },
);

test(
  'the daemon start and stop markers land in the host log and verify with the keyring it wrote',
  { skip },
  async (t) => {
    await withAuditState(async (ctx) => {
      if (skipIfDaemonRegistered(t, ctx)) return;
      const dir = tempDir(t);
      const log = join(dir, 'audit.log');
      const keyring = join(dir, 'keys', 'keyring');
      const d = await startRun(['--host-log', log, '--state-dir', join(dir, 'state'), '--keyring', keyring]);
      await waitForLine(log, (l) => l.includes('op=start'), 'start marker');
      assert.equal(await stopRun(d, 'SIGINT'), 0, d.stderr());
      assert.equal(statSync(keyring).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'keys')).mode & 0o777, 0o700);
      const text = readFileSync(log, 'utf8');
      assert.match(
        text,
        new RegExp(
          `type=UNKNOWN\\[2942\\] msg=audit\\([0-9.:]+\\): pid=${d.pid} .*op=start daemon-pid=${d.pid} `,
        ),
      );
      // The /proc snapshot follows the start marker, as seed markers.
      const seeds = (text.match(/ op=seed procs=/g) ?? []).length;
      assert.ok(seeds >= 1, 'the snapshot is in the stream');
      // A busy machine may have given the daemon a whole bucket of records to seal before the stop.
      const seals = (text.match(/ op=seal from=/g) ?? []).length;
      assert.match(text, new RegExp(`seq=${seeds + seals + 2} (prev=[0-9.:]+ )?op=stop mac=`));
      const replay = spawnSync(
        process.execPath,
        [MAIN, 'replay', '--format', 'json', '--keyring', keyring, log],
        {
          encoding: 'utf8',
        },
      );
      assert.equal(replay.status, 0, replay.stderr);
      assert.match(replay.stderr, new RegExp(` ${seeds + seals + 2} markers,`));
      assert.match(replay.stderr, / 0 forgery attempts/);
    });
  },
);

test(
  'after SIGKILL the next start removes the dead run rules, registers, and restores the original state',
  { skip },
  async (t) => {
    await withAuditState(async (ctx) => {
      if (skipIfDaemonRegistered(t, ctx)) return;
      const { netlink, snapshot } = ctx;
      const dir = tempDir(t);
      const args = ['--host-log', join(dir, 'audit.log'), '--state-dir', join(dir, 'state')];
      const first = await startRun(args);
      assert.equal(await stopRun(first, 'SIGKILL'), null);
      // The kernel keeps what the killed run set up.
      assert.equal(netlink.listRules().filter((r) => contidRuleOwner(r) === first.pid).length, 2);
      assert.equal(netlink.getStatus().enabled, 1);

      const second = await startRun(args);
      try {
        assert.match(second.stderr(), /Recovering from contid pid/);
        assert.equal(second.stderr().match(/Removed the audit rule of an earlier contid run/g)?.length, 2);
        assert.equal(netlink.getStatus().pid, second.pid);
        const owners = netlink
          .listRules()
          .map(contidRuleOwner)
          .filter((o) => o !== null);
        assert.deepEqual(owners, [second.pid, second.pid]);
        const run = await runWithLoginuid(TEST_LOGINUID, ['/bin/true']);
        assert.equal(run.code, 0);
        await waitForLine(join(dir, 'audit.log'), isTrueExecve, 'execve after recovery');
      } finally {
        assert.equal(await stopRun(second), 0, second.stderr());
      }
      // enabled goes back to what it was before the killed run, not what that run left.
      assert.equal(netlink.getStatus().enabled, snapshot.status.enabled);
      assert.deepEqual(netlink.listRules().map(formatRule), snapshot.rules.map(formatRule));
      assert.ok(!existsSync(join(dir, 'state', 'kernel-state.json')));
    });
  },
);

test(
  'multicast beside another registered daemon writes no host log unless --host-log is given',
  { skip },
  async (t) => {
    await withAuditState(async (ctx) => {
      if (skipIfDaemonRegistered(t, ctx)) return;
      const { netlink } = ctx;
      const dir = tempDir(t);
      const defaultLog = '/var/log/contid/audit.log';
      const before = existsSync(defaultLog) ? statSync(defaultLog).size : -1;
      const stand = await startDaemonChild();
      try {
        const quiet = await startRun(['--state-dir', join(dir, 'state')]);
        try {
          assert.match(quiet.stderr(), /source multicast, .*no host log/);
          assert.equal(netlink.getStatus().pid, stand.pid);
          assert.equal((await runWithLoginuid(TEST_LOGINUID, ['/bin/true'])).code, 0);
          await sleep(300);
        } finally {
          assert.equal(await stopRun(quiet), 0, quiet.stderr());
        }
        assert.equal(existsSync(defaultLog) ? statSync(defaultLog).size : -1, before);
        // The keyring, and the label checkpoint saved on stop; no host log.
        assert.deepEqual(readdirSync(join(dir, 'state')).sort(), ['checkpoint.json', 'keyring']);

        const log = join(dir, 'multicast.log');
        const loud = await startRun([
          '--state-dir',
          join(dir, 'state'),
          '--host-log',
          log,
          '--format',
          'json',
        ]);
        try {
          assert.equal((await runWithLoginuid(TEST_LOGINUID, ['/bin/true'])).code, 0);
          const line = await waitForLine(
            log,
            (l) => l.includes('"syscall":"59"') && l.includes(`"auid":"${TEST_LOGINUID}"`),
            'JSON execve',
          );
          assert.ok(JSON.parse(line) !== null);
        } finally {
          assert.equal(await stopRun(loud), 0, loud.stderr());
        }
        assert.equal(netlink.getStatus().pid, stand.pid, 'the other daemon stays registered');
      } finally {
        await stand.stop();
      }
    });
  },
);

const PLUGIN_STREAM = [
  'type=SYSCALL msg=audit(1795884974.142:24): arch=c000003e syscall=56 success=yes exit=7001 a0=1200011 a1=0 a2=0 a3=0 items=0 ppid=1 pid=7000 auid=4242 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=3 comm="sh" exe="/usr/bin/dash" key="contid"\x1dARCH=x86_64 SYSCALL=clone AUID="unknown(4242)" UID="root"',
  'type=SYSCALL msg=audit(1795884974.143:25): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=7000 pid=7001 auid=4242 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=3 comm="true" exe="/usr/bin/true" key="contid"\x1dARCH=x86_64 SYSCALL=execve AUID="unknown(4242)" UID="root"',
  'type=PROCTITLE msg=audit(1795884974.142:24): proctitle="sh"',
  'type=EOE msg=audit(1795884974.142:24): ',
  'type=EXECVE msg=audit(1795884974.143:25): argc=1 a0="true"',
  'type=PROCTITLE msg=audit(1795884974.143:25): proctitle="true"',
  'type=EOE msg=audit(1795884974.143:25): ',
  'type=DAEMON_END msg=audit(1795884975.000:9001): op=terminate auid=0 pid=1 res=success',
  '',
].join('\n');

test('plugin mode reads a canned auditd plugin stream on stdin and stops at its end', { skip }, async (t) => {
  await withAuditState(async ({ netlink, snapshot }) => {
    const dir = tempDir(t);
    const log = join(dir, 'plugin.log');
    const d = await startPlugin(dir, log);
    assert.match(d.stderr(), /source plugin/);
    // auditd owns the rules in plugin mode.
    assert.deepEqual(netlink.listRules().map(formatRule), snapshot.rules.map(formatRule));
    d.child.stdin?.end(PLUGIN_STREAM);
    assert.equal(await d.exited, 0, d.stderr());
    const lines = readFileSync(log, 'utf8').trimEnd().split('\n');
    assert.equal(lines.filter((l) => l.startsWith('type=EOE')).length, 0);
    assert.deepEqual(
      lines.map((l) => l.slice(0, l.indexOf(' msg='))),
      ['type=SYSCALL', 'type=PROCTITLE', 'type=SYSCALL', 'type=EXECVE', 'type=PROCTITLE', 'type=DAEMON_END'],
    );
    assert.match(d.stderr(), /Stopping: the input ended/);
  });
});

test(
  'SIGHUP reopens the host log: events before go to the moved file, events after to a new one',
  { skip },
  async (t) => {
    await withAuditState(async () => {
      const dir = tempDir(t);
      const log = join(dir, 'plugin.log');
      const d = await startPlugin(dir, log);
      const lines = PLUGIN_STREAM.split('\n');
      const cut = lines.findIndex((l) => l.startsWith('type=EOE msg=audit(1795884974.142:24)')) + 1;
      d.child.stdin?.write(lines.slice(0, cut).join('\n') + '\n');
      await waitForLine(
        log,
        (l) => l.startsWith('type=PROCTITLE msg=audit(1795884974.142:24)'),
        'the first event',
      );
      // What logrotate does: move the file, then signal.
      renameSync(log, `${log}.1`);
      process.kill(d.pid, 'SIGHUP');
      const deadline = Date.now() + 8000;
      while (!d.stderr().includes('Reopened host log') && Date.now() < deadline) await sleep(50);
      assert.match(d.stderr(), /Reopened host log/);
      d.child.stdin?.end(lines.slice(cut).join('\n'));
      assert.equal(await d.exited, 0, d.stderr());
      const types = (file: string): string[] =>
        readFileSync(file, 'utf8')
          .trimEnd()
          .split('\n')
          .map((l) => l.slice(0, l.indexOf(' msg=')));
      assert.deepEqual(types(`${log}.1`), ['type=SYSCALL', 'type=PROCTITLE']);
      assert.deepEqual(types(log), ['type=SYSCALL', 'type=EXECVE', 'type=PROCTITLE', 'type=DAEMON_END']);
      assert.equal(statSync(log).mode & 0o777, 0o600);
    });
  },
);

test(
  'a full disk pauses the host log without losing records; writing resumes once there is space',
  { skip },
  async (t) => {
    await withAuditState(async () => {
      // Not tempDir(): the tmpfs must be unmounted before the directory is removed.
      const dir = mkdtempSync(join(tmpdir(), 'contid-daemon-'));
      const mnt = join(dir, 'small');
      t.after(() => {
        spawnSync('umount', ['-l', mnt]);
        rmSync(dir, { recursive: true, force: true });
      });
      mkdirSync(mnt);
      const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'contid-test', mnt], {
        encoding: 'utf8',
      });
      if (mount.status !== 0) {
        t.skip(`cannot mount a tmpfs: ${mount.stderr.trim()}`);
        return;
      }
      // Fill it, leaving no block for the log.
      spawnSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=4k'], { stdio: 'ignore' });
      const log = join(mnt, 'log', 'audit.log');
      const d = await startPlugin(dir, log);
      d.child.stdin?.write(PLUGIN_STREAM.replace(/^type=DAEMON_END.*\n/m, ''));
      const deadline = Date.now() + 8000;
      while (!/Cannot write host log .*no space left/i.test(d.stderr()) && Date.now() < deadline)
        await sleep(50);
      assert.match(d.stderr(), /Cannot write host log ".*": .*no space left on device.*reading is paused/i);
      assert.equal(d.child.exitCode, null, 'still running');
      rmSync(join(mnt, 'filler'));
      d.child.stdin?.end(
        PLUGIN_STREAM.split('\n')
          .filter((l) => l.startsWith('type=DAEMON_END'))
          .join('\n') + '\n',
      );
      assert.equal(await d.exited, 0, d.stderr());
      assert.match(d.stderr(), /is writable again/);
      const types = readFileSync(log, 'utf8')
        .trimEnd()
        .split('\n')
        .map((l) => l.slice(0, l.indexOf(' msg=')));
      assert.deepEqual(types, [
        'type=SYSCALL',
        'type=PROCTITLE',
        'type=SYSCALL',
        'type=EXECVE',
        'type=PROCTITLE',
        'type=DAEMON_END',
      ]);
      assert.match(d.stderr(), /"droppedBytes":0/);
    });
  },
);

test('a SIGTERM while contid run is still starting stops it gracefully once started', { skip }, async (t) => {
  await withAuditState(async (ctx) => {
    if (skipIfDaemonRegistered(t, ctx)) return;
    const { netlink, snapshot } = ctx;
    const dir = tempDir(t);
    // Ready at its first line: the rules are in, "Started:" has not come yet.
    const d = await startDaemonProcess(
      ['--socket', 'none', '--host-log', join(dir, 'audit.log'), '--state-dir', join(dir, 'state')],
      { ready: 'Installed ' },
    );
    assert.doesNotMatch(d.stderr(), /Started:/);
    assert.equal(await stopRun(d), 0, d.stderr());
    assert.match(d.stderr(), /Stopping: signal SIGTERM/);
    assert.equal(netlink.getStatus().pid, 0);
    assert.deepEqual(netlink.listRules().map(formatRule), snapshot.rules.map(formatRule));
  });
});

test(
  'submit() answers once the marker is read back: accepted, then EEXIST, with CONTAINER_OP records',
  { skip },
  async (t) => {
    await withAuditState(async (ctx) => {
      if (skipIfDaemonRegistered(t, ctx)) return;
      const dir = tempDir(t);
      const log = join(dir, 'audit.log');
      const messages: string[] = [];
      const daemon = await Daemon.start({
        config: resolveConfig({}, { hostLog: log, stateDir: join(dir, 'state'), submitTimeoutMs: 4000 }),
        log: (level: LogLevel, message: string) => messages.push(`${level}: ${message}`),
      });
      const target = spawnWithLoginuid(TEST_LOGINUID, ['/bin/sleep', '30'], { stdio: 'ignore' });
      try {
        await sleep(200); // let the shell exec sleep
        const caller = {
          pid: process.pid,
          uid: 0,
          auid: 4294967295,
          exe: process.execPath,
          privileged: true,
        };
        const pid = target.pid ?? -1;
        const first = await daemon.submit({ op: 'set', pid, contid: '42', caller });
        assert.equal(first.errno, null, JSON.stringify(first.op));
        assert.equal(daemon.get(pid)?.contid, '42');
        const second = await daemon.submit({ op: 'set', pid, contid: '43', caller });
        assert.equal(second.errno, 'EEXIST');
        const status = daemon.status();
        assert.equal(status.source, 'unicast');
        assert.equal(status.containers, 1);
        assert.equal(status.losses.kernelLost, 0);
        assert.ok(status.records > 0);
      } finally {
        target.kill('SIGKILL');
        assert.equal(await daemon.stop('test end'), 0, messages.join('\n'));
      }
      const ops = readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('type=CONTAINER_OP'));
      assert.equal(ops.length, 2);
      assert.match(ops[0]!, / op=set opid=\d+ contid=42 old-contid=-1 .* res=1$/);
      assert.match(ops[1]!, / res=0 errno=EEXIST$/);
      await assert.rejects(
        daemon.submit({
          op: 'grant',
          pid: 1,
          caller: { pid: 1, uid: 0, auid: 0, exe: '/', privileged: true },
        }),
        {
          code: 'ERR_SHUTTING_DOWN',
        },
      );
    });
  },
);
