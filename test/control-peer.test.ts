/**
 * Caller identification on this machine's real /proc, against real child
 * processes with different privileges.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import {
  CAP_AUDIT_CONTROL,
  CallerError,
  hasCapability,
  identifyCaller,
  parseProcStat,
  parseProcStatus,
  readFingerprint,
  toMarkerCaller,
} from '../src/control/peer.js';

const asRoot = process.getuid?.() === 0;

test('proc status parsing takes PPid, CapEff and the effective uid and gid', () => {
  const text = 'Name:\tsh\nPPid:\t812\nUid:\t1000\t0\t0\t0\nGid:\t1000\t5\t5\t5\nCapEff:\t000001ffffffffff\n';
  assert.deepEqual(parseProcStatus(text), { ppid: 812, capEff: 0x1ffffffffffn, euid: 0, egid: 5 });
  assert.equal(parseProcStatus('Name:\tsh\n'), null);
  assert.equal(parseProcStatus('PPid:\tx\nCapEff:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n'), null);
  assert.equal(parseProcStatus('PPid:\t1\nCapEff:\t0\nUid:\t0\t0\nGid:\t0\t0\t0\t0\n'), null);
});

test('proc stat parsing takes the state, start time and memory layout after the last parenthesis', () => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
  fields[0] = 'S';
  const line = `812 (a) (b) c) ${fields.join(' ')}\n`;
  assert.deepEqual(parseProcStat(line), { state: 'S', image: '22 26 27 28 45 46 47 48 49 50 51' });
  assert.equal(parseProcStat('812 (sh) S 1 2'), null);
  assert.equal(parseProcStat('no parenthesis'), null);
});

test('CAP_AUDIT_CONTROL is bit 30', () => {
  assert.equal(hasCapability(1n << 30n, CAP_AUDIT_CONTROL), true);
  assert.equal(hasCapability(0x1ffffffffffn & ~(1n << 30n), CAP_AUDIT_CONTROL), false);
});

/** Starts `sleep` under `prefix` and waits until it has exec'd (its exe is sleep). */
async function sleeper(prefix: readonly string[]): Promise<ChildProcess> {
  const argv = [...prefix, '/bin/sleep', '30'];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  await once(child, 'spawn');
  const { readlinkSync } = await import('node:fs');
  for (let i = 0; i < 200; i++) {
    try {
      if (readlinkSync(`/proc/${child.pid}/exe`).endsWith('/sleep')) return child;
    } catch {
      // Not there yet.
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill('SIGKILL');
  throw new Error(`${argv.join(' ')} did not start`);
}

async function withChild<T>(prefix: readonly string[], fn: (child: ChildProcess) => T): Promise<T> {
  const child = await sleeper(prefix);
  try {
    return fn(child);
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit').catch(() => undefined);
  }
}

test('a root child with every capability is privileged', { skip: !asRoot && 'needs root' }, async () => {
  await withChild([], (child) => {
    const id = identifyCaller({ pid: child.pid!, uid: 0, gid: 0 });
    assert.equal(id.privileged, true);
    assert.equal(id.initialUserNs, true);
    assert.equal(id.ppid, process.pid);
    assert.match(id.exe, /sleep$/);
    assert.equal(hasCapability(id.capEff, CAP_AUDIT_CONTROL), true);
    assert.deepEqual(toMarkerCaller(id), {
      pid: child.pid,
      uid: 0,
      auid: id.auid,
      exe: id.exe,
      privileged: true,
      ppid: process.pid,
    });
  });
});

test('a child running as nobody is not privileged', { skip: !asRoot && 'needs root' }, async () => {
  await withChild(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'], (child) => {
    const id = identifyCaller({ pid: child.pid!, uid: 65534, gid: 65534 });
    assert.equal(id.privileged, false);
    assert.equal(id.initialUserNs, true);
    assert.equal(id.capEff, 0n);
    assert.equal(id.uid, 65534);
  });
});

test(
  'a root child without CAP_AUDIT_CONTROL is not privileged',
  { skip: !asRoot && 'needs root' },
  async () => {
    await withChild(['setpriv', '--inh-caps=-all', '--bounding-set=-audit_control'], (child) => {
      const id = identifyCaller({ pid: child.pid!, uid: 0, gid: 0 });
      assert.equal(id.privileged, false);
      assert.equal(id.uid, 0);
      assert.equal(hasCapability(id.capEff, CAP_AUDIT_CONTROL), false);
      // Everything else it still has.
      assert.equal(hasCapability(id.capEff, 21 /* CAP_SYS_ADMIN */), true);
    });
  },
);

test(
  'root of a new user namespace is not privileged, whatever its capabilities',
  { skip: !asRoot && 'needs root' },
  async () => {
    await withChild(['unshare', '--user', '--map-root-user'], (child) => {
      const id = identifyCaller({ pid: child.pid!, uid: 0, gid: 0 });
      assert.equal(hasCapability(id.capEff, CAP_AUDIT_CONTROL), true);
      assert.equal(id.initialUserNs, false);
      assert.equal(id.privileged, false);
    });
  },
);

test(
  'an exec changes the fingerprint, and the same program does not',
  { skip: !asRoot && 'needs root' },
  async () => {
    // sh execs sleep once it has read a line: the same process, another program.
    const child = spawn('/bin/sh', ['-c', 'read _; exec /bin/sleep 30'], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    await once(child, 'spawn');
    try {
      const before = readFingerprint(child.pid!);
      assert.equal(readFingerprint(child.pid!), before);
      child.stdin.write('\n');
      const { readlinkSync } = await import('node:fs');
      while (!readlinkSync(`/proc/${child.pid}/exe`).endsWith('/sleep'))
        await new Promise((r) => setTimeout(r, 10));
      assert.notEqual(readFingerprint(child.pid!), before);
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit').catch(() => undefined);
    }
  },
);

test(
  'a caller whose effective ids are not the ones recorded at connect has changed',
  { skip: !asRoot && 'needs root' },
  async () => {
    await withChild([], (child) => {
      assert.throws(
        () => identifyCaller({ pid: child.pid!, uid: 65534, gid: 0 }),
        (e: unknown) => e instanceof CallerError && e.code === 'ERR_CALLER_CHANGED',
      );
    });
  },
);

test('a caller that has exited is reported as gone', async () => {
  const child = spawn('/bin/true', { stdio: 'ignore' });
  await once(child, 'exit');
  assert.throws(
    () => identifyCaller({ pid: child.pid!, uid: 0, gid: 0 }),
    (e: unknown) => e instanceof CallerError && e.code === 'ERR_CALLER_GONE',
  );
});
