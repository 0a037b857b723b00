/**
 * The event store behind a live `contid run --store DB`, on the real kernel
 * with a crun container labelled by the OCI hook: the store holds every
 * event the host log holds, `contid search --contid` finds the container's
 * events (also while the daemon is writing), and `contid ps` shows the
 * container, its name and metadata (the hook's), its owner (the set's
 * caller) and its processes; a process labelled by `contid set --name
 * --meta` is shown with that name, now, at the time of its set, and from a
 * replay of the host log into another store (which has no daemon memory).
 *
 * The audit lock is held and the audit state restored, also on failure
 * (withAuditState); only the daemon this test started is stopped, by pid.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import {
  auditSkipReason,
  skipIfDaemonRegistered,
  spawnWithLoginuid,
  TEST_LOGINUID,
  withAuditState,
} from './support/audit-state.js';
import { CONTAINER_SCRIPT, crunSkipReason, killChild, makeBundle, runContainer } from './support/crun.js';
import { displayText } from '../src/cli/ps.js';
import {
  contid,
  daemonPaths,
  keepForDiagnosis,
  startDaemon,
  stopDaemon,
  tempDir,
  type CliResult,
} from './support/live-daemon.js';
import {
  contidOf,
  descendants,
  field,
  flushLog,
  readEvents,
  setOp,
  syscallOf,
  WAIT_MS,
  waitForExit,
} from './support/log-events.js';

const skip = auditSkipReason() ?? crunSkipReason();

interface JsonEvent {
  readonly time: string;
  readonly serial: number;
  readonly contid: string | null;
  readonly records: { readonly type: string; readonly fields: Record<string, string> }[];
}

interface PsProc {
  readonly pid: number;
  readonly children: PsProc[];
}

interface PsJson {
  readonly containers: {
    readonly contid: string;
    readonly name: string | null;
    readonly meta: Record<string, string>;
    readonly state: string;
    readonly owner: { readonly exe: string; readonly pid: number } | null;
    readonly processes: PsProc[];
  }[];
}

const flat = (procs: readonly PsProc[]): PsProc[] => procs.flatMap((p) => [p, ...flat(p.children)]);

async function ok(args: readonly string[]): Promise<string> {
  const r = await contid(args);
  assert.equal(r.code, 0, `contid ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function jsonLines(text: string): JsonEvent[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as JsonEvent);
}

/** A name and metadata no line or field of any output may be broken by. */
const NAME = `web "front" – ü\u2028 x=1`;
const NOTE = `it's "quoted" \\ and spaced`;

/** `text` matched literally in a regular expression. */
function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The containers of `contid ps -a -f json`, by contid: name, metadata, state. */
async function described(
  store: string,
): Promise<Map<string, [string | null, Record<string, string>, string]>> {
  const ps = JSON.parse(await ok(['ps', '--store', store, '-a', '-f', 'json'])) as PsJson;
  return new Map(ps.containers.map((c) => [c.contid, [c.name, c.meta, c.state]]));
}

/** Polls `contid ps --contid ID` until it shows the container (its set is stored in the next batch). */
async function untilShown(store: string, id: string): Promise<PsJson['containers'][number]> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const ps = JSON.parse(await ok(['ps', '--store', store, '-f', 'json', '--contid', id])) as PsJson;
    const c = ps.containers.find((x) => x.contid === id);
    if (c !== undefined) return c;
    if (Date.now() > deadline) assert.fail(`contid ps shows no container ${id} in ${WAIT_MS} ms`);
    await sleep(100);
  }
}

/** Polls `contid ARGS` until it exits 0 (the writer stores in batches, every 250 ms). */
async function untilFound(args: readonly string[]): Promise<CliResult> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const r = await contid(args);
    if (r.code === 0) return r;
    assert.equal(r.code, 1, `contid ${args.join(' ')}: ${r.stderr}`);
    if (Date.now() > deadline) assert.fail(`contid ${args.join(' ')} found nothing in ${WAIT_MS} ms`);
    await sleep(100);
  }
}

test(
  'contid run --store: a crun container labelled by the OCI hook is found by search --contid and shown by ps',
  { skip, timeout: 180_000 },
  async (t) => {
    await withAuditState(async (ctx) => {
      if (skipIfDaemonRegistered(t, ctx)) return;
      const dir = tempDir(t);
      const paths = daemonPaths(dir);
      const store = join(paths.stateDir, 'events.db');
      const d = await startDaemon(paths, ['--store', store]);
      let code: number | null = null;
      let opid: number;
      let bundleId = '';
      try {
        const bundle = makeBundle(dir, { socket: paths.socket, contid: '77', script: CONTAINER_SCRIPT('') });
        bundleId = bundle.id;
        const run = await runContainer(bundle);
        assert.equal(run.code, 0, run.stderr);
        await waitForExit(paths.hostLog, run.pid);
        await flushLog(paths.hostLog);
        const op = setOp(readEvents(paths.hostLog), '77');
        assert.ok(op !== undefined, 'the hook set 77');
        opid = op.opid;
        // Read while the daemon writes (WAL): the container's exits are there.
        const found = await untilFound(['search', '--store', store, '--contid', '77', '-sc', 'exit_group']);
        assert.match(found.stdout, /^type=CONTAINER_ID msg=audit\([0-9.:]+\): record=1 contid=77$/m);
        const live = JSON.parse(await ok(['ps', '--store', store, '-a', '-f', 'json'])) as PsJson;
        const c = live.containers.find((x) => x.contid === '77');
        assert.ok(c !== undefined, JSON.stringify(live));
        // Its owner is the set's caller, as the CONTAINER_OP record names it (the hook).
        const set = readEvents(paths.hostLog)
          .flatMap((e) => e.lines)
          .find((l) => l.startsWith('type=CONTAINER_OP ') && / op=set .*contid=77 .* res=1$/.test(l));
        assert.ok(set !== undefined);
        assert.equal(c.owner?.pid, Number(field(set, 'pid')));
        assert.equal(JSON.stringify(c.owner.exe), field(set, 'exe'));
        // Its name and metadata are the hook's: the container id and bundle.
        assert.equal(c.name, bundle.id);
        assert.deepEqual(c.meta, { 'oci.contid-source': 'annotation', 'oci.bundle': bundle.dir });

        // contid set --name --meta: the set's marker carries them, so ps
        // shows them from the store.
        const sleeper = spawnWithLoginuid(TEST_LOGINUID, ['/bin/sleep', '120'], { stdio: 'ignore' });
        t.after(() => {
          killChild(sleeper);
        });
        const named = await contid([
          'set',
          String(sleeper.pid ?? -1),
          '88',
          '--socket',
          paths.socket,
          '--name',
          NAME,
          '--meta',
          'image=nginx:1.27',
          '--meta',
          `note=${NOTE}`,
        ]);
        assert.equal(named.code, 0, named.stderr);
        const c88 = await untilShown(store, '88');
        assert.equal(c88.name, NAME);
        assert.deepEqual(c88.meta, { image: 'nginx:1.27', note: NOTE });
        assert.equal(c88.state, 'live');
        const text88 = await ok(['ps', '--store', store, '--contid', '88']);
        assert.match(
          text88,
          new RegExp(`^CONTAINER 88  name=${escape(displayText(NAME))}  live  owner uid=0 `, 'm'),
        );
        assert.ok(text88.includes(`\n  meta image=nginx:1.27 note=${displayText(NOTE)}\n`), text88);
        // --at: not there before its set, named from it on.
        await flushLog(paths.hostLog);
        const setEvent = readEvents(paths.hostLog).find((e) =>
          e.lines.some((l) => l.startsWith('type=CONTAINER_OP ') && / op=set .*contid=88 .* res=1$/.test(l)),
        );
        assert.ok(setEvent !== undefined, 'the set of 88 is in the host log');
        const setMs = Math.round(Number(setEvent.stamp.split(':')[0]) * 1000);
        const at = async (ms: number) =>
          (
            JSON.parse(
              await ok(['ps', '--store', store, '-f', 'json', '--at', `@${(ms / 1000).toFixed(3)}`]),
            ) as PsJson
          ).containers;
        assert.equal(
          (await at(setMs - 1)).find((x) => x.contid === '88'),
          undefined,
        );
        assert.equal((await at(setMs)).find((x) => x.contid === '88')?.name, NAME);
        killChild(sleeper);
        const { status } = JSON.parse(await ok(['status', '--json', '--socket', paths.socket])) as {
          status: { store: { path: string; written: number; dropped: number; failed: number } | null };
        };
        assert.equal(status.store?.path, store);
        assert.ok(status.store.written > 0);
        assert.equal(status.store.dropped + status.store.failed, 0);
        code = await stopDaemon(d);
      } catch (error) {
        keepForDiagnosis(t, paths, d);
        throw error;
      } finally {
        code ??= await stopDaemon(d);
      }
      assert.equal(code, 0, d.stderr());
      assert.match(d.stderr(), /Event store .*events\.db: 0 events stored before this start/);

      // Stopped: the store holds what the host log holds, event for event.
      const events = readEvents(paths.hostLog);
      const stored = jsonLines(await ok(['search', '--store', store, '-f', 'json']));
      assert.deepEqual(
        stored.map((e) => e.serial),
        events.map((e) => e.serial),
      );
      for (const [i, e] of events.entries())
        assert.equal(stored[i]!.contid, contidOf(e), `serial ${e.serial}`);

      // --contid 77: every event of the container's processes, and the set and drop that name it.
      const tree = descendants(events, opid);
      assert.ok(tree.size >= 6, `the container's processes: ${[...tree].join(' ')}`);
      const want = events
        .filter((e) => contidOf(e) === '77' || e.lines.some((l) => / op=(set|drop) .*contid=77 /.test(l)))
        .map((e) => e.serial);
      const of77 = jsonLines(await ok(['search', '--store', store, '-f', 'json', '--contid', '77']));
      assert.deepEqual(
        of77.map((e) => e.serial),
        want,
      );
      const pids = new Set(
        of77.flatMap((e) => {
          const s = e.records.find((r) => r.type === 'SYSCALL');
          return e.contid === '77' && s !== undefined ? [Number(s.fields['pid'])] : [];
        }),
      );
      for (const pid of pids) assert.ok(tree.has(pid), `pid ${pid} is of the container`);
      assert.ok(pids.size >= 6);
      // The host's events are not among them, and are found as the host's.
      const crun = events.filter((e) => field(syscallOf(e) ?? '', 'comm') === '"crun"');
      assert.ok(crun.length > 0);
      const host = new Set(
        jsonLines(await ok(['search', '--store', store, '-f', 'json', '--contid', 'unset'])).map(
          (e) => e.serial,
        ),
      );
      for (const e of crun) assert.ok(host.has(e.serial), `crun's event ${e.serial} is the host's`);

      // ps: after the stop the container is dropped; at the time of its first
      // exec it was live, with its processes then.
      const end = JSON.parse(
        await ok(['ps', '--store', store, '-a', '-f', 'json', '--contid', '77']),
      ) as PsJson;
      assert.equal(end.containers.length, 1);
      assert.equal(end.containers[0]!.state, 'dropped');
      const sh = of77.find(
        (e) =>
          e.contid === '77' && e.records.some((r) => r.type === 'SYSCALL' && r.fields['syscall'] === '59'),
      );
      assert.ok(sh !== undefined);
      const at = JSON.parse(
        await ok(['ps', '--store', store, '-f', 'json', '--at', `@${sh.time}`]),
      ) as PsJson;
      const then = at.containers.find((x) => x.contid === '77');
      assert.ok(then !== undefined && then.state === 'live', JSON.stringify(at));
      const alive = flat(then.processes).map((p) => p.pid);
      assert.ok(alive.length > 0);
      for (const pid of alive) assert.ok(tree.has(pid), `ps shows ${pid}, a process of the container`);
      assert.match(
        await ok(['ps', '--store', store, '-a']),
        new RegExp(`^CONTAINER 77 {2}name=${escape(bundleId)} {2}dropped {2}owner uid=0 `, 'm'),
      );

      // A replay of the host log into another store (no daemon memory: the
      // markers only) gives every container the same name and metadata.
      const replayed = join(dir, 'replayed.db');
      const r = await contid([
        'replay',
        '--keyring',
        paths.keyring,
        '--store',
        replayed,
        '-q',
        '-o',
        '/dev/null',
        paths.hostLog,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const live = await described(store);
      assert.deepEqual(live.get('88')?.slice(0, 2), [NAME, { image: 'nginx:1.27', note: NOTE }]);
      assert.deepEqual(await described(replayed), live);
    });
  },
);
