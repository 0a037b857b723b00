/**
 * UnixSocketSink: streams whole events to a unix stream socket, in the
 * bytes it is given: auditd's plugin format (one record per line, EOE
 * records included) lets anything that reads an audispd plugin stream read
 * it. It connects at once, and after any failure or disconnection (EPIPE,
 * ECONNRESET, the reader restarting) reconnects with exponential backoff,
 * bounded, until closed.
 *
 * With `root`, the socket's path is inside that directory (a container's
 * root filesystem, or /proc/PID/root): it is resolved without following
 * links (safe-path.ts) to an O_PATH handle checked to be a socket, and
 * connect() goes through /proc/self/fd/N of that handle, so the container
 * cannot point it anywhere else.
 *
 * A chunk counts as written once the kernel took it into the socket. The
 * chunks in flight when a connection breaks may have reached the reader
 * only in part: they are counted as dropped, and the next connection starts
 * on an event boundary. Nothing is sent twice.
 */
import { closeSync, fstatSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { O } from '../kernel/openat2.js';
import type { BackoffOptions } from './backoff.js';
import { ReconnectingSink } from './reconnecting-sink.js';
import { openDirectory, openIn, syscallFailure, treePath, type TreePath } from './safe-path.js';
import { SinkError, type SinkOptions } from './sink.js';

/** Options of {@link UnixSocketSink}. */
export interface UnixSocketSinkOptions extends SinkOptions {
  /** The socket: an absolute host path, or, with `root`, a path inside it. */
  readonly path: string;
  /** A directory the path is inside, resolved without following links in it. */
  readonly root?: string;
  /** Delays between connection attempts (default 100 ms doubling to 30 s). */
  readonly reconnect?: BackoffOptions;
}

/** A sink that writes to a unix stream socket. */
export class UnixSocketSink extends ReconnectingSink {
  readonly kind = 'unix';
  readonly #where: TreePath;
  readonly #hostPath: string;
  /** Chunks from the head handed to the socket and not yet acknowledged by its write callback. */
  #inFlight = 0;
  #connected = false;

  constructor(options: UnixSocketSinkOptions) {
    const where = treePath(options.path, options.root);
    super(
      options.root === undefined ? options.path : `${options.root}/${where.dir.concat(where.name).join('/')}`,
      options,
    );
    this.#where = where;
    this.#hostPath = options.path;
    this.start(options.reconnect);
  }

  protected onQueued(): void {
    if (this.#connected) this.schedulePump();
    else this.stopIfDrained();
  }

  protected override abortTransport(): void {
    super.abortTransport();
    this.#connected = false;
    this.#inFlight = 0;
  }

  protected override release(): Promise<void> {
    this.#connected = false;
    return super.release();
  }

  protected openConnection(): void {
    if (this.stopped) return;
    this.setLink('connecting');
    let path: string;
    let handle = -1;
    try {
      ({ path, handle } = this.#resolve());
    } catch (error) {
      this.fail(SinkError.from(`Cannot connect to ${this.#where.label}`, error));
      this.retry();
      return;
    }
    const socket = connect({ path });
    this.socket = socket;
    const releaseHandle = (): void => {
      if (handle >= 0) closeSync(handle);
      handle = -1;
    };
    socket.once('connect', () => {
      releaseHandle();
      this.#onConnect(socket);
    });
    socket.on('error', (error) => {
      if (socket !== this.socket) return;
      const action = this.#connected
        ? `Cannot write to ${this.#where.label}`
        : `Cannot connect to ${this.#where.label}`;
      this.fail(SinkError.from(action, error));
    });
    socket.once('close', () => {
      releaseHandle();
      this.closed(socket);
    });
    // What the reader might send is not for us; reading it keeps its writes from blocking.
    socket.on('data', () => undefined);
  }

  /** The path to connect to: the host path, or /proc/self/fd/N of a checked handle inside the root. */
  #resolve(): { path: string; handle: number } {
    const where = this.#where;
    if (where.root === undefined) return { path: this.#hostPath, handle: -1 };
    const dirfd = openDirectory(where);
    const opened = openIn(dirfd, where.name, O.PATH);
    closeSync(dirfd);
    if (opened.fd < 0) throw syscallFailure(`Cannot open ${where.label}`, opened.errno);
    try {
      if (!fstatSync(opened.fd).isSocket()) {
        throw new SinkError(`Cannot connect to ${where.label}: it is not a socket`, 'ENOTSOCK');
      }
    } catch (error) {
      closeSync(opened.fd);
      throw error;
    }
    return { path: `/proc/self/fd/${opened.fd}`, handle: opened.fd };
  }

  #onConnect(socket: Socket): void {
    if (socket !== this.socket || this.stopped) return;
    this.#connected = true;
    this.connected();
    this.pump();
  }

  protected onDisconnect(): void {
    this.#connected = false;
    // What was in flight may have reached the reader only in part.
    while (this.#inFlight > 0) {
      this.#inFlight--;
      this.settle(false);
    }
  }

  protected pump(): void {
    const socket = this.socket;
    if (socket === undefined || this.#inFlight >= this.queueLength) return;
    socket.cork();
    while (this.#inFlight < this.queueLength) {
      const chunk = this.chunkAt(this.#inFlight++);
      socket.write(chunk.bytes, (error) => {
        if (socket !== this.socket || error != null) return;
        this.#inFlight--;
        this.settle(true);
      });
    }
    socket.uncork();
  }
}
