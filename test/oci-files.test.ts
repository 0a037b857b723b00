/**
 * The OCI hook files contid ships, read by the runtimes that read them on a
 * host: etc/oci/hooks.d/contid.json by podman (`--hooks-dir`), and the hooks
 * and annotations of etc/oci/crun-config-example.json merged into a crun
 * bundle's config.json. Only the hook's `path` is changed, to a wrapper that
 * records the arguments the runtime passes and runs this checkout's contid
 * with the test's control socket.
 *
 * podman runs with private storage (`--root`, `--runroot`, vfs) and the
 * cgroup workaround of KERNEL.md §7, §9; its image is a busybox rootfs
 * imported as a local image (no registry). The daemon is `contid run` on
 * private paths, under the audit lock, with the audit state restored.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  auditSkipReason,
  skipIfDaemonRegistered,
  spawnWithLoginuid,
  TEST_LOGINUID,
  withAuditState,
} from './support/audit-state.js';
import {
  crunSkipReason,
  MAIN,
  makeBundle,
  makeBusyboxRootfs,
  runContainer,
  which,
  type OciHook,
} from './support/crun.js';
import { startDaemonProcess, type DaemonProcess } from './support/daemon-process.js';
import {
  assertOnlyTreeLabelled,
  descendants,
  field,
  flushLog,
  readEvents,
  setOp,
  syscallOf,
  waitForExit,
} from './support/log-events.js';
import { killLeftovers, waitForNoProcesses } from './support/processes.js';

const etc = (path: string): string => readFileSync(new URL(`../../etc/${path}`, import.meta.url), 'utf8');

const skip = auditSkipReason() ?? crunSkipReason();
const podmanSkip =
  skip ?? (which('podman') === null ? 'podman is needed (Debian package podman)' : undefined);
const TEST_TIMEOUT_MS = 240_000;

interface Paths {
  readonly dir: string;
  readonly hostLog: string;
  readonly socket: string;
  /** What the runtime runs as the hook: records its arguments, then runs contid. */
  readonly wrapper: string;
  readonly args: string;
}

/**
 * The hook's stand-in for /usr/local/bin/contid. The runtime runs it with
 * the file's `args` (args[0] is argv[0]); it
 * adds the test's socket, where the installed hook uses the default one.
 */
function writeWrapper(p: Paths): void {
  mkdirSync(join(p.dir, 'bin'), { mode: 0o755 });
  const q = (s: string): string => `'${s}'`;
  writeFileSync(
    p.wrapper,
    [
      '#!/bin/sh',
      `printf '%s\\n' "$@" >> ${q(p.args)}`,
      `exec ${q(MAIN)} "$@" --socket ${q(p.socket)}`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
}

/** Runs `fn` with `contid run` on private paths; stops it by pid and checks it stopped cleanly. */
async function withDaemon(t: TestContext, fn: (p: Paths, d: DaemonProcess) => Promise<void>): Promise<void> {
  await withAuditState(async (ctx) => {
    if (skipIfDaemonRegistered(t, ctx)) return;
    const dir = mkdtempSync(join(tmpdir(), 'contid-oci-'));
    t.after(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    const p: Paths = {
      dir,
      hostLog: join(dir, 'log', 'audit.log'),
      socket: join(dir, 'run', 'control.sock'),
      wrapper: join(dir, 'bin', 'contid'),
      args: join(dir, 'hook.args'),
    };
    writeWrapper(p);
    const d = await startDaemonProcess(
      ['--host-log', p.hostLog, '--state-dir', join(dir, 'state'), '--socket', p.socket],
      { ready: 'Listening on ', timeoutMs: 60_000 },
    );
    let failed = true;
    try {
      await fn(p, d);
      failed = false;
    } finally {
      process.kill(d.pid, 'SIGTERM');
      const code = await d.exited;
      if (!failed) assert.equal(code, 0, d.stderr());
      const left = await waitForNoProcesses(dir);
      killLeftovers(dir);
      if (!failed) assert.deepEqual(left, [], 'nothing left running');
    }
  });
}

/** Checks that the container whose init the hook set to `contid` is labelled, and nothing else. */
async function assertContainerLabelled(p: Paths, shell: number, contid: string): Promise<void> {
  await waitForExit(p.hostLog, shell);
  await flushLog(p.hostLog, () => spawnWithLoginuid(TEST_LOGINUID, ['/bin/true'], { stdio: 'ignore' }));
  const events = readEvents(p.hostLog);
  const op = setOp(events, contid);
  assert.ok(op !== undefined, `the hook set ${contid}`);
  const tree = descendants(events, op.opid);
  assert.ok(!tree.has(shell), 'the test shell is not in the container');
  const labelled = assertOnlyTreeLabelled(events, tree, op.serial, contid);
  const comms = new Set(labelled.map((e) => field(syscallOf(e)!, 'comm')));
  for (const comm of ['"sh"', '"true"', '"echo"'])
    assert.ok(comms.has(comm), `${comm} in ${[...comms].join(' ')}`);
}

test(
  'etc/oci/crun-config-example.json: its hooks and annotation in a crun bundle label the container 42',
  { skip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await withDaemon(t, async (p, d) => {
      const example = JSON.parse(etc('oci/crun-config-example.json')) as {
        annotations: Record<string, string>;
        hooks: { createRuntime: OciHook[] };
      };
      const hooks = example.hooks.createRuntime.map((h) => ({ ...h, path: p.wrapper }));
      const contid = example.annotations['org.contid.id']!;
      const bundle = makeBundle(p.dir, {
        socket: p.socket,
        contid,
        script: "/bin/sh -c '/bin/true; /bin/echo inside'",
        hooks,
      });
      const run = await runContainer(bundle);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, 'inside\n');
      assert.equal(
        readFileSync(p.args, 'utf8'),
        'oci-hook\n--annotation\norg.contid.id\n',
        'crun passes the args after argv[0]',
      );
      await assertContainerLabelled(p, run.pid, contid);
      assert.match(
        d.stderr(),
        new RegExp(
          `Operation set pid [0-9]+ contid ${contid} owner "oci:${bundle.id}" create-only name "${bundle.id}" `,
        ),
      );
    });
  },
);

/**
 * Runs `podman GLOBAL… SUBCOMMAND…` with private storage, under loginuid
 * 4242, in a private mount namespace without the cgroup2 mount.
 */
async function podman(
  p: Paths,
  args: readonly string[],
): Promise<{ code: number | null; pid: number; stdout: string; stderr: string }> {
  const global = [
    `--root=${join(p.dir, 'storage')}`,
    `--runroot=${join(p.dir, 'runroot')}`,
    `--tmpdir=${join(p.dir, 'podman-tmp')}`,
    '--storage-driver=vfs',
    '--cgroup-manager=cgroupfs',
    '--events-backend=none',
  ];
  const inner = 'umount /sys/fs/cgroup/unified 2>/dev/null; exec podman "$@"';
  const child = spawnWithLoginuid(
    TEST_LOGINUID,
    ['unshare', '-m', '--propagation', 'private', '/bin/sh', '-c', inner, 'podman', ...global, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, pid: child.pid ?? -1, stdout, stderr };
}

test(
  'etc/oci/hooks.d/contid.json: podman --hooks-dir runs it at createRuntime and the container gets its annotated contid',
  { skip: podmanSkip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await withDaemon(t, async (p, d) => {
      const hooksDir = join(p.dir, 'hooks.d');
      mkdirSync(hooksDir);
      const shipped = JSON.parse(etc('oci/hooks.d/contid.json')) as { hook: OciHook };
      writeFileSync(
        join(hooksDir, 'contid.json'),
        JSON.stringify({ ...shipped, hook: { ...shipped.hook, path: p.wrapper } }),
      );

      const rootfs = join(p.dir, 'rootfs');
      makeBusyboxRootfs(rootfs);
      const tar = spawnSync('tar', ['-C', rootfs, '-cf', join(p.dir, 'rootfs.tar'), '.'], {
        encoding: 'utf8',
      });
      assert.equal(tar.status, 0, tar.stderr);
      const image = 'localhost/contid-busybox:test';
      const imported = await podman(p, ['import', join(p.dir, 'rootfs.tar'), image]);
      assert.equal(imported.code, 0, imported.stderr);

      const run = await podman(p, [
        `--hooks-dir=${hooksDir}`,
        'run',
        '--rm',
        '--network=none',
        '--ulimit=nofile=1024:1024',
        '--ulimit=nproc=1024:1024',
        '--annotation=org.contid.id=91',
        image,
        '/bin/sh',
        '-c',
        "/bin/sh -c '/bin/true; /bin/echo inside'",
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, 'inside\n');
      assert.equal(
        readFileSync(p.args, 'utf8'),
        'oci-hook\n--annotation\norg.contid.id\n',
        'podman passes the args after argv[0]',
      );
      await assertContainerLabelled(p, run.pid, '91');
      // podman names the container with a 64-hex id; its bundle is in its storage.
      assert.match(
        d.stderr(),
        new RegExp(
          `Operation set pid [0-9]+ contid 91 owner "oci:[0-9a-f]{64}" create-only name "[0-9a-f]{64}" meta .*"oci.bundle":"${p.dir}/`,
        ),
      );
      assert.ok(existsSync(join(p.dir, 'storage')), 'podman kept its storage in the test directory');
    });
  },
);
