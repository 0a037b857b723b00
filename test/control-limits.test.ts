/**
 * The control socket's bounds against a client that wants to lock others
 * out, over real unix sockets with real client processes of other uids:
 * connections per uid (root's never starved by another uid), and absolute
 * deadlines that bytes trickled one at a time, or answers left unread, do
 * not extend.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { controlRequest } from '../src/control/client.js';
import { startControlServer, type ControlServer, type ControlServerOptions } from '../src/control/server.js';
import { FakeDaemon, privilegedIdentity as privileged } from './support/fake-daemon.js';

const asRoot = process.getuid?.() === 0;

async function serve(
  t: TestContext,
  options: Partial<ControlServerOptions> = {},
): Promise<{ path: string; server: ControlServer }> {
  const dir = mkdtempSync(join(tmpdir(), 'contid-limits-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  // Opened by the administrator so that other uids can connect.
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'run'), { mode: 0o755 });
  chmodSync(join(dir, 'run'), 0o755);
  const path = join(dir, 'run', 'control.sock');
  const server = await startControlServer(new FakeDaemon(), { path, ...options });
  t.after(() => server.close());
  return { path, server };
}

/**
 * A client process running as `uid` that opens `count` connections one
 * after the other, asks `status` on each, prints how many were served (any
 * answer but ERR_TOO_MANY_CONNECTIONS) and refused, and holds the served
 * ones open until its stdin closes.
 */
const HOLDER = `
const net = require('node:net');
const [path, count] = process.argv.slice(1);
const held = [];
let served = 0, refused = 0;
(async () => {
  for (let i = 0; i < Number(count); i++) {
    const s = net.connect(path);
    // A connection turned away is answered and closed at once; the request
    // may then meet a closed socket (EPIPE) before the answer is read.
    const line = await new Promise((resolve) => {
      let text = '';
      s.on('data', (c) => { text += c; if (text.includes('\\n')) resolve(text); });
      s.on('error', () => undefined);
      s.on('close', () => resolve(text));
      s.write('{"op":"status"}\\n');
    });
    if (!line.includes('\\n') || JSON.parse(line).code === 'ERR_TOO_MANY_CONNECTIONS') refused++;
    else { served++; held.push(s); }
  }
  process.stdout.write(JSON.stringify({ served, refused }) + '\\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
})();
`;

interface Holder {
  readonly child: ChildProcess;
  readonly result: { served: number; refused: number };
}

async function hold(t: TestContext, uid: number, path: string, count: number): Promise<Holder> {
  const argv = ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
  const child = spawn(argv[0]!, [...argv.slice(1), process.execPath, '-e', HOLDER, path, String(count)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.after(() => {
    child.stdin?.end();
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  for await (const chunk of child.stdout) {
    out += chunk as string;
    if (out.includes('\n')) break;
  }
  return { child, result: JSON.parse(out) as { served: number; refused: number } };
}

test(
  'one uid gets at most its share of connections, and root is served while other uids fill theirs',
  { skip: !asRoot && 'needs root (clients run as other uids)' },
  async (t) => {
    const { path, server } = await serve(t, { maxConnections: 6, maxConnectionsPerUid: 4 });
    const nobody = await hold(t, 65534, path, 10);
    assert.deepEqual(nobody.result, { served: 4, refused: 6 });
    // Another unprivileged uid takes what is left of the shared pool, no more.
    const other = await hold(t, 65533, path, 4);
    assert.deepEqual(other.result, { served: 2, refused: 2 });
    assert.equal(server.stats().connections, 6);
    // The pool of other uids is full; root's connections are counted apart.
    const root = await controlRequest(path, { op: 'status' });
    assert.equal(root.ok, true, JSON.stringify(root));
  },
);

test('a client trickling one byte at a time is cut off at the request deadline', async (t) => {
  const { path, server } = await serve(t, { requestDeadlineMs: 300, identify: privileged });
  const socket = connect(path);
  await once(socket, 'connect');
  let answer = '';
  let closed = false;
  socket.setEncoding('utf8').on('data', (c: string) => (answer += c));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  // 100 bytes, 50 ms apart: far longer than the deadline, never a whole line.
  let sent = 0;
  while (!closed && sent < 100) {
    socket.write('x');
    sent++;
    await sleep(50);
  }
  socket.destroy();
  assert.ok(closed && sent < 100, `the server kept a trickling connection open (${sent} bytes sent)`);
  assert.match(answer, /"code":"ERR_REQUEST_TIMEOUT"/);
  assert.equal(server.stats().connections, 0);
});

test('a client that never reads its answers is cut off at the deadline', async (t) => {
  const { path, server } = await serve(t, { requestDeadlineMs: 300, identify: privileged });
  const socket = connect(path);
  await once(socket, 'connect');
  socket.pause();
  socket.on('error', () => undefined);
  t.after(() => socket.destroy());
  // Enough answers to fill both socket buffers many times over.
  for (let i = 0; i < 5000; i++) socket.write('{"op":"status"}\n');
  let waited = 0;
  while (server.stats().connections > 0 && waited < 10_000) {
    await sleep(50);
    waited += 50;
  }
  assert.equal(
    server.stats().connections,
    0,
    'the server still holds a connection whose answers nobody reads',
  );
});
