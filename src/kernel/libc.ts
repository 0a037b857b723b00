/**
 * The few libc calls contid needs for netlink, bound once through koffi.
 *
 * Node has no API for AF_NETLINK sockets (`net.Socket` refuses the fd with
 * ERR_INVALID_FD_TYPE), so the kernel edge talks to libc directly. Every
 * binding here is synchronous but {@link pollOnPool}; callers that may block
 * (recv) must set SO_RCVTIMEO, pass MSG_DONTWAIT or run in a worker thread.
 *
 * Errors are reported the C way (return -1, errno set). {@link errno} must be
 * read right after the failing call, before anything else can reach libc;
 * {@link SyscallError} turns the pair into an exception with a stable code.
 */
import koffi from 'koffi';
import { ContidError, ContidRangeError, type ErrnoCode } from '../errors.js';

const lib = koffi.load('libc.so.6');

// Buffers passed for `void *` are handed to C as pointers into their own
// memory, so `recv` and `getsockopt` write into the caller's Buffer directly.
type Fd = number;
type SsizeT = number | bigint;

/** socket(2). */
export const socket = lib.func('int socket(int domain, int type, int protocol)') as (
  domain: number,
  type: number,
  protocol: number,
) => Fd;

/** bind(2); `addr` is the encoded sockaddr. */
export const bind = lib.func('int bind(int fd, const void *addr, uint32_t len)') as (
  fd: Fd,
  addr: Buffer,
  len: number,
) => number;

/** send(2). */
export const send = lib.func('intptr_t send(int fd, const void *buf, size_t len, int flags)') as (
  fd: Fd,
  buf: Buffer,
  len: number,
  flags: number,
) => SsizeT;

/** sendto(2); `addr` is the encoded sockaddr. */
export const sendto = lib.func(
  'intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)',
) as (fd: Fd, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number) => SsizeT;

/** recv(2) into `buf`, which the kernel fills in place. */
export const recv = lib.func('intptr_t recv(int fd, void *buf, size_t len, int flags)') as (
  fd: Fd,
  buf: Buffer,
  len: number,
  flags: number,
) => SsizeT;

/**
 * recvfrom(2) into `buf`; the sender's address is written into `addr` and
 * its length into `addrlen[0]`.
 */
export const recvfrom = lib.func(
  'intptr_t recvfrom(int fd, void *buf, size_t len, int flags, void *addr, _Inout_ uint32_t *addrlen)',
) as (fd: Fd, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: [number]) => SsizeT;

/**
 * recvmmsg(2) with `msgvec` a native `struct mmsghdr[vlen]` (see
 * {@link allocNative}); always called without a timeout (SO_RCVTIMEO applies).
 */
export const recvmmsg = lib.func(
  'int recvmmsg(int fd, void *msgvec, unsigned int vlen, int flags, void *timeout)',
) as (fd: Fd, msgvec: bigint, vlen: number, flags: number, timeout: null) => number;

/** Native memory that does not move, for structures holding pointers. */
export interface NativeBlock {
  /** The address, to store in pointer fields and pass as `void *`. */
  readonly address: bigint;
  /** A view of the memory; do not use it after {@link freeNative}. */
  readonly view: Buffer;
}

/** Allocates `bytes` of zeroed native memory. Free it with {@link freeNative}. */
export function allocNative(bytes: number): NativeBlock {
  const address = koffi.alloc('uint8_t', bytes) as bigint;
  const view = Buffer.from(koffi.view(address, bytes));
  view.fill(0);
  return { address, view };
}

/** Frees a {@link NativeBlock}; its view must not be used afterwards. */
export function freeNative(block: NativeBlock): void {
  koffi.free(block.address);
}

/** setsockopt(2) with the option value encoded in `value`. */
export const setsockopt = lib.func(
  'int setsockopt(int fd, int level, int name, const void *value, uint32_t len)',
) as (fd: Fd, level: number, name: number, value: Buffer, len: number) => number;

/** getsockopt(2): the value is written into `value`, its length into `len[0]`. */
export const getsockopt = lib.func(
  'int getsockopt(int fd, int level, int name, void *value, _Inout_ uint32_t *len)',
) as (fd: Fd, level: number, name: number, value: Buffer, len: [number]) => number;

/** connect(2); `addr` is the encoded sockaddr. */
export const connect = lib.func('int connect(int fd, const void *addr, uint32_t len)') as (
  fd: Fd,
  addr: Buffer,
  len: number,
) => number;

/**
 * setns(2). Moves the calling thread (not the process) into the namespace
 * `fd` refers to, when `nstype` is CLONE_NEWNET; call it in a worker thread.
 */
export const setns = lib.func('int setns(int fd, int nstype)') as (fd: Fd, nstype: number) => number;

/** close(2). */
export const close = lib.func('int close(int fd)') as (fd: Fd) => number;

/** write(2). */
export const write = lib.func('intptr_t write(int fd, const void *buf, size_t len)') as (
  fd: Fd,
  buf: Buffer,
  len: number,
) => SsizeT;

/** eventfd(2). */
export const eventfd = lib.func('int eventfd(unsigned int initval, int flags)') as (
  initval: number,
  flags: number,
) => Fd;

/**
 * poll(2) on libuv's thread pool (koffi's asynchronous call): `fds` is a
 * `struct pollfd[nfds]` (int fd, short events, short revents: 8 bytes
 * each) that the kernel fills in; `done` runs on the calling thread with
 * poll's result. Only for waits that end (see ReadableWait): the call holds
 * one of the pool's threads until it returns.
 */
export function pollOnPool(
  fds: Buffer,
  nfds: number,
  timeout: number,
  done: (error: unknown, result: number) => void,
): void {
  pollAsync.async(fds, nfds, timeout, done);
}
const pollAsync = lib.func('int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)') as unknown as {
  async(fds: Buffer, nfds: number, timeout: number, done: (error: unknown, result: number) => void): void;
};

/** poll(2) on this thread; with timeout 0 it only looks (`fds` as for {@link pollOnPool}). */
export const poll = lib.func('int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)') as (
  fds: Buffer,
  nfds: number,
  timeout: number,
) => number;

const fcntlRaw = lib.func('int fcntl(int fd, int cmd, ...)') as (
  fd: Fd,
  cmd: number,
  ...arg: [] | ['int', number]
) => number;

/** fcntl(2) with an int argument (F_SETFL, F_SETOWN) or none (F_GETFL). */
export function fcntl(fd: Fd, cmd: number, arg?: number): number {
  return arg === undefined ? fcntlRaw(fd, cmd) : fcntlRaw(fd, cmd, 'int', arg);
}

/** flock(2), for advisory locks shared with the `flock` command. */
export const flock = lib.func('int flock(int fd, int operation)') as (fd: Fd, operation: number) => number;

const errnoLocation = lib.func('int *__errno_location()') as () => bigint;
const strerrorRaw = lib.func('const char *strerror(int errnum)') as (errnum: number) => string;

/** The calling thread's errno. Read it immediately after the call that failed. */
export function errno(): number {
  return koffi.decode(errnoLocation(), 'int') as number;
}

/** strerror(3): the C library's description of an errno value. */
export function strerror(errnum: number): string {
  return strerrorRaw(errnum);
}

/** Converts a `ssize_t` result (number, or bigint beyond 2^53) to a number. */
export function toNumber(result: SsizeT): number {
  return typeof result === 'bigint' ? Number(result) : result;
}

// koffi knows the platform's errno names; where two names share a value
// (EAGAIN/EWOULDBLOCK, ENOTSUP/EOPNOTSUPP) the first one listed wins.
const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(koffi.os.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

/** Errno values used by name in the kernel edge, from the platform's table. */
export const Errno = {
  EPERM: errnoValue('EPERM'),
  EBADF: errnoValue('EBADF'),
  EINTR: errnoValue('EINTR'),
  EAGAIN: errnoValue('EAGAIN'),
  EACCES: errnoValue('EACCES'),
  EEXIST: errnoValue('EEXIST'),
  EINVAL: errnoValue('EINVAL'),
  ENOENT: errnoValue('ENOENT'),
  EPROTO: errnoValue('EPROTO'),
  ENOBUFS: errnoValue('ENOBUFS'),
  ETIMEDOUT: errnoValue('ETIMEDOUT'),
  EWOULDBLOCK: errnoValue('EWOULDBLOCK'),
  ELOOP: errnoValue('ELOOP'),
  EXDEV: errnoValue('EXDEV'),
  ENOTDIR: errnoValue('ENOTDIR'),
  EINPROGRESS: errnoValue('EINPROGRESS'),
} as const;

function errnoValue(name: string): number {
  const value = koffi.os.errno[name];
  if (value === undefined)
    throw new ContidRangeError(`Cannot find errno "${name}": koffi does not know it`, 'ERR_OUT_OF_RANGE');
  return value;
}

/** The symbolic name of an errno value (`'EPERM'`), or `'E<number>'` if unknown. */
export function errnoName(errnum: number): ErrnoCode {
  return (errnoNames.get(errnum) as ErrnoCode | undefined) ?? `E${errnum}`;
}

/** Options for {@link SyscallError}. */
export interface SyscallErrorOptions {
  /** Why it failed, in words; defaults to strerror(errno) in lower case. */
  readonly reason?: string;
  readonly cause?: unknown;
}

/**
 * A system call, or a kernel reply carrying an errno, failed.
 *
 * `code` is the errno name and is what callers match on; `errno` is its
 * number. The message says what was attempted, why it failed and the code:
 * "Cannot register as the audit daemon: another daemon is registered (EEXIST)".
 *
 * Codes the kernel edge produces on purpose, beyond the raw errno of a call:
 *
 * | code        | meaning                                                       |
 * |-------------|---------------------------------------------------------------|
 * | `ETIMEDOUT` | the kernel did not answer a netlink request in time           |
 * | `EPROTO`    | the kernel answered with a message contid cannot make sense of |
 */
export class SyscallError extends ContidError<ErrnoCode> {
  /** The errno number, e.g. 17. */
  readonly errno: number;

  /**
   * @param action What failed, as the start of a sentence: "Cannot open the audit socket".
   * @param errnum The errno value (positive).
   */
  constructor(action: string, errnum: number, options: SyscallErrorOptions = {}) {
    const code = errnoName(errnum);
    const reason = options.reason ?? lowerFirst(strerror(errnum));
    super(
      `${action}: ${reason} (${code})`,
      code,
      options.cause === undefined ? {} : { cause: options.cause },
    );
    this.errno = errnum;
  }

  /** Rebuilds an error with a finished message, e.g. one posted by a worker thread. */
  static withMessage(message: string, errnum: number): SyscallError {
    const error = new SyscallError('', errnum);
    error.message = message;
    return error;
  }

  /** Builds the error from the current errno; call right after the failing syscall. */
  static fromErrno(action: string, options?: SyscallErrorOptions): SyscallError {
    return new SyscallError(action, errno(), options);
  }
}

function lowerFirst(text: string): string {
  // Keep acronyms ("RFS specific error") as they are.
  return /^[A-Z][a-z]/.test(text) ? text[0]!.toLowerCase() + text.slice(1) : text;
}
