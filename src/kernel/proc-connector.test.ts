// The proc connector: the datagram parser on hand-built buffers, then
// ProcConnector against the real kernel. The proc connector does not touch
// kernel audit state, so no audit lock is needed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { close as closeFd, errno, errnoName, socket } from './libc.js';
import {
  CN_IDX_PROC,
  CN_VAL_PROC,
  ProcEventWhat,
  ProcMcastOp,
  encodeControl,
  isProcessExit,
  parseProcDatagram,
  type ProcExit,
} from './proc-connector-protocol.js';
import { ProcConnector } from './proc-connector.js';
import { ownNetlinkPorts, sendFromUserspace } from '../../test/support/netlink-spoof.js';
import { NETLINK_CONNECTOR } from './socket-constants.js';

// ---------------------------------------------------------------- parser

interface MessageSpec {
  readonly what: number;
  /** event_data as u32/s32 words. */
  readonly data?: readonly number[];
  readonly nlType?: number;
  readonly idx?: number;
  /** cn_msg.len; defaults to the size of a real proc_event (40). */
  readonly cnLen?: number;
  readonly ack?: number;
}

/** One netlink message as the kernel builds it: 16 + 20 + 40 = 76 bytes. */
function procMessage(spec: MessageSpec): Buffer {
  const msg = Buffer.alloc(76);
  msg.writeUInt32LE(76, 0);
  msg.writeUInt16LE(spec.nlType ?? 3, 4);
  msg.writeUInt32LE(spec.idx ?? CN_IDX_PROC, 16);
  msg.writeUInt32LE(CN_VAL_PROC, 20);
  msg.writeUInt32LE(spec.ack ?? 0, 28);
  msg.writeUInt16LE(spec.cnLen ?? 40, 32);
  msg.writeUInt32LE(spec.what, 36);
  msg.writeUInt32LE(1, 40); // cpu
  msg.writeBigUInt64LE(123456789n, 44); // timestamp_ns
  (spec.data ?? []).forEach((word, i) => msg.writeInt32LE(word | 0, 52 + 4 * i));
  return msg;
}

function exitMessage(exit: ProcExit): Buffer {
  return procMessage({
    what: ProcEventWhat.EXIT,
    data: [exit.pid, exit.tgid, exit.exitCode, exit.exitSignal, exit.parentPid, exit.parentTgid],
  });
}

function parse(buf: Buffer, length = buf.length) {
  const exits: ProcExit[] = [];
  const acks: [number, number][] = [];
  const summary = parseProcDatagram(buf, length, {
    exit: (e) => exits.push(e),
    ack: (ack, error) => acks.push([ack, error]),
  });
  return { ...summary, exits, acks };
}

const killed: ProcExit = {
  pid: 4242,
  tgid: 4242,
  exitCode: 9,
  exitSignal: 17,
  parentPid: 100,
  parentTgid: 100,
};
const thread: ProcExit = { pid: 4243, tgid: 4242, exitCode: 0, exitSignal: -1, parentPid: 0, parentTgid: 0 };
const exited3: ProcExit = { ...killed, pid: 5000, tgid: 5000, exitCode: 3 << 8 };

void test('parser reads every field of an exit event', () => {
  const result = parse(exitMessage(killed));
  assert.deepEqual(result.exits, [killed]);
  assert.equal(result.events, 1);
  assert.equal(result.malformed, 0);
});

void test('parser reads a thread exit with exit_signal -1, and isProcessExit rejects it', () => {
  const result = parse(exitMessage(thread));
  assert.deepEqual(result.exits, [thread]);
  assert.equal(isProcessExit(thread), false);
  assert.equal(isProcessExit(killed), true);
});

void test('parser reads exit_code as an unsigned 32-bit value', () => {
  const status = 0x80000000 + 0x8b;
  const result = parse(exitMessage({ ...killed, exitCode: status }));
  assert.equal(result.exits[0]?.exitCode, status);
});

void test('parser walks several messages in one datagram, in order, skipping other events', () => {
  const fork = procMessage({ what: ProcEventWhat.FORK, data: [1, 1, 2, 2] });
  const exec = procMessage({ what: ProcEventWhat.EXEC, data: [2, 2] });
  const datagram = Buffer.concat([
    fork,
    exitMessage(killed),
    exec,
    exitMessage(thread),
    exitMessage(exited3),
  ]);
  const result = parse(datagram);
  assert.deepEqual(result.exits, [killed, thread, exited3]);
  assert.equal(result.events, 5);
  assert.equal(result.malformed, 0);
});

void test('parser honours NLMSG_ALIGN between messages of unaligned length', () => {
  // A 78-byte message (cn_msg.len 42) is followed by 2 bytes of padding.
  const first = Buffer.concat([procMessage({ what: ProcEventWhat.EXEC, cnLen: 42 }), Buffer.alloc(4)]);
  first.writeUInt32LE(78, 0);
  const datagram = Buffer.concat([first, exitMessage(killed)]);
  const result = parse(datagram);
  assert.deepEqual(result.exits, [killed]);
  assert.equal(result.events, 2);
  assert.equal(result.malformed, 0);
});

void test('parser hands acknowledgements to the ack handler, not counted as events', () => {
  const result = parse(procMessage({ what: ProcEventWhat.NONE, ack: 78, data: [1] }));
  assert.deepEqual(result.acks, [[78, 1]]);
  assert.equal(result.events, 0);
  assert.deepEqual(result.exits, []);
});

void test('parser delivers exactly the complete messages of a datagram cut at every length', () => {
  const whole = Buffer.concat([exitMessage(killed), exitMessage(exited3)]);
  for (let length = 0; length <= whole.length; length++) {
    const result = parse(whole, length);
    const complete = length >= 152 ? 2 : length >= 76 ? 1 : 0;
    assert.deepEqual(result.exits, [killed, exited3].slice(0, complete), `length ${length}`);
    const cut = length !== 0 && length !== 76 && length !== 152;
    assert.equal(result.malformed, cut ? 1 : 0, `length ${length}`);
  }
});

void test('parser counts malformed messages instead of throwing', () => {
  const cases: [string, Buffer, number][] = [
    ['nlmsg_len below the header', withWord(exitMessage(killed), 0, 8), 1],
    ['nlmsg_len beyond the datagram', withWord(exitMessage(killed), 0, 4096), 1],
    ['another connector channel', procMessage({ what: ProcEventWhat.EXIT, idx: 7 }), 1],
    ['not NLMSG_DONE', procMessage({ what: ProcEventWhat.EXIT, nlType: 2 }), 1],
    ['cn_msg.len beyond the message', procMessage({ what: ProcEventWhat.EXIT, cnLen: 41 }), 1],
    ['cn_msg.len below a proc_event header', procMessage({ what: ProcEventWhat.EXIT, cnLen: 12 }), 1],
    ['an exit without its six fields', procMessage({ what: ProcEventWhat.EXIT, cnLen: 16 + 20 }), 1],
    ['an ack without its error', procMessage({ what: ProcEventWhat.NONE, cnLen: 16 }), 1],
    ['a header cut short', Buffer.from([76, 0, 0]), 1],
  ];
  for (const [name, buf, malformed] of cases) {
    const result = parse(buf);
    assert.equal(result.malformed, malformed, name);
    assert.deepEqual(result.exits, [], name);
    assert.equal(result.events, 0, name);
  }
});

void test('parser survives random garbage and the length beyond the buffer', () => {
  let seed = 12345;
  const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 2000; i++) {
    const buf = Buffer.alloc(Math.floor(random() * 200));
    for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(random() * 256);
    // Plausible headers now and then, so that deeper checks run too.
    if (buf.length >= 76 && random() < 0.5)
      exitMessage(killed).copy(buf, 0, 0, 36 + Math.floor(random() * 40));
    const result = parse(buf, buf.length + 10);
    assert.ok(result.events + result.malformed <= Math.ceil(buf.length / 16) + 1);
  }
});

void test('control messages have the layout the kernel expects', () => {
  const listen = encodeControl(ProcMcastOp.LISTEN, 77);
  assert.equal(listen.length, 40);
  assert.equal(listen.readUInt32LE(0), 40, 'nlmsg_len');
  assert.equal(listen.readUInt16LE(4), 3, 'NLMSG_DONE');
  assert.deepEqual([listen.readUInt32LE(16), listen.readUInt32LE(20)], [1, 1], 'cb_id');
  assert.equal(listen.readUInt32LE(28), 77, 'ack');
  assert.equal(listen.readUInt16LE(32), 4, 'cn_msg.len');
  assert.equal(listen.readUInt32LE(36), 1, 'PROC_CN_MCAST_LISTEN');
  const filtered = encodeControl(ProcMcastOp.LISTEN, 77, ProcEventWhat.EXIT);
  assert.equal(filtered.length, 44);
  assert.equal(filtered.readUInt16LE(32), 8, 'cn_msg.len of struct proc_input');
  assert.equal(filtered.readUInt32LE(40), 0x80000000, 'event_type');
  assert.equal(encodeControl(ProcMcastOp.IGNORE, 0).readUInt32LE(36), 2, 'PROC_CN_MCAST_IGNORE');
});

function withWord(buf: Buffer, offset: number, value: number): Buffer {
  buf.writeUInt32LE(value, offset);
  return buf;
}

// ---------------------------------------------------------- real kernel

/** Why the real-kernel tests cannot run here, or false. */
function kernelSkipReason(): string | false {
  const fd = socket(16 /* AF_NETLINK */, 2 /* SOCK_DGRAM */, 11 /* NETLINK_CONNECTOR */);
  if (fd >= 0) {
    closeFd(fd);
    return false;
  }
  const code = errnoName(errno());
  if (code === 'EPERM' || code === 'EPROTONOSUPPORT') {
    return `the proc connector is not available here: socket(AF_NETLINK, NETLINK_CONNECTOR) failed with ${code}`;
  }
  return false;
}

const skip = kernelSkipReason();
const timeout = 30_000;

/** A connector that records every exit it delivers. */
async function openRecording(
  t: TestContext,
): Promise<{ connector: ProcConnector; exits: ProcExit[]; errors: Error[] }> {
  const exits: ProcExit[] = [];
  const errors: Error[] = [];
  const connector = await ProcConnector.open({
    flushMs: 50,
    onExit: (e) => exits.push(e),
    onError: (e) => errors.push(e),
  });
  t.after(() => connector.close());
  return { connector, exits, errors };
}

async function waitForExit(exits: ProcExit[], pid: number, what: string): Promise<ProcExit> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const found = exits.find((e) => e.pid === pid);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`No exit of ${what} (pid ${pid}) within 5 s`);
    await sleep(10);
  }
}

/** Runs a command to completion; returns its pid and stdout. */
async function run(file: string, args: string[]): Promise<{ pid: number; stdout: string }> {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  await once(child, 'exit');
  assert.ok(child.pid !== undefined);
  return { pid: child.pid, stdout };
}

void test(
  'a SIGKILLed child exits with signal 9 in exitCode and SIGCHLD as exitSignal',
  { skip, timeout },
  async (t) => {
    const { exits, errors } = await openRecording(t);
    const child = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
    await once(child, 'spawn');
    assert.ok(child.pid !== undefined);
    child.kill('SIGKILL');
    await once(child, 'exit');
    const exit = await waitForExit(exits, child.pid, '/bin/sleep');
    // Measured on 6.18: exitCode 9, exitSignal 17. exitSignal is the signal
    // sent to the parent (task->exit_signal), not the one that killed it.
    assert.deepEqual(exit, {
      pid: child.pid,
      tgid: child.pid,
      exitCode: 9,
      exitSignal: 17,
      parentPid: process.pid,
      parentTgid: process.pid,
    });
    assert.equal(exit.exitCode & 0x7f, 9);
    assert.deepEqual(errors, []);
  },
);

void test('exit(3) arrives as the wait status 3 << 8', { skip, timeout }, async (t) => {
  const { exits } = await openRecording(t);
  const { pid } = await run('/bin/sh', ['-c', 'exit 3']);
  const exit = await waitForExit(exits, pid, '/bin/sh');
  assert.equal(exit.exitCode, 3 << 8);
  assert.equal(exit.exitSignal, 17);
  assert.equal(exit.parentPid, process.pid);
});

void test('thread exits are dropped and the process exit is delivered once', { skip, timeout }, async (t) => {
  const { connector, exits } = await openRecording(t);
  const before = connector.stats();
  const script =
    "const { Worker } = require('node:worker_threads');" +
    "new Worker('', { eval: true }).on('online', () => console.log('online'));";
  const { pid, stdout } = await run(process.execPath, ['-e', script]);
  assert.equal(stdout.trim(), 'online', 'the child started a worker thread');
  await waitForExit(exits, pid, 'node');
  // The kernel sends a thread's exit before the process can be reaped, so
  // once a later process's exit is here, all of the child's have been read.
  const sentinel = await run('/bin/true', []);
  await waitForExit(exits, sentinel.pid, '/bin/true');
  const ofChild = exits.filter((e) => e.tgid === pid || e.pid === pid);
  assert.equal(ofChild.length, 1, JSON.stringify(ofChild));
  assert.equal(ofChild[0]?.pid, pid);
  assert.equal(ofChild[0]?.exitCode, 0);
  assert.ok(exits.every(isProcessExit), 'no thread exit was delivered');
  const after = connector.stats();
  // node runs about 8 threads; their exits were received and not delivered.
  assert.ok(
    after.events - before.events >= after.exits - before.exits + 2,
    `events ${after.events - before.events}, exits ${after.exits - before.exits}`,
  );
  assert.equal(after.exits, exits.length);
});

void test('exits are delivered in the order the processes ended', { skip, timeout }, async (t) => {
  const { exits } = await openRecording(t);
  const pids: number[] = [];
  for (let i = 0; i < 20; i++) pids.push((await run('/bin/true', [])).pid);
  await waitForExit(exits, pids.at(-1)!, 'the last /bin/true');
  const order = exits.filter((e) => pids.includes(e.pid)).map((e) => e.pid);
  assert.deepEqual(order, pids);
});

void test(
  'a stalled consumer makes the kernel drop exits, counted as ENOBUFS, and reading goes on',
  { skip, timeout },
  async (t) => {
    const exits: ProcExit[] = [];
    const stall = new Int32Array(new SharedArrayBuffer(4));
    let loop = -1;
    let stalled = false;
    // The smallest receive buffer the kernel allows holds a handful of events.
    const connector = await ProcConnector.open({
      receiveBufferBytes: 1,
      flushMs: 50,
      onExit: (e) => {
        exits.push(e);
        if (!stalled && e.parentPid === loop) {
          stalled = true;
          // Block the main thread, which reads the socket: nobody reads
          // while the loop below keeps exiting.
          Atomics.wait(stall, 0, 0, 2000);
        }
      },
    });
    t.after(() => connector.close());
    const shell = spawn('/bin/sh', ['-c', 'i=0; while [ $i -lt 400 ]; do /bin/true; i=$((i+1)); done'], {
      stdio: 'ignore',
    });
    assert.ok(shell.pid !== undefined);
    loop = shell.pid;
    await once(shell, 'exit');
    assert.ok(stalled, 'the consumer stalled');
    // The loop may have ended, and its exit been dropped, during the stall;
    // an exit after it must arrive.
    const after = await run('/bin/true', []);
    await waitForExit(exits, after.pid, '/bin/true after the stall');
    const stats = connector.stats();
    const children = exits.filter((e) => e.parentPid === loop).length;
    assert.ok(stats.enobufs >= 1, `enobufs ${stats.enobufs}`);
    assert.ok(children < 400, `${children} of 400 exits arrived despite the stall`);
    t.diagnostic(`${children} of 400 exits arrived, enobufs ${stats.enobufs}`);
  },
);

void test('two connectors in one process both see an exit', { skip, timeout }, async (t) => {
  const first = await openRecording(t);
  const second = await openRecording(t);
  const { pid } = await run('/bin/true', []);
  await waitForExit(first.exits, pid, '/bin/true');
  await waitForExit(second.exits, pid, '/bin/true');
});

void test('close() is idempotent, stops delivery and keeps the counters', { skip, timeout }, async (t) => {
  const { connector, exits } = await openRecording(t);
  const { pid } = await run('/bin/true', []);
  await waitForExit(exits, pid, '/bin/true');
  const started = Date.now();
  const closing = connector.close();
  assert.equal(connector.close(), closing, 'the same promise');
  await closing;
  assert.ok(Date.now() - started < 2000, `close took ${Date.now() - started} ms`);
  const stats = connector.stats();
  assert.equal(stats.exits, exits.length);
  assert.ok(stats.events >= stats.exits);
  await run('/bin/true', []);
  await sleep(200);
  assert.equal(exits.length, stats.exits, 'nothing delivered after close');
  await connector.close();
});

/** Runs an ES module script that imports ProcConnector in a fresh node; killed after 10 s. */
async function runModule(
  body: string,
): Promise<{ stdout: string; code: number | null; signal: string | null }> {
  const url = pathToFileURL(new URL('./proc-connector.js', import.meta.url).pathname).href;
  const script = `import { ProcConnector } from ${JSON.stringify(url)};` + body;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { stdout: stdout.trim(), code, signal };
}

void test('a process that opens and closes a connector exits by itself', { skip, timeout }, async () => {
  const result = await runModule(
    "const c = await ProcConnector.open({ onExit() {} }); await c.close(); console.log('closed');",
  );
  assert.deepEqual(
    result,
    { stdout: 'closed', code: 0, signal: null },
    'exited on its own, with no handle left',
  );
});

void test(
  'an idle connector waits on its socket, keeps the process alive, and close() ends the wait',
  { skip, timeout },
  async () => {
    // The timer that closes it is unref'd: only the connector's wait keeps
    // the process alive until then; close() must end that wait for the
    // process to exit (else the child is killed after 10 s).
    const result = await runModule(
      'const c = await ProcConnector.open({ flushMs: 20, onExit() {} });' +
        "setTimeout(() => { console.log('closing'); void c.close(); }, 300).unref();" +
        "process.once('exit', () => console.log('exit'));",
    );
    assert.deepEqual(result, { stdout: 'closing\nexit', code: 0, signal: null });
  },
);

void test(
  'a connector kept busy by exits (on its timer, not its wait) still keeps the process alive',
  { skip, timeout },
  async () => {
    // An exit every 5 ms: every timed poll finds exits, so the connector never sleeps on its socket.
    const result = await runModule(
      "const { spawnSync } = await import('node:child_process');" +
        'const c = await ProcConnector.open({ flushMs: 20, onExit() {} });' +
        "const busy = setInterval(() => spawnSync('/bin/true'), 5).unref();" +
        "setTimeout(() => { console.log('closing'); clearInterval(busy); void c.close(); }, 300).unref();" +
        "process.once('exit', () => console.log('exit'));",
    );
    assert.deepEqual(result, { stdout: 'closing\nexit', code: 0, signal: null });
  },
);

void test('an open connector runs no thread of its own', { skip, timeout }, async (t) => {
  const tasks = (): number => readdirSync('/proc/self/task').length;
  // libuv starts its pool on first use: use it before counting.
  await readFile('/proc/self/stat');
  const before = tasks();
  const { exits } = await openRecording(t);
  assert.equal(tasks(), before, 'threads after open()');
  const { pid } = await run('/bin/true', []);
  await waitForExit(exits, pid, '/bin/true');
  assert.equal(tasks(), before, 'threads after an exit was delivered');
});

void test(
  'poll() delivers an exit the socket holds without waiting for the timer',
  { skip, timeout },
  async (t) => {
    const exits: ProcExit[] = [];
    const connector = await ProcConnector.open({ flushMs: 60_000, onExit: (e) => exits.push(e) });
    t.after(() => connector.close());
    const { pid } = await run('/bin/true', []);
    const deadline = Date.now() + 2000;
    while (!exits.some((e) => e.pid === pid)) {
      assert.ok(Date.now() < deadline, 'poll() did not deliver the exit within 2 s');
      connector.poll();
      await sleep(10);
    }
    assert.equal(connector.stats().exits, exits.length);
  },
);

void test('close() delivers the exits the socket still holds', { skip, timeout }, async () => {
  const exits: ProcExit[] = [];
  const connector = await ProcConnector.open({ flushMs: 60_000, onExit: (e) => exits.push(e) });
  const { pid } = await run('/bin/true', []);
  // The kernel queues the exit before the parent can reap the child.
  assert.ok(!exits.some((e) => e.pid === pid), 'nothing polled yet');
  await connector.close();
  assert.ok(
    exits.some((e) => e.pid === pid),
    'the exit of /bin/true was delivered by close()',
  );
});

void test('what onExit throws goes to onError, and delivery goes on', { skip, timeout }, async (t) => {
  const exits: ProcExit[] = [];
  const errors: Error[] = [];
  let thrower = -1;
  const connector = await ProcConnector.open({
    flushMs: 50,
    onExit: (e) => {
      exits.push(e);
      if (e.pid === thrower) throw new Error(`refused ${e.pid}`);
    },
    onError: (e) => errors.push(e),
  });
  t.after(() => connector.close());
  thrower = (await run('/bin/true', [])).pid;
  const { pid } = await run('/bin/true', []);
  await waitForExit(exits, pid, 'the second /bin/true');
  assert.deepEqual(
    errors.map((e) => e.message),
    [`refused ${thrower}`],
  );
});

void test('open() refuses an option that is not a positive integer', async () => {
  await assert.rejects(ProcConnector.open({ flushMs: 0, onExit() {} }), RangeError);
  await assert.rejects(ProcConnector.open({ flushMs: 2 ** 31, onExit() {} }), RangeError);
  await assert.rejects(ProcConnector.open({ receiveBufferBytes: 1.5, onExit() {} }), RangeError);
});

void test(
  'an exit sent to the connector by a userspace socket is ignored and counted, never delivered',
  { skip, timeout },
  async (t) => {
    const { connector, exits } = await openRecording(t);
    const victim = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
    t.after(() => victim.kill('SIGKILL'));
    await once(victim, 'spawn');
    const [port, ...others] = ownNetlinkPorts(NETLINK_CONNECTOR, CN_IDX_PROC);
    assert.ok(port !== undefined && others.length === 0, 'the connector socket is found');
    const forged = exitMessage({ ...killed, pid: victim.pid!, tgid: victim.pid!, parentPid: process.pid });
    sendFromUserspace(NETLINK_CONNECTOR, forged, { port });
    // The socket keeps its order: once a later real exit has arrived, the forged one was read.
    const { pid } = await run('/bin/true', []);
    await waitForExit(exits, pid, '/bin/true');
    assert.deepEqual(
      exits.filter((e) => e.pid === victim.pid),
      [],
      'a userspace datagram was taken for the kernel exit of a live process',
    );
    assert.equal(connector.stats().foreign, 1);
  },
);

void test(
  "with wait 'owner', an idle connector waits for its owner's poll(): nothing comes by itself",
  { skip, timeout },
  async (t) => {
    const exits: ProcExit[] = [];
    const connector = await ProcConnector.open({ flushMs: 20, wait: 'owner', onExit: (e) => exits.push(e) });
    t.after(() => connector.close());
    assert.ok(connector.fd >= 0);
    const { pid } = await run('/bin/true', []);
    await sleep(300);
    assert.equal(
      exits.some((e) => e.pid === pid),
      false,
      'the connector read its socket by itself',
    );
    const deadline = Date.now() + 2000;
    while (!exits.some((e) => e.pid === pid)) {
      assert.ok(Date.now() < deadline, 'poll() did not deliver the exit within 2 s');
      connector.poll();
      await sleep(10);
    }
  },
);
