/**
 * The host log: every event, appended to one file. It never drops: a write
 * that fails (full disk, I/O error) is counted, reported and retried with
 * backoff, and meanwhile the daemon stops reading, so the kernel holds
 * records in its backlog and, past the backlog limit, slows the audited
 * processes (backlog_wait_time), as auditd does with `disk_full_action =
 * SUSPEND`. Only a stop gives up on bytes that still cannot be written, and
 * counts them.
 */
import { close, fdatasync, fsync, write } from 'node:fs';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensurePrivateDirectory, openAppendNoFollow } from './files.js';
import type { Logger } from './logger.js';
import { dirname } from 'node:path';

function writeAsync(fd: number, buffer: Buffer, offset: number, length: number): Promise<number> {
  return new Promise((resolve, reject) => {
    write(fd, buffer, offset, length, null, (error, written) => {
      if (error === null) resolve(written);
      else reject(error);
    });
  });
}
const fsyncAsync = promisify(fsync);
const fdatasyncAsync = promisify(fdatasync);
const closeAsync = promisify(close);

export interface HostLogStats {
  readonly path: string;
  readonly bytes: number;
  readonly writes: number;
  /** Failed write attempts (each retried). */
  readonly errors: number;
  readonly lastError: string | null;
  /** Milliseconds spent waiting to retry a failed write. */
  readonly blockedMs: number;
  /** Bytes abandoned at stop because they could still not be written. */
  readonly droppedBytes: number;
  readonly fsyncs: number;
  /** Reopens (SIGHUP). */
  readonly reopens: number;
}

export interface HostLogOptions {
  readonly log: Logger;
  /** First retry delay after a failed write; doubles up to 5 s. Default 100 ms. */
  readonly retryMs?: number;
}

const MAX_RETRY_MS = 5000;

/** An append-only file sink with backpressure (each write resolves once on disk's page cache). */
export class HostLog {
  readonly path: string;
  readonly #log: Logger;
  readonly #retryMs: number;
  #fd: number;
  #stopping = false;
  #closed: Promise<void> | undefined;
  #stats = { bytes: 0, writes: 0, errors: 0, blockedMs: 0, droppedBytes: 0, fsyncs: 0, reopens: 0 };
  #lastError: string | null = null;

  private constructor(path: string, fd: number, options: HostLogOptions) {
    this.path = path;
    this.#fd = fd;
    this.#log = options.log;
    this.#retryMs = options.retryMs ?? 100;
  }

  /**
   * Opens (creates 0600, in a 0700 directory when missing) without following
   * links; the directory and the file must be the daemon's alone.
   */
  static open(path: string, options: HostLogOptions): HostLog {
    ensurePrivateDirectory(dirname(path), 'host log directory');
    return new HostLog(path, openAppendNoFollow(path, 0o600), options);
  }

  stats(): HostLogStats {
    return { path: this.path, ...this.#stats, lastError: this.#lastError };
  }

  /**
   * Appends `bytes`; resolves when all are written. Failures are retried
   * until they succeed or {@link close} is called; never rejects.
   */
  async write(bytes: Buffer): Promise<void> {
    let offset = 0;
    let delay = this.#retryMs;
    while (offset < bytes.length) {
      if (this.#fd < 0) {
        this.#stats.droppedBytes += bytes.length - offset;
        return;
      }
      try {
        offset += await writeAsync(this.#fd, bytes, offset, bytes.length - offset);
        this.#stats.writes++;
        if (this.#lastError !== null && delay !== this.#retryMs) {
          this.#log('notice', `Host log "${this.path}" is writable again`);
        }
        delay = this.#retryMs;
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.#stats.errors++;
        if (this.#stats.errors === 1 || message !== this.#lastError || delay === MAX_RETRY_MS) {
          this.#log(
            'error',
            `Cannot write host log "${this.path}": ${message}; reading is paused until it can be written`,
          );
        }
        this.#lastError = message;
        if (this.#stopping) {
          this.#stats.droppedBytes += bytes.length - offset;
          return;
        }
        await sleep(delay);
        this.#stats.blockedMs += delay;
        delay = Math.min(delay * 2, MAX_RETRY_MS);
      }
    }
    this.#stats.bytes += bytes.length;
  }

  /**
   * Opens the path again (after logrotate moved the file away) and writes
   * there from the next write on; the old file is synced and closed once
   * `settled` (the write in flight) is done. A failure to open keeps the old
   * file and is reported. Never throws.
   */
  async reopen(settled: Promise<void> | null): Promise<void> {
    if (this.#stopping || this.#fd < 0) return;
    let fd: number;
    try {
      ensurePrivateDirectory(dirname(this.path), 'host log directory');
      fd = openAppendNoFollow(this.path, 0o600);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.#log('error', `Cannot reopen host log "${this.path}": ${message}; still writing the old file`);
      return;
    }
    const old = this.#fd;
    this.#fd = fd;
    this.#stats.reopens++;
    await settled;
    await fsyncAsync(old).catch(() => undefined);
    await closeAsync(old).catch(() => undefined);
    this.#log('notice', `Reopened host log "${this.path}"`);
  }

  /** Flushes to disk (fdatasync); counted, never throws. */
  async sync(): Promise<void> {
    if (this.#fd < 0) return;
    try {
      await fdatasyncAsync(this.#fd);
      this.#stats.fsyncs++;
    } catch (error) {
      this.#stats.errors++;
      this.#lastError = error instanceof Error ? error.message : String(error);
      this.#log('error', `Cannot sync host log "${this.path}": ${this.#lastError}`);
    }
  }

  /**
   * Stops retrying, fsyncs and closes. Writes still failing give up (and
   * count their bytes as dropped). Idempotent; never throws.
   */
  close(): Promise<void> {
    this.#stopping = true;
    this.#closed ??= (async () => {
      if (this.#fd < 0) return;
      const fd = this.#fd;
      try {
        await fsyncAsync(fd);
        this.#stats.fsyncs++;
      } catch (error) {
        this.#stats.errors++;
        this.#lastError = error instanceof Error ? error.message : String(error);
        this.#log('error', `Cannot sync host log "${this.path}": ${this.#lastError}`);
      }
      this.#fd = -1;
      await closeAsync(fd).catch(() => undefined);
    })();
    return this.#closed;
  }
}
