/**
 * Routing end to end on the real kernel, as root: `contid run` with
 * container sinks, crun containers labelled by `contid oci-hook`, and
 * processes labelled by `contid set`. Each container's copy must hold
 * exactly its own events (and those of containers nested in it, with IDs
 * relative to it), read back from the host log; a container's symbolic link
 * never redirects a sink; a stalled sink drops and counts while the host
 * log stays complete.
 *
 * Each test holds the audit lock and restores the audit state, also on
 * failure (withAuditState); it stops only the processes it started, by pid.
 * Waits are for conditions, with a deadline only to fail.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { auditSkipReason, spawnWithLoginuid, TEST_LOGINUID } from './support/audit-state.js';
import {
  crunSkipReason,
  killChild,
  MAIN,
  makeBundle,
  runContainer,
  spawnCrun,
  which,
} from './support/crun.js';
import { contid, mkfifo, tempDir, waitUntil, withDaemon } from './support/live-daemon.js';
import {
  contidOf,
  field,
  flushLog,
  parseEvents,
  readEvents,
  setOp,
  syscallOf,
  waitForExit,
} from './support/log-events.js';
import {
  assertExactCopy,
  assertNestedCopy,
  isOp,
  NESTING_SCRIPT,
  waitForClosed,
} from './support/container-copy.js';
import { SocketServer } from './support/socket-server.js';

const skip = auditSkipReason();
const containerSkip = skip ?? crunSkipReason();
const ausearchSkip = containerSkip ?? (which('ausearch') === null ? 'ausearch is needed' : undefined);
const TEST_TIMEOUT_MS = 180_000;

test(
  "two crun containers with file sinks: each sink holds exactly its container's events, and ausearch reads it",
  { skip: ausearchSkip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const sinks = tempDir(t);
    const args = ['--container-sink', `file:${sinks}/{contid}/audit.log`];
    await withDaemon(t, { args }, async (_d, paths, dir) => {
      const script = (n: string): string =>
        `( /bin/sleep 0.2; /bin/echo job${n} ) & /bin/sh -c '/bin/true; /bin/echo grand${n}'; ` +
        `for i in 1 2 3 4 5; do /bin/true; done; wait; /bin/echo done${n}`;
      const a = makeBundle(dir, { socket: paths.socket, contid: '61', script: script('a'), name: 'a' });
      const b = makeBundle(dir, { socket: paths.socket, contid: '62', script: script('b'), name: 'b' });
      const [ra, rb] = await Promise.all([runContainer(a), runContainer(b)]);
      assert.equal(ra.code, 0, ra.stderr);
      assert.equal(rb.code, 0, rb.stderr);
      await waitForExit(paths.hostLog, ra.pid);
      await waitForExit(paths.hostLog, rb.pid);
      await flushLog(paths.hostLog);
      // Both containers dropped: their sinks were flushed and closed.
      const status = await waitForClosed(paths, 2);
      const host = readEvents(paths.hostLog);
      assert.ok(setOp(host, '61') !== undefined && setOp(host, '62') !== undefined, 'the hook set both');

      for (const id of ['61', '62']) {
        const file = join(sinks, id, 'audit.log');
        const text = readFileSync(file, 'utf8');
        const copy = parseEvents(text);
        assertExactCopy(host, copy, id);
        // Top-level containers with nothing nested: no ID of anyone's in their copy.
        assert.doesNotMatch(text, / contid=/, `no container ID in ${id}'s copy`);
        const closed = status.sinks.find((s) => s.container === id);
        assert.equal(closed?.state, 'closed');
        assert.equal(closed.droppedEvents, 0);
        assert.equal(closed.writtenEvents, copy.length);

        // auditd's own tools read it: the same events.
        const search = spawnSync('ausearch', ['-if', file, '--raw'], { encoding: 'utf8' });
        assert.equal(search.status, 0, search.stderr);
        const found = new Set(parseEvents(search.stdout).map((e) => e.stamp));
        assert.deepEqual(found, new Set(copy.map((e) => e.stamp)), `ausearch -if ${file}`);
      }
      assert.deepEqual(readdirSync(sinks).sort(), ['61', '62'], 'one directory per container');
    });
  },
);

test(
  'a container nested in another: Z is "5" in its parent\'s copy, with the set and drop of 5, and has its own copy',
  { skip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const sinks = tempDir(t);
    const args = ['--container-sink', `file:${sinks}/{contid}/audit.log`];
    await withDaemon(t, { args }, async (_d, paths, dir) => {
      const go = join(dir, 'go');
      const goChild = join(dir, 'go-child');
      mkfifo(go);
      mkfifo(goChild);
      // P (container 42, root) starts C, which waits; P labels C with 5
      // (nested: a privileged caller inside 42 sets an ID under 42), then
      // lets C run, and runs on itself.
      const script = `${NESTING_SCRIPT}; /bin/echo parent`;
      const p = spawnWithLoginuid(
        TEST_LOGINUID,
        ['/bin/sh', '-c', script, go, goChild, process.execPath, MAIN, paths.socket],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      t.after(() => {
        killChild(p);
      });
      let stderr = '';
      p.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      const exited = once(p, 'exit');
      const pid = p.pid ?? -1;
      const set = await contid(['set', String(pid), '42', '--socket', paths.socket]);
      assert.equal(set.code, 0, set.stderr);
      writeFileSync(go, 'go\n');
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0, stderr);
      await waitForExit(paths.hostLog, pid);
      await flushLog(paths.hostLog);
      await waitForClosed(paths, 2);

      const host = readEvents(paths.hostLog);
      assert.ok(
        host.some((e) => contidOf(e) === '5,^42'),
        'the host log has events of 5 nested in 42',
      );
      const outerText = readFileSync(join(sinks, '42', 'audit.log'), 'utf8');
      const outer = parseEvents(outerText);
      assertExactCopy(host, outer, '42');
      assertNestedCopy(outer, '42');

      const inner = parseEvents(readFileSync(join(sinks, '42', '5', 'audit.log'), 'utf8'));
      assertExactCopy(host, inner, '5,^42');
      assert.ok(
        inner.every((e) => contidOf(e) === null && !e.lines.some(isOp)),
        "5's own copy names no container",
      );
      assert.ok(
        inner.some((e) => field(syscallOf(e) ?? '', 'comm') === '"true"'),
        "5's copy has C's /bin/true",
      );
    });
  },
);

test(
  'a symbolic link the container planted on its sink path is not followed: the sink fails, the host log is whole',
  { skip: containerSkip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await withDaemon(t, {}, async (d, paths, dir) => {
      const victim = join(dir, 'victim');
      mkdirSync(victim);
      // No hook: the container plants the link first, then the host labels it.
      const bundle = makeBundle(dir, {
        socket: paths.socket,
        contid: '0',
        hooks: [],
        script:
          `/bin/busybox mkdir -p /var/log && /bin/busybox ln -s ${victim} /var/log/audit && ` +
          'read _ < /go; /bin/true; /bin/echo done',
      });
      const rootfs = join(bundle.dir, 'rootfs');
      // A writable root, as most images are, so that the container can plant its link.
      const configPath = join(bundle.dir, 'config.json');
      const config = JSON.parse(readFileSync(configPath, 'utf8')) as { root: { readonly: boolean } };
      config.root.readonly = false;
      writeFileSync(configPath, JSON.stringify(config));
      mkfifo(join(rootfs, 'go'));
      const run = spawnCrun('disabled', ['run', '--bundle', bundle.dir, bundle.id]);
      t.after(() => {
        killChild(run);
        spawnSync('crun', ['delete', '--force', bundle.id], { stdio: 'ignore' });
      });
      const closed = once(run, 'close');
      await waitUntil(() => existsSync(join(rootfs, 'var', 'log', 'audit')), 'planted link');
      const state = spawnSync('crun', ['state', bundle.id], { encoding: 'utf8' });
      assert.equal(state.status, 0, state.stderr);
      const pid = (JSON.parse(state.stdout) as { pid: number }).pid;
      // Wait for the shell to be blocked on the fifo with no children left.
      await waitUntil(
        () => readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim() === '',
        'the container shell without children',
      );
      const spec = `file:/var/log/audit/audit.log;root=${rootfs}`;
      const set = await contid(['set', String(pid), '63', '--sink', spec, '--socket', paths.socket]);
      assert.equal(set.code, 0, set.stderr);
      writeFileSync(join(rootfs, 'go'), 'go\n');
      await closed;
      await waitForExit(paths.hostLog, pid);
      await flushLog(paths.hostLog);
      const status = await waitForClosed(paths, 1);

      assert.deepEqual(readdirSync(victim), [], 'nothing was written through the link');
      const sink = status.sinks.find((s) => s.container === '63');
      assert.ok(sink !== undefined, JSON.stringify(status));
      assert.ok(sink.errors >= 1, JSON.stringify(sink));
      assert.match(d.stderr(), /Container 63 sink: Cannot open .*symbolic link \(ELOOP\)/);
      // The host log has the container's events all the same; the sink counted each as dropped.
      const host = readEvents(paths.hostLog);
      assert.equal(sink.writtenEvents, 0);
      assert.equal(sink.droppedEvents, host.filter((e) => contidOf(e) === '63').length, JSON.stringify(sink));
      assert.ok(
        host.some((e) => contidOf(e) === '63' && field(syscallOf(e) ?? '', 'comm') === '"true"'),
        "the host log has the container's /bin/true",
      );
    });
  },
);

test(
  "a stalled unix sink drops and counts its container's events while the host log gets every one",
  { skip: containerSkip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const sockDir = tempDir(t);
    const server = new SocketServer(join(sockDir, 'reader.sock'));
    await server.listen();
    server.stall();
    t.after(async () => {
      await server.stop();
    });
    const spec = `unix:${server.path};queue-events=16;queue-bytes=16384`;
    await withDaemon(t, { args: ['--container-sink', spec] }, async (_d, paths, dir) => {
      const loops = 600;
      const bundle = makeBundle(dir, {
        socket: paths.socket,
        contid: '64',
        script: `i=0; while [ $i -lt ${loops} ]; do /bin/true; i=$((i+1)); done; /bin/echo done`,
      });
      const run = await runContainer(bundle);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, 'done\n');
      await waitForExit(paths.hostLog, run.pid);
      await flushLog(paths.hostLog);
      const status = await waitForClosed(paths, 1);

      const host = readEvents(paths.hostLog);
      const mine = host.filter((e) => contidOf(e) === '64');
      const execs = mine.filter((e) => {
        const s = syscallOf(e);
        return s !== undefined && field(s, 'syscall') === '59' && field(s, 'comm') === '"true"';
      });
      assert.equal(execs.length, loops, 'the host log has every exec of the container');
      const sink = status.sinks.find((s) => s.container === '64');
      assert.ok(sink !== undefined, JSON.stringify(status));
      assert.ok(sink.droppedEvents > 0, `the stalled sink dropped: ${JSON.stringify(sink)}`);
      // Every event of the container was either written or dropped, and counted.
      assert.equal(sink.writtenEvents + sink.droppedEvents, mine.length, JSON.stringify(sink));
      assert.equal(sink.queuedEvents, 0);
    });
  },
);
