/**
 * Containers for the tests: a busybox rootfs, crun bundles whose
 * createRuntime hook is `contid oci-hook`, and crun run under loginuid 4242
 * with this machine's cgroup workaround (KERNEL.md §7).
 */
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { spawnWithLoginuid, TEST_LOGINUID } from './audit-state.js';
import { WAIT_MS } from './log-events.js';

/** The CLI entry point, in dist/ beside this file. */
export const MAIN = new URL('../../src/cli/main.js', import.meta.url).pathname;

/** The path of `command`, or null when it is not installed. */
export function which(command: string): string | null {
  const r = spawnSync('/bin/sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Why container tests cannot run here (no crun, unshare or busybox), or undefined. */
export function crunSkipReason(): string | undefined {
  const missing = ['crun', 'unshare'].filter((c) => which(c) === null);
  if (missing.length > 0) return `${missing.join(' and ')} needed for the container tests`;
  if (!existsSync('/bin/busybox')) return '/bin/busybox (busybox-static) is needed for the container tests';
  return undefined;
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

/** Makes `rootfs` a minimal busybox root: the static busybox and links for the applets the tests use. */
export function makeBusyboxRootfs(rootfs: string): void {
  for (const d of ['bin', 'proc', 'sys', 'dev', 'etc', 'tmp'])
    mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'echo', 'cat', 'sleep', 'true', 'ls', 'id'])
    symlinkSync('busybox', join(rootfs, 'bin', a));
}

/** A crun bundle and the container id to run it as. */
export interface Bundle {
  readonly dir: string;
  readonly id: string;
}

/** One OCI hook entry (config.json `hooks.<stage>[]`). */
export interface OciHook {
  readonly path: string;
  readonly args?: readonly string[];
  readonly env?: readonly string[];
  readonly timeout?: number;
}

/** Options of {@link makeBundle}. */
export interface BundleOptions {
  /** The control socket the default hook (`contid oci-hook --socket`) talks to. */
  readonly socket: string;
  /** The `org.contid.id` annotation. */
  readonly contid: string;
  /** Run by the container as `sh -c script`. */
  readonly script: string;
  /** The createRuntime hooks; default: this checkout's `contid oci-hook --socket SOCKET`. */
  readonly hooks?: readonly OciHook[];
  /** The bundle's directory under `dir` (default `bundle`), for several containers in one test. */
  readonly name?: string;
}

let containerCount = 0;

/** A crun bundle in `dir/bundle` with a busybox rootfs, the contid hook at createRuntime and the annotation. */
export function makeBundle(dir: string, options: BundleOptions): Bundle {
  const bundle = join(dir, options.name ?? 'bundle');
  makeBusyboxRootfs(join(bundle, 'rootfs'));
  const spec = spawnSync('crun', ['spec'], { cwd: bundle, encoding: 'utf8' });
  assert.equal(spec.status, 0, spec.stderr);
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as {
    process: { terminal: boolean; args: string[] };
    hooks?: unknown;
    annotations?: Record<string, string>;
  };
  config.process.terminal = false;
  config.process.args = ['/bin/sh', '-c', options.script];
  config.hooks = {
    createRuntime: options.hooks ?? [
      { path: process.execPath, args: ['node', MAIN, 'oci-hook', '--socket', options.socket] },
    ],
  };
  config.annotations = { ...config.annotations, 'org.contid.id': options.contid };
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config, null, 2));
  return { dir: bundle, id: `contid-test-${process.pid}-${++containerCount}` };
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

/** How a container run ended; `pid` is the test shell that ran crun. */
export interface ContainerRun {
  readonly code: number | null;
  readonly pid: number;
  readonly stdout: string;
  readonly stderr: string;
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
): Promise<ContainerRun> {
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

/** In the container: a background job, short-lived grandchildren, then `extra`. */
export const CONTAINER_SCRIPT = (extra: string): string =>
  `( /bin/sleep 0.2; /bin/echo job ) & /bin/sh -c '/bin/true; /bin/echo grandchild'; ` +
  `/bin/true; ${extra} wait; /bin/echo done`;
