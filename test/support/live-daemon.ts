/**
 * A live `contid run` for the tests (test/e2e.test.ts, test/attacks.test.ts):
 * a child process on private paths (host log, keyring, state directory,
 * control socket in a temporary directory), the `contid` commands as
 * separate processes, and waits on processes and files.
 *
 * Each daemon runs under withAuditState (the machine-wide lock, then the
 * audit state restored, also on failure); only processes the test started
 * are stopped, by pid.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  closeSync,
  constants as fsConstants,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestContext } from 'node:test';
import { skipIfDaemonRegistered, withAuditState } from './audit-state.js';
import { MAIN } from './crun.js';
import type { DaemonProcess } from './daemon-process.js';
import { startDaemonProcess } from './daemon-process.js';
import { WAIT_MS } from './log-events.js';

/** A temporary directory removed after the test; `open` makes it traversable by others. */
export function tempDir(t: TestContext, open = false): string {
  const dir = mkdtempSync(join(tmpdir(), 'contid-e2e-'));
  if (open) chmodSync(dir, 0o711);
  // CONTID_KEEP_TEMP=1 keeps the directories (logs, keyrings) to look at after a failure.
  if (process.env['CONTID_KEEP_TEMP'] === undefined) {
    t.after(() => {
      rmSync(dir, { recursive: true, force: true });
    });
  } else {
    t.diagnostic(`kept ${dir}`);
  }
  return dir;
}

export interface DaemonPaths {
  readonly hostLog: string;
  readonly keyring: string;
  readonly stateDir: string;
  readonly socket: string;
}

export function daemonPaths(dir: string): DaemonPaths {
  return {
    hostLog: join(dir, 'log', 'audit.log'),
    keyring: join(dir, 'state', 'keyring'),
    stateDir: join(dir, 'state'),
    socket: join(dir, 'run', 'control.sock'),
  };
}

/** A `contid run` child. */
export type RunningDaemon = DaemonProcess;

/** Starts `contid run` with private paths and resolves once its control socket listens. */
export async function startDaemon(paths: DaemonPaths, extra: readonly string[] = []): Promise<RunningDaemon> {
  const args = ['--host-log', paths.hostLog, '--keyring', paths.keyring, '--state-dir', paths.stateDir];
  return startDaemonProcess([...args, '--socket', paths.socket, ...extra], {
    ready: 'Listening on ',
    timeoutMs: WAIT_MS,
  });
}

/** Sends `signal` to the daemon by its pid; resolves with its exit code. */
export async function stopDaemon(
  d: RunningDaemon,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<number | null> {
  process.kill(d.pid, signal);
  return d.exited;
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `contid ARGS` as a separate process (optionally under `prefix`, e.g. setpriv). */
export async function contid(args: readonly string[], prefix: readonly string[] = []): Promise<CliResult> {
  const argv = [...prefix, process.execPath, MAIN, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

export function mkfifo(path: string): void {
  const r = spawnSync('mkfifo', ['-m', '0600', path], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

/** Waits until /proc shows `pid` with at least one child. */
export async function waitForChildren(pid: number): Promise<void> {
  const file = `/proc/${pid}/task/${pid}/children`;
  const deadline = Date.now() + WAIT_MS;
  while (readFileSync(file, 'utf8').trim() === '') {
    if (Date.now() >= deadline) throw new Error(`pid ${pid} has no children after ${WAIT_MS} ms`);
    await sleep(20);
  }
}

/** On failure, copies the host log and the daemon's stderr out of the temporary directory. */
export function keepForDiagnosis(t: TestContext, paths: DaemonPaths, d: RunningDaemon): void {
  const keep = mkdtempSync(join(tmpdir(), 'contid-e2e-failed-'));
  if (existsSync(paths.hostLog)) copyFileSync(paths.hostLog, join(keep, 'audit.log'));
  writeFileSync(join(keep, 'daemon.stderr'), d.stderr());
  t.diagnostic(`host log and daemon stderr kept in ${keep}`);
}

/** Runs `fn` with a daemon on private paths; stops it with SIGTERM and checks exit 0. */
export async function withDaemon(
  t: TestContext,
  options: { openDir?: boolean; args?: readonly string[] },
  fn: (d: RunningDaemon, paths: DaemonPaths, dir: string) => Promise<void>,
): Promise<void> {
  await withAuditState(async (ctx) => {
    if (skipIfDaemonRegistered(t, ctx)) return;
    const dir = tempDir(t, options.openDir === true);
    const paths = daemonPaths(dir);
    if (options.openDir === true) mkdirSync(join(dir, 'run'), { mode: 0o711 });
    const d = await startDaemon(paths, options.args);
    let failed = true;
    try {
      await fn(d, paths, dir);
      failed = false;
    } catch (error) {
      keepForDiagnosis(t, paths, d);
      throw error;
    } finally {
      const code = await stopDaemon(d);
      if (!failed) assert.equal(code, 0, d.stderr());
    }
    assert.ok(!existsSync(paths.socket), 'the socket is removed on stop');
    assert.equal(ctx.netlink.getStatus().pid, ctx.snapshot.status.pid);
  });
}

/** Lets a process blocked opening `fifo` for reading go, if one is (never blocks). */
export function releaseFifo(fifo: string): void {
  try {
    const fd = openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
    writeSync(fd, 'go\n');
    closeSync(fd);
  } catch {
    // No reader (ENXIO) or no fifo: nobody waits.
  }
}

/** The target of a symbolic link, or null (gone, or not a link). */
export function readlinkOrNull(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

/** Polls `condition` until it holds. */
export async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() >= deadline) throw new Error(`No ${what} within ${WAIT_MS} ms`);
    await sleep(20);
  }
}
