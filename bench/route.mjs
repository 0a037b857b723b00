#!/usr/bin/env node
// Routing benchmarks (bench/README.md, "Routing"):
//
// 1. Routing cost with 1, 100 and 1,000 live container sinks: the events of
//    the replay benchmark log (bench/data/bench.log, from bench/capture.sh),
//    parsed and assembled by the real parser and assembler, encoded for the
//    host log, then routed and encoded for their containers' sinks
//    (ContainerSinks: the router, one encoder per container, one write per
//    sink per batch). The log has no contid markers, so each event gets a
//    label from its pid: 9 in 10 pids are in one of the N containers (5,^X
//    nested in X for one in 4 of them), the rest are the host's. The sinks
//    discard what they are given, so this is contid's CPU, not a disk's.
//    Reported: CPU per event (minimum of --runs runs) for the host log alone
//    and with N sinks, and the ratio of 1,000 sinks to 1. Target: ≤ 2×.
// 2. Host-log lag with one container sink stalled: events offered at --rate
//    per second for --seconds in batches every 10 ms to a host FileSink
//    (`block`, in /tmp) and 100 containers' sinks, one of them a unix
//    socket whose reader stops reading; the same with the reader reading.
//    Reported: how far each batch's host write starts behind its schedule
//    (p50, p99, max), and what the stalled sink dropped.
//
// Usage: npm run build && node bench/route.mjs [--log FILE] [--events N] [--runs N]
//        [--rate R] [--seconds S]
import { readFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EventAssembler } from '../dist/src/assemble/assembler.js';
import { RecordParser } from '../dist/src/parse/parser.js';
import { EventEncoder } from '../dist/src/pipeline/encoder.js';
import { renderContainerId } from '../dist/src/policy/records.js';
import { ContainerSinks, openSink } from '../dist/src/route/container-sinks.js';
import { parseSinkSpec } from '../dist/src/route/sink-spec.js';
import { FileSink } from '../dist/src/sink/file.js';
import { SocketServer } from '../dist/test/support/socket-server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    log: { type: 'string', default: path.join(ROOT, 'bench/data/bench.log') },
    events: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '5' },
    rate: { type: 'string', default: '20000' },
    seconds: { type: 'string', default: '10' },
  },
});
const EVENTS = Number(values.events);
const RUNS = Number(values.runs);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
if (!existsSync(values.log)) {
  console.error(`No benchmark log at ${values.log}: run bench/capture.sh first (or --log FILE)`);
  process.exit(1);
}

/** The first EVENTS events of the log, assembled. */
function loadEvents() {
  const events = [];
  const assembler = new EventAssembler({ onEvent: (e) => events.push(e) });
  const parser = new RecordParser({ onRecord: (r) => assembler.push(r), onIssue: () => undefined });
  const text = readFileSync(values.log);
  for (let at = 0; at < text.length && events.length < EVENTS; at += 1 << 20) {
    parser.push(text.subarray(at, Math.min(text.length, at + (1 << 20))));
  }
  parser.end();
  assembler.end();
  return events.slice(0, EVENTS);
}

function pidOf(event) {
  for (const r of event.records) {
    const m = / pid=([0-9]+) /.exec(r.body);
    if (m !== null) return Number(m[1]);
  }
  return 0;
}

/** Labels each event from its pid: one in 10 pids is the host's; one in 4 containers has a nested one. */
function label(events, containers) {
  return events.map((event) => {
    const pid = pidOf(event);
    const none = { event, objectRecords: [], ops: [], forgeries: [], provisional: false };
    if (pid % 10 === 0) return { ...none, contid: null, chain: null, containerIdRecord: null };
    const top = String(1 + (Math.floor(pid / 10) % containers));
    const chain = pid % 4 === 1 ? ['5', top] : [top];
    const contid = chain.join(',^');
    return { ...none, contid, chain, containerIdRecord: { record: 1, body: renderContainerId(1, contid) } };
  });
}

/** A sink that takes everything and keeps nothing. */
class NullSink {
  kind = 'null';
  target = 'null';
  written = 0;
  write(bytes, events) {
    this.written += events;
    return true;
  }
  drained() {
    return Promise.resolve();
  }
  flush() {
    return Promise.resolve();
  }
  close() {
    return Promise.resolve();
  }
  destroy() {}
  stats() {
    return { target: 'null', state: 'open', writtenEvents: this.written };
  }
}

const SPEC = parseSinkSpec('file:/dev/null/{contid}');

function containerSinks(n, open = () => new NullSink()) {
  const sinks = new ContainerSinks({ defaults: [SPEC], openSink: open });
  for (let i = 1; i <= n; i++) {
    sinks.open([String(i)], { pid: i, specs: null });
    sinks.open(['5', String(i)], { pid: i, specs: null });
  }
  return sinks;
}

function cpuNs() {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/** CPU per event: host encoding, and routing to `n` containers' sinks when n > 0. */
function run(labelled, n) {
  const host = new EventEncoder('text', { bufferBytes: 1 << 20 });
  const sinks = n > 0 ? containerSinks(n) : null;
  const start = cpuNs();
  for (let i = 0; i < labelled.length; i++) {
    const le = labelled[i];
    host.write(le);
    if (sinks !== null) sinks.deliver(le);
    if ((i & 1023) === 1023) {
      host.take();
      sinks?.pump();
    }
  }
  host.take();
  sinks?.pump();
  return (cpuNs() - start) / labelled.length;
}

const results = { date: new Date().toISOString(), node: process.version, log: values.log };
const events = loadEvents();
results.events = events.length;
const cost = {};
for (const n of [0, 1, 100, 1000]) {
  const labelled = label(events, Math.max(1, n));
  const samples = [];
  for (let r = 0; r < RUNS; r++) samples.push(run(labelled, n));
  cost[n === 0 ? 'hostOnly' : `sinks${n}`] = Math.min(...samples);
}
results.cpuNsPerEvent = Object.fromEntries(Object.entries(cost).map(([k, v]) => [k, Math.round(v)]));
results.ratio1000to1 = Number((cost.sinks1000 / cost.sinks1).toFixed(2));
results.routingNsPerEvent = {
  sinks1: Math.round(cost.sinks1 - cost.hostOnly),
  sinks100: Math.round(cost.sinks100 - cost.hostOnly),
  sinks1000: Math.round(cost.sinks1000 - cost.hostOnly),
};

// ---- host-log lag with one container sink stalled ------------------------

async function lag(stalled) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'contid-bench-route-'));
  const server = new SocketServer(path.join(dir, 'reader.sock'));
  await server.listen();
  if (stalled) server.stall();
  const hostSink = new FileSink({
    path: path.join(dir, 'audit.log'),
    policy: 'block',
    maxQueueBytes: 1 << 20,
  });
  const host = new EventEncoder('text', { bufferBytes: 1 << 20 });
  const unixSpec = parseSinkSpec(`unix:${server.path};queue-events=256`);
  let real = null;
  const sinks = new ContainerSinks({
    defaults: [SPEC],
    openSink: (spec, onError) => {
      if (real === null && spec.target === '/dev/null/1') return (real = openSink(unixSpec, onError));
      return new NullSink();
    },
  });
  for (let i = 1; i <= 100; i++) sinks.open([String(i)], { pid: i, specs: null });
  const labelled = label(events, 100);
  const perBatch = Math.max(1, Math.round(RATE / 100));
  const batches = SECONDS * 100;
  const lags = [];
  const t0 = performance.now();
  let next = 0;
  for (let b = 0; b < batches; b++) {
    const due = t0 + b * 10;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    lags.push(Math.max(0, performance.now() - due));
    let count = 0;
    for (let i = 0; i < perBatch; i++) {
      const le = labelled[next];
      next = (next + 1) % labelled.length;
      host.write(le);
      sinks.deliver(le);
      count++;
    }
    sinks.pump();
    if (!hostSink.write(host.take(), count)) await hostSink.drained();
  }
  await hostSink.flush();
  const hostStats = hostSink.stats();
  const stalledStats = real.stats();
  await sinks.close();
  await hostSink.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
  lags.sort((a, b) => a - b);
  const q = (p) => Number(lags[Math.min(lags.length - 1, Math.floor(lags.length * p))].toFixed(2));
  return {
    lagMs: { p50: q(0.5), p99: q(0.99), max: Number(lags.at(-1).toFixed(2)) },
    hostWrittenEvents: hostStats.writtenEvents,
    hostDroppedEvents: hostStats.droppedEvents,
    unixSink: {
      writtenEvents: stalledStats.writtenEvents,
      droppedEvents: stalledStats.droppedEvents,
      queuedEvents: stalledStats.queuedEvents,
    },
  };
}

await lag(false); // warm-up, not reported
results.lag = { rate: RATE, seconds: SECONDS, runs: [] };
for (let r = 0; r < 2; r++) {
  results.lag.runs.push({ running: await lag(false), stalled: await lag(true) });
}
console.log(JSON.stringify(results, null, 2));
