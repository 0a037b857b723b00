/**
 * What a restarted daemon restores from its checkpoint, decided against
 * the /proc snapshot it takes at start (pure: the caller reads /proc):
 *
 * - a process alive with the same pid and start time keeps its label;
 * - a process born while contid was down inherits from its nearest live
 *   ancestor that the checkpoint labels (same pid and start time);
 * - one whose ancestry does not lead there (reparented to init or a
 *   subreaper) takes the container whose cgroup anchor holds it, else it
 *   is taken for a host process (a container that shares the host's pid
 *   namespace and cgroups leaves no trace of a process it double-forked
 *   while contid was down: the one case a restart can miss);
 * - a process that died is simply not restored; a container none of whose
 *   processes (and nested containers) lives is dropped by the labeller;
 * - a grant is restored for the same pid and start time.
 *
 * The plan becomes restore markers (src/marker/format.ts), so a replay
 * across the restart reaches the same labels.
 */
import type { MarkerBody, RestoredProcess } from '../marker/format.js';
import { CgroupIndex } from '../policy/cgroup.js';
import type { SeedProcess } from '../track/process-table.js';
import type { Checkpoint, CheckpointContainer } from './checkpoint.js';

/** Counts of a restore, as `restore-done` carries them. */
export interface RestoreCounts {
  /** Processes alive with the checkpoint's pid and start time. */
  readonly kept: number;
  /** Born while contid was down, labelled from their ancestry. */
  readonly inherited: number;
  /** Born while down and reparented, labelled from their container's cgroup. */
  readonly adopted: number;
  /** Labelled in the checkpoint, gone now. */
  readonly ended: number;
}

export interface RestorePlan {
  /** The markers to send after the seed markers, in order, `restore-done` last. */
  readonly markers: readonly MarkerBody[];
  readonly counts: RestoreCounts;
}

const chainKey = (chain: readonly string[]): string => chain.join('+');

/**
 * Plans the restore of `checkpoint` onto the processes of `snapshot`.
 * `cgroupOf` reads a process's cgroup file (or null when gone);
 * `hostRefs` are host cgroup files (pid 1's, the daemon's) for anchors.
 */
export function planRestore(
  checkpoint: Checkpoint,
  snapshot: readonly SeedProcess[],
  options: {
    cgroupOf: (pid: number) => string | null;
    hostRefs: readonly string[];
    perMarker: number;
  },
): RestorePlan {
  const byPid = new Map(snapshot.map((p) => [p.pid, p]));
  const labelled = new Map<number, { start: number; chain: readonly string[] | null }>();
  for (const p of checkpoint.processes) labelled.set(p.pid, { start: p.start, chain: p.chain });
  const index = new CgroupIndex(options.hostRefs);
  const anchored = new Map<string, readonly string[]>();
  for (const c of checkpoint.containers) {
    if (c.anchor === undefined) continue;
    const key = chainKey(c.chain);
    // The anchor as a cgroup file line, so the index chooses it again.
    const r = index.register(key, `${c.anchor.hierarchy}:${c.anchor.path}\n`);
    if (r.kind === 'registered' || r.kind === 'known') anchored.set(key, c.chain);
  }

  /** The label of a live process by the checkpoint: its own, or its nearest labelled ancestor's. */
  const resolved = new Map<number, readonly string[] | null | undefined>();
  const counts = { kept: 0, inherited: 0, adopted: 0, ended: 0 };
  const labelOf = (p: SeedProcess): { chain: readonly string[] | null } | undefined => {
    const path: SeedProcess[] = [];
    let found: { chain: readonly string[] | null } | undefined;
    for (let q: SeedProcess | undefined = p; q !== undefined && path.length < 4096; q = byPid.get(q.ppid)) {
      if (resolved.has(q.pid)) {
        const r = resolved.get(q.pid);
        found = r === undefined ? undefined : { chain: r };
        break;
      }
      const mine = labelled.get(q.pid);
      if (mine !== undefined && mine.start === q.startTime) {
        found = { chain: mine.chain };
        path.push(q);
        break;
      }
      path.push(q);
      if (q.ppid === q.pid || q.ppid <= 1) break;
    }
    for (const q of path) resolved.set(q.pid, found === undefined ? undefined : found.chain);
    return found;
  };

  const procs: RestoredProcess[] = [];
  const used = new Set<string>();
  for (const p of snapshot) {
    if (p.startTime === null || p.startTime === undefined) continue;
    const mine = labelled.get(p.pid);
    let chain: readonly string[] | null | undefined;
    if (mine !== undefined && mine.start === p.startTime) {
      chain = mine.chain;
      counts.kept++;
    } else {
      const found = labelOf(p);
      if (found !== undefined) {
        chain = found.chain;
        counts.inherited++;
      } else if (anchored.size > 0) {
        const text = options.cgroupOf(p.pid);
        const key = text === null ? null : index.match(text);
        if (key !== null) {
          chain = anchored.get(key) ?? null;
          counts.adopted++;
        }
      }
    }
    if (chain === undefined) continue;
    procs.push({ pid: p.pid, start: p.startTime, chain });
    if (chain !== null) for (let i = 0; i < chain.length; i++) used.add(chainKey(chain.slice(i)));
  }
  for (const [pid, l] of labelled) {
    const now = byPid.get(pid);
    if (now === undefined || now.startTime !== l.start) counts.ended++;
  }

  const markers: MarkerBody[] = [];
  // Parents before nested ones (the checkpoint lists them so); only those a process needs.
  const containers = checkpoint.containers.filter((c: CheckpointContainer) => used.has(chainKey(c.chain)));
  for (const c of containers) {
    markers.push({
      op: 'restore-container',
      chain: c.chain,
      ownerUid: c.ownerUid,
      ownerExe: c.ownerExe,
      ...(c.ownerName === undefined ? {} : { ownerName: c.ownerName }),
    });
  }
  for (let i = 0; i < procs.length; i += options.perMarker) {
    markers.push({ op: 'restore', procs: procs.slice(i, i + options.perMarker) });
  }
  let grants = 0;
  for (const g of checkpoint.grants) {
    const now = byPid.get(g.pid);
    if (now?.startTime !== g.start) continue;
    grants++;
    markers.push({
      op: 'restore-grant',
      pid: g.pid,
      start: g.start,
      ...(g.uid === null ? {} : { targetUid: g.uid }),
      ...(g.exe === null ? {} : { targetExe: g.exe }),
    });
  }
  markers.push({
    op: 'restore-done',
    from: checkpoint.startId,
    serial: checkpoint.stream.serial,
    processes: procs.length,
    containers: containers.length,
    grants,
  });
  return { markers, counts };
}
