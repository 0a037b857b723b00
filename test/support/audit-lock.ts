/**
 * The machine-wide lock that every test changing kernel audit state holds.
 *
 * Kernel audit is shared machine state, and other engineers' experiments
 * (shell scripts using `flock /run/contid-audit-test.lock …`) run beside the
 * test suite, whose files node:test runs as parallel processes. flock(2)
 * locks belong to the open file description, so the lock is released when
 * the holder closes it or dies, never left behind.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Errno, SyscallError, errno, flock } from '../../src/kernel/libc.js';

/** The lock file shared with the `flock` command in scripts. */
export const AUDIT_LOCK_PATH = '/run/contid-audit-test.lock';

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

/** A held lock. */
export interface AuditLock {
  /** Releases the lock. Idempotent. */
  release(): void;
}

/** Options for {@link acquireAuditLock}. */
export interface AcquireAuditLockOptions {
  readonly path?: string;
  /** Gives up after this long. Default 120 s ($CONTID_AUDIT_LOCK_WAIT_MS): another test file may hold it meanwhile. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * Takes the exclusive lock, polling with LOCK_NB so that the event loop
 * keeps running while another process holds it. Not reentrant: a second
 * acquire in the same process waits for the first release.
 *
 * @throws {SyscallError} ETIMEDOUT when the lock stays taken.
 */
export async function acquireAuditLock(options: AcquireAuditLockOptions = {}): Promise<AuditLock> {
  const path = options.path ?? AUDIT_LOCK_PATH;
  const timeoutMs = options.timeoutMs ?? Number(process.env['CONTID_AUDIT_LOCK_WAIT_MS'] ?? 120_000);
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  try {
    const deadline = Date.now() + timeoutMs;
    while (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
      const code = errno();
      if (code !== Errno.EWOULDBLOCK && code !== Errno.EINTR) {
        throw new SyscallError(`Cannot lock ${JSON.stringify(path)}`, code);
      }
      if (Date.now() >= deadline) {
        throw new SyscallError(`Cannot lock ${JSON.stringify(path)}`, Errno.ETIMEDOUT, {
          reason: `another process held it for ${timeoutMs} ms`,
        });
      }
      await sleep(25, undefined, options.signal === undefined ? {} : { signal: options.signal });
    }
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  let held = true;
  return {
    release(): void {
      if (!held) return;
      held = false;
      flock(fd, LOCK_UN);
      closeSync(fd);
    },
  };
}
