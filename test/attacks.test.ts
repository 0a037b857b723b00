/**
 * Attacks on the labels, on the real kernel: what a process inside a
 * container (or one labelled beside a host parent) can do with its fork
 * pattern and its timing to escape its label, plant it on the host, or
 * keep it alive after death (docs/security.md). Each test runs `contid run`
 * on private paths, provokes the attack with a small static program, and
 * reads the host log back.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawnWithLoginuid, TEST_LOGINUID } from './support/audit-state.js';
import { auditSkipReason } from './support/audit-state.js';
import { crunSkipReason, killChild, makeBundle, runContainer } from './support/crun.js';
import { contid, mkfifo, waitForChildren, withDaemon } from './support/live-daemon.js';
import {
  contidOf,
  descendants,
  field,
  flushLog,
  readEvents,
  setOp,
  syscallOf,
  waitForEvents,
  waitForExit,
  type LogEvent,
} from './support/log-events.js';
import { compileAttack, gccSkipReason } from './support/programs.js';

const TEST_TIMEOUT_MS = 180_000;
const skip = auditSkipReason();
const gccSkip = gccSkipReason();
const containerSkip = skip ?? crunSkipReason() ?? gccSkip;

/** The drop of `contid` in the host log, once it is there. */
function waitForDrop(file: string, id: string): Promise<LogEvent> {
  return waitForEvents(file, `the drop of ${id}`, (events) =>
    events.find((e) => e.lines.some((l) => / op=drop /.test(l) && new RegExp(` old-contid=${id} `).test(l))),
  );
}

test(
  'a parent blocked in vfork hides nothing: its child, running longer than any hold, carries the label',
  { skip: containerSkip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await withDaemon(t, {}, async (_d, paths, dir) => {
      // In the container: P stays blocked in clone(CLONE_VFORK) while X runs
      // /bin/true, sleeps 3 s (past the 2 s hold time of earlier versions),
      // and runs it again. No record of P appears until X exits.
      const bundle = makeBundle(dir, {
        socket: paths.socket,
        contid: '81',
        script: '/bin/vblock 3 /bin/true; /bin/echo done',
      });
      compileAttack('vblock', join(bundle.dir, 'rootfs', 'bin', 'vblock'));
      const run = await runContainer(bundle);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, 'done\n');
      await waitForExit(paths.hostLog, run.pid);
      await flushLog(paths.hostLog);

      const events = readEvents(paths.hostLog);
      const op = setOp(events, '81');
      assert.ok(op !== undefined, 'the hook set 81');
      const tree = descendants(events, op.opid);
      // X: a process whose clone records name a parent never seen before them.
      const trues = events.filter((e) => {
        const s = syscallOf(e);
        return (
          s !== undefined &&
          field(s, 'syscall') === '59' &&
          field(s, 'comm') === '"true"' &&
          tree.has(Number(field(s, 'pid')))
        );
      });
      assert.ok(trues.length >= 2, 'both runs of /bin/true are in the log');
      for (const e of [
        ...trues,
        ...events.filter((e) => tree.has(Number(field(syscallOf(e) ?? '', 'pid')))),
      ]) {
        const s = syscallOf(e);
        if (s === undefined || e.serial < op.serial) continue;
        assert.equal(contidOf(e), '81', `an event in the container:\n${e.lines.join('\n')}`);
      }
      const status = await contid(['status', '--json', '--socket', paths.socket]);
      const witness = (JSON.parse(status.stdout) as { status: { witness: { procMarkers: number } } }).status
        .witness;
      assert.ok(witness.procMarkers >= 1, 'the daemon read the blocked parent in /proc');
    });
  },
);

test(
  'a container whose last process leaves by the raw exit syscall still drops its ID',
  { skip: containerSkip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await withDaemon(t, {}, async (_d, paths, dir) => {
      // The init execs a program that calls exit(2) directly: no exit_group record.
      const bundle = makeBundle(dir, { socket: paths.socket, contid: '82', script: 'exec /bin/rawexit' });
      compileAttack('rawexit', join(bundle.dir, 'rootfs', 'bin', 'rawexit'));
      const run = await runContainer(bundle);
      assert.equal(run.code, 0, run.stderr);
      const drop = await waitForDrop(paths.hostLog, '82');
      assert.ok(
        drop.lines.some((l) => l.includes('contid-marker') && l.includes(' op=exit ')),
        `the daemon's exit marker ended it:\n${drop.lines.join('\n')}`,
      );
      // The ID is free again: a new container may take it.
      const again = makeBundle(join(dir, 'again'), {
        socket: paths.socket,
        contid: '82',
        script: '/bin/true',
      });
      const second = await runContainer(again);
      assert.equal(second.code, 0, second.stderr);
    });
  },
);

test(
  'a thread group whose leader left first and whose last thread is killed ends, and its container drops',
  { skip: skip ?? gccSkip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await withDaemon(t, {}, async (_d, paths, dir) => {
      const program = join(dir, 'leaderexit');
      compileAttack('leaderexit', program);
      const fifo = join(dir, 'go');
      mkfifo(fifo);
      // Waits (no children) until labelled, then becomes the program: the
      // leader calls pthread_exit, its thread SIGKILLs the group 300 ms later.
      const target = spawnWithLoginuid(
        TEST_LOGINUID,
        ['/bin/sh', '-c', 'read _ < "$0"; exec "$1" 300', fifo, program],
        { stdio: 'ignore' },
      );
      t.after(() => {
        killChild(target);
      });
      const pid = target.pid ?? -1;
      const set = await contid(['set', String(pid), '83', '--socket', paths.socket]);
      assert.equal(set.code, 0, set.stderr);
      const exited = once(target, 'exit');
      spawnSync('/bin/sh', ['-c', 'echo go > "$0"', fifo]);
      await exited;
      const drop = await waitForDrop(paths.hostLog, '83');
      assert.ok(
        drop.lines.some((l) => l.includes(' op=exit ') && l.includes(` pid=${pid} `)),
        drop.lines.join('\n'),
      );
    });
  },
);

test(
  "a labelled process cannot plant its label on its host parent's next child (CLONE_PARENT)",
  { skip: skip ?? gccSkip, timeout: TEST_TIMEOUT_MS },
  async (t) => {
    await withDaemon(t, {}, async (_d, paths, dir) => {
      const shim = join(dir, 'shim');
      const plant = join(dir, 'plant');
      compileAttack('shim', shim);
      compileAttack('plant', plant);
      const fifo = join(dir, 'go');
      mkfifo(fifo);
      // The shim (a host process) forks C, which waits; the test labels C
      // (91); C execs `plant`, which clones a child of the shim with
      // CLONE_PARENT that leaves unaudited; the shim then vforks and execs
      // /usr/bin/true, whose exec is recorded before the shim's vfork.
      const host = spawnWithLoginuid(TEST_LOGINUID, [shim, fifo, plant, '/usr/bin/true'], {
        stdio: 'ignore',
      });
      t.after(() => {
        killChild(host);
      });
      const shimPid = host.pid ?? -1;
      await waitForChildren(shimPid);
      const c = Number(
        spawnSync('/bin/sh', ['-c', `cat /proc/${shimPid}/task/${shimPid}/children`], {
          encoding: 'utf8',
        }).stdout.trim(),
      );
      const set = await contid(['set', String(c), '91', '--socket', paths.socket]);
      assert.equal(set.code, 0, set.stderr);
      const exited = once(host, 'exit');
      spawnSync('/bin/sh', ['-c', 'echo go > "$0"', fifo]);
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0);
      await waitForExit(paths.hostLog, shimPid);
      await flushLog(paths.hostLog);

      const events = readEvents(paths.hostLog);
      const clone = events.find((e) => {
        const s = syscallOf(e);
        return s !== undefined && field(s, 'pid') === String(c) && field(s, 'syscall') === '56';
      });
      assert.ok(clone !== undefined, 'the CLONE_PARENT clone is in the log');
      assert.equal(contidOf(clone), '91', 'the planting process is labelled');
      const runc = events.find((e) => {
        const s = syscallOf(e);
        return (
          s !== undefined &&
          field(s, 'syscall') === '59' &&
          field(s, 'ppid') === String(shimPid) &&
          field(s, 'exe') === '"/usr/bin/true"'
        );
      });
      assert.ok(runc !== undefined, "the shim's vfork child exec is in the log");
      assert.equal(
        contidOf(runc),
        null,
        `the host's child is not planted into 91:\n${runc.lines.join('\n')}`,
      );
    });
  },
);
