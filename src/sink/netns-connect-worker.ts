/**
 * The worker thread of netns-connect.ts: joins a network namespace, then
 * creates and connects one TCP socket there and posts its fd. The thread
 * ends right after, and the namespace change with it.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import {
  Errno,
  close,
  connect,
  errno,
  errnoName,
  setns,
  setsockopt,
  socket,
  strerror,
} from '../kernel/libc.js';
import { SOCK_CLOEXEC, SOL_SOCKET } from '../kernel/socket-constants.js';
import type { NetnsConnectReply, NetnsConnectRequest } from './netns-connect.js';

const CLONE_NEWNET = 0x40000000;
const SOCK_STREAM = 1;
const SO_SNDTIMEO = 21;

function failure(step: 'open' | 'setns' | 'socket' | 'connect', errnum: number): NetnsConnectReply {
  const text = strerror(errnum);
  const code = errnoName(errnum);
  return { step, code, message: `${text[0]!.toLowerCase()}${text.slice(1)} (${code})` };
}

function run(request: NetnsConnectRequest): NetnsConnectReply {
  let nsfd: number;
  try {
    nsfd = openSync(request.netns, constants.O_RDONLY | 0o2000000);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).errno;
    return failure('open', code === undefined ? 2 : -code);
  }
  const joined = setns(nsfd, CLONE_NEWNET);
  const setnsErrno = errno();
  closeSync(nsfd);
  if (joined !== 0) return failure('setns', setnsErrno);
  const fd = socket(request.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return failure('socket', errno());
  // A blocking connect gives up after SO_SNDTIMEO (EINPROGRESS).
  const tv = Buffer.alloc(16);
  tv.writeBigInt64LE(BigInt(Math.floor(request.timeoutMs / 1000)), 0);
  tv.writeBigInt64LE(BigInt((request.timeoutMs % 1000) * 1000), 8);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, tv, tv.length);
  const sa = Buffer.from(request.sockaddr);
  if (connect(fd, sa, sa.length) !== 0) {
    const e = errno();
    close(fd);
    if (e === Errno.EINPROGRESS) {
      return {
        step: 'connect',
        code: 'ETIMEDOUT',
        message: `timed out after ${request.timeoutMs} ms (ETIMEDOUT)`,
      };
    }
    return failure('connect', e);
  }
  // Node makes the socket non-blocking; the timeout has no use beyond connect.
  tv.fill(0);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, tv, tv.length);
  return { fd };
}

parentPort?.postMessage(run(workerData as NetnsConnectRequest));
