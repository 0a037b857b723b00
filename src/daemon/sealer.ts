/**
 * The daemon's side of seals (src/marker/seal.ts): it hashes every record
 * it reads into buckets by kernel serial and, when asked, seals the buckets
 * the stream is well past. Pure: the clock comes in as arguments.
 *
 * A span is sealed only once the newest serial read `marginMs` ago is
 * beyond it, because records do not arrive in serial order: concurrent
 * events interleave, and a process that waits for kernel backlog space
 * between two records of its event sends the second seconds later (2.2 s
 * was seen under load; bench/README.md). A record that arrives after its
 * span was sealed is counted (`late=` on the next seal): the span then
 * shows as not intact, and the daemon says why.
 *
 * Sealing starts a bucket after the start marker's own (SEAL_BUCKET_SERIALS
 * serials at least): records stamped just after it may come before it in a
 * log, where a replay does not yet know the start whose key hashes them.
 */
import type { MarkerBody } from '../marker/format.js';
import {
  isSealedType,
  nextBucket,
  renderTime,
  SEAL_BUCKET_SERIALS,
  SealBuckets,
  sealDigest,
  SealHasher,
  sealKey,
  SERIAL_WRAP,
} from '../marker/seal.js';
import type { AuditRecord } from '../parse/record.js';

export interface SealerOptions {
  /** The start's secret (the seal key is derived from it). */
  readonly secret: Uint8Array;
  /** How long the stream must have been past a span before it is sealed (default 5000 ms). */
  readonly marginMs?: number;
}

/** Counters for `contid status`. */
export interface SealerStats {
  /** Seals made. */
  readonly seals: number;
  /** Records hashed into a seal. */
  readonly sealed: number;
  /** Records read after their span was sealed. */
  readonly late: number;
  /** The newest serial sealed, or null before the first seal. */
  readonly sealedTo: number | null;
}

/** Checkpoints kept of (time, newest serial): one per call to note(), at most this many. */
const MAX_CHECKPOINTS = 1024;

export class Sealer {
  readonly #key: Buffer;
  readonly #buckets = new SealBuckets(1 << 20);
  readonly #hasher: SealHasher;
  readonly #marginMs: number;
  /** The first serial not sealed yet; -1 until begin(). */
  #from = -1;
  /** The newest serial read since begin(), -1 before one. */
  #newest = -1;
  /** (wall ms, newest serial then), oldest first. */
  #checkpoints: { atMs: number; serial: number }[] = [];
  #late = 0;
  #lateTotal = 0;
  #seals = 0;
  #sealed = 0;

  constructor(options: SealerOptions) {
    this.#key = sealKey(options.secret);
    this.#hasher = new SealHasher(this.#key, this.#buckets);
    this.#marginMs = options.marginMs ?? 5000;
  }

  /** Sealing begins after the start marker, read back with kernel serial `serial`. */
  begin(serial: number): void {
    if (this.#from >= 0) return;
    this.#from = nextBucket(serial + SEAL_BUCKET_SERIALS - 1);
    this.#newest = serial;
  }

  get begun(): boolean {
    return this.#from >= 0;
  }

  /** Hashes one record read from the source. */
  add(record: AuditRecord): void {
    if (this.#from < 0 || !isSealedType(record.type)) return;
    const serial = record.serial;
    if (serial < this.#from) {
      // Before the first span (the start marker's bucket), or late.
      if (this.#seals > 0 && this.#from - serial < SERIAL_WRAP) {
        this.#late++;
        this.#lateTotal++;
      }
      if (this.#from - serial < SERIAL_WRAP) return;
    }
    this.#hasher.add(record);
    if (serial > this.#newest || this.#newest - serial > SERIAL_WRAP) this.#newest = serial;
  }

  /** Notes the newest serial read at wall time `nowMs` (call it often: every batch). */
  note(nowMs: number): void {
    const last = this.#checkpoints[this.#checkpoints.length - 1];
    if (last !== undefined && last.serial === this.#newest) return;
    if (last !== undefined && nowMs - last.atMs < 100) {
      last.serial = this.#newest;
      return;
    }
    this.#checkpoints.push({ atMs: nowMs, serial: this.#newest });
    if (this.#checkpoints.length > MAX_CHECKPOINTS) this.#checkpoints.shift();
  }

  /**
   * The seal marker for every whole bucket the stream was past `marginMs`
   * before `nowMs` (with `final`: every whole bucket read so far), or null
   * when there is none. `lossy`: the daemon saw losses since the last seal.
   */
  seal(
    nowMs: number,
    options: { final?: boolean; lossy: boolean },
  ): Extract<MarkerBody, { op: 'seal' }> | null {
    if (this.#from < 0) return null;
    let newest = -1;
    if (options.final === true) {
      newest = this.#newest;
    } else {
      while (this.#checkpoints.length > 0 && this.#checkpoints[0]!.atMs <= nowMs - this.#marginMs) {
        newest = this.#checkpoints.shift()!.serial;
      }
      // Keep the newest of those passed: a later call may still use it.
      if (newest >= 0) this.#checkpoints.unshift({ atMs: nowMs - this.#marginMs, serial: newest });
    }
    if (newest < 0) return null;
    if (newest < this.#from && this.#from - newest > SERIAL_WRAP) {
      // The kernel's serial counter wrapped: seal what came before it, then go on from 0.
      return this.#sealUpTo(0xffffffff, options.lossy, 0);
    }
    // Whole buckets only: the rest of the newest one may still come.
    const to = nextBucket(newest) - SEAL_BUCKET_SERIALS - 1;
    if (to < this.#from) return null;
    return this.#sealUpTo(to, options.lossy, to + 1);
  }

  #sealUpTo(to: number, lossy: boolean, next: number): Extract<MarkerBody, { op: 'seal' }> {
    const from = this.#from;
    this.#hasher.flush();
    const sum = this.#buckets.take(from, to);
    const late = this.#late;
    this.#late = 0;
    this.#from = next;
    this.#seals++;
    this.#sealed += sum.records;
    return {
      op: 'seal',
      from,
      to,
      records: sum.records,
      ...(sum.records === 0 ? {} : { since: renderTime(sum.sinceMs), until: renderTime(sum.untilMs) }),
      ...(late === 0 ? {} : { late }),
      lossy,
      digest: sealDigest(this.#key, { from, to, sum }),
    };
  }

  stats(): SealerStats {
    return {
      seals: this.#seals,
      sealed: this.#sealed,
      late: this.#lateTotal,
      sealedTo: this.#seals === 0 ? null : this.#from - 1,
    };
  }
}
