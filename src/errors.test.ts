import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ControlClientError } from './control/client.js';
import { OciStateError } from './control/oci.js';
import { CallerError } from './control/peer.js';
import { PeerError } from './control/peer-syscalls.js';
import { ControlRequestError, parseRequest } from './control/protocol.js';
import { describeFailure } from './control/server.js';
import { ControlSocketError } from './control/socket-path.js';
import { InputError } from './cli/input.js';
import { UsageError } from './cli/usage.js';
import { DaemonError } from './daemon/api.js';
import { ConfigError, parseConfigFile } from './daemon/config.js';
import { UnsafePathError } from './daemon/files.js';
import {
  ContidError,
  ContidRangeError,
  ContidSyntaxError,
  ContidTypeError,
  ERROR_CODES,
  isContidError,
} from './errors.js';
import { decodeHex, HexDecodeError } from './interpret/hex.js';
import { Errno, SyscallError } from './kernel/libc.js';
import { KeyringSyntaxError, parseKeyring } from './marker/keyring.js';

const docs = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

/** The first column of the table under "## Codes". */
function documentedCodes(): string[] {
  const section = /^## Codes\n([\s\S]*?)(?=^## )/m.exec(docs)?.[1];
  assert.ok(section !== undefined, 'docs/errors.md has a "## Codes" section');
  return [...section.matchAll(/^\| `([A-Z0-9_]+)` +\|/gm)].map((m) => m[1]!);
}

test('docs/errors.md tables every code of ERROR_CODES, once, and no other', () => {
  const documented = documentedCodes();
  assert.deepEqual(documented, [...new Set(documented)], 'a code has two rows');
  assert.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort());
});

test('every ERR_ code docs/errors.md mentions is one of ERROR_CODES', () => {
  const mentioned = new Set([...docs.matchAll(/\bERR_[A-Z0-9_]+/g)].map((m) => m[0]));
  assert.deepEqual(
    [...mentioned].filter((code) => !Object.hasOwn(ERROR_CODES, code)),
    [],
  );
});

test('every ERR_ code in the source is one of ERROR_CODES', () => {
  // Codes contid matches on that belong to Node.js itself.
  const node = new Set(['ERR_INPUT_TYPE_NOT_ALLOWED', 'ERR_INVALID_FD_TYPE', 'ERR_ASSERTION']);
  const found = new Set<string>();
  const root = new URL('../../src/', import.meta.url);
  const sources = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter(
    (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'),
  );
  assert.ok(sources.length > 50, `${sources.length} source files`);
  for (const file of sources) {
    const text = readFileSync(new URL(file, root), 'utf8');
    for (const m of text.matchAll(/'(ERR_[A-Z0-9_]+)'/g)) found.add(m[1]!);
  }
  assert.deepEqual(
    [...found].filter((code) => !node.has(code) && !Object.hasOwn(ERROR_CODES, code)),
    [],
  );
});

const caught = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.fail('did not throw');
};

const cases: [string, unknown, abstract new (...args: never[]) => Error, ErrorConstructor, string][] = [
  ['UsageError', new UsageError('x'), UsageError, Error, 'ERR_USAGE'],
  ['InputError', new InputError('x'), InputError, Error, 'ERR_INPUT'],
  ['ConfigError', caught(() => parseConfigFile('x')), ConfigError, SyntaxError, 'ERR_BAD_CONFIG'],
  ['KeyringSyntaxError', caught(() => parseKeyring('x')), KeyringSyntaxError, SyntaxError, 'ERR_BAD_KEYRING'],
  ['HexDecodeError', caught(() => decodeHex('zz')), HexDecodeError, SyntaxError, 'ERR_BAD_HEX'],
  ['OciStateError', new OciStateError('x'), OciStateError, SyntaxError, 'ERR_BAD_OCI_STATE'],
  ['ControlRequestError', caught(() => parseRequest('{')), ControlRequestError, Error, 'ERR_BAD_JSON'],
  ['CallerError', new CallerError('x', 'ERR_CALLER_GONE'), CallerError, Error, 'ERR_CALLER_GONE'],
  [
    'ControlClientError',
    new ControlClientError('x', 'ERR_BAD_RESPONSE'),
    ControlClientError,
    Error,
    'ERR_BAD_RESPONSE',
  ],
  [
    'ControlSocketError',
    new ControlSocketError('x', 'ERR_NOT_A_SOCKET'),
    ControlSocketError,
    Error,
    'ERR_NOT_A_SOCKET',
  ],
  ['UnsafePathError', new UnsafePathError('x'), UnsafePathError, Error, 'ERR_UNSAFE_PATH'],
  ['DaemonError', new DaemonError('x', 'ERR_SHUTTING_DOWN'), DaemonError, Error, 'ERR_SHUTTING_DOWN'],
  ['SyscallError', new SyscallError('Cannot x', Errno.EEXIST), SyscallError, Error, 'EEXIST'],
  ['PeerError', new PeerError('x', 'EBADF'), PeerError, Error, 'EBADF'],
];
for (const [name, error, Class, Builtin, code] of cases) {
  test(`${name} is a contid error: ${Builtin.name}, code ${code}, name ${name}`, () => {
    assert.ok(error instanceof Class);
    assert.ok(error instanceof Builtin);
    assert.ok(isContidError(error));
    assert.equal(error.code, code);
    assert.equal(error.name, name);
  });
}

test('the bases keep the built-in name and class, and carry the brand', () => {
  const bases: [Error & { code: string }, ErrorConstructor, string][] = [
    [new ContidError('Cannot x: y', 'ERR_INTERNAL'), Error, 'Error'],
    [new ContidSyntaxError('Cannot x: y', 'ERR_BAD_HEX'), SyntaxError, 'SyntaxError'],
    [new ContidRangeError('Cannot x: y', 'ERR_OUT_OF_RANGE'), RangeError, 'RangeError'],
    [new ContidTypeError('Cannot x: y', 'ERR_INCOMPATIBLE_OPTIONS'), TypeError, 'TypeError'],
  ];
  for (const [error, Builtin, name] of bases) {
    assert.ok(error instanceof Builtin);
    assert.ok(isContidError(error));
    assert.equal(error.name, name);
    assert.match(String(error.stack), new RegExp(`^${name}: Cannot x: y\\n`));
  }
  for (const other of [
    new Error('x'),
    new RangeError('x'),
    Object.assign(new Error('x'), { code: 'ERR_USAGE' }),
  ]) {
    assert.equal(isContidError(other), false);
  }
  assert.equal(isContidError(null), false);
  assert.equal(isContidError('ERR_USAGE'), false);
});

test('the control server maps daemon failures by code, not by message', () => {
  const fail = (error: unknown, shuttingDown = false): unknown => describeFailure(error, shuttingDown);
  assert.deepEqual(fail(new DaemonError('x', 'ERR_SHUTTING_DOWN')), {
    code: 'ERR_SHUTTING_DOWN',
    why: 'the daemon is shutting down',
  });
  assert.deepEqual(fail(new DaemonError('x', 'ETIMEDOUT')), {
    code: 'ETIMEDOUT',
    why: 'the daemon did not read the operation back from the kernel in time',
  });
  assert.deepEqual(fail(new DaemonError('x', 'ERR_BAD_OPERATION')), {
    code: 'ERR_BAD_REQUEST',
    why: 'the daemon cannot carry it in a marker',
  });
  const refused = new SyscallError('Cannot send the marker', Errno.EINVAL);
  assert.deepEqual(fail(new DaemonError('x', 'ERR_KERNEL', { cause: refused })), {
    code: 'ERR_KERNEL',
    why: "the kernel refused the daemon's marker with EINVAL",
    detail: 'ERR_KERNEL EINVAL',
  });
  const internal = { code: 'ERR_INTERNAL', why: 'internal error in the daemon' };
  assert.deepEqual(fail(new DaemonError('x', 'ERR_INTERNAL')), internal);
  assert.deepEqual(fail(new DaemonError('x', 'ABORT_ERR')), internal);
  // An errno-like code on something else is not taken for the daemon's.
  assert.deepEqual(fail(Object.assign(new Error('x'), { code: 'ETIMEDOUT' })), internal);
  assert.deepEqual(fail(new SyscallError('Cannot x', Errno.EPERM)), internal);
  assert.deepEqual(fail(new TypeError('x')), internal);
  assert.deepEqual(fail(new TypeError('x'), true), {
    code: 'ERR_SHUTTING_DOWN',
    why: 'the daemon is shutting down',
  });
});

test('messages read "Cannot <do what>: <why>"', () => {
  const messages = [
    caught(() => parseConfigFile('x')),
    caught(() => parseConfigFile('source = kernel')),
    caught(() => parseKeyring('S1 - zz')),
    caught(() => parseRequest('[]')),
    caught(() => parseRequest('{"op":"get","pid":0}')),
  ].map((e) => (e as Error).message);
  assert.deepEqual(messages, [
    'Cannot read config line 1: expected "key = value"',
    'Cannot use source (config line 1): "kernel" is not one of auto, unicast, multicast, plugin',
    'Cannot read keyring line 1: the secret is not 32 to 128 hex digits',
    'Cannot parse the request: it is not a JSON object',
    'Cannot parse the request: "pid" is not a positive integer',
  ]);
});
