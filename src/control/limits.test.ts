import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionLimits } from './limits.js';

test('connection limits: each uid has its own bound, other uids share a pool, root is apart', () => {
  const limits = new ConnectionLimits({ maxConnections: 3, maxConnectionsPerUid: 2 });
  assert.equal(limits.admit(1000), null);
  assert.equal(limits.admit(1000), null);
  assert.match(limits.admit(1000) ?? '', /^uid 1000 holds 2 connections, the most it may hold$/);
  assert.equal(limits.admit(1001), null);
  assert.match(limits.admit(1002) ?? '', /^users other than root hold 3 connections/);
  for (let i = 0; i < 3; i++) assert.equal(limits.admit(0), null);
  assert.match(limits.admit(0) ?? '', /^uid 0 holds 3/);
  assert.equal(limits.others, 3);
  limits.release(1000);
  assert.equal(limits.others, 2);
  assert.equal(limits.admit(1002), null);
  limits.release(0);
  assert.equal(limits.others, 3);
  assert.equal(limits.admit(0), null);
});
