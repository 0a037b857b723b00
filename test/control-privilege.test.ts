/**
 * Privilege on the control socket is fixed when a client connects: a real
 * unprivileged client that hands its connection to a child and then execs a
 * real setuid-root program (built here with gcc, installed root 4755) must
 * not have its child's requests judged privileged.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startControlServer } from '../src/control/server.js';
import { FakeDaemon } from './support/fake-daemon.js';

const C_DIR = new URL('../../test/support/c/', import.meta.url).pathname;

function which(command: string): boolean {
  return spawnSync('/bin/sh', ['-c', `command -v ${command}`]).status === 0;
}

const skip =
  process.getuid?.() !== 0
    ? 'needs root (a setuid-root helper and a client run as nobody)'
    : !which('gcc') || !which('setpriv')
      ? 'gcc and setpriv are needed'
      : undefined;

const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

/** A directory everybody may enter, removed after the test. */
function openDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'contid-privilege-'));
  chmodSync(dir, 0o755);
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Compiles `name`.c from test/support/c into `dir`. */
function compile(dir: string, name: string): string {
  const out = join(dir, name);
  const r = spawnSync('gcc', ['-O2', '-Wall', '-o', out, join(C_DIR, `${name}.c`)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return out;
}

interface Setup {
  readonly daemon: FakeDaemon;
  readonly socket: string;
  readonly client: string;
  readonly helper: string;
}

async function setup(t: TestContext): Promise<Setup> {
  const dir = openDir(t);
  const helper = compile(dir, 'setuid-wait');
  chownSync(helper, 0, 0);
  chmodSync(helper, 0o4755);
  const client = compile(dir, 'connect-fork-exec');
  // The administrator opened the socket's directory to delegated orchestrators.
  mkdirSync(join(dir, 'run'), { mode: 0o755 });
  chmodSync(join(dir, 'run'), 0o755);
  const socket = join(dir, 'run', 'control.sock');
  const daemon = new FakeDaemon();
  const server = await startControlServer(daemon, { path: socket });
  t.after(() => server.close());
  return { daemon, socket, client, helper };
}

/** Starts the client as nobody; kills what is left of it (the setuid helper) after the test. */
function startClient(t: TestContext, s: Setup, mode: 'early' | 'late', request: object): ChildProcess {
  const argv = [...NOBODY, s.client, s.socket, s.helper, mode, JSON.stringify(request)];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

/** Collects the client's stdout until its child printed the answer line. */
async function answerOf(child: ChildProcess): Promise<{ first?: unknown; answer: Record<string, unknown> }> {
  let out = '';
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (err += c));
  child.stdout!.setEncoding('utf8');
  for await (const chunk of child.stdout!) {
    out += chunk as string;
    if (/^answer .*\n/m.test(out)) break;
    if (child.exitCode !== null) break;
  }
  const answer = /^answer (.*)$/m.exec(out)?.[1];
  assert.ok(answer !== undefined, `no answer from the client: ${out}${err}`);
  const first = /^first (.*)$/m.exec(out)?.[1];
  return {
    ...(first === undefined ? {} : { first: JSON.parse(first) as unknown }),
    answer: JSON.parse(answer) as Record<string, unknown>,
  };
}

/**
 * Blocks this thread (and so the server's accept, which runs on it) until
 * the process `pid` runs `exe`: the kernel completes the connection in the
 * listen backlog meanwhile, so the server first looks at the caller after
 * it has exec'd.
 */
function blockUntilRunning(pid: number, exe: string): void {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if (readlinkSync(`/proc/${pid}/exe`) === exe) return;
    } catch {
      // Not there yet, or between programs.
    }
    if (Date.now() > deadline) throw new Error(`pid ${pid} did not run ${exe}`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
  }
}

test(
  'a connection whose caller execs a setuid program after the server identified it is refused',
  { skip },
  async (t) => {
    const s = await setup(t);
    const child = startClient(t, s, 'late', { op: 'set', pid: 812, contid: '42' });
    const { first, answer } = await answerOf(child);
    // Before the exec the caller was nobody: its read was refused.
    assert.equal((first as { errno?: string }).errno, 'EPERM');
    assert.equal(answer['ok'], false);
    assert.equal(answer['code'], 'ERR_CALLER_CHANGED');
    assert.match(
      answer['message'] as string,
      new RegExp(
        `^Cannot set contid of pid 812: the caller \\(pid ${child.pid}\\) has executed another program or changed its ids since it connected$`,
      ),
    );
    assert.deepEqual(s.daemon.submitted, []);
  },
);

test(
  'a caller that execs a setuid program before the server looks at it is not judged privileged',
  { skip },
  async (t) => {
    const s = await setup(t);
    const child = startClient(t, s, 'early', { op: 'set', pid: 812, contid: '42' });
    blockUntilRunning(child.pid!, s.helper);
    const { answer } = await answerOf(child);
    assert.equal(answer['ok'], false);
    assert.equal(answer['code'], 'ERR_CALLER_CHANGED');
    assert.ok(
      s.daemon.submitted.every((r) => !r.caller.privileged),
      JSON.stringify(s.daemon.submitted.map((r) => r.caller)),
    );
    assert.deepEqual(s.daemon.submitted, []);
  },
);
