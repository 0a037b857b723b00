/**
 * The host log: every event, appended to one file, as the first sink on
 * the sink contract (src/sink/file.ts) with the `block` policy. It never
 * drops: a write that fails (full disk, I/O error) is counted, reported and
 * retried with backoff while the events wait in its queue; past the queue's
 * bound the daemon awaits drained() and stops reading, so the kernel holds
 * records in its backlog and, past the backlog limit, slows the audited
 * processes (backlog_wait_time), as auditd does with `disk_full_action =
 * SUSPEND`. Only a stop gives up on events that still cannot be written
 * within the close timeout, and counts them. HostLogWriter formats the
 * daemon's events for it and coalesces writes across batches.
 */
import { closeSync } from 'node:fs';
import { dirname } from 'node:path';
import { EventEncoder, type OutputFormat } from '../pipeline/encoder.js';
import type { LabelledEvent } from '../policy/labeller.js';
import { FileSink, type FileSinkStats } from '../sink/file.js';
import { writeWithBackpressure, type SinkError } from '../sink/sink.js';
import { ensurePrivateDirectory, openAppendNoFollow } from './files.js';
import type { Logger } from './logger.js';

/** Formatted bytes that may wait for the disk before the daemon stops reading. */
export const HOST_LOG_HIGH_WATER = 1024 * 1024;

/** How long a stop keeps writing what is queued before it gives up (and counts it). */
const CLOSE_TIMEOUT_MS = 10_000;

/** Formatted bytes that are written at once, however recent the last write. */
const WRITE_AT_BYTES = 64 * 1024;

/** The host log's counters: the sink's, and its path. */
export interface HostLogStats extends FileSinkStats {
  readonly path: string;
}

/** Options of {@link HostLog.open}. */
export interface HostLogOptions {
  readonly log: Logger;
}

/** The host log: a `block` FileSink, with the daemon's messages. */
export class HostLog {
  readonly path: string;
  readonly #sink: FileSink;
  readonly #log: Logger;
  /** writtenBytes when writing failed, while it has not recovered; null when writing works. */
  #pausedAt: number | null = null;
  #lastCode: string | null = null;

  private constructor(path: string, options: HostLogOptions) {
    this.path = path;
    this.#log = options.log;
    this.#sink = new FileSink({
      path,
      policy: 'block',
      mode: 0o600,
      dirMode: 0o700,
      maxQueueBytes: HOST_LOG_HIGH_WATER,
      closeTimeoutMs: CLOSE_TIMEOUT_MS,
      // One write per read of the kernel, on the daemon's thread: a trip
      // through libuv's pool and back costs more than the write.
      writeOnThread: true,
      onError: (error) => {
        this.#onError(error);
      },
    });
  }

  /**
   * Opens (creates 0600, in a 0700 directory when missing) without following
   * links; the directory and the file must be the daemon's alone.
   *
   * @throws {Error} when the directory or the file is unsafe or cannot be opened.
   */
  static open(path: string, options: HostLogOptions): HostLog {
    ensurePrivateDirectory(dirname(path), 'host log directory');
    // The checks (no link, a regular file of the daemon's) come before the
    // sink opens it, so that a bad path refuses the start.
    closeSync(openAppendNoFollow(path, 0o600));
    return new HostLog(path, options);
  }

  stats(): HostLogStats {
    return { path: this.path, ...this.#sink.stats() };
  }

  /**
   * Queues `bytes` (the text of `events` events). Resolves at once while
   * the queue is below its bound, else once it is again: the caller stops
   * reading meanwhile. Never rejects.
   */
  async write(bytes: Buffer, events: number): Promise<void> {
    await writeWithBackpressure(this.#sink, bytes, events);
    this.#noteRecovery();
  }

  /** Resolves once everything queued is written and fsynced. Never rejects. */
  async flush(): Promise<void> {
    await this.#sink.flush();
    this.#noteRecovery();
  }

  /**
   * Opens the path again (after logrotate moved the file away) and writes
   * there from the next event on; the old file is synced and closed. A
   * failure to open keeps the old file and is reported. Never rejects.
   */
  async reopen(): Promise<void> {
    const before = this.#sink.stats().reopens;
    await this.#sink.reopen();
    if (this.#sink.stats().reopens > before) this.#log('notice', `Reopened host log "${this.path}"`);
    else this.#log('error', `Cannot reopen host log "${this.path}": still writing the old file`);
  }

  /** Writes what it can within the close timeout, fsyncs and closes. Idempotent; never rejects. */
  close(): Promise<void> {
    return this.#sink.close();
  }

  #onError(error: SinkError): void {
    this.#pausedAt ??= this.#sink.stats().writtenBytes;
    if (error.code === this.#lastCode) return;
    this.#lastCode = error.code;
    // "Cannot write "/var/log/contid/audit.log": no space left on device (ENOSPC)": the reason.
    const reason = error.message.replace(/^Cannot [a-z]+ "[^"]*": /, '');
    this.#log(
      'error',
      `Cannot write host log "${this.path}": ${reason}; reading is paused until it can be written`,
    );
  }

  #noteRecovery(): void {
    if (this.#pausedAt === null) return;
    const s = this.#sink.stats();
    if (s.state !== 'open' || s.writtenBytes <= this.#pausedAt) return;
    this.#pausedAt = null;
    this.#lastCode = null;
    this.#log('notice', `Host log "${this.path}" is writable again`);
  }
}

/** Options of {@link HostLogWriter}. */
export interface HostLogWriterOptions {
  readonly format: OutputFormat;
}

/**
 * Formats events for a {@link HostLog} and writes them, coalesced across
 * the batches of one read of the kernel: each write is a trip through
 * libuv's pool and back, which costs more than the few events a batch
 * brings at a low rate (auditd's `freq` trades the same way, in records).
 */
export class HostLogWriter {
  readonly #hostLog: HostLog;
  readonly #encoder: EventEncoder;

  constructor(hostLog: HostLog, options: HostLogWriterOptions) {
    this.#hostLog = hostLog;
    this.#encoder = new EventEncoder(options.format, { bufferBytes: 16 * 1024 });
  }

  /** Formats an event; flush() writes it. */
  write(le: LabelledEvent): void {
    this.#encoder.write(le);
  }

  /**
   * Writes what was formatted, unless `more` batches of the same read are
   * already waiting (their events then go in the same write) and less than
   * WRITE_AT_BYTES is formatted. Backpressure: the host log resolves at
   * once while its queue is below its bound, else once the disk caught up
   * (the caller stops reading meanwhile; the kernel holds the records).
   * With `all`, writes everything and waits until it is written and fsynced.
   */
  async flush(all = false, more = false): Promise<void> {
    const length = this.#encoder.length;
    if (length > 0 && (all || !more || length >= WRITE_AT_BYTES)) {
      const events = this.#encoder.events;
      await this.#hostLog.write(this.#encoder.take(), events);
    }
    if (all) await this.#hostLog.flush();
  }
}
