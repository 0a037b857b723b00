/**
 * What a log's markers prove beyond each one's MAC: that none is missing,
 * none moved, and (with seals) which spans of the log hold exactly the
 * records the daemon read. A marker's MAC covers its text, not its place:
 * deleting the `set` marker shows a container as host, moving it after its
 * target's first fork turns it into EBUSY, and each marker left verifies.
 *
 * Checked per node, on the valid markers the labeller hands over (in the
 * order the labeller applies them) and on every event:
 *
 * - gap: a start's seqs increase by one; `seq 5–7` missing between two
 *   markers seen is reported at the second;
 * - order: a start's markers are sent one after the other, so their kernel
 *   serials increase; a marker below the previous one's was moved;
 * - chain: a marker's `prev=` names the latest marker of its start the daemon
 *   had read back when it sent it; a replay that has not seen that one among
 *   the start's recent markers reports a break (a marker deleted or moved);
 * - place: a marker applied after an event the kernel stamped later (a
 *   higher serial) than the marker itself was moved past that event;
 * - seal: on each seal of the current start, whether the records of its
 *   span in this log sum to its digest. The verdict waits until the events
 *   seen are `settleMs` past the seal (a log file has no EOE, so an event
 *   may close seconds after its records; the host log holds some events
 *   back), the next start, or the end of the input; a record of a span
 *   already judged is reported as late.
 *
 * Pure and deterministic; memory is bounded (recent stamps per start,
 * buckets per SealBuckets, starts by the keyring).
 */
import type { AuditEvent } from '../assemble/event.js';
import type { AuditRecord } from '../parse/record.js';
import type { Marker, MarkerBody, MarkerStamp } from './format.js';
import type { Keyring } from './keyring.js';
import {
  isSealedType,
  renderTime,
  SealBuckets,
  SealHasher,
  sealKey,
  sealMatches,
  SERIAL_WRAP,
} from './seal.js';

/** One thing the checks found. Stamps are `SEC.MS:SERIAL` of the records concerned. */
export type EvidenceFinding =
  | {
      readonly check: 'gap';
      readonly start: string;
      /** The missing seqs, inclusive. */
      readonly from: number;
      readonly to: number;
      /** The markers seen either side of the gap. */
      readonly after: string;
      readonly before: string;
    }
  | {
      readonly check: 'order';
      readonly start: string;
      readonly seq: number;
      readonly at: string;
      /** The previous marker of the start, whose serial is higher. */
      readonly after: string;
    }
  | {
      readonly check: 'chain';
      readonly start: string;
      readonly seq: number;
      readonly at: string;
      /** The marker it names, not seen before it. */
      readonly prev: string;
    }
  | {
      readonly check: 'place';
      readonly start: string;
      readonly seq: number;
      readonly at: string;
      /** The highest serial of the events applied before it. */
      readonly afterSerial: number;
    }
  | {
      readonly check: 'seal';
      readonly start: string;
      /** The seal marker's seq and stamp. */
      readonly seq: number;
      readonly at: string;
      readonly from: number;
      readonly to: number;
      readonly since: string | null;
      readonly until: string | null;
      /** Records the seal covers, and records of the span this log holds. */
      readonly records: number;
      readonly seen: number;
      readonly result: 'intact' | 'broken';
      readonly lossy: boolean;
      /**
       * Records of spans sealed before this one that the daemon read only
       * after their seal (it says so in this one): a cause of a broken
       * verdict of an earlier span that is not a change to the log.
       */
      readonly late: number;
    }
  | {
      readonly check: 'late';
      readonly start: string;
      /** A record of a span already judged (it was not in that span when the verdict was given). */
      readonly at: string;
      /** The end of the spans judged so far. */
      readonly judgedTo: number;
    };

/** Counters, summed over nodes by the pipeline. */
export interface EvidenceStats {
  /** Markers missing between markers seen (sum of gap sizes). */
  readonly missing: number;
  readonly gaps: number;
  readonly order: number;
  readonly chain: number;
  readonly place: number;
  readonly intact: number;
  readonly broken: number;
  /** Records of spans already judged. */
  readonly late: number;
  /** Seals whose verdict the input ended before (decided at the end). */
  readonly pendingAtEnd: number;
}

export interface EvidenceOptions {
  readonly keyring: Keyring;
  /** Check seals (hash every record; default true). The live daemon checks only markers. */
  readonly seals?: boolean;
  /** Stamps of recent markers kept per start for `prev=` (default 4096). */
  readonly window?: number;
  /** How far (event time, ms) the events seen must be past a seal before it is judged (default 5000). */
  readonly settleMs?: number;
}

/** What is remembered of each start whose markers were seen. */
interface StartState {
  lastSeq: number;
  lastSerial: number;
  lastStamp: string;
  /** The `prev=` of the latest marker: a burst sent before any read-back names the same one. */
  lastPrev: string | null;
  /** Stamps of recent markers, oldest first (a ring of `window` entries). */
  readonly recent: Set<string>;
  readonly order: string[];
}

/** A valid seal waiting for its verdict. */
interface PendingSeal {
  readonly seq: number;
  readonly at: string;
  readonly timeMs: number;
  readonly body: Extract<MarkerBody, { op: 'seal' }>;
}

/** The start whose seals this node's records are checked against. */
interface CurrentStart {
  readonly start: string;
  readonly key: Buffer;
  readonly hasher: SealHasher;
  readonly buckets: SealBuckets;
  readonly pending: PendingSeal[];
  /** The end of the spans judged (-1: none yet). */
  judgedTo: number;
  /** The first serial of the first span judged (-1: none yet). */
  firstFrom: number;
}

/** Most seals waiting for their verdict; past it the oldest is judged at once. */
const MAX_PENDING = 1024;

const NONE: readonly EvidenceFinding[] = Object.freeze([]);

function stampOf(record: AuditRecord): string {
  return `${record.time}:${record.serial}`;
}

function stampText(s: MarkerStamp): string {
  return `${s.time}:${s.serial}`;
}

export class EvidenceVerifier {
  readonly #keyring: Keyring;
  readonly #seals: boolean;
  readonly #window: number;
  readonly #settleMs: number;
  /** The latest event time seen (ms). */
  #newestMs = 0;
  readonly #starts = new Map<string, StartState>();
  #current: CurrentStart | null = null;
  /** The highest serial of the events handed over so far (-1: none). */
  #maxSerial = -1;
  #missing = 0;
  #gaps = 0;
  #order = 0;
  #chain = 0;
  #place = 0;
  #intact = 0;
  #broken = 0;
  #late = 0;
  #pendingAtEnd = 0;

  constructor(options: EvidenceOptions) {
    this.#keyring = options.keyring;
    this.#seals = options.seals ?? true;
    this.#window = Math.max(1, options.window ?? 4096);
    this.#settleMs = options.settleMs ?? 5000;
  }

  /** A marker the labeller found valid, at its record. Returns what it shows. */
  marker(marker: Marker, record: AuditRecord): readonly EvidenceFinding[] {
    let out: EvidenceFinding[] | null = null;
    const add = (f: EvidenceFinding): void => {
      (out ??= []).push(f);
    };
    const at = stampOf(record);
    const serial = record.serial;
    const body = marker.body;
    if (body.op === 'start') this.#switchTo(marker.start, add);
    const state = this.#starts.get(marker.start);
    if (state !== undefined) {
      if (marker.seq > state.lastSeq + 1) {
        this.#gaps++;
        this.#missing += marker.seq - state.lastSeq - 1;
        add({
          check: 'gap',
          start: marker.start,
          from: state.lastSeq + 1,
          to: marker.seq - 1,
          after: state.lastStamp,
          before: at,
        });
      }
      if (serial < state.lastSerial && state.lastSerial - serial < SERIAL_WRAP) {
        this.#order++;
        add({ check: 'order', start: marker.start, seq: marker.seq, at, after: state.lastStamp });
      }
      const prev = marker.prev === undefined ? null : stampText(marker.prev);
      if (prev !== null && !state.recent.has(prev) && prev !== state.lastPrev) {
        this.#chain++;
        add({ check: 'chain', start: marker.start, seq: marker.seq, at, prev });
      }
      state.lastPrev = prev;
    }
    if (this.#maxSerial > serial && this.#maxSerial - serial < SERIAL_WRAP) {
      this.#place++;
      add({ check: 'place', start: marker.start, seq: marker.seq, at, afterSerial: this.#maxSerial });
    }
    this.#remember(marker, at, serial);
    const cur = this.#current;
    if (cur !== null && cur.start === marker.start && body.op === 'seal') {
      cur.pending.push({ seq: marker.seq, at, timeMs: record.timeMs, body });
      if (cur.pending.length > MAX_PENDING) this.#judgeOne(cur, add);
    }
    // After a stop, its records are still hashed: events of its last span
    // may close (or be released from the hold stage) after it.
    return out ?? NONE;
  }

  /** Every event the labeller processed, after its markers. Returns what it shows. */
  event(event: AuditEvent): readonly EvidenceFinding[] {
    let out: EvidenceFinding[] | null = null;
    const cur = this.#seals ? this.#current : null;
    if (cur !== null) {
      if (event.timeMs > this.#newestMs) this.#newestMs = event.timeMs;
      while (cur.pending.length > 0 && cur.pending[0]!.timeMs + this.#settleMs <= this.#newestMs) {
        this.#judgeOne(cur, (f) => (out ??= []).push(f));
      }
    }
    const records = event.records;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      if (!isSealedType(r.type)) continue;
      const serial = r.serial;
      if (serial > this.#maxSerial || this.#maxSerial - serial > SERIAL_WRAP) this.#maxSerial = serial;
      if (cur === null) continue;
      if (cur.judgedTo >= 0 && serial <= cur.judgedTo && cur.judgedTo - serial < SERIAL_WRAP) {
        if (serial >= cur.firstFrom) {
          this.#late++;
          (out ??= []).push({ check: 'late', start: cur.start, at: stampOf(r), judgedTo: cur.judgedTo });
        }
        continue;
      }
      cur.hasher.add(r);
    }
    return out ?? NONE;
  }

  /** The end of the input: judges the seals still waiting (there is no event to put them on). */
  end(): readonly EvidenceFinding[] {
    const out: EvidenceFinding[] = [];
    const cur = this.#current;
    if (cur !== null) {
      this.#pendingAtEnd += cur.pending.length;
      this.#judge(cur, (f) => out.push(f));
    }
    return out;
  }

  stats(): EvidenceStats {
    return {
      missing: this.#missing,
      gaps: this.#gaps,
      order: this.#order,
      chain: this.#chain,
      place: this.#place,
      intact: this.#intact,
      broken: this.#broken,
      late: this.#late,
      pendingAtEnd: this.#pendingAtEnd,
    };
  }

  /** A new start begins: the previous one's seals are judged, its records hashed with the new key. */
  #switchTo(start: string, add: (f: EvidenceFinding) => void): void {
    const old = this.#current;
    if (old !== null) this.#judge(old, add);
    this.#current = null;
    if (!this.#seals) return;
    const entry = this.#keyring.get(start);
    if (entry === undefined) return;
    const key = sealKey(entry.secret);
    const buckets = new SealBuckets();
    this.#current = {
      start,
      key,
      hasher: new SealHasher(key, buckets),
      buckets,
      pending: [],
      judgedTo: -1,
      firstFrom: -1,
    };
  }

  #remember(marker: Marker, at: string, serial: number): void {
    let state = this.#starts.get(marker.start);
    if (state === undefined) {
      state = {
        lastSeq: marker.seq,
        lastSerial: serial,
        lastStamp: at,
        lastPrev: marker.prev === undefined ? null : stampText(marker.prev),
        recent: new Set(),
        order: [],
      };
      this.#starts.set(marker.start, state);
    }
    state.lastSeq = marker.seq;
    state.lastSerial = serial;
    state.lastStamp = at;
    if (!state.recent.has(at)) {
      state.recent.add(at);
      state.order.push(at);
      if (state.order.length > this.#window) state.recent.delete(state.order.shift()!);
    }
    if (marker.body.op === 'stop') {
      // Nothing valid can follow a stop: forget the stamps, keep the seq.
      state.recent.clear();
      state.order.length = 0;
    }
  }

  #judge(cur: CurrentStart, add: (f: EvidenceFinding) => void): void {
    while (cur.pending.length > 0) this.#judgeOne(cur, add);
  }

  #judgeOne(cur: CurrentStart, add: (f: EvidenceFinding) => void): void {
    const p = cur.pending.shift()!;
    const { from, to } = p.body;
    if (cur.firstFrom < 0) cur.firstFrom = from;
    cur.hasher.flush();
    // What came before the span (before the first, or a span whose seal is
    // missing) is not sealed by anything this log holds.
    cur.buckets.dropBelow(from);
    const sum = cur.buckets.take(from, to);
    const intact =
      sum.records === p.body.records && sealMatches(cur.key, { from, to, sum, digest: p.body.digest });
    if (intact) this.#intact++;
    else this.#broken++;
    cur.judgedTo = to;
    add({
      check: 'seal',
      start: cur.start,
      seq: p.seq,
      at: p.at,
      from,
      to,
      since: p.body.since ?? (sum.records === 0 ? null : renderTime(sum.sinceMs)),
      until: p.body.until ?? (sum.records === 0 ? null : renderTime(sum.untilMs)),
      records: p.body.records,
      seen: sum.records,
      result: intact ? 'intact' : 'broken',
      lossy: p.body.lossy,
      late: p.body.late ?? 0,
    });
  }
}

/** The body of a CONTID_EVIDENCE record for a finding (docs/markers.md, "What a replay proves"). */
export function renderEvidence(f: EvidenceFinding): string {
  switch (f.check) {
    case 'gap':
      return `check=gap start=${f.start} seq=${f.from === f.to ? f.from : `${f.from}-${f.to}`} after=${f.after} before=${f.before}`;
    case 'order':
      return `check=order start=${f.start} seq=${f.seq} at=${f.at} after=${f.after}`;
    case 'chain':
      return `check=chain start=${f.start} seq=${f.seq} at=${f.at} prev=${f.prev}`;
    case 'place':
      return `check=place start=${f.start} seq=${f.seq} at=${f.at} after-serial=${f.afterSerial}`;
    case 'seal':
      return (
        `check=seal start=${f.start} seq=${f.seq} at=${f.at} from=${f.from} to=${f.to}` +
        (f.since === null ? '' : ` since=${f.since} until=${f.until ?? f.since}`) +
        ` records=${f.records} seen=${f.seen}` +
        (f.lossy ? ' lossy=1' : '') +
        (f.late > 0 ? ` late=${f.late}` : '') +
        ` result=${f.result}`
      );
    case 'late':
      return `check=late start=${f.start} at=${f.at} judged-to=${f.judgedTo}`;
  }
}
