/**
 * The labelling stage: assembled events in, labelled events out, ready to
 * write. One stage for `contid replay` and the live daemon, so that a live
 * host log and a replay of the same stream agree by construction.
 *
 * State is kept per node (`node=` of the records, null when they have
 * none): an aggregated log (audisp-remote into one auditd, `name_format =
 * hostname`) holds several hosts whose pids, clocks and daemon starts have
 * nothing to do with each other. Each node has its own labeller (process
 * table, marker state, stream time) and hold stage; a daemon start's
 * markers count only on the node where its start marker was seen.
 */
import type { AuditEvent } from '../assemble/event.js';
import { EvidenceVerifier, type EvidenceFinding, type EvidenceStats } from '../marker/evidence.js';
import { UNKNOWN_TEXT } from '../policy/contid.js';
import { HoldStage, type HoldOptions, type HoldStats } from '../policy/hold.js';
import {
  Labeller,
  type LabelledEvent,
  type LabellerOptions,
  type LabellerStats,
} from '../policy/labeller.js';
import { renderContainerId } from '../policy/records.js';

export interface LabellingOptions {
  /** Options of every node's labeller (the keyring is shared). */
  readonly labeller?: LabellerOptions;
  readonly hold?: HoldOptions;
  /** Most nodes tracked (default 1024); events of further nodes are written as unknown, counted. */
  readonly maxNodes?: number;
  /**
   * What the markers prove beyond their MACs (src/marker/evidence.ts), with
   * a keyring: gaps, order, chains, and with `seals` (default true) each
   * seal's verdict. False: no checks.
   */
  readonly evidence?: { readonly seals?: boolean; readonly settleMs?: number } | false;
  /**
   * Called when labelling an event failed (a defect: the event is written
   * with the unknown label and counted in `failed`, and labelling goes on).
   */
  readonly onFailure?: (error: Error, event: AuditEvent) => void;
  /** A daemon checkpoint to start from (`contid replay --state`), for its node. */
  readonly state?: Parameters<Labeller['loadCheckpoint']>[0] & { readonly node: string | null };
}

/** One node's labels. */
interface NodeState {
  readonly labeller: Labeller;
  readonly hold: HoldStage;
  readonly evidence: EvidenceVerifier | null;
}

export interface LabellingStats {
  /** The labeller counters, summed over nodes. */
  readonly labels: LabellerStats;
  readonly hold: HoldStats;
  /** The evidence checks' counters, summed over nodes (null: no checks). */
  readonly evidence: EvidenceStats | null;
  readonly nodes: number;
  /** Events of nodes beyond `maxNodes`, written as unknown. */
  readonly nodesOverflow: number;
  /** Events whose labelling failed (see LabellingOptions.onFailure), written as unknown. */
  readonly failed: number;
}

export class LabellingStage {
  readonly #options: LabellingOptions;
  readonly #nodes = new Map<string | null, NodeState>();
  readonly #maxNodes: number;
  /** Which node each daemon start's markers belong to (shared by the nodes' labellers). */
  readonly #startNodes = new Map<string, string | null>();
  #overflow = 0;
  #failed = 0;
  /** The node of the previous event, and its state: consecutive events are mostly of one node. */
  #lastNode: string | null | undefined = undefined;
  #last: NodeState | undefined;

  constructor(options: LabellingOptions = {}) {
    this.#options = options;
    this.#maxNodes = Math.max(1, options.maxNodes ?? 1024);
    if (options.state !== undefined) this.#state(options.state.node)?.labeller.loadCheckpoint(options.state);
  }

  /** The labeller of `node` (made on first use), or undefined past the bound. */
  labeller(node: string | null): Labeller | undefined {
    return this.#state(node)?.labeller;
  }

  /** The nodes seen so far. */
  get nodes(): number {
    return this.#nodes.size;
  }

  /**
   * Labels one event; appends the events ready to write (this one, or held
   * ones that became ready) to `out` and returns it.
   */
  push(event: AuditEvent, out: LabelledEvent[] = []): LabelledEvent[] {
    const state = this.#state(event.node);
    if (state === undefined) {
      // No state is kept for this node: its events' containers are not
      // known (never "host", which is what no label would claim).
      this.#overflow++;
      out.push(unknown(event));
      return out;
    }
    try {
      return state.hold.push(state.labeller.process(event), out);
    } catch (error) {
      // No input should get here; if one does, its event is still written
      // (never as host) and the next ones are labelled.
      this.#failed++;
      out.push(unknown(event));
      this.#options.onFailure?.(error instanceof Error ? error : new Error(String(error)), event);
      return out;
    }
  }

  /** Releases every held event (end of input, stop). */
  end(): LabelledEvent[] {
    const out: LabelledEvent[] = [];
    for (const s of this.#nodes.values()) out.push(...s.hold.end());
    return out;
  }

  /**
   * The end of the input for the evidence checks: the verdicts of seals
   * still waiting, which no event carries (call once, after end()).
   */
  endEvidence(): EvidenceFinding[] {
    const out: EvidenceFinding[] = [];
    for (const s of this.#nodes.values()) if (s.evidence !== null) out.push(...s.evidence.end());
    return out;
  }

  stats(): LabellingStats {
    const states = [...this.#nodes.values()];
    const checks = states.flatMap((s) => (s.evidence === null ? [] : [s.evidence.stats()]));
    return {
      labels: sumLabels(states.map((s) => s.labeller.stats())),
      hold: sumHold(states.map((s) => s.hold.stats())),
      evidence: this.#checksEvidence() ? sumEvidence(checks) : null,
      nodes: this.#nodes.size,
      nodesOverflow: this.#overflow,
      failed: this.#failed,
    };
  }

  /** Evidence is checked only against a keyring (no marker is valid without one). */
  #checksEvidence(): boolean {
    return this.#options.evidence !== false && (this.#options.labeller?.keyring?.size ?? 0) > 0;
  }

  #state(node: string | null): NodeState | undefined {
    if (node === this.#lastNode) return this.#last;
    let state = this.#nodes.get(node);
    if (state === undefined) {
      if (this.#nodes.size >= this.#maxNodes) return undefined;
      const checks = this.#options.evidence;
      const evidence =
        this.#checksEvidence() && checks !== false
          ? new EvidenceVerifier({
              keyring: this.#options.labeller!.keyring!,
              ...(checks?.seals === undefined ? {} : { seals: checks.seals }),
              ...(checks?.settleMs === undefined ? {} : { settleMs: checks.settleMs }),
            })
          : null;
      const labeller = new Labeller({
        ...this.#options.labeller,
        node,
        startNodes: this.#startNodes,
        evidence,
      });
      state = { labeller, hold: new HoldStage(labeller, this.#options.hold), evidence };
      this.#nodes.set(node, state);
    }
    this.#lastNode = node;
    this.#last = state;
    return state;
  }
}

const NOTHING: readonly never[] = Object.freeze([]);

function sumEvidence(all: readonly EvidenceStats[]): EvidenceStats {
  const out = {
    missing: 0,
    gaps: 0,
    order: 0,
    chain: 0,
    place: 0,
    intact: 0,
    broken: 0,
    late: 0,
    pendingAtEnd: 0,
  };
  for (const s of all) for (const k of Object.keys(out) as (keyof EvidenceStats)[]) out[k] += s[k];
  return out;
}

/** An event without labels (see unknown). */
function plain(event: AuditEvent): LabelledEvent {
  return {
    event,
    contid: null,
    chain: null,
    containerIdRecord: null,
    objectRecords: NOTHING,
    ops: NOTHING,
    forgeries: NOTHING,
    evidence: NOTHING,
    provisional: false,
  };
}

/** An event whose container is not known: of a node past the bound, or whose labelling failed. */
function unknown(event: AuditEvent): LabelledEvent {
  return {
    ...plain(event),
    contid: UNKNOWN_TEXT,
    containerIdRecord: { record: 1, body: renderContainerId(1, UNKNOWN_TEXT) },
  };
}

function sumLabels(all: readonly LabellerStats[]): LabellerStats {
  const first = all[0];
  if (first === undefined) return new Labeller().stats();
  if (all.length === 1) return first;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(first) as (keyof LabellerStats)[]) {
    if (key === 'ops') {
      out.ops = {
        accepted: all.reduce((n, s) => n + s.ops.accepted, 0),
        refused: all.reduce((n, s) => n + s.ops.refused, 0),
        drops: all.reduce((n, s) => n + s.ops.drops, 0),
      };
    } else if (key === 'max') {
      out.max = first.max;
    } else {
      out[key] = all.reduce((n, s) => n + s[key], 0);
    }
  }
  return out as unknown as LabellerStats;
}

function sumHold(all: readonly HoldStats[]): HoldStats {
  return {
    held: all.reduce((n, s) => n + s.held, 0),
    resolved: all.reduce((n, s) => n + s.resolved, 0),
    expired: all.reduce((n, s) => n + s.expired, 0),
    overflowed: all.reduce((n, s) => n + s.overflowed, 0),
  };
}
