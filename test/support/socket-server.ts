/**
 * A unix stream socket server for the unix sink tests: it keeps every byte
 * it reads, in order, across connections, and can stop reading (stall), go
 * away and come back.
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A reader on a unix socket path. */
export class SocketServer {
  readonly path: string;
  readonly #chunks: Buffer[] = [];
  readonly #byConnection: Buffer[][] = [];
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  #paused = false;
  #bytes = 0;
  /** Connections accepted so far. */
  connections = 0;

  constructor(path: string) {
    this.path = path;
  }

  async listen(): Promise<void> {
    const server = createServer((socket) => {
      this.connections++;
      this.#sockets.add(socket);
      const mine: Buffer[] = [];
      this.#byConnection.push(mine);
      socket.on('data', (data: Buffer) => {
        mine.push(data);
        this.#chunks.push(data);
        this.#bytes += data.length;
      });
      socket.on('error', () => undefined);
      socket.on('close', () => this.#sockets.delete(socket));
      if (this.#paused) socket.pause();
    });
    this.#server = server;
    server.listen(this.path);
    await once(server, 'listening');
  }

  /** Stops reading: the kernel's buffers fill, then the writer's. */
  stall(): void {
    this.#paused = true;
    for (const s of this.#sockets) s.pause();
  }

  resume(): void {
    this.#paused = false;
    for (const s of this.#sockets) s.resume();
  }

  /** Closes every connection and stops listening (the path is removed). */
  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    const server = this.#server;
    this.#server = undefined;
    if (server !== undefined) await new Promise((resolve) => server.close(resolve));
  }

  /** What was read on connection `i` (from 0), once there are at least `bytes` of it or `waitMs` passed. */
  async connectionReceived(i: number, bytes: number, waitMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + waitMs;
    const read = (): Buffer => Buffer.concat(this.#byConnection[i] ?? []);
    while (read().length < bytes && Date.now() < deadline) await sleep(10);
    return read();
  }

  /** What was read so far, once there are at least `bytes` of it or `waitMs` passed. */
  async received(bytes: number, waitMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + waitMs;
    while (this.#bytes < bytes && Date.now() < deadline) await sleep(10);
    return Buffer.concat(this.#chunks);
  }
}
