import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuditStatus } from '../kernel/status.js';
import { Monitor, NO_READINGS, type MonitorReadings } from './monitor.js';

function status(lost: number): AuditStatus {
  return {
    enabled: 1,
    failure: 1,
    pid: 1,
    rateLimit: 0,
    backlogLimit: 8192,
    lost,
    backlog: 0,
    featureBitmap: 0,
    backlogWaitTime: 0,
    backlogWaitTimeActual: 0,
  };
}

const QUIET: MonitorReadings = NO_READINGS;

test('each new loss is logged once, by kind; lost counts from the start and survives a counter reset', () => {
  const lines: string[] = [];
  let kernelLost = 7;
  let reconciled = 0;
  const m = new Monitor({
    log: (_level, message) => lines.push(message),
    readStatus: () => status(kernelLost),
    reconcile: () => reconciled++,
  });
  m.begin(status(7), 0);
  m.tick(1000, { ...QUIET, records: 100 });
  assert.deepEqual(lines, []);
  assert.equal(m.kernelLost, 0);
  kernelLost = 10;
  m.tick(2000, { ...QUIET, records: 300, enobufs: 2, serialGaps: 5, storeDropped: 4, foreign: 1 });
  assert.deepEqual(lines, [
    'The kernel lost 3 records (lost counter)',
    'The socket overflowed 2 times (ENOBUFS): records lost',
    'About 5 records missing (serial gaps)',
    "The event store's queue was full: 4 events dropped from the store (not from the host log)",
    "Ignored 1 netlink messages sent by a process, not the kernel (someone with CAP_NET_ADMIN is sending to contid's sockets)",
  ]);
  assert.equal(m.kernelLost, 3);
  assert.equal(m.recordRate, 200);
  assert.equal(reconciled, 1, 'ENOBUFS: the witness checks every process');
  lines.length = 0;
  m.tick(3000, { ...QUIET, records: 300, enobufs: 2, serialGaps: 5, storeDropped: 4, foreign: 1 });
  assert.deepEqual(lines, [], 'nothing new, nothing said');
  const withConnectorLoss = {
    ...QUIET,
    records: 300,
    enobufs: 2,
    serialGaps: 5,
    storeDropped: 4,
    foreign: 1,
    connectorEnobufs: 1,
  };
  m.tick(4000, withConnectorLoss);
  assert.equal(reconciled, 2, 'exits went unseen: reconcile too');
  kernelLost = 2; // reset (auditctl --reset-lost)
  m.tick(5000, withConnectorLoss);
  assert.equal(m.kernelLost, 2);
});

test('a status that cannot be read is a warning, and the last one is kept', () => {
  const lines: string[] = [];
  const m = new Monitor({
    log: (_level, message) => lines.push(message),
    readStatus: () => {
      throw new Error('no answer to request type 1000 within 2000 ms');
    },
    reconcile: () => undefined,
  });
  m.begin(status(0), 0);
  m.tick(1000, QUIET);
  assert.deepEqual(lines, ['Cannot read the audit status: no answer to request type 1000 within 2000 ms']);
  assert.equal(m.kernel?.lost, 0);
});
