/**
 * Where the live daemon's records come from. Every source hands over
 * parsed records in batches, in stream order, to the one assembler:
 *
 * - `unicast`: contid is the registered audit daemon (the kernel sends it
 *   every record and waits for it: backpressure, no loss while it keeps up);
 * - `multicast`: a read-only copy beside a running auditd (the kernel drops
 *   what a slow reader cannot take: ENOBUFS);
 * - `plugin`: auditd's plugin interface, records as text lines on stdin.
 *
 * `next()` resolves with the next batch, or null at the end. The consumer
 * calls it only when it has written the previous batch, so a slow host log
 * stops the reading, and the kernel (unicast) or auditd (plugin) waits.
 */
import type { Readable } from 'node:stream';
import { AuditReader, type AuditReaderStats, type RecordBatch } from '../kernel/reader.js';
import { MARKER_TYPE } from '../marker/format.js';
import { isIssue, parseNetlinkBytes, RecordParser } from '../parse/parser.js';
import type { AuditRecord, ParseIssue } from '../parse/record.js';

export type LiveMode = 'unicast' | 'multicast' | 'plugin';

/** Counters of a source, for `contid status`. */
export interface SourceStats {
  readonly mode: LiveMode;
  /** Records (netlink) or lines (plugin) received. */
  readonly messages: number;
  readonly bytes: number;
  /** Messages that were not records. */
  readonly badRecords: number;
  /** Times the kernel dropped records because the socket buffer was full (multicast mostly). */
  readonly enobufs: number;
  /** Times the reader paused because the daemon was behind (back-pressure, not loss). */
  readonly pauses: number;
  /** Netlink datagrams sent by a process rather than the kernel, ignored (an attack, or a broken tool). */
  readonly foreign: number;
  /** Records received and not yet processed. */
  readonly queued: number;
  readonly receiveBufferBytes: number;
  readonly lastIssue: string | null;
}

export interface RecordSource {
  readonly mode: LiveMode;
  next(): Promise<AuditRecord[] | null>;
  stats(): SourceStats;
  /** Records received and not yet returned by next() (stats().queued, without building the stats). */
  queued(): number;
  /**
   * A marker was sent and will come back through this source: hand it over
   * without delay (sources that batch records hold none back until it came).
   */
  expectMarker?(): void;
  /**
   * Present when next() returns a batch, possibly empty, at least this
   * often (ms) while the source is open: work that rides the batches
   * (reading the proc connector, looking at exits) then needs no timer.
   */
  readonly idleTurnMs?: number;
  /** Stops reading; batches already received are still returned by next(), which then ends. */
  close(): Promise<void>;
}

function describeIssue(issue: ParseIssue): string {
  return `${issue.message} (${issue.code}): ${JSON.stringify(issue.excerpt.slice(0, 80))}`;
}

/** The kernel over netlink, read by {@link AuditReader} on the daemon's thread, every batch wait. */
export class NetlinkSource implements RecordSource {
  readonly mode: 'unicast' | 'multicast';
  readonly #reader: AuditReader;
  readonly #batches: AsyncIterator<RecordBatch>;
  #bad = 0;
  #lastIssue: string | null = null;

  private constructor(mode: 'unicast' | 'multicast', reader: AuditReader) {
    this.mode = mode;
    this.#reader = reader;
    this.#batches = reader.batches();
  }

  /**
   * Opens the reader; in unicast mode this registers as the audit daemon.
   * @throws {SyscallError} EEXIST (unicast) when another daemon is registered.
   */
  static async open(
    mode: 'unicast' | 'multicast',
    receiveBufferBytes: number,
    batchWaitMs?: number,
  ): Promise<NetlinkSource> {
    return new NetlinkSource(
      mode,
      await AuditReader.open({
        mode,
        receiveBufferBytes,
        urgentTypes: [MARKER_TYPE],
        ...(batchWaitMs === undefined ? {} : { flushMs: batchWaitMs }),
      }),
    );
  }

  expectMarker(): void {
    this.#reader.expect();
  }

  get idleTurnMs(): number {
    return this.#reader.idleReadMs;
  }

  async next(): Promise<AuditRecord[] | null> {
    const result = await this.#batches.next();
    if (result.done === true) return null;
    const { types, ends, text } = result.value;
    // The records are parsed where they lie, as replay parses its buffers:
    // they keep the batch's buffer alive until the last of them is gone.
    const bytes = Buffer.from(text);
    const records: AuditRecord[] = [];
    let start = 0;
    for (let i = 0; i < types.length; i++) {
      const end = ends[i]!;
      const r = parseNetlinkBytes(types[i]!, bytes, start, end);
      start = end;
      if (isIssue(r)) {
        this.#bad++;
        this.#lastIssue = describeIssue(r);
      } else {
        records.push(r);
      }
    }
    return records;
  }

  queued(): number {
    return this.#reader.queuedMessages;
  }

  readerStats(): AuditReaderStats {
    return this.#reader.stats();
  }

  stats(): SourceStats {
    const s = this.#reader.stats();
    return {
      mode: this.mode,
      messages: s.messages,
      bytes: s.bytes,
      badRecords: this.#bad,
      enobufs: s.enobufs,
      pauses: s.pauses,
      foreign: s.foreign,
      queued: s.queuedMessages,
      receiveBufferBytes: s.receiveBufferBytes,
      lastIssue: this.#lastIssue,
    };
  }

  close(): Promise<void> {
    return this.#reader.close();
  }
}

/** auditd's plugin stream (`format = string`) on a readable, usually stdin. */
export class PluginSource implements RecordSource {
  readonly mode = 'plugin' as const;
  readonly #input: Readable;
  readonly #chunks: AsyncIterator<unknown>;
  readonly #parser: RecordParser;
  #pending: AuditRecord[] = [];
  #bytes = 0;
  #bad = 0;
  #lastIssue: string | null = null;
  #ended = false;
  #closing = false;

  constructor(input: Readable, maxLineBytes = 1024 * 1024) {
    this.#input = input;
    this.#chunks = input[Symbol.asyncIterator]();
    this.#parser = new RecordParser({
      maxLineBytes,
      onRecord: (r) => this.#pending.push(r),
      onIssue: (i) => {
        this.#bad++;
        this.#lastIssue = `line ${i.line}: ${describeIssue(i)}`;
      },
    });
  }

  async next(): Promise<AuditRecord[] | null> {
    if (this.#ended) return null;
    let result: IteratorResult<unknown>;
    try {
      result = await this.#chunks.next();
    } catch (error) {
      // Destroying the input to stop reading ends it "prematurely".
      if (!this.#closing) throw error;
      result = { done: true, value: undefined };
    }
    if (result.done === true) {
      this.#ended = true;
      this.#parser.end();
    } else {
      const chunk = typeof result.value === 'string' ? Buffer.from(result.value) : (result.value as Buffer);
      this.#bytes += chunk.length;
      this.#parser.push(chunk);
    }
    const out = this.#pending;
    this.#pending = [];
    return out;
  }

  stats(): SourceStats {
    return {
      mode: this.mode,
      messages: this.#parser.lines,
      bytes: this.#bytes,
      badRecords: this.#bad,
      enobufs: 0,
      pauses: 0,
      foreign: 0,
      queued: 0,
      receiveBufferBytes: 0,
      lastIssue: this.#lastIssue,
    };
  }

  queued(): number {
    return 0;
  }

  close(): Promise<void> {
    this.#closing = true;
    this.#input.destroy();
    return Promise.resolve();
  }
}
