// The containers' sinks with real destinations (a file, a unix socket whose
// reader stops reading): opened with the container, fed its copies, closed
// after its drop, and a stalled one drops and counts without holding up
// anyone else.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SocketServer } from '../../test/support/socket-server.js';
import { record as recordOf } from '../../test/support/text-records.js';
import type { ContainerOp, LabelledEvent } from '../policy/labeller.js';
import { renderContainerId, renderContainerOp } from '../policy/records.js';
import { ContainerSinks } from './container-sinks.js';
import { parseSinkSpec } from './sink-spec.js';

function event(serial: number, chain: string[] | null, ops: ContainerOp[] = []): LabelledEvent {
  const contid = chain === null ? null : chain.join(',^');
  const body = `arch=c000003e syscall=59 success=yes exit=0 pid=${1000 + serial} comm="true" ${'x'.repeat(400)}`;
  const record = recordOf(`type=SYSCALL msg=audit(1700000000.000:${serial}): ${body}`);
  return {
    event: { node: null, time: '1700000000.000', timeMs: 0, serial, records: [record], closedBy: 'eoe' },
    contid,
    chain,
    containerIdRecord: contid === null ? null : { record: 1, body: renderContainerId(1, contid) },
    objectRecords: [],
    ops,
    forgeries: [],
    evidence: [],
    provisional: false,
  };
}

function drop(chain: string): ContainerOp {
  const f = {
    op: 'drop' as const,
    opid: 1,
    contid: '-1',
    oldContid: chain,
    caller: { pid: 1, uid: 0, auid: 0, exe: '/bin/true' },
    errno: null,
  };
  return { ...f, result: 'accepted', body: renderContainerOp(f), marker: null, chain: null, created: false };
}

describe('container sinks', () => {
  it('a stalled unix sink drops and counts; the other container and the caller never wait', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'contid-container-sinks-'));
    const server = new SocketServer(join(dir, 'reader.sock'));
    t.after(async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    await server.listen();
    server.stall();
    const errors: string[] = [];
    const sinks = new ContainerSinks({
      defaults: [parseSinkSpec(`file:${dir}/{contid}/audit.log`)],
      onError: (container, error) => errors.push(`${container}: ${error.message}`),
    });
    sinks.open(['1'], { pid: 10, specs: [parseSinkSpec(`unix:${server.path};queue-events=64`)] });
    sinks.open(['2'], { pid: 20, specs: null });
    while (server.connections === 0) await sleep(10);

    const n = 5000;
    for (let i = 1; i <= n; i++) {
      sinks.deliver(event(2 * i, ['1']));
      sinks.deliver(event(2 * i + 1, ['2']));
      sinks.deliver(event(100_000 + i, null)); // the host's: nobody's copy
      if (i % 50 === 0) sinks.pump();
    }
    sinks.pump();
    const stalled = sinks.stats().sinks.find((s) => s.container === '1')!;
    assert.ok(stalled.droppedEvents > 0, JSON.stringify(stalled));
    assert.ok(stalled.queuedEvents <= 64, JSON.stringify(stalled));

    // Both drop: the stalled sink gives up at its close timeout, the file is complete.
    sinks.deliver(event(3 * n, ['1'], [drop('1')]));
    sinks.deliver(event(3 * n + 1, ['2'], [drop('2')]));
    sinks.drop(['1']);
    sinks.drop(['2']);
    await sinks.close();
    const s = sinks.stats();
    assert.equal(s.containers, 0);
    assert.equal(s.closed, 2);
    const one = s.sinks.find((x) => x.container === '1')!;
    const two = s.sinks.find((x) => x.container === '2')!;
    assert.equal(one.state, 'closed');
    assert.equal(one.writtenEvents + one.droppedEvents, n + 1, JSON.stringify(one));
    assert.deepEqual([two.writtenEvents, two.droppedEvents], [n + 1, 0]);
    const lines = readFileSync(join(dir, '2', 'audit.log'), 'utf8')
      .trimEnd()
      .split('\n');
    assert.equal(lines.length, n + 1);
    // Its own events carry no container ID; the drop of itself is the host's record.
    assert.ok(lines.every((l) => l.startsWith('type=SYSCALL ') && !l.includes(' record=')));
    assert.deepEqual(errors, []);
  });

  it('a sink that cannot be made is listed with its error and the others open', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'contid-container-sinks-'));
    t.after(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    const errors: string[] = [];
    const sinks = new ContainerSinks({
      defaults: [
        parseSinkSpec(`file:${dir}/../elsewhere/{contid}.log`),
        parseSinkSpec(`file:${dir}/{contid}.log`),
      ],
      onError: (container, error) => errors.push(`${container}: ${error.code}`),
    });
    sinks.open(['7'], { pid: process.pid, specs: null });
    sinks.deliver(event(1, ['7']));
    sinks.pump();
    const s = sinks.stats();
    assert.equal(s.failed, 1);
    assert.equal(s.opened, 1);
    assert.deepEqual(
      s.sinks.map((x) => x.state),
      ['failed', 'open'],
    );
    assert.deepEqual(errors, ['7: ERR_INVALID_PATH']);
    await sinks.close();
    assert.equal(readFileSync(join(dir, '7.log'), 'utf8').split('\n').length, 2);
  });
});
