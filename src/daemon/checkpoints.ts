/**
 * The daemon's checkpoints over a run (the format is src/daemon/checkpoint.ts):
 * the previous start's checkpoint loaded, or set aside when it cannot be
 * used; its restore written into the stream after the seed markers; the
 * events the kernel numbered while contid was down counted; the labels
 * saved periodically, after each accepted operation and on stop.
 */
import { renameSync } from 'node:fs';
import { SEED_ENTRIES_PER_MARKER, type MarkerBody } from '../marker/format.js';
import type { Labeller } from '../policy/labeller.js';
import type { SeedProcess } from '../track/process-table.js';
import { hostCgroupRefs, readCgroupNow } from './adoption.js';
import { readCheckpoint, takeCheckpoint, writeCheckpoint, type Checkpoint } from './checkpoint.js';
import { compactTime } from './files.js';
import type { Logger } from './logger.js';
import { readProcFacts } from './proc-seed.js';
import { planRestore } from './restore-plan.js';

/** Where the daemon stands, as a checkpoint records it. */
export interface StreamPosition {
  /** The node of this host's records (null: no `node=`). */
  readonly node: string | null;
  /** The highest kernel serial read. */
  readonly serial: number;
  /** The newest record's time (ms). */
  readonly timeMs: number;
}

/** What {@link Checkpoints} works with. */
export interface CheckpointsOptions {
  /** The state directory: the checkpoint is `checkpoint.json` there. */
  readonly stateDir: string;
  /** This start. */
  readonly startId: string;
  /** The daemon's pid (its cgroup is a host one, never a container's anchor). */
  readonly selfPid: number;
  /** The labeller of this host's records. */
  readonly labeller: () => Labeller;
  readonly position: () => StreamPosition;
  /** This start's marker has been read back: its own labels are there. */
  readonly started: () => boolean;
  readonly log: Logger;
}

/** The counters of `contid status`'s `checkpoint`. */
export interface CheckpointsStats {
  readonly path: string;
  readonly saved: number;
  readonly problems: number;
  readonly lastError: string | null;
  /** What this start restored from the previous one's checkpoint. */
  readonly restored: Record<string, unknown> | null;
}

/** The checkpoint lifecycle of one start. */
export class Checkpoints {
  readonly path: string;
  readonly #startId: string;
  readonly #selfPid: number;
  readonly #labeller: () => Labeller;
  readonly #position: () => StreamPosition;
  readonly #started: () => boolean;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  /** Start times read for checkpoints, by table entry (a process's start time never changes). */
  readonly #startTimes = new WeakMap<object, number>();
  #saved = 0;
  #problems = 0;
  #lastError: string | null = null;
  /** What this start restored from the previous one's checkpoint. */
  #restored: Record<string, unknown> | null = null;
  /** The checkpoint restored, until the first record says how much was missed. */
  #restoredFrom: Checkpoint | null = null;
  /** This start's restore has been applied (its restore-done marker read back). */
  #restoreDone = false;

  constructor(options: CheckpointsOptions) {
    this.path = `${options.stateDir.replace(/\/+$/, '')}/checkpoint.json`;
    this.#startId = options.startId;
    this.#selfPid = options.selfPid;
    this.#labeller = options.labeller;
    this.#position = options.position;
    this.#started = options.started;
    this.#log = options.log;
  }

  /**
   * The checkpoint of the previous start, or null: none, or one that cannot
   * be used (set aside with the reason, never a reason not to start).
   */
  load(): Checkpoint | null {
    const path = this.path;
    const read = readCheckpoint(path);
    if (read.kind === 'none') return null;
    if (read.kind === 'bad') {
      const aside = `${path}.bad-${compactTime(new Date())}`;
      try {
        renameSync(path, aside);
      } catch {
        // Read-only state directory: it stays, and is refused again next time.
      }
      this.#log(
        'warning',
        `Cannot use the checkpoint "${path}": ${read.reason}; starting without it (set aside as "${aside}")`,
      );
      this.#problems++;
      return null;
    }
    return read.checkpoint;
  }

  /** Writes the restore of `checkpoint` into the stream (after the seed markers) with `send`. */
  restore(checkpoint: Checkpoint, procs: readonly SeedProcess[], send: (body: MarkerBody) => void): void {
    const plan = planRestore(checkpoint, procs, {
      cgroupOf: readCgroupNow,
      hostRefs: hostCgroupRefs(this.#selfPid),
      perMarker: SEED_ENTRIES_PER_MARKER,
    });
    for (const m of plan.markers) send(m);
    this.#restoredFrom = checkpoint;
    const c = plan.counts;
    this.#restored = {
      from: checkpoint.startId,
      savedAt: checkpoint.savedAt,
      serial: checkpoint.stream.serial,
      ...c,
    };
    this.#log(
      'notice',
      `Restored the labels of start ${checkpoint.startId} (checkpoint of ${checkpoint.savedAt}, serial ${checkpoint.stream.serial}): ` +
        `${c.kept} processes kept, ${c.inherited} born while contid was down, ${c.adopted} by their cgroup; ${c.ended} ended meanwhile`,
    );
  }

  /**
   * After each event: right after the restore, the labels it brought back
   * are saved as this start's.
   */
  afterEvent(): void {
    if (this.#restoredFrom !== null && !this.#restoreDone && this.#labeller().restores.length > 0) {
      this.#restoreDone = true;
      this.save();
    }
  }

  /**
   * The first record of this start: the kernel numbered events between the
   * restored checkpoint's position and here that this start did not read
   * (while contid was down, as the audit daemon, the kernel printk'd and
   * dropped them).
   */
  firstRead(serial: number): void {
    const cp = this.#restoredFrom;
    if (cp === null || this.#restored === null) return;
    const from = cp.stream.serial + 1;
    const to = serial - 1;
    const missed = to >= from ? to - from + 1 : 0;
    this.#restored = { ...this.#restored, unread: missed === 0 ? null : { from, to, records: missed } };
    if (missed > 0) {
      // The checkpoint's position is where the previous start had read when
      // it saved: after a crash, some of these were read (and written) after it.
      this.#log(
        'warning',
        `Events with serials ${from} to ${to} (${missed}) are between the restored checkpoint ` +
          `(${cp.savedAt}) and this start: those the previous start had not read yet when it ended were lost`,
      );
    }
  }

  /** Saves every `intervalMs` from now on. */
  startTimer(intervalMs: number): void {
    this.#timer = setInterval(() => {
      this.save();
    }, intervalMs);
    this.#timer.unref();
  }

  stopTimer(): void {
    clearInterval(this.#timer);
  }

  /**
   * Saves the labels (periodically, after an accepted operation, on stop).
   * A failure (full disk, read-only directory) is logged and counted; the
   * previous checkpoint stays.
   */
  save(): void {
    const labeller = this.#labeller();
    // Not before this start's own labels are there: its start marker read
    // back, and the restore it announced applied. An earlier save would
    // replace a good checkpoint with an empty one.
    if (!this.#started() || labeller.restoring) return;
    if (this.#restoredFrom !== null && !this.#restoreDone) return;
    try {
      const { node, serial, timeMs } = this.#position();
      const checkpoint = takeCheckpoint(labeller, {
        startId: this.#startId,
        node,
        stream: { serial, timeMs },
        facts: (e) => {
          const known = this.#startTimes.get(e);
          if (known !== undefined) return { ppid: e.ppid, startTime: known };
          const f = readProcFacts(e.pid);
          if (f !== null && f.ppid === e.ppid) this.#startTimes.set(e, f.startTime);
          return f;
        },
        cgroupOf: readCgroupNow,
        hostRefs: hostCgroupRefs(this.#selfPid),
      });
      writeCheckpoint(this.path, checkpoint);
      this.#saved++;
      this.#lastError = null;
    } catch (error) {
      this.#problems++;
      const message = error instanceof Error ? error.message : String(error);
      if (message !== this.#lastError) this.#log('warning', `${message}; the previous checkpoint stays`);
      this.#lastError = message;
    }
  }

  stats(): CheckpointsStats {
    return {
      path: this.path,
      saved: this.#saved,
      problems: this.#problems,
      lastError: this.#lastError,
      restored: this.#restored,
    };
  }
}
