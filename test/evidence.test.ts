/**
 * What `contid replay --keyring` proves, on the real kernel: `contid run`
 * (multicast, beside a private auditd) seals what it reads while a crun
 * container is labelled; its host log and auditd's own log of the same run
 * verify span by span; a copy of the host log with one record deleted and
 * the container's set marker moved after the container's first fork is
 * reported exactly: the span that held the record, and the marker. A
 * process in a crun container (which has CAP_AUDIT_WRITE, as with Docker
 * and podman) that sends messages imitating the daemon's seal and stop
 * markers is reported as a forger, and changes no seal, seq or chain.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { EvidenceFinding } from '../src/marker/evidence.js';
import type { ReplayStats } from '../src/pipeline/replay.js';
import {
  auditSkipReason,
  runWithLoginuid,
  skipIfDaemonRegistered,
  spawnWithLoginuid,
  TEST_LOGINUID,
  withAuditState,
} from './support/audit-state.js';
import { auditdSkipReason, startAuditd } from './support/auditd.js';
import { CONTAINER_SCRIPT, crunSkipReason, killChild, makeBundle, runContainer } from './support/crun.js';
import {
  contid,
  daemonPaths,
  keepForDiagnosis,
  startDaemon,
  stopDaemon,
  tempDir,
  waitUntil,
  withDaemon,
} from './support/live-daemon.js';
import { field, waitForExit } from './support/log-events.js';
import { compileForge, gccSkipReason } from './support/programs.js';

const skip = auditSkipReason() ?? auditdSkipReason() ?? crunSkipReason();
const forgeSkip = auditSkipReason() ?? crunSkipReason() ?? gccSkipReason();

const STAMP = /msg=audit\(([0-9.]+):([0-9]+)\)/;

/** A seal marker line's span. */
interface SealSpan {
  readonly seq: number;
  readonly from: number;
  readonly to: number;
}

function serialOf(line: string): number {
  return Number(STAMP.exec(line)?.[2] ?? -1);
}

function stampOf(line: string): string {
  const m = STAMP.exec(line);
  return m === null ? '' : `${m[1]}:${m[2]}`;
}

/** The seal markers of start `startId` in a log's lines. */
function sealsOf(lines: readonly string[], startId: string): SealSpan[] {
  const out: SealSpan[] = [];
  for (const l of lines) {
    const m = new RegExp(` start=${startId} seq=([0-9]+) .*op=seal from=([0-9]+) to=([0-9]+) `).exec(l);
    if (m !== null) out.push({ seq: Number(m[1]), from: Number(m[2]), to: Number(m[3]) });
  }
  return out;
}

/** The lines of a log the daemon `pid` sent (the kernel-stamped sender): its markers. */
function sentBy(lines: readonly string[], pid: number): string[] {
  return lines.filter((l) => field(l, 'pid') === String(pid));
}

/** `contid replay --keyring --stats` of `file`: its counters, its summary and its text output. */
async function replay(
  file: string,
  keyring: string,
  dir: string,
): Promise<{ stats: ReplayStats; summary: string; out: string }> {
  const out = join(dir, `${file.replace(/[^a-z0-9]/gi, '_')}.replayed`);
  const r = await contid(['replay', '--keyring', keyring, '--stats', '--format', 'text', '-o', out, file]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  return {
    stats: JSON.parse(lines.at(-1)!) as ReplayStats,
    summary: lines.slice(0, -1).join('\n'),
    out: readFileSync(out, 'utf8'),
  };
}

/**
 * Waits for a seal while a loop under the test's loginuid keeps the audit
 * stream moving: a seal covers what the stream is well past (in stream
 * time), and on a quiet machine nothing else moves it.
 */
async function waitForSeal(condition: () => boolean, what: string): Promise<void> {
  const loop = spawnWithLoginuid(TEST_LOGINUID, ['/bin/sh', '-c', 'while :; do /bin/true; sleep 0.2; done'], {
    stdio: 'ignore',
  });
  try {
    await waitUntil(condition, what);
  } finally {
    killChild(loop);
  }
}

function assertAllIntact(stats: ReplayStats, seals: number, what: string): void {
  assert.deepEqual(stats.evidenceProblems, [], `${what}: no evidence problem`);
  assert.equal(stats.labels?.forgeries, 0, what);
  assert.equal(stats.evidence?.intact, seals, `${what}: every seal intact`);
  assert.equal(stats.evidence?.broken, 0, what);
}

test(
  "seals: the host log and auditd's log of a run verify span by span; a deleted record and a moved set marker are reported exactly",
  { skip, timeout: 240_000 },
  async (t) => {
    await withAuditState(async (ctx) => {
      if (skipIfDaemonRegistered(t, ctx)) return;
      const dir = tempDir(t);
      const auditd = await startAuditd({
        dir: join(dir, 'auditd'),
        logFormat: 'ENRICHED',
        nameFormat: 'NONE',
        plugins: {},
        netlink: ctx.netlink,
      });
      const paths = daemonPaths(dir);
      let startId = '';
      try {
        const d = await startDaemon(paths, ['--seal-interval', '1000']);
        let failed = true;
        try {
          assert.match(d.stderr(), /source multicast/);
          startId = /start ([0-9TZ]+-[0-9]+-[0-9a-f]+)/.exec(d.stderr())![1]!;
          // Sealing begins a bucket or two (64 serials each) after the start
          // marker: take the stream past them before the container runs.
          const warm = await runWithLoginuid(TEST_LOGINUID, [
            '/bin/sh',
            '-c',
            'for i in $(seq 100); do /bin/true; done',
          ]);
          assert.equal(warm.code, 0);
          const bundle = makeBundle(dir, {
            socket: paths.socket,
            contid: '42',
            script: CONTAINER_SCRIPT(''),
          });
          const run = await runContainer(bundle);
          assert.equal(run.code, 0, run.stderr);
          const exit = await waitForExit(paths.hostLog, run.pid);
          // A periodic seal covers the container's events (the stream must be 5 s past them).
          await waitForSeal(
            () =>
              sealsOf(readFileSync(paths.hostLog, 'utf8').split('\n'), startId).some(
                (s) => s.to >= exit.serial,
              ),
            'seal over the container run',
          );
          // A quick run can fit in one seal: more records after it make a second one.
          if (sealsOf(readFileSync(paths.hostLog, 'utf8').split('\n'), startId).length < 2) {
            const more = await runWithLoginuid(TEST_LOGINUID, [
              '/bin/sh',
              '-c',
              'for i in $(seq 100); do /bin/true; done',
            ]);
            assert.equal(more.code, 0);
            await waitForSeal(
              () => sealsOf(readFileSync(paths.hostLog, 'utf8').split('\n'), startId).length >= 2,
              'a second seal',
            );
          }
          failed = false;
        } catch (error) {
          keepForDiagnosis(t, paths, d);
          throw error;
        } finally {
          const code = await stopDaemon(d);
          if (!failed) assert.equal(code, 0, d.stderr());
        }
      } finally {
        await auditd.stop();
      }

      const host = readFileSync(paths.hostLog, 'utf8').split('\n');
      const seals = sealsOf(host, startId);
      assert.ok(seals.length >= 2, `several seals:\n${host.filter((l) => l.includes('op=seal')).join('\n')}`);
      for (let i = 1; i < seals.length; i++)
        assert.equal(seals[i]!.from, seals[i - 1]!.to + 1, 'spans follow each other');
      // The live daemon found no marker missing or moved in its own stream.
      assert.deepEqual(
        host.filter((l) => l.startsWith('type=CONTID_EVIDENCE ')),
        [],
      );

      const hostReplay = await replay(paths.hostLog, paths.keyring, dir);
      assertAllIntact(hostReplay.stats, seals.length, 'host log');
      assert.equal(hostReplay.stats.intactSpans.length, 1, 'one run of spans');
      assert.equal(hostReplay.stats.intactSpans[0]!.from, seals[0]!.from);
      assert.equal(hostReplay.stats.intactSpans[0]!.to, seals.at(-1)!.to);
      assert.match(hostReplay.out, / contid=42\n/);

      const auditdLog = readFileSync(auditd.logFile, 'utf8').split('\n');
      assert.equal(sealsOf(auditdLog, startId).length, seals.length, 'auditd logged every seal');
      assertAllIntact((await replay(auditd.logFile, paths.keyring, dir)).stats, seals.length, "auditd's log");
      // Each kernel record of the live host log is auditd's line for it, byte
      // for byte, less auditd's enriched part and contid's record= link.
      const auditdLines = new Set(auditdLog.map((l) => l.split('\x1d')[0]!));
      const kernelLines = host.filter(
        (l) => l !== '' && !/^type=(CONTAINER_ID|CONTAINER_OP|CONTID_[A-Z]+) /.test(l),
      );
      assert.ok(kernelLines.length > 100, `${kernelLines.length} kernel records`);
      const unlike = kernelLines
        .map((l) => l.replace(/ record=[0-9]+$/, ''))
        .filter((l) => !auditdLines.has(l));
      assert.deepEqual(unlike.slice(0, 5), [], `${unlike.length} host-log lines unlike auditd's`);

      // The copy: one record of the container deleted, the set marker moved after its target's first fork.
      const setAt = host.findIndex((l) => l.includes(` start=${startId} `) && / op=set pid=[0-9]+ /.test(l));
      assert.ok(setAt >= 0, 'the set marker is in the host log');
      const setLine = host[setAt]!;
      const setSeq = Number(/ seq=([0-9]+) /.exec(setLine)![1]);
      const target = / op=set pid=([0-9]+) /.exec(setLine)![1]!;
      const forkAt = host.findIndex(
        (l, i) =>
          i > setAt &&
          l.startsWith('type=SYSCALL ') &&
          new RegExp(` syscall=(56|57|58|435) success=yes exit=[1-9][0-9]* .* pid=${target} `).test(l),
      );
      assert.ok(forkAt > setAt, `a fork by the container's init (pid ${target})`);
      const victimAt = host.findIndex(
        (l, i) =>
          i > forkAt &&
          l.startsWith('type=SYSCALL ') &&
          / syscall=59 /.test(l) &&
          seals.some((s) => s.from <= serialOf(l) && serialOf(l) <= s.to) &&
          host.some(
            (x) =>
              x.startsWith('type=CONTAINER_ID ') && stampOf(x) === stampOf(l) && x.endsWith(' contid=42'),
          ),
      );
      assert.ok(victimAt > forkAt, 'an exec in the container, in a sealed span');
      const victim = host[victimAt]!;
      // The marker and contid's own records of its event move together.
      const setEnd = host.findIndex((l, i) => i > setAt && stampOf(l) !== stampOf(setLine));
      const forkEnd = host.findIndex((l, i) => i > forkAt && stampOf(l) !== stampOf(host[forkAt]!));
      const moved = host.slice(setAt, setEnd);
      const tampered = [
        ...host.slice(0, setAt),
        ...host.slice(setEnd, forkEnd),
        ...moved,
        ...host.slice(forkEnd).filter((l) => l !== victim),
      ];
      const copy = join(dir, 'tampered.log');
      writeFileSync(copy, tampered.join('\n'));
      const { stats, out } = await replay(copy, paths.keyring, dir);

      assert.match(
        out,
        new RegExp(`type=CONTAINER_OP .* op=set opid=${target} .* res=0 errno=EBUSY`),
        'the move works',
      );
      const victimSerial = serialOf(victim);
      const broken = stats.evidenceProblems.filter(
        (f): f is Extract<EvidenceFinding, { check: 'seal' }> => f.check === 'seal',
      );
      assert.equal(broken.length, 1, JSON.stringify(stats.evidenceProblems));
      assert.ok(
        broken[0]!.from <= victimSerial && victimSerial <= broken[0]!.to,
        'the span of the deleted record',
      );
      assert.equal(broken[0]!.seen, broken[0]!.records - 1);
      assert.equal(stats.evidence?.intact, seals.length - 1, 'every other span is intact');
      // Every marker problem is the set marker's: out of place, or (when the
      // move crossed another marker of the start) the gap and chain break it leaves.
      const markerProblems = stats.evidenceProblems.filter((f) => f.check !== 'seal');
      assert.ok(markerProblems.length >= 1, 'the moved marker is reported');
      const setStamp = stampOf(setLine);
      for (const f of markerProblems) {
        const about =
          (f.check === 'place' && f.seq === setSeq) ||
          (f.check === 'gap' && f.from <= setSeq && setSeq <= f.to) ||
          (f.check === 'chain' && f.prev === setStamp) ||
          (f.check === 'order' && f.seq === setSeq);
        assert.ok(about, `a problem that is not the set marker's: ${JSON.stringify(f)}`);
      }
      const crossed = tampered
        .slice(tampered.indexOf(host[setEnd]!), tampered.indexOf(setLine))
        .some((l) => l.includes(` start=${startId} seq=`));
      t.diagnostic(`${seals.length} seals; tampered: ${JSON.stringify(stats.evidenceProblems)}`);
      if (!crossed)
        assert.deepEqual(
          markerProblems.map((f) => [f.check, 'seq' in f ? f.seq : -1]),
          [['place', setSeq]],
        );
      else assert.ok(stats.forgeries.some((f) => f.reason === 'replayed'));
    });
  },
);

test(
  'a container process forging seal and stop markers, or sending a real seal again, is reported as a forger; seals, seqs and chains are unchanged',
  { skip: forgeSkip, timeout: 240_000 },
  async (t) => {
    let daemonPid = -1;
    let startId = '';
    let keyring = '';
    let dir = '';
    let hostLog = '';
    let forgeries: { file: string; type: number; text: string }[] = [];
    await withDaemon(t, { args: ['--seal-interval', '1000'] }, async (d, paths, tmp) => {
      dir = tmp;
      hostLog = paths.hostLog;
      keyring = paths.keyring;
      daemonPid = d.pid;
      startId = /start ([0-9TZ]+-[0-9]+-[0-9a-f]+)/.exec(d.stderr())![1]!;
      const warm = await runWithLoginuid(TEST_LOGINUID, [
        '/bin/sh',
        '-c',
        'for i in $(seq 100); do /bin/true; done',
      ]);
      assert.equal(warm.code, 0);
      // A real seal to copy: the forger is given the daemon's own text, MAC and all.
      await waitForSeal(
        () => sealsOf(sentBy(readFileSync(paths.hostLog, 'utf8').split('\n'), d.pid), startId).length > 0,
        'a first seal',
      );
      const mine = sentBy(readFileSync(paths.hostLog, 'utf8').split('\n'), d.pid).filter((l) =>
        l.includes(` start=${startId} seq=`),
      );
      const realSeal = /msg='(contid-marker [^']*op=seal [^']*)'/.exec(
        mine.find((l) => / op=seal /.test(l))!,
      )![1]!;
      const latest = mine.at(-1)!;
      const seq = Number(/ seq=([0-9]+) /.exec(latest)![1]);
      const to = Number(/ to=([0-9]+) /.exec(realSeal)![1]);
      const zeros = '0'.repeat(64);
      const head = (n: number): string =>
        `contid-marker v=1 start=${startId} seq=${n} prev=${stampOf(latest)}`;
      forgeries = [
        // The next spans, sealed as holding no record.
        {
          file: 'seal.txt',
          type: 2942,
          text: `${head(seq + 1)} op=seal from=${to + 1} to=${to + 64 * 64} records=0 digest=${zeros} mac=${zeros}`,
        },
        { file: 'copy.txt', type: 2942, text: realSeal },
        // A stop would leave whatever follows unsealed, and close the start.
        { file: 'stop.txt', type: 2942, text: `${head(seq + 2)} op=stop mac=${zeros}` },
        { file: 'user.txt', type: 1100, text: realSeal },
      ];
      const bundle = makeBundle(dir, {
        socket: paths.socket,
        contid: '77',
        script: CONTAINER_SCRIPT(forgeries.map((f) => `/bin/fx-forge ${f.type} /${f.file};`).join(' ')),
      });
      compileForge(join(bundle.dir, 'rootfs/bin/fx-forge'), { static: true });
      for (const f of forgeries) writeFileSync(join(bundle.dir, 'rootfs', f.file), f.text);
      const run = await runContainer(bundle);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.match(/^fx-forge type=(2942|1100) ack error=0$/gm)?.length, 4, run.stdout);
      const exit = await waitForExit(paths.hostLog, run.pid);
      await waitForSeal(
        () =>
          sealsOf(sentBy(readFileSync(paths.hostLog, 'utf8').split('\n'), d.pid), startId).some(
            (s) => s.to >= exit.serial,
          ),
        'a seal over the container run',
      );
    });
    if (hostLog === '') return; // skipped: another audit daemon is registered
    const host = readFileSync(hostLog, 'utf8').split('\n');

    // Each forgery reached the log, sent by a process of container 77, not by the daemon.
    const sent = forgeries.map((f) => {
      const line = host.find(
        (l) =>
          l.includes(`msg='${f.text}'`) &&
          l.startsWith('type=USER_AUTH ') === (f.type === 1100) &&
          field(l, 'pid') !== String(daemonPid),
      );
      assert.ok(line !== undefined, `the forged ${f.file} is in the host log`);
      return line;
    });
    const reasons = ['wrong-sender', 'wrong-sender', 'wrong-sender', 'wrong-type'];
    const reported = host.filter((l) => l.startsWith('type=CONTID_FORGERY '));
    assert.deepEqual(
      reported.map((l) => [stampOf(l), field(l, 'reason'), field(l, 'contid')]),
      sent.map((l, i) => [stampOf(l), reasons[i], '77']),
      'the live daemon reports each one, at its record',
    );
    assert.deepEqual(
      host.filter((l) => l.startsWith('type=CONTID_EVIDENCE ')),
      [],
      'no marker missing or moved in the daemon',
    );
    // The daemon's chain names only its own markers: a forged one never became its prev=.
    const mine = sentBy(host, daemonPid).filter((l) => l.includes(` start=${startId} seq=`));
    const stamps = new Set(mine.map(stampOf));
    for (const l of mine) {
      const prev = / prev=([0-9.]+:[0-9]+) /.exec(l)?.[1];
      if (prev !== undefined) assert.ok(stamps.has(prev), `prev=${prev} of ${l}`);
    }
    const seqs = mine.map((l) => Number(/ seq=([0-9]+) /.exec(l)![1]));
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => i + 1),
      'seqs 1, 2, 3, ... with no seq taken by a forgery',
    );
    const seals = sealsOf(mine, startId);

    const { stats, summary } = await replay(hostLog, keyring, dir);
    assert.deepEqual(
      stats.forgeries.map((f) => [`${f.time}:${f.serial}`, f.reason, f.senderContid]),
      sent.map((l, i) => [stampOf(l), reasons[i], '77']),
    );
    assert.equal(stats.labels?.forgeries, 4);
    assert.deepEqual(stats.evidenceProblems, [], 'no gap, chain break, misplaced marker or broken seal');
    assert.equal(stats.evidence?.intact, seals.length, 'the real seals, and only they, are judged: intact');
    assert.equal(stats.evidence?.broken, 0);
    assert.deepEqual(
      stats.intactSpans.map((s) => [s.start, s.from, s.to, s.seals]),
      [[startId, seals[0]!.from, seals.at(-1)!.to, seals.length]],
    );
    assert.match(summary, / 4 forgery attempts;/);
    assert.match(summary, new RegExp(`  evidence: ${seals.length} seals? intact, 0 broken\n`));
    assert.match(summary, new RegExp(`  intact: serials ${seals[0]!.from}-${seals.at(-1)!.to} `));
    for (const l of sent)
      assert.match(
        summary,
        new RegExp(
          `  forgery at ${stampOf(l).replace('.', '\\.')}: wrong-(sender|type) from pid [0-9]+ \\(contid 77\\)`,
        ),
      );
  },
);
