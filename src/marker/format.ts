/**
 * The marker: the user message through which the live daemon writes a
 * contid operation into the kernel audit stream, so that it takes effect at
 * exactly its place in the kernel's order (DESIGN.md, "The stream is the
 * source of truth"). See docs/markers.md.
 *
 * Text (one line, printable ASCII, fields in this order, `mac=` last):
 *
 *     contid-marker v=1 start=<start-id> seq=<n> op=<op> <op fields> mac=<64 hex>
 *
 * The MAC is HMAC-SHA256 with the start's secret over every byte before
 * ` mac=`. The verifier MACs the bytes as received, so no canonicalisation
 * can differ between writer and reader.
 */
import { createHmac } from 'node:crypto';

/** The user message type of markers: in 2600–2999, the block libaudit leaves unassigned. */
export const MARKER_TYPE = 2942;

/** The first word of every marker. */
export const MARKER_PREFIX = 'contid-marker';

/** The orchestrator that asked the daemon for an operation, as the daemon established it (SO_PEERCRED, /proc). */
export interface MarkerCaller {
  readonly pid: number;
  readonly uid: number;
  readonly auid: number;
  readonly exe: string;
  /** CAP_AUDIT_CONTROL in the initial user namespace. */
  readonly privileged: boolean;
  /** The caller's host ppid, so an unseen caller can be placed in the process table. */
  readonly ppid?: number;
}

/** What a marker asks for. */
export type MarkerBody =
  | { readonly op: 'start'; readonly daemonPid: number }
  | { readonly op: 'stop' }
  | {
      readonly op: 'set';
      readonly pid: number;
      /** The target's host ppid at request time, so a target not yet seen in the stream can be placed. */
      readonly ppid?: number;
      /** The value as the orchestrator gave it (validated by policy: EINVAL). */
      readonly contid: string;
      readonly caller: MarkerCaller;
      /**
       * The owner a privileged caller named for the ID (`oci:<container
       * id>`), in place of its uid and executable (docs/control.md).
       */
      readonly owner?: string;
      /** Create-only: refused (ENOTUNIQ) when the ID is live, whoever owns it. */
      readonly create?: boolean;
    }
  | {
      readonly op: 'adopt';
      readonly pid: number;
      readonly ppid?: number;
      readonly contid: string;
      readonly caller: MarkerCaller;
    }
  | { readonly op: 'grant'; readonly pid: number; readonly ppid?: number; readonly caller: MarkerCaller }
  | {
      /**
       * A process the daemon saw die by a signal (the proc connector): such
       * a death makes no exit_group record, so without this the process
       * would stay live in the table and its container would never drop.
       */
      readonly op: 'exit';
      readonly pid: number;
      /** Its ppid in the daemon's table when sent: a reused pid with another parent is left alone. */
      readonly ppid: number;
      /** The wait status the kernel reported (signal in the low 7 bits). */
      readonly status: number;
    };

export interface Marker {
  /** The daemon start this marker belongs to. */
  readonly start: string;
  /** Strictly increasing within a start. */
  readonly seq: number;
  readonly body: MarkerBody;
}

/** A marker text split into its signed part and MAC, with the fields parsed. */
export interface ParsedMarker {
  readonly marker: Marker;
  readonly signed: string;
  readonly mac: string;
}

const START_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** An owner name: 1–256 printable ASCII characters, no space (`oci:<container id>`). */
const OWNER_NAME = /^[!-~]{1,256}$/;
const CONTID_TOKEN = /^[0-9A-Za-z_+-]{1,64}$/;
const UINT = /^(0|[1-9][0-9]{0,9})$/;
const HEX = /^(?:[0-9a-f]{2})*$/;

/** True for a start id the format accepts. */
export function isStartId(text: string): boolean {
  return START_ID.test(text);
}

/** True for an owner name a set marker can carry: 1–256 printable ASCII characters, no space. */
export function isOwnerName(text: string): boolean {
  return OWNER_NAME.test(text);
}

/**
 * Builds a marker's text, MAC included, for the daemon to send (append a
 * NUL when sending: the kernel overwrites the message's last byte with one).
 * Throws a RangeError on a field the format cannot carry.
 */
export function encodeMarker(marker: Marker, secret: Uint8Array): string {
  if (!START_ID.test(marker.start)) throw new RangeError(`Invalid marker start id "${marker.start}"`);
  const parts = [
    MARKER_PREFIX,
    'v=1',
    `start=${marker.start}`,
    `seq=${uint(marker.seq)}`,
    `op=${marker.body.op}`,
  ];
  const b = marker.body;
  switch (b.op) {
    case 'start':
      parts.push(`daemon-pid=${uint(b.daemonPid)}`);
      break;
    case 'stop':
      break;
    case 'exit':
      parts.push(`pid=${uint(b.pid)}`, `ppid=${uint(b.ppid)}`, `status=${uint(b.status)}`);
      break;
    case 'set':
    case 'adopt':
    case 'grant':
      parts.push(`pid=${uint(b.pid)}`);
      if (b.ppid !== undefined) parts.push(`ppid=${uint(b.ppid)}`);
      if (b.op !== 'grant') {
        if (!CONTID_TOKEN.test(b.contid)) throw new RangeError(`Invalid marker contid "${b.contid}"`);
        parts.push(`contid=${b.contid}`);
      }
      if (b.op === 'set' && b.owner !== undefined) {
        if (!isOwnerName(b.owner)) throw new RangeError(`Invalid marker owner "${b.owner.slice(0, 64)}"`);
        parts.push(`owner=${Buffer.from(b.owner, 'utf8').toString('hex')}`);
      }
      if (b.op === 'set' && b.create === true) parts.push('create=1');
      parts.push(
        `caller-pid=${uint(b.caller.pid)}`,
        `caller-uid=${uint(b.caller.uid)}`,
        `caller-auid=${uint(b.caller.auid)}`,
        `caller-exe=${Buffer.from(b.caller.exe, 'utf8').toString('hex')}`,
        `privileged=${b.caller.privileged ? 1 : 0}`,
      );
      if (b.caller.ppid !== undefined) parts.push(`caller-ppid=${uint(b.caller.ppid)}`);
      break;
  }
  const signed = parts.join(' ');
  return `${signed} mac=${markerMac(signed, secret)}`;
}

/** HMAC-SHA256 of the signed text, lower-case hex. */
export function markerMac(signed: string, secret: Uint8Array): string {
  return createHmac('sha256', secret).update(signed, 'latin1').digest('hex');
}

/** Parses a marker text; returns a reason string when it is not a well-formed v1 marker. */
export function parseMarkerText(text: string): ParsedMarker | string {
  const at = text.lastIndexOf(' mac=');
  if (at < 0) return 'no mac';
  const signed = text.slice(0, at);
  const mac = text.slice(at + 5);
  if (!/^[0-9a-f]{64}$/.test(mac)) return 'bad mac syntax';
  const words = signed.split(' ');
  if (words[0] !== MARKER_PREFIX) return 'not a marker';
  const fields = new Map<string, string>();
  for (const word of words.slice(1)) {
    const eq = word.indexOf('=');
    if (eq <= 0) return `bad field "${word.slice(0, 40)}"`;
    const key = word.slice(0, eq);
    if (fields.has(key)) return `repeated field ${key}`;
    fields.set(key, word.slice(eq + 1));
  }
  if (fields.get('v') !== '1') return 'unsupported version';
  const start = fields.get('start') ?? '';
  if (!START_ID.test(start)) return 'bad start id';
  const seq = int(fields.get('seq'));
  if (seq === null) return 'bad seq';
  const body = parseBody(fields);
  if (typeof body === 'string') return body;
  return { marker: { start, seq, body }, signed, mac };
}

function parseBody(f: Map<string, string>): MarkerBody | string {
  const op = f.get('op');
  const allowed = (extra: readonly string[]): string | null => {
    for (const key of f.keys()) {
      if (!['v', 'start', 'seq', 'op', ...extra].includes(key)) return `unexpected field ${key}`;
    }
    return null;
  };
  switch (op) {
    case 'start': {
      const daemonPid = int(f.get('daemon-pid'));
      if (daemonPid === null) return 'bad daemon-pid';
      return allowed(['daemon-pid']) ?? { op, daemonPid };
    }
    case 'stop':
      return allowed([]) ?? { op };
    case 'exit': {
      const pid = int(f.get('pid'));
      const ppid = int(f.get('ppid'));
      const status = int(f.get('status'));
      if (pid === null || ppid === null || status === null) return 'bad exit fields';
      return allowed(['pid', 'ppid', 'status']) ?? { op, pid, ppid, status };
    }
    case 'set':
    case 'adopt':
    case 'grant': {
      const pid = int(f.get('pid'));
      if (pid === null) return 'bad pid';
      const caller = parseCaller(f);
      if (typeof caller === 'string') return caller;
      const ppidText = f.get('ppid');
      const ppid = ppidText === undefined ? undefined : int(ppidText);
      if (ppid === null) return 'bad ppid';
      const common = [
        'pid',
        'ppid',
        'caller-pid',
        'caller-uid',
        'caller-auid',
        'caller-exe',
        'privileged',
        'caller-ppid',
      ];
      if (op === 'grant') {
        const bad = allowed(common);
        if (bad !== null) return bad;
        return ppid === undefined ? { op, pid, caller } : { op, pid, ppid, caller };
      }
      const contid = f.get('contid');
      if (contid === undefined || !CONTID_TOKEN.test(contid)) return 'bad contid';
      const target = ppid === undefined ? { pid, contid, caller } : { pid, ppid, contid, caller };
      if (op === 'adopt') return allowed([...common, 'contid']) ?? { op, ...target };
      const bad = allowed([...common, 'contid', 'owner', 'create']);
      if (bad !== null) return bad;
      const ownerHex = f.get('owner');
      let owner: string | undefined;
      if (ownerHex !== undefined) {
        owner = HEX.test(ownerHex) ? Buffer.from(ownerHex, 'hex').toString('latin1') : '';
        if (!OWNER_NAME.test(owner)) return 'bad owner';
      }
      const create = f.get('create');
      if (create !== undefined && create !== '1') return 'bad create';
      return {
        op,
        ...target,
        ...(owner === undefined ? {} : { owner }),
        ...(create === undefined ? {} : { create: true }),
      };
    }
    default:
      return 'unknown op';
  }
}

function parseCaller(f: Map<string, string>): MarkerCaller | string {
  const pid = int(f.get('caller-pid'));
  const uid = int(f.get('caller-uid'));
  const auid = int(f.get('caller-auid'));
  const exeHex = f.get('caller-exe') ?? '';
  const privileged = f.get('privileged');
  if (pid === null || uid === null || auid === null) return 'bad caller ids';
  if (!HEX.test(exeHex)) return 'bad caller-exe';
  if (privileged !== '0' && privileged !== '1') return 'bad privileged';
  const exe = Buffer.from(exeHex, 'hex').toString('utf8');
  const ppidText = f.get('caller-ppid');
  const caller = { pid, uid, auid, exe, privileged: privileged === '1' };
  if (ppidText === undefined) return caller;
  const ppid = int(ppidText);
  return ppid === null ? 'bad caller-ppid' : { ...caller, ppid };
}

function int(text: string | undefined): number | null {
  if (text === undefined || !UINT.test(text)) return null;
  const n = Number(text);
  return n <= 0xffffffff ? n : null;
}

function uint(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`Invalid marker number ${n}`);
  return String(n);
}
