/**
 * The control server over real unix sockets, with a scripted DaemonApi, and
 * real client processes of different privileges at the other end.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { DaemonError } from '../src/daemon/api.js';
import { controlRequest } from '../src/control/client.js';
import { startControlServer, type ControlServerOptions } from '../src/control/server.js';
import { FAKE_STATUS as STATUS, FakeDaemon, privilegedIdentity } from './support/fake-daemon.js';

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'contid-control-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

async function serve(t: TestContext, options: Partial<ControlServerOptions> = {}) {
  const daemon = new FakeDaemon();
  const path = join(tempDir(t), 'run', 'control.sock');
  const server = await startControlServer(daemon, { path, ...options });
  t.after(() => server.close());
  return { daemon, path, server };
}

/** Sends raw bytes, reads until the server closes or `lines` answers arrived. */
async function exchange(path: string, payload: string | Buffer, lines: number): Promise<unknown[]> {
  const socket = connect(path);
  await once(socket, 'connect');
  socket.write(payload);
  let text = '';
  socket.setEncoding('utf8');
  for await (const chunk of socket) {
    text += chunk as string;
    if (text.split('\n').length - 1 >= lines) break;
  }
  socket.destroy();
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);
}

test('the socket directory is created root-only and the socket removed on close', async (t) => {
  const { path, server } = await serve(t);
  const dir = join(path, '..');
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(path).isSocket(), true);
  await server.close();
  await server.close();
  assert.equal(existsSync(path), false);
});

test('a directory others can write to is refused', async (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o777);
  await assert.rejects(
    startControlServer(new FakeDaemon(), { path: join(dir, 'control.sock') }),
    (e: unknown) => (e as { code?: string }).code === 'ERR_UNSAFE_SOCKET_DIR',
  );
});

test('a stale socket is replaced, a live one is not', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'control.sock');
  const stale = createServer();
  await new Promise<void>((resolve) => stale.listen(path, resolve));
  await assert.rejects(
    startControlServer(new FakeDaemon(), { path }),
    (e: unknown) => (e as { code?: string }).code === 'EADDRINUSE',
  );
  // A server that dies without unlinking leaves the path behind.
  const file = join(dir, 'not-a-socket');
  writeFileSync(file, '');
  await assert.rejects(startControlServer(new FakeDaemon(), { path: file }), /not a socket/);
  stale.close();
  writeFileSync(join(dir, 'x'), '');
  const server = await startControlServer(new FakeDaemon(), { path });
  await server.close();
});

test(
  'set is forwarded with the caller established by the kernel and /proc',
  { skip: !asRoot && 'needs root' },
  async (t) => {
    const { daemon, path } = await serve(t);
    const answer = await controlRequest(path, {
      op: 'set',
      pid: 812,
      contid: '42',
      name: 'web',
      meta: { image: 'busybox' },
    });
    assert.deepEqual(answer, {
      ok: true,
      op: 'set',
      pid: 812,
      contid: '42',
      record: 'op=set opid=812 res=1',
    });
    const sent = daemon.submitted[0]!;
    assert.equal(sent.caller.pid, process.pid);
    assert.equal(sent.caller.uid, 0);
    assert.equal(sent.caller.privileged, true);
    assert.equal(sent.caller.exe, process.execPath);
    assert.equal(sent.contid, '42');
    assert.deepEqual((sent as { meta?: unknown }).meta, { image: 'busybox' });
    assert.equal((sent as { name?: unknown }).name, 'web');
  },
);

test(
  'a refusal names the rule and carries the recorded CONTAINER_OP',
  { skip: !asRoot && 'needs root' },
  async (t) => {
    const { daemon, path } = await serve(t);
    daemon.answer = () => 'EBUSY';
    const answer = await controlRequest(path, { op: 'set', pid: 812, contid: '42' });
    assert.deepEqual(answer, {
      ok: false,
      op: 'set',
      pid: 812,
      errno: 'EBUSY',
      message: 'Cannot set contid of pid 812: the target has children (EBUSY)',
      record: 'op=set opid=812 res=0',
    });
  },
);

test(
  'malformed requests get an error each and the connection goes on',
  { skip: !asRoot && 'needs root' },
  async (t) => {
    const { path } = await serve(t);
    const answers = await exchange(path, '{"op":\n[]\n{"op":"status","id":"s1"}\n', 3);
    assert.equal(answers.length, 3);
    assert.deepEqual(
      answers.map((a) => (a as { code?: string }).code ?? (a as { op?: string }).op),
      ['ERR_BAD_JSON', 'ERR_BAD_REQUEST', 'status'],
    );
    assert.equal((answers[2] as { id?: string }).id, 's1');
  },
);

test('pipelined requests are answered in order', { skip: !asRoot && 'needs root' }, async (t) => {
  const { daemon, path } = await serve(t);
  daemon.answer = async (r) => {
    await new Promise((resolve) => setTimeout(resolve, r.pid === 1 ? 50 : 0));
    return null;
  };
  const answers = await exchange(
    path,
    '{"op":"set","pid":1,"contid":"1"}\n{"op":"set","pid":2,"contid":"2"}\n',
    2,
  );
  assert.deepEqual(
    answers.map((a) => (a as { pid: number }).pid),
    [1, 2],
  );
});

test('an over-long request is answered and the connection closed', async (t) => {
  const { path } = await serve(t, { maxRequestBytes: 1024 });
  const answers = await exchange(path, Buffer.alloc(4096, 0x61), 1);
  assert.deepEqual(
    answers.map((a) => (a as { code: string }).code),
    ['ERR_REQUEST_TOO_LARGE'],
  );
});

test('requests sent far ahead of their answers close the connection', async (t) => {
  const { path } = await serve(t, { maxQueuedRequests: 4, identify: privilegedIdentity });
  const answers = await exchange(path, '{"op":"status"}\n'.repeat(20), 20);
  assert.equal((answers.at(-1) as { code: string }).code, 'ERR_TOO_MANY_REQUESTS');
});

test('connections beyond the bound are turned away with an answer', async (t) => {
  const { path } = await serve(t, { maxConnections: 1, identify: privilegedIdentity });
  const first = connect(path);
  await once(first, 'connect');
  t.after(() => first.destroy());
  await new Promise((r) => setTimeout(r, 20));
  const answers = await exchange(path, '{"op":"status"}\n', 1);
  assert.equal((answers[0] as { code: string }).code, 'ERR_TOO_MANY_CONNECTIONS');
});

test('a client turned away for too many connections tries again until a slot is free', async (t) => {
  const { path, server } = await serve(t, { maxConnections: 1, identify: privilegedIdentity });
  const first = connect(path);
  await once(first, 'connect');
  const answer = controlRequest(path, { op: 'status' }, { timeoutMs: 20_000 });
  while (server.stats().rejectedConnections === 0) await new Promise((r) => setTimeout(r, 10));
  first.destroy();
  assert.equal((await answer).ok, true);
});

test("the daemon's ETIMEDOUT (a marker that never came back) reaches the client as ETIMEDOUT", async (t) => {
  const { daemon, path } = await serve(t, { identify: privilegedIdentity });
  daemon.answer = () =>
    Promise.reject(
      new DaemonError('Cannot set pid 3: its marker was not read back within 50 ms', 'ETIMEDOUT'),
    );
  const answer = await controlRequest(path, { op: 'set', pid: 3, contid: '3' });
  assert.equal(answer.ok, false);
  assert.equal((answer as { code?: string }).code, 'ETIMEDOUT');
  assert.match((answer as { message: string }).message, /^Cannot set contid of pid 3: .* \(ETIMEDOUT\)$/);
});

test('a failing DaemonApi gives ERR_INTERNAL and is reported, never a crash', async (t) => {
  const errors: unknown[] = [];
  const { daemon, path } = await serve(t, { identify: privilegedIdentity, onError: (e) => errors.push(e) });
  daemon.answer = () => {
    throw new Error('boom');
  };
  const answer = await controlRequest(path, { op: 'grant', pid: 3 });
  assert.equal((answer as { code?: string }).code, 'ERR_INTERNAL');
  assert.equal(errors.length, 1);
  const again = await controlRequest(path, { op: 'status' });
  assert.equal(again.ok, true);
});

test('get and status answer privileged callers', async (t) => {
  const { path } = await serve(t, { identify: privilegedIdentity });
  assert.deepEqual(await controlRequest(path, { op: 'get', pid: 9 }), {
    ok: true,
    op: 'get',
    pid: 9,
    contid: '4,^2',
  });
  assert.deepEqual(await controlRequest(path, { op: 'get', pid: 5 }), {
    ok: true,
    op: 'get',
    pid: 5,
    contid: null,
  });
  const unknown = await controlRequest(path, { op: 'get', pid: 404 });
  assert.equal((unknown as { errno?: string }).errno, 'ESRCH');
  const status = await controlRequest(path, { op: 'status' });
  assert.deepEqual(status, { ok: true, op: 'status', status: STATUS });
});

/** Runs a client in a child process under `prefix` (setpriv …) and returns its answer. */
async function clientAs(
  prefix: readonly string[],
  path: string,
  request: object,
): Promise<Record<string, unknown>> {
  const client = new URL('../src/control/client.js', import.meta.url).href;
  const script = `import { controlRequest } from ${JSON.stringify(client)};
    process.stdout.write(JSON.stringify(await controlRequest(process.argv[1], JSON.parse(process.argv[2]))));`;
  const argv = [
    ...prefix,
    process.execPath,
    '--input-type=module',
    '-e',
    script,
    path,
    JSON.stringify(request),
  ];
  const { stdout } = await run(argv[0]!, argv.slice(1));
  return JSON.parse(stdout) as Record<string, unknown>;
}

async function openServer(t: TestContext) {
  const daemon = new FakeDaemon();
  const dir = tempDir(t);
  // Opened by the administrator so that a non-root orchestrator can connect.
  mkdirSync(join(dir, 'run'), { mode: 0o755 });
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'run'), 0o755);
  const path = join(dir, 'run', 'control.sock');
  const server = await startControlServer(daemon, { path });
  t.after(() => server.close());
  return { daemon, path };
}

const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
const NO_AUDIT_CONTROL = ['setpriv', '--inh-caps=-all', '--bounding-set=-audit_control'];

test(
  'callers without CAP_AUDIT_CONTROL are forwarded as unprivileged',
  { skip: !asRoot && 'needs root' },
  async (t) => {
    const { daemon, path } = await openServer(t);
    daemon.answer = (r) => (r.caller.privileged ? null : 'EPERM');
    const nobody = await clientAs(NOBODY, path, { op: 'set', pid: 812, contid: '42' });
    assert.equal(nobody['errno'], 'EPERM');
    assert.equal(
      nobody['message'],
      'Cannot set contid of pid 812: the caller is neither privileged nor delegated (EPERM)',
    );
    const dropped = await clientAs(NO_AUDIT_CONTROL, path, { op: 'grant', pid: 812 });
    assert.equal(dropped['errno'], 'EPERM');
    const root = await clientAs([], path, { op: 'set', pid: 812, contid: '42' });
    assert.equal(root['ok'], true);
    assert.deepEqual(
      daemon.submitted.map((r) => [r.op, r.caller.uid, r.caller.privileged]),
      [
        ['set', 65534, false],
        ['grant', 0, false],
        ['set', 0, true],
      ],
    );
    // The pid is the client process itself (a child of setpriv's exec, so the same pid chain).
    assert.ok(daemon.submitted.every((r) => r.caller.exe === process.execPath));
  },
);

test(
  'unprivileged callers cannot read: get and status are refused at the server',
  { skip: !asRoot && 'needs root' },
  async (t) => {
    const { path } = await openServer(t);
    const get = await clientAs(NO_AUDIT_CONTROL, path, { op: 'get', pid: 1 });
    assert.deepEqual(get, {
      op: 'get',
      pid: 1,
      ok: false,
      errno: 'EPERM',
      message:
        'Cannot get contid of pid 1: reads need CAP_AUDIT_CONTROL in the initial user namespace (EPERM)',
    });
    const status = await clientAs(NOBODY, path, { op: 'status' });
    assert.equal(status['errno'], 'EPERM');
  },
);

test(
  'a request served after its caller has exited is not forwarded',
  { skip: !asRoot && 'needs root' },
  async (t) => {
    const { daemon, path, server } = await serve(t);
    daemon.answer = async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      return null;
    };
    // Two pipelined requests; the client hands its connection to a child and
    // exits (and is reaped) while the first is still being served. The second
    // must not go out under the dead client's pid.
    const client = `const { spawn } = require('child_process');
  const s = require('net').connect(process.argv[1], () => {
    s.write('{"op":"set","pid":3,"contid":"3"}\\n{"op":"set","pid":4,"contid":"4"}\\n', () => {
      const keeper = spawn('/bin/sleep', ['5'], { stdio: ['ignore', 'ignore', 'ignore', s], detached: true });
      process.stdout.write(String(keeper.pid));
      process.exit(0);
    });
  });`;
    const { stdout } = await run(process.execPath, ['-e', client, path]);
    t.after(() => {
      try {
        process.kill(Number(stdout), 'SIGKILL');
      } catch {
        // Already gone.
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.deepEqual(
      daemon.submitted.map((r) => r.pid),
      [3],
    );
    assert.equal(server.stats().errors, 1);
  },
);

test(
  'only the host names sinks: a set with sinks from a caller without CAP_AUDIT_CONTROL is refused, not forwarded',
  { skip: !asRoot && 'needs root' },
  async (t) => {
    const { daemon, path } = await openServer(t);
    const sinks = ['file:/var/log/contid/containers/{contid}/audit.log'];
    const tenant = await clientAs(NO_AUDIT_CONTROL, path, { op: 'set', pid: 812, contid: '42', sinks });
    assert.equal(tenant['errno'], 'EPERM');
    assert.equal(
      tenant['message'],
      'Cannot set contid of pid 812: naming sinks needs CAP_AUDIT_CONTROL in the initial user namespace (EPERM)',
    );
    const nobody = await clientAs(NOBODY, path, { op: 'set', pid: 812, contid: '42', sinks: [] });
    assert.equal(nobody['errno'], 'EPERM');
    assert.equal(daemon.submitted.length, 0, 'nothing was forwarded');
    const bad = await clientAs([], path, { op: 'set', pid: 812, contid: '42', sinks: ['tcp:1.2.3.4:60'] });
    assert.equal(bad['code'], 'ERR_BAD_REQUEST');
    assert.match(String(bad['message']), /Cannot use sink "tcp:1\.2\.3\.4:60": expected file:PATH/);
    const root = await clientAs([], path, { op: 'set', pid: 812, contid: '42', sinks });
    assert.equal(root['ok'], true);
    assert.deepEqual(
      daemon.submitted.map((r) => r.sinks?.map((s) => [s.kind, s.target])),
      [[['file', '/var/log/contid/containers/{contid}/audit.log']]],
    );
  },
);
