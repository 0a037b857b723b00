/**
 * Ground truth on the real kernel: crun containers labelled by the OCI hook
 * run deep process trees (background jobs with pipes, double forks, a parent
 * blocked in vfork, threads that fork, nested shells), and a container that
 * shares the host's pid namespace holds a nested orchestrator given a grant
 * that labels its child. auditd (private configuration) is the audit daemon;
 * contid reads the multicast copy beside it and writes its host log.
 *
 * The test knows which container every event belongs to without asking
 * contid: each container's user process runs as a uid of its own, the
 * nested container's programs are a copy of busybox (`busybox-nested`), and a
 * container's init is its own before it switches uid (the hook's target).
 * Every event must carry exactly that chain (none for the host), and
 * `contid replay --keyring` of auditd's own log must agree with the live
 * host log event for event.
 *
 * Rounds: CONTID_GROUND_TRUTH_ROUNDS (default 2).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import {
  auditSkipReason,
  skipIfDaemonRegistered,
  spawnWithLoginuid,
  TEST_LOGINUID,
  withAuditState,
} from './support/audit-state.js';
import { auditdSkipReason, startAuditd } from './support/auditd.js';
import { crunSkipReason, killChild, MAIN, makeBundle, runContainer, type Bundle } from './support/crun.js';
import {
  contid,
  daemonPaths,
  mkfifo,
  startDaemon,
  stopDaemon,
  tempDir,
  waitUntil,
} from './support/live-daemon.js';
import { field, flushLog, parseEvents, readEvents, syscallOf, type LogEvent } from './support/log-events.js';
import { compileAttack, gccSkipReason } from './support/programs.js';

const skip =
  auditSkipReason() ?? auditdSkipReason() ?? crunSkipReason() ?? gccSkipReason('the workload programs');
const ROUNDS = Number(process.env['CONTID_GROUND_TRUTH_ROUNDS'] ?? '2');

/** The workload of a container with its own pid namespace. */
const WORKLOAD = [
  'for i in 1 2 3 4 5 6 7 8 9 10; do ( /bin/cat /bin/busybox | /bin/md5sum >/dev/null ) & done',
  "for i in 1 2 3 4 5; do /bin/sh -c '/bin/true & /bin/echo $i >/dev/null; wait' & done",
  '( ( /bin/sleep 0.1; /bin/true ) & )',
  '/bin/vblock 1 /bin/true',
  '/bin/threads 3 /bin/true',
  "/bin/sh -c '/bin/true; ( /bin/echo x | /bin/cat >/dev/null ) & wait'",
  'wait',
  '/bin/sleep 0.3',
  '/bin/echo done',
].join('; ');

/** The nested container's workload: only its own busybox copy, so that its processes show exe="/bin/busybox-nested". */
const NESTED_WORKLOAD =
  '( /bin/busybox-nested cat /bin/busybox-nested | /bin/busybox-nested md5sum >/dev/null ) & ' +
  '( ( /bin/busybox-nested sleep 0.1; /bin/busybox-nested echo x >/dev/null ) & ); /bin/busybox-nested echo y >/dev/null; wait; /bin/busybox-nested sleep 0.3';

interface Config {
  root: { path: string; readonly?: boolean };
  process: { user: { uid: number; gid: number } };
  linux: { namespaces: { type: string }[] };
  mounts: { destination: string; type: string; source: string; options: string[] }[];
}

function editConfig(bundle: Bundle, edit: (c: Config) => void): void {
  const file = join(bundle.dir, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as Config;
  edit(config);
  writeFileSync(file, JSON.stringify(config, null, 2));
}

/** A container with its own pid namespace running WORKLOAD as `uid`. */
function workloadBundle(dir: string, socket: string, id: string, uid: number): Bundle {
  const bundle = makeBundle(dir, { socket, contid: id, script: WORKLOAD });
  const bin = join(bundle.dir, 'rootfs', 'bin');
  compileAttack('vblock', join(bin, 'vblock'));
  compileAttack('threads', join(bin, 'threads'));
  symlink(bin, 'md5sum');
  editConfig(bundle, (c) => {
    c.process.user = { uid, gid: uid };
  });
  return bundle;
}

function symlink(bin: string, applet: string): void {
  spawnSync('ln', ['-sf', 'busybox', join(bin, applet)]);
}

/**
 * A container in the host's pid namespace whose init, running as `uid`, is
 * the nested orchestrator `ctl`: it waits for its grant, then labels its
 * child `nested` (and tries `other`, outside its tree).
 */
function nestedBundle(dir: string, socket: string, id: string, uid: number, other: number): Bundle {
  const script = `exec /bin/ctl /run/contid/${socket.split('/').pop()!} /out/go /out/pid ${other} 5 /bin/busybox-nested sh -c '${NESTED_WORKLOAD}'`;
  const bundle = makeBundle(dir, { socket, contid: id, script });
  const rootfs = join(bundle.dir, 'rootfs');
  compileAttack('ctl', join(rootfs, 'bin', 'ctl'));
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox-nested'));
  chmodSync(join(rootfs, 'bin', 'busybox-nested'), 0o755);
  for (const d of ['out', 'run/contid']) mkdirSync(join(rootfs, d), { recursive: true, mode: 0o777 });
  chmodSync(join(rootfs, 'out'), 0o777);
  mkfifo(join(rootfs, 'out', 'go'));
  chmodSync(join(rootfs, 'out', 'go'), 0o666);
  editConfig(bundle, (c) => {
    c.process.user = { uid, gid: uid };
    c.root.readonly = false; // the orchestrator writes its pid to /out
    c.linux.namespaces = c.linux.namespaces.filter((n) => n.type !== 'pid');
    c.mounts.push({
      destination: '/run/contid',
      type: 'bind',
      source: dirname(socket),
      options: ['bind', 'rw'],
    });
  });
  return bundle;
}

/** The CONTAINER_ID chain of an event, or null. */
function chainOf(e: LogEvent): string | null {
  const id = e.lines.find(
    (l) => / type=CONTAINER_ID | ^type=CONTAINER_ID /.test(` ${l}`) && / record=1 /.test(l),
  );
  return id === undefined ? null : (/ contid=(\S+)/.exec(id)?.[1] ?? null);
}

/** The accepted set of `contid`: its serial and target, from the host log. */
function setOf(events: LogEvent[], id: string): { serial: number; opid: number } {
  for (const e of events) {
    for (const l of e.lines) {
      if (!l.includes('type=CONTAINER_OP ') || !/ op=set /.test(l) || !/ res=1/.test(l)) continue;
      if (/ contid=(\S+)/.exec(l)?.[1] === id)
        return { serial: e.serial, opid: Number(/ opid=(\d+)/.exec(l)![1]) };
    }
  }
  throw new Error(`No accepted set of ${id}`);
}

interface Truth {
  /** uid of a container's user process → its chain. */
  readonly uids: ReadonlyMap<number, string>;
  /** A container init (the hook's target) → the serial from which it is in its container, and the chain. */
  readonly inits: ReadonlyMap<number, { serial: number; chain: string }>;
  /** The nested container: its uid, chain, and its first process (labelled by the nested orchestrator). */
  readonly nested: { uid: number; chain: string; pid: number; serial: number };
}

/** What the event's chain must be, from facts independent of contid's labels. */
function expected(e: LogEvent, truth: Truth): string | null {
  const s = syscallOf(e);
  if (s === undefined) return null;
  const uid = Number(field(s, 'uid'));
  const pid = Number(field(s, 'pid'));
  const n = truth.nested;
  if (uid === n.uid) {
    if (field(s, 'exe') === '"/bin/busybox-nested"' || (pid === n.pid && e.serial > n.serial)) return n.chain;
  }
  const byUid = truth.uids.get(uid);
  if (byUid !== undefined) return byUid;
  const init = truth.inits.get(pid);
  if (init !== undefined && e.serial > init.serial) return init.chain;
  return null;
}

interface Tally {
  events: number;
  container: number;
  nested: number;
  host: number;
  wrong: string[];
}

test(
  'ground truth: every event of every container carries its chain, no host event one, and a replay of auditd log agrees',
  { skip, timeout: 120_000 + ROUNDS * 120_000 },
  async (t) => {
    const totals = { events: 0, container: 0, nested: 0, host: 0, replayCompared: 0 };
    for (let round = 1; round <= ROUNDS; round++) {
      await withAuditState(async (ctx) => {
        if (skipIfDaemonRegistered(t, ctx)) return;
        const dir = tempDir(t, true);
        const auditd = await startAuditd({
          dir: join(dir, 'auditd'),
          logFormat: 'ENRICHED',
          nameFormat: 'NONE',
          plugins: {},
          netlink: ctx.netlink,
        });
        const paths = daemonPaths(dir);
        mkdirSync(join(dir, 'run'), { mode: 0o711 });
        const d = await startDaemon(paths);
        let tally: Tally | undefined;
        try {
          assert.match(d.stderr(), /source multicast/);
          tally = await round1(t, dir, paths.socket, paths.hostLog, totals);
        } finally {
          const code = await stopDaemon(d);
          await auditd.stop();
          assert.equal(code, 0, d.stderr());
        }
        // The replay of auditd's own log agrees with the live host log.
        const replay = spawnSync(
          process.execPath,
          [MAIN, 'replay', '--format', 'text', '--keyring', paths.keyring, auditd.logFile],
          { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 },
        );
        assert.equal(replay.status, 0, replay.stderr);
        const live = new Map(readEvents(paths.hostLog).map((e) => [stamp(e), chainOf(e)]));
        let compared = 0;
        const differ: string[] = [];
        for (const e of parseEvents(replay.stdout)) {
          const k = stamp(e);
          if (!live.has(k) || syscallOf(e) === undefined) continue;
          compared++;
          if (live.get(k) !== chainOf(e)) differ.push(`${k}: live ${live.get(k)} replay ${chainOf(e)}`);
        }
        assert.deepEqual(
          differ.slice(0, 20),
          [],
          `${differ.length} events differ between the live log and the replay`,
        );
        assert.ok(compared > 100, `compared ${compared}`);
        totals.replayCompared += compared;
        t.diagnostic(
          `round ${round}: ${tally?.events} events, ${tally?.container} in containers, ${tally?.nested} nested, ` +
            `${tally?.host} host, 0 wrong; ${compared} compared with the replay of auditd's log, 0 differ`,
        );
      });
    }
    t.diagnostic(`all rounds: ${JSON.stringify(totals)}`);
  },
);

function stamp(e: LogEvent): string {
  return / msg=audit\(([0-9.]+:[0-9]+)\)/.exec(e.lines[0]!)?.[1] ?? '';
}

/** One round: two workload containers at once, then the nested one; checks every event. */
async function round1(
  t: import('node:test').TestContext,
  dir: string,
  socket: string,
  hostLog: string,
  totals: { events: number; container: number; nested: number; host: number },
): Promise<Tally> {
  const a = workloadBundle(join(dir, 'a'), socket, '701', 61001);
  const b = workloadBundle(join(dir, 'b'), socket, '702', 61002);
  const [ra, rb] = await Promise.all([runContainer(a), runContainer(b)]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);
  assert.equal(ra.stdout, 'done\n');

  // A host process outside the nested orchestrator's tree.
  const other = spawnWithLoginuid(TEST_LOGINUID, ['/bin/sleep', '60'], { stdio: 'ignore' });
  t.after(() => {
    killChild(other);
  });
  const c = nestedBundle(join(dir, 'c'), socket, '703', 61003, other.pid ?? -1);
  const running = runContainer(c);
  const pidFile = join(c.dir, 'rootfs', 'out', 'pid');
  await Promise.race([
    waitUntil(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'), 'the orchestrator'),
    running.then((r) => {
      throw new Error(`The nested container ended early (${r.code}): ${r.stderr}${r.stdout}`);
    }),
  ]);
  const o = Number(readFileSync(pidFile, 'utf8'));
  const grant = await contid(['grant', String(o), '--socket', socket]);
  assert.equal(grant.code, 0, grant.stderr);
  const go = spawn('/bin/sh', ['-c', 'echo go > "$0"', join(c.dir, 'rootfs', 'out', 'go')]);
  await once(go, 'exit');
  const rc = await running;
  killChild(other);
  assert.equal(rc.code, 0, rc.stderr);
  const answers = rc.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { ok: boolean; errno?: string; id: string });
  assert.deepEqual(
    answers.map((x) => `${x.id} ${x.ok ? 'ok' : x.errno}`),
    ['other EXDEV', 'child ok'],
  );
  await flushLog(hostLog);

  const events = readEvents(hostLog);
  const sets = { a: setOf(events, '701'), b: setOf(events, '702'), c: setOf(events, '703') };
  const nestedSet = setOf(events, '5');
  const truth: Truth = {
    uids: new Map([
      [61001, '701'],
      [61002, '702'],
      [61003, '703'],
    ]),
    inits: new Map([
      [sets.a.opid, { serial: sets.a.serial, chain: '701' }],
      [sets.b.opid, { serial: sets.b.serial, chain: '702' }],
      [sets.c.opid, { serial: sets.c.serial, chain: '703' }],
    ]),
    nested: { uid: 61003, chain: '5,^703', pid: nestedSet.opid, serial: nestedSet.serial },
  };
  const tally: Tally = { events: 0, container: 0, nested: 0, host: 0, wrong: [] };
  for (const e of events) {
    if (syscallOf(e) === undefined) continue;
    const want = expected(e, truth);
    const got = chainOf(e);
    tally.events++;
    if (want === null) tally.host++;
    else if (want === truth.nested.chain) tally.nested++;
    else tally.container++;
    if (want !== got) tally.wrong.push(`expected ${want}, got ${got}:\n${e.lines.slice(0, 2).join('\n')}`);
  }
  if (tally.wrong.length > 0) {
    // What the stream showed of the wrong events' parents, to tell a lost
    // record from a labelling fault when this fails on a busy machine.
    const parents = new Set(
      tally.wrong.map((w) => / ppid=(\d+) /.exec(w)?.[1]).filter((p) => p !== undefined),
    );
    const related = events.filter((e) =>
      [...parents].some((p) =>
        e.lines.some((l) => new RegExp(`(?:^|[ '])(?:pid|ppid|exit|opid)=${p}(?:[ ']|$)`).test(l)),
      ),
    );
    const keep = mkdtempSync(join(tmpdir(), 'contid-ground-truth-failed-'));
    copyFileSync(hostLog, join(keep, 'audit.log'));
    t.diagnostic(
      `host log kept in ${keep}; the parents' events:\n${related.map((e) => e.lines.join('\n')).join('\n')}`,
    );
  }
  assert.deepEqual(tally.wrong.slice(0, 10), [], `${tally.wrong.length} events labelled wrong`);
  assert.ok(tally.container > 100 && tally.nested > 5, JSON.stringify(tally));
  totals.events += tally.events;
  totals.container += tally.container;
  totals.nested += tally.nested;
  totals.host += tally.host;
  return tally;
}
