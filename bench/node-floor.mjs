#!/usr/bin/env node
// Node's own floor at the live daemon's wake-up pattern at 50 exec/s (bench/README.md, "Fixed
// costs at low rates"): a worker that wakes about 35 times a second and posts a 2 KB batch each
// time, as the audit reader does, and a main thread that takes the batches, writes what came
// through libuv's pool every 80 ms, as the host log does, and runs a 250 ms timer, as the exit
// check does. No parsing, labelling or formatting: what is left is the cost of waking up.
//
// Usage: node bench/node-floor.mjs [--seconds N] [--runs N]
import { openSync, write } from 'node:fs';
import { clearInterval, setInterval, setTimeout } from 'node:timers';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';

if (isMainThread) {
  const { values } = parseArgs({ options: { seconds: { type: 'string' }, runs: { type: 'string' } } });
  const seconds = Number(values.seconds ?? 10);
  const runs = Number(values.runs ?? 3);
  for (let run = 1; run <= runs; run++) {
    const ms = await once(seconds * 1000);
    console.log(
      `run ${run}: ${ms.toFixed(0)} ms of CPU in ${seconds} s (${(ms / seconds).toFixed(1)} ms a second)`,
    );
  }
} else {
  const wait = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    Atomics.wait(wait, 0, 0, 28);
    parentPort.postMessage(Buffer.alloc(2048));
  }
}

/** One measurement: the whole process's CPU (main thread, worker, pool) over `ms`. */
async function once(ms) {
  const worker = new Worker(new URL(import.meta.url));
  const fd = openSync('/dev/null', 'w');
  let pending = [];
  worker.on('message', (b) => pending.push(b));
  const writes = setInterval(() => {
    if (pending.length === 0) return;
    const batch = Buffer.concat(pending);
    pending = [];
    write(fd, batch, () => {});
  }, 80);
  const exits = setInterval(() => {}, 250);
  // Let the worker start before measuring.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const start = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const used = process.cpuUsage(start);
  clearInterval(writes);
  clearInterval(exits);
  await worker.terminate();
  return (used.user + used.system) / 1000;
}
