/**
 * openat2(2) and the *at calls that go with it, bound through koffi, for
 * writing into a directory tree that someone else controls (a container's
 * root filesystem) without following any link they planted.
 *
 * glibc 2.36 has no openat2 wrapper, so it goes through syscall(2). The
 * number is 437 on every Linux architecture (the syscall tables were unified
 * from 424 on). Like libc.ts, these return -1 with errno set; read it with
 * {@link errno} right after the call.
 */
import { constants } from 'node:fs';
import koffi from 'koffi';

const lib = koffi.load('libc.so.6');

type Fd = number;

const SYS_openat2 = 437;

/** openat2 `resolve` flag: no mount point crossing. */
export const RESOLVE_NO_XDEV = 0x01;
/** openat2 `resolve` flag: no /proc magic links (/proc/PID/fd/N, /proc/PID/root). */
export const RESOLVE_NO_MAGICLINKS = 0x02;
/** openat2 `resolve` flag: no symbolic links at all, in any component. */
export const RESOLVE_NO_SYMLINKS = 0x04;
/** openat2 `resolve` flag: fail (EXDEV) rather than leave the directory `dirfd` names. */
export const RESOLVE_BENEATH = 0x08;
/** openat2 `resolve` flag: treat `dirfd` as the root ("/" and ".." stay inside it). */
export const RESOLVE_IN_ROOT = 0x10;

/** O_PATH: a handle on a file or directory that cannot read or write it. */
export const O_PATH = 0o10000000;
/** The open(2) flags used with openat2, from the platform's table. */
export const O = {
  RDONLY: constants.O_RDONLY,
  WRONLY: constants.O_WRONLY,
  CREAT: constants.O_CREAT,
  EXCL: constants.O_EXCL,
  APPEND: constants.O_APPEND,
  NOCTTY: constants.O_NOCTTY,
  NONBLOCK: constants.O_NONBLOCK,
  DIRECTORY: constants.O_DIRECTORY,
  NOFOLLOW: constants.O_NOFOLLOW,
  CLOEXEC: 0o2000000,
  PATH: O_PATH,
} as const;

/** The special dirfd meaning "the current directory". */
export const AT_FDCWD = -100;

const syscall = lib.func('long syscall(long number, ...)') as (
  number: number,
  ...typedArgs: unknown[]
) => number | bigint;

/** What openat2 is asked to do (`struct open_how`). */
export interface OpenHow {
  readonly flags: number;
  readonly mode?: number;
  readonly resolve: number;
}

/**
 * openat2(2): opens `path` relative to `dirfd` under the `resolve` rules.
 * Returns the fd, or -1 with errno set (ELOOP for a refused link, EXDEV for
 * a path that would leave `dirfd`, E2BIG/ENOSYS on kernels before 5.6).
 */
export function openat2(dirfd: Fd, path: string, how: OpenHow): number {
  // struct open_how { u64 flags; u64 mode; u64 resolve; }
  const buf = Buffer.alloc(24);
  buf.writeBigUInt64LE(BigInt(how.flags), 0);
  buf.writeBigUInt64LE(BigInt(how.mode ?? 0), 8);
  buf.writeBigUInt64LE(BigInt(how.resolve), 16);
  const r = syscall(SYS_openat2, 'int', dirfd, 'const char *', path, 'void *', buf, 'size_t', buf.length);
  return Number(r);
}

/** mkdirat(2): creates `name` in `dirfd` (never through a link: mkdir does not follow its last component). */
export const mkdirat = lib.func('int mkdirat(int dirfd, const char *path, uint32_t mode)') as (
  dirfd: Fd,
  path: string,
  mode: number,
) => number;

/** renameat(2): renames within or between directories; the last components are never followed. */
export const renameat = lib.func(
  'int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)',
) as (olddirfd: Fd, oldpath: string, newdirfd: Fd, newpath: string) => number;

/** unlinkat(2) with `flags` 0 (a file) or AT_REMOVEDIR. */
export const unlinkat = lib.func('int unlinkat(int dirfd, const char *path, int flags)') as (
  dirfd: Fd,
  path: string,
  flags: number,
) => number;
