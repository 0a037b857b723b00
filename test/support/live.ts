/**
 * Helpers of the live tests (test/e2e.test.ts, test/attacks.test.ts): a
 * `contid run` child on private paths, the `contid` commands as separate
 * processes, the host log read back as events, and crun containers with a
 * busybox rootfs labelled by `contid oci-hook`.
 *
 * Each daemon runs under withAuditState (the machine-wide lock, then the
 * audit state restored, also on failure); only processes the test started
 * are stopped, by pid. Records are awaited by polling the host log, never
 * by fixed sleeps.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
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
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestContext } from 'node:test';
import type { DaemonProcess } from './daemon-process.js';
import { startDaemonProcess } from './daemon-process.js';
import {
  auditSkipReason,
  skipIfDaemonRegistered,
  spawnWithLoginuid,
  TEST_LOGINUID,
  withAuditState,
} from './audit-state.js';

export const MAIN = new URL('../../src/cli/main.js', import.meta.url).pathname;
export const FORGE_SOURCE = new URL('../../../scripts/capture/helpers/fx-forge.c', import.meta.url).pathname;

export function which(command: string): string | null {
  const r = spawnSync('/bin/sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

export const skip = auditSkipReason();
export const containerSkip =
  skip ??
  (['crun', 'unshare', 'gcc'].find((c) => which(c) === null) !== undefined
    ? 'crun, unshare and gcc are needed for the container tests'
    : !existsSync('/bin/busybox')
      ? '/bin/busybox (busybox-static) is needed for the container tests'
      : undefined);
export const unprivilegedSkip = skip ?? (which('setpriv') === null ? 'setpriv is needed' : undefined);

/** Generous: the machine may be loaded by other tests and benches. */
export const WAIT_MS = 30_000;
export const TEST_TIMEOUT_MS = 180_000;

/** A temporary directory removed after the test; `open` makes it traversable by others. */
export function tempDir(t: TestContext, open = false): string {
  const dir = mkdtempSync(join(tmpdir(), 'contid-e2e-'));
  if (open) chmodSync(dir, 0o711);
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
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

/** One event of the host log: its records, by serial. */
export interface LogEvent {
  readonly serial: number;
  readonly lines: string[];
}

export const MSG_ID = / msg=audit\(([0-9]+)\.([0-9]+):([0-9]+)\): /;

/** Groups the host log's records into events by serial (timestamp:serial). */
export function readEvents(file: string): LogEvent[] {
  if (!existsSync(file)) return [];
  const bySerial = new Map<string, LogEvent>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = MSG_ID.exec(line);
    if (m === null) continue;
    const key = `${m[1]}.${m[2]}:${m[3]}`;
    let e = bySerial.get(key);
    if (e === undefined) {
      e = { serial: Number(m[3]), lines: [] };
      bySerial.set(key, e);
    }
    e.lines.push(line);
  }
  return [...bySerial.values()];
}

export function field(line: string, name: string): string | undefined {
  return new RegExp(`(?:^| )${name}=("[^"]*"|[^ ]*)`).exec(line)?.[1];
}

/** The SYSCALL record of an event, if any. */
export function syscallOf(e: LogEvent): string | undefined {
  return e.lines.find((l) => l.startsWith('type=SYSCALL '));
}

/** The contid chain of an event's CONTAINER_ID records, or null when it has none. */
export function contidOf(e: LogEvent): string | null {
  const ids = e.lines.filter((l) => l.startsWith('type=CONTAINER_ID '));
  if (ids.length === 0) return null;
  const chains = new Set(ids.map((l) => field(l, 'contid')));
  assert.equal(chains.size, 1, `one chain per event: ${e.lines.join('\n')}`);
  return [...chains][0] ?? null;
}

/** Polls the host log until `find` returns something. */
export async function waitFor<T>(
  file: string,
  what: string,
  find: (events: LogEvent[]) => T | undefined,
): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const found = find(readEvents(file));
    if (found !== undefined) return found;
    if (Date.now() >= deadline) throw new Error(`No ${what} in ${file} within ${WAIT_MS} ms`);
    await sleep(100);
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

/** Polls `text()` (a daemon's stderr) until `pattern` matches it. */
export async function waitForText(text: () => string, pattern: RegExp): Promise<RegExpExecArray> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const m = pattern.exec(text());
    if (m !== null) return m;
    if (Date.now() >= deadline) throw new Error(`No ${String(pattern)} within ${WAIT_MS} ms:\n${text()}`);
    await sleep(50);
  }
}

/** Waits for the exit_group of `pid` in the host log. */
export function waitForExit(file: string, pid: number): Promise<LogEvent> {
  return waitFor(file, `exit_group of pid ${pid}`, (events) =>
    events.find((e) => {
      const s = syscallOf(e);
      return s !== undefined && field(s, 'syscall') === '231' && field(s, 'pid') === String(pid);
    }),
  );
}

/**
 * Runs a sentinel process and waits for its execve in the host log: every
 * event recorded before it has then been assembled and written too.
 */
export async function flushLog(file: string): Promise<void> {
  const child = spawn('/bin/true', [], { stdio: 'ignore' });
  const pid = child.pid ?? -1;
  await once(child, 'exit');
  await waitFor(file, `the sentinel execve of pid ${pid}`, (events) =>
    events.find((e) => {
      const s = syscallOf(e);
      return s !== undefined && field(s, 'syscall') === '59' && field(s, 'pid') === String(pid);
    }),
  );
}

/** The CONTAINER_OP set record for `contid`, as event. */
export function setOp(events: LogEvent[], contid: string): { serial: number; opid: number } | undefined {
  for (const e of events) {
    const op = e.lines.find(
      (l) => l.startsWith('type=CONTAINER_OP ') && / op=set /.test(l) && / res=1$/.test(l),
    );
    if (op !== undefined && field(op, 'contid') === contid) {
      return { serial: e.serial, opid: Number(field(op, 'opid')) };
    }
  }
  return undefined;
}

/** The pids descending from `root` (itself included), by the SYSCALL records' pid/ppid. */
export function descendants(events: LogEvent[], root: number): Set<number> {
  const tree = new Set([root]);
  const edges: [number, number][] = [];
  for (const e of events) {
    const s = syscallOf(e);
    if (s === undefined) continue;
    edges.push([Number(field(s, 'pid')), Number(field(s, 'ppid'))]);
  }
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of edges) {
      if (!tree.has(pid) && tree.has(ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  return tree;
}

/**
 * Checks the labels of the whole log: every event of a process in `tree`
 * after the set (serial above `after`) carries `contid`, and no event of any
 * other process carries any. Returns the tree's labelled events.
 */
export function assertOnlyTreeLabelled(
  events: LogEvent[],
  tree: Set<number>,
  after: number,
  contid: string,
): LogEvent[] {
  const labelled: LogEvent[] = [];
  for (const e of events) {
    const chain = contidOf(e);
    const s = syscallOf(e);
    const pid = s === undefined ? undefined : Number(field(s, 'pid'));
    if (pid !== undefined && tree.has(pid) && e.serial > after) {
      // Every event, also one that reached the daemon before any record of
      // its process's parent (held until the parent appears: src/policy/hold.ts).
      assert.equal(chain, contid, `an event of pid ${pid} in the tree:\n${e.lines.join('\n')}`);
      labelled.push(e);
    } else if (chain !== null) {
      // A user message sent from inside the tree (the forger's) is its event too.
      const sender = Number(field(e.lines[0]!, 'pid'));
      assert.ok(
        tree.has(sender) && e.serial > after,
        `an event outside the tree is labelled:\n${e.lines.join('\n')}`,
      );
      assert.equal(chain, contid);
    }
  }
  return labelled;
}

export function mkfifo(path: string): void {
  const r = spawnSync('mkfifo', ['-m', '0600', path], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

/** Kills a child we started, by pid, if it still runs. */
export function killChild(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
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

export function readlinkOrNull(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
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

export interface Bundle {
  readonly dir: string;
  readonly id: string;
}

let containerCount = 0;

/**
 * A crun bundle with a busybox rootfs, the contid OCI hook at createRuntime
 * and `org.contid.id` = `contid`, running `sh -c script`.
 */
export function makeBundle(dir: string, socket: string, contid: string, script: string): Bundle {
  const bundle = join(dir, 'bundle');
  const rootfs = join(bundle, 'rootfs');
  for (const d of ['bin', 'proc', 'sys', 'dev', 'etc', 'tmp'])
    mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'echo', 'cat', 'sleep', 'true', 'ls', 'id'])
    symlinkSync('busybox', join(rootfs, 'bin', a));
  const spec = spawnSync('crun', ['spec'], { cwd: bundle, encoding: 'utf8' });
  assert.equal(spec.status, 0, spec.stderr);
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as {
    process: { terminal: boolean; args: string[] };
    hooks?: unknown;
    annotations?: Record<string, string>;
  };
  config.process.terminal = false;
  config.process.args = ['/bin/sh', '-c', script];
  config.hooks = {
    createRuntime: [{ path: process.execPath, args: ['node', MAIN, 'oci-hook', '--socket', socket] }],
  };
  config.annotations = { ...config.annotations, 'org.contid.id': contid };
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config, null, 2));
  return { dir: bundle, id: `contid-e2e-${process.pid}-${++containerCount}` };
}

/**
 * Spawns `crun --cgroup-manager=CGROUPS ARGS…` under loginuid 4242 in a
 * private mount namespace without the cgroup2 mount: crun refuses this
 * machine's hybrid cgroup layout otherwise (KERNEL.md §7).
 */
export function spawnCrun(cgroups: 'disabled' | 'cgroupfs', args: readonly string[]): ChildProcess {
  const inner = `umount /sys/fs/cgroup/unified 2>/dev/null; exec crun --cgroup-manager=${cgroups} "$@"`;
  return spawnWithLoginuid(
    TEST_LOGINUID,
    ['unshare', '-m', '--propagation', 'private', '/bin/sh', '-c', inner, 'crun', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

/**
 * Runs the container under loginuid 4242 with the cgroup workaround
 * (KERNEL.md §7): a private mount namespace without the cgroup2 mount, and
 * no cgroups (`disabled`, the container stays in the host's) or crun's own
 * v1 cgroups (`cgroupfs`, /sys/fs/cgroup/CONTROLLER/ID).
 */
export async function runContainer(
  bundle: Bundle,
  cgroups: 'disabled' | 'cgroupfs' = 'disabled',
): Promise<{ code: number | null; pid: number; stderr: string; stdout: string }> {
  const child = spawnCrun(cgroups, ['run', '--bundle', bundle.dir, bundle.id]);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timer = setTimeout(() => {
    killChild(child);
    // The container's processes outlive crun and hold its pipes open.
    spawnSync('crun', ['delete', '--force', bundle.id], { stdio: 'ignore' });
  }, WAIT_MS * 2);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  // A crashed run may leave crun state behind.
  spawnSync('crun', ['delete', '--force', bundle.id], { stdio: 'ignore' });
  return { code, pid: child.pid ?? -1, stdout, stderr };
}
