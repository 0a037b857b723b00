/**
 * ReconnectingSink: what the socket sinks (unix.ts, remote.ts) share. One
 * connection at a time; after a failed attempt or a broken connection, the
 * next attempt waits with exponential backoff, bounded, until the sink is
 * closed and its queue delivered or dropped. Writes made in one synchronous
 * run are sent together at its end.
 *
 * A sink built on it opens its connection in openConnection() (called
 * again after each backoff delay), holds the socket in `socket`, calls
 * connected() once the socket can carry writes and closed(socket) from the
 * socket's 'close' event, and says in onDisconnect() what becomes of the
 * writes in flight.
 */
import type { Socket } from 'node:net';
import { Backoff, type BackoffOptions } from './backoff.js';
import { QueuedSink } from './queued-sink.js';

/** A queued sink over one socket at a time, reconnected with backoff. */
export abstract class ReconnectingSink extends QueuedSink {
  #backoff!: Backoff;
  #socket: Socket | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #everConnected = false;
  #pumpScheduled = false;

  /** Opens a connection; failures are counted and end in retry(). */
  protected abstract openConnection(): void;
  /** The connection is gone: settle or rewind what was in flight on it. */
  protected abstract onDisconnect(): void;
  /** Hands queued chunks to the socket, when there is one. */
  protected abstract pump(): void;

  /** Sets the delays between attempts and makes the first; the end of a subclass's constructor. */
  protected start(reconnect: BackoffOptions | undefined): void {
    this.#backoff = new Backoff(reconnect);
    this.openConnection();
  }

  /** The current socket, connecting or connected; undefined between connections. */
  protected get socket(): Socket | undefined {
    return this.#socket;
  }

  protected set socket(socket: Socket | undefined) {
    this.#socket = socket;
  }

  /** True once no more connections will be made. */
  protected get stopped(): boolean {
    return this.#stopped;
  }

  protected abortTransport(): void {
    this.stop();
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  protected async release(): Promise<void> {
    this.stop();
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket === undefined || socket.destroyed) return;
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.end(() => socket.destroy());
    await closed;
  }

  /** Makes no more connections. */
  protected stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Stops once close() was asked for and nothing is left to deliver. */
  protected stopIfDrained(): void {
    if (this.closeRequested && this.queueLength === 0) this.stop();
  }

  /** The socket carries writes: counts a reconnection and starts the backoff again. */
  protected connected(): void {
    if (this.#everConnected) this.countReconnect();
    this.#everConnected = true;
    this.setLink('open');
    this.#backoff.reset();
  }

  /** The 'close' of `socket`: when it is the current one, disconnects and tries again later. */
  protected closed(socket: Socket): void {
    if (socket !== this.#socket) return;
    this.#socket = undefined;
    this.setLink('disconnected');
    this.onDisconnect();
    this.stopIfDrained();
    this.retry();
  }

  /** Tries to connect again after the next backoff delay, unless stopped or already waiting. */
  protected retry(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.setLink('disconnected');
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.openConnection();
    }, this.#backoff.next());
  }

  /**
   * Writes made in one synchronous run (a batch of events from the router)
   * go to the socket together, in one system call, at the end of the run.
   */
  protected schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      this.pump();
    });
  }
}
