/**
 * FileSink: appends whole events to a file, with size rotation in auditd's
 * style (`audit.log`, `audit.log.1` … `audit.log.<numLogs-1>`, the oldest
 * dropped), a mode for new files, fsync on flush and reopen() for SIGHUP
 * after logrotate.
 *
 * With `root`, the path is inside that directory (a container's root
 * filesystem, or /proc/PID/root) and is resolved without following any
 * link the container could have planted (safe-path.ts). The file itself is
 * first opened O_PATH and checked (a regular file with one link: not a
 * FIFO that would block, not a device node, not a hard link to a file the
 * container wants overwritten), then reopened for writing through that
 * very handle, so nothing can be swapped in between.
 *
 * A failed open or write is counted and retried with backoff; meanwhile the
 * queue fills, and past its bound a `drop` sink drops.
 */
import { ContidRangeError } from '../errors.js';
import { closeSync, fchmodSync, fstatSync, fsync, openSync, writev, writevSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Errno, errno } from '../kernel/libc.js';
import { O, renameat } from '../kernel/openat2.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { QueuedSink } from './queued-sink.js';
import { openDirectory, openIn, syscallFailure, treePath, type TreePath } from './safe-path.js';
import { SinkError, type SinkOptions, type SinkStats } from './sink.js';

const fsyncAsync = promisify(fsync);
function writevAsync(fd: number, buffers: Buffer[]): Promise<number> {
  return new Promise((resolve, reject) => {
    writev(fd, buffers, (error, written) => {
      if (error === null) resolve(written);
      else reject(error);
    });
  });
}

/** writev(2) takes at most IOV_MAX (1024) buffers. */
const MAX_IOV = 1024;
const MAX_BATCH_BYTES = 4 * 1024 * 1024;

/** Options of {@link FileSink}. */
export interface FileSinkOptions extends SinkOptions {
  /** An absolute host path, or, with `root`, a path inside it. */
  readonly path: string;
  /** A directory the path is inside, resolved without following links in it. */
  readonly root?: string;
  /** Mode of a new file (default 0o600; not changed on an existing one). */
  readonly mode?: number;
  /** Mode of new directories (default 0o700). */
  readonly dirMode?: number;
  /** Rotate before the file would pass this size; 0 (default) never rotates (auditd's max_log_file). */
  readonly maxFileBytes?: number;
  /** Files kept, the current one included (default 5, at least 2; auditd's num_logs). */
  readonly numLogs?: number;
  /** Delays between failed opens or writes (default 100 ms doubling to 5 s). */
  readonly retry?: BackoffOptions;
  /**
   * Write on the calling thread (writev(2) there) instead of libuv's pool:
   * no hand-over to a pool thread and back per write, but a disk that
   * stalls stalls the caller. Only for a file on the host's own disk (the
   * host log, as auditd writes its log), never inside a container's root,
   * which the container could make block. Default false.
   */
  readonly writeOnThread?: boolean;
}

/** {@link FileSink} counters beyond the common ones. */
export interface FileSinkStats extends SinkStats {
  /** Size of the current file. */
  readonly fileBytes: number;
  readonly rotations: number;
  /** reopen() calls that opened the path again. */
  readonly reopens: number;
  readonly fsyncs: number;
}

/** A sink that appends to a file. */
export class FileSink extends QueuedSink {
  readonly kind = 'file';
  readonly #where: TreePath;
  readonly #mode: number;
  readonly #dirMode: number;
  readonly #maxFileBytes: number;
  readonly #numLogs: number;
  readonly #backoff: Backoff;
  readonly #writeOnThread: boolean;

  #dirfd = -1;
  #fd = -1;
  #size = 0;
  /** Rotate before the size passes this (moves up after a failed rotation). */
  #rotateAt: number;
  /** Bytes of the head chunk already written (after a short write). */
  #headOffset = 0;

  #running = false;
  #stopped = false;
  #sleeper: AbortController | undefined;
  #inflight: Promise<unknown> | undefined;
  /** fsync and close of file descriptors, one at a time, so none is closed under another. */
  #serial: Promise<void> = Promise.resolve();
  #reopenWanted = false;
  #reopenWaiters: (() => void)[] = [];

  #rotations = 0;
  #reopens = 0;
  #fsyncs = 0;

  /**
   * Opens the file at once (a failure is counted in stats() and retried
   * when there is something to write). Throws only for invalid options.
   */
  constructor(options: FileSinkOptions) {
    const where = treePath(options.path, options.root);
    super(
      options.root === undefined ? options.path : `${options.root}/${where.dir.concat(where.name).join('/')}`,
      options,
    );
    this.#where = where;
    this.#mode = options.mode ?? 0o600;
    this.#dirMode = options.dirMode ?? 0o700;
    this.#maxFileBytes = options.maxFileBytes ?? 0;
    this.#numLogs = options.numLogs ?? 5;
    this.#writeOnThread = options.writeOnThread === true && options.root === undefined;
    if (!Number.isSafeInteger(this.#maxFileBytes) || this.#maxFileBytes < 0) {
      throw new ContidRangeError(
        `Cannot use maxFileBytes ${this.#maxFileBytes}: it must be 0 or more`,
        'ERR_OUT_OF_RANGE',
      );
    }
    if (!Number.isSafeInteger(this.#numLogs) || this.#numLogs < 2) {
      throw new ContidRangeError(
        `Cannot use numLogs ${this.#numLogs}: it must be 2 or more`,
        'ERR_OUT_OF_RANGE',
      );
    }
    this.#rotateAt = this.#maxFileBytes;
    this.#backoff = new Backoff({ initialMs: 100, maxMs: 5000, ...options.retry });
    this.#open();
  }

  override stats(): FileSinkStats {
    return {
      ...super.stats(),
      fileBytes: this.#size,
      rotations: this.#rotations,
      reopens: this.#reopens,
      fsyncs: this.#fsyncs,
    };
  }

  /**
   * Opens the path again and writes there from the next event on (after
   * logrotate moved the file away: SIGHUP). The old file is synced and
   * closed. A failure is counted and the old file kept. Never rejects.
   */
  reopen(): Promise<void> {
    if (this.closeRequested) return Promise.resolve();
    this.#reopenWanted = true;
    const done = new Promise<void>((resolve) => this.#reopenWaiters.push(resolve));
    this.#sleeper?.abort();
    this.#kick();
    return done;
  }

  protected onQueued(): void {
    this.#kick();
  }

  protected abortTransport(): void {
    this.#stopped = true;
    this.#sleeper?.abort();
  }

  protected async release(): Promise<void> {
    this.#stopped = true;
    this.#sleeper?.abort();
    await this.#inflight?.catch(() => undefined);
    const fd = this.#fd;
    const dirfd = this.#dirfd;
    this.#fd = -1;
    this.#dirfd = -1;
    await this.#retire(fd, dirfd);
    this.#resolveReopens();
  }

  protected override syncDestination(): Promise<void> {
    return this.#serially(async () => {
      if (this.#fd >= 0) await this.#fsync(this.#fd);
    });
  }

  // --- the write loop -----------------------------------------------------

  #kick(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    // #run handles what it expects; anything else is counted, never thrown at the process.
    this.#run().catch((error: unknown) => {
      this.#running = false;
      this.fail(SinkError.from(`Cannot write ${this.#where.label}`, error));
    });
  }

  async #run(): Promise<void> {
    // Writes made in the same turn of the event loop go out in one writev.
    await new Promise((resolve) => setImmediate(resolve));
    for (;;) {
      if (this.#stopped || (this.queueLength === 0 && !this.#reopenWanted)) {
        this.#running = false;
        return;
      }
      if (this.#reopenWanted && this.#headOffset === 0) {
        this.#reopenWanted = false;
        if (this.#open()) this.#reopens++;
        this.#resolveReopens();
        continue;
      }
      if (this.#fd < 0 && !this.#open()) {
        await this.#pause();
        continue;
      }
      if (this.queueLength > 0) await this.#writeBatch();
    }
  }

  async #writeBatch(): Promise<void> {
    const limited = this.#maxFileBytes > 0;
    if (
      limited &&
      this.#headOffset === 0 &&
      this.#size > 0 &&
      this.#size + this.chunkAt(0).bytes.length > this.#rotateAt
    ) {
      this.#rotate();
      if (this.#fd < 0) return;
    }
    const buffers: Buffer[] = [];
    let total = 0;
    for (let i = 0; i < this.queueLength && buffers.length < MAX_IOV && total < MAX_BATCH_BYTES; i++) {
      const bytes = this.chunkAt(i).bytes;
      const b = i === 0 ? bytes.subarray(this.#headOffset) : bytes;
      // Rotation happens between events: stop before one that would pass the limit.
      if (i > 0 && limited && this.#size + total + b.length > this.#rotateAt) break;
      buffers.push(b);
      total += b.length;
    }
    let written: number;
    try {
      if (this.#writeOnThread) {
        written = writevSync(this.#fd, buffers);
      } else {
        const pending = writevAsync(this.#fd, buffers);
        this.#inflight = pending;
        written = await pending;
      }
    } catch (error) {
      if (this.#stopped) return;
      this.fail(SinkError.from(`Cannot write ${this.#where.label}`, error));
      await this.#pause();
      return;
    } finally {
      this.#inflight = undefined;
    }
    if (this.#stopped) return;
    this.#backoff.reset();
    this.#size += written;
    this.#settleWritten(written);
  }

  #settleWritten(written: number): void {
    let left = written;
    while (left > 0) {
      const need = this.chunkAt(0).bytes.length - this.#headOffset;
      if (left < need) {
        this.#headOffset += left;
        return;
      }
      left -= need;
      this.#headOffset = 0;
      this.settle(true);
    }
  }

  async #pause(): Promise<void> {
    const sleeper = new AbortController();
    this.#sleeper = sleeper;
    await sleep(this.#backoff.next(), undefined, { signal: sleeper.signal }).catch(() => undefined);
    this.#sleeper = undefined;
  }

  // --- opening and rotating -----------------------------------------------

  /** Opens directory and file; on success they replace the current ones. */
  #open(): boolean {
    let dirfd: number;
    let file: { fd: number; size: number };
    try {
      dirfd = openDirectory(this.#where, { createMode: this.#dirMode });
      try {
        file = this.#openFile(dirfd);
      } catch (error) {
        closeSync(dirfd);
        throw error;
      }
    } catch (error) {
      this.fail(SinkError.from(`Cannot open ${this.#where.label}`, error));
      if (this.#fd < 0) this.setLink('disconnected');
      return false;
    }
    if (this.link === 'disconnected') this.countReconnect();
    void this.#retire(this.#fd, this.#dirfd);
    this.#dirfd = dirfd;
    this.#fd = file.fd;
    this.#size = file.size;
    this.#rotateAt = this.#maxFileBytes;
    this.setLink('open');
    this.#backoff.reset();
    return true;
  }

  /** Creates the file (O_EXCL), or opens the existing one through a checked O_PATH handle. */
  #openFile(dirfd: number): { fd: number; size: number } {
    const { name, label } = this.#where;
    const action = `Cannot open ${label}`;
    for (let attempt = 0; attempt < 3; attempt++) {
      const created = openIn(dirfd, name, O.WRONLY | O.APPEND | O.NOCTTY | O.CREAT | O.EXCL, this.#mode);
      if (created.fd >= 0) {
        // The mode is exact, whatever the umask.
        fchmodSync(created.fd, this.#mode);
        return { fd: created.fd, size: 0 };
      }
      if (created.errno !== Errno.EEXIST) throw syscallFailure(action, created.errno);
      const handle = openIn(dirfd, name, O.PATH);
      if (handle.fd < 0) {
        if (handle.errno === Errno.ENOENT) continue; // removed between the two opens
        throw syscallFailure(action, handle.errno);
      }
      try {
        const st = fstatSync(handle.fd);
        if (!st.isFile()) {
          throw new SinkError(`${action}: it is not a regular file`, 'ERR_NOT_REGULAR_FILE');
        }
        if (st.nlink !== 1) {
          throw new SinkError(`${action}: it has ${st.nlink} hard links`, 'ERR_HARD_LINKED');
        }
        // Through the checked handle: the same inode, whatever the name points to now.
        const fd = openSync(`/proc/self/fd/${handle.fd}`, O.WRONLY | O.APPEND | O.NOCTTY | O.CLOEXEC);
        return { fd, size: st.size };
      } finally {
        closeSync(handle.fd);
      }
    }
    throw new SinkError(`${action}: it keeps disappearing`, 'ENOENT');
  }

  /**
   * Renames `name.(n-2)` → `name.(n-1)` … `name` → `name.1` in the
   * directory (rename never follows a link: a planted one is only moved)
   * and starts a new file. A failure to move the current file is counted,
   * and writing goes on in it until it has grown by another maxFileBytes.
   */
  #rotate(): void {
    const { name, label } = this.#where;
    const dirfd = this.#dirfd;
    for (let i = this.#numLogs - 2; i >= 1; i--) {
      if (renameat(dirfd, `${name}.${i}`, dirfd, `${name}.${i + 1}`) !== 0) {
        const e = errno();
        if (e !== Errno.ENOENT) this.fail(syscallFailure(`Cannot rotate ${label} (generation ${i})`, e));
      }
    }
    if (renameat(dirfd, name, dirfd, `${name}.1`) !== 0) {
      this.fail(syscallFailure(`Cannot rotate ${label}`, errno()));
      this.#rotateAt = this.#size + this.#maxFileBytes;
      return;
    }
    this.#rotations++;
    const old = this.#fd;
    this.#fd = -1;
    void this.#retire(old, -1);
    try {
      const file = this.#openFile(dirfd);
      this.#fd = file.fd;
      this.#size = file.size;
      this.#rotateAt = this.#maxFileBytes;
    } catch (error) {
      // The loop opens the path again, with backoff.
      this.fail(SinkError.from(`Cannot open ${label}`, error));
      this.setLink('disconnected');
    }
  }

  // --- descriptors --------------------------------------------------------

  #serially(fn: () => Promise<void>): Promise<void> {
    const next = this.#serial.then(fn);
    this.#serial = next.catch(() => undefined);
    return next;
  }

  /** Syncs and closes a file (and a directory handle) no longer written. */
  #retire(fd: number, dirfd: number): Promise<void> {
    if (fd < 0 && dirfd < 0) return Promise.resolve();
    return this.#serially(async () => {
      if (fd >= 0) {
        await this.#fsync(fd);
        closeSync(fd);
      }
      if (dirfd >= 0) closeSync(dirfd);
    });
  }

  async #fsync(fd: number): Promise<void> {
    try {
      await fsyncAsync(fd);
      this.#fsyncs++;
    } catch (error) {
      this.fail(SinkError.from(`Cannot sync ${this.#where.label}`, error));
    }
  }

  #resolveReopens(): void {
    const waiters = this.#reopenWaiters;
    this.#reopenWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
