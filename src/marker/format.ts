/**
 * The marker: the user message through which the live daemon writes a
 * contid operation into the kernel audit stream, so that it takes effect at
 * exactly its place in the kernel's order (docs/design.md, "The stream is the
 * source of truth"). See docs/markers.md.
 *
 * Text (one line, printable ASCII, fields in this order, `mac=` last):
 *
 *     contid-marker v=1 start=<start-id> seq=<n> [prev=<time:serial>] op=<op> <op fields> mac=<64 hex>
 *
 * The MAC is HMAC-SHA256 with the start's secret over every byte before
 * ` mac=`. The verifier MACs the bytes as received, so no canonicalisation
 * can differ between writer and reader.
 */
import { ContidRangeError } from '../errors.js';
import { isUtf8 } from 'node:buffer';
import { createHmac } from 'node:crypto';
import { metaProblem, metaText, nameProblem, parseMetaText } from './description.js';

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
  /**
   * The caller's start time (clock ticks since boot, /proc/PID/stat field
   * 22) when it connected: names one incarnation of the pid.
   */
  readonly start?: number;
}

/** One process of the daemon's /proc snapshot, as a `seed` marker carries it. */
export interface SeedEntry {
  readonly pid: number;
  readonly ppid: number;
  /** Start time, clock ticks since boot. */
  readonly start: number;
  /** Its pid namespace against the initial one, when the daemon could read it. */
  readonly pidns: 'host' | 'nested' | null;
}

/** A live process's restored label: a chain, or unknown. */
export interface RestoredProcess {
  readonly pid: number;
  readonly start: number;
  /** The chain leaf to root, or null for unknown. */
  readonly chain: readonly string[] | null;
}

/** Most processes one `seed` marker carries (a user message holds about 8 KiB). */
export const SEED_ENTRIES_PER_MARKER = 200;

/** A record's kernel stamp: its time as written (`SEC.MS`) and serial. */
export interface MarkerStamp {
  readonly time: string;
  readonly serial: number;
}

/** What a marker asks for. */
export type MarkerBody =
  | {
      readonly op: 'start';
      readonly daemonPid: number;
      /**
       * A restore from a checkpoint follows (restore-* markers, then
       * restore-done): until then no label is known, and events are held.
       */
      readonly restore?: boolean;
    }
  | { readonly op: 'stop' }
  | {
      readonly op: 'set';
      readonly pid: number;
      /** The target's host ppid at request time, so a target not yet seen in the stream can be placed. */
      readonly ppid?: number;
      /** The target's start time at request time: a pid reused since is another process (ESRCH). */
      readonly start?: number;
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
      /** The container's name, as the orchestrator gave it (src/marker/description.ts). */
      readonly name?: string;
      /** The container's metadata, in the order given; never empty when present. */
      readonly meta?: Readonly<Record<string, string>>;
    }
  | {
      readonly op: 'adopt';
      readonly pid: number;
      readonly ppid?: number;
      readonly start?: number;
      /** The container's chain, leaf to root with `+` between levels (`5+42`). */
      readonly contid: string;
      readonly caller: MarkerCaller;
    }
  | {
      readonly op: 'grant';
      readonly pid: number;
      readonly ppid?: number;
      readonly start?: number;
      /** The grantee's uid and executable at request time: the grant is for that identity only. */
      readonly targetUid?: number;
      readonly targetExe?: string;
      readonly caller: MarkerCaller;
    }
  | {
      /**
       * The daemon's /proc snapshot (part of it: one marker holds at most
       * SEED_ENTRIES_PER_MARKER processes). Written into the stream so a
       * replay starts from the same table as the live daemon.
       */
      readonly op: 'seed';
      readonly procs: readonly SeedEntry[];
    }
  | {
      /**
       * A process the stream named (as a ppid) before any record of its
       * own, as the daemon found it in /proc: its parent, start time, and
       * its pid in its parent's pid namespace (the `exit=` of its creation).
       */
      readonly op: 'proc';
      readonly pid: number;
      readonly ppid: number;
      readonly start: number;
      readonly nspid: number;
    }
  | {
      /** A pid the stream named (as a ppid) that the daemon did not find in /proc: it has exited. */
      readonly op: 'gone';
      readonly pid: number;
    }
  | {
      /** A container restored from the checkpoint of an earlier start (parents before children). */
      readonly op: 'restore-container';
      /** Its chain, leaf to root. */
      readonly chain: readonly string[];
      readonly ownerUid: number;
      readonly ownerExe: string;
      /** A named owner (`oci:<container id>`), when the set that created it named one. */
      readonly ownerName?: string;
    }
  | {
      /** Restored labels of live processes (at most SEED_ENTRIES_PER_MARKER). */
      readonly op: 'restore';
      readonly procs: readonly RestoredProcess[];
    }
  | {
      /** A grant restored from the checkpoint, for the same identity. */
      readonly op: 'restore-grant';
      readonly pid: number;
      readonly start: number;
      readonly targetUid?: number;
      readonly targetExe?: string;
    }
  | {
      /** The end of a restore, with what it did; labels are known again. */
      readonly op: 'restore-done';
      /** The start whose checkpoint was restored. */
      readonly from: string;
      /** The last kernel serial that start had read when it saved the checkpoint. */
      readonly serial: number;
      readonly processes: number;
      readonly containers: number;
      readonly grants: number;
    }
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
      /** Its start time when the daemon's table knew it: another incarnation is left alone. */
      readonly start?: number;
    }
  | {
      /**
       * The records the daemon read with kernel serials `from`..`to`, as a
       * keyed multiset digest (src/marker/seal.ts): a replay that sums the
       * same records of its log finds whether that span is intact, in
       * whatever order the log holds them.
       */
      readonly op: 'seal';
      readonly from: number;
      readonly to: number;
      /** How many records the digest covers. */
      readonly records: number;
      /** The earliest and latest record time in the span (`SEC.MS`), absent when it is empty. */
      readonly since?: string;
      readonly until?: string;
      /** Records read since the previous seal whose serial was in a span already sealed. */
      readonly late?: number;
      /** The daemon saw losses (ENOBUFS, serial gaps, the kernel's lost counter) since the previous seal. */
      readonly lossy: boolean;
      /** HMAC of the span and its sum (sealDigest), lower-case hex. */
      readonly digest: string;
    };

export interface Marker {
  /** The daemon start this marker belongs to. */
  readonly start: string;
  /** Strictly increasing within a start. */
  readonly seq: number;
  /**
   * The kernel stamp of the latest marker of this start the daemon had read
   * back when it sent this one (absent before it had read any): chains the
   * markers, so a replay notices one deleted or moved.
   */
  readonly prev?: MarkerStamp;
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
/** A contid as given (policy validates it), or for adopt a chain `5+42+1`. */
const CONTID_TOKEN = /^[0-9A-Za-z_+-]{1,256}$/;
const UINT = /^(0|[1-9][0-9]{0,9})$/;
const BIGUINT = /^(0|[1-9][0-9]{0,15})$/;
const SEED_ITEM = /^(0|[1-9][0-9]{0,9})\.(0|[1-9][0-9]{0,9})\.(0|[1-9][0-9]{0,15})\.([hnu])$/;
const RESTORE_ITEM = /^(0|[1-9][0-9]{0,9})\.(0|[1-9][0-9]{0,15})\.(u|[0-9]{1,20}(?:\+[0-9]{1,20}){0,15})$/;
const CHAIN = /^[0-9]{1,20}(?:\+[0-9]{1,20}){0,15}$/;
const HEX = /^(?:[0-9a-f]{2})*$/;
const STAMP = /^((?:0|[1-9][0-9]{0,11})\.[0-9]{3}):(0|[1-9][0-9]{0,9})$/;
const TIME = /^(?:0|[1-9][0-9]{0,11})\.[0-9]{3}$/;
const DIGEST = /^[0-9a-f]{64}$/;

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
 * Throws a ContidRangeError (ERR_OUT_OF_RANGE) on a field the format cannot carry.
 */
export function encodeMarker(marker: Marker, secret: Uint8Array): string {
  if (!START_ID.test(marker.start))
    throw new ContidRangeError(
      `Cannot encode the marker: "${marker.start}" is not a start id`,
      'ERR_OUT_OF_RANGE',
    );
  const parts = [MARKER_PREFIX, 'v=1', `start=${marker.start}`, `seq=${uint(marker.seq)}`];
  if (marker.prev !== undefined) parts.push(`prev=${stamp(marker.prev)}`);
  parts.push(`op=${marker.body.op}`);
  const b = marker.body;
  switch (b.op) {
    case 'start':
      parts.push(`daemon-pid=${uint(b.daemonPid)}`);
      if (b.restore === true) parts.push('restore=1');
      break;
    case 'restore-container':
      parts.push(
        `chain=${chainText(b.chain)}`,
        `owner-uid=${uint(b.ownerUid)}`,
        `owner-exe=${hex(b.ownerExe)}`,
      );
      if (b.ownerName !== undefined) parts.push(`owner-name=${hex(b.ownerName)}`);
      break;
    case 'restore':
      if (b.procs.length > SEED_ENTRIES_PER_MARKER)
        throw new ContidRangeError(
          `Cannot encode the restore marker: more than ${SEED_ENTRIES_PER_MARKER} processes`,
          'ERR_OUT_OF_RANGE',
        );
      parts.push(
        `procs=${b.procs.map((p) => `${uint(p.pid)}.${bigUint(p.start)}.${p.chain === null ? 'u' : chainText(p.chain)}`).join(',')}`,
      );
      break;
    case 'restore-grant':
      parts.push(`pid=${uint(b.pid)}`, `stime=${bigUint(b.start)}`);
      if (b.targetUid !== undefined) parts.push(`target-uid=${uint(b.targetUid)}`);
      if (b.targetExe !== undefined) parts.push(`target-exe=${hex(b.targetExe)}`);
      break;
    case 'restore-done':
      if (!START_ID.test(b.from))
        throw new ContidRangeError(
          `Cannot encode the marker: "${b.from}" is not a start id`,
          'ERR_OUT_OF_RANGE',
        );
      parts.push(
        `from=${b.from}`,
        `serial=${bigUint(b.serial)}`,
        `processes=${uint(b.processes)}`,
        `containers=${uint(b.containers)}`,
        `grants=${uint(b.grants)}`,
      );
      break;
    case 'stop':
      break;
    case 'exit':
      parts.push(`pid=${uint(b.pid)}`, `ppid=${uint(b.ppid)}`, `status=${uint(b.status)}`);
      if (b.start !== undefined) parts.push(`stime=${bigUint(b.start)}`);
      break;
    case 'seed':
      if (b.procs.length > SEED_ENTRIES_PER_MARKER)
        throw new ContidRangeError(
          `Cannot encode the seed marker: more than ${SEED_ENTRIES_PER_MARKER} processes`,
          'ERR_OUT_OF_RANGE',
        );
      parts.push(`procs=${b.procs.map(seedItem).join(',')}`);
      break;
    case 'proc':
      parts.push(
        `pid=${uint(b.pid)}`,
        `ppid=${uint(b.ppid)}`,
        `stime=${bigUint(b.start)}`,
        `nspid=${uint(b.nspid)}`,
      );
      break;
    case 'gone':
      parts.push(`pid=${uint(b.pid)}`);
      break;
    case 'seal':
      if (b.to < b.from)
        throw new ContidRangeError(
          `Cannot encode the marker: seal span ${b.from}-${b.to} is reversed`,
          'ERR_OUT_OF_RANGE',
        );
      parts.push(`from=${uint(b.from)}`, `to=${uint(b.to)}`, `records=${uint(b.records)}`);
      if (b.since !== undefined && b.until !== undefined) {
        parts.push(`since=${time(b.since)}`, `until=${time(b.until)}`);
      }
      if (b.late !== undefined && b.late > 0) parts.push(`late=${uint(b.late)}`);
      if (b.lossy) parts.push('lossy=1');
      if (!DIGEST.test(b.digest))
        throw new ContidRangeError(
          'Cannot encode the marker: the seal digest is not hex',
          'ERR_OUT_OF_RANGE',
        );
      parts.push(`digest=${b.digest}`);
      break;
    case 'set':
    case 'adopt':
    case 'grant':
      parts.push(`pid=${uint(b.pid)}`);
      if (b.ppid !== undefined) parts.push(`ppid=${uint(b.ppid)}`);
      if (b.start !== undefined) parts.push(`stime=${bigUint(b.start)}`);
      if (b.op === 'grant') {
        if (b.targetUid !== undefined) parts.push(`target-uid=${uint(b.targetUid)}`);
        if (b.targetExe !== undefined)
          parts.push(`target-exe=${Buffer.from(b.targetExe, 'utf8').toString('hex')}`);
      } else {
        if (!CONTID_TOKEN.test(b.contid))
          throw new ContidRangeError(
            `Cannot encode the marker: "${b.contid}" is not a contid`,
            'ERR_OUT_OF_RANGE',
          );
        parts.push(`contid=${b.contid}`);
      }
      if (b.op === 'set' && b.owner !== undefined) {
        if (!isOwnerName(b.owner))
          throw new ContidRangeError(
            `Cannot encode the marker: "${b.owner.slice(0, 64)}" is not an owner name`,
            'ERR_OUT_OF_RANGE',
          );
        parts.push(`owner=${Buffer.from(b.owner, 'utf8').toString('hex')}`);
      }
      if (b.op === 'set' && b.create === true) parts.push('create=1');
      if (b.op === 'set') parts.push(...describe(b));
      parts.push(
        `caller-pid=${uint(b.caller.pid)}`,
        `caller-uid=${uint(b.caller.uid)}`,
        `caller-auid=${uint(b.caller.auid)}`,
        `caller-exe=${Buffer.from(b.caller.exe, 'utf8').toString('hex')}`,
        `privileged=${b.caller.privileged ? 1 : 0}`,
      );
      if (b.caller.ppid !== undefined) parts.push(`caller-ppid=${uint(b.caller.ppid)}`);
      if (b.caller.start !== undefined) parts.push(`caller-stime=${bigUint(b.caller.start)}`);
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
  const prevText = fields.get('prev');
  let prev: MarkerStamp | undefined;
  if (prevText !== undefined) {
    const m = STAMP.exec(prevText);
    if (m === null) return 'bad prev';
    prev = { time: m[1]!, serial: Number(m[2]) };
    if (prev.serial > 0xffffffff) return 'bad prev';
  }
  const body = parseBody(fields);
  if (typeof body === 'string') return body;
  return { marker: prev === undefined ? { start, seq, body } : { start, seq, prev, body }, signed, mac };
}

function parseBody(f: Map<string, string>): MarkerBody | string {
  const op = f.get('op');
  const allowed = (extra: readonly string[]): string | null => {
    for (const key of f.keys()) {
      if (!['v', 'start', 'seq', 'prev', 'op', ...extra].includes(key)) return `unexpected field ${key}`;
    }
    return null;
  };
  switch (op) {
    case 'start': {
      const daemonPid = int(f.get('daemon-pid'));
      if (daemonPid === null) return 'bad daemon-pid';
      const restore = f.get('restore');
      if (restore !== undefined && restore !== '1') return 'bad restore';
      return (
        allowed(['daemon-pid', 'restore']) ?? { op, daemonPid, ...(restore === '1' ? { restore: true } : {}) }
      );
    }
    case 'restore-container': {
      const chain = f.get('chain');
      const ownerUid = int(f.get('owner-uid'));
      const exe = f.get('owner-exe');
      const name = f.get('owner-name');
      if (chain === undefined || !CHAIN.test(chain)) return 'bad chain';
      if (ownerUid === null || exe === undefined || !HEX.test(exe)) return 'bad owner';
      if (name !== undefined && !HEX.test(name)) return 'bad owner-name';
      const bad = allowed(['chain', 'owner-uid', 'owner-exe', 'owner-name']);
      if (bad !== null) return bad;
      return {
        op,
        chain: chain.split('+'),
        ownerUid,
        ownerExe: unhex(exe),
        ...(name === undefined ? {} : { ownerName: unhex(name) }),
      };
    }
    case 'restore': {
      const text = f.get('procs');
      if (text === undefined) return 'bad procs';
      const procs: RestoredProcess[] = [];
      for (const item of text === '' ? [] : text.split(',')) {
        const m = RESTORE_ITEM.exec(item);
        if (m === null || procs.length >= SEED_ENTRIES_PER_MARKER) return 'bad procs';
        procs.push({ pid: Number(m[1]), start: Number(m[2]), chain: m[3] === 'u' ? null : m[3]!.split('+') });
      }
      return allowed(['procs']) ?? { op, procs };
    }
    case 'restore-grant': {
      const pid = int(f.get('pid'));
      const start = big(f.get('stime'));
      if (pid === null || start === null) return 'bad restore-grant fields';
      const uidText = f.get('target-uid');
      const targetUid = uidText === undefined ? undefined : int(uidText);
      if (targetUid === null) return 'bad target-uid';
      const exe = f.get('target-exe');
      if (exe !== undefined && !HEX.test(exe)) return 'bad target-exe';
      const bad = allowed(['pid', 'stime', 'target-uid', 'target-exe']);
      if (bad !== null) return bad;
      return {
        op,
        pid,
        start,
        ...(targetUid === undefined ? {} : { targetUid }),
        ...(exe === undefined ? {} : { targetExe: unhex(exe) }),
      };
    }
    case 'restore-done': {
      const from = f.get('from') ?? '';
      const serial = big(f.get('serial'));
      const processes = int(f.get('processes'));
      const containers = int(f.get('containers'));
      const grants = int(f.get('grants'));
      if (
        !START_ID.test(from) ||
        serial === null ||
        processes === null ||
        containers === null ||
        grants === null
      )
        return 'bad restore-done fields';
      return (
        allowed(['from', 'serial', 'processes', 'containers', 'grants']) ?? {
          op,
          from,
          serial,
          processes,
          containers,
          grants,
        }
      );
    }
    case 'stop':
      return allowed([]) ?? { op };
    case 'exit': {
      const pid = int(f.get('pid'));
      const ppid = int(f.get('ppid'));
      const status = int(f.get('status'));
      if (pid === null || ppid === null || status === null) return 'bad exit fields';
      const start = optionalBig(f.get('stime'));
      if (start === null) return 'bad stime';
      const bad = allowed(['pid', 'ppid', 'status', 'stime']);
      if (bad !== null) return bad;
      return start === undefined ? { op, pid, ppid, status } : { op, pid, ppid, status, start };
    }
    case 'seed': {
      const text = f.get('procs');
      if (text === undefined) return 'bad procs';
      const procs: SeedEntry[] = [];
      for (const item of text === '' ? [] : text.split(',')) {
        const m = SEED_ITEM.exec(item);
        if (m === null || procs.length >= SEED_ENTRIES_PER_MARKER) return 'bad procs';
        const ns = m[4] === 'h' ? 'host' : m[4] === 'n' ? 'nested' : null;
        procs.push({ pid: Number(m[1]), ppid: Number(m[2]), start: Number(m[3]), pidns: ns });
      }
      return allowed(['procs']) ?? { op, procs };
    }
    case 'proc': {
      const pid = int(f.get('pid'));
      const ppid = int(f.get('ppid'));
      const start = big(f.get('stime'));
      const nspid = int(f.get('nspid'));
      if (pid === null || ppid === null || start === null || nspid === null) return 'bad proc fields';
      return allowed(['pid', 'ppid', 'stime', 'nspid']) ?? { op, pid, ppid, start, nspid };
    }
    case 'gone': {
      const pid = int(f.get('pid'));
      if (pid === null) return 'bad pid';
      return allowed(['pid']) ?? { op, pid };
    }
    case 'seal':
      return parseSeal(f, allowed);
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
      const start = optionalBig(f.get('stime'));
      if (start === null) return 'bad stime';
      const target = {
        pid,
        ...(ppid === undefined ? {} : { ppid }),
        ...(start === undefined ? {} : { start }),
      };
      const common = [
        'pid',
        'ppid',
        'stime',
        'caller-pid',
        'caller-uid',
        'caller-auid',
        'caller-exe',
        'privileged',
        'caller-ppid',
        'caller-stime',
      ];
      if (op === 'grant') {
        const bad = allowed([...common, 'target-uid', 'target-exe']);
        if (bad !== null) return bad;
        const uidText = f.get('target-uid');
        const targetUid = uidText === undefined ? undefined : int(uidText);
        if (targetUid === null) return 'bad target-uid';
        const exeHex = f.get('target-exe');
        if (exeHex !== undefined && !HEX.test(exeHex)) return 'bad target-exe';
        return {
          op,
          ...target,
          ...(targetUid === undefined ? {} : { targetUid }),
          ...(exeHex === undefined ? {} : { targetExe: Buffer.from(exeHex, 'hex').toString('utf8') }),
          caller,
        };
      }
      const contid = f.get('contid');
      if (contid === undefined || !CONTID_TOKEN.test(contid)) return 'bad contid';
      if (op === 'adopt') return allowed([...common, 'contid']) ?? { op, ...target, contid, caller };
      const bad = allowed([...common, 'contid', 'owner', 'create', 'name', 'meta']);
      if (bad !== null) return bad;
      const ownerHex = f.get('owner');
      let owner: string | undefined;
      if (ownerHex !== undefined) {
        owner = HEX.test(ownerHex) ? Buffer.from(ownerHex, 'hex').toString('latin1') : '';
        if (!OWNER_NAME.test(owner)) return 'bad owner';
      }
      const create = f.get('create');
      if (create !== undefined && create !== '1') return 'bad create';
      const nameHex = f.get('name');
      const name = nameHex === undefined ? undefined : utf8Hex(nameHex);
      if (name === null || (name !== undefined && nameProblem(name) !== null)) return 'bad name';
      const metaHex = f.get('meta');
      const metaString = metaHex === undefined ? undefined : utf8Hex(metaHex);
      const meta = metaString === undefined || metaString === null ? metaString : parseMetaText(metaString);
      if (meta === null) return 'bad meta';
      return {
        op,
        ...target,
        contid,
        caller,
        ...(owner === undefined ? {} : { owner }),
        ...(create === undefined ? {} : { create: true }),
        ...(name === undefined ? {} : { name }),
        ...(meta === undefined ? {} : { meta }),
      };
    }
    default:
      return 'unknown op';
  }
}

function parseSeal(
  f: Map<string, string>,
  allowed: (extra: readonly string[]) => string | null,
): MarkerBody | string {
  const bad = allowed(['from', 'to', 'records', 'since', 'until', 'late', 'lossy', 'digest']);
  if (bad !== null) return bad;
  const from = int(f.get('from'));
  const to = int(f.get('to'));
  const records = int(f.get('records'));
  if (from === null || to === null || records === null || to < from) return 'bad seal span';
  const since = f.get('since');
  const until = f.get('until');
  if ((since === undefined) !== (until === undefined)) return 'bad seal times';
  if (since !== undefined && (!TIME.test(since) || !TIME.test(until!))) return 'bad seal times';
  const lateText = f.get('late');
  const late = lateText === undefined ? undefined : int(lateText);
  if (late === null) return 'bad late';
  const lossy = f.get('lossy');
  if (lossy !== undefined && lossy !== '1') return 'bad lossy';
  const digest = f.get('digest');
  if (digest === undefined || !DIGEST.test(digest)) return 'bad digest';
  return {
    op: 'seal',
    from,
    to,
    records,
    ...(since === undefined ? {} : { since, until: until! }),
    ...(late === undefined ? {} : { late }),
    lossy: lossy === '1',
    digest,
  };
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
  const ppid = ppidText === undefined ? undefined : int(ppidText);
  if (ppid === null) return 'bad caller-ppid';
  const start = optionalBig(f.get('caller-stime'));
  if (start === null) return 'bad caller-stime';
  return {
    pid,
    uid,
    auid,
    exe,
    privileged: privileged === '1',
    ...(ppid === undefined ? {} : { ppid }),
    ...(start === undefined ? {} : { start }),
  };
}

/** A start time (ticks since boot): an integer up to 2^53. */
function big(text: string | undefined): number | null {
  if (text === undefined || !BIGUINT.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

/** An optional start time: undefined when absent, null when malformed. */
function optionalBig(text: string | undefined): number | null | undefined {
  return text === undefined ? undefined : big(text);
}

function bigUint(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new ContidRangeError(`Cannot encode the marker: ${n} is not a marker number`, 'ERR_OUT_OF_RANGE');
  return String(n);
}

function stamp(s: MarkerStamp): string {
  return `${time(s.time)}:${uint(s.serial)}`;
}

function time(text: string): string {
  if (!TIME.test(text))
    throw new ContidRangeError(`Cannot encode the marker: "${text}" is not a time`, 'ERR_OUT_OF_RANGE');
  return text;
}

/**
 * A set's `name=` and `meta=` fields: hex of the UTF-8 text, so that no
 * byte of it can end the field or the message.
 *
 * @throws {ContidRangeError} ERR_OUT_OF_RANGE for a description out of its bounds.
 */
function describe(b: Extract<MarkerBody, { op: 'set' }>): string[] {
  const parts: string[] = [];
  if (b.name !== undefined) {
    const problem = nameProblem(b.name);
    if (problem !== null)
      throw new ContidRangeError(`Cannot encode the set marker: ${problem}`, 'ERR_OUT_OF_RANGE');
    parts.push(`name=${hex(b.name)}`);
  }
  if (b.meta !== undefined && Object.keys(b.meta).length > 0) {
    const problem = metaProblem(b.meta);
    if (problem !== null)
      throw new ContidRangeError(`Cannot encode the set marker: ${problem}`, 'ERR_OUT_OF_RANGE');
    parts.push(`meta=${hex(metaText(b.meta))}`);
  }
  return parts;
}

/** Hex of UTF-8 text, decoded; null when it is not hex of valid UTF-8. */
function utf8Hex(text: string): string | null {
  if (text === '' || !HEX.test(text)) return null;
  const bytes = Buffer.from(text, 'hex');
  return isUtf8(bytes) ? bytes.toString('utf8') : null;
}

function hex(text: string): string {
  return Buffer.from(text, 'utf8').toString('hex');
}

function unhex(text: string): string {
  return Buffer.from(text, 'hex').toString('utf8');
}

function chainText(chain: readonly string[]): string {
  const text = chain.join('+');
  if (!CHAIN.test(text))
    throw new ContidRangeError(`Cannot encode the marker: "${text}" is not a chain`, 'ERR_OUT_OF_RANGE');
  return text;
}

function seedItem(p: SeedEntry): string {
  const ns = p.pidns === 'host' ? 'h' : p.pidns === 'nested' ? 'n' : 'u';
  return `${uint(p.pid)}.${uint(p.ppid)}.${bigUint(p.start)}.${ns}`;
}

function int(text: string | undefined): number | null {
  if (text === undefined || !UINT.test(text)) return null;
  const n = Number(text);
  return n <= 0xffffffff ? n : null;
}

function uint(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
    throw new ContidRangeError(`Cannot encode the marker: ${n} is not a marker number`, 'ERR_OUT_OF_RANGE');
  return String(n);
}
