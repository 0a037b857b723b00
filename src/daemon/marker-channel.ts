/**
 * The daemon's markers and their echoes: it numbers this start's markers,
 * chains each to the kernel stamp of the latest one read back (`prev=`),
 * signs them with the start's secret, sends them into the kernel, and
 * recognises them when the stream brings them back (start, stop, and the
 * seals of src/daemon/sealer.ts, which begin with the start marker's echo).
 *
 * A marker is the daemon's own when the kernel-stamped pid is the daemon's
 * and it names this start: nobody else can write under that pid.
 */
import { encodeMarker, MARKER_TYPE, type MarkerBody, type MarkerStamp } from '../marker/format.js';
import type { KeyringEntry } from '../marker/keyring.js';
import type { AuditRecord } from '../parse/record.js';
import type { Logger } from './logger.js';
import { Sealer, type SealerStats } from './sealer.js';

/** What a {@link MarkerChannel} sends with and learns from. */
export interface MarkerChannelOptions {
  /** This start: its id names the markers, its secret signs them. */
  readonly keyring: KeyringEntry;
  /** The daemon's pid: the kernel stamps it on the daemon's own records. */
  readonly selfPid: number;
  /** Writes a user message into the kernel (AuditNetlink.sendUserMessage). @throws {SyscallError} */
  readonly send: (type: number, text: string) => void;
  /** Tells the reader a marker is coming, so that it does not hold the echo back. */
  readonly expectMarker: () => void;
  /** How often to seal the records read (ms); 0: no seals. */
  readonly sealIntervalMs: number;
  /** Losses so far (ENOBUFS, serial gaps, the kernel's lost counter): a seal past new ones is lossy. */
  readonly losses: () => number;
  /** This start's marker came back: its node is this host's (auditd's name_format in plugin mode). */
  readonly onEcho: (node: string | null) => void;
  readonly log: Logger;
  /** The clock (ms). Default: Date.now. */
  readonly now?: () => number;
}

/** This start's markers: numbering, sending, recognising their echoes, sealing. */
export class MarkerChannel {
  readonly #startId: string;
  readonly #secret: Buffer;
  readonly #selfPid: string;
  readonly #send: (type: number, text: string) => void;
  readonly #expectMarker: () => void;
  readonly #sealIntervalMs: number;
  readonly #losses: () => number;
  readonly #onEcho: (node: string | null) => void;
  readonly #log: Logger;
  readonly #now: () => number;
  /** Marker seqs of this start whose read-back someone awaits (start, stop). */
  readonly #echoes = new Map<number, () => void>();
  #seq = 0;
  /** The kernel stamp of the latest marker of this start read back: the next marker's `prev=`. */
  #lastEcho: MarkerStamp | null = null;
  /** Seals the records read (src/daemon/sealer.ts); null with `seal-interval` 0. */
  readonly sealer: Sealer | null;
  /** The node whose records are sealed: the start marker's (an aggregated plugin stream holds others). */
  #sealNode: string | null | undefined = undefined;
  #sealTimer: NodeJS.Timeout | undefined;
  /** When the periodic seal last ran (ms, this channel's clock). */
  #sealedAt = 0;
  /** Losses at the last seal. */
  #lossesAtSeal = 0;

  constructor(options: MarkerChannelOptions) {
    this.#startId = options.keyring.startId;
    this.#secret = options.keyring.secret;
    this.#selfPid = String(options.selfPid);
    this.#send = options.send;
    this.#expectMarker = options.expectMarker;
    this.#sealIntervalMs = options.sealIntervalMs;
    this.#losses = options.losses;
    this.#onEcho = options.onEcho;
    this.#log = options.log;
    this.#now = options.now ?? (() => Date.now());
    this.sealer = options.sealIntervalMs > 0 ? new Sealer({ secret: options.keyring.secret }) : null;
  }

  /** The seq the next marker will take. */
  get nextSeq(): number {
    return this.#seq + 1;
  }

  /** Someone awaits the echo of a marker: marker records are worth a look. */
  get awaiting(): boolean {
    return this.#echoes.size > 0;
  }

  /** The node whose records are sealed; undefined until the start marker is read back. */
  get sealNode(): string | null | undefined {
    return this.#sealNode;
  }

  /** Sends a marker; returns its seq. @throws {SyscallError} */
  send(body: MarkerBody): number {
    const seq = this.#seq + 1;
    const prev = this.#lastEcho;
    // Before the send: the reader must not hold the echo back once it came.
    this.#expectMarker();
    this.#send(
      MARKER_TYPE,
      encodeMarker(
        prev === null ? { start: this.#startId, seq, body } : { start: this.#startId, seq, prev, body },
        this.#secret,
      ),
    );
    // A marker that was not sent takes no seq: a gap in a log means a marker lost or deleted.
    this.#seq = seq;
    return seq;
  }

  /** Resolves when this start's marker `seq` is read back. */
  awaitEcho(seq: number): Promise<void> {
    return new Promise((resolve) => this.#echoes.set(seq, resolve));
  }

  /**
   * A marker record read from the source: one of this start's gives the
   * next marker its `prev=` (its kernel stamp), and the start marker begins
   * sealing. The kernel-stamped pid is the daemon's only for its own.
   */
  noteOwn(r: AuditRecord): void {
    const seq = this.#ownSeq(r);
    if (seq === null) return;
    this.#lastEcho = { time: r.time, serial: r.serial };
    if (seq === '1' && this.sealer !== null && this.#sealNode === undefined) {
      this.#sealNode = r.node;
      this.sealer.begin(r.serial);
    }
  }

  /** A marker record of an assembled event: resolves whoever awaits it, when it is this start's. */
  checkEcho(r: AuditRecord): void {
    const seq = this.#ownSeq(r);
    if (seq === null) return;
    const done = this.#echoes.get(Number(seq));
    if (done === undefined) return;
    this.#onEcho(r.node);
    this.#echoes.delete(Number(seq));
    done();
  }

  /** Seals every `seal-interval` from now on (nothing without seals). */
  startSealing(): void {
    if (this.sealer === null) return;
    this.#sealedAt = this.#now();
    this.#sealTimer = setInterval(() => {
      this.#sealedAt = this.#now();
      this.seal(false);
    }, this.#sealIntervalMs);
    this.#sealTimer.unref();
  }

  /**
   * Seals now if a periodic seal is due within `slackMs`, from a wake-up
   * that happens anyway (a batch of records), and pushes the timer back a
   * whole interval: the timer then wakes the daemon only when no batch came
   * meanwhile. (Without the slack, batches that come once a second would
   * always come just before the timer.)
   */
  sealIfDue(slackMs = 0): void {
    if (this.#sealTimer === undefined) return;
    const now = this.#now();
    if (now - this.#sealedAt < this.#sealIntervalMs - Math.min(slackMs, this.#sealIntervalMs / 4)) return;
    this.#sealedAt = now;
    this.#sealTimer.refresh();
    this.seal(false);
  }

  /** No more periodic seals (a final seal() may still follow). */
  stopSealing(): void {
    clearInterval(this.#sealTimer);
  }

  /**
   * Seals the records read that the stream is well past (with `final`: all
   * of them), when there are any. Losses since the last seal mark it lossy.
   */
  seal(final: boolean): void {
    if (this.sealer === null) return;
    const losses = this.#losses();
    const body = this.sealer.seal(this.#now(), { final, lossy: losses > this.#lossesAtSeal });
    if (body === null) return;
    try {
      this.send(body);
      this.#lossesAtSeal = losses;
    } catch (error) {
      this.#log(
        'warning',
        `Cannot send a seal marker: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }

  stats(): SealerStats | null {
    return this.sealer?.stats() ?? null;
  }

  /** The seq (as written) of one of this start's own markers, or null for any other record. */
  #ownSeq(r: AuditRecord): string | null {
    if (r.field('pid') !== this.#selfPid) return null;
    const m = / start=([A-Za-z0-9._-]+) seq=([0-9]+) /.exec(r.body);
    if (m?.[1] !== this.#startId) return null;
    return m[2]!;
  }
}
