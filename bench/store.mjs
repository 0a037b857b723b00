#!/usr/bin/env node
// The event store, measured outside the tests:
//
// 1. Ingest rate: events/s through the daemon's path, StoreWriter (its
//    worker thread owns the SQLite file), with write() backpressure honoured.
//    The events are generated as auditd text (ENRICHED, shaped like
//    bench/data/bench.log: fork/exec/exit loops, file reads and writes with
//    PATH and CWD records, refused connects, and containers, some nested, in
//    which busybox forks and execs) and read by the real parser and
//    assembler; container events carry their CONTAINER_ID, each container's
//    first event its set (CONTAINER_OP).
// 2. `contid search --contid X --since T` over --events stored events
//    (default 10 million): the command's wall time, median of --runs, next to
//    node's own start-up (`node -e 0`) and `contid --version`, and the same
//    search in-process (open, query, format).
// 3. Store bytes per event against the generated log's bytes per event.
//
// Usage: npm run build && node bench/store.mjs [--events N] [--replicate K] [--runs N] [--db PATH] [--reuse]
// --reuse measures searches on an existing --db (ingest is skipped).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { contidArgv } from './cli.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(ROOT, 'dist/src', p));
const { RecordParser } = await dist('parse/parser.js');
const { EventAssembler } = await dist('assemble/assembler.js');
const { StoreWriter } = await dist('store/writer.js');
const { EventStore } = await dist('store/store.js');
const { StoredEventWriter } = await dist('store/render.js');

const { values } = parseArgs({
  options: {
    events: { type: 'string' },
    runs: { type: 'string' },
    db: { type: 'string' },
    reuse: { type: 'boolean' },
    replicate: { type: 'string' },
  },
});
const EVENTS = Number(values.events ?? 10_000_000);
/** Copies of the ingested day stored after it, a day apart (1: none). */
const REPLICATE = Number(values.replicate ?? 1);
const RUNS = Number(values.runs ?? 9);
const DB = values.db ?? path.join(ROOT, 'bench/data/store-bench.db');
/** The stream covers a day: about 115 events/s at 10 million. */
const SPAN_MS = 24 * 3600 * 1000;
const START_MS = Date.UTC(2026, 11, 1, 0, 0, 0);
const ROOTS = 40;
const NESTED = 4;

// --- The generator -----------------------------------------------------------------------

let seed = 12345;
/** mulberry32: deterministic, so that every run stores the same events. */
function rand(n) {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
}
const hex = (s) => Buffer.from(s, 'utf8').toString('hex').toUpperCase();
const ENRICH_IDS =
  'AUID="unknown(4242)" UID="root" GID="root" EUID="root" SUID="root" FSUID="root" EGID="root" SGID="root" FSGID="root"';

/** 40 containers, each with 4 nested in it: 200 chains. */
const chains = [];
for (let r = 0; r < ROOTS; r++) {
  const root = String(1000 + r);
  chains.push(root);
  for (let c = 0; c < NESTED; c++) chains.push(`${2000 + r * NESTED + c},^${root}`);
}

let serial = 1_000_000;
let nextPid = 300_000;
const pid = () => (nextPid = nextPid >= 4_000_000 ? 300_000 : nextPid + 1);

function sys(t, s, f) {
  const fields =
    `arch=c000003e syscall=${f.nr}${f.success === undefined ? '' : ` success=${f.success} exit=${f.exit}`}` +
    ` a0=${f.a0 ?? '0'} a1=7ffd5${rand(1e6)} a2=0 a3=0 items=${f.items ?? 0} ppid=${f.ppid} pid=${f.pid}` +
    ` auid=4242 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=375` +
    ` comm="${f.comm}" exe="${f.exe}" key="${f.key}"`;
  return `type=SYSCALL msg=audit(${t}:${s}): ${fields}\x1dARCH=x86_64 SYSCALL=${f.name} ${ENRICH_IDS}\n`;
}
const path_ = (t, s, item, name, mode = '0100755') =>
  `type=PATH msg=audit(${t}:${s}): item=${item} name="${name}" inode=${260000 + rand(90000)} dev=fe:00 mode=${mode} ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID="root" OGID="root"\n`;
const cwd = (t, s, dir) => `type=CWD msg=audit(${t}:${s}): cwd="${dir}"\n`;
const title = (t, s, argv) => `type=PROCTITLE msg=audit(${t}:${s}): proctitle=${hex(argv.join('\0'))}\n`;

/**
 * The shells that make the events: 4 host loops and one shell per
 * container. Each turn a shell forks a child (clone), the child execs and
 * exits; between turns it opens files and, on the host, now and then
 * connects to a closed port.
 */
const shells = [
  ...Array.from({ length: 4 }, () => ({ chain: null, pid: pid(), ppid: 2000, step: 0, child: 0 })),
  ...chains.map((chain) => ({ chain, pid: pid(), ppid: 1999, step: 0, child: 0 })),
];

/** One event's text, and the container it belongs to (or null). */
function nextEvent(timeMs) {
  const t = `${Math.floor(timeMs / 1000)}.${String(timeMs % 1000).padStart(3, '0')}`;
  const s = ++serial;
  // Host loops make 60% of the events, as in the capture.
  const sh = rand(10) < 6 ? shells[rand(4)] : shells[4 + rand(chains.length)];
  const inContainer = sh.chain !== null;
  const key = inContainer ? 'contid-bench-c' : 'contid-bench';
  const [comm, exe, argv] = inContainer
    ? ['sh', '/bin/busybox', ['/bin/sh', '-c', 'for i in 1 2 3; do ls / >/dev/null & done; wait']]
    : ['bash', '/usr/bin/bash', ['bash', '-c', 'while :; do /bin/true; echo | cat; done']];
  const shell = { ppid: sh.ppid, pid: sh.pid, comm, exe, key };
  const [c, x] = inContainer ? ['ls', '/bin/busybox'] : ['true', '/usr/bin/true'];
  const child = { ppid: sh.pid, pid: sh.child, comm: c, exe: x, key };
  let text;
  const step = sh.step;
  sh.step = (sh.step + 1) % 5;
  switch (step) {
    case 0:
      sh.child = pid();
      text =
        sys(t, s, { ...shell, nr: 56, name: 'clone', success: 'yes', exit: sh.child, a0: '1200011' }) +
        title(t, s, argv);
      break;
    case 1:
      text =
        sys(t, s, { ...child, nr: 59, name: 'execve', success: 'yes', exit: 0, items: 2 }) +
        `type=BPRM_FCAPS msg=audit(${t}:${s}): fver=0 fp=0 fi=0 fe=0 old_pp=000001fffeffffff old_pi=0 old_pe=000001fffeffffff old_pa=0 pp=000001fffeffffff pi=0 pe=000001fffeffffff pa=0 frootid=0\n` +
        `type=EXECVE msg=audit(${t}:${s}): argc=1 a0="${x}"\n` +
        cwd(t, s, inContainer ? '/' : '/work/wt/store') +
        path_(t, s, 0, x) +
        path_(t, s, 1, '/lib64/ld-linux-x86-64.so.2') +
        title(t, s, [x]);
      break;
    case 2:
      text = sys(t, s, { ...child, nr: 231, name: 'exit_group', a0: '0' }) + title(t, s, [x]);
      break;
    case 3:
      text =
        sys(t, s, { ...shell, nr: 257, name: 'openat', success: 'yes', exit: 3, a0: 'ffffff9c', items: 2 }) +
        cwd(t, s, '/work/wt/store') +
        path_(t, s, 0, '/work/wt/store/bench/data/files', '040755') +
        path_(t, s, 1, `/work/wt/store/bench/data/files/f${rand(100)}`, '0100644') +
        title(t, s, argv);
      break;
    default:
      text =
        rand(20) === 0 && !inContainer
          ? sys(t, s, { ...shell, nr: 42, name: 'connect', success: 'no', exit: -111, a0: '3' }) +
            `type=SOCKADDR msg=audit(${t}:${s}): saddr=020000507F0000010000000000000000\x1dSADDR={ saddr_fam=inet laddr=127.0.0.1 lport=80 }\n` +
            title(t, s, argv)
          : sys(t, s, {
              ...shell,
              nr: 257,
              name: 'openat',
              success: 'no',
              exit: -2,
              a0: 'ffffff9c',
              items: 1,
            }) +
            cwd(t, s, '/work/wt/store') +
            path_(t, s, 0, `/work/wt/store/bench/data/files/missing${rand(100)}`, '0100644') +
            title(t, s, argv);
  }
  return { text, chain: sh.chain };
}

const results = { date: new Date().toISOString(), node: process.version, events: EVENTS, db: DB };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The generated stream as the labeller would hand it over: a parser and an
 * assembler whose events go to `onLabelled`, container events with their
 * CONTAINER_ID, each container's first event with its set.
 */
function labelledStream(onLabelled) {
  const setDone = new Set();
  const labelOf = new Map();
  const asm = new EventAssembler({
    onEvent: (event) => {
      const chain = labelOf.get(event.serial) ?? null;
      labelOf.delete(event.serial);
      const ops = [];
      if (chain !== null && !setDone.has(chain)) {
        setDone.add(chain);
        const [leaf, ...rest] = chain.split(',^');
        const old = rest.length === 0 ? '-1' : rest.join(',^');
        ops.push({
          body: `op=set opid=${event.records[0].fieldInt('pid')} contid=${leaf} old-contid=${old} pid=4000 uid=0 auid=4294967295 exe="/usr/bin/crun" res=1`,
        });
      }
      onLabelled({
        event,
        contid: chain,
        chain: chain === null ? null : chain.split(',^'),
        containerIdRecord: chain === null ? null : { record: 1, body: `record=1 contid=${chain}` },
        objectRecords: [],
        ops,
        forgeries: [],
        provisional: false,
      });
    },
  });
  const parser = new RecordParser({ onRecord: (r) => asm.push(r), onIssue: () => {} });
  return {
    /** Generates `n` events from event index `from` of `total`; returns their text's bytes. */
    push(from, n, total) {
      let chunk = '';
      for (let i = from; i < from + n && i < total; i++) {
        const { text, chain } = nextEvent(START_MS + Math.floor((i / total) * SPAN_MS));
        if (chain !== null) labelOf.set(serial, chain);
        chunk += text;
      }
      parser.push(chunk);
      return Buffer.byteLength(chunk);
    },
    end() {
      parser.end();
      asm.end();
    },
  };
}

// --- 0. What each thread pays per event, on 100,000 events --------------------------------

{
  const { LabelledRowAdapter } = await dist('store/labelled-row.js');
  const sample = [];
  const stream = labelledStream((le) => sample.push(le));
  for (let i = 0; i < 100_000; i += 2000) stream.push(i, 2000, 100_000);
  stream.end();
  const adapter = new LabelledRowAdapter();
  let t = performance.now();
  const rows = sample.map((le) => adapter.row(le));
  const adapterUs = ((performance.now() - t) * 1000) / rows.length;
  const tmp = `${DB}.sample`;
  for (const suffix of ['', '-wal', '-shm']) rmSync(tmp + suffix, { force: true });
  const sampleStore = EventStore.open(tmp);
  t = performance.now();
  for (let i = 0; i < rows.length; i += 2000) sampleStore.ingest(rows.slice(i, i + 2000));
  const ingestSeconds = (performance.now() - t) / 1000;
  sampleStore.close();
  for (const suffix of ['', '-wal', '-shm']) rmSync(tmp + suffix, { force: true });
  results.perThread = {
    events: rows.length,
    rowMicrosecondsPerEvent: adapterUs,
    storeEventsPerSecond: rows.length / ingestSeconds,
  };
  console.log(JSON.stringify({ perThread: results.perThread }));
}

// --- 1. Ingest: 10 million events through StoreWriter --------------------------------------

if (!values.reuse) {
  mkdirSync(path.dirname(DB), { recursive: true });
  for (const suffix of ['', '-wal', '-shm']) rmSync(DB + suffix, { force: true });
  const writer = await StoreWriter.open(DB, { retainEveryMs: 1e12 });
  let pending = [];
  const stream = labelledStream((le) => pending.push(le));

  let rawBytes = 0;
  let waits = 0;
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  let last = started;
  for (let i = 0; i < EVENTS; i += 2000) {
    rawBytes += stream.push(i, 2000, EVENTS);
    if (!writer.write(pending)) {
      waits++;
      pending = [];
      await writer.drained();
    }
    pending = [];
    if (performance.now() - last > 10_000) {
      last = performance.now();
      const s = (last - started) / 1000;
      process.stderr.write(
        `  ${i.toLocaleString('en-US')} events, ${Math.round(writer.stats().written / s)} events/s stored\n`,
      );
    }
  }
  stream.end();
  writer.write(pending);
  await writer.flush();
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await writer.close();
  const s = writer.stats();
  const store = EventStore.open(DB, { readOnly: true });
  const info = store.info();
  store.close();
  results.ingest = {
    seconds,
    eventsPerSecond: s.written / seconds,
    written: s.written,
    lost: s.dropped + s.failed + s.rejected,
    backpressureWaits: waits,
    processCpuSeconds: (cpu.user + cpu.system) / 1e6,
    rawLogBytes: rawBytes,
    rawBytesPerEvent: rawBytes / EVENTS,
    fileBytes: statSync(DB).size,
    fileBytesPerEvent: statSync(DB).size / s.written,
    storeToRaw: statSync(DB).size / rawBytes,
    payloadCompression: info.payloadBytes / info.storedPayloadBytes,
  };
  console.log(JSON.stringify(results.ingest, null, 2));
}

// --- 1b. Replication: a larger store from the ingested day -----------------------------------
//
// When the machine cannot generate and ingest --events in the time at hand,
// --replicate K stores K-1 copies of the ingested day after it, each a day
// later (times, serials and ids shifted), by SQL inside SQLite: the events,
// payloads, references and operations of a K times larger store, with the
// same indexes, for the search latencies below. Process spans are not copied
// (no search reads them). The ingest figures above are the generated day's.

if (!values.reuse && REPLICATE > 1) {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(DB);
  const t = performance.now();
  const maxId = db.prepare('SELECT max(id) FROM events').pluck().get();
  const maxOp = db.prepare('SELECT coalesce(max(id), 0) FROM ops').pluck().get();
  const serials = db.prepare('SELECT max(serial) - min(serial) + 1 FROM events').pluck().get();
  const copy = db.transaction((k) => {
    const shift = { id: k * maxId, ms: k * SPAN_MS, serial: k * serials, op: k * maxOp, max: maxId };
    db.prepare(
      `INSERT INTO events SELECT id + @id, time_ms + @ms, serial + @serial, node, chain, pid, ppid, exe,
         syscall, exit, key, success, types, ops, forgeries, size FROM events WHERE id <= @max`,
    ).run(shift);
    db.prepare('INSERT INTO payloads SELECT id + @id, data FROM payloads WHERE id <= @max').run(shift);
    db.prepare(
      'INSERT INTO event_refs SELECT chain, time_ms + @ms, event + @id FROM event_refs WHERE event <= @max',
    ).run(shift);
    db.prepare(
      `INSERT INTO ops SELECT id + @op, event + @id, time_ms + @ms, op, opid, contid, old_contid, res, errno,
         caller_pid, uid, auid, exe, body FROM ops WHERE event <= @max`,
    ).run(shift);
  });
  for (let k = 1; k < REPLICATE; k++) {
    copy(k);
    console.log(`  copy ${k} of ${REPLICATE - 1}: ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  db.prepare('UPDATE chains SET events = events * ?, last_ms = last_ms + ?').run(
    REPLICATE,
    (REPLICATE - 1) * SPAN_MS,
  );
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  results.replicated = {
    copies: REPLICATE,
    events: maxId * REPLICATE,
    seconds: (performance.now() - t) / 1000,
    fileBytes: statSync(DB).size,
    fileBytesPerEvent: statSync(DB).size / (maxId * REPLICATE),
  };
  console.log(JSON.stringify({ replicated: results.replicated }));
}

// --- 2. Search latency ------------------------------------------------------------------

function wallMs(argv) {
  const t = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
  const ms = performance.now() - t;
  if (r.status !== 0 && r.status !== 1) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return { ms, bytes: r.stdout.length };
}

const store = EventStore.open(DB, { readOnly: true });
const info = store.info();
const newest = info.lastMs;
const queries = [
  ['a container, the last hour', ['--contid', '2007', '--since', `@${(newest - 3600_000) / 1000}`]],
  ['a container, the last 10 minutes', ['--contid', '2007', '--since', `@${(newest - 600_000) / 1000}`]],
  ['a root with 4 nested, the last hour', ['--contid', '1001', '--since', `@${(newest - 3600_000) / 1000}`]],
  ['a container, the last day', ['--contid', '2007', '--since', `@${(newest - 86_400_000) / 1000}`]],
];
const { parseSearchArgs } = await dist('cli/search-args.js');
const { searchQuery } = await dist('cli/search.js');
results.search = [];
const baseNode = median(Array.from({ length: RUNS }, () => wallMs([process.execPath, '-e', '0']).ms));
const baseVersion = median(Array.from({ length: RUNS }, () => wallMs(contidArgv('--version')).ms));
results.startup = { nodeMs: baseNode, contidVersionMs: baseVersion };
for (const [what, args] of queries) {
  const argv = contidArgv('search', '--store', DB, ...args);
  const runs = Array.from({ length: RUNS }, () => wallMs(argv));
  const inProcess = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    const s = EventStore.open(DB, { readOnly: true });
    const w = await StoredEventWriter.create('text');
    let n = 0;
    for (const e of s.search(searchQuery(parseSearchArgs(['--store', DB, ...args])))) {
      w.write(e);
      n++;
    }
    w.take();
    s.close();
    inProcess.push({ ms: performance.now() - t, n });
  }
  const row = {
    what,
    args: args.join(' '),
    matches: inProcess[0].n,
    outputBytes: runs[0].bytes,
    commandMs: median(runs.map((r) => r.ms)),
    commandMinMs: Math.min(...runs.map((r) => r.ms)),
    inProcessMs: median(inProcess.map((r) => r.ms)),
    inProcessMinMs: Math.min(...inProcess.map((r) => r.ms)),
  };
  results.search.push(row);
  console.log(JSON.stringify(row));
}
store.close();
results.store = info;
console.log(JSON.stringify({ startup: results.startup, store: info }, null, 2));
mkdirSync(path.join(ROOT, 'bench/out'), { recursive: true });
writeFileSync(path.join(ROOT, 'bench/out/store.json'), JSON.stringify(results, null, 2) + '\n');
if (!existsSync(DB)) process.exitCode = 1;
