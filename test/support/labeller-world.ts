/**
 * A test driver for the labeller: a stream of SYSCALL events and markers
 * sent by a simulated daemon (pid 500, start "S1"), with readable helpers.
 */
import { encodeMarker, MARKER_TYPE, type MarkerBody, type MarkerCaller } from '../../src/marker/format.js';
import type { Keyring } from '../../src/marker/keyring.js';
import { FORK_FLAGS, Stream, type SyscallFields } from './text-records.js';
import {
  Labeller,
  type ContainerOp,
  type LabelledEvent,
  type LabellerOptions,
} from '../../src/policy/labeller.js';

export const DAEMON_PID = 500;
export const START = 'S1';
export const SECRET = Buffer.alloc(32, 7);
export const KEYRING: Keyring = new Map([[START, { startId: START, daemonPid: DAEMON_PID, secret: SECRET }]]);

/** The host orchestrator: pid 100, root, /usr/bin/runc, CAP_AUDIT_CONTROL. */
export const ORCH: MarkerCaller = {
  pid: 100,
  uid: 0,
  auid: 4294967295,
  exe: '/usr/bin/runc',
  privileged: true,
};

export class World {
  readonly stream = new Stream();
  readonly labeller: Labeller;
  seq = 0;

  constructor(options: LabellerOptions = {}) {
    this.labeller = new Labeller({ keyring: KEYRING, ...options });
  }

  sys(f: SyscallFields, stepMs = 1): LabelledEvent {
    return this.labeller.process(this.stream.syscall(f, stepMs));
  }

  /** A process making an ordinary syscall (getpid). */
  seen(pid: number, ppid: number): LabelledEvent {
    return this.sys({ pid, ppid, nr: 39, exit: pid });
  }

  fork(parent: number, child: number, grandparent = 1): LabelledEvent {
    return this.sys({ pid: parent, ppid: grandparent, nr: 56, a0: FORK_FLAGS, exit: child });
  }

  exit(pid: number, ppid: number): LabelledEvent {
    return this.sys({ pid, ppid, nr: 231 });
  }

  /** Sends a marker from the daemon and returns the event's result. */
  marker(body: MarkerBody): LabelledEvent {
    const text = encodeMarker({ start: START, seq: ++this.seq, body }, SECRET);
    return this.labeller.process(this.stream.user(MARKER_TYPE, DAEMON_PID, text));
  }

  /** `set pid contid` asked by `caller`; returns the one CONTAINER_OP it made. */
  set(pid: number, contid: string, caller: MarkerCaller = ORCH, ppid?: number): ContainerOp {
    const body: MarkerBody =
      ppid === undefined ? { op: 'set', pid, contid, caller } : { op: 'set', pid, ppid, contid, caller };
    return only(this.marker(body).ops);
  }

  grant(pid: number, caller: MarkerCaller = ORCH): ContainerOp {
    return only(this.marker({ op: 'grant', pid, caller }).ops);
  }

  /** The chain of pid's current label, or null. */
  contid(pid: number): string | null {
    return this.labeller.table.get(pid)?.label?.rendered ?? null;
  }
}

function only(ops: readonly ContainerOp[]): ContainerOp {
  if (ops.length !== 1) throw new Error(`Expected one op, got ${ops.length}`);
  return ops[0]!;
}

/** A caller that is a (non-privileged) process known to the table. */
export function callerAt(pid: number, exe = '/usr/bin/lxc'): MarkerCaller {
  return { pid, uid: 0, auid: 4294967295, exe, privileged: false };
}
