// Live CPU benchmark: the CPU an audit consumer uses while an exec loop runs at
// a fixed rate on the real kernel (the method of Laurel's performance notes),
// for contid as the audit daemon, auditd alone (RAW and ENRICHED) and auditd
// with Laurel as its plugin; then the highest rate contid sustains with zero
// kernel `lost`. See bench/README.md ("Live exec loop: CPU per exec").
//
// Usage (as root; no build step, uses the existing dist/):
//   node bench/exec-cpu.mjs [--rates 50,150,max] [--seconds 10] [--reps 1]
//                           [--only contid|auditd|auditd+laurel] [--search 3000,4000,...|none]
//                           [--wide] [--lock-wait 1800] [--contid-arg=--flag --contid-arg=value]...
//                           [--build NAME=path/to/dist/src/cli/main.js]...
//
// Kernel audit state is shared by the whole machine. The script:
//   - holds /run/contid-audit-test.lock for the whole run (a `flock` helper in
//     its own session, fed by a pipe, so it also lets go if node dies);
//   - refuses to start when an audit daemon is registered or the config is
//     locked (enabled 2), and snapshots `auditctl -s` and `auditctl -l`;
//   - starts auditd only as `auditd -n -c <tmp>` with a private config (its own
//     log file, a private plugin dir: empty, or holding only a Laurel plugin with
//     a private Laurel config), never with /etc/audit;
//   - after every point and in a finally (also on SIGINT/SIGTERM/SIGHUP) stops
//     every process it started by pid (SIGTERM, wait), deletes exactly the rules
//     it added (and any rule of a contid it started), and puts `enabled` and
//     `backlog_limit` back; it never sets -f nor -e 2. At the end it checks that
//     the registered pid and the rule list are as found.
// A run killed with SIGKILL cannot restore: check `auditctl -s`/`-l` after one.
//
// Each point: start the consumer, wait until it is registered (and its rules
// are in), measure 2 s idle, then run the generator (a static C program built
// with gcc in a temp dir: loginuid 4242, fork + exec /bin/true at RATE/s for
// SECONDS s, paced on absolute CLOCK_MONOTONIC deadlines). The window ends when
// the kernel backlog is 0 and the consumer's CPU has settled. CPU is the
// time on the CPU of every thread of every consumer process, from
// /proc/PID/task/TID/schedstat (ns; utime+stime, in 10 ms ticks, is kept as
// tickCpuMs). Before the window, a warm-up at 100 exec/s (--warmup, 30 s).
// While the generator runs, the consumer's output is tailed every 10 ms: the
// age of each auid-4242 event when it first shows (now - its audit time) is
// the host-log latency.
import { spawn } from 'node:child_process';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  fstatSync,
} from 'node:fs';
import { readSync } from 'node:fs';
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { clearInterval, setInterval } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { auditRules, auditStatus, LOCK, restoreSettings, run, takeLock } from './audit-session.mjs';
import { cliNodeOptions } from './cli.mjs';
import { laurelConfig } from './laurel.mjs';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH_DIR);
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const RULES_FILE = path.join(ROOT, 'etc', 'audit', 'contid.rules');
const RESULTS = path.join(BENCH_DIR, 'out', 'exec-cpu.json');
const AUID = 4242;
const CLK_TCK = 100; // USER_HZ; checked against `getconf CLK_TCK` at start
const IDLE_SECONDS = 2;
/** The exec rate of the warm-up before each point's window. */
const WARMUP_RATE = 100;
const BACKLOG_LIMIT = 8192; // what contid sets; set for auditd too
/** A point is "sustained" when the loop reached this share of its target rate. */
const REACHED = 0.97;
const CONFIGS = ['contid', 'auditd-raw', 'auditd-enriched', 'auditd+laurel'];
const ONLY = {
  contid: ['contid'],
  auditd: ['auditd-raw', 'auditd-enriched'],
  'auditd-raw': ['auditd-raw'],
  'auditd-enriched': ['auditd-enriched'],
  'auditd+laurel': ['auditd+laurel'],
};
const USAGE = `Usage: node bench/exec-cpu.mjs [options]   (as root)

  --rates LIST     target exec rates per second; "max": as fast as the loop
                   goes for --seconds (default 50,150,max)
  --seconds N      generator run time per point (default 10)
  --reps N         runs of each point, interleaved (default 1)
  --only NAME      contid, auditd (RAW and ENRICHED), auditd-raw, auditd-enriched,
                   auditd+laurel; repeatable (default: all)
  --search LIST    rates for contid's zero-loss search after the table
                   (default none)
  --wide           the rules of etc/audit/contid.rules as they are, matching every
                   process (default: -F auid=${AUID} added to every rule; contid then
                   runs with --rules no and the script loads the same rules as for auditd)
  --build N=PATH   measure this contid build (its dist/src/cli/main.js) as
                   configuration contid:N, repeatable; default: this tree's dist/
  --contid-arg A   one more argument for contid run, repeatable
                   (e.g. --contid-arg=--proc-connector --contid-arg=no)
  --warmup N       seconds of execs at ${WARMUP_RATE}/s before each point's window,
                   not measured (default 30: V8 compiles the daemon's hot code
                   in its first tens of seconds, a cost a daemon pays once; 0 for none)
  --node-arg A     one more node option for contid (e.g. --node-arg=--cpu-prof), repeatable
  --lock-wait N    seconds to wait for ${LOCK} (default 1800)`;

/** The generator's target for "max": far above any rate it reaches; it stops at --seconds. */
const MAX_RATE = 100000;

function parseRates(text, flag) {
  const rates = text.split(',').map((s) => (s.trim() === 'max' ? MAX_RATE : Number(s.trim())));
  if (rates.some((r) => !Number.isFinite(r) || r <= 0)) throw new Error(`Invalid ${flag} value '${text}'`);
  return rates;
}

const rateName = (rate) => (rate === MAX_RATE ? 'max' : String(rate));

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      rates: { type: 'string', default: '50,150,max' },
      seconds: { type: 'string', default: '10' },
      reps: { type: 'string', default: '1' },
      only: { type: 'string', multiple: true },
      search: { type: 'string', default: 'none' },
      wide: { type: 'boolean', default: false },
      build: { type: 'string', multiple: true },
      'contid-arg': { type: 'string', multiple: true },
      'node-arg': { type: 'string', multiple: true },
      'lock-wait': { type: 'string', default: '1800' },
      warmup: { type: 'string', default: '30' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new Error(`Invalid --seconds value '${values.seconds}'`);
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`Invalid --reps value '${values.reps}'`);
  const selected = new Set();
  for (const name of values.only ?? ['contid', 'auditd', 'auditd+laurel']) {
    if (!ONLY[name]) throw new Error(`Unknown configuration '${name}' for --only`);
    for (const c of ONLY[name]) selected.add(c);
  }
  const builds = {};
  for (const spec of values.build ?? []) {
    const m = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(spec);
    if (m === null) throw new Error(`Invalid --build value '${spec}' (NAME=PATH)`);
    builds[`contid:${m[1]}`] = path.resolve(m[2]);
  }
  if (Object.keys(builds).length === 0) builds.contid = CLI;
  const configs = CONFIGS.filter((c) => selected.has(c)).flatMap((c) =>
    c === 'contid' ? Object.keys(builds) : [c],
  );
  return {
    rates: parseRates(values.rates, '--rates'),
    seconds,
    reps,
    configs,
    builds,
    search: values.search === 'none' || !selected.has('contid') ? [] : parseRates(values.search, '--search'),
    narrow: !values.wide,
    warmup: Number(values.warmup),
    contidArgs: values['contid-arg'] ?? [],
    nodeArgs: values['node-arg'] ?? [],
    lockWait: Number(values['lock-wait']),
    help: values.help,
  };
}

// --- small helpers ------------------------------------------------------------

/** utime + stime of one process (all its threads, dead ones included), in ms; null if gone. */
function cpuMs(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK; // fields 14 and 15
}

/** utime + stime of each live thread of `pid` by thread id, with its name, in ms. */
function threadCpu(pid) {
  const out = new Map();
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      const name = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
      // schedstat: ns on the CPU, ns waiting for it, times run (one per
      // wake-up, plus preemptions): finer than the 10 ms ticks of stat.
      const sched = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ');
      out.set(tid, {
        name,
        ms: ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK,
        runNs: Number(sched[0]),
        runs: Number(sched[2]),
      });
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

/** What a thread of contid is, guessed from the system call it sleeps in (x86-64 numbers). */
function threadRole(pid, tid) {
  if (tid === String(pid)) return 'main';
  let nr = -1;
  try {
    nr = Number(readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').split(' ')[0]);
  } catch {
    return 'ended';
  }
  // recvmmsg: the audit reader; recvfrom: the proc connector; futex: V8's
  // platform threads and libuv's pool (or a worker in Atomics.wait).
  return (
    { 299: 'recvmmsg', 45: 'recvfrom', 202: 'futex', 232: 'epoll', 281: 'epoll', 7: 'poll', 271: 'ppoll' }[
      nr
    ] ?? `syscall ${nr}`
  );
}

/**
 * CPU of each thread over a window, as `name/tid` (`name/main` for the main
 * thread; Node's threads all share one name), busiest first; threads that
 * ended meanwhile are left out.
 */
function threadDelta(pid, before, after) {
  const rows = [];
  for (const [tid, t] of after) {
    const ms = t.ms - (before.get(tid)?.ms ?? 0);
    if (ms > 0) rows.push([`${t.name}/${tid === String(pid) ? 'main' : tid}`, ms]);
  }
  return Object.fromEntries(rows.sort((a, b) => b[1] - a[1]));
}

/**
 * Each thread over a window from schedstat: ms on the CPU, times it ran
 * (about its wake-ups) and what it sleeps in at the end, busiest first.
 */
function threadRuns(pid, before, after) {
  const rows = [];
  for (const [tid, t] of after) {
    const b = before.get(tid);
    const ms = (t.runNs - (b?.runNs ?? 0)) / 1e6;
    const runs = t.runs - (b?.runs ?? 0);
    if (runs > 0) rows.push({ tid, role: threadRole(pid, tid), ms: Math.round(ms * 10) / 10, runs });
  }
  return rows.sort((a, b) => b.ms - a.ms);
}

const sumCpu = (pids) => pids.reduce((s, p) => s + (cpuMs(p) ?? 0), 0);
/** ms on the CPU of threadRuns() rows, for every process. */
const runMsOf = (perProcess) => perProcess.flat().reduce((s, t) => s + t.ms, 0);

function procStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { comm: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')), ppid: Number(f[1]) };
  } catch {
    return null;
  }
}

function childrenOf(ppid) {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(name);
    if (s?.ppid === ppid) out.push({ pid: Number(name), comm: s.comm });
  }
  return out;
}

function findKauditd() {
  for (const name of readdirSync('/proc')) {
    if (/^\d+$/.test(name) && procStat(name)?.comm === 'kauditd') return Number(name);
  }
  return null;
}

/** Forks since boot, from /proc/stat: tells the generator's forks from the rest of the machine's. */
function forksSinceBoot() {
  const m = /^processes (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
  return m ? Number(m[1]) : 0;
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};

async function waitExit(pid, ms) {
  for (let waited = 0; waited < ms; waited += 100) {
    if (!alive(pid) || procStat(pid) === null) return true;
    await sleep(100);
  }
  return false;
}

/** SIGTERM, wait, then SIGKILL: only ever to a pid this script started. */
async function stopPid(pid, name, ms = 30000) {
  if (!alive(pid)) return true;
  process.kill(pid, 'SIGTERM');
  if (await waitExit(pid, ms)) return true;
  console.error(`${name} ${pid} ignored SIGTERM for ${ms / 1000} s, sending SIGKILL`);
  process.kill(pid, 'SIGKILL');
  await waitExit(pid, 5000);
  return false;
}

/** A child whose exit can be awaited; stderr kept in memory. */
function spawnTracked(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  const t = { child, stdout: '', stderr: '', exited: null };
  child.stdout?.setEncoding('utf8').on('data', (d) => (t.stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d) => (t.stderr += d));
  t.exit = new Promise((resolve) => {
    child.on('error', (err) => {
      t.exited = { code: null, error: err.message };
      resolve(t.exited);
    });
    child.on('exit', (code, signal) => {
      t.exited = { code, signal };
      resolve(t.exited);
    });
  });
  return t;
}

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows
    .map((r) =>
      r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  '),
    )
    .join('\n');
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

// --- the generator --------------------------------------------------------------

const GENERATOR_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* execloop RATE SECONDS AUID|-: fork + exec /bin/true RATE times a second. */
int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: execloop RATE SECONDS AUID|-\n"); return 2; }
  double rate = atof(argv[1]), seconds = atof(argv[2]);
  if (strcmp(argv[3], "-") != 0) {
    int fd = open("/proc/self/loginuid", O_WRONLY);
    if (fd < 0 || write(fd, argv[3], strlen(argv[3])) < 0) { perror("loginuid"); return 1; }
    close(fd);
  }
  signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
  long total = (long)(rate * seconds + 0.5), failed = 0, late = 0;
  long long period = (long long)(1e9 / rate), start = now_ns(), max_lag = 0;
  char *cargv[] = {"true", NULL}, *cenv[] = {NULL};
  /* As fast as it goes ("max"): stop at SECONDS instead of making RATE * SECONDS execs. */
  long long stop_at = rate >= 100000 ? start + (long long)(seconds * 1e9) : 0;
  long made = 0;
  for (long i = 0; i < total; i++) {
    long long due = start + i * period, lag = now_ns() - due;
    if (stop_at && now_ns() >= stop_at) break;
    made++;
    if (lag < 0) {
      struct timespec d = {due / 1000000000LL, due % 1000000000LL};
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &d, NULL) == EINTR) {}
    } else {
      if (lag > max_lag) max_lag = lag;
      if (lag > period) late++;
    }
    pid_t pid = fork();
    if (pid == 0) { execve("/bin/true", cargv, cenv); _exit(127); }
    if (pid < 0) failed++;
  }
  long long end = now_ns();
  while (wait(NULL) > 0 || errno == EINTR) {}
  long long reaped = now_ns();
  struct rusage self, kids;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  printf("{\"target\":%g,\"execs\":%ld,\"forkFailed\":%ld,\"late\":%ld,\"maxLagMs\":%.3f,"
         "\"seconds\":%.6f,\"reapedSeconds\":%.6f,\"selfCpuMs\":%.1f,\"childrenCpuMs\":%.1f}\n",
         rate, made - failed, failed, late, max_lag / 1e6, (stop_at ? end - start : end - start + period) / 1e9,
         (reaped - start) / 1e9,
         (self.ru_utime.tv_sec + self.ru_stime.tv_sec) * 1e3 + (self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e3,
         (kids.ru_utime.tv_sec + kids.ru_stime.tv_sec) * 1e3 + (kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) / 1e3);
  return 0;
}
`;

function buildGenerator(dir) {
  const src = path.join(dir, 'execloop.c');
  const bin = path.join(dir, 'execloop');
  writeFileSync(src, GENERATOR_C);
  run('gcc', ['-O2', '-static', '-o', bin, src]);
  return bin;
}

// --- rules ---------------------------------------------------------------------

/** The -a lines of etc/audit/contid.rules, optionally narrowed to auid 4242. */
function benchRules(narrow) {
  return readFileSync(RULES_FILE, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('-a '))
    .map((l) => (narrow ? l.replace(/ -k /, ` -F auid=${AUID} -k `) : l));
}

// --- consumers -------------------------------------------------------------------

const state = {
  aborted: false,
  generator: null, // tracked child
  consumer: null, // { stop(), pids() }
  addedRules: [], // exact rule strings this script added
  contidPids: [], // for leftover rules of a contid that did not clean up
};

function addRules(rules, dir) {
  const file = path.join(dir, 'bench.rules');
  writeFileSync(file, `${rules.join('\n')}\n`);
  run('auditctl', ['-R', file]);
  state.addedRules.push(...rules);
}

/** Deletes the rules this script added and, with `leftovers`, any rule of a contid it started. */
function deleteOurRules({ leftovers = true } = {}) {
  const problems = [];
  for (const rule of state.addedRules.splice(0)) {
    const r = run('auditctl', ['-d', ...rule.slice(3).split(/\s+/)], { allowFail: true });
    if (r.status !== 0) problems.push(`could not delete rule "${rule}": ${r.stderr.trim()}`);
  }
  if (!leftovers) return problems;
  // A contid we started removes its own rules; if it could not, they name its pid.
  for (const line of auditRules()) {
    const m = / -F pid!=(\d+) /.exec(line);
    if (!line.startsWith('-a ') || !m || !state.contidPids.includes(Number(m[1]))) continue;
    const r = run('auditctl', ['-d', ...line.slice(3).split(/\s+/)], { allowFail: true });
    problems.push(`contid ${m[1]} left its rule "${line}"${r.status === 0 ? ' (deleted)' : ''}`);
  }
  return problems;
}

async function startContid(tmp, opts, name) {
  const cli = opts.builds[name];
  if (opts.narrow) {
    // contid with --rules no neither enables audit nor raises the backlog limit.
    run('auditctl', ['-b', String(BACKLOG_LIMIT)]);
    run('auditctl', ['-e', '1']);
  }
  const conf = path.join(tmp, 'contid.conf');
  writeFileSync(conf, '# empty: every setting comes from the flags\n');
  const hostLog = path.join(tmp, 'hostlog', 'audit.log');
  const args = [
    ...cliNodeOptions(cli),
    ...opts.nodeArgs,
    cli,
    'run',
    '--config',
    conf,
    '--source',
    'unicast',
    '--host-log',
    hostLog,
    '--format',
    'text',
    '--keyring',
    path.join(tmp, 'state', 'keyring'),
    '--state-dir',
    path.join(tmp, 'state'),
    '--rules',
    opts.narrow ? 'no' : 'yes',
  ];
  // Builds with a control socket listen on /run/contid/control.sock by default: use a private one.
  const help = run(process.execPath, [cli, 'run', '--help'], { allowFail: true }).stdout;
  if (help.includes('--socket')) args.push('--socket', path.join(tmp, 'run', 'control.sock'));
  args.push(...opts.contidArgs);
  const t = spawnTracked(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const pid = t.child.pid;
  state.contidPids.push(pid);
  const consumer = {
    name,
    command: ['node', ...args.map((a) => (a.startsWith(tmp) ? a.replace(tmp, '<tmp>') : a))].join(' '),
    pids: () => [pid],
    logFiles: () => [hostLog],
    countFiles: () => [hostLog],
    stopped: null,
    async stop() {
      // --narrow: the script's rules go first; contid removes its own (checked later).
      const problems = deleteOurRules({ leftovers: false });
      const ok = await stopPid(pid, 'contid', 30000);
      await t.exit;
      const m = /Stopped: (\d+) records, (\d+) events, losses (\{[^}]*\})/.exec(t.stderr);
      this.stopped = {
        exit: t.exited,
        graceful: ok,
        records: m ? Number(m[1]) : null,
        events: m ? Number(m[2]) : null,
        losses: m ? JSON.parse(m[3]) : null,
        warnings: t.stderr.split('\n').filter((l) => / (warning|error): /.test(l)),
        problems,
      };
      return this.stopped;
    },
  };
  state.consumer = consumer;
  for (let waited = 0; !/: Started: /.test(t.stderr); waited += 100) {
    if (t.exited || waited > 30000) throw new Error(`contid did not start:\n${t.stderr}`);
    await sleep(100);
  }
  if (opts.narrow) addRules(benchRules(true), tmp);
  return consumer;
}

function writeAuditdConfig(dir, format, pluginsDir, logDir) {
  const keep = readFileSync('/etc/audit/auditd.conf', 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .filter(
      (l) =>
        !/^(log_file|plugin_dir|log_format|name_format|max_log_file|max_log_file_action|num_logs|log_group)\s*=/.test(
          l,
        ),
    );
  const conf = path.join(dir, 'auditd.conf');
  writeFileSync(
    conf,
    `${keep.join('\n')}
log_file = ${logDir}/audit.log
plugin_dir = ${pluginsDir}
log_format = ${format}
name_format = NONE
max_log_file = 4096
max_log_file_action = ROTATE
num_logs = 99
log_group = root
`,
    { mode: 0o640 },
  );
}

/** A plugin conf that starts /usr/sbin/laurel with a private config writing into `out`. */
function writeLaurelPlugin(tmp, pluginsDir) {
  const dir = path.join(tmp, 'laurel');
  mkdirSync(path.join(dir, 'out'), { recursive: true });
  const config = path.join(dir, 'config.toml');
  // The same enrichment as bench/run.mjs's Laurel; no `user` key: it stays root.
  writeFileSync(
    config,
    laurelConfig({
      directory: `${dir}/out`,
      statusreportPeriod: 0,
      auditlog: { file: 'audit.log', size: 4000000000, generations: 2 },
    }),
    { mode: 0o644 },
  );
  writeFileSync(
    path.join(pluginsDir, 'laurel.conf'),
    `active = yes
direction = out
type = always
format = string
path = /usr/sbin/laurel
args = --config ${config}
`,
    { mode: 0o640 },
  );
  return path.join(dir, 'out', 'audit.log');
}

async function startAuditd(tmp, opts, format, withLaurel) {
  const confDir = path.join(tmp, 'auditconf');
  const pluginsDir = path.join(confDir, 'plugins.d');
  const logDir = path.join(tmp, 'auditlog');
  mkdirSync(pluginsDir, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  writeAuditdConfig(confDir, format, pluginsDir, logDir);
  const laurelLog = withLaurel ? writeLaurelPlugin(tmp, pluginsDir) : null;
  const errFd = openSync(path.join(tmp, 'auditd.stderr'), 'w');
  const t = spawnTracked('/usr/sbin/auditd', ['-n', '-c', confDir], { stdio: ['ignore', errFd, errFd] });
  closeSync(errFd);
  const pid = t.child.pid;
  let laurelPid = null;
  const consumer = {
    name: withLaurel ? 'auditd+laurel' : `auditd-${format.toLowerCase()}`,
    command: `auditd -n -c <tmp>/auditconf (log_format ${format}${withLaurel ? ', plugin /usr/sbin/laurel' : ', no plugins'})`,
    pids: () => (laurelPid ? [pid, laurelPid] : [pid]),
    logFiles: () => [
      ...readdirSync(logDir)
        .filter((f) => f.startsWith('audit.log'))
        .map((f) => path.join(logDir, f)),
      ...(laurelLog ? [laurelLog] : []),
    ],
    // The last consumer's output: Laurel's when it runs, else auditd's log.
    countFiles: () => (laurelLog ? [laurelLog] : consumer.logFiles()),
    stopped: null,
    async stop() {
      // Rules go first: with no daemon, records would go to printk.
      const problems = deleteOurRules();
      const ok = await stopPid(pid, 'auditd', 30000);
      await t.exit;
      // auditd closes the plugin's stdin; Laurel flushes and exits.
      let laurelOk = true;
      if (laurelPid && !(await waitExit(laurelPid, 10000))) laurelOk = await stopPid(laurelPid, 'laurel');
      this.stopped = { exit: t.exited, graceful: ok && laurelOk, problems };
      return this.stopped;
    },
  };
  state.consumer = consumer;
  for (let waited = 0; auditStatus().pid !== pid; waited += 100) {
    if (t.exited || waited > 15000) {
      throw new Error(`auditd did not register: ${readFileSync(path.join(tmp, 'auditd.stderr'), 'utf8')}`);
    }
    await sleep(100);
  }
  if (withLaurel) {
    for (let waited = 0; laurelPid === null; waited += 100) {
      laurelPid = childrenOf(pid).find((c) => c.comm === 'laurel')?.pid ?? null;
      if (laurelPid === null && waited > 10000) throw new Error('auditd did not start the Laurel plugin');
      if (laurelPid === null) await sleep(100);
    }
  }
  run('auditctl', ['-b', String(BACKLOG_LIMIT)]);
  addRules(benchRules(opts.narrow), tmp);
  return consumer;
}

function startConsumer(config, tmp, opts) {
  if (config === 'contid' || config.startsWith('contid:')) return startContid(tmp, opts, config);
  switch (config) {
    case 'auditd-raw':
      return startAuditd(tmp, opts, 'RAW', false);
    case 'auditd-enriched':
      return startAuditd(tmp, opts, 'ENRICHED', false);
    case 'auditd+laurel':
      return startAuditd(tmp, opts, 'ENRICHED', true);
    default:
      throw new Error(`Unknown configuration '${config}'`);
  }
}

/** exec events of auid 4242 in the consumer's output: each should be one of the generator's execs. */
async function countExecs(files) {
  let n = 0;
  const text = /type=SYSCALL .*\bsyscall=59 .*\bauid=4242 /;
  const json = /"syscall":59,.*"auid":4242[,}]/;
  for (const file of files) {
    if (!existsSync(file)) continue;
    for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
      if (text.test(line) || json.test(line)) n++;
    }
  }
  return n;
}

// --- host-log latency ------------------------------------------------------------

/**
 * Tails `files()` every `everyMs` while the generator runs: each auid-4242
 * event's age when its line first shows in the consumer's output (now minus
 * its audit time, ms). Text lines carry `audit(SEC.MS:SERIAL)`, Laurel's
 * JSON `"ID":"SEC.MS:SERIAL"`. The poll interval bounds the resolution.
 */
function startLatencyProbe(files, everyMs = 10) {
  // Only what is written from now on.
  const offsets = new Map(files().map((f) => [f, existsSync(f) ? statSync(f).size : 0]));
  const partial = new Map();
  const ages = [];
  const stamp = /(?:audit\(|"ID":")(\d+)\.(\d{3}):\d+/;
  const ours = / auid=4242 |"auid":4242[,}]/;
  const poll = () => {
    const now = Date.now();
    for (const file of files()) {
      let fd;
      try {
        fd = openSync(file, 'r');
      } catch {
        continue;
      }
      try {
        const size = fstatSync(fd).size;
        const from = offsets.get(file) ?? 0;
        if (size <= from) continue;
        const buf = Buffer.alloc(size - from);
        const n = readSync(fd, buf, 0, buf.length, from);
        offsets.set(file, from + n);
        const text = (partial.get(file) ?? '') + buf.toString('latin1', 0, n);
        const lines = text.split('\n');
        partial.set(file, lines.pop());
        for (const line of lines) {
          if (!ours.test(line)) continue;
          const m = stamp.exec(line);
          if (m) ages.push(now - (Number(m[1]) * 1000 + Number(m[2])));
        }
      } finally {
        closeSync(fd);
      }
    }
  };
  const timer = setInterval(poll, everyMs);
  return {
    stop() {
      clearInterval(timer);
      poll();
      const sorted = ages.sort((a, b) => a - b);
      const at = (q) =>
        sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;
      return { lines: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? null };
    },
  };
}

// --- one point ---------------------------------------------------------------------

async function runGenerator(bin, rate, seconds, auid) {
  const t = spawnTracked(bin, [String(rate), String(seconds), auid]);
  state.generator = t;
  const exit = await t.exit;
  state.generator = null;
  if (exit.code !== 0) throw new Error(`generator failed (${JSON.stringify(exit)}): ${t.stderr.trim()}`);
  return JSON.parse(t.stdout);
}

/** Waits until the kernel backlog is empty and the consumer's CPU stops moving. */
async function settle(pids) {
  const start = Date.now();
  while (auditStatus().backlog > 0 && Date.now() - start < 60000 && !state.aborted) await sleep(100);
  let last = sumCpu(pids);
  for (let quiet = 0; quiet < 2 && Date.now() - start < 60000 && !state.aborted;) {
    await sleep(250);
    const now = sumCpu(pids);
    quiet = now - last <= 10 ? quiet + 1 : 0;
    last = now;
  }
}

async function measurePoint(config, rate, opts, bin, kauditd) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'contid-exec-cpu-'));
  const point = { config, rate, seconds: opts.seconds };
  try {
    const consumer = await startConsumer(config, tmp, opts);
    point.command = consumer.command;
    const pids = consumer.pids();
    await sleep(1000); // let start-up work (seeding, DAEMON_START, plugin start) finish
    // A daemon runs for months: warm it up (V8 compiles contid's hot paths
    // on the first records) so that the window measures the steady state.
    point.warmupExecs = 0;
    if (opts.warmup > 0) {
      point.warmupExecs = (await runGenerator(bin, WARMUP_RATE, opts.warmup, String(AUID))).execs;
      await settle(pids);
    }
    const idle0 = sumCpu(pids);
    const idleThreads0 = pids.map(threadCpu);
    await sleep(IDLE_SECONDS * 1000);
    point.idleThreads = pids.map((p, i) => threadRuns(p, idleThreads0[i], threadCpu(p)));
    point.idleTickCpuPct = ((sumCpu(pids) - idle0) / (IDLE_SECONDS * 1000)) * 100;
    point.idleCpuPct = (runMsOf(point.idleThreads) / (IDLE_SECONDS * 1000)) * 100;

    const s0 = auditStatus();
    const forks0 = forksSinceBoot();
    const cpu0 = pids.map(cpuMs);
    const threads0 = pids.map(threadCpu);
    const k0 = kauditd ? cpuMs(kauditd) : null;
    const t0 = process.hrtime.bigint();
    let maxBacklog = 0;
    let running = true;
    const poll = (async () => {
      while (running && !state.aborted) {
        maxBacklog = Math.max(maxBacklog, auditStatus().backlog ?? 0);
        await sleep(1000);
      }
    })();
    const probe = startLatencyProbe(() => consumer.countFiles());
    try {
      point.generator = await runGenerator(bin, rate, opts.seconds, String(AUID));
    } finally {
      running = false;
      await poll;
    }
    await settle(pids);
    point.latencyMs = probe.stop();
    const cpu1 = pids.map(cpuMs);
    const threads1 = pids.map(threadCpu);
    point.cpuByThread = pids.map((p, i) => threadDelta(p, threads0[i], threads1[i]));
    point.threads = pids.map((p, i) => threadRuns(p, threads0[i], threads1[i]));
    const windowMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const s1 = auditStatus();
    const forks = forksSinceBoot() - forks0;
    if (cpu1.some((c) => c === null)) point.warning = 'a consumer process exited during the window';
    const g = point.generator;
    // Time on the CPU from schedstat (ns, every thread that ran): the ticks
    // of utime+stime (10 ms) are too coarse for a few hundred execs.
    point.tickCpuMs = cpu1.reduce((s, c, i) => s + ((c ?? 0) - (cpu0[i] ?? 0)), 0);
    point.cpuMs = runMsOf(point.threads);
    point.cpuByProcess = Object.fromEntries(
      pids.map((p, i) => [procStat(p)?.comm ?? p, (cpu1[i] ?? 0) - cpu0[i]]),
    );
    point.windowMs = windowMs;
    point.achievedRate = g.execs / g.seconds;
    point.cpuPct = (point.cpuMs / (g.seconds * 1000)) * 100;
    point.cpuMsPer1000 = (point.cpuMs / g.execs) * 1000;
    point.kauditdCpuMs = k0 === null ? null : cpuMs(kauditd) - k0;
    point.kernelLost = s1.lost - s0.lost;
    point.maxBacklog = maxBacklog;
    point.otherForksPerSecond = Math.max(0, forks - g.execs) / (windowMs / 1000);
    point.stopped = await consumer.stop();
    state.consumer = null;
    // The warm-up's execs are in the same output.
    point.execsSeen = (await countExecs(consumer.countFiles())) - point.warmupExecs;
    point.logBytes = consumer.logFiles().reduce((s, f) => s + (existsSync(f) ? statSync(f).size : 0), 0);
    if (isContid(config)) {
      point.enobufs = point.stopped.losses?.enobufs ?? null;
      point.serialGaps = point.stopped.losses?.serialGaps ?? null;
    }
  } finally {
    if (state.consumer) {
      point.stopped ??= await state.consumer.stop().catch((err) => ({ error: err.message }));
      state.consumer = null;
    }
    const problems = deleteOurRules();
    if (problems.length) point.problems = problems;
    rmSync(tmp, { recursive: true, force: true });
  }
  return point;
}

/** The generator with audit off: what the machine itself can do at this rate. */
async function generatorAlone(bin, rate, seconds) {
  const s = auditStatus();
  if (s.enabled !== 0 || s.pid !== 0) return null;
  return runGenerator(bin, rate, seconds, String(AUID));
}

const isContid = (config) => config === 'contid' || config.startsWith('contid:');

const sustained = (p) =>
  p.kernelLost === 0 && !p.enobufs && p.achievedRate >= REACHED * p.rate && p.execsSeen === p.generator.execs;

function describe(p) {
  return (
    `${p.config} @${rateName(p.rate)}/s: ${Math.round(p.achievedRate)} exec/s, CPU ${p.cpuPct.toFixed(1)}% ` +
    `(${p.cpuMsPer1000.toFixed(0)} ms/1000 execs, idle ${p.idleCpuPct.toFixed(1)}%), lost ${p.kernelLost}, ` +
    `latency p50/p99/max ${p.latencyMs.p50}/${p.latencyMs.p99}/${p.latencyMs.max} ms, ` +
    (p.serialGaps === undefined ? '' : `serial gaps ${p.serialGaps}, `) +
    `max backlog ${p.maxBacklog}, seen ${p.execsSeen}/${p.generator.execs}, ` +
    `other forks ${p.otherForksPerSecond.toFixed(0)}/s`
  );
}

// --- lock, snapshot, restore -----------------------------------------------------------

async function restoreAll(saved) {
  const problems = [];
  if (state.generator) {
    try {
      process.kill(state.generator.child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await state.generator.exit;
  }
  if (state.consumer) {
    const s = await state.consumer.stop().catch((err) => ({ error: err.message }));
    if (s.error) problems.push(`stopping ${state.consumer.name}: ${s.error}`);
    state.consumer = null;
  }
  problems.push(...deleteOurRules());
  restoreSettings(saved);
  const now = auditStatus();
  for (const k of ['enabled', 'pid', 'backlog_limit']) {
    if (now[k] !== saved[k]) problems.push(`auditctl -s shows ${k} ${now[k]}, was ${saved[k]}`);
  }
  const rules = auditRules();
  if (rules.join('\n') !== saved.rules.join('\n')) {
    problems.push(`auditctl -l differs from the start:\n  ${rules.join('\n  ')}`);
  }
  return { problems, status: now, rules };
}

// --- main ------------------------------------------------------------------------------

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
  if (process.getuid() !== 0) {
    console.error('Must run as root: it starts audit daemons and loads audit rules.');
    return 1;
  }
  const missing = [];
  for (const [bin, pkg] of [
    ['/usr/sbin/auditctl', 'auditd'],
    ['/usr/sbin/auditd', 'auditd'],
    ['/usr/bin/gcc', 'gcc'],
    ['/usr/bin/flock', 'util-linux'],
  ]) {
    if (!existsSync(bin)) missing.push(`${bin} (apt-get install ${pkg})`);
  }
  if (opts.configs.includes('auditd+laurel') && !existsSync('/usr/sbin/laurel')) {
    missing.push('/usr/sbin/laurel (apt-get install laurel)');
  }
  for (const cli of Object.values(opts.builds)) {
    if (!existsSync(cli)) missing.push(`${path.relative(ROOT, cli)} (npm run build)`);
  }
  if (missing.length) {
    console.error(`Missing ${missing.join(', ')}`);
    return 1;
  }
  if (run('getconf', ['CLK_TCK']).stdout.trim() !== String(CLK_TCK)) {
    console.error('CLK_TCK is not 100');
    return 1;
  }

  console.log(`taking ${LOCK} (waits up to ${opts.lockWait} s)`);
  const releaseLock = await takeLock(opts.lockWait);
  const onSignal = (sig) => {
    if (state.aborted) return;
    console.error(`\n${sig}: stopping and restoring the audit state`);
    state.aborted = true;
    if (state.generator) {
      try {
        process.kill(state.generator.child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, onSignal);

  const s = auditStatus();
  const saved = {
    enabled: s.enabled,
    pid: s.pid,
    backlog_limit: s.backlog_limit,
    lost: s.lost,
    rules: auditRules(),
  };
  const points = [];
  const search = [];
  const baselines = [];
  let restored = null;
  let summary = null;
  let fatal = null;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'contid-exec-cpu-gen-'));
  try {
    if (s.pid !== 0) throw new Error(`an audit daemon (pid ${s.pid}) is registered; stop it first`);
    if (s.enabled === 2) throw new Error('the audit configuration is locked (enabled 2)');
    console.log(
      `audit state: enabled ${s.enabled}, pid ${s.pid}, backlog_limit ${s.backlog_limit}, lost ${s.lost}, ` +
        `rules: ${saved.rules.join('; ')}`,
    );
    const bin = buildGenerator(tmp);
    const kauditd = findKauditd();

    for (let rep = 1; rep <= opts.reps && !state.aborted; rep++) {
      for (const rate of opts.rates) {
        for (const config of opts.configs) {
          if (state.aborted) break;
          const p = await measurePoint(config, rate, opts, bin, kauditd);
          p.rep = rep;
          restoreSettings(saved);
          points.push(p);
          console.log(`run ${rep}: ${describe(p)}`);
        }
      }
    }

    // contid's zero-loss search, upwards from the table's rates.
    const searched = Object.keys(opts.builds)[0];
    const contidOk = points.filter((p) => p.config === searched && sustained(p)).map((p) => p.rate);
    for (const rate of opts.search) {
      if (state.aborted) break;
      const p = await measurePoint(searched, rate, opts, bin, kauditd);
      restoreSettings(saved);
      search.push(p);
      console.log(`search: ${describe(p)}`);
      if (sustained(p)) continue;
      p.failedBecause = [
        p.kernelLost > 0 ? `kernel lost ${p.kernelLost}` : null,
        p.enobufs ? `ENOBUFS ${p.enobufs}` : null,
        p.achievedRate < REACHED * rate ? `the loop reached ${Math.round(p.achievedRate)}/s` : null,
        p.execsSeen !== p.generator.execs ? `contid saw ${p.execsSeen} of ${p.generator.execs} execs` : null,
      ].filter(Boolean);
      if (p.achievedRate < REACHED * rate && !state.aborted) {
        const g = await generatorAlone(bin, rate, opts.seconds);
        if (g) {
          const b = { rate, achievedRate: g.execs / g.seconds, generator: g };
          baselines.push(b);
          console.log(`generator alone, audit off @${rate}/s: ${Math.round(b.achievedRate)} exec/s`);
        }
      }
      break;
    }
    const best = Math.max(0, ...contidOk, ...search.filter(sustained).map((p) => p.rate));
    const failedAt = search.find((p) => !sustained(p)) ?? null;
    summary = {
      highestSustained: best,
      failedAt: failedAt && { rate: failedAt.rate, because: failedAt.failedBecause },
    };
  } catch (err) {
    fatal = state.aborted ? 'interrupted' : err.message;
    console.error(`stopped early: ${fatal}`);
  } finally {
    restored = await restoreAll(saved);
    releaseLock();
    rmSync(tmp, { recursive: true, force: true });
    console.log(
      `restored: enabled ${restored.status.enabled}, pid ${restored.status.pid}, backlog_limit ` +
        `${restored.status.backlog_limit}; rules: ${restored.rules.join('; ')}`,
    );
    for (const p of restored.problems) console.error(`restore problem: ${p}`);
  }

  // --- report -----------------------------------------------------------------------
  const rows = [
    [
      'rate',
      'configuration',
      'run',
      'exec/s',
      'CPU %',
      'ms/1000 execs',
      'idle %',
      'lost',
      'gaps',
      'max backlog',
      'seen',
      'latency p99/max ms',
      'other forks/s',
    ],
  ];
  for (const p of [...points, ...search.map((p) => ({ ...p, rep: 'search' }))]) {
    rows.push([
      rateName(p.rate),
      p.config,
      p.rep,
      Math.round(p.achievedRate),
      p.cpuPct.toFixed(1),
      p.cpuMsPer1000.toFixed(1),
      p.idleCpuPct.toFixed(1),
      p.kernelLost,
      p.serialGaps ?? '-',
      p.maxBacklog,
      `${p.execsSeen}/${p.generator.execs}`,
      `${p.latencyMs.p99}/${p.latencyMs.max}`,
      Math.round(p.otherForksPerSecond),
    ]);
  }
  console.log(`\n${table(rows)}`);

  const means = {};
  for (const p of points) {
    const k = `${p.rate} ${p.config}`;
    (means[k] ??= { rate: p.rate, config: p.config, cpuPct: [], cpuMsPer1000: [] }).cpuPct.push(p.cpuPct);
    means[k].cpuMsPer1000.push(p.cpuMsPer1000);
  }
  const ratios = [];
  const range = (xs) => `${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}`;
  console.log('');
  for (const m of Object.values(means)) {
    console.log(
      `@${rateName(m.rate)}/s ${m.config}: ms/1000 execs ${range(m.cpuMsPer1000)} (mean ${mean(m.cpuMsPer1000).toFixed(0)})`,
    );
  }
  for (const rate of opts.rates) {
    for (const build of Object.keys(opts.builds)) {
      const c = means[`${rate} ${build}`];
      if (!c) continue;
      for (const other of ['auditd+laurel', 'auditd-enriched', 'auditd-raw']) {
        const o = means[`${rate} ${other}`];
        if (!o) continue;
        ratios.push({ rate, of: `${build}/${other}`, cpu: mean(c.cpuMsPer1000) / mean(o.cpuMsPer1000) });
      }
    }
  }
  if (ratios.length) {
    console.log('');
    for (const r of ratios) console.log(`@${rateName(r.rate)}/s ${r.of}: CPU x${r.cpu.toFixed(2)}`);
  }
  if (summary) {
    console.log(
      `\ncontid, highest rate with zero loss that the loop reached: ${summary.highestSustained}/s` +
        (summary.failedAt ? `; at ${summary.failedAt.rate}/s: ${summary.failedAt.because.join(', ')}` : ''),
    );
  }

  const report = {
    date: new Date().toISOString(),
    machine: {
      nproc: os.availableParallelism(),
      cpu: os.cpus()[0]?.model ?? null,
      memoryBytes: os.totalmem(),
      node: process.version,
      kernel: os.release(),
      loadavg: os.loadavg(),
    },
    versions: {
      contid: JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version,
      auditd: run('auditctl', ['-v'], { allowFail: true }).stdout.trim(),
      laurel: existsSync('/usr/sbin/laurel')
        ? run('/usr/sbin/laurel', ['-v'], { allowFail: true }).stdout.trim()
        : null,
    },
    options: { ...opts, help: undefined },
    rules: benchRules(opts.narrow),
    points,
    search,
    generatorAlone: baselines,
    ratios,
    summary,
    error: fatal,
    restored,
  };
  mkdirSync(path.dirname(RESULTS), { recursive: true });
  writeFileSync(RESULTS, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), RESULTS)}`);
  return restored.problems.length || fatal ? 1 : 0;
}

process.exitCode = await main();
