// Sink benchmarks (bench/README.md, "Sinks"): throughput of each sink, and
// what a stalled `drop` sink costs the code that writes to it.
//
// Usage: npm run build && sudo node bench/sinks.mjs [--events N] [--rate R] [--seconds S]
//        [--only file|unix|remote]
//
// Root: the remote sink's auditd runs in a network namespace of its own, and
// the stalled file sink writes to a full tmpfs. Everything runs in this
// process except the destinations: a reader process for the unix socket,
// auditd (listening only, `local_events = no`) for the remote sink.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { FileSink } from '../dist/src/sink/file.js';
import { RemoteSink } from '../dist/src/sink/remote.js';
import { UnixSocketSink } from '../dist/src/sink/unix.js';
import { holdNetns, startListeningAuditd } from '../dist/test/support/listening-auditd.js';
import { auditEvent } from '../dist/test/support/sink-events.js';
import { mountTmpfs } from '../dist/test/support/tmpfs.js';

const KINDS = ['file', 'unix', 'remote'];
const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    rate: { type: 'string', default: '5000' },
    seconds: { type: 'string', default: '5' },
    only: { type: 'string', multiple: true },
  },
});
const N = Number(values.events);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const only = values.only ?? KINDS;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'contid-bench-sinks-'));

// A pool of realistic events (5 records, 600-900 bytes), cycled.
const POOL = Array.from({ length: 1000 }, (_, i) =>
  auditEvent(i + 1, { format: 'text', records: 5, pad: (i * 37) % 300 }),
);
const meanBytes = POOL.reduce((n, b) => n + b.length, 0) / POOL.length;

/** Writes `n` events one per write(), honouring backpressure, then flushes. */
async function throughput(sink, n) {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    if (!sink.write(POOL[i % POOL.length], 1)) await sink.drained();
  }
  await sink.flush();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const stats = sink.stats();
  return {
    seconds,
    eventsPerSecond: n / seconds,
    mibPerSecond: stats.writtenBytes / seconds / 2 ** 20,
    cpuMicrosPerEvent: (cpu.user + cpu.system) / n,
    written: stats.writtenEvents,
    dropped: stats.droppedEvents,
  };
}

/**
 * The writer's cost per event with a `drop` sink, at an offered rate the
 * running destination sustains: every 10 ms a batch of rate/100 events,
 * one write() each, for `seconds`. Reports the time spent in write() and
 * the process's CPU time per event (the sink's own work, in this thread
 * and in libuv's, included).
 */
async function writerCost(sink, rate, seconds) {
  const batch = Math.max(1, Math.round(rate / 100));
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  let inWrite = 0n;
  let n = 0;
  while (Date.now() - t0 < seconds * 1000) {
    const w0 = process.hrtime.bigint();
    for (let j = 0; j < batch; j++) sink.write(POOL[n++ % POOL.length], 1);
    inWrite += process.hrtime.bigint() - w0;
    await sleep(10);
  }
  const elapsed = (Date.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const stats = sink.stats();
  return {
    offeredPerSecond: n / elapsed,
    nsPerWriteCall: Number(inWrite) / n,
    cpuNsPerEvent: ((cpu.user + cpu.system) * 1000) / n,
    cpuPercent: ((cpu.user + cpu.system) / 1e6 / elapsed) * 100,
    written: stats.writtenEvents,
    dropped: stats.droppedEvents,
  };
}

const DROP = { policy: 'drop', maxQueueEvents: 4096, maxQueueBytes: 4 << 20, closeTimeoutMs: 100 };

async function unixReader(socketPath) {
  const code = `require('node:net').createServer((s) => s.resume()).listen(${JSON.stringify(socketPath)}, () => console.log('ready'))`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout, 'data');
  return {
    stall: () => child.kill('SIGSTOP'),
    stop: async () => {
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}

const results = {};

// The loop's own cost: a writer that does nothing.
results.baseline = await writerCost(
  { write: () => true, stats: () => ({ writtenEvents: 0, droppedEvents: 0 }) },
  RATE,
  SECONDS,
);

if (only.includes('file')) {
  const file = path.join(scratch, 'file', 'audit.log');
  const sink = new FileSink({ path: file, policy: 'block' });
  const t = await throughput(sink, N);
  await sink.close();
  t.fileBytes = statSync(file).size;
  const running = mountTmpfs(512 * 1024);
  const stalled = mountTmpfs(1024);
  stalled.fill();
  const a = new FileSink({ ...DROP, path: path.join(running.dir, 'audit.log') });
  const b = new FileSink({
    ...DROP,
    path: path.join(stalled.dir, 'audit.log'),
    retry: { initialMs: 100, maxMs: 1000 },
  });
  const costRunning = await writerCost(a, RATE, SECONDS);
  const costStalled = await writerCost(b, RATE, SECONDS);
  await a.close();
  await b.close();
  running.remove();
  stalled.remove();
  results.file = { throughput: t, running: costRunning, stalled: costStalled };
}

if (only.includes('unix')) {
  const socketPath = path.join(scratch, 'unix.sock');
  const reader = await unixReader(socketPath);
  const sink = new UnixSocketSink({ path: socketPath, policy: 'block' });
  await sink.flush();
  const t = await throughput(sink, N);
  await sink.close();
  const a = new UnixSocketSink({ ...DROP, path: socketPath });
  await a.flush();
  const costRunning = await writerCost(a, RATE, SECONDS);
  await a.close();
  const b = new UnixSocketSink({ ...DROP, path: socketPath });
  await b.flush();
  reader.stall();
  await sleep(100);
  const costStalled = await writerCost(b, RATE, SECONDS);
  b.destroy();
  await reader.stop();
  results.unix = { throughput: t, running: costRunning, stalled: costStalled };
}

if (only.includes('remote')) {
  const holder = await holdNetns();
  const out = {};
  try {
    for (const flush of ['NONE', 'INCREMENTAL_ASYNC']) {
      const dir = path.join(scratch, `remote-${flush}`);
      const auditd = await startListeningAuditd({ dir, netns: holder.netns, port: 60, flush });
      const options = { host: '127.0.0.1', netns: holder.netns };
      const sink = new RemoteSink({ ...options, policy: 'block' });
      await sink.flush();
      out[`throughput (auditd flush = ${flush})`] = await throughput(sink, Math.min(N, 100_000));
      await sink.close();
      if (flush === 'NONE') {
        const a = new RemoteSink({ ...options, ...DROP });
        await a.flush();
        out.running = await writerCost(a, RATE, SECONDS);
        await a.close();
        const b = new RemoteSink({ ...options, ...DROP });
        await b.flush();
        auditd.stall();
        out.stalled = await writerCost(b, RATE, SECONDS);
        b.destroy();
        auditd.resume();
      }
      await auditd.stop();
    }
  } finally {
    await holder.stop();
  }
  results.remote = out;
}

rmSync(scratch, { recursive: true, force: true });
console.log(
  JSON.stringify(
    {
      events: N,
      rate: RATE,
      seconds: SECONDS,
      meanEventBytes: Math.round(meanBytes),
      node: process.version,
      cpus: os.cpus().length,
      results,
    },
    (_k, v) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 100) / 100 : v),
    2,
  ),
);
