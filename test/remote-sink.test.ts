/**
 * RemoteSink against real auditd: the sink contract with an auditd
 * listening in a network namespace of its own (reached through that
 * namespace), auditd inside a crun container read back with ausearch, and
 * the protocol's error replies from a server on port 0.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HEADER_SIZE, MAGIC, MessageType, encodeHeader } from '../src/sink/remote-protocol.js';
import { RemoteSink } from '../src/sink/remote.js';
import type { SinkError } from '../src/sink/sink.js';
import { crunSkipReason } from './support/crun.js';
import {
  holdNetns,
  listeningAuditdSkipReason,
  listensOn,
  makeAuditdBundle,
  runAuditdContainer,
  startListeningAuditd,
  type ListeningAuditd,
  type NetnsHolder,
} from './support/listening-auditd.js';
import { sinkContract, waitUntilNotOpen } from './support/sink-contract.js';
import { auditEvent, auditEventLines } from './support/sink-events.js';

const PORT = 60;
const skip = listeningAuditdSkipReason();

interface Fixture {
  readonly dir: string;
  readonly holder: NetnsHolder;
  auditd: ListeningAuditd;
}
const fixtures = new WeakMap<object, Fixture>();

async function waitForRecords(auditd: ListeningAuditd, bytes: number): Promise<Buffer> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = Buffer.from(auditd.records(), 'latin1');
    if (text.length >= bytes || Date.now() > deadline) return text;
    await sleep(10);
  }
}

sinkContract({
  name: 'remote (auditd in a network namespace of its own)',
  skip,
  format: 'text',
  async open(options) {
    const dir = mkdtempSync(join(tmpdir(), 'contid-remote-sink-'));
    const holder = await holdNetns();
    let auditd: ListeningAuditd;
    try {
      auditd = await startListeningAuditd({ dir, netns: holder.netns, port: PORT });
    } catch (error) {
      await holder.stop();
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    const fixture: Fixture = { dir, holder, auditd };
    const sink = new RemoteSink({
      ...options,
      host: '127.0.0.1',
      port: PORT,
      netns: holder.netns,
      reconnect: { initialMs: 20, maxMs: 200 },
    });
    const destination = {
      sink,
      received: (bytes: number) => waitForRecords(fixture.auditd, bytes),
      stall: () => {
        fixture.auditd.stall();
        return Promise.resolve();
      },
      resume: () => {
        fixture.auditd.resume();
        return Promise.resolve();
      },
      cleanup: async () => {
        await fixture.auditd.stop();
        await holder.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    fixtures.set(destination, fixture);
    return destination;
  },
  async restart(destination, whileDown) {
    const fixture = fixtures.get(destination)!;
    await fixture.auditd.stop();
    await waitUntilNotOpen(destination.sink);
    whileDown();
    fixture.auditd = await startListeningAuditd({
      dir: fixture.dir,
      netns: fixture.holder.netns,
      port: PORT,
    });
  },
});

void test(
  'remote sink reaches an auditd inside a crun container through its network namespace, and ausearch finds exactly what was sent',
  { skip: skip ?? crunSkipReason(), timeout: 120_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'contid-remote-crun-'));
    t.after(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    const bundle = makeAuditdBundle(dir, PORT);
    const container = await runAuditdContainer(bundle, PORT);
    let stopped = false;
    t.after(async () => {
      if (!stopped) await container.stop();
    });
    const netns = `/proc/${container.pid}/ns/net`;
    assert.notEqual(
      readlinkSync(netns),
      readlinkSync('/proc/self/ns/net'),
      'the container has its own network',
    );
    assert.equal(listensOn(process.pid, PORT), false, 'nothing listens on the port in the host namespace');

    const key = `contid-remote-${process.pid}`;
    const sink = new RemoteSink({ host: '127.0.0.1', port: PORT, netns });
    const sent: string[] = [];
    for (let serial = 900_001; serial <= 900_003; serial++) {
      const lines = auditEventLines(serial, { format: 'text', records: 5, key });
      sent.push(...lines);
      assert.equal(sink.write(Buffer.from(lines.join('')), 1), true);
    }
    await sink.flush();
    await sink.close();
    const stats = sink.stats();
    assert.equal(stats.writtenEvents, 3);
    assert.equal(stats.ackedRecords, 15);
    assert.equal(stats.errors, 0, JSON.stringify(stats.lastError));
    assert.equal(stats.netns, netns);
    await container.stop();
    stopped = true;

    const found = spawnSync('ausearch', ['-if', bundle.logFile, '--raw', '-k', key], { encoding: 'utf8' });
    assert.equal(found.status, 0, found.stderr);
    assert.deepEqual(found.stdout.split('\n').filter(Boolean).sort(), sent.map((l) => l.trimEnd()).sort());
    const all = spawnSync('ausearch', ['-if', bundle.logFile, '--raw'], { encoding: 'utf8' });
    const others = all.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('type=DAEMON_'));
    assert.deepEqual(others.sort(), sent.map((l) => l.trimEnd()).sort(), 'the log holds nothing else');
  },
);

/** A server on port 0 that speaks the protocol and answers each record as `answer` says. */
async function protocolServer(
  t: { after(fn: () => unknown): void },
  answer: (record: string, seq: number, socket: Socket) => void,
): Promise<{ port: number; records: string[]; connections: () => number }> {
  const records: string[] = [];
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    let pending = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      pending = Buffer.concat([pending, data]);
      while (pending.length >= HEADER_SIZE) {
        assert.equal(pending.readUInt32LE(0), MAGIC);
        const length = pending.readUInt16LE(10);
        if (pending.length < HEADER_SIZE + length) break;
        const seq = pending.readUInt32LE(12);
        const record = pending.toString('latin1', HEADER_SIZE, HEADER_SIZE + length);
        pending = pending.subarray(HEADER_SIZE + length);
        records.push(record);
        answer(record, seq, socket);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as AddressInfo).port, records, connections: () => connections };
}

function reply(socket: Socket, type: number, seq: number, text = ''): void {
  const b = Buffer.alloc(HEADER_SIZE + text.length);
  encodeHeader(b, 0, { type, length: text.length, seq });
  b.write(text, HEADER_SIZE, 'latin1');
  socket.write(b);
}

void test('remote sink counts an event auditd could not log (disk full) as dropped', async (t) => {
  const server = await protocolServer(t, (record, seq, socket) => {
    const full = record.includes(':2):') && record.startsWith('type=EXECVE');
    reply(socket, full ? MessageType.DISKFULL : MessageType.ACK, seq, full ? 'disk full' : '');
  });
  const errors: SinkError[] = [];
  const sink = new RemoteSink({ host: '127.0.0.1', port: server.port, onError: (e) => errors.push(e) });
  t.after(() => {
    sink.destroy();
  });
  for (const serial of [1, 2, 3]) sink.write(auditEvent(serial, { format: 'text', records: 3 }), 1);
  await sink.flush();
  await sink.close();
  const stats = sink.stats();
  assert.equal(stats.writtenEvents, 2);
  assert.equal(stats.droppedEvents, 1);
  assert.equal(stats.ackedRecords, 9);
  assert.deepEqual(
    errors.map((e) => [e.code, e.message]),
    [['ERR_REMOTE_DISK_FULL', `Cannot log a record in auditd at "127.0.0.1:${server.port}": disk full`]],
  );
});

void test('remote sink reconnects after a reply it cannot read and sends again what was not acknowledged', async (t) => {
  let garbled = false;
  const server = await protocolServer(t, (record, seq, socket) => {
    if (!garbled && record.includes(':2):')) {
      garbled = true;
      socket.write(Buffer.alloc(HEADER_SIZE, 0x41)); // not a reply: bad magic
      return;
    }
    reply(socket, MessageType.ACK, seq);
  });
  const errors: SinkError[] = [];
  const sink = new RemoteSink({
    host: '127.0.0.1',
    port: server.port,
    window: 1,
    reconnect: { initialMs: 10, maxMs: 50 },
    onError: (e) => errors.push(e),
  });
  t.after(() => {
    sink.destroy();
  });
  for (const serial of [1, 2, 3]) sink.write(auditEvent(serial, { format: 'text', records: 2 }), 1);
  await sink.flush();
  await sink.close();
  const stats = sink.stats();
  assert.equal(stats.writtenEvents, 3);
  assert.equal(stats.droppedEvents, 0);
  assert.equal(stats.reconnects, 1);
  assert.equal(stats.resentRecords, 1);
  assert.equal(errors[0]?.code, 'ERR_REMOTE_PROTOCOL');
  assert.match(
    errors[0].message,
    /^Cannot talk to auditd at "127\.0\.0\.1:\d+": Cannot read a reply: bad magic number 0x41414141$/,
  );
  // Records: 1a 1b 2a (garbled), then on the new connection 2a again, 2b, 3a, 3b.
  assert.equal(server.records.length, 7);
  assert.equal(server.connections(), 2);
});

void test('remote sink refuses a write with a record over auditd’s limit, counting it as dropped', async (t) => {
  const server = await protocolServer(t, (_record, seq, socket) => {
    reply(socket, MessageType.ACK, seq);
  });
  const sink = new RemoteSink({ host: '127.0.0.1', port: server.port });
  t.after(() => {
    sink.destroy();
  });
  const long = Buffer.from(`type=USER msg=audit(1.000:1): msg='${'x'.repeat(9000)}'\n`);
  assert.equal(sink.write(long, 1), false);
  sink.write(auditEvent(2, { format: 'text' }), 1);
  await sink.flush();
  await sink.close();
  const stats = sink.stats();
  assert.equal(stats.droppedEvents, 1);
  assert.equal(stats.writtenEvents, 1);
  assert.equal(stats.lastError?.code, 'ERR_RECORD_TOO_LONG');
  assert.match(stats.lastError.message, /a record of 9036 bytes is over auditd's limit of 8954$/);
  assert.equal(server.records.length, 5);
});

void test('remote sink says which namespace and address it cannot reach', { skip }, async (t) => {
  const holder = await holdNetns();
  t.after(() => holder.stop());
  const errors: SinkError[] = [];
  const sink = new RemoteSink({
    host: '127.0.0.1',
    port: PORT,
    netns: holder.netns,
    closeTimeoutMs: 50,
    onError: (e) => errors.push(e),
  });
  t.after(() => {
    sink.destroy();
  });
  const missing = new RemoteSink({
    host: '127.0.0.1',
    netns: '/proc/0/ns/net',
    onError: (e) => errors.push(e),
  });
  await waitUntilNotOpen(sink);
  await waitUntilNotOpen(missing);
  while (errors.length < 2) await sleep(10);
  missing.destroy();
  await sink.close();
  const messages = errors.map((e) => `${e.code} ${e.message}`).sort();
  assert.match(
    messages[0]!,
    new RegExp(
      `^ECONNREFUSED Cannot connect to auditd at "127\\.0\\.0\\.1:60" in network namespace "${holder.netns}": connection refused \\(ECONNREFUSED\\)$`,
    ),
  );
  assert.equal(
    messages[1],
    'ENOENT Cannot enter network namespace "/proc/0/ns/net" to reach auditd at "127.0.0.1:60": no such file or directory (ENOENT)',
  );
});
