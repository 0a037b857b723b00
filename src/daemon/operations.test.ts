import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MarkerBody } from '../marker/format.js';
import type { ContainerOp } from '../policy/labeller.js';
import { parseSinkSpec } from '../route/sink-spec.js';
import type { OperationRequest } from './api.js';
import { Descriptions } from './descriptions.js';
import { Operations } from './operations.js';

const caller = { pid: 1, uid: 0, auid: 4294967295, exe: '/usr/bin/crun', privileged: true };

/** Operations over a marker list instead of the kernel: seqs count up from 1. */
function world(timeoutMs = 5000): {
  ops: Operations;
  sent: MarkerBody[];
  lines: string[];
  live: Set<string>;
} {
  const sent: MarkerBody[] = [];
  const lines: string[] = [];
  const live = new Set<string>();
  const ops = new Operations({
    startId: 'S',
    timeoutMs,
    log: (_level, message) => lines.push(message),
    descriptions: new Descriptions((chain) => live.has(chain)),
    nextSeq: () => sent.length + 1,
    sendMarker: (body) => {
      sent.push(body);
    },
    place: () => undefined,
  });
  return { ops, sent, lines, live };
}

function applied(seq: number, fields: Partial<ContainerOp> = {}): ContainerOp {
  return {
    op: 'set',
    opid: 99_999_999,
    contid: '42',
    oldContid: '-1',
    caller: { pid: 1, uid: 0, auid: null, exe: null },
    errno: null,
    result: 'accepted',
    body: '',
    marker: { start: 'S', seq },
    chain: '42',
    created: true,
    ...fields,
  };
}

test("a request is answered by its own marker's operation, of this start only", async () => {
  const { ops, sent, live, lines } = world();
  const request: OperationRequest = { op: 'set', pid: 99_999_999, contid: '42', caller, name: 'web' };
  const answer = ops.submit(request);
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.op, 'set');
  assert.equal(ops.pending, 1);
  ops.answer(applied(1, { marker: { start: 'other', seq: 1 } }));
  ops.answer(applied(2));
  assert.equal(ops.pending, 1, 'another start or seq answers nothing');
  live.add('42');
  ops.answer(applied(1));
  const result = await answer;
  assert.equal(result.errno, null);
  assert.equal(ops.pending, 0);
  assert.match(
    lines[0]!,
    /^Operation set pid 99999999 contid 42 name "web" by caller pid 1 uid 0: accepted$/,
  );
});

test("the deadline is the operations': a marker not read back in time fails with ETIMEDOUT", async () => {
  const { ops } = world(30);
  await assert.rejects(ops.submit({ op: 'grant', pid: 99_999_999, caller }), {
    code: 'ETIMEDOUT',
    message: 'Cannot grant pid 99999999: its marker was not read back within 30 ms',
  });
  assert.equal(ops.pending, 0);
});

test('sinks go with their set once; close fails what waits and refuses more', async () => {
  const { ops } = world();
  const sinks = [parseSinkSpec('file:/var/log/c/{contid}.log')];
  const waiting = ops.submit({ op: 'set', pid: 99_999_999, contid: '7', caller, sinks });
  assert.deepEqual(ops.takeSinks(1), sinks);
  assert.equal(ops.takeSinks(1), null);
  const error = new Error('stopped');
  ops.close(error);
  await assert.rejects(waiting, error);
  await assert.rejects(ops.submit({ op: 'grant', pid: 1, caller }), error);
  await assert.rejects(
    ops.submit({ op: 'set', pid: 1, contid: '7', caller: { ...caller, privileged: false }, sinks }),
  );
});
