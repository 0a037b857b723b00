/**
 * Who is calling: the control server's view of the process at the other end
 * of a connection, from SO_PEERCRED (kernel-supplied, unforgeable) and that
 * process's /proc entry, established once, when the client connects.
 *
 * Privilege is never re-read: a process can exec a setuid-root program (or
 * one with file capabilities) after it connected and leave the connection
 * to a child, and /proc would then describe the setuid program. Instead the
 * identity carries a fingerprint of the program the caller runs and the ids
 * it runs with; the server compares it before every request and refuses
 * once it differs (ERR_CALLER_CHANGED). The ids SO_PEERCRED recorded at
 * connect() must also be the ones /proc shows when the server first looks,
 * which catches a setuid exec in the moment between connect() and accept().
 *
 * /proc is read by pid, and a pid can be reused once its process is reaped.
 * With SO_PEERPIDFD (Linux 6.5+) the server holds a handle on the very
 * process that connected; reading /proc and *then* finding that handle still
 * alive proves the pid was not reused in between (a pid is not free while
 * its process lives, zombies included). The fingerprint holds the process's
 * start time too, which tells a reused pid apart where there is no pidfd.
 */
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import type { MarkerCaller } from '../marker/format.js';
import type { PeerCredentials } from './peer-syscalls.js';

/** CAP_AUDIT_CONTROL, bit 30 of the capability sets. */
export const CAP_AUDIT_CONTROL = 30;

/** The fields of /proc/PID/status the server uses. */
export interface ProcStatus {
  readonly ppid: number;
  /** Effective capabilities (CapEff), as a 64-bit mask. */
  readonly capEff: bigint;
  /** Effective user and group ids (the second column of `Uid:` and `Gid:`). */
  readonly euid: number;
  readonly egid: number;
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
  /** CAP_AUDIT_CONTROL in effect and in the initial user namespace (docs/design.md, rule 2). */
  readonly privileged: boolean;
  /** {@link readFingerprint} when the caller was identified. */
  readonly fingerprint: string;
}

/** Why a caller cannot be served. */
export type CallerErrorCode = 'ERR_CALLER_GONE' | 'ERR_CALLER_UNKNOWN' | 'ERR_CALLER_CHANGED';

/**
 * Why a caller could not be identified, or can no longer be served: its
 * process went away (`ERR_CALLER_GONE`), it has executed another program or
 * changed its ids since it connected (`ERR_CALLER_CHANGED`), or /proc could
 * not be read (`ERR_CALLER_UNKNOWN`). The message is the reason, to follow
 * "Cannot <do what>: ".
 */
export class CallerError extends Error {
  readonly code: CallerErrorCode;
  constructor(message: string, code: CallerErrorCode, options?: ErrorOptions) {
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
  let euid: number | null = null;
  let egid: number | null = null;
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (key === 'PPid' && /^[0-9]{1,10}$/.test(value)) ppid = Number(value);
    else if (key === 'CapEff' && /^[0-9a-f]{1,16}$/.test(value)) capEff = BigInt(`0x${value}`);
    else if (key === 'Uid') euid = effectiveId(value);
    else if (key === 'Gid') egid = effectiveId(value);
  }
  return ppid === null || capEff === null || euid === null || egid === null
    ? null
    : { ppid, capEff, euid, egid };
}

/** The effective id of a `Uid:`/`Gid:` value: "real effective saved fs". */
function effectiveId(value: string): number | null {
  const ids = value.split(/\s+/);
  const id = ids[1];
  return ids.length === 4 && id !== undefined && /^[0-9]{1,10}$/.test(id) ? Number(id) : null;
}

/**
 * The part of /proc/PID/stat that identifies a process incarnation and the
 * program image it runs: the state, the start time (fixed for the process's
 * life), and the addresses of its memory layout (code, stack, data, heap,
 * arguments, environment), which execve replaces (and which address-space
 * randomisation makes differ from one exec to the next). Null when the text
 * is not a stat line.
 */
export function parseProcStat(text: string): { state: string; image: string } | null {
  // The command name (field 2) is in parentheses and may hold anything,
  // parentheses and spaces included: the fields resume after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const fields = text
    .slice(close + 2)
    .trim()
    .split(' ');
  // fields[0] is field 3 (state); field N is fields[N - 3].
  const pick = (n: number): string | undefined => fields[n - 3];
  const state = pick(3);
  const wanted = [22, 26, 27, 28, 45, 46, 47, 48, 49, 50, 51].map(pick);
  if (state === undefined || wanted.some((v) => v === undefined || !/^[0-9]+$/.test(v))) return null;
  return { state, image: wanted.join(' ') };
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
 * Reads `path` under a caller's /proc directory; a missing entry means the
 * process has gone, anything else that the caller cannot be identified.
 */
function readProc<T>(pid: number, what: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') {
      throw new CallerError(`the caller (pid ${pid}) has exited`, 'ERR_CALLER_GONE', { cause: error });
    }
    throw new CallerError(
      `cannot read ${what} of the caller (pid ${pid}) (${code ?? 'error'})`,
      'ERR_CALLER_UNKNOWN',
      { cause: error },
    );
  }
}

/**
 * What a caller runs and as whom, as one comparable string: its start time
 * and memory layout (from /proc/PID/stat), the device and inode of its
 * executable, and its effective uid and gid. Any execve, and any change of
 * effective ids, changes it.
 *
 * @throws {CallerError} ERR_CALLER_GONE when the process has exited (a zombie included).
 */
export function readFingerprint(pid: number, options: IdentifyOptions = {}): string {
  return readImage(pid, `${options.procRoot ?? '/proc'}/${pid}`).fingerprint;
}

/** The fingerprint and, read last, the status it includes. */
function readImage(pid: number, dir: string): { fingerprint: string; status: ProcStatus } {
  const stat = parseProcStat(readProc(pid, 'stat', () => readFileSync(`${dir}/stat`, 'utf8')));
  if (stat === null) throw new CallerError(`unexpected ${dir}/stat`, 'ERR_CALLER_UNKNOWN');
  if (stat.state === 'Z' || stat.state === 'X') {
    throw new CallerError(`the caller (pid ${pid}) has exited`, 'ERR_CALLER_GONE');
  }
  const exe = readProc(pid, 'exe', () => statSync(`${dir}/exe`, { bigint: true }));
  const status = parseProcStatus(readProc(pid, 'status', () => readFileSync(`${dir}/status`, 'utf8')));
  if (status === null) throw new CallerError(`unexpected ${dir}/status`, 'ERR_CALLER_UNKNOWN');
  return {
    fingerprint: `${stat.image} exe=${exe.dev}:${exe.ino} euid=${status.euid} egid=${status.egid}`,
    status,
  };
}

/**
 * Reads the caller's /proc entry and decides, once, whether it is
 * privileged. The user namespace is compared with /proc/1's: the daemon runs
 * on the host, where PID 1 is in the initial user namespace (when
 * /proc/1/ns/user cannot be read, with the initial namespace's fixed inode
 * number).
 *
 * @throws {CallerError} ERR_CALLER_GONE when /proc/PID has gone (the caller
 *   exited); ERR_CALLER_CHANGED when its effective ids are no longer the
 *   ones the kernel recorded at connect() (`cred`): it has exec'd a setuid
 *   program, or changed ids, since.
 */
export function identifyCaller(cred: PeerCredentials, options: IdentifyOptions = {}): CallerIdentity {
  const proc = options.procRoot ?? '/proc';
  const pid = cred.pid;
  const dir = `${proc}/${pid}`;
  const { fingerprint, status } = readImage(pid, dir);
  if (status.euid !== cred.uid || status.egid !== cred.gid) {
    throw new CallerError(changedReason(pid), 'ERR_CALLER_CHANGED');
  }
  const loginuid = readProc(pid, 'loginuid', () => readFileSync(`${dir}/loginuid`, 'utf8')).trim();
  const auid = /^[0-9]{1,10}$/.test(loginuid) ? Number(loginuid) : 4294967295;
  const userNs = readProc(pid, 'ns/user', () => readlinkSync(`${dir}/ns/user`));
  const initialNs = initialUserNamespace(proc);
  let exe = '?';
  try {
    exe = readlinkSync(`${dir}/exe`);
  } catch {
    // Kernel threads and exiting processes have no exe link; the identity is
    // still complete without it (the labeller records `exe=?`).
  }
  // Everything above was read between two looks at the fingerprint: if they
  // agree, it all describes one program image run with one set of ids.
  if (readImage(pid, dir).fingerprint !== fingerprint) {
    throw new CallerError(changedReason(pid), 'ERR_CALLER_CHANGED');
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
    fingerprint,
  };
}

/** The reason given for ERR_CALLER_CHANGED. */
export function changedReason(pid: number): string {
  return `the caller (pid ${pid}) has executed another program or changed its ids since it connected`;
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
