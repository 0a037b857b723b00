import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { fcntl } from './libc.js';
import { SignalWait } from './signal-wait.js';

const F_GETFL = 3;
const O_ASYNC = 0o20000;

/** A FIFO (pipes signal like sockets do): its read end, non-blocking, and a way to write to it. */
function fifo(t: TestContext): { fd: number; put: (text?: string) => void; drain: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'contid-sigio-'));
  const file = path.join(dir, 'fifo');
  execFileSync('mkfifo', [file]);
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(file, constants.O_WRONLY | constants.O_NONBLOCK);
  t.after(() => {
    closeSync(writer);
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  const buf = Buffer.alloc(4096);
  return {
    fd,
    put: (text = 'x') => writeSync(writer, text),
    drain: () => {
      try {
        while (readSync(fd, buf) > 0);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      }
    },
  };
}

const signalling = (fd: number): boolean => (fcntl(fd, F_GETFL) & O_ASYNC) !== 0;

/** Resolves with how often `then` was called once the wait ended, or 0 after `ms`. */
function waitFor(wait: SignalWait, ms: number): Promise<number> {
  return new Promise((resolve) => {
    let calls = 0;
    const done = (): void => {
      clearTimeout(timer);
      resolve(calls);
    };
    const waiting = wait.wait(() => {
      calls++;
      setTimeout(done, 50);
    });
    assert.equal(waiting, true, 'the FIFO was not empty');
    const timer = setTimeout(done, ms);
  });
}

void test('a wait ends once, by signal, when its socket gets input, and stops the socket signalling', async (t) => {
  const { fd, put } = fifo(t);
  const wait = new SignalWait(fd);
  t.after(() => {
    wait.close();
  });
  const ended = waitFor(wait, 5000);
  assert.equal(wait.waiting, true);
  assert.equal(signalling(fd), true, 'a waiting socket signals');
  await sleep(50);
  put();
  put();
  assert.equal(await ended, 1);
  assert.equal(wait.waiting, false);
  assert.equal(signalling(fd), false, 'a socket read on a timer would signal every datagram');
  assert.deepEqual(wait.stats(), { waits: 1, signals: 1 });
});

void test('input that came before the wait raises no signal: wait() says so instead of waiting', (t) => {
  const { fd, put, drain } = fifo(t);
  const wait = new SignalWait(fd);
  t.after(() => {
    wait.close();
  });
  put();
  const waiting = wait.wait(() => {
    assert.fail('called back for input it reported');
  });
  assert.equal(waiting, false);
  assert.equal(wait.waiting, false);
  assert.equal(signalling(fd), false);
  drain();
});

void test('a signal ends only the wait whose socket has input', async (t) => {
  const a = fifo(t);
  const b = fifo(t);
  const waitA = new SignalWait(a.fd);
  const waitB = new SignalWait(b.fd);
  t.after(() => {
    waitA.close();
    waitB.close();
  });
  const endedA = waitFor(waitA, 600);
  const endedB = waitFor(waitB, 600);
  b.put();
  assert.equal(await endedB, 1);
  assert.equal(await endedA, 0, 'a wait on an empty socket ended on another socket’s signal');
  assert.equal(waitA.waiting, true);
  waitA.cancel();
});

void test('cancel() and close() end a wait without calling back; a closed wait refuses to wait', async (t) => {
  const { fd, put } = fifo(t);
  const wait = new SignalWait(fd);
  wait.wait(() => {
    assert.fail('a cancelled wait called back');
  });
  wait.cancel();
  assert.equal(signalling(fd), false);
  put();
  await sleep(100);
  wait.wait(() => {
    assert.fail('a closed wait called back');
  });
  wait.close();
  wait.close();
  await sleep(100);
  assert.throws(() => wait.wait(() => undefined), { code: 'ERR_INVALID_STATE' });
});

void test('a wait is refused off the main thread, where no signal listener runs', async () => {
  const url = new URL('./signal-wait.js', import.meta.url).href;
  const worker = new Worker(
    `import(${JSON.stringify(url)}).then(({ SignalWait }) => {
       try { new SignalWait(0); require('node:worker_threads').parentPort.postMessage('made'); }
       catch (error) { require('node:worker_threads').parentPort.postMessage(error.code); }
     });`,
    { eval: true },
  );
  const message = await new Promise<unknown>((resolve) => {
    worker.once('message', resolve);
  });
  await worker.terminate();
  assert.equal(message, 'ERR_INVALID_STATE');
});
