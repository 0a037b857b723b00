/**
 * The control socket's place on disk: a directory only its owner (root) can
 * enter, so the directory, not the socket's mode, decides who may connect,
 * and nobody else can replace the socket with their own.
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { unsafeDirectoryReason } from '../daemon/files.js';
import { ContidError } from '../errors.js';

/** Where `contid run` listens and the commands connect by default. */
export { DEFAULT_CONTROL_SOCKET } from '../daemon/config.js';

/** The socket's directory or path is unsafe or taken. */
export class ControlSocketError extends ContidError<
  'ERR_UNSAFE_SOCKET_DIR' | 'EADDRINUSE' | 'ERR_NOT_A_SOCKET'
> {}

/**
 * Creates the socket's directory (mode 0700) when missing, and checks that
 * an existing one is a real directory owned by this user that nobody else
 * can write to. An administrator may open it to others (0711, 0755) for
 * delegated orchestrators; every request is still checked by SO_PEERCRED.
 *
 * @throws {ControlSocketError} ERR_UNSAFE_SOCKET_DIR.
 */
export function prepareSocketDir(path: string): void {
  const dir = dirname(path);
  let created = false;
  try {
    lstatSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    created = true;
  }
  // mkdir's mode is filtered by the umask; set it exactly.
  if (created) chmodSync(dir, 0o700);
  const reason = unsafeDirectoryReason(lstatSync(dir));
  if (reason !== null) {
    throw new ControlSocketError(
      `Cannot use ${JSON.stringify(dir)} for the control socket: ${reason}`,
      'ERR_UNSAFE_SOCKET_DIR',
    );
  }
}

/**
 * Removes a stale socket left by a daemon that died; refuses when another
 * daemon still answers on it or the path is not a socket.
 *
 * @throws {ControlSocketError} EADDRINUSE or ERR_NOT_A_SOCKET.
 */
export async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!st.isSocket()) {
    throw new ControlSocketError(
      `Cannot listen on ${JSON.stringify(path)}: it exists and is not a socket`,
      'ERR_NOT_A_SOCKET',
    );
  }
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => {
      resolve(false);
    });
  });
  if (alive) {
    throw new ControlSocketError(
      `Cannot listen on ${JSON.stringify(path)}: another contid daemon is listening there`,
      'EADDRINUSE',
    );
  }
  unlinkSync(path);
}
