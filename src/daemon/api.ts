/**
 * The daemon's interface to its front ends (the control socket, `contid
 * status`). The control server depends only on this, not on how the daemon
 * reads the kernel.
 */
import { ContidError } from '../errors.js';
import type { MarkerCaller } from '../marker/format.js';
import type { ContainerOp } from '../policy/labeller.js';
import type { ContidErrno } from '../policy/errno.js';
import type { SinkSpec } from '../route/sink-spec.js';

/**
 * Why {@link DaemonApi.submit} failed, for the control server to map to its
 * answer: `ERR_SHUTTING_DOWN` (stopping), `ETIMEDOUT` (the marker was not
 * read back in time), `ERR_BAD_OPERATION` (no contid, or a value the marker
 * format cannot carry), `ERR_KERNEL` (the kernel refused the marker; `cause`
 * is the SyscallError with the errno), `ABORT_ERR` (the signal fired without
 * an Error reason) or `ERR_INTERNAL`.
 */
export type DaemonErrorCode =
  'ERR_SHUTTING_DOWN' | 'ETIMEDOUT' | 'ERR_BAD_OPERATION' | 'ERR_KERNEL' | 'ABORT_ERR' | 'ERR_INTERNAL';

/** A failed operation; `code` says why (see {@link DaemonErrorCode}). */
export class DaemonError extends ContidError<DaemonErrorCode> {}

/** An operation an orchestrator asks for. */
export interface OperationRequest {
  readonly op: 'set' | 'grant' | 'adopt';
  /** Target host pid. */
  readonly pid: number;
  /** Decimal u64 for set and adopt; absent for grant. */
  readonly contid?: string;
  /** Who asked, as established by the control server (SO_PEERCRED, /proc). */
  readonly caller: MarkerCaller;
  /**
   * A name for the container (set only; in the marker), e.g. the OCI
   * container id: the set's CONTAINER_OP carries it, so the event store and
   * a replay know it; the daemon also logs it and lists it in its status.
   */
  readonly name?: string;
  /** Descriptive key/value pairs for the container (set only; in the marker), like `name`. */
  readonly meta?: Readonly<Record<string, string>>;
  /**
   * The owner of the ID, named by a privileged caller (set only; in the
   * marker): `oci:<container id>` for the OCI hook. Only a set naming the
   * same owner may join the ID while it is live.
   */
  readonly owner?: string;
  /** Create-only (set only; in the marker): refused (ENOTUNIQ) when the ID is live. */
  readonly create?: boolean;
  /**
   * The container's sinks (set only; privileged callers only; not in the
   * marker), instead of the configured `container-sink`; empty for none.
   * Opened when the set creates the container.
   */
  readonly sinks?: readonly SinkSpec[];
}

/** The answer, given once the operation's marker has been read back from the kernel. */
export interface OperationResult {
  /** Null when accepted. */
  readonly errno: ContidErrno | null;
  /** The CONTAINER_OP the labeller recorded for it. */
  readonly op: ContainerOp;
}

/** What `get` reports about a process. */
export interface ProcessLabel {
  readonly pid: number;
  /** Leaf-to-root chain (`4,^2,^1`), or null when unset. */
  readonly contid: string | null;
}

/** Counters for `contid status`. */
export interface DaemonStatus {
  readonly pid: number;
  readonly startedAt: string;
  /** 'unicast' (the audit daemon), 'multicast' (beside auditd) or 'plugin' (auditd's stdin). */
  readonly source: string;
  readonly records: number;
  readonly events: number;
  /** Records per second over the last interval. */
  readonly recordRate: number;
  /** Milliseconds between the newest record's timestamp and now. */
  readonly lagMs: number;
  readonly losses: { readonly enobufs: number; readonly kernelLost: number; readonly serialGaps: number };
  readonly processes: number;
  readonly containers: number;
  readonly forgeries: number;
  readonly [key: string]: unknown;
}

/** The daemon as its front ends see it. */
export interface DaemonApi {
  /**
   * Sends the operation's marker into the kernel and resolves when the
   * daemon has read it back and applied it. Rejects with a DaemonError
   * (`ETIMEDOUT` when the marker is not read back in time: audit disabled,
   * daemon overloaded), or with the signal's reason.
   */
  submit(request: OperationRequest, signal?: AbortSignal): Promise<OperationResult>;
  /** The label of a live process, or null when the daemon does not know it. */
  get(pid: number): ProcessLabel | null;
  status(): DaemonStatus;
}
