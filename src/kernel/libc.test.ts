import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Errno, SyscallError, close, errno, errnoName, strerror } from './libc.js';

void test('SyscallError says what failed, why, and the errno name', () => {
  const error = new SyscallError('Cannot register as the audit daemon', Errno.EEXIST, {
    reason: 'another daemon is registered',
  });
  assert.equal(error.message, 'Cannot register as the audit daemon: another daemon is registered (EEXIST)');
  assert.equal(error.code, 'EEXIST');
  assert.equal(error.errno, 17);
  assert.equal(error.name, 'SyscallError');
  assert.ok(error instanceof Error);
});

void test('SyscallError defaults the reason to strerror in sentence case', () => {
  const error = new SyscallError('Cannot open "/nope"', Errno.ENOENT);
  assert.equal(error.message, 'Cannot open "/nope": no such file or directory (ENOENT)');
});

void test('SyscallError.withMessage keeps a finished message', () => {
  const error = SyscallError.withMessage('Cannot receive from the audit socket: boom (EPERM)', Errno.EPERM);
  assert.equal(error.message, 'Cannot receive from the audit socket: boom (EPERM)');
  assert.equal(error.code, 'EPERM');
});

void test('errnoName maps numbers to names and falls back to E<number>', () => {
  assert.equal(errnoName(1), 'EPERM');
  assert.equal(errnoName(105), 'ENOBUFS');
  assert.equal(errnoName(11), 'EAGAIN');
  assert.equal(errnoName(99999), 'E99999');
});

void test('errno reads the failure of the call just made', () => {
  assert.equal(close(-1), -1);
  assert.equal(errno(), Errno.EBADF);
  assert.equal(strerror(Errno.EBADF), 'Bad file descriptor');
  const error = (() => {
    close(-1);
    return SyscallError.fromErrno('Cannot close fd -1');
  })();
  assert.equal(error.code, 'EBADF');
});
