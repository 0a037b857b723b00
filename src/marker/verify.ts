/**
 * Deciding whether a record is a genuine marker. Containers hold
 * CAP_AUDIT_WRITE by default and can send any user message, so a marker is
 * honoured only when all of these hold:
 *
 * 1. its type is MARKER_TYPE;
 * 2. its start id is in the keyring;
 * 3. the kernel-stamped `pid=` (which userspace cannot choose) is that
 *    start's daemon pid;
 * 4. the MAC verifies with that start's secret;
 * 5. no later start has been seen, and the start was not stopped;
 * 6. its seq is higher than every earlier marker's of that start;
 * 7. in a log of several hosts, it is on the node (`node=`) where its
 *    start's first marker was seen.
 *
 * Anything else that looks like a marker is a forgery attempt.
 */
import { timingSafeEqual } from 'node:crypto';

import { isUserMessageType } from '../interpret/record-types.js';
import type { AuditRecord } from '../parse/record.js';
import { MARKER_PREFIX, MARKER_TYPE, markerMac, parseMarkerText, type Marker } from './format.js';
import type { Keyring } from './keyring.js';

/** Why a would-be marker was refused. */
export type ForgeryReason =
  | 'wrong-type'
  | 'malformed'
  | 'unknown-start'
  | 'wrong-sender'
  | 'bad-mac'
  | 'stale-start'
  | 'replayed'
  | 'wrong-node';

/** The kernel-stamped sender of a user message. */
export interface Sender {
  readonly pid: number | null;
  readonly uid: number | null;
  readonly auid: number | null;
}

export type MarkerVerdict =
  | { readonly kind: 'none' }
  | { readonly kind: 'valid'; readonly marker: Marker; readonly sender: Sender }
  | {
      readonly kind: 'forged';
      readonly reason: ForgeryReason;
      readonly detail: string;
      readonly sender: Sender;
      /** The start id the text claimed, when it had one. */
      readonly start: string | null;
    };

/**
 * What the verifier remembers between markers: the daemon pid of each start
 * (from the keyring or its `op=start` marker), the last seq per start, and
 * which starts are over. Bounded by the keyring: only starts in it are kept.
 */
export class MarkerState {
  readonly daemonPids = new Map<string, number>();
  readonly lastSeq = new Map<string, number>();
  readonly closed = new Set<string>();
  current: string | null = null;
  /** The node whose records this state judges (null: records without `node=`). */
  readonly node: string | null;
  /** Which node each start belongs to, shared by the states of every node of one log. */
  readonly startNodes: Map<string, string | null>;

  constructor(options: { node?: string | null; startNodes?: Map<string, string | null> } = {}) {
    this.node = options.node ?? null;
    this.startNodes = options.startNodes ?? new Map<string, string | null>();
  }
}

/** The record's numeric type, also when only `UNKNOWN[n]` was given. */
export function recordType(record: AuditRecord): number {
  if (record.type !== 0) return record.type;
  const m = /^UNKNOWN\[(\d+)\]$/.exec(record.typeName);
  return m === null ? 0 : Number(m[1]);
}

/** The sender-supplied text inside `msg='…'`: from the first `msg='` to the last quote. */
export function userMessageText(record: AuditRecord): string | null {
  const body = record.body;
  let from: number;
  if (body.startsWith("msg='")) {
    from = 5;
  } else {
    const at = body.indexOf(" msg='");
    if (at < 0) return null;
    from = at + 6;
  }
  const end = body.lastIndexOf("'");
  return end >= from ? body.slice(from, end) : null;
}

/** The kernel-stamped pid/uid/auid of a user message (the first of each, before `msg=`). */
export function senderOf(record: AuditRecord): Sender {
  return { pid: idField(record, 'pid'), uid: idField(record, 'uid'), auid: idField(record, 'auid') };
}

function idField(record: AuditRecord, name: string): number | null {
  const v = record.field(name);
  return v !== undefined && /^[0-9]{1,10}$/.test(v) ? Number(v) : null;
}

/** The verdict on every record that is no marker (shared: this runs for every record). */
const NONE: MarkerVerdict = Object.freeze({ kind: 'none' });

/** Checks one record; updates `state` only for a valid marker. */
export function verifyMarker(record: AuditRecord, keyring: Keyring, state: MarkerState): MarkerVerdict {
  const type = recordType(record);
  if (!isUserMessageType(type)) return NONE;
  const text = userMessageText(record);
  const looksLike = text !== null && (text === MARKER_PREFIX || text.startsWith(`${MARKER_PREFIX} `));
  if (type !== MARKER_TYPE && !looksLike) return NONE;
  const sender = senderOf(record);
  const forged = (reason: ForgeryReason, detail: string, start: string | null = null): MarkerVerdict => ({
    kind: 'forged',
    reason,
    detail,
    sender,
    start,
  });
  if (type !== MARKER_TYPE) return forged('wrong-type', `marker text in a type ${type} message`);
  if (text === null) return forged('malformed', 'no msg text');
  const parsed = parseMarkerText(text);
  if (typeof parsed === 'string') return forged('malformed', parsed);
  const { marker } = parsed;
  const start = marker.start;
  const entry = keyring.get(start);
  if (entry === undefined) return forged('unknown-start', `start "${start}" is not in the keyring`, start);
  const body = marker.body;
  const expected =
    entry.daemonPid ?? state.daemonPids.get(start) ?? (body.op === 'start' ? body.daemonPid : null);
  if (expected === null) return forged('wrong-sender', `no daemon pid known for start "${start}"`, start);
  if (sender.pid !== expected) {
    return forged('wrong-sender', `sent by pid ${sender.pid ?? '?'}, the daemon is pid ${expected}`, start);
  }
  if (body.op === 'start' && body.daemonPid !== expected) {
    return forged('wrong-sender', `start names daemon pid ${body.daemonPid}, expected ${expected}`, start);
  }
  const want = Buffer.from(markerMac(parsed.signed, entry.secret), 'hex');
  if (!timingSafeEqual(want, Buffer.from(parsed.mac, 'hex')))
    return forged('bad-mac', 'MAC does not verify', start);
  const bound = state.startNodes.get(start);
  if (bound !== undefined && bound !== state.node) {
    return forged('wrong-node', `start "${start}" belongs to node ${bound ?? '(none)'}`, start);
  }
  if (state.closed.has(start)) return forged('stale-start', `start "${start}" is over`, start);
  const last = state.lastSeq.get(start);
  if (last !== undefined && marker.seq <= last) {
    return forged('replayed', `seq ${marker.seq} after seq ${last}`, start);
  }
  // Valid: only now does the state change.
  if (state.current !== null && state.current !== start) state.closed.add(state.current);
  state.current = body.op === 'stop' ? null : start;
  if (body.op === 'stop') state.closed.add(start);
  state.lastSeq.set(start, marker.seq);
  state.daemonPids.set(start, expected);
  if (bound === undefined) state.startNodes.set(start, state.node);
  return { kind: 'valid', marker, sender };
}
