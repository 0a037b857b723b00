/**
 * contid replay when its input or output misbehaves: outputs that cannot
 * be written (a missing folder, a directory, /dev/full, a full filesystem,
 * stdout on a full filesystem), a reader that goes away (| head), inputs
 * that are not audit logs, and compressed logs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import * as zlib from 'node:zlib';
import { AuditLogWriter } from './support/audit-log.js';

const CLI = resolve(import.meta.dirname, '../src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'contid-replay-out-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(args: readonly string[], options: { input?: string | Buffer; stdout?: number } = {}): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    input: options.input ?? '',
    stdio: ['pipe', options.stdout ?? 'pipe', 'pipe'],
    maxBuffer: 256 * 1024 * 1024,
  });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr };
}

/** A log of `events` exec events: some 400 bytes of input and 1.3 KB of JSON each. */
function bigLog(name: string, events: number): string {
  const w = new AuditLogWriter({ serial: 1000 });
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  let chunk = '';
  for (let i = 0; i < events; i++) {
    chunk += w.sys(3000 + (i % 500), 1, 59, 0, 'sh');
    if (chunk.length > 1 << 20) {
      writeFileSync(fd, chunk);
      chunk = '';
    }
  }
  writeFileSync(fd, chunk);
  closeSync(fd);
  return path;
}

const small = bigLog('small.log', 200);

/** A stack trace in stderr: a crash, not a message. */
const STACK = /^\s+at /m;

const unwritable: [string, string, RegExp][] = [
  [
    'a missing folder',
    '/nonexistent/dir/x',
    /Cannot write "\/nonexistent\/dir\/x": no such file or directory \(ENOENT\)/,
  ],
  ['a directory', tmpdir(), /Cannot write ".*": .*\(EISDIR\)/],
  ['/dev/full', '/dev/full', /Cannot write "\/dev\/full": no space left on device \(ENOSPC\)/],
];
for (const [name, output, message] of unwritable) {
  test(`replay -o ${name} exits 1 naming the file and the cause`, () => {
    const r = run(['replay', '-o', output, small]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^contid replay: ${message.source}$`, 'm'));
    assert.doesNotMatch(r.stderr, STACK);
  });
}

test('replay to a stdout that cannot be written (/dev/full) exits 1 with a message, no stack trace', () => {
  const fd = openSync('/dev/full', 'w');
  try {
    const r = run(['replay', small], { stdout: fd });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /^contid replay: Cannot write standard output: no space left on device \(ENOSPC\)$/m,
    );
    assert.doesNotMatch(r.stderr, STACK);
  } finally {
    closeSync(fd);
  }
});

test('replay refuses -o naming one of its inputs, which opening would empty', () => {
  const copy = join(dir, 'self.log');
  writeFileSync(copy, readFileSync(small));
  const r = run(['replay', '-o', copy, copy]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Cannot write ".*self.log": it is also an input/);
  assert.equal(statSync(copy).size, statSync(small).size);
});

/** Mounts a tmpfs of `kib` KiB (root only); returns its path, or null after t.skip. */
function smallFilesystem(t: TestContext, kib: number): string | null {
  if (process.getuid?.() !== 0) {
    t.skip('mounting a small filesystem needs root');
    return null;
  }
  const mnt = mkdtempSync(join(tmpdir(), 'contid-full-'));
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k,mode=0700`, 'contid-test', mnt], {
    encoding: 'utf8',
  });
  if (mount.status !== 0) {
    rmSync(mnt, { recursive: true, force: true });
    t.skip(`cannot mount a tmpfs: ${mount.stderr.trim()}`);
    return null;
  }
  t.after(() => {
    spawnSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  return mnt;
}

test('replay -o onto a full filesystem exits 1 with ENOSPC', (t) => {
  const mnt = smallFilesystem(t, 256);
  if (mnt === null) return;
  // Some 5 MB of JSON into 256 KiB.
  const input = bigLog('full-o.log', 4000);
  const r = run(['replay', '-o', join(mnt, 'out.json'), input]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^contid replay: Cannot write ".*out\.json": no space left on device \(ENOSPC\)$/m);
  assert.doesNotMatch(r.stderr, STACK);
});

test('replay with stdout on a full filesystem exits 1 with ENOSPC, no stack trace', (t) => {
  const mnt = smallFilesystem(t, 256);
  if (mnt === null) return;
  const input = bigLog('full-stdout.log', 4000);
  const fd = openSync(join(mnt, 'stdout.json'), 'w');
  let r: Run;
  try {
    r = run(['replay', input], { stdout: fd });
  } finally {
    closeSync(fd);
  }
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /^contid replay: Cannot write standard output: no space left on device \(ENOSPC\)$/m,
  );
  assert.doesNotMatch(r.stderr, STACK);
});

test('replay | head -1 stops reading once head has gone', () => {
  // Some 40 MB of input: far more than the pipe and contid's buffers hold.
  const input = bigLog('head.log', 100_000);
  const size = statSync(input).size;
  const r = spawnSync(
    '/bin/sh',
    ['-c', `"${process.execPath}" "${CLI}" replay --stats "${input}" | head -1`],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.split('\n').length, 2);
  const statsLine = r.stderr.split('\n').find((l) => l.startsWith('{'));
  assert.ok(statsLine !== undefined, r.stderr);
  const stats = JSON.parse(statsLine) as { inputBytes: number; events: number };
  // A few chunks of 1 MiB at most, against 40 MB.
  assert.ok(stats.inputBytes < size / 8, `read ${stats.inputBytes} of ${size} bytes`);
  assert.match(r.stderr, /stopped: the output was closed by its reader/);
  assert.doesNotMatch(r.stderr, /EPIPE|Error/);
});

test('replay of random bytes exits 1 with a hint', () => {
  const random = join(dir, 'random.bin');
  let x = 12345;
  const bytes = Buffer.from(
    Array.from({ length: 64 * 1024 }, () => (x = (x * 1103515245 + 12345) >>> 0) >>> 24),
  );
  writeFileSync(random, bytes);
  const r = run(['replay', random]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /Cannot read ".*random\.bin": no line of it is an audit record \(is it an audit log\?/,
  );
  // The same from stdin.
  const s = run(['replay', '-'], { input: bytes });
  assert.equal(s.code, 1, s.stderr);
  assert.match(s.stderr, /Cannot read standard input: no line of it is an audit record/);
  // An empty file is an empty log, not an error.
  const empty = join(dir, 'empty.log');
  writeFileSync(empty, '');
  assert.equal(run(['replay', empty]).code, 0);
});

test('replay reads a gzip log (file or stdin) as it reads the plain one', () => {
  const gz = join(dir, 'small.log.gz');
  writeFileSync(gz, zlib.gzipSync(readFileSync(small)));
  const plain = run(['replay', '--format', 'text', small]);
  const fromFile = run(['replay', '--format', 'text', gz]);
  const fromStdin = run(['replay', '--format', 'text', '-'], { input: readFileSync(gz) });
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(fromFile.code, 0, fromFile.stderr);
  assert.equal(fromStdin.code, 0, fromStdin.stderr);
  assert.equal(plain.stdout.split('\n').length, 401);
  assert.equal(fromFile.stdout, plain.stdout);
  assert.equal(fromStdin.stdout, plain.stdout);
  // A corrupt gzip stream is a read error, with exit 1.
  const broken = join(dir, 'broken.gz');
  writeFileSync(broken, readFileSync(gz).subarray(0, 200));
  const b = run(['replay', broken]);
  assert.equal(b.code, 1);
  assert.match(b.stderr, /Cannot read ".*broken\.gz": unexpected end of file/);
});

test('replay of a zstd log decompresses it where node:zlib can, else names zstd -dc', () => {
  const zst = join(dir, 'small.log.zst');
  const zstd = (zlib as unknown as { zstdCompressSync?: (b: Buffer) => Buffer }).zstdCompressSync;
  if (zstd === undefined) {
    // A zstd frame starts with its magic number; this runtime cannot go further.
    writeFileSync(zst, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x01, 0x00]));
    const r = run(['replay', zst]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /Cannot read ".*small\.log\.zst": it is zstd-compressed, which Node\.js .* cannot decompress: run "zstd -dc .*small\.log\.zst \| contid replay -"/,
    );
    // The other inputs are still read.
    const both = run(['replay', '--format', 'text', zst, small]);
    assert.equal(both.code, 1);
    assert.equal(both.stdout, run(['replay', '--format', 'text', small]).stdout);
  } else {
    writeFileSync(zst, zstd(readFileSync(small)));
    const r = run(['replay', '--format', 'text', zst]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, run(['replay', '--format', 'text', small]).stdout);
  }
});
