/**
 * Creating the daemon's files safely. Its directories (state, keyring, host
 * log) must be its own and closed to everyone else, since whoever can write
 * a directory can replace what is in it: the keyring that proves markers,
 * the host log that is the record of truth. Files are opened without
 * following a symbolic link (O_NOFOLLOW), files it appends to must be its
 * own, and a file replaced through a temporary one is created exclusively
 * (O_EXCL), so that nothing planted at the temporary name is written through.
 */
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { dirname } from 'node:path';
import { ContidError } from '../errors.js';
import { formatKeyringEntry, type KeyringEntry } from '../marker/keyring.js';

/**
 * A directory or file the daemon refuses to use: not a real directory or
 * regular file, owned by another user, or open to others. `code` is
 * `ERR_UNSAFE_PATH`.
 */
export class UnsafePathError extends ContidError<'ERR_UNSAFE_PATH'> {
  constructor(message: string) {
    super(message, 'ERR_UNSAFE_PATH');
  }
}

function euid(): number {
  return process.geteuid?.() ?? 0;
}

/**
 * Why a directory is unsafe for files only its owner may change, or null:
 * it must be a directory (not a link to one), owned by the effective user,
 * and writable by nobody else (no group or other write bit; a sticky bit
 * does not make it safe, since others could still add names to it).
 */
export function unsafeDirectoryReason(st: Stats): string | null {
  if (st.isSymbolicLink()) return 'it is not a directory (a symbolic link)';
  if (!st.isDirectory()) return 'it is not a directory';
  if (st.uid !== euid()) return `it is owned by uid ${st.uid}, not ${euid()}`;
  if ((st.mode & 0o022) !== 0) {
    return `it is writable by its group or others (mode ${(st.mode & 0o777).toString(8)})`;
  }
  return null;
}

/**
 * Creates `dir` (and its parents) with mode 0700 when missing, and checks
 * that it is safe (see {@link unsafeDirectoryReason}); `what` names it in
 * the error ("state directory").
 *
 * @throws {UnsafePathError}
 */
export function ensurePrivateDirectory(dir: string, what: string): void {
  // A no-op for an existing directory. mkdir's mode is filtered by the
  // umask, which only ever removes bits.
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    // Something that is not a directory is in the way: said below.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTDIR') throw error;
  }
  const reason = unsafeDirectoryReason(lstatSync(dir));
  if (reason !== null) throw new UnsafePathError(`Cannot use "${dir}" as the ${what}: ${reason}`);
}

/** Why an open file the daemon writes is unsafe, or null: it must be a regular file of its own. */
function unsafeFileReason(st: Stats): string | null {
  if (!st.isFile()) return 'it is not a regular file';
  if (st.uid !== euid()) return `it is owned by uid ${st.uid}, not ${euid()}`;
  return null;
}

/**
 * Opens `path` for appending, creating it with `mode`, never through a
 * symbolic link (ELOOP), and checks that it is a regular file of the
 * daemon's own. Returns the fd.
 *
 * @throws {UnsafePathError} for a file that is not its own.
 */
export function openAppendNoFollow(path: string, mode: number): number {
  const fd = openSync(
    path,
    constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
    mode,
  );
  try {
    const reason = unsafeFileReason(fstatSync(fd));
    if (reason !== null) throw new UnsafePathError(`Cannot write "${path}": ${reason}`);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return fd;
}

/**
 * Replaces `path` with `text` through `PATH.tmp`, which is created
 * exclusively and without following a link (O_CREAT|O_EXCL|O_NOFOLLOW);
 * one left by an earlier run (a crash, or a link someone planted) is
 * removed first, never written through. Synced before the rename, so the
 * file is either the old one or the whole new one.
 */
export function replaceFile(path: string, text: string, mode: number): void {
  const tmp = `${path}.tmp`;
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  let fd: number;
  try {
    fd = openSync(tmp, flags, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // unlink removes a symbolic link itself, not what it points to.
    unlinkSync(tmp);
    fd = openSync(tmp, flags, mode);
  }
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Reads `path` without following a symbolic link (ELOOP); null when it does not exist. */
export function readFileNoFollow(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Appends a start's line to the keyring (directory 0700, file 0600, both
 * the daemon's own) and syncs it before the start marker is sent, so the
 * secret that verifies it is on disk first.
 *
 * @throws {UnsafePathError} for a keyring, or its directory, that is not the daemon's alone.
 */
export function appendKeyring(path: string, entry: KeyringEntry): void {
  ensurePrivateDirectory(dirname(path), 'keyring directory');
  const fd = openSync(
    path,
    constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    const st = fstatSync(fd);
    const reason =
      unsafeFileReason(st) ??
      ((st.mode & 0o077) !== 0 ? `mode ${(st.mode & 0o777).toString(8)} is not 600` : null);
    if (reason !== null) throw new UnsafePathError(`Cannot use keyring "${path}": ${reason}`);
    if (st.size === 0) writeSync(fd, '# contid keyring v1: <start-id> <daemon-pid|-> <secret hex>\n');
    writeSync(fd, formatKeyringEntry(entry));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A compact UTC time for start ids and set-aside files: 20261128T175500Z. */
export function compactTime(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.[0-9]+Z$/, 'Z');
}
