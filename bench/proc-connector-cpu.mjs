#!/usr/bin/env node
// The CPU of a Node process that only holds an open ProcConnector (threads: true, as the daemon
// opens it, and nobody calling poll()) while a loop spawns /bin/true at --rate a second. Two
// builds are measured side by side in each run, under the same load: this checkout's dist/ and
// --baseline (another checkout's dist/, e.g. the worker-thread version), with a third holder that
// opens nothing (the floor). The order in which the holders start alternates from run to run.
//
// Usage: npm run build && node bench/proc-connector-cpu.mjs --baseline /other/checkout/dist
//        [--seconds N] [--rate N] [--runs N]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    seconds: { type: 'string' },
    rate: { type: 'string' },
    runs: { type: 'string' },
    hold: { type: 'string' },
  },
});
const seconds = Number(values.seconds ?? 10);

if (values.hold !== undefined) {
  await hold(values.hold);
} else {
  if (values.baseline === undefined) throw new Error('Cannot run: --baseline DIST is required');
  const rate = Number(values.rate ?? 50);
  const runs = Number(values.runs ?? 3);
  const builds = {
    new: fileURLToPath(new URL('../dist', import.meta.url)),
    old: values.baseline,
    // A holder that opens nothing: the floor of a Node process that sleeps.
    none: 'none',
  };
  for (let run = 1; run <= runs; run++) {
    const order = run % 2 === 1 ? ['old', 'new', 'none'] : ['none', 'new', 'old'];
    const results = await measure(
      order.map((name) => builds[name]),
      rate,
    );
    const line = order.map(
      (name, i) => `${name} ${results[i].cpuMs.toFixed(1)} ms (${results[i].exits} exits)`,
    );
    console.log(`run ${run}: ${line.join(', ')} in ${seconds} s at ${rate} exec/s`);
  }
}

/** Starts a holder per build, spawns /bin/true at `rate` while they measure, returns their reports. */
async function measure(dists, rate) {
  const self = fileURLToPath(import.meta.url);
  const holders = dists.map((dist) =>
    spawn(process.execPath, [self, '--hold', dist, '--seconds', String(seconds)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  const reports = holders.map(async (child) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (out += chunk));
    await once(child, 'exit');
    return JSON.parse(out);
  });
  let stop = false;
  const load = (async () => {
    const start = Date.now();
    for (let i = 0; !stop; i++) {
      const child = spawn('/bin/true', [], { stdio: 'ignore' });
      child.on('error', () => {});
      const wait = start + ((i + 1) * 1000) / rate - Date.now();
      if (wait > 0) await sleep(wait);
    }
  })();
  const results = await Promise.all(reports);
  stop = true;
  await load;
  return results;
}

/** A holder: opens a connector, waits 1 s, then reports its process's CPU over `seconds`. */
async function hold(dist) {
  let exits = 0;
  let connector = null;
  if (dist !== 'none') {
    const url = pathToFileURL(`${dist}/src/kernel/proc-connector.js`).href;
    const { ProcConnector } = await import(url);
    connector = await ProcConnector.open({
      threads: true,
      onExit: () => {
        exits++;
      },
    });
  }
  await sleep(1000);
  const before = { usage: process.cpuUsage(), ticks: ticks(), exits };
  await sleep(seconds * 1000);
  const usage = process.cpuUsage(before.usage);
  const after = ticks();
  const result = {
    cpuMs: (usage.user + usage.system) / 1000,
    ticksMs: (after - before.ticks) * 10,
    exits: exits - before.exits,
  };
  await connector?.close();
  console.log(JSON.stringify(result));
}

/** utime + stime of /proc/self/stat, in clock ticks (100 a second). */
function ticks() {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
}
