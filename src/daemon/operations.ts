/**
 * {@link Operations}: the orchestrator's set, grant and adopt requests, from
 * the request to its answer. A request becomes a marker (its target's and
 * caller's incarnations read from /proc now, so a pid reused before the
 * marker comes back is another process); it is answered when the labeller
 * has applied that marker, read back from the kernel stream, at its exact
 * place in the kernel's order. This class is the one owner of an
 * operation's deadline (`submit-timeout`): a marker not read back in time
 * fails the request with ETIMEDOUT.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { SyscallError } from '../kernel/libc.js';
import type { MarkerBody } from '../marker/format.js';
import type { ContainerOp } from '../policy/labeller.js';
import type { SinkSpec } from '../route/sink-spec.js';
import { DaemonError, type OperationRequest, type OperationResult } from './api.js';
import type { Descriptions } from './descriptions.js';
import type { Logger } from './logger.js';
import { readProcFacts } from './proc-seed.js';

/** What operations need of the daemon. */
export interface OperationsDeps {
  /** This start's id: only its markers answer its requests. */
  readonly startId: string;
  /** How long a request waits for its marker to be read back. */
  readonly timeoutMs: number;
  readonly log: Logger;
  readonly descriptions: Descriptions;
  /** The seq the next marker will take. */
  nextSeq(): number;
  /** Sends a marker of this start; throws when it cannot be sent. */
  sendMarker(body: MarkerBody): void;
  /** Writes the never-seen ancestors of `pid` into the stream first, so its container is known. */
  place(pid: number): void;
}

interface Pending {
  resolve(result: OperationResult): void;
  reject(error: Error): void;
}

export class Operations {
  readonly #deps: OperationsDeps;
  readonly #pending = new Map<number, Pending>();
  /** The sinks a pending set named (`--sink`), by marker seq. */
  readonly #sinkRequests = new Map<number, readonly SinkSpec[]>();
  #closed: Error | null = null;

  constructor(deps: OperationsDeps) {
    this.#deps = deps;
  }

  /** Requests waiting for their marker. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Sends the request's marker; resolves with the labeller's answer once it is read back. */
  submit(request: OperationRequest, signal?: AbortSignal): Promise<OperationResult> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    if (request.sinks !== undefined && !request.caller.privileged) {
      return Promise.reject(
        // (The control server refuses such a request first, with EPERM.)
        new DaemonError(
          `Cannot set pid ${request.pid}: naming sinks needs a privileged caller`,
          'ERR_BAD_OPERATION',
        ),
      );
    }
    if (request.op !== 'grant' && request.contid === undefined) {
      return Promise.reject(
        new DaemonError(`Cannot ${request.op} pid ${request.pid}: no contid given`, 'ERR_BAD_OPERATION'),
      );
    }
    const body = this.#markerBody(request);
    return new Promise<OperationResult>((resolve, reject) => {
      let seq: number;
      const timeoutMs = this.#deps.timeoutMs;
      const settle = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(seq);
        this.#sinkRequests.delete(seq);
      };
      const timer = setTimeout(() => {
        settle();
        reject(
          new DaemonError(
            `Cannot ${request.op} pid ${request.pid}: its marker was not read back within ${timeoutMs} ms`,
            'ETIMEDOUT',
          ),
        );
      }, timeoutMs);
      const onAbort = (): void => {
        settle();
        reject(
          signal?.reason instanceof Error
            ? signal.reason
            : new DaemonError(
                `Cannot ${request.op} pid ${request.pid}: the operation was aborted`,
                'ABORT_ERR',
              ),
        );
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        seq = this.#deps.nextSeq();
        this.#pending.set(seq, {
          resolve: (r) => {
            settle();
            this.#record(request, r);
            resolve(r);
          },
          reject: (e) => {
            settle();
            reject(e);
          },
        });
        if (request.sinks !== undefined) this.#sinkRequests.set(seq, request.sinks);
        this.#deps.sendMarker(body);
      } catch (error) {
        settle();
        const message = error instanceof Error ? error.message : String(error);
        const code =
          error instanceof SyscallError
            ? 'ERR_KERNEL'
            : error instanceof RangeError
              ? 'ERR_BAD_OPERATION'
              : 'ERR_INTERNAL';
        reject(
          new DaemonError(`Cannot ${request.op} pid ${request.pid}: ${message}`, code, { cause: error }),
        );
      }
    });
  }

  /** An operation the labeller applied: answers the request whose marker it was, if any. */
  answer(op: ContainerOp): void {
    if (op.marker?.start !== this.#deps.startId) return;
    const pending = this.#pending.get(op.marker.seq);
    if (pending === undefined) return;
    this.#pending.delete(op.marker.seq);
    pending.resolve({ errno: op.errno, op });
  }

  /** The sinks the set with marker `seq` of this start named, once (null: none named). */
  takeSinks(seq: number): readonly SinkSpec[] | null {
    const specs = this.#sinkRequests.get(seq) ?? null;
    this.#sinkRequests.delete(seq);
    return specs;
  }

  /** Refuses new requests with `error` and fails those waiting. */
  close(error: Error): void {
    this.#closed ??= error;
    for (const [seq, pending] of this.#pending) {
      this.#pending.delete(seq);
      pending.reject(error);
    }
  }

  /**
   * The marker of a request. The target's and the caller's incarnations are
   * read now: a pid reused before the marker is read back is another
   * process (ESRCH), and a grant is for this process only (its uid,
   * executable and start time).
   */
  #markerBody(request: OperationRequest): MarkerBody {
    const facts = readProcFacts(request.pid);
    const target =
      facts === null ? { pid: request.pid } : { pid: request.pid, ppid: facts.ppid, start: facts.startTime };
    // Its container must be known when the marker is applied: never-seen ancestors go first.
    this.#deps.place(request.pid);
    const callerStart = request.caller.start ?? readProcFacts(request.caller.pid)?.startTime;
    const caller = callerStart === undefined ? request.caller : { ...request.caller, start: callerStart };
    if (request.op === 'grant') return { op: 'grant', ...target, ...readIdentity(request.pid), caller };
    const contid = request.contid!;
    if (request.op === 'adopt') return { op: 'adopt', ...target, contid, caller };
    return {
      op: 'set',
      ...target,
      contid,
      caller,
      ...(request.owner === undefined ? {} : { owner: request.owner }),
      ...(request.create === true ? { create: true } : {}),
      // In the marker, so the set's CONTAINER_OP (and a replay) names the container.
      ...(request.name === undefined ? {} : { name: request.name }),
      ...(request.meta === undefined || Object.keys(request.meta).length === 0 ? {} : { meta: request.meta }),
    };
  }

  /**
   * Logs an answered operation with the name and meta the orchestrator gave,
   * and keeps them for status while the container is live.
   */
  #record(request: OperationRequest, result: OperationResult): void {
    const described = request.name !== undefined || request.meta !== undefined;
    const about =
      (request.name === undefined ? '' : ` name ${JSON.stringify(request.name)}`) +
      (request.meta === undefined ? '' : ` meta ${JSON.stringify(request.meta)}`);
    const what =
      `${request.op} pid ${request.pid}${request.contid === undefined ? '' : ` contid ${request.contid}`}` +
      (request.owner === undefined ? '' : ` owner ${JSON.stringify(request.owner)}`) +
      (request.create === true ? ' create-only' : '');
    const caller = `caller pid ${request.caller.pid} uid ${request.caller.uid}`;
    const outcome = result.errno === null ? 'accepted' : `refused (${result.errno})`;
    this.#deps.log('info', `Operation ${what}${about} by ${caller}: ${outcome}`);
    if (result.errno !== null || request.op !== 'set' || !described || result.op.chain === null) return;
    this.#deps.descriptions.describe({
      contid: result.op.chain,
      pid: request.pid,
      ...(request.name === undefined ? {} : { name: request.name }),
      ...(request.meta === undefined ? {} : { meta: request.meta }),
    });
  }
}

/** A process's effective uid and executable, as a grant records them; fields it cannot read are left out. */
function readIdentity(pid: number): { targetUid?: number; targetExe?: string } {
  const out: { targetUid?: number; targetExe?: string } = {};
  try {
    const uid = /^Uid:\s+[0-9]+\s+([0-9]+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1];
    if (uid !== undefined) out.targetUid = Number(uid);
  } catch {
    // Exited: the labeller answers ESRCH.
  }
  try {
    out.targetExe = readlinkSync(`/proc/${pid}/exe`);
  } catch {
    // A kernel thread or an exiting process has no exe link.
  }
  return out;
}
