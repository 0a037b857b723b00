/**
 * Creating the daemon's files safely: root-only directories, and files
 * opened without following a symbolic link (O_NOFOLLOW), so that nobody
 * who can write a parent directory redirects the daemon's writes.
 */
import {
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  closeSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { formatKeyringEntry, type KeyringEntry } from '../marker/keyring.js';

/**
 * Creates `dir` (and its parents) with `mode` when missing, and checks that
 * it is a real directory, not a link to one.
 */
export function ensureDirectory(dir: string, mode: number): void {
  mkdirSync(dir, { recursive: true, mode });
  const st = lstatSync(dir);
  if (!st.isDirectory()) {
    throw Object.assign(new Error(`Cannot use "${dir}": it is not a directory (a symbolic link?)`), {
      code: 'ENOTDIR',
    });
  }
}

/**
 * Opens `path` for appending, creating it with `mode`, never through a
 * symbolic link, and checks that it is a regular file. Returns the fd.
 */
export function openAppendNoFollow(path: string, mode: number): number {
  const fd = openSync(
    path,
    constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
    mode,
  );
  try {
    if (!fstatSync(fd).isFile()) {
      throw Object.assign(new Error(`Cannot write "${path}": it is not a regular file`), { code: 'EINVAL' });
    }
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return fd;
}

/**
 * Appends a start's line to the keyring (directory 0700, file 0600) and
 * syncs it before the start marker is sent, so the secret that verifies
 * it is on disk first.
 */
export function appendKeyring(path: string, entry: KeyringEntry): void {
  ensureDirectory(dirname(path), 0o700);
  const fd = openAppendNoFollow(path, 0o600);
  try {
    const st = fstatSync(fd);
    if ((st.mode & 0o077) !== 0) {
      throw Object.assign(
        new Error(`Cannot use keyring "${path}": mode ${(st.mode & 0o777).toString(8)} is not 600`),
        { code: 'EPERM' },
      );
    }
    if (st.size === 0) writeSync(fd, '# contid keyring v1: <start-id> <daemon-pid|-> <secret hex>\n');
    writeSync(fd, formatKeyringEntry(entry));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
