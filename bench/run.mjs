// Throughput and memory benchmark: contid's replay against Laurel 0.5.1 and
// ausearch on the same real audit log (bench/data/bench.log, made by
// `sudo bench/capture.sh`). See bench/README.md for what the figures mean.
//
// Usage: npm run bench [-- --runs N] [-- --only contid|laurel|ausearch] [-- --check]
//
// Each tool runs pinned to one core (`taskset -c 0`) under `/usr/bin/time`,
// which reports wall seconds and peak RSS; node cannot read a child's peak RSS
// itself. Output goes to /dev/null so the figures measure parsing and event
// assembly, not the disk.
import { spawn, spawnSync } from 'node:child_process';
import {
  createReadStream,
  existsSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { laurelConfig } from './laurel.mjs';
import { parseArgs } from 'node:util';
import { contidArgv } from './cli.mjs';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH_DIR);
const LOG = path.join(BENCH_DIR, 'data', 'bench.log');
const RESULTS = path.join(BENCH_DIR, 'out', 'results.json');
const TOOLS = ['contid', 'laurel', 'ausearch'];
const USAGE = `Usage: node bench/run.mjs [--runs N] [--only ${TOOLS.join('|')}] [--check]

  --runs N     timed runs per tool; the median is reported (default 3)
  --only TOOL  run one tool only (repeatable)
  --check      one extra, untimed run per tool that counts the events it printed`;

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string', default: '3' },
      only: { type: 'string', multiple: true },
      check: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`Invalid --runs value '${values.runs}'`);
  const only = values.only ?? TOOLS;
  for (const tool of only) {
    if (!TOOLS.includes(tool))
      throw new Error(`Unknown tool '${tool}' for --only (one of ${TOOLS.join(', ')})`);
  }
  return { runs, tools: TOOLS.filter((t) => only.includes(t)), check: values.check, help: values.help };
}

/** Counts distinct `msg=audit(sec.ms:serial)` ids: one per event, whatever its record count. */
async function countEvents(file) {
  const ids = new Set();
  let lines = 0;
  const re = /msg=audit\((\d+\.\d+:\d+)\)/;
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    lines++;
    const m = re.exec(line);
    if (m) ids.add(m[1]);
  }
  return { lines, events: ids.size };
}

function which(cmd) {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']);
  return dirs.map((d) => path.join(d, cmd)).find((p) => existsSync(p)) ?? null;
}

function version(argv) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? '';
}

/**
 * Laurel 0.5.1 has no input-file flag: it reads stdin until EOF. A private
 * config keeps it away from /etc/laurel and /var/log/laurel; with no `user`
 * key it does not drop privileges, and 0.5.1 keeps no state file. The
 * enrichment and label propagation roughly match what contid does per event.
 */
function laurelSetup() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'contid-bench-laurel-'));
  const config = path.join(dir, 'config.toml');
  writeFileSync(config, laurelConfig({ directory: dir, auditlog: { file: '-' } }), { mode: 0o644 });
  return { dir, config };
}

/** The command line of each tool, and how to count the events in its output for --check. */
function toolSpec(tool, ctx) {
  switch (tool) {
    case 'contid': {
      const cli = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
      if (!existsSync(cli))
        return { skip: `${path.relative(ROOT, cli)} does not exist (build contid first)` };
      return {
        argv: contidArgv('replay', '--format', 'json', LOG),
        version: `contid ${JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}`,
        countOutput: (line) => line.startsWith('{'),
      };
    }
    case 'laurel': {
      const bin = which('laurel');
      if (!bin) return { skip: 'laurel is not installed (apt-get install laurel)' };
      return {
        argv: [bin, '-c', ctx.laurel.config],
        stdin: LOG,
        cwd: ctx.laurel.dir,
        version: `laurel ${version([bin, '-v'])}`,
        countOutput: (line) => line.startsWith('{'),
      };
    }
    case 'ausearch': {
      const bin = which('ausearch');
      if (!bin) return { skip: 'ausearch is not installed (apt-get install auditd)' };
      return {
        argv: [bin, '-i', '--input', LOG],
        version: version([bin, '-v']),
        countOutput: (line) => line === '----',
      };
    }
    default:
      throw new Error(`Unknown tool '${tool}'`);
  }
}

/** Runs `argv` to completion; resolves with its exit code and the first few KB of stderr. */
function run(argv, { stdin, cwd, onLine }) {
  return new Promise((resolve, reject) => {
    const inFd = stdin ? openSync(stdin, 'r') : 'ignore';
    const outFd = onLine ? 'pipe' : openSync('/dev/null', 'w');
    const child = spawn(argv[0], argv.slice(1), { cwd: cwd ?? ROOT, stdio: [inFd, outFd, 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s) => {
      // The first lines say why a tool failed; Laurel's statistics at the end do not.
      if (stderr.length < 4096) stderr += s;
    });
    if (onLine) {
      const rl = createInterface({ input: child.stdout, crlfDelay: Infinity });
      rl.on('line', onLine);
    }
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (typeof inFd === 'number') closeSync(inFd);
      if (typeof outFd === 'number') closeSync(outFd);
      resolve({ code: code ?? (signal ? 128 : 1), signal, stderr });
    });
  });
}

const firstLines = (text, n) =>
  text
    .split('\n')
    .filter((l) => l.trim())
    .slice(0, n)
    .join(' | ');

/** One timed run on core 0: `/usr/bin/time -f '%e %M'` writes "seconds maxrss-KiB" to a file. */
async function timedRun(spec, tmp) {
  const timeFile = path.join(tmp, 'time.txt');
  const argv = ['/usr/bin/time', '-f', '%e %M', '-o', timeFile, 'taskset', '-c', '0', ...spec.argv];
  const r = await run(argv, { stdin: spec.stdin, cwd: spec.cwd });
  const last = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1) ?? '';
  const [seconds, rssKiB] = last.split(' ').map(Number);
  if (r.code !== 0 || !Number.isFinite(seconds) || !Number.isFinite(rssKiB)) {
    throw new Error(`${spec.argv.join(' ')} failed with status ${r.code}: ${firstLines(r.stderr, 4)}`);
  }
  return { seconds, rssKiB };
}

async function checkedRun(spec) {
  let printed = 0;
  const r = await run(spec.argv, {
    stdin: spec.stdin,
    cwd: spec.cwd,
    onLine: (line) => {
      if (spec.countOutput(line)) printed++;
    },
  });
  if (r.code !== 0) throw new Error(`${spec.argv.join(' ')} failed with status ${r.code}`);
  return printed;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows
    .map((r) =>
      r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  '),
    )
    .join('\n');
}

function ratios(results) {
  const contid = results.contid;
  const out = {};
  if (!contid?.eventsPerSecond) return out;
  for (const other of ['laurel', 'ausearch']) {
    const o = results[other];
    if (!o?.eventsPerSecond) continue;
    out[`contid/${other}`] = {
      eventsPerSecond: contid.eventsPerSecond / o.eventsPerSecond,
      peakRss: contid.peakRssKiB / o.peakRssKiB,
    };
  }
  return out;
}

function requireTools() {
  const missing = [];
  if (!existsSync('/usr/bin/time')) missing.push('/usr/bin/time (apt-get install time)');
  if (!which('taskset')) missing.push('taskset (apt-get install util-linux)');
  if (missing.length) throw new Error(`Missing ${missing.join(' and ')}`);
}

async function main() {
  let opts;
  try {
    opts = parseCli(process.argv.slice(2));
  } catch (err) {
    console.error(`${err.message}\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  if (!existsSync(LOG)) {
    console.error(`No benchmark log at ${path.relative(process.cwd(), LOG)}.
Create it once with: sudo bench/capture.sh   (about 2 minutes; see bench/README.md)`);
    return 1;
  }
  requireTools();

  const { lines, events } = await countEvents(LOG);
  const bytes = statSync(LOG).size;
  console.log(
    `${path.relative(ROOT, LOG)}: ${lines} lines, ${events} events, ${(bytes / 2 ** 20).toFixed(1)} MiB`,
  );

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'contid-bench-'));
  const ctx = { laurel: laurelSetup() };
  const results = {};
  try {
    // Runs go in rounds, one per tool each, so that a slow spell of this
    // shared machine falls on every tool rather than on one tool's runs.
    const specs = new Map();
    const runs = new Map();
    for (const tool of opts.tools) {
      const spec = toolSpec(tool, ctx);
      if (spec.skip) {
        console.log(`${tool}: skipped, ${spec.skip}`);
        results[tool] = { skipped: spec.skip };
        continue;
      }
      specs.set(tool, spec);
      runs.set(tool, []);
    }
    for (let i = 0; i < opts.runs; i++) {
      for (const [tool, spec] of specs) {
        if (results[tool]?.failed) continue;
        try {
          const r = await timedRun(spec, tmp);
          console.log(
            `${tool}: run ${i + 1}/${opts.runs} ${r.seconds.toFixed(2)} s, ${(r.rssKiB / 1024).toFixed(1)} MiB`,
          );
          runs.get(tool).push(r);
        } catch (err) {
          console.log(`${tool}: failed, ${err.message}`);
          results[tool] = { command: spec.argv.join(' '), failed: err.message, runs: runs.get(tool) };
        }
      }
    }
    for (const [tool, spec] of specs) {
      if (results[tool]?.failed) continue;
      const toolRuns = runs.get(tool);
      const seconds = median(toolRuns.map((r) => r.seconds));
      results[tool] = {
        command: spec.argv.join(' ') + (spec.stdin ? ` < ${spec.stdin}` : ''),
        version: spec.version,
        runs: toolRuns,
        medianSeconds: seconds,
        eventsPerSecond: seconds > 0 ? events / seconds : null,
        peakRssKiB: Math.max(...toolRuns.map((r) => r.rssKiB)),
      };
      if (opts.check) {
        results[tool].printedEvents = await checkedRun(spec);
        console.log(`${tool}: printed ${results[tool].printedEvents} events (file has ${events})`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    rmSync(ctx.laurel.dir, { recursive: true, force: true });
  }

  const rows = [
    ['tool', 'events', 'median s', 'events/s', 'peak RSS MiB', ...(opts.check ? ['printed'] : [])],
  ];
  for (const tool of opts.tools) {
    const r = results[tool];
    if (!r.medianSeconds) {
      rows.push([tool, events, r.skipped ? 'skipped' : 'failed', '-', '-', ...(opts.check ? ['-'] : [])]);
      continue;
    }
    rows.push([
      tool,
      events,
      r.medianSeconds.toFixed(2),
      Math.round(r.eventsPerSecond).toLocaleString('en-US'),
      (r.peakRssKiB / 1024).toFixed(1),
      ...(opts.check ? [r.printedEvents] : []),
    ]);
  }
  console.log(`\n${table(rows)}`);
  const rel = ratios(results);
  for (const [name, r] of Object.entries(rel)) {
    console.log(`${name}: events/s x${r.eventsPerSecond.toFixed(2)}, peak RSS x${r.peakRss.toFixed(2)}`);
  }

  const report = {
    date: new Date().toISOString(),
    machine: {
      nproc: os.availableParallelism(),
      cpu: os.cpus()[0]?.model ?? null,
      memoryBytes: os.totalmem(),
      node: process.version,
      kernel: os.release(),
      pinnedTo: 'taskset -c 0',
    },
    log: { path: path.relative(ROOT, LOG), bytes, lines, events },
    runsPerTool: opts.runs,
    results,
    ratios: rel,
  };
  mkdirSync(path.dirname(RESULTS), { recursive: true });
  writeFileSync(RESULTS, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), RESULTS)}`);
  return Object.values(results).some((r) => r.failed) ? 1 : 0;
}

process.exitCode = await main();
