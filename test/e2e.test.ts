/**
 * End to end on the real kernel, as root: `contid run` as a child process
 * (private host log, keyring, state directory and control socket in a
 * temporary directory), the `contid` commands as separate processes, and
 * crun containers with a busybox rootfs labelled by `contid oci-hook`.
 *
 * Each test holds the audit lock and restores the audit state, also on
 * failure (withAuditState); it stops only the processes it started, by pid.
 * Records are awaited by polling the host log, never by fixed sleeps.
 */
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { deriveContid } from '../src/control/oci.js';
import { contidRuleOwner } from '../src/daemon/rules.js';
import {
  auditSkipReason,
  skipIfDaemonRegistered,
  spawnWithLoginuid,
  TEST_LOGINUID,
  withAuditState,
} from './support/audit-state.js';
import {
  CONTAINER_SCRIPT,
  crunSkipReason,
  killChild,
  MAIN,
  makeBundle,
  runContainer,
  spawnCrun,
  which,
  type Bundle,
} from './support/crun.js';
import {
  contid,
  daemonPaths,
  mkfifo,
  readlinkOrNull,
  releaseFifo,
  startDaemon,
  stopDaemon,
  tempDir,
  waitForChildren,
  waitUntil,
  withDaemon,
  type DaemonPaths,
  type RunningDaemon,
} from './support/live-daemon.js';
import {
  assertOnlyTreeLabelled,
  contidOf,
  descendants,
  field,
  flushLog,
  readEvents,
  setOp,
  syscallOf,
  WAIT_MS,
  waitForEvents,
  waitForExit,
  waitForText,
  type LogEvent,
} from './support/log-events.js';
import { compileForge, gccSkipReason } from './support/programs.js';

const skip = auditSkipReason();
const containerSkip = skip ?? crunSkipReason() ?? gccSkipReason();
const unprivilegedSkip = skip ?? (which('setpriv') === null ? 'setpriv is needed' : undefined);

const TEST_TIMEOUT_MS = 180_000;

// ---------------------------------------------------------------- (a), (b)

test(
  'contid set labels a fresh process tree: every later event of it carries contid=42, nothing else does',
  { skip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await withDaemon(t, {}, async (_d, paths, dir) => {
      const fifo = join(dir, 'go');
      mkfifo(fifo);
      // Waits (no children), then forks a short-lived child, a grandchild
      // through a nested shell, a background job, and finally execs.
      const script =
        'read _ < "$0"; /bin/true; /bin/sh -c "/bin/true; /bin/echo grandchild"; ' +
        '( /bin/sleep 0.2; /bin/true ) & /bin/echo parent; wait; exec /bin/true';
      const target = spawnWithLoginuid(TEST_LOGINUID, ['/bin/sh', '-c', script, fifo], { stdio: 'ignore' });
      t.after(() => {
        killChild(target);
      });
      const pid = target.pid ?? -1;
      const exited = once(target, 'exit');
      const set = await contid(['set', String(pid), '42', '--socket', paths.socket, '--name', 'e2e-a']);
      assert.equal(set.code, 0, set.stderr);
      assert.equal(set.stdout, `pid ${pid}: contid 42\n`);
      writeFileSync(fifo, 'go\n');
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0);
      await waitForExit(paths.hostLog, pid);
      await flushLog(paths.hostLog);

      const events = readEvents(paths.hostLog);
      const op = setOp(events, '42');
      assert.ok(op !== undefined, 'the CONTAINER_OP set is in the host log');
      assert.equal(op.opid, pid);
      const tree = descendants(events, pid);
      assert.ok(tree.size >= 6, `the tree has the child, grandchildren and the job: ${[...tree].join(' ')}`);
      const labelled = assertOnlyTreeLabelled(events, tree, op.serial, '42');
      const execs = labelled
        .map(syscallOf)
        .filter((s) => s !== undefined && field(s, 'syscall') === '59')
        .map((s) => field(s!, 'exe'));
      for (const exe of ['"/usr/bin/true"', '"/usr/bin/echo"', '"/usr/bin/sleep"']) {
        assert.ok(
          execs.includes(exe) || execs.includes(exe.replace('/usr', '')),
          `an exec of ${exe}: ${execs.join(' ')}`,
        );
      }
      assert.match(_d.stderr(), new RegExp(`Operation set pid ${pid} contid 42 name "e2e-a" .*: accepted`));
    });
  },
);

test(
  'the commands: an unprivileged caller gets EPERM, a parent EBUSY, a second set EEXIST; get and status answer',
  { skip: unprivilegedSkip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    // The socket's directory (and the temporary directory above it) is 0711
    // so that uid 65534 can reach the socket: the server, not the directory,
    // must refuse it.
    await withDaemon(t, { openDir: true }, async (_d, paths) => {
      const sock = ['--socket', paths.socket];
      const target = spawnWithLoginuid(TEST_LOGINUID, ['/bin/sleep', '120'], { stdio: 'ignore' });
      // In a process group of its own, so that its background sleep goes with it.
      const parent = spawnWithLoginuid(TEST_LOGINUID, ['/bin/sh', '-c', '/bin/sleep 120 & wait'], {
        stdio: 'ignore',
        detached: true,
      });
      t.after(() => {
        killChild(target);
        if (parent.pid !== undefined) {
          try {
            process.kill(-parent.pid, 'SIGKILL');
          } catch {
            // Already gone.
          }
        }
      });
      const pid = target.pid ?? -1;

      const nobody = await contid(
        ['set', String(pid), '42', ...sock],
        ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'],
      );
      assert.equal(nobody.code, 1, nobody.stderr);
      assert.equal(
        nobody.stderr,
        `contid: Cannot set contid of pid ${pid}: the caller is neither privileged nor delegated (EPERM)\n`,
      );

      await waitForChildren(parent.pid ?? -1);
      const busy = await contid(['set', String(parent.pid), '43', ...sock]);
      assert.equal(busy.code, 1, busy.stderr);
      assert.match(busy.stderr, /^contid: Cannot set contid of pid \d+: .*\(EBUSY\)\n$/);

      const first = await contid(['set', String(pid), '42', ...sock]);
      assert.equal(first.code, 0, first.stderr);
      const second = await contid(['set', String(pid), '42', ...sock]);
      assert.equal(second.code, 1, second.stderr);
      assert.match(second.stderr, /\(EEXIST\)\n$/);

      const get = await contid(['get', String(pid), ...sock]);
      assert.equal(get.code, 0, get.stderr);
      assert.equal(get.stdout, '42\n');
      const getNobody = await contid(
        ['get', String(pid), ...sock],
        ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'],
      );
      assert.equal(getNobody.code, 1);
      assert.match(getNobody.stderr, /\(EPERM\)\n$/);

      const status = await contid(['status', ...sock]);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /^records +[0-9,]+ \([0-9.]+\/s\)$/m);
      assert.match(status.stdout, /^losses +0 ENOBUFS, 0 kernel lost, [0-9,]+ serial gaps$/m);
      assert.match(status.stdout, /^processes +[1-9][0-9,]*$/m);
      assert.match(status.stdout, /^containers +1$/m);

      // Every attempt is in the host log, refused ones included.
      await flushLog(paths.hostLog);
      const ops = readEvents(paths.hostLog).flatMap((e) =>
        e.lines.filter((l) => l.startsWith('type=CONTAINER_OP ')),
      );
      assert.equal(ops.filter((l) => / errno=EPERM$/.test(l)).length, 1, ops.join('\n'));
      assert.equal(ops.filter((l) => / errno=EBUSY$/.test(l)).length, 1, ops.join('\n'));
      assert.equal(ops.filter((l) => / errno=EEXIST$/.test(l)).length, 1, ops.join('\n'));
      assert.equal(ops.filter((l) => / res=1$/.test(l)).length, 1, ops.join('\n'));
    });
  },
);

// ---------------------------------------------------------------- delegation

/**
 * The delegated orchestrator's requests, run by O itself (`exec node -e`) so
 * that O is the caller: a grant belongs to that process only, as it is when
 * granted (its executable included). It waits until the test has granted it
 * (a fifo), sends a set for a process outside its tree, then one for its
 * child C, over one connection, then lets C go and prints the answers as a
 * JSON array.
 */
const ORCHESTRATOR_CLIENT = `
const net = require('node:net');
const fs = require('node:fs');
const [socket, other, child, go, granted] = process.argv.slice(1);
fs.readFileSync(granted);
const requests = [
  { op: 'set', pid: Number(other), contid: '6', id: 'other' },
  { op: 'set', pid: Number(child), contid: '5', id: 'child' },
];
const answers = [];
let buffer = '';
const s = net.connect(socket, () => s.write(requests.map((r) => JSON.stringify(r) + '\\n').join('')));
s.setEncoding('utf8');
s.on('data', (chunk) => {
  buffer += chunk;
  for (let i = buffer.indexOf('\\n'); i >= 0; i = buffer.indexOf('\\n')) {
    answers.push(JSON.parse(buffer.slice(0, i)));
    buffer = buffer.slice(i + 1);
  }
  if (answers.length === requests.length) s.end();
});
s.on('error', (e) => console.error(e.message));
s.on('close', () => {
  fs.writeFileSync(go, 'go\\n');
  process.stdout.write(JSON.stringify(answers) + '\\n');
});
`;

interface ControlAnswer {
  readonly ok: boolean;
  readonly id?: string;
  readonly errno?: string;
  readonly contid?: string;
  readonly record?: string;
}

test(
  'a nested orchestrator given a grant labels its children with a chain',
  { skip: unprivilegedSkip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    // 0711 directories: O runs as uid 65534 and must reach the socket and its fifos.
    await withDaemon(t, { openDir: true }, async (d, paths, dir) => {
      const sock = ['--socket', paths.socket];
      const unprivileged = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all'];
      const go = join(dir, 'go');
      const goChild = join(dir, 'go-child');
      const granted = join(dir, 'granted');
      for (const fifo of [go, goChild, granted]) {
        mkfifo(fifo);
        chownSync(fifo, 65534, 65534);
      }
      const node = realpathSync(process.execPath);
      // A process outside O's tree, for the EXDEV and EPERM attempts.
      const other = spawnWithLoginuid(TEST_LOGINUID, ['/bin/sleep', '120'], { stdio: 'ignore' });
      // O, without CAP_AUDIT_CONTROL: waits (no children), forks C, which
      // waits too, then becomes the client, so that O itself asks.
      const script =
        'read _ < "$0"; ' +
        '( read _ < "$1"; /bin/true; /bin/sh -c "/bin/true; /bin/echo grandchild"; ' +
        '( /bin/sleep 0.2; /bin/true ) & /bin/echo child; wait; exec /bin/true ) >/dev/null 2>&1 & ' +
        'exec "$2" -e "$3" "$4" "$5" "$!" "$1" "$6"';
      const orchestrator = spawnWithLoginuid(
        TEST_LOGINUID,
        [
          ...unprivileged,
          '/bin/sh',
          '-c',
          script,
          go,
          goChild,
          node,
          ORCHESTRATOR_CLIENT,
          paths.socket,
          String(other.pid),
          granted,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' },
      );
      let stdout = '';
      let stderr = '';
      orchestrator.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      orchestrator.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      const closed = once(orchestrator, 'close');
      const o = orchestrator.pid ?? -1;
      try {
        // Privileged: label O while it has no children; once it is the
        // client (node), delegate to it: the grant is for that identity.
        const set = await contid(['set', String(o), '42', ...sock]);
        assert.equal(set.code, 0, set.stderr);
        writeFileSync(go, 'go\n');
        await waitUntil(() => readlinkOrNull(`/proc/${o}/exe`) === node, 'O to exec the client');
        const grant = await contid(['grant', String(o), ...sock]);
        assert.equal(grant.code, 0, grant.stderr);
        assert.equal(grant.stdout, `pid ${o}: may label its descendants\n`);
        assert.equal(orchestrator.exitCode, null, stderr);
        writeFileSync(granted, 'go\n');
        const [code] = (await closed) as [number | null];
        assert.equal(code, 0, stderr);

        const answers = JSON.parse(stdout) as ControlAnswer[];
        assert.equal(answers.length, 2, stdout);
        const [exdev, nested] = answers as [ControlAnswer, ControlAnswer];
        assert.equal(exdev.id, 'other');
        assert.equal(exdev.ok, false, stdout);
        assert.equal(exdev.errno, 'EXDEV', stdout);
        assert.equal(nested.id, 'child');
        assert.equal(nested.ok, true, stdout);
        assert.equal(nested.contid, '5');
        const c = Number(/ opid=([0-9]+) /.exec(nested.record ?? '')?.[1]);
        assert.match(
          nested.record ?? '',
          new RegExp(
            `^op=set opid=${c} contid=5 old-contid=42 pid=${o} uid=65534 auid=${TEST_LOGINUID} exe="${node}" res=1$`,
          ),
        );

        // An unprivileged process without a grant may not delegate either.
        const nobody = await contid(['grant', String(other.pid), ...sock], unprivileged);
        assert.equal(nobody.code, 1, nobody.stderr);
        assert.equal(
          nobody.stderr,
          `contid: Cannot grant pid ${other.pid} the right to label its descendants: the caller is neither privileged nor delegated (EPERM)\n`,
        );

        await waitForExit(paths.hostLog, o);
        await waitForExit(paths.hostLog, c);
        await flushLog(paths.hostLog);
        const events = readEvents(paths.hostLog);

        // The operations, as recorded.
        const ops = events.flatMap((e) =>
          e.lines.filter((l) => l.startsWith('type=CONTAINER_OP ')).map((l) => ({ serial: e.serial, l })),
        );
        const opLine = (re: RegExp): { serial: number; l: string } => {
          const found = ops.filter((x) => re.test(x.l));
          assert.equal(found.length, 1, `${String(re)} once in:\n${ops.map((x) => x.l).join('\n')}`);
          return found[0]!;
        };
        const setO = opLine(
          new RegExp(
            ` op=set opid=${o} contid=42 old-contid=-1 pid=[0-9]+ uid=0 auid=[0-9]+ exe="${node}" res=1$`,
          ),
        );
        const grantO = opLine(
          new RegExp(
            ` op=grant opid=${o} contid=42 old-contid=42 pid=[0-9]+ uid=0 auid=[0-9]+ exe="${node}" res=1$`,
          ),
        );
        const refused = opLine(
          new RegExp(
            ` op=set opid=${other.pid} contid=6 old-contid=-1 pid=${o} uid=65534 auid=${TEST_LOGINUID} exe="${node}" res=0 errno=EXDEV$`,
          ),
        );
        const setC = opLine(
          new RegExp(
            ` op=set opid=${c} contid=5 old-contid=42 pid=${o} uid=65534 auid=${TEST_LOGINUID} exe="${node}" res=1$`,
          ),
        );
        opLine(
          new RegExp(
            ` op=grant opid=${other.pid} contid=-1 old-contid=-1 pid=[0-9]+ uid=65534 .* res=0 errno=EPERM$`,
          ),
        );
        assert.ok(
          setO.serial < grantO.serial && grantO.serial < refused.serial && refused.serial < setC.serial,
        );
        // The end of C's tree drops 5, and 42 once O has exited too (5 holds its parent).
        opLine(/ op=drop opid=[0-9]+ contid=-1 old-contid=5,\^42 .* res=1$/);
        opLine(/ op=drop opid=[0-9]+ contid=-1 old-contid=42 .* res=1$/);

        // The labels: C's tree after its set is 5,^42, the rest of O's tree after O's set 42, nothing else.
        const treeO = descendants(events, o);
        const treeC = descendants(events, c);
        assert.ok(treeC.size >= 5, `C, its children and grandchild: ${[...treeC].join(' ')}`);
        assert.ok(!treeC.has(o));
        const nestedEvents: LogEvent[] = [];
        const outerEvents: LogEvent[] = [];
        for (const e of events) {
          const chain = contidOf(e);
          const s = syscallOf(e);
          const pid = s === undefined ? undefined : Number(field(s, 'pid'));
          if (pid !== undefined && treeC.has(pid) && e.serial > setC.serial) {
            assert.equal(chain, '5,^42', `an event of pid ${pid} in C's tree:\n${e.lines.join('\n')}`);
            nestedEvents.push(e);
          } else if (pid !== undefined && treeO.has(pid) && e.serial > setO.serial) {
            assert.equal(chain, '42', `an event of pid ${pid} in O's tree:\n${e.lines.join('\n')}`);
            outerEvents.push(e);
          } else {
            assert.equal(chain, null, `a host event is labelled:\n${e.lines.join('\n')}`);
          }
        }
        const syscalls = (list: LogEvent[], pid?: number): string[] =>
          list
            .map(syscallOf)
            .filter((s) => s !== undefined && (pid === undefined || field(s, 'pid') === String(pid)))
            .map((s) => `${field(s!, 'syscall')} ${field(s!, 'exe')}`);
        const inC = syscalls(nestedEvents);
        for (const exe of ['true', 'echo', 'sleep'])
          assert.ok(
            inC.some((s) => new RegExp(`^59 "(?:/usr)?/bin/${exe}"$`).test(s)),
            `an exec of ${exe}: ${inC.join(', ')}`,
          );
        assert.ok(inC.includes(`231 "/usr/bin/true"`) || inC.includes(`231 "/bin/true"`), inC.join(', '));
        const ofO = syscalls(outerEvents, o);
        assert.ok(ofO.includes(`59 "${node}"`), `O's exec of node: ${ofO.join(', ')}`);
        assert.ok(ofO.includes(`231 "${node}"`), `O's exit: ${ofO.join(', ')}`);
        assert.ok(
          ofO.some((s) => s.startsWith('56 ') || s.startsWith('57 ')),
          `O's fork of C: ${ofO.join(', ')}`,
        );
        assert.match(d.stderr(), new RegExp(`Operation set pid ${c} contid 5 .*: accepted`));
      } finally {
        releaseFifo(goChild);
        killChild(orchestrator);
        killChild(other);
      }
    });
  },
);

// ---------------------------------------------------------------- (c), (d)

test(
  'a crun container labelled by the OCI hook: every event inside carries contid=77, no host event one',
  { skip: containerSkip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await withDaemon(t, {}, async (d, paths, dir) => {
      const bundle = makeBundle(dir, { socket: paths.socket, contid: '77', script: CONTAINER_SCRIPT('') });
      const run = await runContainer(bundle);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, 'grandchild\njob\ndone\n');
      await waitForExit(paths.hostLog, run.pid);
      await flushLog(paths.hostLog);

      const events = readEvents(paths.hostLog);
      const op = setOp(events, '77');
      assert.ok(op !== undefined, 'the hook set 77');
      const tree = descendants(events, op.opid);
      assert.ok(!tree.has(run.pid), 'the test shell is not in the container');
      assert.ok(tree.size >= 6, `the container's processes: ${[...tree].join(' ')}`);
      const labelled = assertOnlyTreeLabelled(events, tree, op.serial, '77');
      const comms = new Set(labelled.map((e) => field(syscallOf(e)!, 'comm')));
      for (const comm of ['"sh"', '"true"', '"echo"', '"sleep"'])
        assert.ok(comms.has(comm), `${comm} in ${[...comms].join(' ')}`);
      // The host side: crun, unshare and the test shell made events, unlabelled.
      const host = events.filter((e) => {
        const s = syscallOf(e);
        return s !== undefined && field(s, 'comm') === '"crun"' && !tree.has(Number(field(s, 'pid')));
      });
      assert.ok(host.length > 0, 'crun events on the host');
      for (const e of host) assert.equal(contidOf(e), null);
      assert.match(
        d.stderr(),
        new RegExp(
          `Operation set pid ${op.opid} contid 77 owner "oci:${bundle.id}" create-only name "${bundle.id}" meta .*"oci.contid-source":"annotation".*: accepted`,
        ),
      );
    });
  },
);

test(
  'a process inside the container forging a marker changes nothing and is reported as CONTID_FORGERY',
  { skip: containerSkip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await withDaemon(t, {}, async (d, paths, dir) => {
      const startId = /start ([0-9TZ]+-[0-9]+-[0-9a-f]+)/.exec(d.stderr())?.[1];
      assert.ok(startId !== undefined, d.stderr());
      // Would relabel this test process, with the daemon's real start id and seq 1000.
      const forged =
        `contid-marker v=1 start=${startId} seq=1000 op=set pid=${process.pid} contid=666 ` +
        `caller-pid=1 caller-uid=0 caller-auid=4294967295 caller-exe=2f privileged=1 mac=${'0'.repeat(64)}`;
      const bundle = makeBundle(dir, {
        socket: paths.socket,
        contid: '77',
        script: CONTAINER_SCRIPT('/bin/fx-forge 2942 /forged.txt;'),
      });
      compileForge(join(bundle.dir, 'rootfs', 'bin', 'fx-forge'), { static: true });
      writeFileSync(join(bundle.dir, 'rootfs', 'forged.txt'), forged);

      const run = await runContainer(bundle);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^fx-forge type=2942 ack error=0$/m);
      await waitForExit(paths.hostLog, run.pid);
      await flushLog(paths.hostLog);

      const events = readEvents(paths.hostLog);
      const op = setOp(events, '77');
      assert.ok(op !== undefined, 'the hook set 77');
      const tree = descendants(events, op.opid);
      const forgerExec = events.find((e) => {
        const s = syscallOf(e);
        return s !== undefined && field(s, 'syscall') === '59' && field(s, 'exe') === '"/bin/fx-forge"';
      });
      assert.ok(forgerExec !== undefined, 'the forger ran');
      const forger = Number(field(syscallOf(forgerExec)!, 'pid'));
      assert.ok(tree.has(forger));
      const reports = events.flatMap((e) => e.lines.filter((l) => l.startsWith('type=CONTID_FORGERY ')));
      assert.equal(reports.length, 1, reports.join('\n'));
      assert.match(
        reports[0]!,
        new RegExp(` reason=wrong-sender pid=${forger} uid=0 auid=${TEST_LOGINUID} contid=77 `),
      );
      // Labels unchanged: no operation for 666, this process still unset, the container still 77.
      assert.equal(setOp(events, '666'), undefined);
      assert.ok(
        !events.some((e) => e.lines.some((l) => / contid=666/.test(l) && !l.includes('contid-marker'))),
      );
      assertOnlyTreeLabelled(events, tree, op.serial, '77');
      const get = await contid(['get', String(process.pid), '--socket', paths.socket]);
      assert.equal(get.stdout, 'unset\n', get.stderr);
      const status = await contid(['status', '--json', '--socket', paths.socket]);
      assert.equal((JSON.parse(status.stdout) as { status: { forgeries: number } }).status.forgeries, 1);
    });
  },
);

test(
  'OCI hook sets are create-only and owned by their container: a second container annotated with a live ID does not start',
  { skip: containerSkip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await withDaemon(t, {}, async (d, paths, dir) => {
      // Tenant A's container holds 91 while it waits on a fifo in its rootfs.
      const a = makeBundle(dir, {
        socket: paths.socket,
        contid: '91',
        script: 'read _ < /go; /bin/echo done-a',
        name: 'a',
      });
      const go = join(a.dir, 'rootfs', 'go');
      mkfifo(go);
      const running = runContainer(a);
      const sleepers: ChildProcess[] = [];
      try {
        const setA = await waitForEvents(paths.hostLog, 'the set of 91', (events) => setOp(events, '91'));
        // Tenant B annotates its container with A's live ID: refused, B never runs.
        const b = makeBundle(dir, {
          socket: paths.socket,
          contid: '91',
          script: '/bin/echo started-b',
          name: 'b',
        });
        const runB = await runContainer(b);
        assert.notEqual(runB.code, 0, 'B must not start');
        assert.doesNotMatch(runB.stdout, /started-b/);
        // crun does not pass the hook's stderr on; the daemon logs the refusal.
        assert.match(
          d.stderr(),
          new RegExp(
            `Operation set pid [0-9]+ contid 91 owner "oci:${b.id}" create-only .*: refused \\(ENOTUNIQ\\)`,
          ),
        );
        const refused = await waitForEvents(paths.hostLog, 'the refused set of 91', (events) =>
          events
            .flatMap((e) => e.lines)
            .find(
              (l) =>
                l.startsWith('type=CONTAINER_OP ') && / op=set .* contid=91 .*res=0 errno=ENOTUNIQ$/.test(l),
            ),
        );
        assert.notEqual(Number(field(refused, 'opid')), setA.opid);

        // A's owner is the container: a privileged caller naming it injects a
        // process (as `crun exec` would need); the same caller without it cannot.
        const sleeper = (): ChildProcess => {
          const child = spawnWithLoginuid(TEST_LOGINUID, ['/bin/sleep', '60'], { stdio: 'ignore' });
          sleepers.push(child);
          return child;
        };
        const injected = sleeper();
        const inject = await contid([
          'set',
          String(injected.pid),
          '91',
          '--owner',
          `oci:${a.id}`,
          '--socket',
          paths.socket,
        ]);
        assert.equal(inject.code, 0, inject.stderr);
        const stranger = sleeper();
        const plain = await contid(['set', String(stranger.pid), '91', '--socket', paths.socket]);
        assert.equal(plain.code, 1);
        assert.match(plain.stderr, /\(ENOTUNIQ\)/);
        const create = await contid([
          'set',
          String(stranger.pid),
          '91',
          '--owner',
          `oci:${a.id}`,
          '--create',
          '--socket',
          paths.socket,
        ]);
        assert.equal(create.code, 1);
        assert.match(create.stderr, /\(ENOTUNIQ\)/);

        // With the annotation turned off, the same annotation is ignored: C gets
        // the ID derived from its container id and starts.
        const hook = ['node', MAIN, 'oci-hook', '--socket', paths.socket, '--annotation', 'none'];
        const c = makeBundle(dir, {
          socket: paths.socket,
          contid: '91',
          script: '/bin/echo started-c',
          name: 'c',
          hooks: [{ path: process.execPath, args: hook }],
        });
        const runC = await runContainer(c);
        assert.equal(runC.code, 0, runC.stderr);
        assert.equal(runC.stdout, 'started-c\n');
        const derived = deriveContid(c.id);
        await waitForEvents(paths.hostLog, `the set of ${derived}`, (events) => setOp(events, derived));
        assert.match(
          d.stderr(),
          new RegExp(
            `Operation set pid [0-9]+ contid ${derived} .*"oci.contid-source":"derived".*: accepted`,
          ),
        );
      } finally {
        releaseFifo(go);
        for (const child of sleepers) killChild(child);
        spawnSync('crun', ['delete', '--force', a.id], { stdio: 'ignore' });
        await running;
      }
      const runA = await running;
      assert.equal(runA.code, 0, runA.stderr);
      assert.equal(runA.stdout, 'done-a\n');
    });
  },
);

test(
  'with --adopt yes, a process that enters a container through crun exec is adopted into its contid',
  { skip: containerSkip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await withDaemon(t, { args: ['--adopt', 'yes'] }, async (d, paths, dir) => {
      // The container waits on a fifo in its rootfs while the test execs into it.
      const bundle = makeBundle(dir, {
        socket: paths.socket,
        contid: '78',
        script: 'read _ < /go; /bin/echo done',
      });
      const go = join(bundle.dir, 'rootfs', 'go');
      mkfifo(go);
      const running = runContainer(bundle, 'cgroupfs');
      try {
        await adoptedThroughExec(d, paths, bundle, go, running);
      } finally {
        // On failure the container may still wait on its fifo: end it before the directory goes.
        releaseFifo(go);
        spawnSync('crun', ['delete', '--force', bundle.id], { stdio: 'ignore' });
        await running;
      }
    });
  },
);

/** The body of the adoption test, once the container runs. */
async function adoptedThroughExec(
  d: RunningDaemon,
  paths: DaemonPaths,
  bundle: Bundle,
  go: string,
  running: ReturnType<typeof runContainer>,
): Promise<void> {
  const anchor = await waitForText(() => d.stderr(), /Adoption: container 78 is cgroup (\S+)/);
  assert.match(anchor[1]!, new RegExp(`/${bundle.id}$`), d.stderr());

  // crun exec joins the container's cgroup and namespaces; nobody calls contid for it.
  const script = '/bin/sleep 0.5; /bin/true; /bin/echo exec-ok';
  const exec = spawnCrun('cgroupfs', ['exec', bundle.id, '/bin/sh', '-c', script]);
  let out = '';
  exec.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
  exec.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
  const [execCode] = (await once(exec, 'close')) as [number | null];
  assert.equal(execCode, 0, out);
  assert.equal(out, 'exec-ok\n');
  releaseFifo(go);
  const run = await running;
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'done\n');
  await waitForExit(paths.hostLog, run.pid);
  await flushLog(paths.hostLog);

  const events = readEvents(paths.hostLog);
  const op = setOp(events, '78');
  assert.ok(op !== undefined, 'the hook set 78');
  const container = descendants(events, op.opid);
  const entered = descendants(events, exec.pid ?? -1);
  assert.ok(!container.has(exec.pid ?? -1));

  const adopts = events.flatMap((e) =>
    e.lines.filter((l) => l.startsWith('type=CONTAINER_OP ') && / op=adopt /.test(l)),
  );
  const accepted = adopts.filter((l) => / res=1$/.test(l));
  assert.ok(accepted.length >= 1, `an accepted adopt:\n${adopts.join('\n')}\n${d.stderr()}`);
  for (const l of accepted) {
    assert.equal(field(l, 'contid'), '78', l);
    assert.equal(field(l, 'pid'), String(d.pid), 'asked by the daemon itself');
    const opid = Number(field(l, 'opid'));
    assert.ok(entered.has(opid), `adopted pid ${opid} entered through crun exec:\n${l}`);
  }
  // The shell forks /bin/true and /bin/echo half a second after it entered:
  // by then it was adopted, so they inherit 78 from their first event on.
  const late = events.filter((e) => {
    const s = syscallOf(e);
    if (s === undefined || !entered.has(Number(field(s, 'pid')))) return false;
    return ['"true"', '"echo"'].includes(field(s, 'comm') ?? '') && field(s, 'syscall') === '59';
  });
  assert.equal(late.length, 2, late.map((e) => e.lines[0]).join('\n'));
  for (const e of late) assert.equal(contidOf(e), '78', e.lines.join('\n'));
  // Nothing outside the container and the processes that entered it is labelled.
  for (const e of events) {
    const s = syscallOf(e);
    if (s === undefined || contidOf(e) === null) continue;
    const pid = Number(field(s, 'pid'));
    assert.ok(container.has(pid) || entered.has(pid), `labelled outside:\n${e.lines.join('\n')}`);
  }
  const status = await contid(['status', '--json', '--socket', paths.socket]);
  const adoption = (JSON.parse(status.stdout) as { status: { adoption: { adopted: number } } }).status
    .adoption;
  assert.ok(adoption.adopted >= 1, status.stdout);
}

test(
  'a labelled process killed by SIGKILL ends in the stream (exit marker): its container drops, the ID is free',
  { skip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await withDaemon(t, {}, async (d, paths) => {
      const sock = ['--socket', paths.socket];
      const target = spawnWithLoginuid(TEST_LOGINUID, ['/bin/sleep', '120'], { stdio: 'ignore' });
      t.after(() => {
        killChild(target);
      });
      const pid = target.pid ?? -1;
      await sleep(200); // let the loginuid wrapper exec sleep
      const set = await contid(['set', String(pid), '61', ...sock]);
      assert.equal(set.code, 0, set.stderr);
      const exited = once(target, 'exit');
      process.kill(pid, 'SIGKILL');
      await exited;
      // No exit_group record: only the exit marker can end it.
      const drop = await waitForEvents(paths.hostLog, 'the drop of 61', (events) =>
        events.find((e) => e.lines.some((l) => / op=drop opid=/.test(l) && / old-contid=61 /.test(l))),
      );
      const marker = drop.lines.find((l) => l.includes('contid-marker') && l.includes(' op=exit '));
      assert.ok(marker !== undefined, drop.lines.join('\n'));
      assert.match(marker, new RegExp(` op=exit pid=${pid} ppid=[0-9]+ status=9 `));
      const events = readEvents(paths.hostLog);
      assert.ok(
        !events.some((e) => {
          const s = syscallOf(e);
          return s !== undefined && field(s, 'pid') === String(pid) && field(s, 'syscall') === '231';
        }),
        'a SIGKILLed process makes no exit_group record',
      );
      const status = await contid(['status', '--json', ...sock]);
      const s = (
        JSON.parse(status.stdout) as {
          status: { containers: number; witness: { exitMarkers: number } };
        }
      ).status;
      assert.equal(s.containers, 0);
      // (Other processes on the machine may have left unseen too.)
      assert.ok(s.witness.exitMarkers >= 1);
      const get = await contid(['get', String(pid), ...sock]);
      assert.notEqual(get.code, 0, 'the dead process is not known as live');
      assert.match(d.stderr(), /proc connector/i);
    });
  },
);

// ---------------------------------------------------------------- (e)

test(
  'SIGKILL mid-run leaves the kernel usable; the next start recovers without duplicate rules',
  { skip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await withAuditState(async (ctx) => {
      if (skipIfDaemonRegistered(t, ctx)) return;
      const { netlink, snapshot } = ctx;
      const dir = tempDir(t);
      const paths = daemonPaths(dir);
      const sock = ['--socket', paths.socket];
      const targets: ChildProcess[] = [];
      t.after(() => {
        for (const c of targets) killChild(c);
      });
      const spawnTarget = (): number => {
        const c = spawnWithLoginuid(TEST_LOGINUID, ['/bin/sleep', '120'], { stdio: 'ignore' });
        targets.push(c);
        return c.pid ?? -1;
      };

      const first = await startDaemon(paths);
      const a = spawnTarget();
      assert.equal((await contid(['set', String(a), '50', ...sock])).code, 0);
      // Mid-run: a process keeps making events while the daemon dies.
      const busy = spawnWithLoginuid(TEST_LOGINUID, ['/bin/sh', '-c', 'while :; do /bin/true; done'], {
        stdio: 'ignore',
      });
      targets.push(busy);
      await sleep(200);
      assert.equal(await stopDaemon(first, 'SIGKILL'), null);
      killChild(busy);

      const s = spawnSync('auditctl', ['-s'], { encoding: 'utf8', timeout: WAIT_MS });
      assert.equal(s.status, 0, s.stderr);
      assert.match(s.stdout, /^enabled 1$/m);
      assert.ok(existsSync(paths.socket), 'the killed daemon left its socket');
      assert.equal(netlink.listRules().filter((r) => contidRuleOwner(r) === first.pid).length, 2);

      const second = await startDaemon(paths);
      let failed = true;
      try {
        assert.match(second.stderr(), /Recovering from contid pid/);
        const owners = netlink
          .listRules()
          .map(contidRuleOwner)
          .filter((o) => o !== null);
        assert.deepEqual(owners, [second.pid, second.pid]);
        assert.equal(netlink.getStatus().pid, second.pid);
        const b = spawnTarget();
        const set = await contid(['set', String(b), '51', ...sock]);
        assert.equal(set.code, 0, set.stderr);
        assert.equal((await contid(['get', String(b), ...sock])).stdout, '51\n');
        failed = false;
      } finally {
        const code = await stopDaemon(second);
        if (!failed) assert.equal(code, 0, second.stderr());
      }
      const after = netlink.getStatus();
      assert.equal(after.pid, 0);
      assert.equal(after.enabled, snapshot.status.enabled);
      assert.equal(after.backlogLimit, snapshot.status.backlogLimit);
      assert.ok(!existsSync(paths.socket));
    });
  },
);

test(
  'a control socket that cannot be opened stops contid run with exit 1 and the kernel state restored',
  { skip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await withAuditState(async (ctx) => {
      if (skipIfDaemonRegistered(t, ctx)) return;
      const dir = tempDir(t);
      const paths = daemonPaths(dir);
      mkdirSync(join(dir, 'run'));
      chmodSync(join(dir, 'run'), 0o777);
      const args = [
        'run',
        '--host-log',
        paths.hostLog,
        '--state-dir',
        paths.stateDir,
        '--socket',
        paths.socket,
      ];
      const unsafe = await contid(args);
      assert.equal(unsafe.code, 1, unsafe.stderr);
      assert.match(
        unsafe.stderr,
        /contid run: error: Cannot open the control socket .*: Cannot use ".*\/run" for the control socket: it is writable by its group or others \(mode 777\)\n/,
      );
      assert.equal(ctx.netlink.getStatus().pid, 0);
      assert.equal(ctx.netlink.listRules().filter((r) => contidRuleOwner(r) !== null).length, 0);

      chmodSync(join(dir, 'run'), 0o700);
      const first = await startDaemon(paths);
      try {
        const other = daemonPaths(join(dir, 'other'));
        const taken = await contid([
          'run',
          '--source',
          'multicast',
          '--host-log',
          other.hostLog,
          '--state-dir',
          other.stateDir,
          '--socket',
          paths.socket,
        ]);
        assert.equal(taken.code, 1, taken.stderr);
        assert.match(
          taken.stderr,
          /Cannot open the control socket .*another contid daemon is listening there/,
        );
      } finally {
        assert.equal(await stopDaemon(first), 0, first.stderr());
      }
    });
  },
);
