#!/usr/bin/env node
// What checking seals costs a replay (docs/markers.md, "What a replay proves").
//
// 1. Makes bench/data/bench-sealed.log (and its keyring) from bench/data/bench.log:
//    the same records, with a daemon start marker first and a seal marker every
//    10 s of log time, computed by the daemon's own Sealer over the records in
//    file order (auditd wrote them in the order the kernel queued them, the
//    order the daemon reads), then a final seal and a stop marker. Marker
//    serials are above every serial of the log, so they never land in a span.
// 2. Times `contid replay -q --format json --keyring K` of it (every record is
//    hashed into the seals' spans and every seal judged) against the same
//    command of a baseline build given with --baseline (a contid checkout
//    without seals: it honours the start marker and reports the rest as
//    forgeries, which costs nothing measurable for a hundred markers), and
//    plain `--format json` of bench.log with both builds. Pinned to CPU 0, CPU
//    time (user+sys) and peak RSS from /usr/bin/time, median of --runs runs.
//
// 3. Times, in this process, what a record costs the seals: the daemon's
//    SealHasher (canonical form laid out in a batch, AES-CBC-MAC a batch at a
//    time, added into its bucket) over the first 300,000 records of bench.log,
//    against a keyed SHA-256 of each record's canonical form, one call per
//    record, added into the same buckets, with the canonical forms made
//    beforehand (so that it is timed without the layout the SealHasher's time
//    includes). Median of 5 rounds.
//
// Usage: npm run build && node bench/seals.mjs [--runs N] [--baseline DIR/dist/src/cli/main.js]
//        [--remake] [--cost-only: step 3 alone]
import { spawnSync } from 'node:child_process';
import { hash } from 'node:crypto';
import { createReadStream, existsSync, openSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cliNodeOptions, contidArgv } from './cli.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LOG = path.join(ROOT, 'bench/data/bench.log');
const SEALED = path.join(ROOT, 'bench/data/bench-sealed.log');
const KEYRING = path.join(ROOT, 'bench/data/bench-sealed.keyring');
const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    baseline: { type: 'string' },
    remake: { type: 'boolean' },
    'cost-only': { type: 'boolean' },
  },
});
const runs = Math.max(1, Number(values.runs ?? 3));

const { Sealer } = await import(path.join(ROOT, 'dist/src/daemon/sealer.js'));
const { encodeMarker, MARKER_TYPE } = await import(path.join(ROOT, 'dist/src/marker/format.js'));
const { RecordParser } = await import(path.join(ROOT, 'dist/src/parse/parser.js'));
const { SealBuckets, SealHasher, sealKey } = await import(path.join(ROOT, 'dist/src/marker/seal.js'));

const SECRET = Buffer.alloc(32, 0x5e);
const START = 'bench-sealed';
const PID = 4000000;

async function makeSealedLog() {
  const sealer = new Sealer({ secret: SECRET });
  const out = openSync(SEALED, 'w');
  let seq = 0;
  let markerSerial = 0;
  let maxSerial = 0;
  let firstMs = -1;
  // A pass to find the serials to stay above and the first time.
  await parse(LOG, (r) => {
    if (r.serial > maxSerial) maxSerial = r.serial;
    if (firstMs < 0) firstMs = r.timeMs;
  });
  markerSerial = maxSerial + 1000;
  const stamp = (ms) => `${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}`;
  const marker = (ms, body) => {
    const text = encodeMarker({ start: START, seq: ++seq, body }, SECRET);
    const line = `type=UNKNOWN[${MARKER_TYPE}] msg=audit(${stamp(ms)}:${++markerSerial}): pid=${PID} uid=0 auid=4294967295 ses=4294967295 msg='${text}'\n`;
    writeSync(out, line);
  };
  marker(firstMs - 1000, { op: 'start', daemonPid: PID });
  sealer.begin(0);
  let nextSeal = firstMs + 10_000;
  let lastMs = firstMs;
  let seals = 0;
  await parse(LOG, (r, line) => {
    sealer.add(r);
    sealer.note(r.timeMs);
    if (r.timeMs > lastMs) lastMs = r.timeMs;
    writeSync(out, line);
    if (r.timeMs >= nextSeal) {
      const body = sealer.seal(r.timeMs, { lossy: false });
      if (body !== null) {
        marker(r.timeMs, body);
        seals++;
      }
      nextSeal = r.timeMs + 10_000;
    }
  });
  const final = sealer.seal(lastMs, { final: true, lossy: false });
  if (final !== null) {
    marker(lastMs, final);
    seals++;
  }
  marker(lastMs, { op: 'stop' });
  closeSync(out);
  writeFileSync(KEYRING, `${START} ${PID} ${SECRET.toString('hex')}\n`, { mode: 0o600 });
  return seals;
}

/** Feeds every record of `file` (with its line) to `fn`. */
async function parse(file, fn) {
  let current = '';
  const parser = new RecordParser({
    onRecord: (r) => fn(r, current),
    onIssue: () => undefined,
  });
  // Line by line, so that each record comes with its text.
  let rest = '';
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const text = rest + chunk;
    const lines = text.split('\n');
    rest = lines.pop();
    for (const l of lines) {
      current = `${l}\n`;
      parser.push(current);
    }
  }
  if (rest !== '') {
    current = `${rest}\n`;
    parser.push(current);
  }
  parser.end();
}

/** ns per record of the SealHasher, and of one keyed SHA-256 call per record. */
async function perRecord() {
  const records = [];
  await parse(LOG, (r) => {
    if (records.length < 300_000) records.push(r);
  });
  const key = sealKey(SECRET);
  const canonical = records.map((r) =>
    Buffer.concat([key, Buffer.from(`${r.type} ${r.time}:${r.serial} ${r.body}`, 'utf8')]),
  );
  const mac = [];
  const sha = [];
  let sink = 0;
  for (let round = 0; round < 5; round++) {
    let t = process.hrtime.bigint();
    const hasher = new SealHasher(key, new SealBuckets(1 << 20));
    for (const r of records) hasher.add(r);
    hasher.flush();
    mac.push(Number(process.hrtime.bigint() - t) / records.length);
    t = process.hrtime.bigint();
    const buckets = new SealBuckets(1 << 20);
    for (let i = 0; i < canonical.length; i++) {
      const r = records[i];
      buckets.add(r.serial, r.timeMs, hash('sha256', canonical[i], 'buffer'), 0);
    }
    sha.push(Number(process.hrtime.bigint() - t) / records.length);
    sink ^= buckets.size;
  }
  return { records: records.length, mac: median(mac), sha: median(sha), sink };
}

function timed(argv) {
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S %M', 'taskset', '-c', '0', ...argv], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
  const [user, sys, rssKiB] = r.stderr.trim().split('\n').at(-1).split(' ').map(Number);
  return { cpu: user + sys, rssMiB: rssKiB / 1024 };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

if (!existsSync(LOG)) {
  console.error(`${LOG} is missing: make it with sudo bench/capture.sh`);
  process.exit(1);
}
if (values.remake === true || !existsSync(SEALED)) {
  const seals = await makeSealedLog();
  console.log(`made ${SEALED}: ${seals} seals`);
}
const cost = await perRecord();
console.log(
  `per record (${cost.records} records of bench.log): SealHasher ${cost.mac.toFixed(0)} ns, ` +
    `keyed SHA-256 per record ${cost.sha.toFixed(0)} ns (x${(cost.sha / cost.mac).toFixed(2)})`,
);
if (values['cost-only'] === true) process.exit(0);
const builds = [['this', (...a) => contidArgv(...a)]];
if (values.baseline !== undefined) {
  builds.push(['baseline', (...a) => [process.execPath, ...cliNodeOptions(), values.baseline, ...a]]);
}
const cases = [
  ['plain bench.log', ['replay', '-q', '--format', 'json', LOG]],
  ['sealed, --keyring', ['replay', '-q', '--format', 'json', '--keyring', KEYRING, SEALED]],
];
const rows = [];
for (const [name, args] of cases) {
  for (const [build, argv] of builds) {
    const got = [];
    for (let i = 0; i < runs; i++) got.push(timed(argv(...args)));
    rows.push({
      case: name,
      build,
      cpuMedian: median(got.map((g) => g.cpu)),
      cpuMin: Math.min(...got.map((g) => g.cpu)),
      rssMiB: Math.max(...got.map((g) => g.rssMiB)),
    });
  }
}
for (const r of rows) {
  console.log(
    `${r.case.padEnd(20)} ${r.build.padEnd(9)} CPU median ${r.cpuMedian.toFixed(2)} s (min ${r.cpuMin.toFixed(2)}), peak RSS ${r.rssMiB.toFixed(1)} MiB`,
  );
}
const check = spawnSync(
  contidArgv('replay', '--stats', '-q', '-o', '/dev/null', '--keyring', KEYRING, SEALED)[0],
  contidArgv('replay', '--stats', '-q', '-o', '/dev/null', '--keyring', KEYRING, SEALED).slice(1),
  { encoding: 'utf8', maxBuffer: 1 << 26 },
);
const stats = JSON.parse(check.stderr.trim().split('\n').at(-1));
console.log('evidence of the sealed log:', JSON.stringify(stats.evidence));
