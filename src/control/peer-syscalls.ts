/**
 * The libc calls the control server needs beyond src/kernel/libc.ts: the
 * peer's credentials and pidfd of a connected unix socket, and a liveness
 * probe through the pidfd. Bound once through koffi.
 */
import koffi from 'koffi';
import { ContidError, type ErrnoCode } from '../errors.js';
import { errno, errnoName, getsockopt, close as closeFd } from '../kernel/libc.js';

const lib = koffi.load('libc.so.6');

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
/** Linux 6.5+: a pidfd for the peer process as it was at connect() time. */
const SO_PEERPIDFD = 77;
const ENOPROTOOPT = 92;
const ESRCH = 3;
const SYS_PIDFD_SEND_SIGNAL = 424;

// glibc has a wrapper only from 2.36, so go through syscall(2); the number is
// the same on every architecture Linux assigns it to (x86_64, aarch64, i386).
const syscall4 = lib.func('long syscall(long number, int a, int b, void *c, unsigned int d)') as (
  number: number,
  a: number,
  b: number,
  c: null,
  d: number,
) => number | bigint;

/** `struct ucred` of SO_PEERCRED. */
export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** A failed call, with the errno name as `code`. */
export class PeerError extends ContidError<ErrnoCode> {}

/** SO_PEERCRED of a connected unix socket: who was at the other end at connect() time. */
export function peerCredentials(fd: number): PeerCredentials {
  const value = Buffer.alloc(12);
  const len: [number] = [12];
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, value, len) !== 0) {
    throw new PeerError('Cannot read the peer credentials of the control connection', errnoName(errno()));
  }
  return { pid: value.readInt32LE(0), uid: value.readUInt32LE(4), gid: value.readUInt32LE(8) };
}

/**
 * SO_PEERPIDFD of a connected unix socket, or null where the kernel does not
 * have it (before 6.5: ENOPROTOOPT). The caller owns the returned fd.
 */
export function peerPidfd(fd: number): number | null {
  const value = Buffer.alloc(4);
  const len: [number] = [4];
  if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, value, len) !== 0) {
    const code = errno();
    if (code === ENOPROTOOPT) return null;
    throw new PeerError('Cannot get a pidfd for the peer of the control connection', errnoName(code));
  }
  return value.readInt32LE(0);
}

/**
 * Whether the process a pidfd refers to is still alive (signal 0, as
 * kill(pid, 0), but to that very process: a pidfd never refers to a later
 * process with the same pid). A zombie counts as alive: its pid is not free
 * for reuse yet.
 */
export function pidfdAlive(pidfd: number): boolean {
  const rc = Number(syscall4(SYS_PIDFD_SEND_SIGNAL, pidfd, 0, null, 0));
  if (rc === 0) return true;
  const code = errno();
  if (code === ESRCH) return false;
  throw new PeerError('Cannot probe the caller through its pidfd', errnoName(code));
}

/** close(2) of a pidfd. */
export function closePidfd(pidfd: number): void {
  closeFd(pidfd);
}
