import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CONTAINER_ID_NAME,
  CONTAINER_OP,
  isStandaloneType,
  isUserMessageType,
  recordTypeName,
  recordTypeNumber,
} from './record-types.js';
import { RECORD_TYPES } from './record-types-generated.js';

// Names checked against libaudit's audit_msg_type_to_name() (python3-audit 3.0.9).
const NAMES: readonly (readonly [number, string])[] = [
  [1005, 'USER'],
  [1006, 'LOGIN'],
  [1100, 'USER_AUTH'],
  [1107, 'USER_AVC'],
  [1112, 'USER_LOGIN'],
  [1130, 'SERVICE_START'],
  [1200, 'DAEMON_START'],
  [1203, 'DAEMON_CONFIG'],
  [1300, 'SYSCALL'],
  [1302, 'PATH'],
  [1305, 'CONFIG_CHANGE'],
  [1307, 'CWD'],
  [1309, 'EXECVE'],
  [1320, 'EOE'],
  [1327, 'PROCTITLE'],
  [1336, 'URINGOP'],
  [1337, 'OPENAT2'],
  [1400, 'AVC'],
  [1700, 'ANOM_PROMISCUOUS'],
  [2000, 'KERNEL'],
  [2100, 'ANOM_LOGIN_FAILURES'],
  [2507, 'VIRT_MIGRATE_OUT'],
  [CONTAINER_OP, 'CONTAINER_OP'],
];

void test('recordTypeName and recordTypeNumber map libaudit names both ways', () => {
  for (const [n, name] of NAMES) {
    assert.equal(recordTypeName(n), name, String(n));
    assert.equal(recordTypeNumber(name), n, name);
  }
});

void test('recordTypeName writes UNKNOWN[n] for a number without a name', () => {
  for (const n of [0, 999, 1000, 1004, 1299, 1420, 2999, 3000, 65535]) {
    assert.equal(recordTypeName(n), `UNKNOWN[${n}]`);
  }
});

void test('recordTypeNumber reads UNKNOWN[n], even for a number that has a name', () => {
  assert.equal(recordTypeNumber('UNKNOWN[1420]'), 1420);
  assert.equal(recordTypeNumber('UNKNOWN[1323]'), 1323);
  assert.equal(recordTypeNumber('UNKNOWN[0]'), 0);
  assert.equal(recordTypeNumber('UNKNOWN[65535]'), 65535);
  assert.equal(recordTypeNumber('UNKNOWN[01420]'), 1420);
});

void test('recordTypeNumber matches known names in any case, as libaudit does', () => {
  assert.equal(recordTypeNumber('syscall'), 1300);
  assert.equal(recordTypeNumber('Eoe'), 1320);
});

void test('recordTypeNumber returns undefined for anything else', () => {
  const bad = [
    '',
    'NOPE',
    'SYSCALL ',
    '1300',
    'UNKNOWN[]',
    'UNKNOWN[1420',
    'UNKNOWN[1420]x',
    'UNKNOWN[-5]',
    'UNKNOWN[65536]',
    'UNKNOWN[123456]',
    'unknown[1420]',
    CONTAINER_ID_NAME,
  ];
  for (const name of bad) assert.equal(recordTypeNumber(name), undefined, name);
});

void test('contid names: CONTAINER_OP is 1020, CONTAINER_ID has no number and 1336 stays URINGOP', () => {
  assert.equal(CONTAINER_OP, 1020);
  assert.equal(CONTAINER_ID_NAME, 'CONTAINER_ID');
  assert.equal(recordTypeName(1336), 'URINGOP');
  // libaudit must not have claimed 1020 since: if it does, the generated table and contid disagree.
  assert.equal(
    RECORD_TYPES.find(([n]) => n === CONTAINER_OP),
    undefined,
  );
});

void test('every generated record type round-trips', () => {
  for (const [n, name] of RECORD_TYPES) {
    assert.equal(recordTypeName(n), name);
    assert.equal(recordTypeNumber(name), n);
  }
});

void test('isStandaloneType holds only for auditd DAEMON_* records', () => {
  for (const n of [1200, 1201, 1203, 1205, 1299]) assert.equal(isStandaloneType(n), true, String(n));
  // Each of these was seen sharing its serial with other records, or can (see isStandaloneType).
  const shared = [
    1005, 1006, 1020, 1100, 1130, 1199, 1300, 1305, 1320, 1327, 1400, 1406, 1700, 1800, 2000, 2100,
  ];
  for (const n of [...shared, 1099, 2999, 3000]) assert.equal(isStandaloneType(n), false, String(n));
});

void test('isUserMessageType covers AUDIT_USER and both user message ranges', () => {
  for (const n of [1005, 1100, 1130, 1199, 2100, 2500, 2999])
    assert.equal(isUserMessageType(n), true, String(n));
  for (const n of [1004, 1006, 1099, 1200, 1300, 2000, 2099, 3000]) {
    assert.equal(isUserMessageType(n), false, String(n));
  }
});
