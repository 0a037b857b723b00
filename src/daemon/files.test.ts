// The daemon's files on the real filesystem: directories it refuses, and
// files it never writes through a link or into someone else's file.
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { appendKeyring, ensurePrivateDirectory, openAppendNoFollow, replaceFile } from './files.js';
import { closeSync } from 'node:fs';

const asRoot = process.getuid?.() === 0;

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'contid-files-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

const unsafe = (message: RegExp) => (e: unknown) =>
  (e as { code?: string }).code === 'ERR_UNSAFE_PATH' && message.test((e as Error).message);

test('a missing directory is created 0700, parents included', (t) => {
  const dir = join(tempDir(t), 'a', 'b');
  ensurePrivateDirectory(dir, 'state directory');
  assert.equal(lstatSync(dir).mode & 0o777, 0o700);
});

test('a directory writable by its group or others is refused', (t) => {
  for (const mode of [0o777, 0o770, 0o1777, 0o702]) {
    const dir = join(tempDir(t), 'state');
    mkdirSync(dir);
    chmodSync(dir, mode);
    assert.throws(
      () => {
        ensurePrivateDirectory(dir, 'state directory');
      },
      unsafe(
        new RegExp(
          `^Cannot use ".*/state" as the state directory: it is writable by its group or others \\(mode ${(mode & 0o777).toString(8)}\\)$`,
        ),
      ),
      mode.toString(8),
    );
  }
});

test('a directory owned by another user is refused', { skip: !asRoot && 'needs root' }, (t) => {
  const dir = join(tempDir(t), 'log');
  mkdirSync(dir, { mode: 0o755 });
  chownSync(dir, 65534, 65534);
  assert.throws(
    () => {
      ensurePrivateDirectory(dir, 'host log directory');
    },
    unsafe(/^Cannot use ".*\/log" as the host log directory: it is owned by uid 65534, not 0$/),
  );
});

test('a symbolic link in place of the directory is refused', (t) => {
  const base = tempDir(t);
  mkdirSync(join(base, 'real'), { mode: 0o700 });
  symlinkSync(join(base, 'real'), join(base, 'state'));
  assert.throws(
    () => {
      ensurePrivateDirectory(join(base, 'state'), 'state directory');
    },
    unsafe(/it is not a directory \(a symbolic link\)/),
  );
});

test('a file is replaced without following a link left at its temporary name', (t) => {
  const dir = tempDir(t);
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'precious\n');
  const path = join(dir, 'kernel-state.json');
  symlinkSync(victim, `${path}.tmp`);
  replaceFile(path, '{"pid":1}\n', 0o600);
  assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
  assert.equal(readFileSync(path, 'utf8'), '{"pid":1}\n');
  assert.equal(lstatSync(path).mode & 0o777, 0o600);
  assert.equal(existsSync(`${path}.tmp`), false);
});

test('an append never follows a link and never writes into another user’s file', (t) => {
  const dir = tempDir(t);
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'precious\n');
  symlinkSync(victim, join(dir, 'audit.log'));
  assert.throws(() => openAppendNoFollow(join(dir, 'audit.log'), 0o600), { code: 'ELOOP' });
  if (!asRoot) return;
  const other = join(dir, 'other.log');
  writeFileSync(other, '');
  chownSync(other, 65534, 65534);
  assert.throws(() => openAppendNoFollow(other, 0o600), unsafe(/owned by uid 65534, not 0$/));
  closeSync(openAppendNoFollow(join(dir, 'mine.log'), 0o600));
});

test('a keyring file owned by another user is refused', { skip: !asRoot && 'needs root' }, (t) => {
  const dir = join(tempDir(t), 'state');
  mkdirSync(dir, { mode: 0o700 });
  const keyring = join(dir, 'keyring');
  writeFileSync(keyring, '', { mode: 0o600 });
  chownSync(keyring, 65534, 65534);
  const entry = { startId: 's1', daemonPid: 1, secret: Buffer.alloc(32, 1) };
  assert.throws(
    () => {
      appendKeyring(keyring, entry);
    },
    unsafe(/^Cannot use keyring ".*\/keyring": it is owned by uid 65534, not 0$/),
  );
  assert.equal(readFileSync(keyring, 'utf8'), '');
  chownSync(keyring, 0, 0);
  chmodSync(keyring, 0o644);
  assert.throws(
    () => {
      appendKeyring(keyring, entry);
    },
    unsafe(/mode 644 is not 600/),
  );
  chmodSync(keyring, 0o600);
  appendKeyring(keyring, entry);
  assert.match(readFileSync(keyring, 'utf8'), /^s1 1 0101/m);
});
