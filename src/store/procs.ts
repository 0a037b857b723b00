/**
 * Process lifetimes from stored events, for `contid ps`: which process ran
 * which executable in which container, from when to when. Pure: events go
 * in (in stream order) and changes to the `procs` table come out; the store
 * applies them.
 *
 * Only processes in a container (or of unknown container) are followed:
 * host processes would be most of the rows and `contid ps` never shows
 * them. One row (a span) per process, container and executable: a birth
 * opens one (`how` = fork), an exec closes it and opens the next (exec), a
 * process first seen by another event opens one there (seen: its birth is
 * not in the stream), a label set on it opens one in its container (label),
 * a new parent (its own died) one with that parent (reparent). Each span
 * keeps when its process began (`bornMs`).
 * exit_group ends it; so do the container's drop (its last process
 * exited), the pid's reuse, and eviction past `maxOpen` (counted).
 *
 * Births. A fork's `exit=` is the child's pid in the parent's pid
 * namespace, which inside a container is not the pid the records carry
 * (the kernel writes initial-namespace pids). So a birth is held until the
 * child's first event shows its pid, with the parent as `ppid`, unless the
 * parent is known to share the host's pid numbers (a birth it made was
 * confirmed with `exit=` equal to the child's pid). clone3 cannot be told
 * from a thread's creation: it is always held. Held births are bounded and
 * expire; a child that never makes an audited syscall is not shown.
 */
import type { Lifecycle } from './row.js';

/** How a span started or ended. */
export type SpanStart = 'fork' | 'exec' | 'seen' | 'label' | 'reparent';
export type SpanEnd = 'exit' | 'exec' | 'label' | 'reparent' | 'drop' | 'reuse' | 'evicted';

/** Whether a process's pid namespace numbers pids as the records do. */
type PidNumbers = 'host' | 'nested';

/** A span of the `procs` table. */
export interface ProcSpan {
  readonly id: number;
  readonly node: number | null;
  readonly pid: number;
  readonly ppid: number | null;
  readonly chain: number | null;
  readonly exe: number | null;
  /** When the span began (the process's birth, or an exec, label or new parent). */
  readonly startMs: number;
  readonly how: SpanStart;
  /** When the process began: its fork, or the event it was first seen by. */
  readonly bornMs: number;
  /** Whether `bornMs` is its fork (true) or only when it was first seen. */
  readonly born: boolean;
  /** The event that opened it. */
  readonly event: number;
}

/** A change to the `procs` table. */
export type ProcChange =
  | { readonly kind: 'open'; readonly span: ProcSpan }
  | { readonly kind: 'close'; readonly id: number; readonly endMs: number; readonly how: SpanEnd }
  /** The open span turned out to begin at its process's fork (a vfork child's events came first). */
  | { readonly kind: 'born'; readonly id: number; readonly startMs: number };

/** An event as the tracker reads it: ids already interned by the store. */
export interface ProcEvent {
  readonly id: number;
  readonly timeMs: number;
  readonly node: number | null;
  readonly chain: number | null;
  readonly pid: number | null;
  readonly ppid: number | null;
  readonly exe: number | null;
  readonly life: Lifecycle | null;
  /** Chains of this event's accepted drops. */
  readonly drops: readonly number[];
}

export interface ProcTrackerStats {
  readonly open: number;
  readonly evicted: number;
  readonly heldBirths: number;
}

/** How long a held birth waits for its child to show itself, in event time. */
const BIRTH_TTL_MS = 60_000;
/** A vfork parent's record comes after its child's first events: within this, they are one birth. */
const VFORK_WINDOW_MS = 10_000;
/** Exited spans remembered for that. */
const RECENT_EXITS = 4096;

interface Open {
  span: ProcSpan;
  /** Learnt from its births; unknown until one is confirmed. */
  numbers: PidNumbers | undefined;
}

interface Birth {
  readonly parentKey: string;
  /** The fork's `exit=`: the child's pid in the parent's namespace. */
  readonly exit: number;
  readonly clone3: boolean;
  readonly newPidNamespace: boolean;
  readonly chain: number | null;
  readonly exe: number | null;
  readonly timeMs: number;
  readonly event: number;
  taken: boolean;
}

function keyOf(node: number | null, pid: number): string {
  return node === null ? String(pid) : `${node}:${pid}`;
}

/** Follows process lifetimes through stored events. */
export class ProcTracker {
  readonly #open = new Map<string, Open>();
  /** Open spans per container chain, for drops. */
  readonly #byChain = new Map<number, Set<string>>();
  /** Held births by parent, and all of them oldest first (for expiry and the bound). */
  readonly #births = new Map<string, Birth[]>();
  #birthQueue: Birth[] = [];
  #held = 0;
  /** Spans ended by exit_group lately, for a vfork parent's record that comes after its child's exit. */
  readonly #exited = new Map<string, ProcSpan>();
  readonly #maxOpen: number;
  readonly #maxBirths: number;
  #nextId: number;
  #evicted = 0;

  constructor(options: {
    readonly nextId: number;
    readonly open?: readonly ProcSpan[];
    readonly maxOpen?: number;
    readonly maxBirths?: number;
  }) {
    this.#nextId = options.nextId;
    this.#maxOpen = options.maxOpen ?? 1_000_000;
    this.#maxBirths = options.maxBirths ?? 65_536;
    for (const span of options.open ?? []) this.#track({ span, numbers: undefined });
  }

  stats(): ProcTrackerStats {
    return { open: this.#open.size, evicted: this.#evicted, heldBirths: this.#held };
  }

  /** The changes one event makes; `out` is appended to and returned. */
  event(e: ProcEvent, out: ProcChange[] = []): ProcChange[] {
    this.#expire(e.timeMs);
    if (e.pid !== null) {
      if (e.chain === null) this.#host(e, out);
      else this.#process(e, out);
    }
    // After the event's own change: a drop comes with the exit of the
    // container's last process, which that exit has already ended.
    for (const chain of e.drops) this.#drop(chain, e.timeMs, out);
    return out;
  }

  #process(e: ProcEvent, out: ProcChange[]): void {
    const current = this.#current(e, out);
    const life = e.life;
    switch (life?.kind) {
      case 'fork':
      case 'clone3':
        this.#birth(e, current, life, out);
        break;
      case 'exec':
        if (current.span.exe !== e.exe) {
          this.#close(current, e.timeMs, 'exec', out);
          this.#openSpan(
            { ...current.span, exe: e.exe, startMs: e.timeMs, how: 'exec', event: e.id },
            current.numbers,
            out,
          );
        }
        break;
      case 'exit':
        this.#close(current, e.timeMs, 'exit', out);
        break;
      default:
        break;
    }
  }

  /**
   * A host event opens nothing (`contid ps` shows containers), but shows
   * that a container process it names by pid is gone: its pid now belongs
   * to a host process (a fork of it), or is one (a label is never removed).
   */
  #host(e: ProcEvent, out: ProcChange[]): void {
    const own = this.#open.get(keyOf(e.node, e.pid!));
    if (own !== undefined) this.#close(own, e.timeMs, 'reuse', out);
    const life = e.life;
    if (life?.kind === 'fork' || life?.kind === 'clone3') {
      // A host process numbers its children as the records do.
      const child = this.#open.get(keyOf(e.node, life.child));
      if (child !== undefined) this.#close(child, e.timeMs, 'reuse', out);
    }
  }

  /** The open span of the event's process: found, opened (from a held birth, or as seen), or relabelled. */
  #current(e: ProcEvent, out: ProcChange[]): Open {
    const key = keyOf(e.node, e.pid!);
    const open = this.#open.get(key);
    if (open !== undefined) {
      if (open.span.chain !== e.chain) {
        this.#close(open, e.timeMs, 'label', out);
        return this.#openSpan(
          {
            ...open.span,
            chain: e.chain,
            ppid: e.ppid ?? open.span.ppid,
            startMs: e.timeMs,
            how: 'label',
            event: e.id,
          },
          open.numbers,
          out,
        );
      }
      if (e.ppid !== null && e.ppid !== open.span.ppid) {
        this.#close(open, e.timeMs, 'reparent', out);
        return this.#openSpan(
          { ...open.span, ppid: e.ppid, startMs: e.timeMs, how: 'reparent', event: e.id },
          open.numbers,
          out,
        );
      }
      return open;
    }
    const birth = e.ppid === null ? undefined : this.#takeBirth(keyOf(e.node, e.ppid), e.pid!);
    if (birth !== undefined) {
      const parent = this.#open.get(birth.parentKey);
      const numbers: PidNumbers = birth.exit === e.pid ? 'host' : 'nested';
      if (parent !== undefined && !birth.newPidNamespace) parent.numbers = numbers;
      return this.#openSpan(
        {
          id: 0,
          node: e.node,
          pid: e.pid!,
          ppid: e.ppid,
          chain: e.chain,
          exe: birth.exe,
          startMs: birth.timeMs,
          how: 'fork',
          bornMs: birth.timeMs,
          born: true,
          event: birth.event,
        },
        birth.newPidNamespace ? 'nested' : numbers,
        out,
      );
    }
    return this.#openSpan(
      {
        id: 0,
        node: e.node,
        pid: e.pid!,
        ppid: e.ppid,
        chain: e.chain,
        exe: e.exe,
        startMs: e.timeMs,
        how: 'seen',
        bornMs: e.timeMs,
        born: false,
        event: e.id,
      },
      undefined,
      out,
    );
  }

  #birth(
    e: ProcEvent,
    parent: Open,
    life: Extract<Lifecycle, { kind: 'fork' | 'clone3' }>,
    out: ProcChange[],
  ): void {
    const parentKey = keyOf(e.node, life.parent);
    if (life.kind === 'fork' && parent.numbers !== 'nested' && !life.newPidNamespace) {
      const key = keyOf(e.node, life.child);
      const exited = this.#exited.get(key);
      if (
        exited !== undefined &&
        exited.ppid === life.parent &&
        Math.abs(exited.startMs - e.timeMs) <= VFORK_WINDOW_MS &&
        !this.#open.has(key)
      ) {
        // A vfork child that has already run and exited: its whole life came first.
        this.#exited.delete(key);
        parent.numbers = 'host';
        if (!exited.born)
          out.push({ kind: 'born', id: exited.id, startMs: Math.min(exited.startMs, e.timeMs) });
        return;
      }
      const existing = this.#open.get(key);
      // vfork: the parent's record is written when it resumes, after the
      // child's own first events opened its span.
      if (
        existing !== undefined &&
        existing.span.how === 'seen' &&
        existing.span.ppid === life.parent &&
        Math.abs(existing.span.startMs - e.timeMs) <= VFORK_WINDOW_MS
      ) {
        const startMs = Math.min(existing.span.startMs, e.timeMs);
        existing.span = { ...existing.span, how: 'fork', startMs, bornMs: startMs, born: true };
        parent.numbers = 'host';
        out.push({ kind: 'born', id: existing.span.id, startMs });
        return;
      }
      if (parent.numbers === 'host') {
        if (existing !== undefined) this.#close(existing, e.timeMs, 'reuse', out);
        this.#openSpan(
          {
            id: 0,
            node: e.node,
            pid: life.child,
            ppid: life.parent,
            chain: e.chain,
            exe: e.exe,
            startMs: e.timeMs,
            how: 'fork',
            bornMs: e.timeMs,
            born: true,
            event: e.id,
          },
          'host',
          out,
        );
        return;
      }
    }
    this.#holdBirth({
      parentKey,
      exit: life.child,
      clone3: life.kind === 'clone3',
      newPidNamespace: life.newPidNamespace,
      chain: e.chain,
      exe: e.exe,
      timeMs: e.timeMs,
      event: e.id,
      taken: false,
    });
  }

  #holdBirth(b: Birth): void {
    if (this.#held >= this.#maxBirths) this.#dropOldestBirth();
    let list = this.#births.get(b.parentKey);
    if (list === undefined) this.#births.set(b.parentKey, (list = []));
    list.push(b);
    this.#birthQueue.push(b);
    this.#held++;
  }

  /** The parent's held birth that best fits a child seen with `pid`: `exit=` equal to it, else the oldest fork. */
  #takeBirth(parentKey: string, pid: number): Birth | undefined {
    const list = this.#births.get(parentKey);
    if (list === undefined) return undefined;
    const pick = list.find((b) => b.exit === pid) ?? list.find((b) => !b.clone3) ?? list[0];
    if (pick === undefined) return undefined;
    pick.taken = true;
    this.#held--;
    list.splice(list.indexOf(pick), 1);
    if (list.length === 0) this.#births.delete(parentKey);
    return pick;
  }

  #dropOldestBirth(): void {
    while (this.#birthQueue.length > 0) {
      const b = this.#birthQueue.shift()!;
      if (b.taken) continue;
      this.#forget(b);
      return;
    }
  }

  #forget(b: Birth): void {
    b.taken = true;
    this.#held--;
    const list = this.#births.get(b.parentKey);
    if (list === undefined) return;
    list.splice(list.indexOf(b), 1);
    if (list.length === 0) this.#births.delete(b.parentKey);
  }

  #expire(nowMs: number): void {
    let i = 0;
    const q = this.#birthQueue;
    while (i < q.length && (q[i]!.taken || nowMs - q[i]!.timeMs > BIRTH_TTL_MS)) {
      if (!q[i]!.taken) this.#forget(q[i]!);
      i++;
    }
    if (i > 0) this.#birthQueue = q.slice(i);
  }

  #openSpan(template: ProcSpan, numbers: PidNumbers | undefined, out: ProcChange[]): Open {
    const open: Open = { span: { ...template, id: this.#nextId++ }, numbers };
    out.push({ kind: 'open', span: open.span });
    this.#track(open);
    if (this.#open.size > this.#maxOpen) {
      // The longest-open span goes first: Map iteration follows insertion.
      const oldest = this.#open.values().next().value!;
      this.#close(oldest, template.startMs, 'evicted', out);
      this.#evicted++;
    }
    return open;
  }

  #track(open: Open): void {
    const key = keyOf(open.span.node, open.span.pid);
    this.#open.set(key, open);
    if (open.span.chain !== null) {
      let set = this.#byChain.get(open.span.chain);
      if (set === undefined) this.#byChain.set(open.span.chain, (set = new Set()));
      set.add(key);
    }
  }

  #close(open: Open, endMs: number, how: SpanEnd, out: ProcChange[]): void {
    const key = keyOf(open.span.node, open.span.pid);
    if (this.#open.get(key) !== open) return;
    this.#open.delete(key);
    if (how === 'exit') {
      if (this.#exited.size >= RECENT_EXITS) this.#exited.delete(this.#exited.keys().next().value!);
      this.#exited.set(key, open.span);
    }
    const chain = open.span.chain;
    if (chain !== null) {
      const set = this.#byChain.get(chain);
      set?.delete(key);
      if (set?.size === 0) this.#byChain.delete(chain);
    }
    out.push({ kind: 'close', id: open.span.id, endMs, how });
  }

  #drop(chain: number, timeMs: number, out: ProcChange[]): void {
    const keys = this.#byChain.get(chain);
    if (keys === undefined) return;
    for (const key of [...keys]) {
      const open = this.#open.get(key);
      if (open !== undefined) this.#close(open, timeMs, 'drop', out);
    }
  }
}
