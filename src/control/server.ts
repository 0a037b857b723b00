/**
 * The control server: a unix socket through which orchestrators ask the
 * daemon to set, grant and read labels (docs/control.md).
 *
 * Each connection's peer is identified once, when it connects, by the
 * kernel (SO_PEERCRED, and SO_PEERPIDFD against pid reuse) and by its /proc
 * entry: privilege is decided then and never raised. Before every request
 * the server checks that the process still runs the program it connected
 * with (peer.ts, readFingerprint), so a caller that execs a setuid program
 * and leaves the connection to a child is refused. Requests on a connection
 * are served one at a time, in order; everything is bounded: the request
 * line, the requests queued per connection, the connections, the time per
 * request, the idle time.
 */
import { parseSinkSpec } from '../route/sink-spec.js';
import { chmodSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { DaemonError, type DaemonApi, type OperationRequest, type OperationResult } from '../daemon/api.js';
import { isContidError } from '../errors.js';
import {
  CallerError,
  changedReason,
  identifyCaller,
  readFingerprint,
  toMarkerCaller,
  type CallerIdentity,
} from './peer.js';
import { closePidfd, peerCredentials, peerPidfd, pidfdAlive, type PeerCredentials } from './peer-syscalls.js';
import {
  actionText,
  ControlRequestError,
  DEFAULT_MAX_REQUEST_BYTES,
  encodeResponse,
  LineFramer,
  parseRequest,
  refusalMessage,
  type ControlErrorCode,
  type ControlRequest,
  type ControlResponse,
} from './protocol.js';
import { ConnectionLimits } from './limits.js';
import { prepareSocketDir, removeStaleSocket } from './socket-path.js';

/** Options for {@link startControlServer}. */
export interface ControlServerOptions {
  /** The socket's path; its directory is created 0700 when missing (see prepareSocketDir). */
  readonly path: string;
  /** Closes the server when aborted. */
  readonly signal?: AbortSignal;
  /** Longest request line (default 64 KiB). */
  readonly maxRequestBytes?: number;
  /**
   * Connections served at once from root, and from all other uids together
   * (default 64 each: root's pool is its own, so other users cannot lock
   * it out); more are answered ERR_TOO_MANY_CONNECTIONS and closed.
   */
  readonly maxConnections?: number;
  /** Connections served at once from any one uid other than 0 (default 16). */
  readonly maxConnectionsPerUid?: number;
  /** Requests read ahead on one connection (default 16); more close it with ERR_TOO_MANY_REQUESTS. */
  readonly maxQueuedRequests?: number;
  /**
   * Absolute deadline for each request (default 30 s): a connection waiting
   * for one must deliver its whole line within this long of the previous
   * answer (or of connecting), and an answer must be taken by the client
   * within this long; bytes trickled in do not extend it. The connection is
   * closed otherwise (ERR_REQUEST_TIMEOUT).
   */
  readonly requestDeadlineMs?: number;
  /** Told about internal errors (a failing DaemonApi); the caller only gets ERR_INTERNAL. */
  readonly onError?: (error: unknown) => void;
  /** How a caller is identified from its credentials (tests); default reads /proc. */
  readonly identify?: (cred: PeerCredentials) => CallerIdentity;
  /** How a caller's fingerprint is read again before each request (tests); default readFingerprint. */
  readonly fingerprint?: (pid: number) => string;
}

/** Counters of a running server. */
export interface ControlServerStats {
  readonly connections: number;
  readonly accepted: number;
  readonly rejectedConnections: number;
  readonly requests: number;
  readonly refused: number;
  readonly errors: number;
}

/** A running control server. */
export interface ControlServer {
  readonly path: string;
  stats(): ControlServerStats;
  /** Stops accepting, aborts requests in flight, closes connections and removes the socket. Idempotent. */
  close(): Promise<void>;
}

interface ServerContext {
  readonly api: DaemonApi;
  readonly maxRequestBytes: number;
  readonly maxQueuedRequests: number;
  readonly requestDeadlineMs: number;
  readonly onError: (error: unknown) => void;
  readonly identify: (cred: PeerCredentials) => CallerIdentity;
  readonly fingerprint: (pid: number) => string;
  readonly shutdown: AbortSignal;
  readonly counters: { requests: number; refused: number; errors: number };
}

/**
 * Listens on `options.path` and serves `api`. Resolves once listening.
 *
 * @throws {ControlSocketError} when the directory is unsafe or another daemon listens on the path.
 */
export async function startControlServer(
  api: DaemonApi,
  options: ControlServerOptions,
): Promise<ControlServer> {
  const path = options.path;
  prepareSocketDir(path);
  await removeStaleSocket(path);
  const shutdown = new AbortController();
  const counters = { requests: 0, refused: 0, errors: 0 };
  const context: ServerContext = {
    api,
    maxRequestBytes: options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES,
    maxQueuedRequests: options.maxQueuedRequests ?? 16,
    requestDeadlineMs: options.requestDeadlineMs ?? 30_000,
    onError: options.onError ?? (() => undefined),
    identify: options.identify ?? ((cred) => identifyCaller(cred)),
    fingerprint: options.fingerprint ?? ((pid) => readFingerprint(pid)),
    shutdown: shutdown.signal,
    counters,
  };
  const limits = new ConnectionLimits({
    maxConnections: options.maxConnections ?? 64,
    maxConnectionsPerUid: options.maxConnectionsPerUid ?? 16,
  });
  const connections = new Set<Connection>();
  let accepted = 0;
  let rejectedConnections = 0;

  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    const turnAway = (code: ControlErrorCode, why: string): void => {
      rejectedConnections++;
      finish(socket, { ok: false, code, message: `Cannot accept the connection: ${why} (${code})` }, context);
    };
    if (shutdown.signal.aborted) {
      turnAway('ERR_SHUTTING_DOWN', 'the daemon is shutting down');
      return;
    }
    const peer = readPeer(socket);
    const uid = peer.cred?.uid ?? UNKNOWN_UID;
    const refusal = limits.admit(uid);
    if (refusal !== null) {
      if (peer.pidfd !== null) closePidfd(peer.pidfd);
      turnAway('ERR_TOO_MANY_CONNECTIONS', refusal);
      return;
    }
    accepted++;
    const connection = new Connection(socket, context, peer);
    connections.add(connection);
    socket.once('close', () => {
      connections.delete(connection);
      limits.release(uid);
      connection.dispose();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // The directory is the gate (0700 by default); the socket itself is open so
  // that an administrator can admit delegated orchestrators by opening the directory.
  chmodSync(path, 0o666);
  server.on('error', (error) => {
    context.onError(error);
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      shutdown.abort();
      server.close(() => {
        resolve();
      });
      for (const connection of connections) connection.shutdown();
      try {
        unlinkSync(path);
      } catch {
        // Already gone (removed by an administrator): nothing to clean up.
      }
    });
    return closing;
  };
  if (options.signal !== undefined) {
    if (options.signal.aborted) await close();
    else options.signal.addEventListener('abort', () => void close(), { once: true });
  }
  return {
    path,
    stats: () => ({ connections: connections.size, accepted, rejectedConnections, ...counters }),
    close,
  };
}

/** How long a stopping server waits for a client to take its last answers. */
const SHUTDOWN_GRACE_MS = 1000;

/** Counted as a uid of its own when SO_PEERCRED cannot be read (never root's). */
const UNKNOWN_UID = -1;

/** What the kernel says about the process at the other end, read once at accept. */
interface Peer {
  readonly cred: PeerCredentials | null;
  readonly pidfd: number | null;
  /** Why `cred` is null. */
  readonly error: CallerError | null;
}

/** SO_PEERCRED and SO_PEERPIDFD of an accepted socket. */
function readPeer(socket: Socket): Peer {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) {
    const error = new CallerError('cannot identify the caller: no socket descriptor', 'ERR_CALLER_UNKNOWN');
    return { cred: null, pidfd: null, error };
  }
  try {
    const cred = peerCredentials(fd);
    return { cred, pidfd: peerPidfd(fd), error: null };
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return {
      cred: null,
      pidfd: null,
      error: new CallerError(`cannot identify the caller: ${why}`, 'ERR_CALLER_UNKNOWN', { cause: error }),
    };
  }
}

/**
 * Sends a last answer and closes the connection once it is written. A
 * client that neither reads it nor closes its end (the server allows half
 * open connections) loses the connection at the request deadline anyway.
 */
function finish(socket: Socket, response: ControlResponse, context: ServerContext): void {
  socket.pause();
  const timer = setTimeout(() => socket.destroy(), context.requestDeadlineMs);
  socket.once('close', () => {
    clearTimeout(timer);
  });
  socket.end(encodeResponse(response), () => socket.destroy());
}

/** One client connection: frames lines, serves them in order, one at a time. */
class Connection {
  readonly #socket: Socket;
  readonly #context: ServerContext;
  readonly #framer: LineFramer;
  readonly #queue: string[] = [];
  #identity: CallerIdentity | null = null;
  #pidfd: number | null;
  #callerError: CallerError | null = null;
  #busy = false;
  #ending = false;
  /** Runs out when the client takes too long to send a request or take an answer. */
  #deadline: NodeJS.Timeout | undefined;

  constructor(socket: Socket, context: ServerContext, peer: Peer) {
    this.#socket = socket;
    this.#context = context;
    this.#framer = new LineFramer(context.maxRequestBytes);
    this.#pidfd = peer.pidfd;
    this.#identify(peer);
    socket.on('data', (chunk: Buffer) => {
      this.#onData(chunk);
    });
    socket.on('end', () => {
      this.#ending = true;
      if (!this.#busy && this.#queue.length === 0) this.#close();
    });
    socket.on('error', () => {
      // A client that goes away mid-answer (EPIPE, ECONNRESET) ends only its own connection.
      socket.destroy();
    });
    socket.once('close', () => {
      clearTimeout(this.#deadline);
    });
    this.#armDeadline('request');
    socket.resume();
  }

  /**
   * The caller's identity, from its credentials at connect() and its /proc
   * entry, established once, at accept: privilege is decided here and never
   * re-read.
   */
  #identify(peer: Peer): void {
    if (peer.cred === null) {
      this.#callerError = peer.error ?? new CallerError('cannot identify the caller', 'ERR_CALLER_UNKNOWN');
      return;
    }
    try {
      const identity = this.#context.identify(peer.cred);
      this.#checkAlive(peer.cred.pid);
      this.#identity = identity;
    } catch (error) {
      if (!(error instanceof CallerError)) throw error;
      this.#callerError = error;
    }
  }

  /** Proves, through the pidfd, that what was read from /proc belongs to the process that connected. */
  #checkAlive(pid: number): void {
    if (this.#pidfd !== null && !pidfdAlive(this.#pidfd)) {
      throw new CallerError(`the caller (pid ${pid}) has exited`, 'ERR_CALLER_GONE');
    }
  }

  /**
   * Starts the deadline for the client's next move: a whole request line,
   * or taking the answer just written. It is never extended by partial
   * progress (a byte of a line, a few bytes of an answer read).
   */
  #armDeadline(what: 'request' | 'answer'): void {
    clearTimeout(this.#deadline);
    const ms = this.#context.requestDeadlineMs;
    this.#deadline = setTimeout(() => {
      if (what === 'answer' || this.#socket.writableLength > 0) {
        // The client does not read: there is no way to tell it.
        this.#socket.destroy();
        return;
      }
      this.#queue.length = 0;
      finish(
        this.#socket,
        {
          ok: false,
          code: 'ERR_REQUEST_TIMEOUT',
          message: `Cannot read a request: no complete request line within ${ms} ms (ERR_REQUEST_TIMEOUT)`,
        },
        this.#context,
      );
    }, ms);
  }

  /**
   * Ends the connection once the answers written so far are taken, or at
   * the deadline if the client does not take them.
   */
  #close(): void {
    this.#armDeadline('answer');
    this.#socket.end(() => this.#socket.destroy());
  }

  #onData(chunk: Buffer): void {
    let lines: string[];
    try {
      lines = this.#framer.push(chunk);
    } catch (error) {
      if (!(error instanceof ControlRequestError)) throw error;
      // The rest of the stream cannot be resynchronised: answer and close.
      this.#queue.length = 0;
      clearTimeout(this.#deadline);
      finish(this.#socket, { ok: false, code: error.code, message: error.message }, this.#context);
      return;
    }
    for (const line of lines) if (line.trim() !== '') this.#queue.push(line);
    if (this.#queue.length > this.#context.maxQueuedRequests) {
      this.#queue.length = 0;
      clearTimeout(this.#deadline);
      finish(
        this.#socket,
        {
          ok: false,
          code: 'ERR_TOO_MANY_REQUESTS',
          message: `More than ${this.#context.maxQueuedRequests} requests sent ahead of their answers`,
        },
        this.#context,
      );
      return;
    }
    if (this.#queue.length > 0) void this.#drain();
  }

  async #drain(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    clearTimeout(this.#deadline);
    this.#socket.pause();
    try {
      while (this.#queue.length > 0 && !this.#socket.destroyed) {
        const line = this.#queue.shift()!;
        const response = await this.#serve(line);
        if (this.#socket.destroyed || this.#socket.writableEnded) break;
        if (!this.#socket.write(encodeResponse(response))) {
          this.#armDeadline('answer');
          await new Promise<void>((resolve) => {
            this.#socket.once('drain', resolve);
            this.#socket.once('close', resolve);
          });
          clearTimeout(this.#deadline);
        }
      }
    } finally {
      this.#busy = false;
    }
    if (this.#socket.destroyed || this.#socket.writableEnded) return;
    if (this.#ending) {
      this.#close();
      return;
    }
    this.#armDeadline('request');
    this.#socket.resume();
  }

  async #serve(line: string): Promise<ControlResponse> {
    const counters = this.#context.counters;
    counters.requests++;
    let request: ControlRequest;
    try {
      request = parseRequest(line);
    } catch (error) {
      if (!(error instanceof ControlRequestError)) throw error;
      counters.errors++;
      return {
        ok: false,
        code: error.code,
        message: error.message,
        ...(error.id === undefined ? {} : { id: error.id }),
      };
    }
    const head = {
      op: request.op,
      ...(request.id === undefined ? {} : { id: request.id }),
      ...('pid' in request ? { pid: request.pid } : {}),
    };
    const echo = request.id === undefined ? {} : { id: request.id };
    const pid = 'pid' in request ? request.pid : undefined;
    let caller: CallerIdentity;
    try {
      caller = this.#caller();
    } catch (error) {
      counters.errors++;
      if (!(error instanceof CallerError)) throw error;
      return {
        ok: false,
        ...head,
        code: error.code,
        message: `${actionText(request.op, pid)}: ${error.message}`,
      };
    }
    try {
      const response = await this.#dispatch(request, caller);
      if (!response.ok) counters.refused++;
      return response.ok ? { ...response, ...echo } : { ...head, ...response };
    } catch (error) {
      counters.errors++;
      const failure = describeFailure(error, this.#context.shutdown.aborted);
      if (failure.code === 'ERR_INTERNAL') this.#context.onError(error);
      return {
        ok: false,
        ...head,
        code: failure.code,
        message: `${actionText(request.op, pid)}: ${failure.why} (${failure.detail ?? failure.code})`,
      };
    }
  }

  /**
   * The identity established at connect, once the caller is shown to still
   * be the same process running the same program with the same ids.
   */
  #caller(): CallerIdentity {
    const identity = this.#identity;
    if (identity === null) {
      throw this.#callerError ?? new CallerError('cannot identify the caller', 'ERR_CALLER_UNKNOWN');
    }
    if (this.#context.fingerprint(identity.pid) !== identity.fingerprint) {
      throw new CallerError(changedReason(identity.pid), 'ERR_CALLER_CHANGED');
    }
    this.#checkAlive(identity.pid);
    return identity;
  }

  async #dispatch(request: ControlRequest, caller: CallerIdentity): Promise<ControlResponse> {
    const api = this.#context.api;
    switch (request.op) {
      case 'status':
      case 'get': {
        // Reads are privileged (docs/design.md). A delegated orchestrator could in
        // principle read its own descendants, but the DaemonApi cannot say
        // whether a pid descends from the caller, so only privileged callers read.
        if (!caller.privileged) {
          return {
            ok: false,
            errno: 'EPERM',
            message: refusalMessage(
              request.op,
              'pid' in request ? request.pid : undefined,
              'EPERM',
              READ_EPERM,
            ),
          };
        }
        if (request.op === 'status') return { ok: true, op: 'status', status: api.status() };
        const label = api.get(request.pid);
        if (label === null) {
          return { ok: false, errno: 'ESRCH', message: refusalMessage('get', request.pid, 'ESRCH') };
        }
        return { ok: true, op: 'get', pid: request.pid, contid: label.contid };
      }
      case 'set':
      case 'grant': {
        // Where a container's events are copied is the host's decision, never the tenant's.
        if (request.op === 'set' && request.sinks !== undefined && !caller.privileged) {
          return {
            ok: false,
            errno: 'EPERM',
            message: refusalMessage('set', request.pid, 'EPERM', SINK_EPERM),
          };
        }
        const result = await this.#submit(request, caller);
        if (result.errno !== null) {
          return {
            ok: false,
            errno: result.errno,
            message: refusalMessage(request.op, request.pid, result.errno),
            record: result.op.body,
          };
        }
        return {
          ok: true,
          op: request.op,
          pid: request.pid,
          contid: request.op === 'set' ? request.contid : result.op.contid,
          record: result.op.body,
        };
      }
    }
  }

  #submit(
    request: ControlRequest & { op: 'set' | 'grant' },
    caller: CallerIdentity,
  ): Promise<OperationResult> {
    // name and meta describe the container: the set marker carries them.
    const operation: OperationRequest = {
      op: request.op,
      pid: request.pid,
      caller: toMarkerCaller(caller),
      ...(request.op === 'set'
        ? {
            contid: request.contid,
            ...(request.name === undefined ? {} : { name: request.name }),
            ...(request.meta === undefined ? {} : { meta: request.meta }),
            ...(request.owner === undefined ? {} : { owner: request.owner }),
            ...(request.create === true ? { create: true } : {}),
            ...(request.sinks === undefined ? {} : { sinks: request.sinks.map((s) => parseSinkSpec(s)) }),
          }
        : {}),
    };
    const controller = new AbortController();
    const onShutdown = (): void => {
      controller.abort(this.#context.shutdown.reason);
    };
    this.#context.shutdown.addEventListener('abort', onShutdown, { once: true });
    // The daemon owns the operation's deadline (submit-timeout): it fails
    // the request with ETIMEDOUT when the marker does not come back.
    const aborted = new Promise<never>((_resolve, reject) => {
      controller.signal.addEventListener(
        'abort',
        () => {
          reject(new DaemonError('Cannot complete the operation: it was aborted', 'ABORT_ERR'));
        },
        { once: true },
      );
    });
    return Promise.race([this.#context.api.submit(operation, controller.signal), aborted]).finally(() => {
      this.#context.shutdown.removeEventListener('abort', onShutdown);
    });
  }

  /** Ends the connection on server shutdown. */
  shutdown(): void {
    this.#socket.end(() => this.#socket.destroy());
    // The daemon is stopping: a client that does not read is not waited for long.
    const timer = setTimeout(() => this.#socket.destroy(), SHUTDOWN_GRACE_MS);
    this.#socket.once('close', () => {
      clearTimeout(timer);
    });
  }

  /** Releases the pidfd once the socket is closed. */
  dispose(): void {
    if (this.#pidfd !== null) {
      closePidfd(this.#pidfd);
      this.#pidfd = null;
    }
  }
}

/**
 * What a failed DaemonApi call means for the caller, by the DaemonError's
 * `code`. For ERR_KERNEL the cause carries the errno the kernel gave when
 * the marker was sent (EPERM without CAP_AUDIT_WRITE, ECONNREFUSED,
 * ENOBUFS…). Any other error is internal.
 */
export function describeFailure(
  error: unknown,
  shuttingDown: boolean,
): { code: ControlErrorCode; why: string; detail?: string } {
  const code = error instanceof DaemonError ? error.code : null;
  if (shuttingDown || code === 'ERR_SHUTTING_DOWN') {
    return { code: 'ERR_SHUTTING_DOWN', why: 'the daemon is shutting down' };
  }
  switch (code) {
    case 'ETIMEDOUT':
      return { code: 'ETIMEDOUT', why: 'the daemon did not read the operation back from the kernel in time' };
    case 'ERR_BAD_OPERATION':
      return { code: 'ERR_BAD_REQUEST', why: 'the daemon cannot carry it in a marker' };
    case 'ERR_KERNEL': {
      const cause = (error as DaemonError).cause;
      const errno = isContidError(cause) ? cause.code : 'EIO';
      return {
        code: 'ERR_KERNEL',
        why: `the kernel refused the daemon's marker with ${errno}`,
        detail: `ERR_KERNEL ${errno}`,
      };
    }
    default:
      return { code: 'ERR_INTERNAL', why: 'internal error in the daemon' };
  }
}

const READ_EPERM = 'reads need CAP_AUDIT_CONTROL in the initial user namespace';
const SINK_EPERM = 'naming sinks needs CAP_AUDIT_CONTROL in the initial user namespace';
