import { isStandaloneType, isUserMessageType } from '../interpret/record-types.js';
import { ByteRecord } from '../parse/parser.js';
import type { AuditRecord } from '../parse/record.js';
import { eventKey } from '../parse/record.js';
import type { AuditEvent } from './event.js';
import { EventKeyMap } from './event-key-map.js';
import { RecentEvents } from './recent-events.js';
import { SerialGapTracker } from './serial-gaps.js';

const EOE = 1320;
const PROCTITLE = 1327;

export interface AssemblerOptions {
  /** An open event closes once the stream's time is this far past it (ms, default 2000, as auditd). */
  readonly timeoutMs?: number;
  /** Most events held open at once (default 65,536); past it the oldest closes early and is counted. */
  readonly maxInFlight?: number;
  /**
   * Close syscall events on PROCTITLE (default true). The kernel writes
   * PROCTITLE as the last record before EOE, so this ends events at once in
   * logs, which carry no EOE records.
   */
  readonly closeOnProctitle?: boolean;
  /**
   * Treat user messages (USER_*, 1100–1199, 2100–2999) as events by themselves
   * (default true). They are alone, with no EOE, on kernels without stacked
   * LSMs that have contexts; where a kernel adds records to them, those
   * arrive as a late event with the same stamp (counted), as auparse shows
   * them. Emitting them at once keeps them at their place in the stream,
   * which is what contid's markers rely on.
   */
  readonly userMessagesAlone?: boolean;
  /** Closed events remembered to recognise duplicate and late records (default 4096). */
  readonly recentClosed?: number;
  readonly onEvent: (event: AuditEvent) => void;
}

/** Counters kept by the assembler. */
export interface AssemblerStats {
  records: number;
  events: number;
  /** Events closed by the timeout (in event time). */
  timedOut: number;
  /** Events closed early because too many were open. */
  evictedAtCapacity: number;
  /** Records identical to one already in their event, dropped. */
  duplicates: number;
  /** Records that arrived after their event had closed; emitted as an event of their own. */
  late: number;
  /** EOE records with no open event (harmless after a PROCTITLE close). */
  strayEoe: number;
  /** Estimated records lost, from serial gaps. */
  lostEstimate: number;
  /** Serial sequences restarted (reboot, concatenated logs). */
  serialResets: number;
  /** Most events open at one time. */
  maxOpen: number;
}

type Key = number | string;

interface OpenEvent {
  readonly key: Key;
  readonly timeMs: number;
  readonly records: AuditRecord[];
  closed: boolean;
}

/**
 * Groups records into events by (node, time, serial).
 *
 * An event closes on EOE, at once when its type is an event by itself, on
 * PROCTITLE (optional), or when the stream's own clock has moved `timeoutMs`
 * past it. Time is event time, never the wall clock, so the same input always
 * gives the same events in the same order.
 */
export class EventAssembler {
  readonly #timeout: number;
  readonly #maxInFlight: number;
  readonly #closeOnProctitle: boolean;
  readonly #userAlone: boolean;
  readonly #onEvent: (event: AuditEvent) => void;
  /**
   * Open events by key (their order is #order's). The key is the
   * serial alone, a number, for the common case of a local log; a second
   * event with the same serial (another node, a reboot, concatenated logs)
   * gets the full (node, time, serial) string key. Number keys spare a string
   * built and hashed per record.
   */
  readonly #open = new EventKeyMap<OpenEvent>();
  #openStringKeys = 0;
  /**
   * Open events in arrival order, for time-outs and capacity: a queue with a
   * head index (closed entries are skipped), so that no iterator or entry
   * array is allocated per record.
   */
  #order: (OpenEvent | undefined)[] = [];
  #head = 0;
  /** Recently closed events, for duplicates and late records. */
  readonly #recent: RecentEvents;
  readonly #gaps = new SerialGapTracker();
  /** The newest timestamp seen: the stream's clock. */
  #clock = 0;
  readonly #stats: AssemblerStats = {
    records: 0,
    events: 0,
    timedOut: 0,
    evictedAtCapacity: 0,
    duplicates: 0,
    late: 0,
    strayEoe: 0,
    lostEstimate: 0,
    serialResets: 0,
    maxOpen: 0,
  };

  constructor(options: AssemblerOptions) {
    this.#timeout = options.timeoutMs ?? 2000;
    this.#maxInFlight = options.maxInFlight ?? 65536;
    this.#closeOnProctitle = options.closeOnProctitle ?? true;
    this.#recent = new RecentEvents(options.recentClosed ?? 4096);
    this.#userAlone = options.userMessagesAlone ?? true;
    this.#onEvent = options.onEvent;
  }

  /** Events currently open. */
  get open(): number {
    return this.#open.size;
  }

  stats(): AssemblerStats {
    return { ...this.#stats, lostEstimate: this.#gaps.lost, serialResets: this.#gaps.resets };
  }

  /** Feeds one record. */
  push(record: AuditRecord): void {
    const st = this.#stats;
    st.records++;
    const type = record.type;
    // DAEMON_* records carry auditd's own counter, not the kernel's serial.
    if (type < 1200 || type > 1299) this.#gaps.see(record.node, record.serial);
    if (record.timeMs > this.#clock) this.#clock = record.timeMs;
    const key = this.#keyOf(record);
    const open = this.#open.get(key);

    if (type === EOE) {
      if (open !== undefined) this.#close(open, 'eoe');
      else st.strayEoe++;
    } else if (open !== undefined) {
      if (this.#isDuplicate(open.records, record)) {
        st.duplicates++;
      } else {
        open.records.push(record);
        if (type === PROCTITLE && this.#closeOnProctitle) this.#close(open, 'proctitle');
      }
    } else {
      const recent = this.#recent.has(key);
      if (recent && this.#recent.isDuplicate(key, record)) {
        st.duplicates++;
      } else if (isStandaloneType(type) || (this.#userAlone && isUserMessageType(type))) {
        this.#emit(key, record, [record], 'standalone');
      } else {
        if (recent) st.late++;
        const ev: OpenEvent = { key, timeMs: record.timeMs, records: [record], closed: false };
        this.#open.set(key, ev);
        if (typeof key === 'string') this.#openStringKeys++;
        if (this.#open.size > st.maxOpen) st.maxOpen = this.#open.size;
        if (type === PROCTITLE && this.#closeOnProctitle) {
          this.#close(ev, 'proctitle');
        } else {
          this.#order.push(ev);
          if (this.#open.size > this.#maxInFlight) this.#closeOldest('capacity');
        }
      }
    }
    this.#expire();
  }

  /** Closes every open event (end of input), oldest first. */
  end(): void {
    for (let i = this.#head; i < this.#order.length; i++) {
      const ev = this.#order[i]!;
      if (!ev.closed) this.#close(ev, 'end');
    }
    this.#order = [];
    this.#head = 0;
  }

  /** The oldest open event, skipping closed ones; undefined when none. */
  #oldest(): OpenEvent | undefined {
    const order = this.#order;
    // Passed slots are cleared: a closed event left in the array would keep
    // its records reachable until the next compaction.
    while (this.#head < order.length && order[this.#head]!.closed) order[this.#head++] = undefined;
    if (this.#head > 4096 && this.#head * 2 > order.length) {
      this.#order = order.slice(this.#head);
      this.#head = 0;
    }
    return this.#order[this.#head];
  }

  #expire(): void {
    const limit = this.#clock - this.#timeout;
    // Open events are in arrival order, which is close to time order; stop at
    // the first one still inside the window so that this stays O(1) per record.
    for (;;) {
      const ev = this.#oldest();
      if (ev === undefined || ev.timeMs >= limit) return;
      this.#stats.timedOut++;
      this.#close(ev, 'timeout');
    }
  }

  #closeOldest(reason: AuditEvent['closedBy']): void {
    const ev = this.#oldest();
    if (ev === undefined) return;
    this.#stats.evictedAtCapacity++;
    this.#close(ev, reason);
  }

  #isDuplicate(records: readonly AuditRecord[], record: AuditRecord): boolean {
    for (const r of records) if (r.type === record.type && sameContent(r, record)) return true;
    return false;
  }

  /**
   * The key of a record's event: its serial when that names this event (or
   * nothing yet), else the full string key.
   */
  #keyOf(record: AuditRecord): Key {
    const serial = record.serial;
    if (record.node === null) {
      const byNumber = this.#open.get(serial)?.timeMs ?? this.#recent.timeOf(serial);
      if (byNumber === undefined) {
        // Free in the fast maps, unless this event already lives under a string key.
        if (this.#openStringKeys === 0) return serial;
        const k = eventKey(null, record.time, serial);
        return this.#open.has(k) ? k : serial;
      }
      if (byNumber === record.timeMs) return serial;
    }
    return eventKey(record.node, record.time, serial);
  }

  #close(ev: OpenEvent, closedBy: AuditEvent['closedBy']): void {
    ev.closed = true;
    this.#open.delete(ev.key);
    if (typeof ev.key === 'string') this.#openStringKeys--;
    this.#emit(ev.key, ev.records[0]!, ev.records, closedBy);
  }

  #emit(key: Key, first: AuditRecord, records: AuditRecord[], closedBy: AuditEvent['closedBy']): void {
    this.#recent.remember(key, first.timeMs, records);
    this.#stats.events++;
    this.#onEvent(new Event(first, records, closedBy));
  }
}

/** An assembled event; its time text is read from its first record only when asked for. */
class Event implements AuditEvent {
  readonly node: string | null;
  readonly timeMs: number;
  readonly serial: number;

  constructor(
    first: AuditRecord,
    readonly records: AuditRecord[],
    readonly closedBy: AuditEvent['closedBy'],
  ) {
    this.node = first.node;
    this.timeMs = first.timeMs;
    this.serial = first.serial;
  }

  get time(): string {
    return this.records[0]!.time;
  }
}

/** Whether two records have the same text (fields and enriched part). */
function sameContent(a: AuditRecord, b: AuditRecord): boolean {
  if (a instanceof ByteRecord && b instanceof ByteRecord) {
    if (a.bodyEnd - a.bodyStart !== b.bodyEnd - b.bodyStart) return false;
    if (a.enrichedEnd - a.enrichedStart !== b.enrichedEnd - b.enrichedStart) return false;
    if (a.src.compare(b.src, b.bodyStart, b.bodyEnd, a.bodyStart, a.bodyEnd) !== 0) return false;
    return (
      a.enrichedStart < 0 ||
      a.src.compare(b.src, b.enrichedStart, b.enrichedEnd, a.enrichedStart, a.enrichedEnd) === 0
    );
  }
  return a.body === b.body && a.enriched === b.enriched;
}
