/**
 * User and group ID fields.
 *
 * Turning an ID into a name needs a passwd/group database, which the enriched part of a record
 * (`UID="root"`) provides; that happens elsewhere. What is decided here is which fields hold IDs
 * and the one value every reader must agree on: the unset ID.
 */

/**
 * The field names auparse reads as user IDs, from audit-userspace `auparse/typetab.h`
 * (AUPARSE_TYPE_UID), checked against auparse 3.0.9.
 */
export const UID_FIELDS: ReadonlySet<string> = new Set([
  'auid',
  'uid',
  'euid',
  'suid',
  'fsuid',
  'ouid',
  'oauid',
  'old-auid',
  'iuid',
  'id',
  'inode_uid',
  'sauid',
  'obj_uid',
]);

/**
 * The field names auparse reads as group IDs, from audit-userspace `auparse/typetab.h`
 * (AUPARSE_TYPE_GID), checked against auparse 3.0.9.
 */
export const GID_FIELDS: ReadonlySet<string> = new Set([
  'obj_gid',
  'gid',
  'egid',
  'sgid',
  'fsgid',
  'ogid',
  'igid',
  'inode_gid',
  'new_gid',
]);

/** Every field auparse reads as a user or group ID: UID_FIELDS and GID_FIELDS together. */
export const ID_FIELDS: ReadonlySet<string> = new Set([...UID_FIELDS, ...GID_FIELDS]);

/**
 * `unset` for the unset ID, written `4294967295` ((uid_t)-1) or `-1`; undefined for every other
 * value, whose name comes from the enriched part or the caller's user database.
 *
 * Only for the fields in ID_FIELDS: auparse reads `ses=4294967295` as `unset` too but leaves
 * `ses=-1` as it is. auparse also reads a non-numeric ID such as `auid=?` as 0 (`root`); this does
 * not.
 */
export function interpretId(raw: string): string | undefined {
  return raw === '4294967295' || raw === '-1' ? 'unset' : undefined;
}
