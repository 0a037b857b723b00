/**
 * Who is calling: the control server's view of the process at the other end
 * of a connection, from SO_PEERCRED (kernel-supplied, unforgeable) and that
 * process's /proc entry.
 *
 * /proc is read by pid, and a pid can be reused once its process is reaped.
 * With SO_PEERPIDFD (Linux 6.5+) the server holds a handle on the very
 * process that connected; reading /proc and *then* finding that handle still
 * alive proves the pid was not reused in between (a pid is not free while
 * its process lives, zombies included). Without it, the window is the same
 * as every pid-based tool's.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import type { MarkerCaller } from '../marker/format.js';
import type { PeerCredentials } from './peer-syscalls.js';

/** CAP_AUDIT_CONTROL, bit 30 of the capability sets. */
export const CAP_AUDIT_CONTROL = 30;

/** The fields of /proc/PID/status the server uses. */
export interface ProcStatus {
  readonly ppid: number;
  /** Effective capabilities (CapEff), as a 64-bit mask. */
  readonly capEff: bigint;
}

/** Everything the server established about a caller. */
export interface CallerIdentity extends PeerCredentials {
  readonly ppid: number;
  /** The loginuid (auid); 4294967295 when unset. */
  readonly auid: number;
  /** The executable's path, or `?` when it cannot be read (kernel thread, exited). */
  readonly exe: string;
  readonly capEff: bigint;
  /** `user:[4026531837]`: the user namespace the caller is in. */
  readonly userNs: string;
  /** Whether that is the initial user namespace (the one of /proc/1). */
  readonly initialUserNs: boolean;
  /** CAP_AUDIT_CONTROL in effect and in the initial user namespace (DESIGN.md, rule 2). */
  readonly privileged: boolean;
}

/** Why a caller could not be identified. `code` is `ERR_CALLER_GONE` when its process went away. */
export class CallerError extends Error {
  readonly code: 'ERR_CALLER_GONE' | 'ERR_CALLER_UNKNOWN';
  constructor(message: string, code: 'ERR_CALLER_GONE' | 'ERR_CALLER_UNKNOWN', options?: ErrorOptions) {
    super(message, options);
    this.name = 'CallerError';
    this.code = code;
  }
}

/**
 * Parses the fields of /proc/PID/status that identification needs.
 * Returns null when `PPid:` or `CapEff:` is missing or malformed.
 */
export function parseProcStatus(text: string): ProcStatus | null {
  let ppid: number | null = null;
  let capEff: bigint | null = null;
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (key === 'PPid' && /^[0-9]{1,10}$/.test(value)) ppid = Number(value);
    else if (key === 'CapEff' && /^[0-9a-f]{1,16}$/.test(value)) capEff = BigInt(`0x${value}`);
  }
  return ppid === null || capEff === null ? null : { ppid, capEff };
}

/** Whether a capability mask holds `cap`. */
export function hasCapability(mask: bigint, cap: number): boolean {
  return ((mask >> BigInt(cap)) & 1n) === 1n;
}

/** Options for {@link identifyCaller}. */
export interface IdentifyOptions {
  /** Where procfs is mounted (tests). Default `/proc`. */
  readonly procRoot?: string;
}

/**
 * Reads the caller's /proc entry and decides whether it is privileged.
 * The user namespace is compared with /proc/1's: the daemon runs on the
 * host, where PID 1 is in the initial user namespace (when /proc/1/ns/user
 * cannot be read, with the initial namespace's fixed inode number).
 *
 * @throws {CallerError} ERR_CALLER_GONE when /proc/PID has gone (the caller exited).
 */
export function identifyCaller(cred: PeerCredentials, options: IdentifyOptions = {}): CallerIdentity {
  const proc = options.procRoot ?? '/proc';
  const dir = `${proc}/${cred.pid}`;
  const read = (what: string, fn: () => string): string => {
    try {
      return fn();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ESRCH') {
        throw new CallerError(`Cannot identify the caller: pid ${cred.pid} has exited`, 'ERR_CALLER_GONE', {
          cause: error,
        });
      }
      throw new CallerError(
        `Cannot identify the caller: cannot read ${what} of pid ${cred.pid} (${code ?? 'error'})`,
        'ERR_CALLER_UNKNOWN',
        { cause: error },
      );
    }
  };
  const status = parseProcStatus(read('status', () => readFileSync(`${dir}/status`, 'utf8')));
  if (status === null) {
    throw new CallerError(`Cannot identify the caller: unexpected ${dir}/status`, 'ERR_CALLER_UNKNOWN');
  }
  const loginuid = read('loginuid', () => readFileSync(`${dir}/loginuid`, 'utf8')).trim();
  const auid = /^[0-9]{1,10}$/.test(loginuid) ? Number(loginuid) : 4294967295;
  const userNs = read('ns/user', () => readlinkSync(`${dir}/ns/user`));
  const initialNs = initialUserNamespace(proc);
  let exe = '?';
  try {
    exe = readlinkSync(`${dir}/exe`);
  } catch {
    // Kernel threads and exiting processes have no exe link; the identity is
    // still complete without it (the labeller records `exe=?`).
  }
  const initialUserNs = userNs === initialNs;
  return {
    ...cred,
    ppid: status.ppid,
    auid,
    exe,
    capEff: status.capEff,
    userNs,
    initialUserNs,
    privileged: initialUserNs && hasCapability(status.capEff, CAP_AUDIT_CONTROL),
  };
}

/**
 * The kernel's inode number of the initial user namespace
 * (PROC_USER_INIT_INO in include/linux/proc_ns.h, fixed since Linux 3.8).
 */
export const INITIAL_USER_NS = 'user:[4026531837]';

const initialNsCache = new Map<string, string>();

/**
 * The initial user namespace as /proc/1/ns/user names it. Some sandboxes
 * deny even root a look at PID 1's namespaces (EACCES); the kernel's fixed
 * inode number then stands in.
 */
function initialUserNamespace(proc: string): string {
  let ns = initialNsCache.get(proc);
  if (ns === undefined) {
    try {
      ns = readlinkSync(`${proc}/1/ns/user`);
    } catch {
      ns = INITIAL_USER_NS;
    }
    initialNsCache.set(proc, ns);
  }
  return ns;
}

/** The identity as the DaemonApi and the marker carry it. */
export function toMarkerCaller(identity: CallerIdentity): MarkerCaller {
  return {
    pid: identity.pid,
    uid: identity.uid,
    auid: identity.auid,
    exe: identity.exe,
    privileged: identity.privileged,
    ppid: identity.ppid,
  };
}
