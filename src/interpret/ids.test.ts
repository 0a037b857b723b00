import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GID_FIELDS, ID_FIELDS, interpretId, UID_FIELDS } from './ids.js';

void test('interpretId reads the unset ID in both spellings and nothing else', () => {
  const cases: readonly (readonly [string, string | undefined])[] = [
    ['4294967295', 'unset'],
    ['-1', 'unset'],
    ['0', undefined],
    ['1000', undefined],
    ['4294967294', undefined],
    ['?', undefined],
    ['', undefined],
    ['"4294967295"', undefined],
  ];
  for (const [raw, expected] of cases) assert.equal(interpretId(raw), expected, raw);
});

void test('ID_FIELDS are the fields auparse 3.0.9 reads as uid or gid', () => {
  // Checked by feeding each name with value 0 to auparse: these came back as `root`.
  const uids = ['auid', 'uid', 'euid', 'suid', 'fsuid', 'ouid', 'oauid', 'old-auid', 'iuid', 'id'];
  const moreUids = ['inode_uid', 'sauid', 'obj_uid'];
  const gids = ['obj_gid', 'gid', 'egid', 'sgid', 'fsgid', 'ogid', 'igid', 'inode_gid', 'new_gid'];
  assert.deepEqual([...UID_FIELDS].sort(), [...uids, ...moreUids].sort());
  assert.deepEqual([...GID_FIELDS].sort(), [...gids].sort());
  assert.deepEqual([...ID_FIELDS].sort(), [...uids, ...moreUids, ...gids].sort());
});

void test('ID_FIELDS leaves out look-alike fields auparse does not read as ids', () => {
  // auparse 3.0.9 printed these with value 0 as `0`.
  for (const name of ['ses', 'pid', 'ppid', 'new-uid', 'new_uid', 'old_auid', 'old-uid', 'agid', 'old_gid']) {
    assert.equal(ID_FIELDS.has(name), false, name);
  }
});
