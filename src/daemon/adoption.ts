/**
 * Adoption through the container's cgroup (`adopt = yes`): processes that
 * enter a labelled container from outside (`crun exec`, `nsenter`, `kubectl
 * exec`) without their orchestrator calling contid get the container's ID.
 *
 * When a set is accepted, the target's `/proc/PID/cgroup` is read and the
 * container's anchor registered (src/policy/cgroup.ts); a drop forgets it.
 * While at least one anchor is known, the first event of each unlabelled
 * process (and each execve of one) has its cgroup read; a process found in
 * a labelled container's cgroup is adopted through an `op=adopt` marker,
 * which, like every operation, takes effect where the kernel orders it.
 * Events of that process before that point stay unlabelled: adoption is a
 * fallback for orchestrators that do not inject, not a replacement.
 */
import type { LabelledEvent } from '../policy/labeller.js';
import { CgroupIndex } from '../policy/cgroup.js';
import { fieldValue } from '../parse/record.js';
import { lifecycleKind } from '../track/lifecycle.js';
import type { Logger } from './logger.js';

const SYSCALL = 1300;

export interface AdoptionOptions {
  /** `/proc/PID/cgroup` of a process, or null when it is gone. */
  readCgroup(pid: number): Promise<string | null>;
  /** Sends the adopt marker and resolves once it was applied (or refused). */
  adopt(pid: number, contid: string): Promise<void>;
  /** Whether `contid` still names a live container. */
  isLive(contid: string): boolean;
  /** Cgroup files of host processes (pid 1, the daemon) that a container's cgroup must differ from. */
  readonly hostRefs: readonly string[];
  readonly log: Logger;
  /** Cgroup reads in flight at most; further checks are skipped and counted. Default 64. */
  readonly maxReads?: number;
  /** Processes remembered as checked (oldest forgotten first). Default 65,536. */
  readonly memory?: number;
}

export interface AdoptionStats {
  /** Container cgroups that can be matched. */
  readonly containers: number;
  /** Cgroup reads of unlabelled processes. */
  readonly checks: number;
  /** Adopt markers sent. */
  readonly adopted: number;
  /** Checks not made because too many reads were in flight. */
  readonly skipped: number;
}

function leafOf(chain: string): string | null {
  const leaf = chain.split(',')[0] ?? '';
  return /^[0-9]{1,20}$/.test(leaf) ? BigInt(leaf).toString() : null;
}

/** Watches the labelled event stream and adopts processes found in containers' cgroups. */
export class CgroupAdoption {
  readonly #options: AdoptionOptions;
  readonly #index: CgroupIndex;
  readonly #maxReads: number;
  readonly #memory: number;
  /** pid → ppid of processes already checked (pid reuse shows as another ppid). */
  readonly #checked = new Map<number, string>();
  /** Pids whose adopt marker is on its way. */
  readonly #adopting = new Set<number>();
  #reads = 0;
  #checks = 0;
  #adopted = 0;
  #skipped = 0;

  constructor(options: AdoptionOptions) {
    this.#options = options;
    this.#index = new CgroupIndex(options.hostRefs);
    this.#maxReads = options.maxReads ?? 64;
    this.#memory = options.memory ?? 65_536;
  }

  stats(): AdoptionStats {
    return {
      containers: this.#index.size,
      checks: this.#checks,
      adopted: this.#adopted,
      skipped: this.#skipped,
    };
  }

  /** Called with every labelled event, in stream order. */
  onEvent(le: LabelledEvent): void {
    for (const op of le.ops) {
      if (op.errno !== null) continue;
      if (op.op === 'set') this.#registerFrom(op.opid, op.contid);
      else if (op.op === 'drop') {
        const id = leafOf(op.oldContid);
        if (id !== null && this.#index.unregister(id) > 0) {
          this.#options.log('info', `Adoption: container ${id} dropped, its cgroup forgotten`);
        }
      }
    }
    if (le.contid !== null || le.provisional || this.#index.size === 0) return;
    const record = le.event.records.find((r) => r.type === SYSCALL);
    if (record === undefined) return;
    const pid = Number(fieldValue(record, 'pid'));
    const ppid = fieldValue(record, 'ppid') ?? '';
    if (!Number.isSafeInteger(pid) || pid <= 0) return;
    const kind = lifecycleKind(fieldValue(record, 'arch') ?? '', Number(fieldValue(record, 'syscall')));
    if (kind === 'exit-group') {
      this.#checked.delete(pid);
      return;
    }
    // A process is checked when first seen; an execve may follow a move into the cgroup.
    if (kind !== 'execve' && this.#checked.get(pid) === ppid) return;
    this.#remember(pid, ppid);
    this.#check(pid);
  }

  #remember(pid: number, ppid: string): void {
    this.#checked.delete(pid);
    this.#checked.set(pid, ppid);
    if (this.#checked.size > this.#memory) {
      const oldest = this.#checked.keys().next();
      if (oldest.done !== true) this.#checked.delete(oldest.value);
    }
  }

  #registerFrom(pid: number, requested: string): void {
    const id = leafOf(requested);
    if (id === null) return;
    this.#read(pid, (text) => {
      if (!this.#options.isLive(id)) return;
      const r = this.#index.register(id, text);
      const log = this.#options.log;
      if (r.kind === 'registered') {
        log('info', `Adoption: container ${id} is cgroup ${r.anchor.path} (${r.anchor.hierarchy})`);
      } else if (r.kind === 'host') {
        log('info', `Adoption: container ${id} (pid ${pid}) shares the host's cgroups; it cannot adopt`);
      } else if (r.kind === 'ambiguous') {
        log(
          'warning',
          `Adoption: containers ${r.other} and ${id} share cgroup ${r.anchor.path}; neither adopts there`,
        );
      }
    });
  }

  #check(pid: number): void {
    if (this.#adopting.has(pid)) return;
    if (this.#reads >= this.#maxReads) {
      this.#skipped++;
      return;
    }
    this.#checks++;
    this.#read(pid, (text) => {
      const id = this.#index.match(text);
      if (id === null || !this.#options.isLive(id) || this.#adopting.has(pid)) return;
      this.#adopting.add(pid);
      this.#adopted++;
      void this.#options
        .adopt(pid, id)
        .catch((error: unknown) => {
          const message = error instanceof Error ? error.message : String(error);
          this.#options.log('warning', `Adoption of pid ${pid} into ${id} failed: ${message}`);
        })
        .finally(() => this.#adopting.delete(pid));
    });
  }

  #read(pid: number, then: (text: string) => void): void {
    this.#reads++;
    void this.#options
      .readCgroup(pid)
      .then((text) => {
        if (text !== null) then(text);
      })
      .catch((error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        this.#options.log('warning', `Adoption: cannot read the cgroup of pid ${pid}: ${message}`);
      })
      .finally(() => this.#reads--);
  }
}

/** Reads `/proc/PID/cgroup` with `read`, mapping a vanished process to null. */
export async function readProcCgroup(
  pid: number,
  read: (path: string) => Promise<string>,
  proc = '/proc',
): Promise<string | null> {
  try {
    return await read(`${proc}/${pid}/cgroup`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return null;
    throw error;
  }
}
