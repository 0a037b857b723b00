/**
 * The router: which container sinks get a copy of a labelled event, and
 * what that copy says (DESIGN.md, "Routing"). Pure and synchronous: no I/O,
 * no clock; the daemon owns the sinks and their queues.
 *
 * A container sees its own events and those of the containers nested in
 * it, with IDs relative to itself: an event of Z nested in 2 is `Z,^2` on
 * the host, `Z` for container 2, and not there at all for container 1. Its
 * own processes are its host: their events carry no CONTAINER_ID record,
 * as the host's carry none on the host. It sees the CONTAINER_OP records of
 * the containers nested in it (their sets, adopts, grants and drops), not
 * those the host wrote about it. Host events, unknown events, a sibling's
 * events and the host's verdicts on forged markers are never copied.
 *
 * Cost per event is a map look-up per level of the acting process's chain
 * (and of each operation's), whatever the number of sinks.
 */
import type { AuditEvent } from '../assemble/event.js';
import type { ContainerOp, Forgery, LabelledEvent } from '../policy/labeller.js';
import { renderContainerId, renderContainerOp } from '../policy/records.js';

/** A chain leaf to root, as the labeller gives it (`['5', '2']` is `5,^2`). */
export type Chain = readonly string[];

/** One copy to deliver: the key of the container sink and the event as that container sees it. */
export interface RoutedCopy {
  /** The container's chain on the host, rendered (`5,^2`): the key it was added with. */
  readonly container: string;
  readonly event: LabelledEvent;
}

/** What an event did to the set of live containers (for opening and closing sinks). */
export interface ContainerChanges {
  /**
   * Containers created by an accepted set: chain leaf to root, the host pid
   * it labelled, and the marker that asked for it.
   */
  readonly created: { readonly chain: Chain; readonly pid: number; readonly marker: ContainerOp['marker'] }[];
  /** Chains of containers dropped (their last process ended). */
  readonly dropped: Chain[];
}

/** Options of {@link Router}. */
export interface RouterOptions {
  /**
   * The node whose containers the sinks belong to (`node=` of the records;
   * null when they have none). Events of other nodes are never copied: IDs
   * are only unique on one host.
   */
  readonly node?: string | null;
}

const UNSET = '-1';
const NO_OPS: readonly ContainerOp[] = Object.freeze([]);
const NO_FORGERIES: readonly Forgery[] = Object.freeze([]);
const NO_CHANGES: ContainerChanges = Object.freeze({ created: [], dropped: [] });

/** Renders a chain leaf to root (`5,^2`). */
export function renderChainKey(chain: Chain): string {
  return chain.join(',^');
}

/** Parses a rendered chain (`5,^2`), or null for `-1`, `unknown` or `?`. */
export function parseChainKey(text: string | null): Chain | null {
  if (text === null || text === '' || text === UNSET || !/^[0-9]/.test(text)) return null;
  return text.split(',^');
}

/**
 * `chain` relative to the container `base`: null when it is not `base` or
 * nested in it, else the levels below `base` (empty for `base` itself).
 */
export function relativeChain(chain: Chain, base: Chain): Chain | null {
  const extra = chain.length - base.length;
  if (extra < 0) return null;
  for (let i = 0; i < base.length; i++) if (chain[extra + i] !== base[i]) return null;
  return chain.slice(0, extra);
}

/**
 * The container an operation is about, as far as routing goes: it is
 * copied to the containers this one is nested in. Refused attempts are
 * the host's business only (the caller may be the host's orchestrator).
 */
export function opSubject(op: ContainerOp): Chain | null {
  if (op.result !== 'accepted') return null;
  switch (op.op) {
    case 'set':
    case 'adopt':
      return parseChainKey(op.chain);
    case 'grant':
      return parseChainKey(op.contid);
    case 'drop':
      return parseChainKey(op.oldContid);
  }
}

/** The containers an event created and dropped, in its operations. */
export function containerChanges(le: LabelledEvent): ContainerChanges {
  if (le.ops.length === 0) return NO_CHANGES;
  const created: ContainerChanges['created'][number][] = [];
  const dropped: Chain[] = [];
  for (const op of le.ops) {
    if (op.result !== 'accepted') continue;
    if (op.op === 'set' && op.created) {
      const c = parseChainKey(op.chain);
      if (c !== null) created.push({ chain: c, pid: op.opid, marker: op.marker });
    } else if (op.op === 'drop') {
      const c = parseChainKey(op.oldContid);
      if (c !== null) dropped.push(c);
    }
  }
  return { created, dropped };
}

/** Decides the copies of each event for the containers that have sinks. */
export class Router {
  #node: string | null;
  /** Containers with sinks, by rendered host chain. */
  readonly #containers = new Map<string, Chain>();
  /** Per event: the ops each container gets (reused). */
  readonly #opsFor = new Map<string, ContainerOp[]>();

  constructor(options: RouterOptions = {}) {
    this.#node = options.node ?? null;
  }

  /** The node whose containers have sinks (live, auditd's name for this host is learnt after start). */
  set node(node: string | null) {
    this.#node = node;
  }

  /** Containers with sinks. */
  get size(): number {
    return this.#containers.size;
  }

  /** A container now has sinks; returns its key. */
  add(chain: Chain): string {
    const key = renderChainKey(chain);
    this.#containers.set(key, [...chain]);
    return key;
  }

  /** The container no longer has sinks. */
  delete(chain: Chain): boolean {
    return this.#containers.delete(renderChainKey(chain));
  }

  has(chain: Chain): boolean {
    return this.#containers.has(renderChainKey(chain));
  }

  /** The keys of the containers with sinks. */
  keys(): IterableIterator<string> {
    return this.#containers.keys();
  }

  /**
   * The copies of `le` for containers with sinks, appended to `out` (most
   * events of a host have none). The host's own copy is `le` itself and is
   * not among them.
   */
  route(le: LabelledEvent, out: RoutedCopy[] = []): RoutedCopy[] {
    if (this.#containers.size === 0 || le.event.node !== this.#node) return out;
    const opsFor = this.#opsFor;
    opsFor.clear();
    for (const op of le.ops) {
      const subject = opSubject(op);
      if (subject === null) continue;
      // The containers strictly above the subject.
      for (let depth = 1; depth < subject.length; depth++) {
        const key = renderChainKey(subject.slice(depth));
        if (!this.#containers.has(key)) continue;
        let list = opsFor.get(key);
        if (list === undefined) opsFor.set(key, (list = []));
        list.push(op);
      }
    }
    const chain = le.provisional ? null : le.chain;
    if (chain !== null) {
      // The acting process's container and every container above it.
      for (let depth = 0; depth < chain.length; depth++) {
        const key = depth === 0 && le.contid !== null ? le.contid : renderChainKey(chain.slice(depth));
        const base = this.#containers.get(key);
        if (base === undefined) continue;
        const ops = opsFor.get(key) ?? NO_OPS;
        opsFor.delete(key);
        out.push({ container: key, event: copyFor(le, base, chain.slice(0, depth), ops, true) });
      }
    }
    // Containers that get only operations (a nested orchestrator's set,
    // sent by the daemon on its behalf: the event is the host's).
    for (const [key, ops] of opsFor) {
      const base = this.#containers.get(key)!;
      out.push({ container: key, event: copyFor(le, base, [], ops, false) });
    }
    return out;
  }
}

/** The event as the container `base` sees it. */
function copyFor(
  le: LabelledEvent,
  base: Chain,
  relative: Chain,
  ops: readonly ContainerOp[],
  withRecords: boolean,
): LabelledEvent {
  // Fields one by one: the assembler's events compute time and serial in getters, which a spread drops.
  const e = le.event;
  const event: AuditEvent = withRecords
    ? e
    : { node: e.node, time: e.time, timeMs: e.timeMs, serial: e.serial, records: [], closedBy: e.closedBy };
  const idRecord =
    withRecords && le.containerIdRecord !== null && relative.length > 0
      ? {
          record: le.containerIdRecord.record,
          body: renderContainerId(le.containerIdRecord.record, renderChainKey(relative)),
        }
      : null;
  const objects: LabelledEvent['objectRecords'][number][] = [];
  if (withRecords) {
    for (const o of le.objectRecords) {
      const rel = relativeChain(o.chain, base);
      // A target outside the container (the host, a sibling) gets no record: its ID is not theirs to see.
      if (rel === null || rel.length === 0) continue;
      objects.push({ record: o.record, body: renderContainerId(o.record, renderChainKey(rel)), chain: rel });
    }
  }
  return {
    event,
    contid: relative.length === 0 || !withRecords ? null : renderChainKey(relative),
    chain: relative.length === 0 || !withRecords ? null : relative,
    containerIdRecord: idRecord,
    objectRecords: objects,
    ops: ops.map((op) => relativeOp(op, base)),
    forgeries: NO_FORGERIES,
    // What the host's evidence checks found is the host's, not the container's.
    evidence: [],
    provisional: false,
  };
}

/** An operation on a container nested in `base`, with chains relative to `base`. */
function relativeOp(op: ContainerOp, base: Chain): ContainerOp {
  const contid = op.op === 'set' ? op.contid : relativeText(op.contid, base);
  const oldContid = relativeText(op.oldContid, base);
  const chain = op.chain === null ? null : relativeText(op.chain, base);
  const fields = {
    op: op.op,
    opid: op.opid,
    contid,
    oldContid,
    caller: op.caller,
    errno: op.errno,
    ...(op.name === undefined ? {} : { name: op.name }),
    ...(op.meta === undefined ? {} : { meta: op.meta }),
  };
  return { ...op, contid, oldContid, chain, body: renderContainerOp(fields) };
}

/**
 * A rendered chain relative to `base`: `-1` for `base` itself (its own
 * processes are its host), `?` for anything outside it.
 */
function relativeText(text: string, base: Chain): string {
  const chain = parseChainKey(text);
  if (chain === null) return text === 'unknown' || text === UNSET ? text : '?';
  const rel = relativeChain(chain, base);
  if (rel === null) return '?';
  return rel.length === 0 ? UNSET : renderChainKey(rel);
}
