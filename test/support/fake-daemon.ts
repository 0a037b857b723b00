/**
 * A DaemonApi for control-socket tests: answers from a script and records
 * what it was asked, so the tests see exactly what the server forwarded.
 */
import { readFingerprint, type CallerIdentity } from '../../src/control/peer.js';
import type { DaemonApi, DaemonStatus, OperationRequest, OperationResult } from '../../src/daemon/api.js';
import type { ContainerOp } from '../../src/policy/labeller.js';
import type { ContidErrno } from '../../src/policy/errno.js';

/** The status every FakeDaemon reports. */
export const FAKE_STATUS: DaemonStatus = {
  pid: 1,
  startedAt: '2026-11-28T00:00:00Z',
  source: 'unicast',
  records: 10,
  events: 5,
  recordRate: 2.5,
  lagMs: 3,
  losses: { enobufs: 0, kernelLost: 0, serialGaps: 0 },
  processes: 7,
  containers: 1,
  forgeries: 0,
};

/** A privileged identity (an orchestrator's) for a test's own connections: the server's `identify`. */
export function privilegedIdentity(cred: { pid: number; uid: number; gid: number }): CallerIdentity {
  return {
    ...cred,
    ppid: 1,
    auid: 4242,
    exe: '/usr/bin/runc',
    capEff: 1n << 30n,
    userNs: 'user:[4026531837]',
    initialUserNs: true,
    privileged: true,
    fingerprint: readFingerprint(cred.pid),
  };
}

/** A DaemonApi that answers from a script and records what it was asked. */
export class FakeDaemon implements DaemonApi {
  readonly submitted: OperationRequest[] = [];
  answer: (request: OperationRequest) => ContidErrno | null | Promise<ContidErrno | null> = () => null;

  async submit(request: OperationRequest): Promise<OperationResult> {
    this.submitted.push(request);
    const errno = await this.answer(request);
    const op: ContainerOp = {
      op: request.op,
      opid: request.pid,
      contid: request.contid ?? '-1',
      oldContid: '-1',
      caller: {
        pid: request.caller.pid,
        uid: request.caller.uid,
        auid: request.caller.auid,
        exe: request.caller.exe,
      },
      errno,
      result: errno === null ? 'accepted' : 'refused',
      body: `op=${request.op} opid=${request.pid} res=${errno === null ? 1 : 0}`,
      marker: { start: 's', seq: 1 },
      chain: null,
      created: false,
    };
    return { errno, op };
  }
  get(pid: number) {
    return pid === 404 ? null : { pid, contid: pid === 5 ? null : '4,^2' };
  }
  status(): DaemonStatus {
    return FAKE_STATUS;
  }
}
