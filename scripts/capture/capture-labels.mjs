#!/usr/bin/env node
/**
 * Captures REAL audit logs from this machine's kernel, with authentic contid
 * markers, as conformance fixtures for the label logic (issue 3):
 * testdata/captures/<scenario>.log, .keyring and .expect.json, replayed by
 * test/captures.test.ts.
 *
 * Usage (root; needs gcc, auditd, crun and busybox-static):
 *
 *     npm run build
 *     node scripts/capture/capture-labels.mjs [scenario ...]   # default: all
 *
 * Scenarios: a-fork-tree, b-threads, c-vfork, d-refusals, e-crun.
 *
 * What it does, holding /run/contid-audit-test.lock (kernel audit is shared
 * machine state) through test/support/audit-state's withAuditState, which
 * snapshots status and rules first and restores them afterwards (also on
 * error; it never sets -e 2 or -f 2):
 *
 * - compiles the helpers in scripts/capture/helpers/ into /tmp/contid-capture
 *   (a fixed path, so that the logs name stable paths);
 * - per scenario: starts `auditd -n -c DIR` with a PRIVATE config (a copy of
 *   /etc/audit/auditd.conf with log_file in the work dir, an EMPTY plugin_dir
 *   so laurel is not started, log_format RAW, name_format NONE), backlog 8192,
 *   the narrow rules `-S clone,fork,vfork,clone3,execve,exit_group,kill
 *   -F auid=4242 -k contid-fixture` for b64 and b32;
 * - runs the scenario under loginuid 4242, and acts as the contid daemon:
 *   THIS process sends the markers (type 2942, encodeMarker with the
 *   scenario's fixed secret: a start marker naming its own pid, the
 *   operations, a stop marker), and writes the keyring line with its pid;
 * - waits for the stop marker in the log, stops auditd by its pid, copies
 *   the log, and writes the expectations. They come from the scenario's
 *   intent (docs/design.md), never from the labeller's output.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (p) => new URL(`file://${join(ROOT, 'dist', p)}`).href;
const { encodeMarker, MARKER_TYPE } = await import(dist('src/marker/format.js'));
const { formatKeyringEntry } = await import(dist('src/marker/keyring.js'));
const { readProcFacts, pidInParentNamespace } = await import(dist('src/daemon/proc-seed.js'));
const { withAuditState, spawnWithLoginuid, TEST_LOGINUID } = await import(
  dist('test/support/audit-state.js')
);

const OUT = join(ROOT, 'testdata', 'captures');
const WORK = '/tmp/contid-capture';
const BIN = join(WORK, 'bin');
const HELPERS = join(ROOT, 'scripts', 'capture', 'helpers');
const KEY = 'contid-fixture';
const SCENARIOS = ['a-fork-tree', 'b-threads', 'c-vfork', 'd-refusals', 'e-crun'];

if (process.getuid() !== 0) {
  console.error('capture-labels: run as root');
  process.exit(2);
}
const wanted = process.argv.slice(2);
for (const name of wanted) if (!SCENARIOS.includes(name)) throw new Error(`Unknown scenario ${name}`);

function sh(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout || r.error}`);
  return r.stdout;
}

/** Process facts from /proc, as the daemon would read them. */
function ppidOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}
function exeOf(pid) {
  return readlinkSync(`/proc/${pid}/exe`);
}
function uidOf(pid) {
  const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}
function loginuidOf(pid) {
  return Number(readFileSync(`/proc/${pid}/loginuid`, 'utf8'));
}

async function waitFor(what, check, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(20);
  }
}
const waitPidFile = (path) =>
  waitFor(path, () => {
    if (!existsSync(path)) return undefined;
    const t = readFileSync(path, 'utf8').trim();
    return /^\d+$/.test(t) ? Number(t) : undefined;
  });

/** Writes to a fifo without blocking the event loop (the reader is already waiting). */
function release(fifo) {
  sh('/bin/sh', ['-c', 'echo go > "$1"', 'sh', fifo]);
}

function prepareBin() {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(BIN, { recursive: true });
  for (const p of ['fx-threads', 'fx-vfork', 'fx-dfork'])
    sh('gcc', ['-O2', '-Wall', '-pthread', '-o', join(BIN, p), join(HELPERS, `${p}.c`)]);
  sh('gcc', ['-O2', '-Wall', '-static', '-o', join(BIN, 'fx-forge'), join(HELPERS, 'fx-forge.c')]);
  // Named copies, so that comm= and exe= say what role a process plays.
  const copies = {
    '/bin/dash': [
      'fx-target',
      'fx-chain1',
      'fx-chain2',
      'fx-mid',
      'fx-busy',
      'fx-twice',
      'fx-self',
      'fx-eperm',
      'fx-notuniq',
      'fx-inject',
      'fx-inval',
      'fx-unpriv',
    ],
    '/bin/true': [
      'fx-storm',
      'fx-chain3',
      'fx-orphan',
      'fx-late-orphan',
      'fx-host',
      'fx-host-late',
      'fx-tchild',
      'fx-spawned',
      'fx-vchild1',
      'fx-vchild2',
      'fx-vchild3',
      'fx-gone',
      'fx-after',
    ],
    '/bin/sleep': ['fx-bg', 'fx-sleep', 'fx-wait', 'fx-busy-child', 'fx-orch2', 'fx-hpoll'],
  };
  for (const [from, names] of Object.entries(copies))
    for (const name of names) copyFileSync(from, join(BIN, name));
  sh('chmod', ['-R', 'a+rx', WORK]);
}

function auditConf(dir, logFile) {
  const plugins = join(dir, 'plugins.d');
  mkdirSync(plugins, { recursive: true });
  const lines = readFileSync('/etc/audit/auditd.conf', 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .filter(
      (l) => !/^\s*(log_file|plugin_dir|log_format|name_format|flush|freq|max_log_file_action)\s*=/.test(l),
    );
  lines.push(
    `log_file = ${logFile}`,
    `plugin_dir = ${plugins}`,
    'log_format = RAW',
    'name_format = NONE',
    'flush = INCREMENTAL_ASYNC',
    'freq = 1',
    'max_log_file_action = IGNORE',
  );
  writeFileSync(join(dir, 'auditd.conf'), lines.join('\n') + '\n', { mode: 0o640 });
  chmodSync(join(dir, 'auditd.conf'), 0o640);
}

const RULES = ['b64', 'b32'].map((arch) => [
  '-a',
  'always,exit',
  '-F',
  `arch=${arch}`,
  '-S',
  'clone,fork,vfork,clone3,execve,exit_group,kill',
  '-F',
  `auid=${TEST_LOGINUID}`,
  '-k',
  KEY,
]);

/** The daemon side: markers from this very process, with the scenario's fixed secret. */
class Daemon {
  constructor(netlink, scenario) {
    this.netlink = netlink;
    this.start = `fixture-${scenario}`;
    this.secret = createHash('sha256').update(`contid capture fixture ${scenario}`).digest();
    this.seq = 0;
    this.sent = [];
  }
  keyring() {
    return (
      '# contid keyring v1: <start-id> <daemon-pid|-> <secret hex>\n' +
      formatKeyringEntry({ startId: this.start, daemonPid: process.pid, secret: this.secret }) +
      '\n'
    );
  }
  send(body) {
    const marker = { start: this.start, seq: ++this.seq, body };
    const text = encodeMarker(marker, this.secret);
    this.netlink.sendUserMessage(MARKER_TYPE, text);
    this.sent.push({ seq: marker.seq, text });
    return { seq: marker.seq, text };
  }
  /** The capture script as the orchestrator: root, privileged. */
  static self() {
    return {
      pid: process.pid,
      uid: 0,
      auid: loginuidOf(process.pid),
      exe: exeOf(process.pid),
      privileged: true,
      ppid: process.ppid,
    };
  }
  static callerOf(pid, privileged) {
    return { pid, uid: uidOf(pid), auid: loginuidOf(pid), exe: exeOf(pid), privileged, ppid: ppidOf(pid) };
  }
  set(pid, contid, caller = Daemon.self(), ppid = ppidOf(pid)) {
    this.place(pid);
    return this.send({ op: 'set', pid, ...(ppid === null ? {} : { ppid }), contid, caller });
  }
  /**
   * As the daemon does before an operation: what /proc shows of the
   * target's ancestors (up to the boot-time pids) goes into the stream
   * first, as proc markers, top down, so the target's container is known.
   */
  place(pid) {
    const chain = [];
    for (let f = readProcFacts(pid); f !== null && chain.length < 64; f = readProcFacts(f.ppid)) {
      chain.push(f);
      if (f.ppid < 300) break;
    }
    // chain[0] is the target (the set places it by its ppid); its ancestors, top down.
    for (let i = chain.length - 1; i >= 1; i--) {
      const p = chain[i];
      const parent = chain[i + 1] ?? readProcFacts(p.ppid);
      const nspid = parent === null ? p.pid : pidInParentNamespace(p, parent);
      this.send({ op: 'proc', pid: p.pid, ppid: p.ppid, start: p.startTime, nspid });
    }
  }
}

/** Runs a scenario script (POSIX sh) under loginuid 4242; resolves when it exits. */
function runScenarioShell(dir, script, env = {}) {
  const path = join(dir, 'scenario.sh');
  writeFileSync(path, script, { mode: 0o755 });
  const child = spawnWithLoginuid(TEST_LOGINUID, ['/bin/sh', path], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, BIN, DIR: dir, ...env },
  });
  const done = new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`scenario shell exited ${code ?? signal}`)),
    );
  });
  return { child, done };
}

function fifo(path) {
  sh('mkfifo', [path]);
  return path;
}

// ---------------------------------------------------------------- scenarios
// Each returns { description, processes, ops, forgeries } (the expectations).

const HOST_SH = { comm: 'sh', exe: '/usr/bin/dash', contid: null, role: 'scenario root shell (host)' };

async function scenarioA(d, dir) {
  fifo(join(dir, 'a.fifo'));
  const { done } = runScenarioShell(
    dir,
    `#!/bin/sh
# R (host): starts the target, then a host sibling while the target runs.
$BIN/fx-target -c '
  echo $$ > $DIR/a.pid
  read go < $DIR/a.fifo
  i=0; while [ $i -lt 40 ]; do $BIN/fx-storm & i=$((i+1)); done; wait
  $BIN/fx-chain1 -c "exec $BIN/fx-chain2 -c \\"exec $BIN/fx-chain3\\""
  $BIN/fx-bg 0.2 &
  $BIN/fx-mid -c "( $BIN/fx-sleep 0.3; $BIN/fx-orphan ) & exec $BIN/fx-wait 0.1"
  $BIN/fx-dfork $BIN/fx-late-orphan
  wait
  $BIN/fx-sleep 0.6
' &
while [ ! -s $DIR/a.go ]; do $BIN/fx-host; $BIN/fx-hpoll 0.05; done
wait
$BIN/fx-host-late
`,
  );
  const target = await waitPidFile(join(dir, 'a.pid'));
  const set = d.set(target, '100');
  release(join(dir, 'a.fifo'));
  writeFileSync(join(dir, 'a.go'), 'x');
  await done;
  return {
    description:
      'A host shell starts fx-target, a fresh dash waiting on a fifo with no children; the daemon sets 100 on it, ' +
      'then it runs a fork storm (40 fx-storm), an exec chain (fx-chain1 -> fx-chain2 -> fx-chain3 in one pid), a ' +
      'background job (fx-bg), a middle process (fx-mid) whose subshell outlives it and is reparented to init before ' +
      'forking fx-sleep/fx-orphan, and a double fork (fx-dfork) whose grandchild fx-late-orphan makes its first ' +
      'audited syscall only after its parent exited (its records show ppid=1). Host processes (the scenario shell, ' +
      'fx-host, fx-host-late) keep running around it and stay unset.',
    processes: [
      { pid: target, role: 'set target', beforeMarker: set.seq, contid: '100' },
      ...[
        'fx-target',
        'fx-storm',
        'fx-chain1',
        'fx-chain2',
        'fx-chain3',
        'fx-bg',
        'fx-mid',
        'fx-sleep',
        'fx-wait',
        'fx-orphan',
        'fx-dfork',
        'fx-late-orphan',
      ].map((comm) => ({ comm, contid: '100', role: 'in container 100' })),
      HOST_SH,
      { comm: 'fx-host', contid: null, role: 'host sibling' },
      { comm: 'fx-host-late', contid: null, role: 'host, after the container ended' },
      { comm: 'fx-hpoll', contid: null, role: 'host poll' },
    ],
    ops: [
      {
        op: 'set',
        opid: target,
        contid: '100',
        oldContid: '-1',
        result: 'accepted',
        errno: null,
        seq: set.seq,
      },
      { op: 'drop', oldContid: '100', result: 'accepted', errno: null },
    ],
    forgeries: [],
  };
}

async function helperScenario(d, dir, program, contid) {
  fifo(join(dir, 'x.fifo'));
  const { done } = runScenarioShell(
    dir,
    `#!/bin/sh
$BIN/fx-host
$BIN/${program} $BIN $DIR/x.fifo $DIR/x.pid &
while [ ! -s $DIR/x.go ]; do $BIN/fx-hpoll 0.05; done
$BIN/fx-host
wait
$BIN/fx-host-late
`,
  );
  const target = await waitPidFile(join(dir, 'x.pid'));
  const set = d.set(target, contid);
  release(join(dir, 'x.fifo'));
  writeFileSync(join(dir, 'x.go'), 'x');
  await done;
  return { target, set };
}

async function scenarioB(d, dir) {
  const { target, set } = await helperScenario(d, dir, 'fx-threads', '200');
  return {
    description:
      'fx-threads (a fresh C process waiting on a fifo) is set to 200, then makes 3 threads with pthread_create ' +
      '(clone3) that each call kill(getpid(),0), one of which forks fx-tchild; then a raw clone(CLONE_THREAD) thread; ' +
      'then posix_spawn (clone3) of fx-spawned. Every event of the process, its threads (pid= is the tgid) and its ' +
      'children is in 200; the host shell and fx-host are unset.',
    processes: [
      { pid: target, role: 'set target', beforeMarker: set.seq, contid: '200' },
      ...['fx-threads', 'fx-tchild', 'fx-spawned'].map((comm) => ({
        comm,
        contid: '200',
        role: 'in container 200',
      })),
      HOST_SH,
      { comm: 'fx-host', contid: null, role: 'host' },
      { comm: 'fx-host-late', contid: null, role: 'host' },
      { comm: 'fx-hpoll', contid: null, role: 'host poll' },
    ],
    ops: [
      {
        op: 'set',
        opid: target,
        contid: '200',
        oldContid: '-1',
        result: 'accepted',
        errno: null,
        seq: set.seq,
      },
      { op: 'drop', oldContid: '200', result: 'accepted', errno: null },
    ],
    forgeries: [],
  };
}

async function scenarioC(d, dir) {
  const { target, set } = await helperScenario(d, dir, 'fx-vfork', '300');
  return {
    description:
      'fx-vfork (fresh, waiting on a fifo) is set to 300, then: vfork + exec fx-vchild1 (syscall 58), vfork + _exit ' +
      'without exec (an exit_group by the vfork child, comm fx-vfork), raw fork (syscall 57) + exec fx-vchild2, ' +
      'posix_spawn (clone3 CLONE_VM|CLONE_VFORK) of fx-vchild3. All of them are in 300; the host is unset.',
    processes: [
      { pid: target, role: 'set target', beforeMarker: set.seq, contid: '300' },
      ...['fx-vfork', 'fx-vchild1', 'fx-vchild2', 'fx-vchild3'].map((comm) => ({
        comm,
        contid: '300',
        role: 'in container 300',
      })),
      HOST_SH,
      { comm: 'fx-host', contid: null, role: 'host' },
      { comm: 'fx-host-late', contid: null, role: 'host' },
      { comm: 'fx-hpoll', contid: null, role: 'host poll' },
    ],
    ops: [
      {
        op: 'set',
        opid: target,
        contid: '300',
        oldContid: '-1',
        result: 'accepted',
        errno: null,
        seq: set.seq,
      },
      { op: 'drop', oldContid: '300', result: 'accepted', errno: null },
    ],
    forgeries: [],
  };
}

async function scenarioD(d, dir) {
  const names = ['busy', 'twice', 'self', 'eperm', 'notuniq', 'inject', 'inval'];
  for (const n of [...names, 'unpriv']) fifo(join(dir, `${n}.fifo`));
  chmodSync(join(dir, 'unpriv.fifo'), 0o666);
  // Each target writes its pid, waits for its fifo, then runs fx-after twice
  // (fx-busy starts a long-lived child first).
  const target = (n, extra = '') =>
    `$BIN/fx-${n} -c 'echo $$ > $DIR/${n}.pid; ${extra} read go < $DIR/${n}.fifo; $BIN/fx-after; $BIN/fx-after' &\n`;
  const { done } = runScenarioShell(
    dir,
    `#!/bin/sh
$BIN/fx-gone & echo $! > $DIR/gone.pid; wait $!; echo done > $DIR/gone.ok
${target('busy', '$BIN/fx-busy-child 30 & echo $! > $DIR/busy-child.pid;')}${names
      .slice(1)
      .map((n) => target(n))
      .join('')}
setpriv --reuid=65534 --regid=65534 --clear-groups $BIN/fx-unpriv -c 'read go < $DIR/unpriv.fifo' &
echo $! > $DIR/unpriv.pid
$BIN/fx-orch2 30 & echo $! > $DIR/orch2.pid
while [ ! -s $DIR/x.go ]; do $BIN/fx-hpoll 0.05; done
kill $(cat $DIR/busy-child.pid) $(cat $DIR/orch2.pid)
wait
`,
  );
  await waitFor('fx-gone', () => existsSync(join(dir, 'gone.ok')));
  const pids = {};
  for (const n of [...names, 'unpriv', 'busy-child', 'orch2', 'gone'])
    pids[n] = await waitPidFile(join(dir, `${n}.pid`));
  await waitFor('fx-unpriv exec', () => exeOf(pids.unpriv).endsWith('/fx-unpriv'));
  await waitFor('fx-orch2 exec', () => exeOf(pids.orch2).endsWith('/fx-orch2'));
  await waitFor('fx-busy-child exec', () => exeOf(pids['busy-child']).endsWith('/fx-busy-child'));
  const ops = [];
  const want = (m, op) => {
    ops.push({ ...op, seq: m.seq });
    return m;
  };
  const refused = (opid, contid, errno, oldContid = '-1') => ({
    op: 'set',
    opid,
    contid,
    oldContid,
    result: 'refused',
    errno,
  });
  const accepted = (opid, contid) => ({
    op: 'set',
    opid,
    contid,
    oldContid: '-1',
    result: 'accepted',
    errno: null,
  });
  want(d.set(pids.busy, '400'), refused(pids.busy, '400', 'EBUSY'));
  const setTwice = want(d.set(pids.twice, '400'), accepted(pids.twice, '400'));
  want(d.set(pids.twice, '401'), refused(pids.twice, '401', 'EEXIST', '400'));
  want(d.set(pids.twice, '400'), refused(pids.twice, '400', 'EEXIST', '400'));
  want(d.set(pids.self, '402', Daemon.callerOf(pids.self, true)), refused(pids.self, '402', 'EXDEV'));
  want(d.set(pids.eperm, '403', Daemon.callerOf(pids.unpriv, false)), refused(pids.eperm, '403', 'EPERM'));
  want(
    d.set(pids.notuniq, '400', Daemon.callerOf(pids.orch2, true)),
    refused(pids.notuniq, '400', 'ENOTUNIQ'),
  );
  const setInject = want(d.set(pids.inject, '400'), accepted(pids.inject, '400'));
  want(d.set(pids.gone, '404', Daemon.self(), null), refused(pids.gone, '404', 'ESRCH'));
  want(d.set(pids.inval, '18446744073709551615'), refused(pids.inval, '-1', 'EINVAL'));
  for (const n of [...names, 'unpriv']) release(join(dir, `${n}.fifo`));
  writeFileSync(join(dir, 'x.go'), 'x');
  await done;
  ops.push({ op: 'drop', oldContid: '400', result: 'accepted', errno: null });
  return {
    description:
      'Refusals, each target a fresh dash waiting on a fifo (alive, known, no children unless said): fx-busy has a ' +
      'live child fx-busy-child (EBUSY); fx-twice is set to 400 (accepted), then to 401 and to 400 again (EEXIST ' +
      'both); fx-self asks for itself (caller = target: EXDEV); fx-eperm is asked for by fx-unpriv, uid 65534, ' +
      'privileged=0 (EPERM); fx-notuniq asks for live 400 on behalf of another orchestrator, fx-orch2 (ENOTUNIQ); ' +
      'fx-inject gets 400 from its owner (injection, accepted); fx-gone has exited (ESRCH); fx-inval asks for the ' +
      'unset value (EINVAL). Each waiting target then runs fx-after twice: in 400 for fx-twice and fx-inject, unset ' +
      'for the others. The last exit of 400 drops it.',
    processes: [
      { pid: pids.twice, role: 'set target (accepted)', beforeMarker: setTwice.seq, contid: '400' },
      { pid: pids.inject, role: 'injection target', beforeMarker: setInject.seq, contid: '400' },
      { comm: 'fx-after', ppid: pids.twice, contid: '400', role: 'child of fx-twice' },
      { comm: 'fx-after', ppid: pids.inject, contid: '400', role: 'child of fx-inject' },
      { comm: 'fx-after', contid: null, role: 'child of a refused target' },
      ...[
        'fx-busy',
        'fx-busy-child',
        'fx-self',
        'fx-eperm',
        'fx-notuniq',
        'fx-inval',
        'fx-unpriv',
        'fx-orch2',
        'fx-gone',
        'fx-hpoll',
        'setpriv',
        'cat',
      ].map((comm) => ({ comm, contid: null, role: 'unset' })),
      HOST_SH,
    ],
    ops,
    forgeries: [],
  };
}

async function scenarioE(d, dir) {
  const bundle = join(dir, 'bundle');
  const rootfs = join(bundle, 'rootfs');
  for (const sub of ['bin', 'proc', 'sys', 'dev', 'etc', 'tmp', 'forge'])
    mkdirSync(join(rootfs, sub), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  for (const a of ['sh', 'echo', 'cat', 'sleep', 'ls', 'true'])
    symlinkSync('busybox', join(rootfs, 'bin', a));
  copyFileSync(join(BIN, 'fx-forge'), join(rootfs, 'bin', 'fx-forge'));
  sh('chmod', ['-R', 'a+rx', bundle]);
  sh('crun', ['spec'], { cwd: bundle });
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  config.process.terminal = false;
  config.process.args = [
    '/bin/sh',
    '-c',
    'ls / >/dev/null; sleep 0.1 & wait; /bin/sh -c "ls /forge >/dev/null; true"; ' +
      '/bin/fx-forge 2942 /forge/copy.txt; /bin/fx-forge 2942 /forge/edit.txt; /bin/fx-forge 1005 /forge/copy.txt; ' +
      'ls /bin >/dev/null; echo container-done',
  ];
  const hook = join(dir, 'hook.sh');
  writeFileSync(
    hook,
    `#!/bin/sh\ncat > ${dir}/state.json\necho $$ > ${dir}/hook.pid\nread go < ${dir}/hook.fifo\n`,
    { mode: 0o755 },
  );
  fifo(join(dir, 'hook.fifo'));
  config.hooks = { createRuntime: [{ path: hook, args: ['hook.sh', 'createRuntime'] }] };
  config.annotations = { 'org.contid.contid': '42' };
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config, null, 2));
  const { done } = runScenarioShell(
    dir,
    `#!/bin/sh
cd $DIR/bundle
unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified; crun --cgroup-manager=disabled run fixture-e'
$BIN/fx-host-late
`,
  );
  const hookPid = await waitPidFile(join(dir, 'hook.pid'));
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
  const init = state.pid;
  const set = d.set(init, '42', Daemon.callerOf(hookPid, true));
  // The forger inside the container gets a verbatim copy of the genuine
  // marker and an edited one (another contid, same MAC).
  writeFileSync(join(rootfs, 'forge', 'copy.txt'), set.text);
  writeFileSync(join(rootfs, 'forge', 'edit.txt'), set.text.replace(' contid=42 ', ' contid=666 '));
  release(join(dir, 'hook.fifo'));
  await done;
  return {
    description:
      'crun (busybox rootfs, --cgroup-manager=disabled in a private mount ns) runs a container whose createRuntime ' +
      'hook (host, dash) reports the state and waits; the daemon sets 42 on the container init (host pid from the ' +
      'state, still comm=crun) on behalf of the hook before it execs. The container (busybox sh, ls, sleep, a nested ' +
      'sh) forks with namespace-relative clone exit= values. Inside it, fx-forge (static) sends the genuine marker ' +
      'text verbatim (type 2942), an edited copy (contid=666, type 2942), and the verbatim text as type 1005: three ' +
      'forgeries, sender = fx-forge in 42. Everything on the host (unshare, umount, crun, the hook, cat) is unset.',
    processes: [
      { pid: init, role: 'container init (set target)', beforeMarker: set.seq, contid: '42' },
      ...['sh', 'ls', 'sleep'].map((comm) => ({
        comm,
        exe: '/bin/busybox',
        contid: '42',
        role: 'in container 42',
      })),
      { comm: 'fx-forge', exe: '/bin/fx-forge', contid: '42', role: 'forger in container 42' },
      {
        comm: 'exe',
        exe: '/bin/busybox',
        contid: '42',
        role: 'busybox re-exec through /proc/self/exe, in 42',
      },
      { comm: 'crun', contid: null, role: 'host runtime' },
      ...['unshare', 'umount', 'cat', 'fx-host-late', 'hook.sh'].map((comm) => ({
        comm,
        contid: null,
        role: 'host',
      })),
      HOST_SH,
    ],
    ops: [
      { op: 'set', opid: init, contid: '42', oldContid: '-1', result: 'accepted', errno: null, seq: set.seq },
      { op: 'drop', oldContid: '42', result: 'accepted', errno: null },
    ],
    forgeries: [
      { reason: 'wrong-sender', senderComm: 'fx-forge', senderContid: '42' },
      { reason: 'wrong-sender', senderComm: 'fx-forge', senderContid: '42' },
      { reason: 'wrong-type', senderComm: 'fx-forge', senderContid: '42' },
    ],
    init,
    hookPid,
  };
}

const RUN = {
  'a-fork-tree': scenarioA,
  'b-threads': scenarioB,
  'c-vfork': scenarioC,
  'd-refusals': scenarioD,
  'e-crun': scenarioE,
};

// ---------------------------------------------------------------- driver

async function capture(netlink, scenario) {
  // auditd makes its log dir root:adm 0750, so the scenario's files live apart.
  const dir = join(WORK, scenario);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const log = join(WORK, `${scenario}-log`, 'audit.log');
  mkdirSync(dirname(log), { recursive: true });
  const conf = join(WORK, `${scenario}-conf`);
  auditConf(conf, log);
  const auditd = spawn('/usr/sbin/auditd', ['-n', '-c', conf], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((resolve) => auditd.once('exit', resolve));
  try {
    await waitFor('auditd registration', () => netlink.getStatus().pid === auditd.pid);
    netlink.setStatus({ backlogLimit: 8192 });
    for (const rule of RULES) sh('auditctl', rule);
    const d = new Daemon(netlink, scenario);
    d.send({ op: 'start', daemonPid: process.pid });
    const expect = await RUN[scenario](d, dir);
    await sleep(300);
    const stop = d.send({ op: 'stop' });
    await waitFor(
      'the stop marker in the log',
      () => existsSync(log) && readFileSync(log, 'latin1').includes(stop.text.slice(0, 60)),
    );
    for (const rule of RULES) sh('auditctl', ['-d', ...rule.slice(1)]);
    return { d, expect, log };
  } finally {
    if (auditd.exitCode === null) auditd.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    if (auditd.exitCode === null && auditd.signalCode === null) {
      auditd.kill('SIGKILL');
      await exited;
    }
  }
}

function finish(scenario, { d, expect, log }) {
  const text = readFileSync(log, 'latin1');
  writeFileSync(join(OUT, `${scenario}.log`), text, 'latin1');
  writeFileSync(join(OUT, `${scenario}.keyring`), d.keyring(), { mode: 0o600 });
  const { init, hookPid, ...rest } = expect;
  void init;
  void hookPid;
  const out = {
    scenario,
    daemonPid: process.pid,
    start: d.start,
    markers: d.sent.length,
    ...rest,
    processes: [
      ...rest.processes,
      // The daemon, auditd and auditctl show up in CONFIG_CHANGE events.
      ...['node', 'auditd', 'auditctl'].map((comm) => ({ comm, contid: null, role: 'host tooling' })),
    ],
  };
  writeFileSync(join(OUT, `${scenario}.expect.json`), JSON.stringify(out, null, 2) + '\n');
  console.log(
    `${scenario}: ${text.split('\n').length - 1} lines, ${text.length} bytes, ${d.sent.length} markers`,
  );
}

mkdirSync(OUT, { recursive: true });
prepareBin();
for (const scenario of wanted.length > 0 ? wanted : SCENARIOS) {
  const result = await withAuditState(({ netlink, snapshot }) => {
    if (snapshot.status.pid !== 0)
      throw new Error(`An audit daemon (pid ${snapshot.status.pid}) is registered`);
    return capture(netlink, scenario);
  });
  finish(scenario, result);
}
console.log(sh('auditctl', ['-s']) + sh('auditctl', ['-l']));
