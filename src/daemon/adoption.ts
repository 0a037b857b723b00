/**
 * Adoption through the container's cgroup (`adopt = yes`): processes that
 * enter a labelled container from outside (`crun exec`, `nsenter`, `kubectl
 * exec`) without their orchestrator calling contid get the container's ID.
 *
 * When a set creates a container, the target's `/proc/PID/cgroup` is read
 * and the container's anchor registered (src/policy/cgroup.ts); a drop
 * forgets it. Only the set that creates a container: an injected process
 * (`nsenter` from an operator's shell) may sit in a host cgroup, which must
 * not become the container's. A nested container's anchor must be strictly
 * below its parent's. Containers are named by their chain (`5,^42`): IDs
 * are unique among the children of one parent.
 * While at least one anchor is known, the first event of each unlabelled
 * process (and each execve of one) has its cgroup read; a process found in
 * a labelled container's cgroup is adopted through an `op=adopt` marker,
 * which, like every operation, takes effect where the kernel orders it.
 * The cgroup is read again just before the marker is sent: a process that
 * moved meanwhile is not adopted.
 * Events of that process before that point stay unlabelled: adoption is a
 * fallback for orchestrators that do not inject, not a replacement.
 */
import { readFileSync } from 'node:fs';
import type { LabelledEvent } from '../policy/labeller.js';
import { CgroupIndex } from '../policy/cgroup.js';
import { lifecycleKind } from '../track/lifecycle.js';
import type { Logger } from './logger.js';
import { RecordType } from '../interpret/record-types-generated.js';

const SYSCALL = RecordType.SYSCALL;

export interface AdoptionOptions {
  /** `/proc/PID/cgroup` of a process, or null when it is gone. */
  readCgroup(pid: number): Promise<string | null>;
  /** The same, read at once (the check just before an adopt marker is sent). */
  readCgroupNow(pid: number): string | null;
  /** Sends the adopt marker for the container with this chain and resolves once it was applied (or refused). */
  adopt(pid: number, chain: string): Promise<void>;
  /** Whether the chain (`5,^42`) still names a live container. */
  isLive(chain: string): boolean;
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
  /** Adoptions given up because the process had left the container's cgroup when re-read. */
  readonly moved: number;
}

/** The chain of the container a chain's leaf was created in, or null for a top-level one. */
function parentOf(chain: string): string | null {
  const at = chain.indexOf(',^');
  return at < 0 ? null : chain.slice(at + 2);
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
  #moved = 0;

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
      moved: this.#moved,
    };
  }

  /** Called with every labelled event, in stream order. */
  onEvent(le: LabelledEvent): void {
    for (const op of le.ops) {
      if (op.errno !== null) continue;
      if (op.op === 'set' && op.created && op.chain !== null) this.#registerFrom(op.opid, op.chain);
      else if (op.op === 'drop' && this.#index.unregister(op.oldContid) > 0) {
        this.#options.log('info', `Adoption: container ${op.oldContid} dropped, its cgroup forgotten`);
      }
    }
    // Unset and unknown processes are candidates; labelled ones are not.
    if ((le.contid !== null && le.contid !== 'unknown') || le.provisional || this.#index.size === 0) return;
    const record = le.event.records.find((r) => r.type === SYSCALL);
    if (record === undefined) return;
    const pid = Number(record.field('pid'));
    const ppid = record.field('ppid') ?? '';
    if (!Number.isSafeInteger(pid) || pid <= 0) return;
    const kind = lifecycleKind(record.field('arch') ?? '', Number(record.field('syscall')));
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

  #registerFrom(pid: number, id: string): void {
    this.#read(pid, (text) => {
      if (!this.#options.isLive(id)) return;
      const r = this.#index.register(id, text, parentOf(id));
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
      } else if (r.kind === 'not-below') {
        log(
          'info',
          `Adoption: nested container ${id} is in cgroup ${r.anchor.path}, not below its parent's; it cannot adopt`,
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
      // Read again now: the process may have left the cgroup since the first read.
      const now = this.#options.readCgroupNow(pid);
      if (now === null || this.#index.match(now) !== id) {
        this.#moved++;
        return;
      }
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

/** `/proc/PID/cgroup`, read at once, or null when the process is gone. */
export function readCgroupNow(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return null;
  }
}

/** The cgroup files of host processes (pid 1, the daemon), which a container's cgroup must differ from. */
export function hostCgroupRefs(selfPid: number): string[] {
  return [1, selfPid].flatMap((pid) => {
    const text = readCgroupNow(pid);
    return text === null ? [] : [text];
  });
}
