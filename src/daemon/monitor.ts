/**
 * {@link Monitor}: the daemon's rate and loss monitoring. Every status
 * interval it polls the kernel's status (its `lost` counter), computes the
 * record rate, and logs each new loss once, by kind: records the kernel
 * lost, socket overflows (ENOBUFS), serial gaps, events the store dropped,
 * and netlink messages a process (not the kernel) sent to contid's
 * sockets. Losses of the stream or of exits make the witness check every
 * process against /proc.
 */
import type { AuditStatus } from '../kernel/netlink.js';
import type { Logger } from './logger.js';

/** Counters the daemon reads from its parts at each tick (totals since start). */
export interface MonitorReadings {
  /** Records read so far. */
  readonly records: number;
  /** ENOBUFS of the audit socket. */
  readonly enobufs: number;
  /** Records missing by the assembler's serial-gap estimate. */
  readonly serialGaps: number;
  /** ENOBUFS of the proc connector. */
  readonly connectorEnobufs: number;
  /** Events the store dropped. */
  readonly storeDropped: number;
  /** Netlink datagrams from userspace ignored (audit socket and proc connector). */
  readonly foreign: number;
}

export interface MonitorOptions {
  readonly log: Logger;
  /** AUDIT_GET now; throws when it cannot be read. */
  readonly readStatus: () => AuditStatus;
  /** Exits or records went unseen: check every process against /proc. */
  readonly reconcile: () => void;
}

/** Readings of a source that has seen nothing yet. */
export const NO_READINGS: Readonly<MonitorReadings> = {
  records: 0,
  enobufs: 0,
  serialGaps: 0,
  connectorEnobufs: 0,
  storeDropped: 0,
  foreign: 0,
};

export class Monitor {
  readonly #options: MonitorOptions;
  #kernel: AuditStatus | null = null;
  #lostAtStart = 0;
  #rate = { records: 0, at: Date.now(), perSecond: 0 };
  #last: MonitorReadings & { kernelLost: number } = { ...NO_READINGS, kernelLost: 0 };

  constructor(options: MonitorOptions) {
    this.#options = options;
  }

  /** The kernel status at the start (`nowMs`): its `lost` counter is the zero of kernelLost. */
  begin(status: AuditStatus, nowMs = Date.now()): void {
    this.#kernel = status;
    this.#lostAtStart = status.lost;
    this.#rate = { records: 0, at: nowMs, perSecond: 0 };
  }

  /** The kernel status last read, or null before the start. */
  get kernel(): AuditStatus | null {
    return this.#kernel;
  }

  /** Records the kernel lost since the start (its `lost` counter). */
  get kernelLost(): number {
    return this.#kernel === null ? 0 : Math.max(0, this.#kernel.lost - this.#lostAtStart);
  }

  /** Records per second over the last interval. */
  get recordRate(): number {
    return this.#rate.perSecond;
  }

  /** Polls the kernel status and reports new losses. */
  tick(nowMs: number, now: MonitorReadings): void {
    const log = this.#options.log;
    const seconds = (nowMs - this.#rate.at) / 1000;
    if (seconds > 0) {
      this.#rate = {
        records: now.records,
        at: nowMs,
        perSecond: Math.round((now.records - this.#rate.records) / seconds),
      };
    }
    try {
      const s = this.#options.readStatus();
      if (this.#kernel !== null && s.lost < this.#kernel.lost) this.#lostAtStart = 0; // counter reset
      this.#kernel = s;
    } catch (error) {
      log(
        'warning',
        `Cannot read the audit status: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    const last = this.#last;
    const kernelLost = this.kernelLost;
    if (kernelLost > last.kernelLost) {
      log('warning', `The kernel lost ${kernelLost - last.kernelLost} records (lost counter)`);
    }
    if (now.enobufs > last.enobufs || now.connectorEnobufs > last.connectorEnobufs) {
      this.#options.reconcile();
    }
    if (now.enobufs > last.enobufs) {
      log('warning', `The socket overflowed ${now.enobufs - last.enobufs} times (ENOBUFS): records lost`);
    }
    if (now.serialGaps > last.serialGaps) {
      log('warning', `About ${now.serialGaps - last.serialGaps} records missing (serial gaps)`);
    }
    if (now.storeDropped > last.storeDropped) {
      log(
        'warning',
        `The event store's queue was full: ${now.storeDropped - last.storeDropped} events dropped from the store (not from the host log)`,
      );
    }
    if (now.foreign > last.foreign) {
      log(
        'warning',
        `Ignored ${now.foreign - last.foreign} netlink messages sent by a process, not the kernel ` +
          "(someone with CAP_NET_ADMIN is sending to contid's sockets)",
      );
    }
    this.#last = { ...now, kernelLost };
  }
}
