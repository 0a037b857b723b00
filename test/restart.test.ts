/**
 * Labels survive restarts: `contid run` is killed with SIGKILL at random
 * moments (also while a set is under way) while crun containers run busy
 * process trees, and started again on the same state directory. After each
 * restart its checkpoint's labels come back (restore markers); every event
 * of a container process carries its ID and no host event one, judged
 * without contid: each container's user process runs as a uid of its own.
 *
 * Rounds: CONTID_RESTART_ROUNDS (default 3; the 20 for a longer run).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { prngInt } from './support/prng.js';
import {
  auditSkipReason,
  skipIfDaemonRegistered,
  spawnWithLoginuid,
  TEST_LOGINUID,
  withAuditState,
} from './support/audit-state.js';
import { crunSkipReason, killChild, makeBundle, runContainer, type Bundle } from './support/crun.js';
import {
  contid,
  daemonPaths,
  startDaemon,
  stopDaemon,
  tempDir,
  type RunningDaemon,
} from './support/live-daemon.js';
import { field, flushLog, readEvents, syscallOf, waitForEvents, waitForText } from './support/log-events.js';

const skip = auditSkipReason() ?? crunSkipReason();
const ROUNDS = Number(process.env['CONTID_RESTART_ROUNDS'] ?? '3');

/** Busy until /stop exists: background jobs with pipes and nested shells, all the time. */
const LOOP =
  "while [ ! -e /stop ]; do ( /bin/true | /bin/cat >/dev/null ) & /bin/sh -c '/bin/true; /bin/echo x >/dev/null'; " +
  '/bin/sleep 0.05; wait; done; /bin/echo done';

interface Config {
  root: { readonly?: boolean };
  process: { user: { uid: number; gid: number } };
}

function busyBundle(dir: string, socket: string, id: string, uid: number): Bundle {
  const bundle = makeBundle(dir, { socket, contid: id, script: LOOP });
  const file = join(bundle.dir, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as Config;
  config.process.user = { uid, gid: uid };
  config.root.readonly = false;
  writeFileSync(file, JSON.stringify(config, null, 2));
  return bundle;
}

test(
  'SIGKILL at random moments and a restart: the checkpoint gives every running container its ID back',
  { skip, timeout: 120_000 + ROUNDS * 30_000 },
  async (t) => {
    await withAuditState(async (ctx) => {
      if (skipIfDaemonRegistered(t, ctx)) return;
      const dir = tempDir(t);
      const paths = daemonPaths(dir);
      const args = ['--checkpoint-interval', '2000'];
      let d: RunningDaemon = await startDaemon(paths, args);
      const random = prngInt(Number(process.env['CONTID_RESTART_SEED'] ?? Date.now() % 100_000));
      const uids = new Map([
        [61021, '721'],
        [61022, '722'],
      ]);
      const bundles = [...uids].map(([uid, id]) => busyBundle(join(dir, id), paths.socket, id, uid));
      const running = bundles.map((b) => runContainer(b));
      const sets: { pid: number; answered: boolean }[] = [];
      const sleepers = [];
      try {
        // Both containers labelled by their hook before contid is first killed.
        await waitForEvents(paths.hostLog, "the hooks' sets", (events) => {
          const sets = events
            .flatMap((e) => e.lines)
            .filter((l) => / op=set .* contid=72[12] .*res=1/.test(l));
          return sets.length >= 2 ? sets : undefined;
        });
        await sleep(500);
        for (let round = 1; round <= ROUNDS; round++) {
          await sleep(200 + random(1300));
          // Every other round, a set is under way when contid dies.
          let set: Promise<{ code: number | null }> | undefined;
          let target = -1;
          if (round % 2 === 0) {
            const sleeper = spawnWithLoginuid(TEST_LOGINUID, ['/bin/sleep', '300'], { stdio: 'ignore' });
            sleepers.push(sleeper);
            target = sleeper.pid ?? -1;
            await sleep(100);
            set = contid(['set', String(target), String(900 + round), '--socket', paths.socket]);
            await sleep(random(40));
          }
          process.kill(d.pid, 'SIGKILL');
          await d.exited;
          if (set !== undefined) sets.push({ pid: target, answered: (await set).code === 0 });
          await sleep(random(500));
          d = await startDaemon(paths, args);
          await waitForText(() => d.stderr(), /Restored the labels of start /);
        }
        // An answered set survives the crash that followed it.
        for (const [i, s] of sets.entries()) {
          if (!s.answered) continue;
          const get = await contid(['get', String(s.pid), '--socket', paths.socket]);
          assert.equal(get.stdout, `${900 + (i + 1) * 2}\n`, `the set of round ${(i + 1) * 2} was answered`);
        }
        await sleep(1000);
      } finally {
        for (const b of bundles) writeFileSync(join(b.dir, 'rootfs', 'stop'), '');
        const runs = await Promise.all(running);
        for (const s of sleepers) killChild(s);
        await flushLog(paths.hostLog).catch(() => undefined);
        const code = await stopDaemon(d);
        assert.equal(code, 0, d.stderr());
        for (const r of runs) assert.equal(r.code, 0, r.stderr);
      }
      // Judge every event of the host log (all the starts wrote to it).
      const events = readEvents(paths.hostLog);
      const inits = new Map<number, { serial: number; chain: string }>();
      for (const e of events) {
        for (const l of e.lines) {
          const m = / op=set opid=(\d+) contid=(72[12]) .* res=1/.exec(l);
          if (m !== null && l.startsWith('type=CONTAINER_OP '))
            inits.set(Number(m[1]), { serial: e.serial, chain: m[2]! });
        }
      }
      let container = 0;
      let host = 0;
      let unknown = 0;
      let hostUnknown = 0;
      const wrong: string[] = [];
      for (const e of events) {
        const s = syscallOf(e);
        if (s === undefined) continue;
        const uid = Number(field(s, 'uid'));
        const pid = Number(field(s, 'pid'));
        const init = inits.get(pid);
        const want = uids.get(uid) ?? (init !== undefined && e.serial > init.serial ? init.chain : null);
        const got =
          e.lines.find((l) => l.startsWith('type=CONTAINER_ID '))?.match(/ contid=(\S+)/)?.[1] ?? null;
        if (want === null) host++;
        else container++;
        // A process the racing set labelled: its own ID.
        if (want === null && got !== null && /^9\d\d$/.test(got)) continue;
        // A container process seen only in the moment after a restart, whose
        // parent was born and gone while contid was down: unknown, not host.
        if (want !== null && got === 'unknown') {
          unknown++;
          continue;
        }
        // The same for a host process (any process of this machine that
        // the test's rules catch) whose first record came right after a
        // restart, its parent gone: unknown is the honest answer, never a
        // container's ID.
        if (want === null && got === 'unknown') {
          hostUnknown++;
          continue;
        }
        if (want !== got) wrong.push(`expected ${want}, got ${got}: ${s.slice(0, 200)}`);
      }
      if (wrong.length > 0) {
        const keep = mkdtempSync(join(tmpdir(), 'contid-restart-failed-'));
        copyFileSync(paths.hostLog, join(keep, 'audit.log'));
        writeFileSync(join(keep, 'daemon.stderr'), d.stderr());
        t.diagnostic(`host log kept in ${keep}`);
      }
      assert.deepEqual(
        wrong.slice(0, 10),
        [],
        `${wrong.length} of ${container + host} events labelled wrong`,
      );
      assert.ok(container > 200, `container events: ${container}`);
      const restores = events.filter((e) => e.lines.some((l) => l.includes(' op=restore-done ')));
      assert.equal(restores.length, ROUNDS, 'one restore per restart');
      assert.ok(unknown <= container / 10, `unknown: ${unknown} of ${container}`);
      assert.ok(hostUnknown <= host / 100, `host events unknown: ${hostUnknown} of ${host}`);
      t.diagnostic(
        `${ROUNDS} restarts: ${container} container events (${unknown} unknown), ${host} host events (${hostUnknown} unknown), 0 wrong`,
      );
    });
  },
);
