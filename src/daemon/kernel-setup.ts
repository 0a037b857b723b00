/**
 * What contid changes in the kernel's audit configuration, and how it puts
 * it back: its rules, `enabled`, and the backlog limit. Without rules
 * (`--rules no`) it still enables audit, as auditd does when it starts (and
 * puts it back on stop, as auditd does when it ends): as the audit daemon,
 * contid receives nothing from a disabled kernel, not even its own markers.
 *
 * The values found at start are also written to a small state file, so that
 * a run that was killed (SIGKILL, OOM) and left audit enabled and its rules
 * installed is cleaned up by the next start, which restores the original
 * values on its own stop.
 */
import { rmSync } from 'node:fs';
import { SyscallError } from '../kernel/libc.js';
import { formatRule, type AuditNetlink, type AuditRule } from '../kernel/netlink.js';
import { contidRuleOwner, contidRules } from './rules.js';
import { readFileNoFollow, replaceFile } from './files.js';
import type { Logger } from './logger.js';

/** What the state file remembers about the kernel before contid changed it. */
interface SavedState {
  readonly pid: number;
  readonly enabled: number;
  readonly backlogLimit: number;
}

export interface KernelSetupOptions {
  /** The daemon's pid, excluded by its rules. */
  readonly selfPid: number;
  /** Install contid's rules (default true); false changes only the settings. */
  readonly rules?: boolean;
  /** Raise the backlog limit to this (never lower it); 0 to leave it. */
  readonly backlogLimit: number;
  /** Path of the state file. */
  readonly statePath: string;
  readonly log: Logger;
}

/** True when a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readSaved(path: string): SavedState | null {
  const text = readFileNoFollow(path);
  if (text === null) return null;
  const v = JSON.parse(text) as Partial<SavedState>;
  const ok = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  return ok(v.pid) && ok(v.enabled) && ok(v.backlogLimit)
    ? { pid: v.pid, enabled: v.enabled, backlogLimit: v.backlogLimit }
    : null;
}

/** Installs contid's rules and settings; {@link restore} undoes exactly that. */
export class KernelSetup {
  readonly #net: AuditNetlink;
  readonly #options: KernelSetupOptions;
  #added: AuditRule[] = [];
  /** The value to restore and the value contid set, or null when contid changed nothing. */
  #enabled: { restore: number; set: number } | null = null;
  #backlog: { restore: number; set: number } | null = null;
  /** Stale rules of an earlier run that were removed at start. */
  recovered = 0;

  constructor(net: AuditNetlink, options: KernelSetupOptions) {
    this.#net = net;
    this.#options = options;
  }

  /** The rules this start added. */
  get rules(): readonly AuditRule[] {
    return this.#added;
  }

  /**
   * Removes a dead run's rules, adds this run's, enables audit and raises
   * the backlog. On failure, undoes what it did and throws.
   */
  apply(): void {
    const { log, selfPid, statePath } = this.#options;
    const status = this.#net.getStatus();
    if (status.enabled === 2) {
      throw new SyscallError('Cannot install audit rules', 1, {
        reason: 'the audit configuration is locked (enabled 2) until reboot',
      });
    }
    let original = { enabled: status.enabled, backlogLimit: status.backlogLimit };
    const saved = readSaved(statePath);
    if (saved !== null && saved.pid !== selfPid) {
      if (isAlive(saved.pid)) {
        log('warning', `State file ${statePath} belongs to pid ${saved.pid}, which still runs`);
      } else {
        log(
          'notice',
          `Recovering from contid pid ${saved.pid}, which did not stop cleanly: ` +
            `audit was enabled=${saved.enabled} backlog_limit=${saved.backlogLimit} before it`,
        );
        original = { enabled: saved.enabled, backlogLimit: saved.backlogLimit };
      }
    }
    try {
      this.#save({ pid: selfPid, ...original });
      // Enable first, so that the kernel records the rule changes (CONFIG_CHANGE).
      const limit = this.#options.backlogLimit;
      if (limit > 0 && status.backlogLimit < limit) {
        this.#net.setStatus({ backlogLimit: limit });
        this.#backlog = { restore: original.backlogLimit, set: limit };
      } else if (original.backlogLimit !== status.backlogLimit && original.backlogLimit < limit) {
        this.#backlog = { restore: original.backlogLimit, set: status.backlogLimit };
      }
      if (status.enabled === 0) {
        this.#net.setStatus({ enabled: true });
        this.#enabled = { restore: 0, set: 1 };
      } else if (original.enabled === 0) {
        this.#enabled = { restore: 0, set: status.enabled };
      }
      if (this.#options.rules === false) return;
      this.#removeStaleRules();
      for (const rule of contidRules(selfPid)) {
        try {
          this.#net.addRule(rule);
          this.#added.push(rule);
        } catch (error) {
          // An identical rule is another run's with our pid: not ours to remove.
          if (!(error instanceof SyscallError && error.code === 'EEXIST')) throw error;
          log('warning', `Audit rule "${formatRule(rule)}" already exists; it will be left on stop`);
        }
      }
    } catch (error) {
      this.restore();
      throw error;
    }
  }

  #removeStaleRules(): void {
    const { log, selfPid } = this.#options;
    for (const rule of this.#net.listRules()) {
      const owner = contidRuleOwner(rule);
      if (owner === null) continue;
      if (owner !== selfPid && isAlive(owner)) {
        log('warning', `Audit rule "${formatRule(rule)}" belongs to pid ${owner}, which still runs`);
        continue;
      }
      this.#net.deleteRule(rule);
      this.recovered++;
      log('notice', `Removed the audit rule of an earlier contid run: "${formatRule(rule)}"`);
    }
  }

  #save(state: SavedState): void {
    replaceFile(this.#options.statePath, JSON.stringify(state) + '\n', 0o600);
  }

  /** Removes the rules this start added. Returns the problems met; never throws. Idempotent. */
  restoreRules(): string[] {
    const problems: string[] = [];
    for (const rule of this.#added) {
      try {
        this.#net.deleteRule(rule);
      } catch (error) {
        problems.push(`rules: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    this.#added = [];
    return problems;
  }

  /**
   * Restores `enabled` and the backlog limit where they still hold the
   * values contid set (another tool may have changed them since), then
   * removes the state file. Returns the problems met; never throws.
   */
  restoreSettings(): string[] {
    try {
      const now = this.#net.getStatus();
      const backlog = this.#backlog;
      if (backlog !== null && now.backlogLimit === backlog.set) {
        this.#net.setStatus({ backlogLimit: backlog.restore });
      }
      const enabled = this.#enabled;
      if (enabled !== null && now.enabled === enabled.set) this.#net.setStatus({ enabled: false });
      this.#backlog = null;
      this.#enabled = null;
      rmSync(this.#options.statePath, { force: true });
      return [];
    } catch (error) {
      return [`settings: ${error instanceof Error ? error.message : String(error)}`];
    }
  }

  /** Both of the above. */
  restore(): string[] {
    return [...this.restoreRules(), ...this.restoreSettings()];
  }
}
