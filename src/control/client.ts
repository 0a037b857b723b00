/**
 * The client side of the control protocol: one request, one answer, over a
 * fresh connection. Used by `contid set|get|grant|status` and `contid oci-hook`.
 */
import { connect } from 'node:net';
import { ContidError } from '../errors.js';
import type { ControlRequest, ControlResponse } from './protocol.js';

/** Why a request got no answer. */
export type ControlClientErrorCode =
  /** Nothing listens on the socket (ENOENT, ECONNREFUSED). */
  | 'ERR_DAEMON_NOT_RUNNING'
  /** The socket's directory is closed to this user. */
  | 'EACCES'
  /** No answer in time. */
  | 'ETIMEDOUT'
  /** The daemon closed the connection without answering, or answered garbage. */
  | 'ERR_BAD_RESPONSE';

/** A request that got no answer; `code` says why. */
export class ControlClientError extends ContidError<ControlClientErrorCode> {}

/** Options for {@link controlRequest}. */
export interface ControlRequestOptions {
  /** Gives up after this long (default 15 s: the server's own limit is 10 s). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Longest answer accepted (a status is a few KiB). */
const MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * Sends `request` to the daemon at `path` and resolves with its answer,
 * refusals included (`ok: false`). Turned away because the daemon serves
 * as many connections as it may, it tries again until the timeout.
 *
 * @throws {ControlClientError} when there is no answer.
 */
export async function controlRequest(
  path: string,
  request: ControlRequest,
  options: ControlRequestOptions = {},
): Promise<ControlResponse> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  // A daemon serving as many connections as it may answers at once with
  // ERR_TOO_MANY_CONNECTIONS: a burst (containers starting together) waits
  // for a free slot, within the timeout, rather than failing.
  for (let delay = 25; ; delay = Math.min(delay * 2, 1000)) {
    const response = await requestOnce(path, request, { ...options, timeoutMs: deadline - Date.now() });
    const busy = !response.ok && response.code === 'ERR_TOO_MANY_CONNECTIONS';
    if (!busy || Date.now() + delay >= deadline || options.signal?.aborted === true) return response;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

function requestOnce(
  path: string,
  request: ControlRequest,
  options: ControlRequestOptions & { readonly timeoutMs: number },
): Promise<ControlResponse> {
  const timeoutMs = options.timeoutMs;
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const chunks: Buffer[] = [];
    let bytes = 0;
    let settled = false;
    const finish = (error: ControlClientError | null, response?: ControlResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (error !== null) reject(error);
      else resolve(response!);
    };
    const onAbort = (): void => {
      finish(new ControlClientError('Cannot get an answer: the request was aborted', 'ETIMEDOUT'));
    };
    const timer = setTimeout(() => {
      finish(
        new ControlClientError(
          `Cannot get an answer from the contid daemon at "${path}": none within ${timeoutMs} ms`,
          'ETIMEDOUT',
        ),
      );
    }, timeoutMs);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('connect', () => {
      socket.write(`${JSON.stringify(request)}\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      const nl = chunk.indexOf(0x0a);
      chunks.push(nl < 0 ? chunk : chunk.subarray(0, nl));
      bytes += chunk.length;
      if (nl >= 0) {
        const parsed = parseResponse(Buffer.concat(chunks).toString('utf8'), path);
        if (parsed instanceof ControlClientError) finish(parsed);
        else finish(null, parsed);
      } else if (bytes > MAX_RESPONSE_BYTES) {
        finish(
          new ControlClientError(`Cannot read the answer from "${path}": it is too long`, 'ERR_BAD_RESPONSE'),
        );
      }
    });
    socket.on('end', () => {
      finish(
        new ControlClientError(
          `Cannot get an answer from the contid daemon at "${path}": it closed the connection without answering`,
          'ERR_BAD_RESPONSE',
        ),
      );
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      finish(connectError(path, error));
    });
  });
}

function parseResponse(text: string, path: string): ControlResponse | ControlClientError {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && typeof (value as { ok?: unknown }).ok === 'boolean') {
      return value as ControlResponse;
    }
  } catch {
    // Falls through to the error below, which quotes the answer.
  }
  return new ControlClientError(
    `Cannot read the answer from "${path}": it is not a response (${JSON.stringify(text.slice(0, 200))})`,
    'ERR_BAD_RESPONSE',
  );
}

function connectError(path: string, error: NodeJS.ErrnoException): ControlClientError {
  switch (error.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return new ControlClientError(
        `Cannot reach the contid daemon: nothing listens on "${path}" (${error.code})`,
        'ERR_DAEMON_NOT_RUNNING',
        { cause: error },
      );
    case 'EACCES':
      return new ControlClientError(
        `Cannot reach the contid daemon at "${path}": permission denied (EACCES); the control socket is root-only`,
        'EACCES',
        { cause: error },
      );
    default:
      return new ControlClientError(
        `Cannot reach the contid daemon at "${path}": ${error.message}`,
        'ERR_BAD_RESPONSE',
        { cause: error },
      );
  }
}
