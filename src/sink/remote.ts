/**
 * RemoteSink: sends whole events to an auditd listening on its
 * `tcp_listen_port` (auditd's remote logging, what audisp-remote speaks in
 * its "managed" mode: remote-protocol.ts). Each record goes as one message
 * with a sequence id, and counts as written once auditd answers that it
 * logged it; flush() therefore means "in the remote log". Up to `window`
 * records are in flight at once.
 *
 * With `netns` (/proc/PID/ns/net of a container's process) the connection
 * is made from inside that network namespace (netns-connect.ts), so an
 * auditd inside the container is reached on its loopback address and the
 * container publishes no port.
 *
 * After a broken connection, or auditd's ENDING reply (it shuts down), the
 * sink reconnects with exponential backoff and sends again every record not
 * yet acknowledged: delivery is at least once (a record logged whose reply
 * was lost is logged twice), and events stay whole. A record auditd answers
 * with DISKFULL or DISKERROR was not logged: its event counts as dropped.
 * A record longer than auditd's limit (8,954 bytes) would wedge the
 * connection: its write is refused, dropped and counted.
 */
import { ContidRangeError } from '../errors.js';
import { closeSync } from 'node:fs';
import { connect, Socket } from 'node:net';
import type { BackoffOptions } from './backoff.js';
import { connectInNetns } from './netns-connect.js';
import { ReconnectingSink } from './reconnecting-sink.js';
import {
  encodeRecords,
  FATAL_MASK,
  MAX_RECORD_BYTES,
  MessageType,
  nextSeq,
  ProtocolError,
  REPLY_MASK,
  ReplyReader,
  WARN_MASK,
  type Reply,
  recordRanges,
} from './remote-protocol.js';
import { SinkError, type SinkOptions, type SinkStats } from './sink.js';

/** Options of {@link RemoteSink}. */
export interface RemoteSinkOptions extends SinkOptions {
  /** auditd's address: an IP literal with `netns`, else also a host name. */
  readonly host: string;
  /** auditd's tcp_listen_port (default 60). */
  readonly port?: number;
  /** A network namespace file (/proc/PID/ns/net) to connect from. */
  readonly netns?: string;
  /** Records sent and not yet acknowledged, at most (default 512). */
  readonly window?: number;
  /** Default 5,000 ms. */
  readonly connectTimeoutMs?: number;
  /** Delays between connection attempts (default 100 ms doubling to 30 s). */
  readonly reconnect?: BackoffOptions;
}

/** {@link RemoteSink} counters beyond the common ones. */
export interface RemoteSinkStats extends SinkStats {
  readonly netns: string | null;
  readonly sentRecords: number;
  readonly ackedRecords: number;
  /** Records that were in flight when a connection broke, sent again on the next one. */
  readonly resentRecords: number;
  readonly unackedRecords: number;
  /** Replies saying auditd logged the record but its disk is low. */
  readonly diskLowReplies: number;
}

/** A sink that sends records to a remote auditd. */
export class RemoteSink extends ReconnectingSink {
  readonly kind = 'remote';
  readonly #host: string;
  readonly #port: number;
  readonly #netns: string | undefined;
  readonly #window: number;
  readonly #connectTimeoutMs: number;
  readonly #label: string;
  /** Each write's record offsets, computed once when it is written. */
  readonly #ranges = new WeakMap<Buffer, number[]>();

  #reader = new ReplyReader();
  #connecting = false;

  // Cursors, relative to the head of the queue: the next record to send,
  // and how many records of the head chunk auditd acknowledged.
  #sendChunk = 0;
  #sendRecord = 0;
  #ackRecord = 0;
  #headFailed = false;
  #unacked = 0;
  #nextSeq = 1;
  #expectSeq = 1;

  #sent = 0;
  #acked = 0;
  #resent = 0;
  #diskLow = 0;

  constructor(options: RemoteSinkOptions) {
    const port = options.port ?? 60;
    super(`${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`, options);
    this.#host = options.host;
    this.#port = port;
    this.#netns = options.netns;
    this.#window = options.window ?? 512;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    if (!Number.isSafeInteger(this.#window) || this.#window < 1) {
      throw new ContidRangeError(
        `Cannot use window ${this.#window}: it must be a positive integer`,
        'ERR_OUT_OF_RANGE',
      );
    }
    this.#label =
      this.#netns === undefined
        ? `auditd at "${this.target}"`
        : `auditd at "${this.target}" in network namespace "${this.#netns}"`;
    this.start(options.reconnect);
  }

  override write(bytes: Buffer, events: number): boolean {
    // Records are found only in what will be queued: a full drop sink drops at no cost.
    if (this.accepts(bytes, events) && !this.#ranges.has(bytes)) {
      const { ranges, tooLong } = recordRanges(bytes);
      if (tooLong !== undefined) {
        const length = ranges[2 * tooLong + 1]! - ranges[2 * tooLong]!;
        this.refuse(
          bytes,
          events,
          new SinkError(
            `Cannot send to ${this.#label}: a record of ${length} bytes is over auditd's limit of ${MAX_RECORD_BYTES}`,
            'ERR_RECORD_TOO_LONG',
          ),
        );
        return false;
      }
      this.#ranges.set(bytes, ranges);
    }
    return super.write(bytes, events);
  }

  override stats(): RemoteSinkStats {
    return {
      ...super.stats(),
      netns: this.#netns ?? null,
      sentRecords: this.#sent,
      ackedRecords: this.#acked,
      resentRecords: this.#resent,
      unackedRecords: this.#unacked,
      diskLowReplies: this.#diskLow,
    };
  }

  protected onQueued(): void {
    this.schedulePump();
    this.stopIfDrained();
  }

  // --- connection ---------------------------------------------------------

  /** #connect, with anything unexpected counted rather than thrown at the process. */
  protected openConnection(): void {
    this.#connect().catch((error: unknown) => {
      this.#connecting = false;
      this.fail(SinkError.from(`Cannot connect to ${this.#label}`, error));
      this.retry();
    });
  }

  async #connect(): Promise<void> {
    if (this.stopped || this.#connecting) return;
    this.#connecting = true;
    this.setLink('connecting');
    let socket: Socket;
    try {
      socket =
        this.#netns === undefined ? await this.#connectHere() : await this.#connectInNetns(this.#netns);
    } catch (error) {
      this.#connecting = false;
      if (this.stopped) return;
      this.fail(SinkError.from(`Cannot connect to ${this.#label}`, error));
      this.retry();
      return;
    }
    this.#connecting = false;
    if (this.stopped) {
      socket.destroy();
      return;
    }
    this.#adopt(socket);
  }

  #connectHere(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: this.#host, port: this.#port });
      socket.setTimeout(this.#connectTimeoutMs, () => {
        socket.destroy(
          Object.assign(new Error(`timed out after ${this.#connectTimeoutMs} ms`), { code: 'ETIMEDOUT' }),
        );
      });
      socket.once('connect', () => {
        socket.setTimeout(0);
        socket.removeListener('error', reject);
        resolve(socket);
      });
      socket.once('error', reject);
    });
  }

  async #connectInNetns(netns: string): Promise<Socket> {
    const fd = await connectInNetns({
      netns,
      label: `auditd at "${this.target}"`,
      host: this.#host,
      port: this.#port,
      timeoutMs: this.#connectTimeoutMs,
    });
    if (this.stopped) {
      closeSync(fd);
      throw new SinkError('Cannot connect: the sink is closed', 'ERR_SINK_CLOSED');
    }
    return new Socket({ fd, readable: true, writable: true });
  }

  #adopt(socket: Socket): void {
    this.socket = socket;
    this.#reader = new ReplyReader();
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.on('data', (data: Buffer) => {
      if (socket !== this.socket) return;
      let replies: Reply[];
      try {
        replies = this.#reader.push(data);
      } catch (error) {
        this.#protocolError(socket, error instanceof ProtocolError ? error.message : String(error));
        return;
      }
      for (const reply of replies) {
        if (socket !== this.socket) return;
        this.#onReply(socket, reply);
      }
      this.pump();
    });
    socket.on('error', (error) => {
      if (socket !== this.socket) return;
      this.fail(SinkError.from(`Cannot send to ${this.#label}`, error));
    });
    socket.once('close', () => {
      this.closed(socket);
    });
    this.connected();
    this.pump();
  }

  protected onDisconnect(): void {
    // Whatever auditd did not acknowledge goes again on the next connection.
    this.#resent += this.#unacked;
    this.#unacked = 0;
    this.#sendChunk = 0;
    this.#sendRecord = this.#ackRecord;
    this.#expectSeq = this.#nextSeq;
  }

  #protocolError(socket: Socket, message: string): void {
    this.fail(new SinkError(`Cannot talk to ${this.#label}: ${message}`, 'ERR_REMOTE_PROTOCOL'));
    socket.destroy();
  }

  // --- records and replies ------------------------------------------------

  #recordCount(i: number): number {
    return (this.#ranges.get(this.chunkAt(i).bytes)?.length ?? 0) / 2;
  }

  #onReply(socket: Socket, reply: Reply): void {
    if (reply.type === MessageType.ENDING) {
      this.fail(new SinkError(`Cannot send to ${this.#label}: it is shutting down`, 'ERR_REMOTE_ENDING'));
      socket.destroy();
      return;
    }
    if ((reply.type & REPLY_MASK) === 0 || this.#unacked === 0 || reply.seq !== this.#expectSeq) {
      this.#protocolError(
        socket,
        `unexpected reply type 0x${reply.type.toString(16)} sequence ${reply.seq} (expected ${this.#unacked === 0 ? 'none' : this.#expectSeq})`,
      );
      return;
    }
    this.#expectSeq = nextSeq(this.#expectSeq);
    this.#unacked--;
    this.#acked++;
    if ((reply.type & FATAL_MASK) !== 0) {
      this.#headFailed = true;
      const code = reply.type === MessageType.DISKFULL ? 'ERR_REMOTE_DISK_FULL' : 'ERR_REMOTE_DISK_ERROR';
      const why = reply.text !== '' ? reply.text : `reply type 0x${reply.type.toString(16)}`;
      this.fail(new SinkError(`Cannot log a record in ${this.#label}: ${why}`, code));
    } else if ((reply.type & WARN_MASK) !== 0) {
      this.#diskLow++;
    }
    this.#ackRecord++;
    this.#settleAcknowledged();
  }

  /** Settles head chunks all of whose records auditd acknowledged (or that have none). */
  #settleAcknowledged(): void {
    while (this.queueLength > 0 && this.#ackRecord >= this.#recordCount(0)) {
      if (this.#sendChunk > 0) this.#sendChunk--;
      else this.#sendRecord = 0;
      this.#ackRecord = 0;
      const failed = this.#headFailed;
      this.#headFailed = false;
      this.settle(!failed);
    }
  }

  protected pump(): void {
    this.#settleAcknowledged();
    const socket = this.socket;
    if (socket === undefined) return;
    let corked = false;
    while (this.#unacked < this.#window && this.#sendChunk < this.queueLength) {
      const chunk = this.chunkAt(this.#sendChunk);
      const ranges = this.#ranges.get(chunk.bytes) ?? [];
      const count = ranges.length / 2;
      const to = Math.min(count, this.#sendRecord + this.#window - this.#unacked);
      if (to > this.#sendRecord) {
        if (!corked) socket.cork();
        corked = true;
        const { buffer, nextSeq: next } = encodeRecords(
          chunk.bytes,
          { ranges, from: this.#sendRecord, to },
          this.#nextSeq,
        );
        socket.write(buffer);
        this.#nextSeq = next;
        this.#sent += to - this.#sendRecord;
        this.#unacked += to - this.#sendRecord;
        this.#sendRecord = to;
      }
      if (this.#sendRecord === count) {
        this.#sendChunk++;
        this.#sendRecord = 0;
      }
    }
    if (corked) socket.uncork();
  }
}
