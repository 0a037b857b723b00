#!/usr/bin/env node
// What hostile input costs per byte, against ordinary input (issue 10, section 6: no input may
// cost more than linear time). Each case is a generated stream of a few megabytes, run through
// the replay pipeline in-process (parser, assembler, labeller, hold stage, encoder), in a child
// process of its own beside ordinary input of the same size (exec events as the kernel writes
// them): one untimed pass of each, then --runs rounds that time one pass of each in turn (CPU
// time), so that a change in the machine's load slows both alike. Reported: the median CPU time
// per input byte of each, and their ratio. Target: every case within 2x ordinary input.
//
// Usage: npm run build && node bench/hostile.mjs [--runs N] [--mb N] [--only CASE]... [--format json|text]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { cliNodeOptions } from './cli.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    mb: { type: 'string' },
    only: { type: 'string', multiple: true },
    format: { type: 'string' },
    child: { type: 'string' },
  },
});
const runs = Number(values.runs ?? 5);
const targetBytes = Number(values.mb ?? 8) * 1024 * 1024;

// ---------------------------------------------------------------- inputs

/** A stream of lines with increasing stamps: `stamp(ms)` gives `msg=audit(…)` for the next serial. */
class Stamps {
  serial = 1000;
  ms = 1_795_000_000_000;
  next(stepMs = 1) {
    this.serial++;
    this.ms += stepMs;
    this.stamp = this.at(this.ms, this.serial);
    return this.stamp;
  }
  at(ms, serial) {
    return `msg=audit(${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}:${serial})`;
  }
}

const ENRICH =
  '\x1dARCH=x86_64 SYSCALL=execve AUID="unset" UID="root" GID="root" EUID="root" SUID="root" FSUID="root" EGID="root" SGID="root" FSGID="root"';

function syscall(stamp, nr, pid, extra = '') {
  return (
    `type=SYSCALL ${stamp}: arch=c000003e syscall=${nr} success=yes exit=0 a0=55d1c3e0 a1=55d1c3f0 a2=55d1c400 a3=8 ` +
    `items=2 ppid=${pid - 1} pid=${pid} auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 ` +
    `tty=(none) ses=4294967295 comm="true" exe="/usr/bin/true" subj=unconfined key="bench"${extra}${ENRICH}`
  );
}

/**
 * Ordinary input: exec events as the kernel writes them (ENRICHED), with forks and exits.
 * `execve(stamp)` gives records to add to each exec event, `after(stamps)` lines after each exit.
 */
function normal(bytes, execve = () => [], after = () => []) {
  const s = new Stamps();
  const out = [];
  let size = 0;
  for (let pid = 2000; size < bytes; pid++) {
    const lines = [];
    let st = s.next();
    lines.push(syscall(st, 56, pid), `type=PROCTITLE ${st}: proctitle=2F62696E2F7368002D63`);
    st = s.next();
    lines.push(
      syscall(st, 59, pid + 1),
      `type=EXECVE ${st}: argc=2 a0="/usr/bin/true" a1="--version"`,
      `type=CWD ${st}: cwd="/root"`,
      ...execve(st),
      `type=PATH ${st}: item=0 name="/usr/bin/true" inode=1837 dev=fe:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID="root" OGID="root"`,
      `type=PATH ${st}: item=1 name="/lib64/ld-linux-x86-64.so.2" inode=2048 dev=fe:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID="root" OGID="root"`,
      `type=PROCTITLE ${st}: proctitle=2F7573722F62696E2F74727565002D2D76657273696F6E`,
    );
    st = s.next();
    lines.push(syscall(st, 231, pid + 1), `type=PROCTITLE ${st}: proctitle=2F7573722F62696E2F74727565`);
    lines.push(...after(s));
    const text = lines.join('\n') + '\n';
    out.push(text);
    size += text.length;
  }
  return out.join('');
}

/** A record line, then the PROCTITLE that closes its event. */
function closed(stamp, line) {
  return `${line}\ntype=PROCTITLE ${stamp}: proctitle=7368`;
}

/** Lines made by `line(stamps, i)` until the input has `bytes` bytes. */
function repeat(bytes, line) {
  const s = new Stamps();
  const out = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const text = line(s, i) + '\n';
    out.push(text);
    size += text.length;
  }
  return out.join('');
}

const CASES = {
  normal: (bytes) => normal(bytes),
  // Not hostile: one-record events with an ordinary clock, to tell the cost of many small events
  // (any input made of them costs this much per byte) from the cost of what a case adds.
  'one-record events (ordinary)': (bytes) =>
    repeat(bytes, (s) => `type=PATH ${s.next()}: item=0 name="/tmp/x" inode=1 dev=fe:01 mode=0100644`),
  // The case: an 8.5 KB user message `a=1 a=1 …` (a container can send it).
  'repeated names (user message)': (bytes) =>
    repeat(
      bytes,
      (s) =>
        `type=USER ${s.next()}: pid=7 uid=0 auid=4242 ses=3 msg='${'a=1 '.repeat(2100)}'${'\x1dUID="root" AUID="x"'}`,
    ),
  // Each record closed by its PROCTITLE, as the kernel's events are.
  'repeated names (record)': (bytes) =>
    repeat(bytes, (s) => closed(s.next(), `type=SYSCALL ${s.stamp}: ${'a=1 '.repeat(2100)}key="k"`)),
  'many fields (past the cap)': (bytes) =>
    repeat(bytes, (s) =>
      closed(
        s.next(),
        `type=SYSCALL ${s.stamp}: ${Array.from({ length: 6000 }, (_, i) => `f${i}=1`).join(' ')}`,
      ),
    ),
  // The case: 40,000 records with one stamp, then the next event.
  'huge events (40,000 records)': (bytes) => {
    const s = new Stamps();
    const out = [];
    let size = 0;
    while (size < bytes) {
      const st = s.next();
      for (let i = 0; i < 40_000 && size < bytes; i++) {
        const text = `type=PATH ${st}: item=${i} name="/usr/lib/x86_64-linux-gnu/lib${i}.so" inode=${i} dev=fe:01 mode=0100644\n`;
        out.push(text);
        size += text.length;
      }
    }
    return out.join('');
  },
  'huge events (identical records)': (bytes) => {
    const s = new Stamps();
    const st = s.next();
    return repeat(bytes, () => `type=PATH ${st}: item=0 name="/etc/passwd" inode=1 dev=fe:01 mode=0100644`);
  },
  // 60,000 events open at once (under the 65,536 in flight), records dealt round-robin.
  // 12,000 events open at once, each of five records dealt round-robin (records of one event
  // 12,000 apart), then the next 12,000.
  'many interleaved events': (bytes) => {
    const s = new Stamps();
    const n = 12_000;
    const out = [];
    let size = 0;
    while (size < bytes) {
      const stamps = Array.from({ length: n }, () => s.next(0));
      for (let round = 0; round < 5; round++) {
        for (let e = 0; e < n; e++) {
          const text = `type=PATH ${stamps[e]}: item=${round} name="/usr/lib/x86_64-linux-gnu/f${e}.so" inode=${e} dev=fe:01 mode=0100644\n`;
          out.push(text);
          size += text.length;
        }
      }
      s.ms += 5000;
    }
    return out.join('');
  },
  'long values (1 MB quoted)': (bytes) =>
    repeat(bytes, (s) =>
      closed(
        s.next(),
        `type=SYSCALL ${s.stamp}: arch=c000003e syscall=59 comm="${'x'.repeat(1000 << 10)}" key="k"`,
      ),
    ),
  'long values (1 MB hex proctitle)': (bytes) =>
    repeat(bytes, (s) => `type=PROCTITLE ${s.next()}: proctitle=${'41'.repeat(500 << 10)}`),
  'long values (8 KB user message)': (bytes) =>
    repeat(bytes, (s) => `type=USER ${s.next()}: pid=7 uid=0 auid=4242 ses=3 msg='text=${'y'.repeat(8400)}'`),
  // Each exec event with an EXECVE piece numbered far past its size: argv would be a million
  // empty strings.
  'EXECVE numbered past its size': (bytes) =>
    normal(bytes, (st) => [`type=EXECVE ${st}: a1048575="x" a1048576="y"`]),
  // A user message full of \x1d and fake enriched parts (RAW log, so none is real).
  'separators in text': (bytes) =>
    repeat(
      bytes,
      (s) => `type=USER ${s.next()}: pid=7 uid=0 auid=4242 ses=3 msg='${'\x1dUID="root" '.repeat(300)}x'`,
    ),
  // After each exec event, a record dated a day ahead: the clock must not thrash.
  'clock outliers': (bytes) =>
    normal(
      bytes,
      () => [],
      (s) => [
        `type=PATH ${s.at(s.ms + 86_400_000, ++s.serial)}: item=0 name="/tmp/x" inode=1 dev=fe:01 mode=0100644`,
      ],
    ),
  // An event of 2,000 records closed on PROCTITLE, then 20,000 records of its stamp, each an
  // event of its own (late): compare with one-record events.
  'late records of a large event': (bytes) => {
    const s = new Stamps();
    const out = [];
    let size = 0;
    while (size < bytes) {
      const st = s.next();
      for (let i = 0; i < 2000; i++) out.push(`type=PATH ${st}: item=${i} name="/tmp/f" inode=1 dev=fe:01\n`);
      for (let i = 0; i < 20_000; i++)
        out.push(`type=PROCTITLE ${st}: proctitle=${(i + 4096).toString(16)}\n`);
      size = out.reduce((n, l) => n + l.length, 0);
    }
    return out.join('');
  },
};

/** Cases of ordinary input, measured for comparison: not hostile, so not held to the target. */
const ORDINARY = new Set(['normal', 'one-record events (ordinary)']);

/**
 * What a case is compared with: ordinary input, or, for a case that is made of one-record events
 * by its nature, ordinary one-record events (an input of small events costs more per byte,
 * whatever they hold).
 */
function baselineOf(name) {
  return name === 'late records of a large event' ? 'one-record events (ordinary)' : 'normal';
}

// ---------------------------------------------------------------- child: time one case

async function child(name, format) {
  const { ReplayPipeline } = await import(pathToFileURL(path.join(ROOT, 'dist/src/pipeline/replay.js')).href);
  const input = Buffer.from(CASES[name](targetBytes), 'utf8');
  const ordinary = Buffer.from(CASES[baselineOf(name)](input.length), 'utf8');
  const chunk = 1 << 20;
  const once = (bytes) => {
    const p = new ReplayPipeline({ format });
    let out = 0;
    for (let i = 0; i < bytes.length; i += chunk) {
      const b = p.push(bytes.subarray(i, i + chunk));
      out += b.length;
      p.recycle(b);
    }
    out += p.end().length;
    return { out, stats: p.stats() };
  };
  const cpu = (bytes) => {
    const t0 = process.cpuUsage();
    once(bytes);
    const t = process.cpuUsage(t0);
    return (t.user + t.system) / 1000;
  };
  const first = once(input);
  once(ordinary);
  const times = [];
  const ordinaryTimes = [];
  for (let r = 0; r < runs; r++) {
    times.push(cpu(input));
    ordinaryTimes.push(cpu(ordinary));
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const st = first.stats;
  process.stdout.write(
    JSON.stringify({
      name,
      format,
      bytes: input.length,
      outBytes: first.out,
      baseline: baselineOf(name),
      nsPerByte: (median(times) * 1e6) / input.length,
      normalNsPerByte: (median(ordinaryTimes) * 1e6) / ordinary.length,
      events: st.events,
      records: st.records,
      caps: { recordLimit: st.recordLimit, fieldCapped: st.fieldCapped, argvOmitted: st.argvOmitted },
      clock: { outliers: st.clockOutliers, steps: st.clockSteps },
      maxOpen: st.maxOpen,
    }) + '\n',
  );
}

if (values.child !== undefined) {
  await child(values.child, values.format ?? 'json');
  process.exit(0);
}

// ---------------------------------------------------------------- parent: every case, a child each

if (!existsSync(path.join(ROOT, 'dist/src/pipeline/replay.js'))) {
  console.error('bench/hostile.mjs: build first (npm run build)');
  process.exit(1);
}
const formats = values.format === undefined ? ['json', 'text'] : [values.format];
const names = values.only ?? Object.keys(CASES).filter((n) => n !== 'normal');
const rows = [];
for (const format of formats) {
  for (const name of names) {
    if (!(name in CASES)) throw new Error(`Unknown case ${JSON.stringify(name)}`);
    const r = spawnSync(
      process.execPath,
      [
        ...cliNodeOptions(),
        '--max-old-space-size=4096',
        fileURLToPath(import.meta.url),
        '--child',
        name,
        '--format',
        format,
        '--runs',
        String(runs),
        '--mb',
        String(targetBytes / 1024 / 1024),
      ],
      { encoding: 'utf8', maxBuffer: 1 << 24 },
    );
    if (r.status !== 0) throw new Error(`${name} (${format}) failed: ${r.stderr}`);
    const res = JSON.parse(r.stdout.trim());
    res.ratio = res.nsPerByte / res.normalNsPerByte;
    rows.push(res);
    process.stderr.write(`${format} ${name}: x${res.ratio.toFixed(2)}\n`);
  }
}

const pad = (s, n) => String(s).padEnd(n);
console.log(
  `${pad('format', 7)}${pad('case', 36)}${pad('MB', 6)}${pad('ns/byte', 9)}${pad('baseline', 10)}${pad('ratio', 7)}events`,
);
for (const r of rows) {
  console.log(
    `${pad(r.format, 7)}${pad(r.name, 36)}${pad((r.bytes / 1048576).toFixed(1), 6)}${pad(r.nsPerByte.toFixed(1), 9)}` +
      `${pad(r.normalNsPerByte.toFixed(1), 10)}${pad(r.ratio.toFixed(2), 7)}${r.events}` +
      (r.baseline === 'normal' ? '' : `  (vs ${r.baseline})`),
  );
}
// One-record events are ordinary input (the baseline of a case), not a hostile case: the target is not theirs.
const worst = rows.filter((r) => !ORDINARY.has(r.name)).sort((a, b) => b.ratio - a.ratio)[0];
if (worst !== undefined)
  console.log(`worst hostile case: ${worst.format} ${worst.name} x${worst.ratio.toFixed(2)} (target: 2)`);
mkdirSync(path.join(ROOT, 'bench/out'), { recursive: true });
writeFileSync(
  path.join(ROOT, 'bench/out/hostile.json'),
  JSON.stringify({ date: new Date().toISOString(), node: process.version, runs, rows }, null, 2) + '\n',
);
