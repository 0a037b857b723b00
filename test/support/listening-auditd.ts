/**
 * A real auditd that only receives remote logging (`local_events = no`,
 * `tcp_listen_port`), for the remote sink tests. It never talks to the
 * kernel's audit subsystem (it does not register as the audit daemon), so
 * it needs no audit lock. It runs inside a network namespace of its own,
 * held by a sleeping process so that auditd can stop and start again in it,
 * with a private /run (auditd writes /var/run/auditd.pid), and in the
 * foreground without forking (`-n`), so its pid is the child's.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeBusyboxRootfs, which } from './crun.js';
import { WAIT_MS } from './log-events.js';

/** Why a listening auditd cannot run here, or undefined. */
export function listeningAuditdSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'a network namespace and auditd need root';
  for (const c of ['auditd', 'unshare', 'nsenter', 'ip', 'ausearch', 'mount']) {
    if (which(c) === null) return `${c} is needed for the remote sink tests`;
  }
  return undefined;
}

/**
 * auditd.conf for an auditd that only listens. Names are numeric (a
 * container has no /etc/group), the log is flushed for every record (a test
 * reads it right after auditd's acknowledgement) and never rotates.
 */
export function listeningAuditdConf(options: {
  logFile: string;
  pluginDir: string;
  port: number;
  /** auditd.conf `flush` (default DATA: each record is on disk before its acknowledgement). */
  flush?: string;
}): string {
  return [
    'local_events = no',
    'write_logs = yes',
    `log_file = ${options.logFile}`,
    'log_group = 0',
    'log_format = ENRICHED',
    `flush = ${options.flush ?? 'DATA'}`,
    `freq = ${(options.flush ?? 'DATA').startsWith('INCREMENTAL') ? 50 : 0}`,
    'max_log_file = 1024',
    'num_logs = 2',
    'priority_boost = 0',
    'name_format = NONE',
    'max_log_file_action = IGNORE',
    'space_left = 2',
    'space_left_action = IGNORE',
    'admin_space_left = 1',
    'admin_space_left_action = IGNORE',
    'disk_full_action = IGNORE',
    'disk_error_action = IGNORE',
    `tcp_listen_port = ${options.port}`,
    'tcp_listen_queue = 5',
    'tcp_max_per_addr = 1',
    'tcp_client_max_idle = 0',
    'transport = TCP',
    'distribute_network = no',
    'q_depth = 2000',
    'overflow_action = IGNORE',
    'max_restarts = 10',
    `plugin_dir = ${options.pluginDir}`,
    'end_of_event_timeout = 2',
    '',
  ].join('\n');
}

/** Writes the configuration directory `confDir` (auditd refuses files others may write). */
export function writeListeningConf(
  confDir: string,
  options: { logFile: string; port: number; flush?: string },
): void {
  const pluginDir = join(confDir, 'plugins.d');
  mkdirSync(pluginDir, { recursive: true, mode: 0o750 });
  writeFileSync(join(confDir, 'auditd.conf'), listeningAuditdConf({ ...options, pluginDir }), {
    mode: 0o640,
  });
}

/** A process holding a network namespace with its loopback up. */
export interface NetnsHolder {
  readonly pid: number;
  /** /proc/PID/ns/net. */
  readonly netns: string;
  stop(): Promise<void>;
}

/** Creates a network namespace, held by a sleeping child, with `lo` up. */
export async function holdNetns(): Promise<NetnsHolder> {
  const child = spawn('unshare', ['-n', 'sleep', '1d'], { stdio: 'ignore' });
  const pid = child.pid ?? -1;
  const exited = once(child, 'exit');
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  const netns = `/proc/${pid}/ns/net`;
  // unshare execs sleep once the namespace exists.
  const deadline = Date.now() + WAIT_MS;
  while (readComm(pid) !== 'sleep') {
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error('unshare -n did not start');
    }
    await sleep(10);
  }
  const up = spawnSync('nsenter', [`--net=${netns}`, 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (up.status !== 0) {
    await stop();
    throw new Error(`Cannot bring lo up in ${netns}: ${up.stderr}`);
  }
  return { pid, netns, stop };
}

function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** True when a socket of `pid`'s network namespace listens on TCP `port`. */
export function listensOn(pid: number, port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.endsWith(`:${hex}`) && cols[3] === '0A') return true;
    }
  }
  return false;
}

/** A running listening auditd. */
export interface ListeningAuditd {
  readonly pid: number;
  readonly logFile: string;
  /** The log without auditd's own DAEMON_* records: what clients sent, one record per line. */
  records(): string;
  /** SIGSTOP: it reads and acknowledges nothing until resume(). */
  stall(): void;
  resume(): void;
  /** SIGTERM (auditd says ENDING to its clients), then waits for the exit. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startListeningAuditd}. */
export interface ListeningAuditdOptions {
  /** A directory of the test's own, for conf/ and log/. */
  readonly dir: string;
  /** The network namespace to listen in. */
  readonly netns: string;
  readonly port: number;
  /** auditd.conf `flush` (default DATA). */
  readonly flush?: string;
}

/** Starts auditd in `netns` and waits until it listens. */
export async function startListeningAuditd(options: ListeningAuditdOptions): Promise<ListeningAuditd> {
  const conf = join(options.dir, 'conf');
  const logFile = join(options.dir, 'log', 'audit.log');
  mkdirSync(join(options.dir, 'log'), { recursive: true, mode: 0o750 });
  if (!existsSync(join(conf, 'auditd.conf'))) {
    writeListeningConf(conf, {
      logFile,
      port: options.port,
      ...(options.flush === undefined ? {} : { flush: options.flush }),
    });
  }
  const script = 'mount -t tmpfs contid-test-run /run && exec nsenter --net="$1" auditd -n -c "$2"';
  const child: ChildProcess = spawn(
    'unshare',
    ['-m', '--propagation', 'private', '/bin/sh', '-c', script, 'sh', options.netns, conf],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const pid = child.pid ?? -1;
  const exited = once(child, 'exit');
  let stopping: Promise<void> | undefined;
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const auditd: ListeningAuditd = {
    pid,
    logFile,
    records: () =>
      existsSync(logFile)
        ? readFileSync(logFile, 'latin1')
            .split('\n')
            .filter((l) => l !== '' && !l.startsWith('type=DAEMON_'))
            .map((l) => `${l}\n`)
            .join('')
        : '',
    stall: () => {
      if (running()) process.kill(pid, 'SIGSTOP');
    },
    resume: () => {
      if (running()) process.kill(pid, 'SIGCONT');
    },
    stop() {
      stopping ??= (async () => {
        if (!running()) return;
        process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGTERM');
        const timer = setTimeout(() => {
          if (running()) process.kill(pid, 'SIGKILL');
        }, WAIT_MS);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
  const deadline = Date.now() + WAIT_MS;
  while (!(readComm(pid) === 'auditd' && listensOn(pid, options.port))) {
    if (!running() || Date.now() > deadline) {
      await auditd.stop();
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '(no log)';
      throw new Error(
        `auditd did not listen on port ${options.port} in ${options.netns}:\n${stderr}\n${log}`,
      );
    }
    await sleep(20);
  }
  return auditd;
}

/** A crun bundle whose container runs a listening auditd in its own network namespace. */
export interface AuditdBundle {
  readonly dir: string;
  readonly id: string;
  /** The container's log, seen from the host. */
  readonly logFile: string;
}

let bundles = 0;

/**
 * A bundle in `dir/bundle`: a busybox rootfs with the host's /usr
 * bind-mounted read-only (auditd and its libraries; /lib, /lib64 and /sbin
 * link into it as on a merged-/usr host), auditd's configuration in
 * /etc/audit-remote and its log in /var/log/audit. The container process is
 * `auditd -n`: the container's init. crun's default spec gives it a network
 * namespace of its own with `lo` up, and CAP_NET_BIND_SERVICE for port 60.
 */
export function makeAuditdBundle(dir: string, port: number): AuditdBundle {
  const bundle = join(dir, 'bundle');
  const rootfs = join(bundle, 'rootfs');
  makeBusyboxRootfs(rootfs);
  for (const d of ['usr', 'var/log/audit', 'var/run']) mkdirSync(join(rootfs, d), { recursive: true });
  for (const [link, to] of [
    ['lib', 'usr/lib'],
    ['lib64', 'usr/lib64'],
    ['sbin', 'usr/sbin'],
  ] as const) {
    symlinkSync(to, join(rootfs, link));
  }
  writeListeningConf(join(rootfs, 'etc', 'audit-remote'), { logFile: '/var/log/audit/audit.log', port });
  const spec = spawnSync('crun', ['spec'], { cwd: bundle, encoding: 'utf8' });
  if (spec.status !== 0) throw new Error(`crun spec failed: ${spec.stderr}`);
  const configFile = join(bundle, 'config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as {
    process: { terminal: boolean; args: string[] };
    root: { readonly: boolean };
    mounts: unknown[];
    linux: { namespaces: { type: string }[] };
  };
  config.process.terminal = false;
  config.process.args = ['/usr/sbin/auditd', '-n', '-c', '/etc/audit-remote'];
  config.root.readonly = false; // auditd writes its log and pid file there
  config.mounts.push({ destination: '/usr', type: 'bind', source: '/usr', options: ['rbind', 'ro'] });
  if (!config.linux.namespaces.some((n) => n.type === 'network'))
    config.linux.namespaces.push({ type: 'network' });
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  return {
    dir: bundle,
    id: `contid-remote-test-${process.pid}-${++bundles}`,
    logFile: join(rootfs, 'var', 'log', 'audit', 'audit.log'),
  };
}

/** A running container from {@link makeAuditdBundle}. */
export interface AuditdContainer {
  /** The container's init (auditd), as a host pid. */
  readonly pid: number;
  stop(): Promise<void>;
}

/**
 * Runs the bundle with crun (KERNEL.md §7's cgroup workaround: a private
 * mount namespace without the cgroup2 mount, no cgroups) and waits until
 * its auditd listens inside the container's network namespace.
 */
export async function runAuditdContainer(bundle: AuditdBundle, port: number): Promise<AuditdContainer> {
  const inner =
    'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun --cgroup-manager=disabled run --bundle "$1" "$2"';
  const child = spawn(
    'unshare',
    ['-m', '--propagation', 'private', '/bin/sh', '-c', inner, 'sh', bundle.dir, bundle.id],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = once(child, 'exit');
  const stop = async (): Promise<void> => {
    spawnSync('crun', ['kill', bundle.id, 'TERM'], { stdio: 'ignore' });
    const timer = setTimeout(
      () => spawnSync('crun', ['kill', bundle.id, 'KILL'], { stdio: 'ignore' }),
      WAIT_MS,
    );
    if (child.exitCode === null && child.signalCode === null) await exited;
    clearTimeout(timer);
    spawnSync('crun', ['delete', '--force', bundle.id], { stdio: 'ignore' });
  };
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const state = spawnSync('crun', ['state', bundle.id], { encoding: 'utf8' });
    const pid = state.status === 0 ? ((JSON.parse(state.stdout) as { pid?: number }).pid ?? 0) : 0;
    if (pid > 0 && readComm(pid) === 'auditd' && listensOn(pid, port)) return { pid, stop };
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`The auditd container did not listen on port ${port}:\n${stderr}`);
    }
    await sleep(20);
  }
}
