/**
 * `contid oci-hook`: the contid it chooses for a container, and the hook
 * run as a runtime runs it, against a scripted daemon on a real socket.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { chooseContid, deriveContid, OciStateError, ociOwner, parseOciState } from '../src/control/oci.js';
import { readFingerprint, type CallerIdentity } from '../src/control/peer.js';
import { startControlServer } from '../src/control/server.js';
import type { DaemonApi, OperationRequest } from '../src/daemon/api.js';
import type { ContainerOp } from '../src/policy/labeller.js';
import type { ContidErrno } from '../src/policy/errno.js';
import { parseOciHookArgs } from '../src/cli/oci-hook.js';

const MAIN = new URL('../src/cli/main.js', import.meta.url).pathname;

test('the derived contid is the first big-endian u64 of SHA-256 of the container id', () => {
  const id = 'feas1';
  const expected = createHash('sha256').update(id).digest().readBigUInt64BE(0).toString();
  assert.equal(deriveContid(id), expected);
  assert.equal(deriveContid(id), deriveContid(id));
  assert.notEqual(deriveContid('feas1'), deriveContid('feas2'));
  // A fixed vector, so that a change of the rule is a visible change.
  assert.equal(deriveContid('abc'), BigInt('0xba7816bf8f01cfea').toString());
});

test('derived contids are never 0 nor the unset value', () => {
  for (let i = 0; i < 10_000; i++) {
    const v = BigInt(deriveContid(`c${i}`));
    assert.ok(v > 0n && v < 2n ** 64n - 1n);
  }
});

test('the annotation org.contid.id wins, and must be a valid contid', () => {
  const state = parseOciState('{"id":"web","pid":812,"bundle":"/b","annotations":{"org.contid.id":"0042"}}');
  assert.deepEqual(state, { id: 'web', pid: 812, bundle: '/b', annotations: { 'org.contid.id': '0042' } });
  assert.deepEqual(chooseContid(state), { contid: '42', source: 'annotation' });
  assert.deepEqual(chooseContid({ ...state, annotations: {} }), {
    contid: deriveContid('web'),
    source: 'derived',
  });
  for (const bad of ['-1', '18446744073709551615', '18446744073709551616', 'x', '']) {
    assert.throws(
      () => chooseContid({ ...state, annotations: { 'org.contid.id': bad } }),
      OciStateError,
      bad,
    );
  }
});

test('the annotation key is configurable, and none ignores annotations', () => {
  const state = parseOciState(
    '{"id":"web","pid":812,"annotations":{"org.contid.id":"42","io.example.id":"7"}}',
  );
  assert.deepEqual(chooseContid(state, { annotation: 'io.example.id' }), {
    contid: '7',
    source: 'annotation',
  });
  assert.deepEqual(chooseContid(state, { annotation: null }), {
    contid: deriveContid('web'),
    source: 'derived',
  });
  assert.deepEqual(chooseContid(state, { annotation: 'io.other' }), {
    contid: deriveContid('web'),
    source: 'derived',
  });
});

test('the owner of a hook-created ID is its container', () => {
  assert.equal(ociOwner('web'), 'oci:web');
  const odd = 'ä'.repeat(10);
  assert.equal(ociOwner(odd), `oci-sha256:${createHash('sha256').update(odd).digest('hex')}`);
  assert.match(ociOwner('x'.repeat(300)), /^oci-sha256:[0-9a-f]{64}$/);
});

test('a state without an init pid or id is refused with a clear message', () => {
  assert.throws(() => parseOciState('{"id":"web","pid":0}'), {
    message:
      'Cannot read the OCI state of container "web": it has no init "pid" (run the hook at createRuntime or prestart)',
  });
  assert.throws(() => parseOciState('{"pid":5}'), /no container "id"/);
  assert.throws(() => parseOciState('not json'), {
    message: /^Cannot read the OCI state on stdin: it is not JSON \(/,
  });
});

test('hook arguments: a stage name is tolerated, flags parsed', () => {
  assert.deepEqual(parseOciHookArgs(['createRuntime', '--socket', '/x', '--allow-missing-daemon']), {
    help: false,
    socket: '/x',
    timeoutMs: 15_000,
    allowMissingDaemon: true,
    annotation: 'org.contid.id',
  });
  assert.equal(parseOciHookArgs(['--annotation', 'none']).annotation, null);
  assert.equal(parseOciHookArgs(['--annotation', 'io.example/contid']).annotation, 'io.example/contid');
  assert.throws(() => parseOciHookArgs(['--annotation', '']), /--annotation/);
  assert.throws(() => parseOciHookArgs(['--annotation', 'a b']), /not an annotation key/);
  assert.throws(() => parseOciHookArgs(['a', 'b']), {
    message: /^Cannot use argument ".*": it is not expected$/,
  });
  assert.throws(() => parseOciHookArgs(['--timeout', '0']), /--timeout/);
});

class ScriptedDaemon implements DaemonApi {
  readonly submitted: OperationRequest[] = [];
  errno: ContidErrno | null = null;
  submit(request: OperationRequest) {
    this.submitted.push(request);
    const op = { body: 'op=set', contid: request.contid ?? '', errno: this.errno } as unknown as ContainerOp;
    return Promise.resolve({ errno: this.errno, op });
  }
  get() {
    return null;
  }
  status(): never {
    throw new Error('unused');
  }
}

const privileged = (cred: { pid: number; uid: number; gid: number }): CallerIdentity => ({
  ...cred,
  ppid: 1,
  auid: 4294967295,
  exe: '/usr/bin/node',
  capEff: 1n << 30n,
  userNs: 'user:[4026531837]',
  initialUserNs: true,
  privileged: true,
  fingerprint: readFingerprint(cred.pid),
});

function hook(args: readonly string[], stdin: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [MAIN, 'oci-hook', ...args], (error, _stdout, stderr) => {
      resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? -1), stderr });
    });
    child.stdin?.end(stdin);
  });
}

async function daemonAt(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'contid-oci-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const daemon = new ScriptedDaemon();
  const path = join(dir, 'control.sock');
  const server = await startControlServer(daemon, { path, identify: privileged });
  t.after(() => server.close());
  return { daemon, path };
}

const STATE = JSON.stringify({
  ociVersion: '1.0',
  id: 'feas1',
  pid: 18511,
  root: 'rootfs',
  bundle: '/srv/bundle',
  status: 'created',
  annotations: { 'org.contid.id': '42' },
});

test('the hook sets the init pid to the annotated contid and exits 0', async (t) => {
  const { daemon, path } = await daemonAt(t);
  const result = await hook(['--socket', path], STATE);
  assert.deepEqual(result, { code: 0, stderr: '' });
  const sent = daemon.submitted[0]!;
  assert.equal(sent.op, 'set');
  assert.equal(sent.pid, 18511);
  assert.equal(sent.contid, '42');
  assert.equal((sent as { name?: string }).name, 'feas1');
  assert.deepEqual((sent as { meta?: unknown }).meta, {
    'oci.contid-source': 'annotation',
    'oci.bundle': '/srv/bundle',
  });
  // Create-only, owned by the container: another tenant's hook cannot join the ID.
  assert.equal(sent.owner, 'oci:feas1');
  assert.equal(sent.create, true);
});

test('with --annotation none the hook derives the contid even when the annotation is there', async (t) => {
  const { daemon, path } = await daemonAt(t);
  const result = await hook(['--socket', path, '--annotation', 'none'], STATE);
  assert.deepEqual(result, { code: 0, stderr: '' });
  assert.equal(daemon.submitted[0]!.contid, deriveContid('feas1'));
  assert.equal(
    (daemon.submitted[0] as { meta?: Record<string, string> }).meta?.['oci.contid-source'],
    'derived',
  );
});

test('a refusal fails the hook with the reason, so the runtime aborts', async (t) => {
  const { daemon, path } = await daemonAt(t);
  daemon.errno = 'ENOTUNIQ';
  const result = await hook(['--socket', path], STATE);
  assert.equal(result.code, 1);
  assert.equal(
    result.stderr,
    'contid oci-hook: cannot label container "feas1" (init pid 18511, contid 42): Cannot set contid of pid 18511: the ID is live and owned by another orchestrator, or live at all for a create-only set (ENOTUNIQ)\n',
  );
});

test('no daemon fails the container unless --allow-missing-daemon', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'contid-oci-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const path = join(dir, 'control.sock');
  const closed = await hook(['--socket', path], STATE);
  assert.equal(closed.code, 3);
  assert.match(closed.stderr, /Cannot reach the contid daemon: nothing listens on ".*" \(ENOENT\)/);
  const open = await hook(['--socket', path, '--allow-missing-daemon'], STATE);
  assert.equal(open.code, 0);
  assert.match(open.stderr, /warning: container "feas1" .* is not labelled/);
});

test('an unusable state exits 2 without asking the daemon', async (t) => {
  const { daemon, path } = await daemonAt(t);
  const result = await hook(['--socket', path], '{"id":"x","pid":0,"status":"stopped"}');
  assert.equal(result.code, 2);
  assert.equal(daemon.submitted.length, 0);
});
