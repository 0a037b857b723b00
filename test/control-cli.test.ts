/** `contid set|get|grant|status`: arguments, output, exit codes. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parsePidArgs, parseSetArgs, parseStatusArgs } from '../src/cli/control-args.js';
import { formatStatus } from '../src/cli/control.js';
import { readFingerprint, type CallerIdentity } from '../src/control/peer.js';
import { startControlServer } from '../src/control/server.js';
import type { DaemonApi, DaemonStatus, OperationRequest } from '../src/daemon/api.js';
import type { ContainerOp } from '../src/policy/labeller.js';
import type { ContidErrno } from '../src/policy/errno.js';

const MAIN = new URL('../src/cli/main.js', import.meta.url).pathname;

test('set arguments: pid, contid, name and repeated meta', () => {
  const args = parseSetArgs([
    '812',
    '42',
    '--name',
    'web',
    '--meta',
    'a=1',
    '--meta',
    'b=x=y',
    '--socket',
    '/s',
  ]);
  assert.equal(args.pid, 812);
  assert.equal(args.contid, '42');
  assert.equal(args.name, 'web');
  assert.deepEqual(args.meta, { a: '1', b: 'x=y' });
  const hostile = parseSetArgs(['1', '2', '--name', `it's "web" – ü`, '--meta', '__proto__=x']);
  assert.equal(hostile.name, `it's "web" – ü`);
  assert.deepEqual(Object.entries(hostile.meta), [['__proto__', 'x']]);
  assert.equal(args.socket, '/s');
  assert.equal(parseSetArgs(['1', '2']).socket, '/run/contid/control.sock');
  assert.equal(parseSetArgs(['1', '2']).owner, null);
  assert.equal(parseSetArgs(['1', '2']).create, false);
  const owned = parseSetArgs(['1', '2', '--owner', 'oci:web', '--create']);
  assert.equal(owned.owner, 'oci:web');
  assert.equal(owned.create, true);
});

const USAGE: readonly [string, () => unknown, RegExp][] = [
  ['set without contid', () => parseSetArgs(['812']), /^Cannot read the arguments: CONTID is missing$/],
  [
    'set with a bad pid',
    () => parseSetArgs(['x', '1']),
    /^Cannot use PID "x": it is not a positive integer$/,
  ],
  ['meta without =', () => parseSetArgs(['1', '2', '--meta', 'a']), /not KEY=VALUE/],
  ['meta twice', () => parseSetArgs(['1', '2', '--meta', 'a=1', '--meta', 'a=2']), /given twice/],
  ['an owner with a space', () => parseSetArgs(['1', '2', '--owner', 'oci:a b']), /--owner/],
  [
    'a name over 256 bytes',
    () => parseSetArgs(['1', '2', '--name', 'é'.repeat(129)]),
    /^Cannot use --name: the name is 258 bytes, more than 256$/,
  ],
  [
    'a name with a newline',
    () => parseSetArgs(['1', '2', '--name', 'web\nfront']),
    /^Cannot use --name: the name has a control character$/,
  ],
  ['an empty name', () => parseSetArgs(['1', '2', '--name', '']), /^Cannot use --name: the name is empty$/],
  [
    'meta over 2048 bytes in all',
    () => parseSetArgs(['1', '2', '--meta', `a=${'v'.repeat(1024)}`, '--meta', `b=${'v'.repeat(1023)}`]),
    /^Cannot use --meta: the metadata keys and values are 2049 bytes together, more than 2048$/,
  ],
  [
    'a meta key with a space',
    () => parseSetArgs(['1', '2', '--meta', 'a b=c']),
    /^Cannot use --meta: metadata key "a b" is not 1-64 of/,
  ],
  ['get without pid', () => parsePidArgs([]), /^Cannot read the arguments: PID is missing$/],
  ['get with two pids', () => parsePidArgs(['1', '2']), /^Cannot use argument "2": it is not expected$/],
  ['status with an argument', () => parseStatusArgs(['x']), /^Cannot use argument "x"/],
  ['an unknown flag', () => parseStatusArgs(['--bogus']), /bogus/],
];
for (const [what, fn, message] of USAGE) {
  test(`usage error: ${what}`, () => {
    assert.throws(
      fn,
      (e: unknown) => (e as { code?: string }).code === 'ERR_USAGE' && message.test((e as Error).message),
    );
  });
}

test('status reads as one fact a line, extra fields included', () => {
  const status: DaemonStatus = {
    pid: 4242,
    startedAt: '2026-11-28T17:55:00Z',
    source: 'unicast',
    records: 1234567,
    events: 400000,
    recordRate: 812.345,
    lagMs: 1500,
    losses: { enobufs: 1, kernelLost: 2, serialGaps: 3 },
    processes: 2345,
    containers: 3,
    forgeries: 0,
    sinks: { host: { queued: 0 } },
  };
  assert.equal(
    formatStatus(status),
    [
      'daemon      pid 4242, started 2026-11-28T17:55:00Z, source unicast',
      'records     1,234,567 (812.3/s)',
      'events      400,000',
      'lag         1.5 s',
      'losses      1 ENOBUFS, 2 kernel lost, 3 serial gaps',
      'processes   2,345',
      'containers  3',
      'forgeries   0',
      'sinks       {"host":{"queued":0}}',
      '',
    ].join('\n'),
  );
});

function cli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? -1), stdout, stderr });
    });
  });
}

function socketPath(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'contid-cli-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return join(dir, 'control.sock');
}

test('every control command exits 3 when the daemon is not running', async (t) => {
  const path = socketPath(t);
  for (const args of [['set', '1', '2'], ['get', '1'], ['grant', '1'], ['status']]) {
    const result = await cli([...args, '--socket', path]);
    assert.equal(result.code, 3, args.join(' '));
    assert.match(
      result.stderr,
      /^contid: Cannot reach the contid daemon: nothing listens on ".*" \(ENOENT\)\n$/,
    );
  }
});

test('every control command has --help and exits 2 on a usage error', async () => {
  for (const verb of ['set', 'get', 'grant', 'status', 'oci-hook']) {
    const help = await cli([verb, '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, new RegExp(`^Usage: contid ${verb}`));
  }
  const usage = await cli(['get']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /Cannot read the arguments: PID is missing/);
});

test('answers and refusals through the CLI', async (t) => {
  const path = socketPath(t);
  let errno: ContidErrno | null = null;
  const api: DaemonApi = {
    submit: (request: OperationRequest) =>
      Promise.resolve({
        errno,
        op: { body: 'op=set', contid: request.contid ?? '4,^2' } as unknown as ContainerOp,
      }),
    get: (pid) => ({ pid, contid: '4,^2' }),
    status: () => {
      throw new Error('unused');
    },
  };
  const identify = (cred: { pid: number; uid: number; gid: number }): CallerIdentity => ({
    ...cred,
    ppid: 1,
    auid: 0,
    exe: '/x',
    capEff: 0n,
    userNs: 'user:[1]',
    initialUserNs: true,
    privileged: true,
    fingerprint: readFingerprint(cred.pid),
  });
  const server = await startControlServer(api, { path, identify });
  t.after(() => server.close());
  assert.deepEqual(await cli(['set', '812', '42', '--socket', path]), {
    code: 0,
    stdout: 'pid 812: contid 42\n',
    stderr: '',
  });
  assert.deepEqual(await cli(['get', '812', '--socket', path]), { code: 0, stdout: '4,^2\n', stderr: '' });
  errno = 'EEXIST';
  const refused = await cli(['set', '812', '43', '--socket', path]);
  assert.equal(refused.code, 1);
  assert.equal(
    refused.stderr,
    'contid: Cannot set contid of pid 812: the target already has a contid and this is not a nesting set (EEXIST)\n',
  );
  const json = await cli(['grant', '812', '--socket', path, '--json']);
  assert.equal(json.code, 1);
  assert.equal((JSON.parse(json.stdout) as { errno: string }).errno, 'EEXIST');
});
