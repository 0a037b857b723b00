/**
 * Paths inside a directory tree that someone else controls (a container's
 * root filesystem): every component is opened with openat2 relative to the
 * one before, with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS, so a symbolic link planted anywhere on the way
 * (`var/log -> /etc`, `audit.log -> /etc/shadow`) makes the open fail with
 * ELOOP instead of being followed, and nothing can lead outside the root.
 * Directories are created the same way, one mkdirat at a time.
 *
 * Without a root the directory is a host path, trusted as the host's own
 * configuration (it may go through the host's links, /var/run -> /run); the
 * last component is still never a link.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { Errno, errno, errnoName, strerror } from '../kernel/libc.js';
import {
  mkdirat,
  O,
  openat2,
  RESOLVE_BENEATH,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
} from '../kernel/openat2.js';
import { SinkError } from './sink.js';

/** The resolve rules for every component under a root. */
export const RESOLVE_SAFE = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

/** A file's place: the directory to resolve, the root it is inside, its name. */
export interface TreePath {
  /** The root directory on the host, when the path is inside one. */
  readonly root: string | undefined;
  /** The directory's components under the root, or the host directory without one. */
  readonly dir: readonly string[];
  /** The last component. */
  readonly name: string;
  /** For messages: `"var/log/audit.log" in "/proc/812/root"`, or the host path. */
  readonly label: string;
}

/**
 * Splits `path` into directory and name, inside `root` when given (then
 * `path` is relative to it; a leading `/` is allowed). Refuses `.`, `..`,
 * empty names and NUL bytes: a path in a tree is spelled plainly.
 */
export function treePath(path: string, root: string | undefined): TreePath {
  if (path.includes('\0')) throw invalid(path, 'it contains a NUL byte');
  if (root === undefined && !isAbsolute(path)) throw invalid(path, 'it is not absolute and no root is given');
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.some((p) => p === '.' || p === '..')) throw invalid(path, 'it contains "." or ".."');
  const name = parts.pop();
  if (name === undefined) throw invalid(path, 'it names no file');
  const label = root === undefined ? `"${path}"` : `"${parts.concat(name).join('/')}" in "${root}"`;
  return { root, dir: root === undefined ? ['/' + parts.join('/')] : parts, name, label };
}

function invalid(path: string, why: string): SinkError {
  return new SinkError(`Cannot use path "${path}": ${why}`, 'ERR_INVALID_PATH');
}

/** Options of {@link openDirectory}. */
export interface OpenDirectoryOptions {
  /** Create missing directories with this mode (else ENOENT). */
  readonly createMode?: number;
}

/**
 * Opens the directory of `where` (an O_PATH fd, for the *at calls),
 * creating missing components when asked. Throws a {@link SinkError} that
 * says which component failed and why.
 */
export function openDirectory(where: TreePath, options: OpenDirectoryOptions = {}): number {
  const action = `Cannot open ${where.label}`;
  if (where.root === undefined) {
    const dir = where.dir[0]!;
    try {
      if (options.createMode !== undefined) mkdirSync(dir, { recursive: true, mode: options.createMode });
      return openSync(dir, O.PATH | O.DIRECTORY | O.CLOEXEC);
    } catch (error) {
      throw SinkError.from(action, error);
    }
  }
  let fd: number;
  try {
    // The root itself is the host's choice (it may be /proc/PID/root, a magic link to follow).
    fd = openSync(where.root, O.PATH | O.DIRECTORY | O.CLOEXEC);
  } catch (error) {
    throw SinkError.from(`${action}: cannot open the root`, error);
  }
  for (const component of where.dir) {
    if (options.createMode !== undefined && mkdirat(fd, component, options.createMode) !== 0) {
      const e = errno();
      if (e !== Errno.EEXIST) {
        closeSync(fd);
        throw syscallFailure(action, e);
      }
    }
    const next = openat2(fd, component, {
      flags: O.PATH | O.DIRECTORY | O.CLOEXEC,
      resolve: RESOLVE_SAFE,
    });
    const e = errno();
    closeSync(fd);
    if (next < 0) throw syscallFailure(action, e);
    fd = next;
  }
  return fd;
}

/**
 * openat2 of `name` in `dirfd` under {@link RESOLVE_SAFE}: the fd, or -1
 * and the errno of the failure.
 */
export function openIn(dirfd: number, name: string, flags: number, mode = 0): { fd: number; errno: number } {
  const fd = openat2(dirfd, name, { flags: flags | O.CLOEXEC, mode, resolve: RESOLVE_SAFE });
  return { fd, errno: fd < 0 ? errno() : 0 };
}

/** What the errno of a refused open means here, in words. */
export function syscallFailure(action: string, errnum: number): SinkError {
  const code = errnoName(errnum);
  return new SinkError(`${action}: ${reason(errnum)} (${code})`, code);
}

function reason(errnum: number): string {
  switch (errnum) {
    case Errno.ELOOP:
      return 'a path component is a symbolic link';
    case Errno.EXDEV:
      return 'the path leads outside the root';
    case Errno.ENOTDIR:
      return 'a path component is not a directory';
    default: {
      const text = strerror(errnum);
      return /^[A-Z][a-z]/.test(text) ? text[0]!.toLowerCase() + text.slice(1) : text;
    }
  }
}
