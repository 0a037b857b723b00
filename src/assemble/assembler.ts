import { isStandaloneType, isUserMessageType } from '../interpret/record-types.js';
import type { AuditRecord } from '../parse/record.js';
import { eventKey } from '../parse/record.js';
import { ContentIndex, sameContent } from './content-index.js';
import type { AuditEvent } from './event.js';
import { EventKeyMap } from './event-key-map.js';
import { RecentEvents } from './recent-events.js';
import { SerialGapTracker } from './serial-gaps.js';
import { RecordType } from '../interpret/record-types-generated.js';

const EOE = RecordType.EOE;
const PROCTITLE = RecordType.PROCTITLE;

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
  /**
   * Most records an event may have (default 10,000): the event closes when
   * it reaches them, and its later records form another (counted). No
   * kernel event comes near; the bound keeps one stamp from holding memory
   * without end.
   */
  readonly maxRecordsPerEvent?: number;
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
  /** Events closed because they reached maxRecordsPerEvent records. */
  recordLimit: number;
  /**
   * Records whose time the stream did not bear out: one far ahead of the
   * stream's clock and followed by records at the old time (the clock is
   * put back), or far behind it and followed by records at the clock's time
   * (a record stamped long before it was written, such as a syscall that
   * blocked). Their events are timed from their arrival.
   */
  clockOutliers: number;
  /** Times the stream's clock went back (a clock set back, logs given newest first). */
  clockSteps: number;
}

type Key = number | string;

interface OpenEvent {
  readonly key: Key;
  readonly timeMs: number;
  /** The stream clock's value past which the event times out. */
  deadline: number;
  /** How many times the clock had gone back when it opened (see #rebase). */
  readonly epoch: number;
  readonly records: AuditRecord[];
  closed: boolean;
  /** Its records by content, once it has more than SMALL_EVENT. */
  index: ContentIndex | null;
}

/** Records of an event compared one by one for duplicates; a larger event indexes them. */
const SMALL_EVENT = 32;

/**
 * Groups records into events by (node, time, serial).
 *
 * An event closes on EOE, at once when its type is an event by itself, on
 * PROCTITLE (optional), or when the stream's own clock has moved `timeoutMs`
 * past it. Time is event time, never the wall clock, so the same input always
 * gives the same events in the same order.
 *
 * The clock is the newest time of the stream's records, as auditd's, but no
 * single record can derail it. A record more than `timeoutMs` away from it
 * is a step, which the next record has to bear out:
 *
 * - ahead: the clock moves at once, but what the move closes is closed only
 *   when the next record does not fall back to the old time; if it does, the
 *   record was an outlier and the clock goes back, having closed nothing.
 *   (On ordinary input, a quiet spell, this closes the same events at the
 *   same place as moving at once.)
 * - behind: the clock stays, and the record's event is timed from its
 *   arrival; only when the next event's record is behind too, near it, has
 *   the clock gone back (a clock set back, files given newest first), and
 *   the clock follows.
 *
 * Events opened before the clock went back, which would now wait for the
 * old time to come round again, time out `timeoutMs` after the step.
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
   * The open event under the serial #keyOf looked up last: push() takes it
   * from there when the key is that serial, rather than looking it up again
   * (with thousands of events open, each lookup is a cache miss).
   */
  #bySerial: OpenEvent | undefined = undefined;
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
  readonly #maxRecords: number;
  /** The stream's clock: the newest time seen that the stream bore out. */
  #clock = 0;
  #started = false;
  /** A step ahead awaits the next record: the clock before it. */
  #aheadPending = false;
  /**
   * A step ahead that a record of an open event undid: the next record of
   * a new event tells whether it was one record's (an outlier, counted) or
   * the clock's (a step again).
   */
  #aheadUnsettled = false;
  #beforeStep = 0;
  /** A record far behind the clock awaits the next event's: its key and time. */
  #behindPending = false;
  #behindKey: Key = 0;
  #behindTime = 0;
  /** Started, and no step awaits a record: a record near the clock only moves it. */
  #quiet = false;
  /**
   * Times the clock went back (a step back, an outlier undone), and the
   * clock just after each of those still needed: `#rebases[i]` is the one
   * that started epoch `#rebasesFrom + i`. An event opened before a step
   * times out `timeoutMs` after the first step that followed it.
   */
  #epoch = 0;
  #rebases: number[] = [];
  #rebasesFrom = 1;
  /** The key of the last event closed at the record limit (its next records are not "late"). */
  #limitKey: Key | null = null;
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
    recordLimit: 0,
    clockOutliers: 0,
    clockSteps: 0,
  };

  constructor(options: AssemblerOptions) {
    this.#timeout = options.timeoutMs ?? 2000;
    this.#maxInFlight = options.maxInFlight ?? 65536;
    this.#closeOnProctitle = options.closeOnProctitle ?? true;
    this.#recent = new RecentEvents(options.recentClosed ?? 4096);
    this.#userAlone = options.userMessagesAlone ?? true;
    this.#maxRecords = Math.max(1, options.maxRecordsPerEvent ?? 10_000);
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
    const key = this.#keyOf(record);
    // A number key is the serial that #keyOf has just looked up.
    let open = typeof key === 'number' ? this.#bySerial : this.#open.get(key);
    // The records of an open event say nothing new about the clock, but any
    // record settles a step ahead that awaits one.
    if (open === undefined || this.#aheadPending) {
      const t = record.timeMs;
      const clock = this.#clock;
      if (this.#quiet && t <= clock + this.#timeout && t >= clock - this.#timeout) {
        // The usual record: near the clock, nothing pending.
        if (t > clock) this.#clock = t;
      } else {
        this.#observe(t, key, open !== undefined);
        this.#quiet = this.#started && !this.#aheadPending && !this.#behindPending && !this.#aheadUnsettled;
        if (open?.closed === true) open = undefined;
      }
    }

    if (type === EOE) {
      if (open !== undefined) this.#close(open, 'eoe');
      else st.strayEoe++;
    } else if (open !== undefined) {
      if (this.#isDuplicate(open, record)) {
        st.duplicates++;
      } else {
        open.records.push(record);
        if (open.index !== null) open.index.add(open.records, open.records.length - 1);
        if (type === PROCTITLE && this.#closeOnProctitle) this.#close(open, 'proctitle');
        else if (open.records.length >= this.#maxRecords) this.#closeAtLimit(open);
      }
    } else {
      const recent = this.#recent.has(key);
      if (recent && this.#recent.isDuplicate(key, record)) {
        st.duplicates++;
      } else if (isStandaloneType(type) || (this.#userAlone && isUserMessageType(type))) {
        this.#emit(key, record, [record], 'standalone');
      } else {
        if (recent && key !== this.#limitKey) st.late++;
        const t = record.timeMs;
        // A stamp far from the clock (see #observe) is timed from its arrival.
        const near = t <= this.#clock + this.#timeout && t >= this.#clock - this.#timeout;
        const deadline = (near ? t : this.#clock) + this.#timeout;
        const ev: OpenEvent = {
          key,
          timeMs: t,
          deadline,
          epoch: this.#epoch,
          records: [record],
          closed: false,
          index: null,
        };
        this.#open.set(key, ev);
        if (typeof key === 'string') this.#openStringKeys++;
        if (this.#open.size > st.maxOpen) st.maxOpen = this.#open.size;
        if (type === PROCTITLE && this.#closeOnProctitle) {
          this.#close(ev, 'proctitle');
        } else if (this.#maxRecords === 1) {
          this.#closeAtLimit(ev);
        } else {
          this.#order.push(ev);
          if (this.#open.size > this.#maxInFlight) this.#closeOldest('capacity');
        }
      }
    }
    // A step ahead closes what it closes only once the next record bears it out.
    if (!this.#aheadPending) this.#expire();
  }

  /**
   * Moves the clock for a record at `t` that belongs to no open event (see
   * the class comment), first settling a step ahead that awaited this
   * record, which may be one of an open event (`straggler`).
   */
  #observe(t: number, key: Key, straggler: boolean): void {
    const window = this.#timeout;
    if (!this.#started) {
      this.#started = true;
      this.#clock = t;
      return;
    }
    if (this.#aheadUnsettled && !straggler) {
      this.#aheadUnsettled = false;
      if (t <= this.#clock + window) this.#stats.clockOutliers++;
    }
    if (this.#aheadPending) {
      this.#aheadPending = false;
      if (t <= this.#beforeStep + window) {
        // Back at the old time: the step was one record's, or came before
        // the last records of an event still open (whose records then stay
        // together; the next record at the new time steps again).
        if (!straggler) this.#stats.clockOutliers++;
        this.#clock = this.#beforeStep;
        this.#rebase();
        if (straggler) {
          this.#aheadUnsettled = true;
          return;
        }
      } else {
        // Borne out: close now what the step closes, before this record goes in.
        this.#expire();
      }
    }
    const clock = this.#clock;
    if (t > clock + window) {
      this.#beforeStep = clock;
      this.#clock = t;
      this.#aheadPending = true;
      this.#settleBehind();
      return;
    }
    if (t >= clock - window) {
      if (t > clock) this.#clock = t;
      this.#settleBehind();
      return;
    }
    // Far behind the clock.
    if (this.#behindPending && key !== this.#behindKey && Math.abs(t - this.#behindTime) <= window) {
      // A second event back there: the clock went back.
      this.#behindPending = false;
      this.#stats.clockSteps++;
      this.#clock = Math.max(t, this.#behindTime);
      this.#rebase();
      return;
    }
    if (this.#behindPending && key !== this.#behindKey) this.#stats.clockOutliers++;
    this.#behindPending = true;
    this.#behindKey = key;
    this.#behindTime = t;
  }

  /** A record near the clock: a record far behind it before this one was an outlier. */
  #settleBehind(): void {
    if (!this.#behindPending) return;
    this.#behindPending = false;
    this.#stats.clockOutliers++;
  }

  /** Closes every open event (end of input), oldest first. */
  end(): void {
    if (this.#aheadPending) {
      // The input ended on a step ahead: it stands.
      this.#aheadPending = false;
      this.#expire();
    }
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

  /** The clock has just gone back: a new epoch. */
  #rebase(): void {
    this.#epoch++;
    this.#rebases.push(this.#clock);
  }

  #expire(): void {
    const clock = this.#clock;
    // Open events are in arrival order, which is close to deadline order;
    // stop at the first one not yet due so that this stays O(1) per record.
    for (;;) {
      const ev = this.#oldest();
      if (ev === undefined) {
        this.#forgetRebases(this.#epoch);
        return;
      }
      if (ev.deadline > clock + this.#timeout) {
        // Due past a time from before the clock went back: due after the first step that followed it.
        const back = this.#rebases[ev.epoch + 1 - this.#rebasesFrom] ?? clock;
        ev.deadline = Math.min(back, clock) + this.#timeout;
      }
      if (ev.deadline >= clock) {
        this.#forgetRebases(ev.epoch);
        return;
      }
      this.#stats.timedOut++;
      this.#close(ev, 'timeout');
    }
  }

  /** Forgets the steps no open event needs: those up to epoch `upTo` (events behind are no older). */
  #forgetRebases(upTo: number): void {
    const drop = upTo + 1 - this.#rebasesFrom;
    if (drop <= 0) return;
    if (drop >= this.#rebases.length) {
      this.#rebases = [];
    } else if (drop < 1024 && drop * 2 < this.#rebases.length) {
      return; // compacted later, a batch at a time
    } else {
      this.#rebases = this.#rebases.slice(drop);
    }
    this.#rebasesFrom = upTo + 1;
  }

  #closeAtLimit(ev: OpenEvent): void {
    this.#stats.recordLimit++;
    this.#limitKey = ev.key;
    this.#close(ev, 'limit');
  }

  #closeOldest(reason: AuditEvent['closedBy']): void {
    const ev = this.#oldest();
    if (ev === undefined) return;
    this.#stats.evictedAtCapacity++;
    this.#close(ev, reason);
  }

  /** Whether the open event has a record with the same type and text. */
  #isDuplicate(ev: OpenEvent, record: AuditRecord): boolean {
    const records = ev.records;
    if (ev.index !== null) return ev.index.has(records, record);
    for (const r of records) if (r.type === record.type && sameContent(r, record)) return true;
    if (records.length >= SMALL_EVENT) {
      // Large: from now on, look records up by content.
      const index = (ev.index = new ContentIndex());
      for (let i = 0; i < records.length; i++) index.add(records, i);
    }
    return false;
  }

  /**
   * The key of a record's event: its serial when that names this event (or
   * nothing yet), else the full string key.
   */
  #keyOf(record: AuditRecord): Key {
    const serial = record.serial;
    if (record.node === null) {
      const open = (this.#bySerial = this.#open.get(serial));
      const byNumber = open?.timeMs ?? this.#recent.timeOf(serial);
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
