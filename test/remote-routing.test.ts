/**
 * A container's copy of its events, sent by the daemon to the auditd inside
 * that container, end to end on the real kernel (as root): `contid run`
 * with its control socket; a crun container with its own network namespace
 * whose init is a real auditd (private configuration, `tcp_listen_port`,
 * `local_events = no`); the orchestrator's `contid set PID 71 --sink
 * 'remote:127.0.0.1:60;netns=/proc/{pid}/ns/net'`; work inside the
 * container, in a container nested in it, in a sibling container and on
 * the host. `ausearch` on the container auditd's log must find exactly
 * container 71's events, the nested one's with IDs relative to 71, and
 * nothing of the host or of the sibling.
 *
 * The test holds the audit lock and restores the audit state, also on
 * failure (withDaemon); it stops only the processes it started, by pid.
 */
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerSinkStatus } from '../src/route/container-sinks.js';
import { auditSkipReason, spawnWithLoginuid, TEST_LOGINUID, runWithLoginuid } from './support/audit-state.js';
import {
  assertExactCopy,
  assertNestedCopy,
  isOp,
  NESTING_SCRIPT,
  sinkStatus,
} from './support/container-copy.js';
import {
  CONTAINER_SCRIPT,
  crunSkipReason,
  killChild,
  MAIN,
  makeBundle,
  runContainer,
  spawnCrun,
} from './support/crun.js';
import {
  listeningAuditdSkipReason,
  listensOn,
  makeAuditdBundle,
  runAuditdContainer,
} from './support/listening-auditd.js';
import { contid, mkfifo, withDaemon, type CliResult, type DaemonPaths } from './support/live-daemon.js';
import {
  contidOf,
  field,
  flushLog,
  parseEvents,
  readEvents,
  syscallOf,
  waitForEvents,
  waitForExit,
  WAIT_MS,
  type LogEvent,
} from './support/log-events.js';

const skip = auditSkipReason() ?? crunSkipReason() ?? listeningAuditdSkipReason();
const PORT = 60;
const ID = '71';

/** Waits until the host pid crun wrote to `file` is there, and the process with it. */
async function readPidFile(file: string): Promise<number> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
    if (/^[0-9]+$/.test(text) && existsSync(`/proc/${text}`)) return Number(text);
    if (Date.now() >= deadline) throw new Error(`No pid in ${file} within ${WAIT_MS} ms`);
    await sleep(20);
  }
}

/** Resolves with the exit code of a child we started. */
async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

/**
 * `contid set PID 71 ARGS`, again while it is refused with EBUSY: auditd
 * has just made its threads, and a clone3 record may as well be a child
 * (docs/labels.md), so it counts as one for 2 s of stream time.
 */
async function setRetryingWhileBusy(
  paths: DaemonPaths,
  pid: number,
  args: readonly string[],
): Promise<CliResult> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const r = await contid(['set', String(pid), ID, ...args, '--socket', paths.socket]);
    if (r.code === 0 || !r.stderr.includes('(EBUSY)') || Date.now() >= deadline) return r;
    await sleep(200);
  }
}

/** The container's one sink, as `contid status` lists it. */
async function containerSink(paths: DaemonPaths): Promise<ContainerSinkStatus> {
  const status = await sinkStatus(paths);
  const sink = status.sinks.find((s) => s.container === ID);
  assert.ok(sink !== undefined, JSON.stringify(status));
  return sink;
}

/** The events the container's auditd logged (ausearch's view), without auditd's own DAEMON_* records. */
function ausearch(logFile: string): LogEvent[] {
  const r = spawnSync('ausearch', ['-if', logFile, '--raw'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return parseEvents(r.stdout).filter((e) => !e.lines.every((l) => l.startsWith('type=DAEMON_')));
}

void test(
  "contid set --sink 'remote:…;netns=…' copies exactly the container's events to the auditd inside it, nested IDs relative",
  { skip, timeout: 240_000 },
  async (t) => {
    await withDaemon(t, {}, async (d, paths, dir) => {
      // The container: auditd is its init, listening on the loopback of its own network namespace.
      const bundle = makeAuditdBundle(dir, PORT);
      const go = join(bundle.dir, 'rootfs', 'go');
      mkfifo(go);
      const container = await runAuditdContainer(bundle, PORT);
      const children: ChildProcess[] = [];
      t.after(async () => {
        for (const c of children) killChild(c);
        await container.stop();
      });
      const init = container.pid;
      assert.notEqual(
        readlinkSync(`/proc/${init}/ns/net`),
        readlinkSync('/proc/self/ns/net'),
        'the container has its own network',
      );
      assert.equal(listensOn(process.pid, PORT), false, 'the container publishes no port on the host');

      // The orchestrator labels the container's init and names its copy.
      const spec = 'remote:127.0.0.1:60;netns=/proc/{pid}/ns/net';
      const set = await setRetryingWhileBusy(paths, init, ['--sink', spec]);
      assert.equal(set.code, 0, set.stderr);
      let sink = await containerSink(paths);
      assert.equal(sink.kind, 'remote');
      assert.equal(sink.target, '127.0.0.1:60');

      // Work inside the container: a process entering it (crun exec), added to it by the orchestrator.
      const pidFile = join(dir, 'worker.pid');
      const worker = spawnCrun('disabled', [
        'exec',
        '--pid-file',
        pidFile,
        bundle.id,
        '/bin/sh',
        '-c',
        `read _ < /go; ${CONTAINER_SCRIPT('for i in 1 2 3; do /bin/true; done;')}`,
      ]);
      children.push(worker);
      let workerOut = '';
      worker.stderr?.setEncoding('utf8').on('data', (c: string) => (workerOut += c));
      const workerPid = await readPidFile(pidFile);
      const inject = await contid(['set', String(workerPid), ID, '--socket', paths.socket]);
      assert.equal(inject.code, 0, inject.stderr);

      // A container nested in it: a privileged process of 71 (on the host, in the container's
      // network) labels its child 5, which then runs.
      const nestGo = join(dir, 'nest-go');
      const nestChild = join(dir, 'nest-child');
      mkfifo(nestGo);
      mkfifo(nestChild);
      const nester = spawnWithLoginuid(
        TEST_LOGINUID,
        [
          'nsenter',
          `--net=/proc/${init}/ns/net`,
          '/bin/sh',
          '-c',
          NESTING_SCRIPT,
          nestGo,
          nestChild,
          process.execPath,
          MAIN,
          paths.socket,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      children.push(nester);
      let nesterErr = '';
      nester.stderr?.setEncoding('utf8').on('data', (c: string) => (nesterErr += c));
      const nesterPid = nester.pid ?? -1;
      const join71 = await contid(['set', String(nesterPid), ID, '--socket', paths.socket]);
      assert.equal(join71.code, 0, join71.stderr);

      // Everything runs at once: the container's work, the nested container, a sibling, the host.
      const sibling = makeBundle(dir, {
        socket: paths.socket,
        contid: '72',
        script: CONTAINER_SCRIPT('/bin/true;'),
        name: 'sibling',
      });
      writeFileSync(go, 'go\n');
      writeFileSync(nestGo, 'go\n');
      const [siblingRun, hostRun, workerCode, nesterCode] = await Promise.all([
        runContainer(sibling),
        runWithLoginuid(TEST_LOGINUID, ['/bin/sh', '-c', '/bin/true; /bin/echo host']),
        exitOf(worker),
        exitOf(nester),
      ]);
      assert.equal(siblingRun.code, 0, siblingRun.stderr);
      assert.equal(hostRun.code, 0, hostRun.stderr);
      assert.equal(workerCode, 0, workerOut);
      assert.equal(nesterCode, 0, nesterErr);
      await waitForExit(paths.hostLog, workerPid);
      await waitForExit(paths.hostLog, nesterPid);
      await waitForExit(paths.hostLog, siblingRun.pid);
      await waitForEvents(paths.hostLog, 'the drop of 5', (events) =>
        events.find((e) =>
          e.lines.some((l) => isOp(l) && / op=drop /.test(l) && field(l, 'old-contid') === `5,^${ID}`),
        ),
      );
      await flushLog(paths.hostLog);

      const host = readEvents(paths.hostLog);
      const mine = host.filter((e) => {
        const c = contidOf(e);
        return c === ID || c?.endsWith(`,^${ID}`) === true;
      });
      assert.ok(
        host.some((e) => contidOf(e) === `5,^${ID}`),
        'the host log has events of 5 nested in 71',
      );
      assert.ok(
        host.some((e) => contidOf(e) === '72'),
        'the host log has events of the sibling',
      );
      assert.ok(
        host.some((e) => contidOf(e) === null && syscallOf(e) !== undefined),
        'the host log has events of the host',
      );

      // The sink delivers: auditd acknowledges each record once it has logged it.
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        sink = await containerSink(paths);
        const logged = ausearch(bundle.logFile);
        if (sink.queuedEvents === 0 && logged.filter((e) => !e.lines.every(isOp)).length >= mine.length)
          break;
        if (Date.now() >= deadline) {
          assert.fail(
            `The container's auditd did not get its events: ${JSON.stringify(sink)}\n${d.stderr()}`,
          );
        }
        await sleep(100);
      }
      assert.equal(sink.state, 'open');
      assert.equal(sink.droppedEvents, 0, JSON.stringify(sink));
      assert.equal(sink.errors, 0, JSON.stringify(sink));

      const copy = ausearch(bundle.logFile);
      assertExactCopy(host, copy, ID);
      assert.equal(sink.writtenEvents, copy.length, 'every event the sink wrote is in the log, once');
      // The nested container's events carry its ID relative to 71, and nothing names another.
      assertNestedCopy(copy, ID);
      const execs = (pid: number): number =>
        copy.filter((e) => {
          const s = syscallOf(e);
          return s !== undefined && field(s, 'syscall') === '59' && field(s, 'ppid') === String(pid);
        }).length;
      assert.ok(execs(workerPid) >= 4, "the copy has the worker's execs inside the container");
      assert.ok(
        copy.some((e) => field(syscallOf(e) ?? '', 'comm') === '"true"' && contidOf(e) === '5'),
        "the copy has 5's /bin/true, labelled 5",
      );
      assert.doesNotMatch(
        readFileSync(bundle.logFile, 'utf8'),
        /contid=[^ ]*\^/,
        'no chain reaches above 71',
      );
    });
  },
);
