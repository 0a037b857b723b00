/**
 * Test support for code that changes kernel audit state: run a test under
 * the machine-wide lock and put everything back afterwards, and spawn
 * processes with a chosen loginuid so that rules can match only them.
 *
 * What {@link withAuditState} restores: rules (removes the ones added,
 * re-adds the ones deleted), enabled, failure, rate limit, backlog limit,
 * backlog wait time, and the daemon registration when it belongs to this
 * process or to a process that no longer exists. It never locks the
 * configuration (enabled 2) and never sets failure 2 (panic).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type { TestContext } from 'node:test';
import { SyscallError } from '../../src/kernel/libc.js';
import {
  AuditNetlink,
  formatRule,
  type AuditRule,
  type AuditStatus,
  type AuditStatusChange,
} from '../../src/kernel/netlink.js';
import { encodeRule } from '../../src/kernel/rule.js';
import { acquireAuditLock } from './audit-lock.js';

/** The loginuid (auid) tests give their processes, for narrow `-F auid=` rules. */
export const TEST_LOGINUID = 4242;

/** Audit state as far as tests can change it. */
export interface AuditSnapshot {
  readonly status: AuditStatus;
  readonly rules: readonly AuditRule[];
}

/** What a function run by {@link withAuditState} gets. */
export interface AuditStateContext {
  /** A control socket, open for the duration of the function. */
  readonly netlink: AuditNetlink;
  /** The state before the function ran, which will be restored. */
  readonly snapshot: AuditSnapshot;
}

/**
 * Why kernel audit tests cannot run here, or undefined when they can:
 * they need root, a NETLINK_AUDIT socket and an unlocked configuration.
 */
export function auditSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'kernel audit tests need root';
  let netlink: AuditNetlink | undefined;
  try {
    netlink = new AuditNetlink();
    if (netlink.getStatus().enabled === 2) return 'the audit configuration is locked (enabled 2)';
  } catch (error) {
    return `NETLINK_AUDIT is not usable: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    netlink?.close();
  }
  return undefined;
}

/**
 * Skips `t` and returns true when another process is registered as the
 * audit daemon (an auditd running beside the tests), which rules out every
 * test that registers itself.
 */
export function skipIfDaemonRegistered(t: TestContext, { snapshot }: AuditStateContext): boolean {
  const { pid } = snapshot.status;
  if (pid === 0) return false;
  t.skip(`pid ${pid} is registered as the audit daemon, so this test cannot register`);
  return true;
}

/** Reads status and rules. */
export function snapshotAuditState(netlink: AuditNetlink): AuditSnapshot {
  return { status: netlink.getStatus(), rules: netlink.listRules() };
}

/**
 * Runs `fn` holding the audit lock, then restores the audit state to what
 * it was before, also when `fn` throws, and checks that it is. A failed
 * restoration throws (with `fn`'s error as its cause, if any).
 */
export async function withAuditState<T>(fn: (context: AuditStateContext) => Promise<T> | T): Promise<T> {
  const lock = await acquireAuditLock();
  let netlink: AuditNetlink | undefined;
  try {
    netlink = new AuditNetlink();
    const snapshot = snapshotAuditState(netlink);
    if (snapshot.status.enabled === 2) {
      throw new Error('Cannot change audit state: the configuration is locked');
    }
    let result: T;
    try {
      result = await fn({ netlink, snapshot });
    } catch (error) {
      restoreAuditState(netlink, snapshot, error);
      throw error;
    }
    restoreAuditState(netlink, snapshot, undefined);
    return result;
  } finally {
    netlink?.close();
    lock.release();
  }
}

const SETTINGS = ['rateLimit', 'backlogLimit', 'backlogWaitTime'] as const;

/**
 * Puts the state back to `snapshot` and verifies it.
 *
 * @throws {Error} listing what could not be restored.
 */
export function restoreAuditState(netlink: AuditNetlink, snapshot: AuditSnapshot, cause: unknown): void {
  const problems: string[] = [];
  const attempt = (what: string, action: () => void): void => {
    try {
      action();
    } catch (error) {
      problems.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  attempt('rules', () => {
    restoreRules(netlink, snapshot.rules, problems);
  });
  attempt('daemon registration', () => {
    restoreDaemon(netlink, snapshot.status.pid, problems);
  });
  attempt('settings', () => {
    const now = netlink.getStatus();
    const want = snapshot.status;
    const change: { -readonly [K in keyof AuditStatusChange]: AuditStatusChange[K] } = {};
    for (const name of SETTINGS) if (now[name] !== want[name]) change[name] = want[name];
    if (now.failure !== want.failure && (want.failure === 0 || want.failure === 1)) {
      change.failure = want.failure;
    }
    if (now.enabled !== want.enabled && (want.enabled === 0 || want.enabled === 1)) {
      change.enabled = want.enabled === 1;
    }
    if (Object.keys(change).length > 0) netlink.setStatus(change);
  });

  attempt('verification', () => {
    const after = snapshotAuditState(netlink);
    for (const name of ['enabled', 'failure', 'pid', ...SETTINGS] as const) {
      if (after.status[name] !== snapshot.status[name]) {
        problems.push(`${name} is ${after.status[name]}, was ${snapshot.status[name]}`);
      }
    }
    const before = snapshot.rules.map(formatRule).join('\n');
    const now = after.rules.map(formatRule).join('\n');
    if (before !== now) problems.push(`rules are\n${now}\nwere\n${before}`);
  });
  if (problems.length > 0) {
    throw new Error(
      `Audit state was not restored: ${problems.join('; ')}`,
      cause === undefined ? {} : { cause },
    );
  }
}

function restoreRules(netlink: AuditNetlink, rules: readonly AuditRule[], problems: string[]): void {
  const key = (rule: AuditRule): string => encodeRule(rule).toString('base64');
  const missing = new Map<string, AuditRule>();
  for (const rule of rules) missing.set(key(rule), rule);
  for (const rule of netlink.listRules()) {
    if (missing.delete(key(rule))) continue;
    try {
      netlink.deleteRule(rule);
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
    }
  }
  for (const rule of missing.values()) netlink.addRule(rule);
}

function restoreDaemon(netlink: AuditNetlink, wanted: number, problems: string[]): void {
  const pid = netlink.getStatus().pid;
  if (pid === wanted) return;
  if (pid !== 0 && pid !== process.pid && isAlive(pid)) {
    problems.push(`pid ${pid} is registered as the audit daemon and still runs; stop it`);
    return;
  }
  if (pid !== 0 && pid !== process.pid) {
    // A dead daemon stays registered until the kernel next tries to reach
    // it; a registration attempt makes it try (audit_replace), and fails
    // with EEXIST only if the daemon is in fact alive.
    try {
      netlink.registerDaemon();
    } catch (error) {
      if (!(error instanceof SyscallError && error.code === 'EEXIST')) throw error;
    }
  }
  if (netlink.getStatus().pid === process.pid) netlink.unregisterDaemon();
  if (wanted !== 0 && netlink.getStatus().pid !== wanted) {
    problems.push(`pid ${wanted} was the audit daemon and cannot be registered again by a test`);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Spawns `command` with its loginuid (auid) set to `loginuid`: a shell
 * writes /proc/self/loginuid (CAP_AUDIT_CONTROL, loginuid_immutable off)
 * and execs the command, which, with all its descendants, then carries
 * that auid and a fresh session id. Writing loginuid emits a LOGIN record.
 */
export function spawnWithLoginuid(
  loginuid: number,
  command: readonly string[],
  options: SpawnOptions = {},
): ChildProcess {
  const script = 'echo "$1" > /proc/self/loginuid && shift && exec "$@"';
  return spawn('/bin/sh', ['-c', script, 'sh', String(loginuid), ...command], options);
}

/** The outcome of {@link runWithLoginuid}. */
export interface LoginuidRun {
  readonly pid: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `command` to completion with the given loginuid (see {@link spawnWithLoginuid}). */
export function runWithLoginuid(loginuid: number, command: readonly string[]): Promise<LoginuidRun> {
  return new Promise((resolve, reject) => {
    const child = spawnWithLoginuid(loginuid, command, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      resolve({ pid: child.pid ?? -1, code, signal, stdout, stderr });
    });
  });
}
