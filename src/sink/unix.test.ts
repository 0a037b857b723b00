import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sinkContract, waitUntilNotOpen } from '../../test/support/sink-contract.js';
import { auditEvent } from '../../test/support/sink-events.js';
import { SocketServer } from '../../test/support/socket-server.js';
import { Backoff } from './backoff.js';
import type { SinkError } from './sink.js';
import { UnixSocketSink } from './unix.js';

const servers = new WeakMap<object, SocketServer>();

sinkContract({
  name: 'unix socket',
  format: 'plugin',
  async open(options) {
    const dir = mkdtempSync(join(tmpdir(), 'contid-unix-sink-'));
    const server = new SocketServer(join(dir, 'audit.sock'));
    await server.listen();
    const sink = new UnixSocketSink({
      ...options,
      path: server.path,
      reconnect: { initialMs: 10, maxMs: 100 },
    });
    const destination = {
      sink,
      received: (bytes: number) => server.received(bytes),
      stall: () => {
        server.stall();
        return Promise.resolve();
      },
      resume: () => {
        server.resume();
        return Promise.resolve();
      },
      cleanup: async () => {
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    servers.set(destination, server);
    return destination;
  },
  async restart(destination, whileDown) {
    const server = servers.get(destination)!;
    await server.stop();
    await waitUntilNotOpen(destination.sink);
    whileDown();
    await server.listen();
  },
});

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'contid-unix-sink-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

let serial = 1;
function event(): Buffer {
  return auditEvent(serial++, { format: 'plugin', records: 3 });
}

void test('unix sink queues while its reader is not there yet, and delivers once it is', async (t) => {
  const dir = tempDir(t);
  const errors: SinkError[] = [];
  const sink = new UnixSocketSink({
    path: join(dir, 'audit.sock'),
    reconnect: { initialMs: 5, maxMs: 20 },
    onError: (e) => errors.push(e),
  });
  t.after(() => {
    sink.destroy();
  });
  const events = [event(), event()];
  for (const e of events) sink.write(e, 1);
  await waitUntilNotOpen(sink);
  const server = new SocketServer(join(dir, 'audit.sock'));
  t.after(() => server.stop());
  while (errors.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(errors[0]!.code, 'ENOENT');
  assert.match(
    errors[0]!.message,
    /^Cannot connect to ".*\/audit\.sock": no such file or directory \(ENOENT\)$/,
  );
  await server.listen();
  await sink.flush();
  await sink.close();
  const expected = Buffer.concat(events);
  assert.ok((await server.received(expected.length)).equals(expected));
  assert.equal(sink.stats().writtenEvents, 2);
});

void test('unix sink counts what it drops while disconnected', async (t) => {
  const dir = tempDir(t);
  const sink = new UnixSocketSink({
    path: join(dir, 'nobody.sock'),
    policy: 'drop',
    maxQueueEvents: 5,
    closeTimeoutMs: 20,
    reconnect: { initialMs: 5, maxMs: 20 },
  });
  t.after(() => {
    sink.destroy();
  });
  await waitUntilNotOpen(sink);
  for (let i = 0; i < 12; i++) sink.write(event(), 1);
  const stats = sink.stats();
  assert.equal(stats.queuedEvents, 5);
  assert.equal(stats.droppedEvents, 7);
  assert.equal(stats.droppedDisconnectedEvents, 7);
  await sink.close();
  assert.equal(sink.stats().droppedEvents, 12);
});

void test('unix sink connects to a socket inside a container root through a checked handle', async (t) => {
  const dir = tempDir(t);
  const root = join(dir, 'rootfs');
  mkdirSync(join(root, 'run', 'audit'), { recursive: true });
  const server = new SocketServer(join(root, 'run', 'audit', 'plugin.sock'));
  await server.listen();
  t.after(() => server.stop());
  const sink = new UnixSocketSink({ root, path: '/run/audit/plugin.sock' });
  t.after(() => {
    sink.destroy();
  });
  const e = event();
  sink.write(e, 1);
  await sink.flush();
  await sink.close();
  assert.ok((await server.received(e.length)).equals(e));
  assert.equal(sink.target, `${root}/run/audit/plugin.sock`);
});

const planted: [string, (root: string, outsideSocket: string) => void, string][] = [
  [
    'a directory link to the host',
    (root, sock) => {
      symlinkSync(join(sock, '..'), join(root, 'run', 'audit'));
    },
    'ELOOP',
  ],
  [
    'a socket link to a host socket',
    (root, sock) => {
      mkdirSync(join(root, 'run', 'audit'));
      symlinkSync(sock, join(root, 'run', 'audit', 'plugin.sock'));
    },
    'ELOOP',
  ],
  [
    'a regular file',
    (root) => {
      mkdirSync(join(root, 'run', 'audit'));
      writeFileSync(join(root, 'run', 'audit', 'plugin.sock'), '');
    },
    'ENOTSOCK',
  ],
];

for (const [what, plant, code] of planted) {
  void test(`unix sink in a container root refuses ${what} and never reaches a host socket`, async (t) => {
    const dir = tempDir(t);
    const root = join(dir, 'rootfs');
    mkdirSync(join(root, 'run'), { recursive: true });
    mkdirSync(join(dir, 'host'));
    const host = new SocketServer(join(dir, 'host', 'plugin.sock'));
    await host.listen();
    t.after(() => host.stop());
    plant(root, host.path);
    const errors: SinkError[] = [];
    const sink = new UnixSocketSink({
      root,
      path: '/run/audit/plugin.sock',
      closeTimeoutMs: 50,
      reconnect: { initialMs: 5, maxMs: 10 },
      onError: (e) => errors.push(e),
    });
    t.after(() => {
      sink.destroy();
    });
    sink.write(event(), 1);
    await sink.close();
    assert.equal(errors[0]?.code, code);
    assert.match(errors[0].message, /^Cannot (open|connect to) "run\/audit\/plugin\.sock" in ".*\/rootfs": /);
    assert.equal(host.connections, 0, 'the host socket was never connected to');
    assert.equal(sink.stats().droppedEvents, 1);
  });
}

void test('unix sink survives its reader dying with writes in flight, counts them, and starts again on an event boundary', async (t) => {
  const dir = tempDir(t);
  const server = new SocketServer(join(dir, 'audit.sock'));
  await server.listen();
  t.after(() => server.stop());
  const errors: SinkError[] = [];
  const sink = new UnixSocketSink({
    path: server.path,
    maxQueueEvents: 100_000,
    maxQueueBytes: 64 << 20,
    reconnect: { initialMs: 5, maxMs: 20 },
    onError: (e) => errors.push(e),
  });
  t.after(() => {
    sink.destroy();
  });
  sink.write(event(), 1);
  await sink.flush();
  server.stall();
  // Far more than the kernel buffers: most of it is still in flight when the reader dies.
  for (let i = 0; i < 4000; i++)
    sink.write(auditEvent(serial++, { format: 'plugin', records: 5, pad: 500 }), 1);
  await server.stop();
  await waitUntilNotOpen(sink);
  const afterBreak = sink.stats();
  assert.ok(afterBreak.droppedEvents > 0, 'what was in flight is counted as dropped');
  assert.equal(afterBreak.queuedEvents, 0);
  assert.equal(afterBreak.writtenEvents + afterBreak.droppedEvents, 4001);
  assert.ok(['EPIPE', 'ECONNRESET'].includes(errors[0]?.code ?? ''), errors[0]?.message);
  assert.match(
    errors[0]!.message,
    /^Cannot write to ".*\/audit\.sock": (broken pipe|connection reset by peer) \(E[A-Z]+\)$/,
  );
  server.resume();
  await server.listen();
  const later = [event(), event(), event()];
  for (const e of later) sink.write(e, 1);
  await sink.flush();
  await sink.close();
  const expected = Buffer.concat(later);
  const second = await server.connectionReceived(1, expected.length);
  assert.ok(second.equals(expected), 'the new connection starts with a whole event');
  assert.equal(sink.stats().reconnects, 1);
});

void test('backoff doubles from its first delay up to its ceiling, and starts over after reset', () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000 });
  assert.deepEqual(
    Array.from({ length: 6 }, () => b.next()),
    [100, 200, 400, 800, 1000, 1000],
  );
  b.reset();
  assert.equal(b.next(), 100);
  assert.throws(() => new Backoff({ initialMs: 0 }), RangeError);
});
