/**
 * `contid ps` from what the store holds: each container's state, owner,
 * name and metadata (from its CONTAINER_OP records), and its process tree
 * (from the process spans). Pure: the store's rows in, views out.
 */
import type { ChainRow, OpRow, ProcRow } from './store.js';

/** Who set a container's ID first in its current life (the orchestrator). */
export interface OwnerView {
  readonly uid: number | null;
  readonly auid: number | null;
  readonly pid: number | null;
  readonly exe: string | null;
  /** When the set was recorded, ms since the epoch. */
  readonly setMs: number;
}

/** A process in a container's tree. */
export interface ProcNode {
  readonly pid: number;
  readonly ppid: number | null;
  readonly exe: string | null;
  readonly startMs: number;
  /** False when the process was first seen then (its birth is not in the store, or it was labelled then). */
  readonly born: boolean;
  readonly children: ProcNode[];
}

/** A container as `contid ps` shows it. */
export interface ContainerView {
  /** `4,^2,^1`. */
  readonly chain: string;
  /** The IDs, leaf first: `['4', '2', '1']`. */
  readonly ids: readonly string[];
  /** dropped: its last process exited (a drop was recorded); live otherwise. */
  readonly state: 'live' | 'dropped';
  /** Null when its set is not in the store (set before the store's first event). */
  readonly owner: OwnerView | null;
  /** The name its set gave (`contid set --name`, the OCI hook's container id), or null. */
  readonly name: string | null;
  /** The metadata its set gave (`contid set --meta`), in the order given; empty when none. */
  readonly meta: Readonly<Record<string, string>>;
  readonly firstMs: number | null;
  readonly lastMs: number | null;
  readonly events: number;
  readonly processes: readonly ProcNode[];
}

function leaf(chain: string): string {
  const comma = chain.indexOf(',');
  return comma < 0 ? chain : chain.slice(0, comma);
}

/** The chain an accepted set gives its target: the ID, nested in the target's old chain if it had one. */
function chainOfSet(op: OpRow): string {
  return op.oldContid === '-1' || op.oldContid === '?' ? op.contid : `${op.contid},^${op.oldContid}`;
}

interface Life {
  live: boolean;
  owner: OwnerView | null;
  name: string | null;
  meta: Readonly<Record<string, string>>;
}

const NO_META: Readonly<Record<string, string>> = Object.freeze({});

/**
 * The chain among `known` that an op is about: `exact` when stored, else
 * the one chain with the same leaf (a set by a delegated orchestrator
 * records only the ID), else `exact` itself.
 */
function pick(exact: string, known: ReadonlyMap<string, unknown>): string {
  if (known.has(exact)) return exact;
  const id = leaf(exact);
  const same = [...known.keys()].filter((c) => leaf(c) === id);
  return same.length === 1 ? same[0]! : exact;
}

/** Each container's life as its ops (in stream order) tell it. */
function lives(chains: ReadonlyMap<string, unknown>, ops: readonly OpRow[]): Map<string, Life> {
  const out = new Map<string, Life>();
  for (const op of ops) {
    if (op.res !== 1) continue;
    if (op.op === 'set') {
      const chain = pick(chainOfSet(op), chains);
      const life = out.get(chain);
      if (life?.live === true) {
        // Injection (a set of a live ID) keeps the owner who created it; one
        // that describes the container again replaces its description, as
        // the daemon's status does.
        if (op.name !== null || op.meta !== null) {
          life.name = op.name;
          life.meta = op.meta ?? NO_META;
        }
        continue;
      }
      out.set(chain, {
        live: true,
        owner: { uid: op.uid, auid: op.auid, pid: op.callerPid, exe: op.exe, setMs: op.timeMs },
        name: op.name,
        meta: op.meta ?? NO_META,
      });
    } else if (op.op === 'drop' && op.oldContid !== '-1') {
      const chain = pick(op.oldContid, chains);
      const life = out.get(chain);
      if (life === undefined) out.set(chain, { live: false, owner: null, name: null, meta: NO_META });
      else life.live = false;
    }
  }
  return out;
}

/** A forest of processes by parent pid; children ordered by start. */
export function processTree(procs: readonly ProcRow[]): ProcNode[] {
  const nodes = new Map<number, ProcNode>();
  for (const p of procs) {
    nodes.set(p.pid, {
      pid: p.pid,
      ppid: p.ppid,
      exe: p.exe,
      startMs: p.bornMs,
      born: p.born === 1,
      children: [],
    });
  }
  const roots: ProcNode[] = [];
  for (const n of nodes.values()) {
    const parent = n.ppid === null || n.ppid === n.pid ? undefined : nodes.get(n.ppid);
    (parent?.children ?? roots).push(n);
  }
  const order = (list: ProcNode[]): void => {
    list.sort((a, b) => a.startMs - b.startMs || a.pid - b.pid);
    for (const n of list) order(n.children);
  };
  order(roots);
  return roots;
}

/** Sort key that puts a container right after the one it is nested in. */
function nestingKey(chain: string): string {
  return chain
    .split(',^')
    .reverse()
    .map((id) => id.padStart(20, '0'))
    .join('/');
}

/**
 * The containers to show: each chain with stored events (at `atMs`, the
 * stats given are as of then), and each set in the store whose container
 * has no event yet. `all` keeps dropped containers too.
 */
export function containerViews(input: {
  readonly chains: readonly ChainRow[];
  readonly ops: readonly OpRow[];
  readonly processes: ReadonlyMap<number, readonly ProcRow[]>;
  readonly all: boolean;
}): ContainerView[] {
  const byChain = new Map<string, ChainRow>();
  for (const c of input.chains) if (c.chain !== 'unknown' && c.events > 0) byChain.set(c.chain, c);
  const life = lives(byChain, input.ops);
  const names = new Set([...byChain.keys(), ...life.keys()]);
  const views: ContainerView[] = [];
  for (const chain of names) {
    const row = byChain.get(chain);
    const l = life.get(chain);
    const state = l === undefined || l.live ? 'live' : 'dropped';
    if (state === 'dropped' && !input.all) continue;
    views.push({
      chain,
      ids: chain.split(',^'),
      state,
      owner: l?.owner ?? null,
      name: l?.name ?? null,
      meta: l?.meta ?? NO_META,
      firstMs: row?.firstMs ?? null,
      lastMs: row?.lastMs ?? null,
      events: row?.events ?? 0,
      processes: row === undefined ? [] : processTree(input.processes.get(row.id) ?? []),
    });
  }
  return views.sort((a, b) => (nestingKey(a.chain) < nestingKey(b.chain) ? -1 : 1));
}
