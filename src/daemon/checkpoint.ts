/**
 * The label checkpoint: what a restarted daemon needs to give running
 * containers their IDs back (docs/design.md, "Restarts lose nothing": the state is a
 * checkpoint plus the stream after it).
 *
 * It holds the live containers (chains, owners, a cgroup anchor each), the
 * labelled and delegated processes with their start times (a pid plus its
 * start time names one incarnation), and the stream position it
 * corresponds to. Written atomically (a new file written, synced and
 * renamed over the old one, its directory synced), versioned, bounded.
 * A checkpoint that cannot be read is set aside with a clear message,
 * never a reason not to start.
 */
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { UNKNOWN, type Container } from '../policy/contid.js';
import type { Labeller } from '../policy/labeller.js';
import type { ProcessEntry } from '../track/process-table.js';
import { chooseAnchor, type CgroupAnchor } from '../policy/cgroup.js';

export const CHECKPOINT_VERSION = 1;

/** Most processes a checkpoint holds (the rest are counted as left out). */
export const MAX_CHECKPOINT_PROCESSES = 500_000;

/** Largest checkpoint file read back (a bigger one is not ours). */
const MAX_CHECKPOINT_BYTES = 256 * 1024 * 1024;

export interface CheckpointContainer {
  /** Leaf to root. */
  readonly chain: readonly string[];
  readonly ownerUid: number;
  readonly ownerExe: string;
  readonly ownerName?: string;
  /** Where its processes live, for those reparented while contid was down. */
  readonly anchor?: CgroupAnchor;
}

export interface CheckpointProcess {
  readonly pid: number;
  readonly ppid: number;
  readonly start: number;
  /** Leaf to root, or null for unknown. */
  readonly chain: readonly string[] | null;
}

export interface CheckpointGrant {
  readonly pid: number;
  readonly start: number;
  readonly uid: number | null;
  readonly exe: string | null;
}

export interface Checkpoint {
  readonly version: typeof CHECKPOINT_VERSION;
  /** The start that wrote it. */
  readonly startId: string;
  readonly savedAt: string;
  /** The node of the records it describes (null: no `node=`). */
  readonly node: string | null;
  /** The newest record the start had read when it saved: the stream position. */
  readonly stream: { readonly serial: number; readonly timeMs: number };
  /** Parents before their nested containers. */
  readonly containers: readonly CheckpointContainer[];
  readonly processes: readonly CheckpointProcess[];
  readonly grants: readonly CheckpointGrant[];
  /** Processes left out because of MAX_CHECKPOINT_PROCESSES. */
  readonly leftOut: number;
}

/** What the daemon knows of a live process, read from /proc when the checkpoint is taken. */
export interface LiveFacts {
  readonly ppid: number;
  readonly startTime: number;
}

/**
 * Takes a checkpoint of `labeller`'s labels. Processes whose start time the
 * table does not know are read in /proc (`facts`); one that is gone, or
 * whose /proc parent is another, is left out (it ended, or its pid was
 * reused). `cgroupOf` reads a process's cgroup file for the anchors.
 */
export function takeCheckpoint(
  labeller: Labeller,
  options: {
    startId: string;
    node: string | null;
    stream: { serial: number; timeMs: number };
    /** /proc's facts of a live entry whose start time the table does not know (may be cached). */
    facts: (entry: ProcessEntry<Container>) => LiveFacts | null;
    cgroupOf: (pid: number) => string | null;
    hostRefs: readonly string[];
    now?: Date;
  },
): Checkpoint {
  const processes: CheckpointProcess[] = [];
  const grants: CheckpointGrant[] = [];
  const anchorFrom = new Map<Container, number>();
  let leftOut = 0;
  for (const e of labeller.table.liveEntries()) {
    if (e.label === null && e.grant === null) continue;
    let start = e.startTime;
    if (start === null) {
      const f = options.facts(e);
      if (f === null || f.ppid !== e.ppid) continue;
      start = f.startTime;
    }
    if (e.label !== null) {
      if (processes.length >= MAX_CHECKPOINT_PROCESSES) {
        leftOut++;
        continue;
      }
      processes.push({
        pid: e.pid,
        ppid: e.ppid,
        start,
        chain: e.label === UNKNOWN ? null : e.label.chain,
      });
      if (e.label !== UNKNOWN && !anchorFrom.has(e.label)) anchorFrom.set(e.label, e.pid);
    }
    if (e.grant !== null) grants.push({ pid: e.pid, start, uid: e.grant.uid, exe: e.grant.exe });
  }
  const containers: CheckpointContainer[] = [];
  for (const c of labeller.liveContainerList()) {
    const from = anchorFrom.get(c);
    const text = from === undefined ? null : options.cgroupOf(from);
    const anchor = text === null ? null : chooseAnchor(text, options.hostRefs);
    containers.push({
      chain: c.chain,
      ownerUid: c.owner.uid,
      ownerExe: c.owner.exe,
      ...(anchor === null ? {} : { anchor }),
    });
  }
  return {
    version: CHECKPOINT_VERSION,
    startId: options.startId,
    savedAt: (options.now ?? new Date()).toISOString(),
    node: options.node,
    stream: options.stream,
    containers,
    processes,
    grants,
    leftOut,
  };
}

/**
 * Writes `checkpoint` to `path` atomically: `path.tmp` created exclusively
 * (never through a link), written, synced, renamed over `path`, and the
 * directory synced. A failure leaves the previous checkpoint in place.
 *
 * @throws the file system's error (ENOSPC, EROFS, EACCES…), with the path.
 */
export function writeCheckpoint(path: string, checkpoint: Checkpoint): void {
  const tmp = `${path}.tmp`;
  try {
    unlinkSync(tmp); // a leftover of a crash while writing
  } catch {
    // none
  }
  const data = Buffer.from(`${JSON.stringify(checkpoint)}\n`, 'utf8');
  let fd: number;
  try {
    fd = openSync(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
  } catch (error) {
    throw describe(error, `Cannot write the checkpoint "${tmp}"`);
  }
  try {
    for (let at = 0; at < data.length;) at += writeSync(fd, data, at, data.length - at);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // gone
    }
    throw describe(error, `Cannot write the checkpoint "${tmp}"`);
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
    const dir = openSync(dirname(path), constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch (error) {
    throw describe(error, `Cannot replace the checkpoint "${path}"`);
  }
}

/** The outcome of {@link readCheckpoint}. */
export type CheckpointRead =
  | { readonly kind: 'none' }
  | { readonly kind: 'ok'; readonly checkpoint: Checkpoint }
  | { readonly kind: 'bad'; readonly reason: string };

/** Reads and checks a checkpoint file (never through a link). */
export function readCheckpoint(path: string): CheckpointRead {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'none' };
    return { kind: 'bad', reason: `cannot open it (${code ?? String(error)})` };
  }
  let text: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { kind: 'bad', reason: 'it is not a regular file' };
    if (st.size > MAX_CHECKPOINT_BYTES) return { kind: 'bad', reason: `it is too large (${st.size} bytes)` };
    text = readFileSync(fd, 'utf8');
  } catch (error) {
    return {
      kind: 'bad',
      reason: `cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    };
  } finally {
    closeSync(fd);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'bad', reason: 'it is not complete JSON (cut off, or not a checkpoint)' };
  }
  const problem = checkShape(value);
  return problem === null
    ? { kind: 'ok', checkpoint: value as Checkpoint }
    : { kind: 'bad', reason: problem };
}

const DECIMAL = /^[0-9]{1,20}$/;

function isNat(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isChain(v: unknown): v is string[] {
  return (
    Array.isArray(v) &&
    v.length > 0 &&
    v.length <= 16 &&
    v.every((x) => typeof x === 'string' && DECIMAL.test(x))
  );
}

/** Null when `v` is a checkpoint of this version, else what is wrong. */
function checkShape(v: unknown): string | null {
  if (typeof v !== 'object' || v === null) return 'it is not a checkpoint';
  const c = v as Record<string, unknown>;
  if (c['version'] !== CHECKPOINT_VERSION)
    return `it is version ${JSON.stringify(c['version'])}, not ${CHECKPOINT_VERSION}`;
  if (typeof c['startId'] !== 'string' || typeof c['savedAt'] !== 'string') return 'it has no start id';
  if (c['node'] !== null && typeof c['node'] !== 'string') return 'its node is not a string';
  const stream = c['stream'] as Record<string, unknown> | undefined;
  if (stream === undefined || !isNat(stream['serial']) || !isNat(stream['timeMs']))
    return 'it has no stream position';
  const containers = c['containers'];
  const processes = c['processes'];
  const grants = c['grants'];
  if (!Array.isArray(containers) || !Array.isArray(processes) || !Array.isArray(grants))
    return 'its lists are missing';
  if (processes.length > MAX_CHECKPOINT_PROCESSES) return 'it holds too many processes';
  for (const k of containers as Record<string, unknown>[]) {
    if (!isChain(k['chain']) || !isNat(k['ownerUid']) || typeof k['ownerExe'] !== 'string')
      return 'a container is malformed';
  }
  for (const p of processes as Record<string, unknown>[]) {
    if (
      !isNat(p['pid']) ||
      !isNat(p['ppid']) ||
      !isNat(p['start']) ||
      (p['chain'] !== null && !isChain(p['chain']))
    )
      return 'a process is malformed';
  }
  for (const g of grants as Record<string, unknown>[]) {
    if (!isNat(g['pid']) || !isNat(g['start'])) return 'a grant is malformed';
  }
  return null;
}

function describe(error: unknown, what: string): Error {
  const e = error as NodeJS.ErrnoException;
  const reason = e.code === undefined ? e.message : e.code;
  return Object.assign(new Error(`${what}: ${reason}`, { cause: error }), { code: e.code ?? 'EIO' });
}
