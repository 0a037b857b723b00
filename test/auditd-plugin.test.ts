/**
 * contid as auditd's plugin, through a real auditd (KERNEL.md §1, §9): the
 * shipped plugin file etc/auditd-plugin/contid.conf, only its `path` pointed
 * at this checkout, in a private auditd configuration directory; the shipped
 * rules narrowed to loginuid 4242; a crun container labelled by the OCI hook
 * while contid reads auditd's plugin stream. Once with auditd's default
 * ENRICHED log format and the shipped `args`, once with RAW, `node=` names
 * and `args = run --config=FILE`: contid is told neither format, it reads it
 * from the stream.
 *
 * Each test holds the audit lock and restores the audit state, also on
 * failure (withAuditState); it stops auditd by its pid, and whatever still
 * runs from the test's directory (contid outliving auditd is a failure) by
 * pid too.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  auditSkipReason,
  runWithLoginuid,
  skipIfDaemonRegistered,
  spawnWithLoginuid,
  TEST_LOGINUID,
  withAuditState,
} from './support/audit-state.js';
import { killLeftovers, waitForNoProcesses } from './support/processes.js';
import type { ReplayStats } from '../src/pipeline/replay.js';
import { auditdSkipReason, startAuditd, type RunningAuditd } from './support/auditd.js';
import { CONTAINER_SCRIPT, crunSkipReason, MAIN, makeBundle, runContainer } from './support/crun.js';
import {
  assertOnlyTreeLabelled,
  contidOf,
  descendants,
  field,
  flushLog,
  parseEvents,
  readEvents,
  setOp,
  syscallOf,
  waitForEvents,
  waitForExit,
  waitForText,
  type LogEvent,
} from './support/log-events.js';
import { compileForge, gccSkipReason } from './support/programs.js';

const etc = (path: string): string => readFileSync(new URL(`../../etc/${path}`, import.meta.url), 'utf8');

const skip =
  auditSkipReason() ?? auditdSkipReason() ?? crunSkipReason() ?? gccSkipReason('a user message sender');
const TEST_TIMEOUT_MS = 240_000;

/**
 * The shipped plugin file with `path` set to `path` (the one line that names
 * where contid is installed), and `args` replaced when `args` is given.
 */
function pluginFileFor(path: string, args: string | null): string {
  const shipped = etc('auditd-plugin/contid.conf');
  let text = shipped.replace(/^path = .*$/m, `path = ${path}`);
  assert.notEqual(text, shipped, 'the plugin file has a path line');
  if (args !== null) text = text.replace(/^args = .*$/m, `args = ${args}`);
  return text;
}

/**
 * How contid gets its config: `wrapper`, the shipped `args` (contid reads
 * its default config file, which a test must not touch, so the wrapper adds
 * `--config`); `args`, the README's other way, `args = run --config=FILE`
 * with `source = plugin` in FILE.
 */
type ConfigWay = 'wrapper' | 'args';

/** The shipped rules, each narrowed to the test's loginuid (tests never audit the whole machine). */
function narrowedRules(): string {
  const rules = etc('audit/contid.rules')
    .split('\n')
    .filter((l) => l.startsWith('-a '));
  assert.ok(rules.length > 0);
  return rules.map((l) => l.replace(/ -k /, ` -F auid=${TEST_LOGINUID} -k `)).join('\n') + '\n';
}

interface PluginPaths {
  readonly dir: string;
  readonly config: string;
  readonly hostLog: string;
  readonly stateDir: string;
  readonly socket: string;
  /** The wrapper auditd starts: it records its arguments and pid, then execs contid. */
  readonly wrapper: string;
  readonly args: string;
  /** The wrapper's environment, as auditd gave it. */
  readonly env: string;
  readonly pids: string;
  /** contid's stdout, which auditd shares with its plugin: nothing may go there. */
  readonly stdout: string;
  readonly stderr: string;
}

function pluginPaths(dir: string): PluginPaths {
  return {
    dir,
    config: join(dir, 'contid.conf'),
    hostLog: join(dir, 'contid', 'audit.log'),
    stateDir: join(dir, 'contid', 'state'),
    socket: join(dir, 'contid', 'run', 'control.sock'),
    wrapper: join(dir, 'bin', 'contid'),
    args: join(dir, 'plugin.args'),
    env: join(dir, 'plugin.env'),
    pids: join(dir, 'plugin.pids'),
    stdout: join(dir, 'contid.stdout'),
    stderr: join(dir, 'contid.stderr'),
  };
}

/**
 * The program auditd runs as the plugin. auditd gives it the plugin file's
 * `args` and an empty environment, and its stderr is auditd's: the wrapper
 * keeps the arguments, the pid (exec keeps it) and the stderr for the test,
 * and adds the private config when `way` is `wrapper`. contid itself starts
 * through its own `#!` line, as the installed one does.
 */
function writeWrapper(p: PluginPaths, way: ConfigWay): void {
  mkdirSync(join(p.dir, 'bin'), { mode: 0o755 });
  const q = (s: string): string => `'${s}'`;
  const script = [
    '#!/bin/sh',
    `printf '%s\\n' "$@" > ${q(p.args)}`,
    `/usr/bin/env > ${q(p.env)}`,
    `echo $$ >> ${q(p.pids)}`,
    `exec ${q(MAIN)} "$@" ${way === 'wrapper' ? `--config ${q(p.config)}` : ''} >> ${q(p.stdout)} 2>> ${q(p.stderr)}`,
    '',
  ].join('\n');
  // auditd runs only a root-owned program with mode 0750 or more.
  writeFileSync(p.wrapper, script, { mode: 0o750 });
  writeFileSync(
    p.config,
    [
      ...(way === 'args' ? ['source = plugin'] : []),
      `host-log = ${p.hostLog}`,
      `state-dir = ${p.stateDir}`,
      `socket = ${p.socket}`,
      // Seals the records it reads from auditd's plugin stream, which auditd's log must match.
      'seal-interval = 1000',
      '',
    ].join('\n'),
  );
}

const stderrOf = (p: PluginPaths): string => (existsSync(p.stderr) ? readFileSync(p.stderr, 'utf8') : '');

/** The pids the wrapper recorded (auditd restarts a plugin that dies: several mean it did). */
const pluginPids = (p: PluginPaths): number[] =>
  existsSync(p.pids) ? readFileSync(p.pids, 'utf8').trim().split('\n').filter(Boolean).map(Number) : [];

/** Runs `contid ARGS`; resolves with its exit code and output. */
async function contid(
  args: readonly string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** The contid of each labelled event, by stamp, and the CONTAINER_OP and CONTID_FORGERY records, of a text log. */
function tags(events: readonly LogEvent[]): { labels: Map<string, string>; ops: string[] } {
  const labels = new Map<string, string>();
  const ops: string[] = [];
  for (const e of events) {
    const chain = contidOf(e);
    if (chain !== null) labels.set(e.stamp, chain);
    ops.push(...e.lines.filter((l) => /^type=(CONTAINER_OP|CONTID_FORGERY) /.test(l)));
  }
  return { labels, ops };
}

function keepForDiagnosis(t: TestContext, p: PluginPaths, auditd: RunningAuditd | undefined): void {
  const keep = mkdtempSync(join(tmpdir(), 'contid-plugin-failed-'));
  spawnSync('cp', ['-a', p.dir, keep]);
  if (auditd !== undefined) writeFileSync(join(keep, 'auditd.stderr'), auditd.stderr());
  t.diagnostic(`the test directory and auditd's stderr are kept in ${keep}`);
}

for (const { way, ...format } of [
  { logFormat: 'ENRICHED', nameFormat: 'NONE', way: 'wrapper' },
  { logFormat: 'RAW', nameFormat: 'HOSTNAME', way: 'args' },
] as const) {
  test(
    `as auditd's plugin (log_format ${format.logFormat}, name_format ${format.nameFormat}, ` +
      `${way === 'args' ? 'args = run --config=FILE' : 'args as shipped'}): ` +
      'auditd accepts the plugin file, a container is labelled, auditd logs the markers, ' +
      'replay of its log gives the same tags, and contid stops with auditd',
    { skip, timeout: TEST_TIMEOUT_MS },
    async (t) => {
      await withAuditState(async (ctx) => {
        // auditd cannot register beside another audit daemon.
        if (skipIfDaemonRegistered(t, ctx)) return;
        const dir = mkdtempSync(join(tmpdir(), 'contid-plugin-'));
        t.after(() => {
          rmSync(dir, { recursive: true, force: true });
        });
        const p = pluginPaths(dir);
        writeWrapper(p, way);
        const args = way === 'args' ? `run --config=${p.config}` : null;
        // What Debian's stock audit.rules does (-b 8192), which a rules.d
        // file beside it relies on: the kernel's default of 64 overflows.
        if (ctx.snapshot.status.backlogLimit < 8192) ctx.netlink.setStatus({ backlogLimit: 8192 });
        writeFileSync(join(dir, 'contid.rules'), narrowedRules());
        const rules = spawnSync('auditctl', ['-R', join(dir, 'contid.rules')], { encoding: 'utf8' });
        assert.equal(rules.status, 0, rules.stderr);

        let auditd: RunningAuditd | undefined;
        let logFile = '';
        let failed = true;
        try {
          auditd = await startAuditd({
            dir: join(dir, 'auditd'),
            ...format,
            plugins: { 'contid.conf': pluginFileFor(p.wrapper, args) },
            netlink: ctx.netlink,
          });
          logFile = auditd.logFile;
          await waitForText(() => stderrOf(p), /Listening on /);
          const given = args ?? /^args = (.*)$/m.exec(etc('auditd-plugin/contid.conf'))?.[1] ?? '';
          await checkPluginRun(p, auditd, given.split(' '));
          failed = false;
        } catch (error) {
          keepForDiagnosis(t, p, auditd);
          throw error;
        } finally {
          await auditd?.stop();
          if (failed) killLeftovers(dir);
        }
        // contid stops when auditd does, and leaves nothing running.
        const left = await waitForNoProcesses(dir);
        killLeftovers(dir);
        assert.deepEqual(left, [], `still running after auditd stopped:\n${stderrOf(p)}`);
        const stderr = stderrOf(p);
        assert.match(stderr, /notice: Stopping: /);
        assert.match(stderr, /notice: Stopped: /);
        assert.doesNotMatch(stderr, /: error: /);
        assert.equal(readFileSync(p.stdout, 'utf8'), '', 'contid writes nothing on stdout');
        assert.equal(pluginPids(p).length, 1, 'auditd started contid once (no restart)');

        await checkAuditdLog(p, logFile);
      });
    },
  );
}

/** While auditd and its plugin run: the plugin file was taken as is, and a container gets labelled. */
async function checkPluginRun(p: PluginPaths, auditd: RunningAuditd, args: readonly string[]): Promise<void> {
  // auditd names any line of a plugin file it refuses, and the file.
  assert.doesNotMatch(auditd.stderr(), /contid\.conf|Wrong number|too long|Skipping/, auditd.stderr());
  assert.deepEqual(readFileSync(p.args, 'utf8').split('\n').slice(0, -1), args, 'auditd passes args whole');
  // What README and the plugin file say: no PATH, so `env node` searches only /usr/bin and /bin.
  assert.doesNotMatch(readFileSync(p.env, 'utf8'), /^PATH=/m, 'auditd gives its plugin an empty environment');
  const [pid] = pluginPids(p);
  assert.match(stderrOf(p), new RegExp(`Started: pid ${pid}, source plugin, `));
  const status = await contid(['status', '--json', '--socket', p.socket]);
  assert.equal(status.code, 0, status.stderr);
  const s = (JSON.parse(status.stdout) as { status: { source: string; startMarkerConfirmed: boolean } })
    .status;
  assert.equal(s.source, 'plugin');
  assert.ok(s.startMarkerConfirmed, 'the start marker came back through auditd');

  const bundle = makeBundle(p.dir, { socket: p.socket, contid: '77', script: CONTAINER_SCRIPT('') });
  const run = await runContainer(bundle);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'grandchild\njob\ndone\n');
  await waitForExit(p.hostLog, run.pid);
  await flushLog(p.hostLog, () => spawnWithLoginuid(TEST_LOGINUID, ['/bin/true'], { stdio: 'ignore' }));

  const events = readEvents(p.hostLog);
  const op = setOp(events, '77');
  assert.ok(op !== undefined, 'the hook set 77');
  const tree = descendants(events, op.opid);
  assert.ok(!tree.has(run.pid), 'the test shell is not in the container');
  const labelled = assertOnlyTreeLabelled(events, tree, op.serial, '77');
  const comms = new Set(labelled.map((e) => field(syscallOf(e)!, 'comm')));
  for (const comm of ['"sh"', '"true"', '"echo"', '"sleep"'])
    assert.ok(comms.has(comm), `${comm} in ${[...comms].join(' ')}`);
  assert.match(
    stderrOf(p),
    new RegExp(
      `Operation set pid ${op.opid} contid 77 owner "oci:${bundle.id}" create-only name "${bundle.id}" .*: accepted`,
    ),
  );
  await checkSeparatorInUserMessage(p);
  // A periodic seal (the stream 5 s past a whole bucket of 64 serials after the start marker's),
  // for checkAuditdLog to verify against auditd's log: the rules are narrow, so make records.
  const more = await runWithLoginuid(TEST_LOGINUID, [
    '/bin/sh',
    '-c',
    'for i in $(seq 100); do /bin/true; done',
  ]);
  assert.equal(more.code, 0);
  await waitForText(() => (existsSync(p.hostLog) ? readFileSync(p.hostLog, 'utf8') : ''), / op=seal from=/);
}

/**
 * A user message may hold any byte, `\x1d` too (KERNEL.md §9), which in a
 * RAW stream is text, not auditd's enriched-part separator. A process sends
 * marker text as a USER_AUTH message (the wrong type) with one in it: contid must
 * read the whole text and report the forgery, in either format.
 */
async function checkSeparatorInUserMessage(p: PluginPaths): Promise<void> {
  const forge = join(p.dir, 'bin', 'fx-forge');
  compileForge(forge);
  const text = join(p.dir, 'forged.txt');
  writeFileSync(text, 'contid-marker v=1 start=X seq=1 op=set pid=1 contid=666 mac=00\x1dUID="root"');
  const sent = await runWithLoginuid(TEST_LOGINUID, [forge, '1100', text]);
  assert.match(sent.stdout, /ack error=0/, sent.stderr);
  const event = await waitForEvents(p.hostLog, `the USER_AUTH message of pid ${sent.pid}`, (events) =>
    events.find((e) =>
      e.lines.some((l) => l.startsWith('type=USER_AUTH ') && field(l, 'pid') === String(sent.pid)),
    ),
  );
  const forgery = event.lines.find((l) => l.startsWith('type=CONTID_FORGERY '));
  assert.ok(forgery !== undefined, `a forgery report:\n${event.lines.join('\n')}`);
  assert.match(forgery, new RegExp(` reason=wrong-type pid=${sent.pid} `));
}

/** auditd's own log holds the markers, and its replay with the keyring tags as the host log does. */
async function checkAuditdLog(p: PluginPaths, logFile: string): Promise<void> {
  const log = readFileSync(logFile, 'utf8');
  const startId = /start ([0-9TZ]+-[0-9]+-[0-9a-f]+)/.exec(stderrOf(p))?.[1];
  assert.ok(startId !== undefined, stderrOf(p));
  const markers = log.split('\n').filter((l) => l.includes(`contid-marker v=1 start=${startId} `));
  for (const op of ['start', 'set'])
    assert.ok(
      markers.some((l) => l.includes(` op=${op} `)),
      `auditd logged the ${op} marker:\n${markers.join('\n')}`,
    );

  const keyring = join(p.stateDir, 'keyring');
  const out = join(p.dir, 'replay.log');
  const replay = await contid([
    'replay',
    '--keyring',
    keyring,
    '--stats',
    '--format',
    'text',
    '-o',
    out,
    logFile,
  ]);
  assert.equal(replay.code, 0, replay.stderr);
  // What contid sealed from the plugin stream is what auditd logged, span by span.
  const stats = JSON.parse(replay.stderr.trimEnd().split('\n').at(-1)!) as ReplayStats;
  assert.deepEqual(stats.evidenceProblems, [], replay.stderr);
  assert.ok((stats.evidence?.intact ?? 0) >= 1, `a seal verified:\n${replay.stderr}`);
  const host = tags(readEvents(p.hostLog));
  const replayed = tags(parseEvents(readFileSync(out, 'utf8')));
  assert.ok(host.labels.size > 0);
  assert.deepEqual(replayed.labels, host.labels);
  assert.deepEqual(replayed.ops, host.ops);
}
