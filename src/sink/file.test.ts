import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { setTimeout as setTimeoutP } from 'node:timers/promises';
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { holdLibuvPool } from '../../test/support/pool.js';
import { sinkContract } from '../../test/support/sink-contract.js';
import { auditEvent, splitEvents } from '../../test/support/sink-events.js';
import { mountTmpfs, tmpfsSkipReason } from '../../test/support/tmpfs.js';
import { FileSink } from './file.js';
import type { SinkError } from './sink.js';

for (const writeOnThread of [false, true]) {
  sinkContract({
    name: writeOnThread ? 'file written on the calling thread' : 'file',
    skip: tmpfsSkipReason(),
    format: 'text',
    open(options) {
      const fs = mountTmpfs(1024);
      const path = join(fs.dir, 'log', 'audit.log');
      const sink = new FileSink({ ...options, path, writeOnThread, retry: { initialMs: 5, maxMs: 50 } });
      return Promise.resolve({
        sink,
        received: () => Promise.resolve(existsSync(path) ? readFileSync(path) : Buffer.alloc(0)),
        stall: async () => {
          fs.fill();
          return Promise.resolve();
        },
        resume: async () => {
          fs.unfill();
          return Promise.resolve();
        },
        cleanup: async () => {
          fs.remove();
          return Promise.resolve();
        },
      });
    },
  });
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'contid-file-sink-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

let serial = 1;
function event(pad = 100): Buffer {
  return auditEvent(serial++, { format: 'text', records: 3, pad });
}

void test('file sink rotates between events, keeping numLogs files like auditd', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'audit.log');
  const sink = new FileSink({ path, maxFileBytes: 4096, numLogs: 3 });
  const all: Buffer[] = [];
  for (let i = 0; i < 100; i++) {
    const e = event(100 + (i % 7) * 30);
    all.push(e);
    sink.write(e, 1);
    if (i % 10 === 0) await sink.flush(); // several batches, so rotation meets each
  }
  await sink.close();
  assert.deepEqual(readdirSync(dir).sort(), ['audit.log', 'audit.log.1', 'audit.log.2']);
  const files = ['audit.log.2', 'audit.log.1', 'audit.log'].map((f) => readFileSync(join(dir, f)));
  for (const bytes of files) {
    assert.ok(bytes.length <= 4096, `a file stays within maxFileBytes: ${bytes.length}`);
    assert.ok(bytes.length > 0);
    for (const e of splitEvents(bytes)) assert.notEqual(e.serial, -1, 'each file holds whole events');
  }
  const kept = Buffer.concat(files);
  const written = Buffer.concat(all);
  assert.ok(
    written.subarray(written.length - kept.length).equals(kept),
    'the files are the newest events, in order',
  );
  const stats = sink.stats();
  assert.ok(stats.rotations >= 3, `rotations: ${stats.rotations}`);
  assert.equal(stats.writtenEvents, 100);
  assert.equal(stats.errors, 0);
});

void test('file sink creates files and directories with exactly their modes and keeps an existing mode', async (t) => {
  const dir = tempDir(t);
  const umask = process.umask(0o077);
  try {
    const sink = new FileSink({ path: join(dir, 'a', 'b', 'audit.log'), mode: 0o640, dirMode: 0o750 });
    sink.write(event(), 1);
    await sink.close();
  } finally {
    process.umask(umask);
  }
  assert.equal(statSync(join(dir, 'a', 'b', 'audit.log')).mode & 0o777, 0o640);
  assert.equal(statSync(join(dir, 'a', 'b')).mode & 0o777, 0o750 & ~0o077);
  writeFileSync(join(dir, 'existing.log'), 'type=X msg=audit(1.0:1): old\n', { mode: 0o644 });
  const sink = new FileSink({ path: join(dir, 'existing.log'), mode: 0o600 });
  sink.write(event(), 1);
  await sink.close();
  assert.equal(statSync(join(dir, 'existing.log')).mode & 0o777, 0o644);
  assert.match(readFileSync(join(dir, 'existing.log'), 'utf8'), /^type=X .*\ntype=SYSCALL /);
});

void test('file sink syncs on flush and on close', async (t) => {
  const dir = tempDir(t);
  const sink = new FileSink({ path: join(dir, 'audit.log') });
  sink.write(event(), 1);
  await sink.flush();
  assert.equal(sink.stats().fsyncs, 1);
  await sink.close();
  assert.equal(sink.stats().fsyncs, 2);
});

void test('file sink reopens its path after logrotate moved the file away', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'audit.log');
  const sink = new FileSink({ path });
  const first = event();
  sink.write(first, 1);
  await sink.flush();
  renameSync(path, `${path}.rotated`);
  const second = event();
  sink.write(second, 1);
  await sink.flush();
  await sink.reopen();
  const third = event();
  sink.write(third, 1);
  await sink.close();
  assert.ok(readFileSync(`${path}.rotated`).equals(Buffer.concat([first, second])));
  assert.ok(readFileSync(path).equals(third));
  assert.equal(sink.stats().reopens, 1);
});

/** A container root with an "outside" directory beside it that must never be written. */
function containerRoot(t: { after(fn: () => void): void }): {
  root: string;
  outside: string;
  shadow: string;
} {
  const dir = tempDir(t);
  const root = join(dir, 'rootfs');
  const outside = join(dir, 'host-etc');
  mkdirSync(join(root, 'var', 'log'), { recursive: true });
  mkdirSync(outside);
  const shadow = join(outside, 'shadow');
  writeFileSync(shadow, 'root:*:19000:0:99999:7:::\n');
  return { root, outside, shadow };
}

function assertUntouched(outside: string, shadow: string): void {
  assert.deepEqual(readdirSync(outside), ['shadow'], 'nothing was created outside the root');
  assert.equal(readFileSync(shadow, 'utf8'), 'root:*:19000:0:99999:7:::\n', 'the outside file is unchanged');
}

const planted: [string, (root: string, outside: string, shadow: string) => void, string, RegExp][] = [
  [
    'a directory link (var/log/contid -> the host)',
    (root, outside) => {
      symlinkSync(outside, join(root, 'var', 'log', 'contid'));
    },
    'ELOOP',
    /^Cannot open "var\/log\/contid\/audit\.log" in ".*\/rootfs": a path component is a symbolic link \(ELOOP\)$/,
  ],
  [
    'a relative link climbing out (var/log/contid -> ../../../host-etc)',
    (root) => {
      symlinkSync('../../../host-etc', join(root, 'var', 'log', 'contid'));
    },
    'ELOOP',
    /a path component is a symbolic link \(ELOOP\)$/,
  ],
  [
    'a file link (audit.log -> the host shadow file)',
    (root, _outside, shadow) => {
      mkdirSync(join(root, 'var', 'log', 'contid'));
      symlinkSync(shadow, join(root, 'var', 'log', 'contid', 'audit.log'));
    },
    'ELOOP',
    /^Cannot open "var\/log\/contid\/audit\.log" in ".*": a path component is a symbolic link \(ELOOP\)$/,
  ],
  [
    'a hard link to the host shadow file',
    (root, _outside, shadow) => {
      mkdirSync(join(root, 'var', 'log', 'contid'));
      linkSync(shadow, join(root, 'var', 'log', 'contid', 'audit.log'));
    },
    'ERR_HARD_LINKED',
    /: it has 2 hard links$/,
  ],
  [
    'a FIFO (an open for writing would block)',
    (root) => {
      mkdirSync(join(root, 'var', 'log', 'contid'));
      const r = spawnSync('mkfifo', [join(root, 'var', 'log', 'contid', 'audit.log')]);
      assert.equal(r.status, 0);
    },
    'ERR_NOT_REGULAR_FILE',
    /: it is not a regular file$/,
  ],
];

for (const [what, plant, code, message] of planted) {
  void test(`file sink in a container root refuses ${what} and writes nothing outside`, async (t) => {
    const { root, outside, shadow } = containerRoot(t);
    plant(root, outside, shadow);
    const errors: SinkError[] = [];
    const sink = new FileSink({
      root,
      path: '/var/log/contid/audit.log',
      closeTimeoutMs: 50,
      retry: { initialMs: 5, maxMs: 10 },
      onError: (e) => errors.push(e),
    });
    assert.equal(errors[0]?.code, code);
    assert.match(errors[0].message, message);
    assert.equal(sink.stats().state, 'disconnected');
    assert.equal(sink.write(event(), 1), true, 'write() queues and never throws');
    await sink.close();
    const stats = sink.stats();
    assert.equal(stats.writtenEvents, 0);
    assert.equal(stats.droppedEvents, 1);
    assert.equal(stats.errors, errors.length);
    assert.ok(
      errors.filter((e) => e.code === code).length >= 2,
      'the open is retried, and each failure counted',
    );
    assertUntouched(outside, shadow);
  });
}

void test('file sink in a container root creates its directories and writes inside', async (t) => {
  const { root, outside, shadow } = containerRoot(t);
  const sink = new FileSink({ root, path: '/var/log/contid/7/audit.log', mode: 0o640 });
  const e = event();
  sink.write(e, 1);
  await sink.close();
  assert.ok(readFileSync(join(root, 'var', 'log', 'contid', '7', 'audit.log')).equals(e));
  assert.equal(sink.stats().errors, 0);
  assert.equal(sink.target, `${root}/var/log/contid/7/audit.log`);
  assertUntouched(outside, shadow);
});

void test('file sink in a container root follows no link planted after it opened, in rotation or reopen', async (t) => {
  const { root, outside, shadow } = containerRoot(t);
  const logDir = join(root, 'var', 'log', 'contid');
  const sink = new FileSink({ root, path: '/var/log/contid/audit.log', maxFileBytes: 2048, numLogs: 3 });
  sink.write(event(), 1);
  await sink.flush();
  // The container swaps its log for a link to the host file, and plants links for the older generations.
  rmSync(join(logDir, 'audit.log'));
  symlinkSync(shadow, join(logDir, 'audit.log'));
  symlinkSync(shadow, join(logDir, 'audit.log.1'));
  symlinkSync(outside, join(logDir, 'audit.log.2'));
  for (let i = 0; i < 20; i++) sink.write(event(200), 1);
  await sink.flush();
  assert.ok(sink.stats().rotations >= 1);
  // The directory itself is swapped for a link to the host: reopen refuses it and keeps writing where it was.
  renameSync(logDir, `${logDir}.old`);
  symlinkSync(outside, logDir);
  await sink.reopen();
  assert.equal(sink.stats().lastError?.code, 'ELOOP');
  for (let i = 0; i < 20; i++) sink.write(event(200), 1);
  await sink.close();
  assert.equal(sink.stats().writtenEvents, 41);
  assertUntouched(outside, shadow);
});

void test('file sink takes a magic-link root such as /proc/PID/root', async (t) => {
  const dir = tempDir(t);
  const sink = new FileSink({ root: `/proc/${process.pid}/root`, path: join(dir, 'audit.log') });
  const e = event();
  sink.write(e, 1);
  await sink.close();
  assert.equal(sink.stats().errors, 0);
  assert.ok(readFileSync(join(dir, 'audit.log')).equals(e));
});

void test('file sink refuses paths with "..", "." or no name', () => {
  for (const path of ['/var/../etc/audit.log', 'var/./audit.log', '/']) {
    assert.throws(
      () => new FileSink({ root: '/tmp', path }),
      (e: Error & { code?: string }) =>
        e.code === 'ERR_INVALID_PATH' && e.message.startsWith(`Cannot use path "${path}"`),
    );
  }
  assert.throws(() => new FileSink({ path: 'relative.log' }), /it is not absolute and no root is given/);
});

void test('file sink counts a failed open, retries, and writes once the path can be opened', async (t) => {
  const dir = tempDir(t);
  // A file where the directory should be: ENOTDIR until it is removed.
  writeFileSync(join(dir, 'logs'), '');
  const errors: string[] = [];
  const sink = new FileSink({
    path: join(dir, 'logs', 'audit.log'),
    retry: { initialMs: 5, maxMs: 20 },
    onError: (e) => errors.push(e.message),
  });
  assert.equal(sink.stats().state, 'disconnected');
  assert.match(errors[0] ?? '', /^Cannot open ".*\/logs\/audit\.log": .*\(EEXIST|ENOTDIR\)$/);
  const e = event();
  sink.write(e, 1);
  rmSync(join(dir, 'logs'));
  await sink.flush();
  await sink.close();
  assert.ok(readFileSync(join(dir, 'logs', 'audit.log')).equals(e));
  assert.equal(sink.stats().reconnects, 1);
});

void test("file sink with writeOnThread writes while every thread of libuv's pool is busy", async (t) => {
  const dir = tempDir(t);
  const release = holdLibuvPool();
  const path = join(dir, 'audit.log');
  const sink = new FileSink({ path, policy: 'block', writeOnThread: true });
  t.after(async () => {
    await release();
    await sink.close();
  });
  const e = event();
  sink.write(e, 1);
  for (let i = 0; i < 50 && readFileSync(path).length === 0; i++) await setTimeoutP(10);
  assert.deepEqual(readFileSync(path), e, 'the event waited for a pool thread');
});
