/**
 * A real auditd for the tests, with a private configuration directory
 * (`auditd -f -c DIR`, KERNEL.md §1, §8, §9): its own auditd.conf, log and
 * plugins.d, never /etc/audit (whose plugins.d starts laurel). It runs in
 * the foreground as a child of the test, so that its pid is known (it is
 * stopped by that pid) and what it says about its configuration (a refused
 * plugin file, for one) is on its stderr. In the foreground auditd writes
 * its log, in its log format, to stdout instead of `log_file`: stdout is
 * the log file.
 *
 * Call it inside withAuditState: auditd registers as the audit daemon and
 * enables audit, which the caller's restoration puts back.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditNetlink } from '../../src/kernel/netlink.js';
import { which } from './crun.js';
import { WAIT_MS } from './log-events.js';

/** Why auditd tests cannot run here, or undefined. */
export function auditdSkipReason(): string | undefined {
  if (which('auditd') === null) return 'auditd (Debian package auditd) is needed';
  if (which('auditctl') === null) return 'auditctl (Debian package auditd) is needed';
  return undefined;
}

/** Options of {@link startAuditd}. */
export interface AuditdOptions {
  /** A directory of the test's own, for `conf/` (auditd.conf, plugins.d) and `log/`. */
  readonly dir: string;
  /** auditd.conf `log_format`: ENRICHED (Debian's default) or RAW. */
  readonly logFormat: 'ENRICHED' | 'RAW';
  /** auditd.conf `name_format` (NONE: no `node=` prefix; HOSTNAME: `node=<host>`). */
  readonly nameFormat: 'NONE' | 'HOSTNAME';
  /** Plugin files to put in plugins.d, by file name. */
  readonly plugins: Readonly<Record<string, string>>;
  /** The control socket used to see auditd register. */
  readonly netlink: AuditNetlink;
}

/** A running auditd, a child of the test. */
export interface RunningAuditd {
  readonly pid: number;
  /** Its log file (256 MB before it rotates: one file for a test). */
  readonly logFile: string;
  /** What it wrote on stderr so far (its own messages, in the foreground). */
  stderr(): string;
  /** Resolves with its exit code once it exits. */
  readonly exited: Promise<number | null>;
  /** SIGTERM by pid, then waits for the exit (SIGKILL after WAIT_MS). Idempotent. */
  stop(): Promise<number | null>;
}

/**
 * A complete auditd.conf (not a copy of /etc/audit/auditd.conf, so that the
 * tests do not depend on the stock one): a log that does not rotate during a
 * test and no disk-space actions on a small /tmp.
 */
function auditdConf(options: AuditdOptions, logFile: string, pluginDir: string): string {
  return [
    'local_events = yes',
    'write_logs = yes',
    `log_file = ${logFile}`,
    'log_group = root',
    `log_format = ${options.logFormat}`,
    'flush = INCREMENTAL_ASYNC',
    'freq = 50',
    'max_log_file = 256',
    'num_logs = 2',
    'priority_boost = 4',
    `name_format = ${options.nameFormat}`,
    'max_log_file_action = ROTATE',
    'space_left = 2',
    'space_left_action = IGNORE',
    'admin_space_left = 1',
    'admin_space_left_action = IGNORE',
    'disk_full_action = IGNORE',
    'disk_error_action = SYSLOG',
    'tcp_listen_queue = 5',
    'tcp_max_per_addr = 1',
    'tcp_client_max_idle = 0',
    'transport = TCP',
    'distribute_network = no',
    'q_depth = 2000',
    'overflow_action = SYSLOG',
    'max_restarts = 10',
    `plugin_dir = ${pluginDir}`,
    'end_of_event_timeout = 2',
    '',
  ].join('\n');
}

/**
 * Writes the configuration and starts `auditd -f -c DIR/conf`; resolves
 * once the kernel names it as the audit daemon. A start that fails or times
 * out is stopped before the promise rejects.
 */
export async function startAuditd(options: AuditdOptions): Promise<RunningAuditd> {
  const conf = join(options.dir, 'conf');
  const pluginDir = join(conf, 'plugins.d');
  const logDir = join(options.dir, 'log');
  for (const d of [conf, pluginDir, logDir]) mkdirSync(d, { recursive: true, mode: 0o750 });
  const logFile = join(logDir, 'audit.log');
  // auditd refuses configuration files that others may write.
  writeFileSync(join(conf, 'auditd.conf'), auditdConf(options, logFile, pluginDir), { mode: 0o640 });
  for (const [name, text] of Object.entries(options.plugins)) {
    writeFileSync(join(pluginDir, name), text, { mode: 0o640 });
    chmodSync(join(pluginDir, name), 0o640);
  }
  // In the foreground auditd writes its log to stdout instead of log_file.
  const log = openSync(logFile, 'a', 0o600);
  let child;
  try {
    child = spawn('auditd', ['-f', '-c', conf], { stdio: ['ignore', log, 'pipe'] });
  } finally {
    closeSync(log);
  }
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  let done = false;
  void exited.then(() => (done = true));
  const pid = child.pid ?? -1;
  let stopping: Promise<number | null> | undefined;
  const auditd: RunningAuditd = {
    pid,
    logFile,
    stderr: () => stderr,
    exited,
    stop() {
      stopping ??= (async () => {
        if (done) return exited;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
        const code = await exited;
        clearTimeout(timer);
        return code;
      })();
      return stopping;
    },
  };
  const deadline = Date.now() + WAIT_MS;
  while (options.netlink.getStatus().pid !== pid) {
    if (done || Date.now() >= deadline) {
      await auditd.stop();
      throw new Error(
        `auditd did not register within ${WAIT_MS} ms (exit ${String(child.exitCode)}):\n${stderr}`,
      );
    }
    await sleep(50);
  }
  return auditd;
}
