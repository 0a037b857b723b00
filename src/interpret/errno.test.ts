import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errnoMessage, errnoName, interpretExit } from './errno.js';

// Names checked against libaudit's audit_errno_to_name() and messages against glibc 2.36's
// strerror() in the C locale (python3 os.strerror).
const ERRNOS: readonly (readonly [number, string, string])[] = [
  [1, 'EPERM', 'Operation not permitted'],
  [2, 'ENOENT', 'No such file or directory'],
  [3, 'ESRCH', 'No such process'],
  [4, 'EINTR', 'Interrupted system call'],
  [11, 'EAGAIN', 'Resource temporarily unavailable'],
  [12, 'ENOMEM', 'Cannot allocate memory'],
  [13, 'EACCES', 'Permission denied'],
  [16, 'EBUSY', 'Device or resource busy'],
  [17, 'EEXIST', 'File exists'],
  [18, 'EXDEV', 'Invalid cross-device link'],
  [22, 'EINVAL', 'Invalid argument'],
  [35, 'EDEADLK', 'Resource deadlock avoided'],
  [40, 'ELOOP', 'Too many levels of symbolic links'],
  [42, 'ENOMSG', 'No message of desired type'],
  [95, 'EOPNOTSUPP', 'Operation not supported'],
  [110, 'ETIMEDOUT', 'Connection timed out'],
  [125, 'ECANCELED', 'Operation canceled'],
  [133, 'EHWPOISON', 'Memory page has hardware error'],
];

void test('errnoName and errnoMessage give the kernel name and the C library message', () => {
  for (const [n, name, message] of ERRNOS) {
    assert.equal(errnoName(n), name, String(n));
    assert.equal(errnoMessage(n), message, String(n));
  }
});

void test('errnoName and errnoMessage return undefined for numbers the kernel does not define', () => {
  // 41 and 58 are holes in the kernel's numbering (EWOULDBLOCK and EDEADLOCK are aliases).
  for (const n of [0, 41, 58, 134, 512, -13, 1.5, Number.NaN]) {
    assert.equal(errnoName(n), undefined, String(n));
    assert.equal(errnoMessage(n), undefined, String(n));
  }
});

// Expected values are what auparse 3.0.9 prints for `exit=` (interpret_field), where it has a name.
const EXITS: readonly (readonly [string, string | undefined])[] = [
  ['-1', 'EPERM(Operation not permitted)'],
  ['-2', 'ENOENT(No such file or directory)'],
  ['-11', 'EAGAIN(Resource temporarily unavailable)'],
  ['-13', 'EACCES(Permission denied)'],
  ['-22', 'EINVAL(Invalid argument)'],
  ['-35', 'EDEADLK(Resource deadlock avoided)'],
  ['-95', 'EOPNOTSUPP(Operation not supported)'],
  ['-110', 'ETIMEDOUT(Connection timed out)'],
  ['-133', 'EHWPOISON(Memory page has hardware error)'],
  ['-013', 'EACCES(Permission denied)'],
  // auparse prints `(null)(Unknown error N)` for these; the caller keeps the raw value instead.
  ['-41', undefined],
  ['-58', undefined],
  ['-134', undefined],
  ['-512', undefined],
  ['-4095', undefined],
  // auparse leaves these as they are.
  ['0', undefined],
  ['5', undefined],
  ['1234', undefined],
  ['-0', undefined],
  ['+5', undefined],
  ['abc', undefined],
  // auparse reads these as -13 and as (null)(Success); they are not decimal integers the kernel writes.
  ['-13x', undefined],
  ['-9223372036854775808', undefined],
  ['-', undefined],
  ['', undefined],
  [' -13', undefined],
  ['-40950', undefined],
];

void test('interpretExit gives auparse form for negative known errnos and undefined otherwise', () => {
  for (const [raw, expected] of EXITS) assert.equal(interpretExit(raw), expected, raw);
});
