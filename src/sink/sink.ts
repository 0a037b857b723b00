/**
 * The sink contract: one destination of formatted events (a file, a unix
 * socket, a remote auditd). Bytes in, whole events only; a bounded queue;
 * errors counted, never thrown at the writer. docs/sinks.md describes it for
 * users, test/support/sink-contract.ts checks every sink against it.
 */
import { ContidError, type ContidErrorCode } from '../errors.js';

/**
 * What a sink does when its queue is full. `block`: it keeps everything and
 * `write()` returns false until the caller awaits `drained()` (the host log:
 * it never drops). `drop`: it drops the events of that write and counts them
 * (a container's copy: a stalled destination never slows the caller).
 */
export type SinkPolicy = 'block' | 'drop';

/**
 * Where a sink stands: `open` (delivering), `connecting`, `disconnected`
 * (its destination is unreachable; it retries with backoff), `closing`
 * (draining after close()), `closed`.
 */
export type SinkState = 'open' | 'connecting' | 'disconnected' | 'closing' | 'closed';

/** The last error a sink met, as its message and stable code. */
export interface SinkErrorInfo {
  readonly message: string;
  readonly code: string;
}

/**
 * A sink's counters. Every event a sink accepted is, at any time, exactly
 * one of queued, written or dropped: `writtenEvents + droppedEvents +
 * queuedEvents` is the number of events ever passed to write() (the same
 * for bytes).
 */
export interface SinkStats {
  readonly kind: string;
  readonly target: string;
  readonly policy: SinkPolicy;
  readonly state: SinkState;
  /** Accepted and not yet at the destination (including what is in flight). */
  readonly queuedBytes: number;
  readonly queuedEvents: number;
  /** Reached the destination (written to the file, the socket, acknowledged by auditd). */
  readonly writtenBytes: number;
  readonly writtenEvents: number;
  /** Given up: queue full in `drop` mode, lost with a connection, left at close or destroy. */
  readonly droppedBytes: number;
  readonly droppedEvents: number;
  /** Of droppedEvents, those dropped while the destination was unreachable (not open or connected). */
  readonly droppedDisconnectedEvents: number;
  /** Errors met (failed opens, writes, connections...), each counted once. */
  readonly errors: number;
  readonly lastError: SinkErrorInfo | null;
  /** Successful opens or connections after the first one. */
  readonly reconnects: number;
}

/** Options of {@link Sink.flush}. */
export interface FlushOptions {
  /** Stops waiting: the promise rejects with the signal's reason (nothing is dropped). */
  readonly signal?: AbortSignal;
}

/** One destination of formatted events. Bytes in, whole events only. */
export interface Sink {
  /** `file`, `unix`, `remote`... */
  readonly kind: string;
  /** What `contid status` shows: the path, the socket, host:port. */
  readonly target: string;
  /**
   * Queues `bytes`, the whole formatted text of `events` events (auditd
   * text, JSON lines, or auditd's plugin stream with EOE records): a sink
   * never splits a write between two files or connections, so what arrives
   * is whole events. The sink keeps a reference to `bytes` until it is
   * delivered: do not modify it afterwards.
   *
   * Returns false when the queue is at its bound: a `block` sink has queued
   * the bytes and wants the caller to await {@link drained} before writing
   * more; a `drop` sink has dropped these events itself and counted them.
   * After close() or destroy(), the events are dropped and counted. Never
   * throws for anything the destination does.
   */
  write(bytes: Buffer, events: number): boolean;
  /** Resolves once the queue is below its bound again (at once when it is, or when the sink is closed). */
  drained(): Promise<void>;
  /**
   * Resolves when everything written before the call has reached the
   * destination (fsync for files, auditd's acknowledgement for remote) or
   * been dropped and counted. Never rejects, unless `signal` aborts.
   */
  flush(options?: FlushOptions): Promise<void>;
  /**
   * Refuses new writes, delivers what it can within the sink's close
   * timeout, drops (and counts) the rest, then releases every resource.
   * Idempotent: every call returns the same promise. Never rejects.
   */
  close(): Promise<void>;
  /** Stops at once, dropping (and counting) the queue. Idempotent. */
  destroy(error?: Error): void;
  stats(): SinkStats;
}

/** Options every sink takes. */
export interface SinkOptions {
  /** Default `drop`. */
  readonly policy?: SinkPolicy;
  /** The queue's bound in bytes (default 16 MiB). */
  readonly maxQueueBytes?: number;
  /** The queue's bound in events (default 65,536). */
  readonly maxQueueEvents?: number;
  /** How long close() keeps delivering before it drops the rest (default 5,000 ms). */
  readonly closeTimeoutMs?: number;
  /** Called with every error the sink counts (library code never logs). */
  readonly onError?: (error: SinkError) => void;
  /**
   * Called once for each write's bytes when the sink holds them no more:
   * `delivered` when they reached the destination, else dropped (at the
   * write itself when the queue was full or the sink closing, or later).
   * Queued writes settle in the order they were made. The caller may reuse
   * the buffer from then on (contid replay recycles its output buffers).
   */
  readonly onSettled?: (bytes: Buffer, delivered: boolean) => void;
}

/**
 * Writes to a `block` sink and, when that brought it to its bound, waits
 * until it has room again: the backpressure of a caller that loses nothing
 * (the daemon's host log, contid replay's output), which stops producing
 * meanwhile. Never rejects.
 */
export async function writeWithBackpressure(sink: Sink, bytes: Buffer, events: number): Promise<void> {
  if (!sink.write(bytes, events)) await sink.drained();
}

/** Options of {@link SinkError}. */
export interface SinkErrorOptions {
  readonly cause?: unknown;
}

/**
 * An error a sink met and counted. `code` is stable and what callers match
 * on: the errno name for a system error (`ELOOP`, `ECONNREFUSED`, `ENOSPC`,
 * `EPIPE`...), or one of the sink's own codes (docs/sinks.md, "Errors").
 * The message names the target and the cause:
 * `Cannot open "/var/log/c/audit.log" in "/proc/812/root": a path component is a symbolic link (ELOOP)`.
 */
export class SinkError extends ContidError {
  constructor(message: string, code: string, options: SinkErrorOptions = {}) {
    super(message, code as ContidErrorCode, options.cause === undefined ? {} : { cause: options.cause });
  }

  /**
   * Wraps a Node or system error: "`action`: `reason` (`CODE`)". Errors that
   * are already SinkErrors pass through.
   */
  static from(action: string, error: unknown): SinkError {
    if (error instanceof SinkError) return error;
    const code = errorCode(error);
    const reason = errorReason(error);
    return new SinkError(`${action}: ${reason}${reason.endsWith(`(${code})`) ? '' : ` (${code})`}`, code, {
      cause: error,
    });
  }
}

function errorCode(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return 'ERR_SINK';
}

// Node's system errors read "connect ECONNREFUSED 127.0.0.1:60" or
// "ENOSPC: no space left on device, write": keep the words, not the syscall.
function errorReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const m = /^E[A-Z0-9]+: ([^,]+)(?:,|$)/.exec(message);
  if (m !== null) return m[1]!;
  const n = /^\w+ (E[A-Z0-9]+)(?: |$)/.exec(message);
  if (n !== null) return sysReason(n[1]!);
  return message;
}

const REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EPIPE: 'broken pipe',
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network is unreachable',
  ENOTSOCK: 'not a socket',
};

function sysReason(code: string): string {
  return REASONS[code] ?? code.toLowerCase();
}
