/**
 * `contid run` and its files on the real kernel and filesystem: it refuses
 * to start with a state or log directory someone else owns or can write to,
 * or with a keyring file someone else owns, and it never writes through a
 * link left where it puts a temporary file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { auditSkipReason, skipIfDaemonRegistered, withAuditState } from './support/audit-state.js';
import { startDaemonProcess } from './support/daemon-process.js';

const MAIN = new URL('../src/cli/main.js', import.meta.url).pathname;
const skip = auditSkipReason();

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'contid-files-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/**
 * Runs `contid run ARGS` until it exits or says it started; one that
 * started is stopped (SIGTERM, by pid) and reported as such.
 */
async function runUntilStartedOrExit(
  args: readonly string[],
): Promise<{ started: boolean; code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, 'run', '--socket', 'none', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  let started = false;
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    if (!started && stderr.includes('Started:')) {
      started = true;
      child.kill('SIGTERM');
    }
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { started, code, stderr };
}

interface BadSetup {
  readonly what: string;
  /** Prepares `dir` and returns the arguments of `contid run`. */
  readonly prepare: (dir: string) => string[];
  readonly message: RegExp;
}

const BAD: readonly BadSetup[] = [
  {
    what: 'a state directory others can write to',
    prepare: (dir) => {
      mkdirSync(join(dir, 'state'), { mode: 0o700 });
      chmodSync(join(dir, 'state'), 0o777);
      return ['--state-dir', join(dir, 'state'), '--host-log', join(dir, 'log', 'audit.log')];
    },
    message:
      /Cannot use ".*\/state" as the state directory: it is writable by its group or others \(mode 777\)$/m,
  },
  {
    what: 'a state directory owned by another user',
    prepare: (dir) => {
      mkdirSync(join(dir, 'state'), { mode: 0o700 });
      chownSync(join(dir, 'state'), 65534, 65534);
      return ['--state-dir', join(dir, 'state'), '--host-log', join(dir, 'log', 'audit.log')];
    },
    message: /Cannot use ".*\/state" as the state directory: it is owned by uid 65534, not 0/,
  },
  {
    what: 'a host log directory its group can write to',
    prepare: (dir) => {
      mkdirSync(join(dir, 'log'), { mode: 0o700 });
      chmodSync(join(dir, 'log'), 0o770);
      return ['--state-dir', join(dir, 'state'), '--host-log', join(dir, 'log', 'audit.log')];
    },
    message:
      /Cannot use ".*\/log" as the host log directory: it is writable by its group or others \(mode 770\)/,
  },
  {
    what: 'a keyring file owned by another user',
    prepare: (dir) => {
      mkdirSync(join(dir, 'state'), { mode: 0o700 });
      writeFileSync(join(dir, 'state', 'keyring'), '', { mode: 0o600 });
      chownSync(join(dir, 'state', 'keyring'), 65534, 65534);
      return ['--state-dir', join(dir, 'state'), '--host-log', join(dir, 'log', 'audit.log')];
    },
    message: /Cannot use keyring ".*\/keyring": it is owned by uid 65534, not 0/,
  },
];

test(
  'contid run refuses unsafe state and log directories and keyrings, before touching audit',
  { skip },
  async (t) => {
    await withAuditState(async (ctx) => {
      if (skipIfDaemonRegistered(t, ctx)) return;
      for (const bad of BAD) {
        const dir = tempDir(t);
        const run = await runUntilStartedOrExit(bad.prepare(dir));
        assert.equal(run.started, false, `${bad.what}: it started\n${run.stderr}`);
        assert.equal(run.code, 1, `${bad.what}:\n${run.stderr}`);
        assert.match(run.stderr, bad.message, bad.what);
        assert.equal(
          ctx.netlink.getStatus().pid,
          ctx.snapshot.status.pid,
          `${bad.what}: registration untouched`,
        );
      }
    });
  },
);

test(
  'the kernel state file is written without following a link at its temporary name',
  { skip },
  async (t) => {
    await withAuditState(async (ctx) => {
      if (skipIfDaemonRegistered(t, ctx)) return;
      const dir = tempDir(t);
      const victim = join(dir, 'victim');
      writeFileSync(victim, 'precious\n');
      mkdirSync(join(dir, 'state'), { mode: 0o700 });
      symlinkSync(victim, join(dir, 'state', 'kernel-state.json.tmp'));
      const d = await startDaemonProcess(
        ['--socket', 'none', '--state-dir', join(dir, 'state'), '--host-log', join(dir, 'audit.log')],
        { ready: 'Started:' },
      );
      process.kill(d.pid, 'SIGTERM');
      assert.equal(await d.exited, 0, d.stderr());
      assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
    });
  },
);
