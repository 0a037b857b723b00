import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  closeSync,
  constants,
  createWriteStream,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WAIT_MS } from '../../test/support/log-events.js';
import { sinkContract } from '../../test/support/sink-contract.js';
import { auditEvent } from '../../test/support/sink-events.js';
import type { SinkError } from './sink.js';
import { StreamSink } from './stream.js';

/**
 * `cat FIFO > FILE`: a real reader at the other end of a pipe, and the
 * writing end as a net.Socket over the pipe's descriptor, which is how
 * Node makes process.stdout when standard output is a pipe.
 */
interface Reader {
  readonly child: ChildProcess;
  readonly stream: Socket;
  readonly file: string;
  readonly dir: string;
}

async function startReader(): Promise<Reader> {
  const dir = mkdtempSync(join(tmpdir(), 'contid-stream-sink-'));
  const file = join(dir, 'out');
  const fifo = join(dir, 'fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
  const fd = openSync(file, 'w');
  let child: ChildProcess;
  try {
    child = spawn('cat', [fifo], { stdio: ['ignore', fd, 'ignore'] });
  } finally {
    closeSync(fd);
  }
  // A FIFO opens for writing without blocking only once its reader has it open (ENXIO before).
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      const w = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      return { child, stream: new Socket({ fd: w, readable: false, writable: true }), file, dir };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() > deadline) throw error;
      await sleep(5);
    }
  }
}

async function stopReader(r: Reader): Promise<void> {
  r.stream.destroy();
  if (r.child.exitCode === null && r.child.signalCode === null) {
    r.child.kill('SIGKILL');
    await once(r.child, 'exit');
  }
  rmSync(r.dir, { recursive: true, force: true });
}

/** What reached the reader's file, once there are `bytes` or the deadline passed. */
async function readerGot(r: Reader, bytes: number): Promise<Buffer> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const got = readFileSync(r.file);
    if (got.length >= bytes || Date.now() > deadline) return got;
    await sleep(10);
  }
}

sinkContract({
  name: 'stream (a pipe to a reader)',
  format: 'text',
  async open(options) {
    const reader = await startReader();
    const sink = new StreamSink({ ...options, stream: reader.stream, target: 'cat' });
    return {
      sink,
      received: (bytes: number) => readerGot(reader, bytes),
      stall: () => {
        reader.child.kill('SIGSTOP');
        return Promise.resolve();
      },
      resume: () => {
        reader.child.kill('SIGCONT');
        return Promise.resolve();
      },
      cleanup: () => stopReader(reader),
    };
  },
});

let serial = 1;
function event(): Buffer {
  return auditEvent(serial++, { format: 'text', records: 3, pad: 200 });
}

void test('stream sink ends at EPIPE once its reader has gone: counted once, the rest dropped, nothing thrown', async (t) => {
  const reader = await startReader();
  t.after(() => stopReader(reader));
  const errors: SinkError[] = [];
  const sink = new StreamSink({
    stream: reader.stream,
    target: 'standard output',
    name: 'standard output',
    policy: 'block',
    onError: (e) => errors.push(e),
  });
  sink.write(event(), 1);
  await sink.flush();
  assert.equal(sink.stats().writtenEvents, 1);
  reader.child.kill('SIGKILL');
  await once(reader.child, 'exit');
  let written = 1;
  const deadline = Date.now() + WAIT_MS;
  while (sink.failure === null && Date.now() < deadline) {
    sink.write(event(), 1);
    written++;
    await sleep(5);
  }
  assert.equal(sink.failure?.code, 'EPIPE');
  assert.equal(sink.failure.message, 'Cannot write standard output: broken pipe (EPIPE)');
  assert.deepEqual(
    errors.map((e) => e.code),
    ['EPIPE'],
    'the error is counted once',
  );
  assert.equal(sink.write(event(), 1), false, 'a write after the failure is dropped');
  written++;
  await sink.flush();
  await sink.close();
  const stats = sink.stats();
  assert.equal(stats.state, 'closed');
  assert.equal(stats.errors, 1);
  assert.equal(stats.queuedEvents, 0);
  assert.equal(stats.writtenEvents + stats.droppedEvents, written);
  assert.ok(stats.droppedEvents >= 1);
});

void test('stream sink ends at a write error of a file it owns, naming the file (ENOSPC on /dev/full)', async () => {
  const sink = new StreamSink({
    stream: createWriteStream('/dev/full'),
    target: '/dev/full',
    policy: 'block',
  });
  for (let i = 0; i < 3; i++) sink.write(event(), 1);
  await sink.flush();
  await sink.close();
  assert.equal(sink.failure?.code, 'ENOSPC');
  assert.equal(sink.failure.message, 'Cannot write "/dev/full": no space left on device (ENOSPC)');
  const stats = sink.stats();
  assert.deepEqual(
    [stats.state, stats.writtenEvents, stats.droppedEvents, stats.errors],
    ['closed', 0, 3, 1],
  );
});

void test('stream sink with end: false leaves the stream open and its listeners as they were', async (t) => {
  const reader = await startReader();
  t.after(() => stopReader(reader));
  const listeners = [reader.stream.listenerCount('error'), reader.stream.listenerCount('drain')];
  const sink = new StreamSink({ stream: reader.stream, target: 'cat', end: false });
  const first = event();
  sink.write(first, 1);
  await sink.close();
  assert.equal(sink.stats().writtenEvents, 1);
  assert.deepEqual([reader.stream.listenerCount('error'), reader.stream.listenerCount('drain')], listeners);
  assert.equal(reader.stream.writable, true, 'the stream is still open');
  const second = event();
  reader.stream.end(second);
  await once(reader.child, 'exit');
  assert.ok(readFileSync(reader.file).equals(Buffer.concat([first, second])));
});

void test('stream sink ends a stream it owns at close, once everything is written', async (t) => {
  const reader = await startReader();
  t.after(() => stopReader(reader));
  const sink = new StreamSink({ stream: reader.stream, target: 'cat' });
  const all = [event(), event(), event()];
  for (const e of all) sink.write(e, 1);
  await sink.close();
  // cat exits at the end of its input: the stream was ended, not destroyed.
  const [code] = (await once(reader.child, 'exit')) as [number | null];
  assert.equal(code, 0);
  assert.ok(readFileSync(reader.file).equals(Buffer.concat(all)));
  assert.equal(sink.failure, null);
});
