/**
 * Audit filter rules: the model, its `struct audit_rule_data` codec, and
 * the auditctl text form.
 *
 * Layout (linux/audit.h), all u32 little-endian: flags (filter list, plus
 * AUDIT_FILTER_PREPEND), action, field_count, mask[64] (syscall bitmap),
 * fields[64], values[64], fieldflags[64] (the operator of each field),
 * buflen, then buf: the string values back to back, without NULs, each
 * field's value holding its string's length.
 *
 * The codec round-trips: decoding what the kernel lists and encoding it
 * again gives the bytes the kernel compares on AUDIT_DEL_RULE, so any
 * listed rule can be deleted. To keep that true, `arch` is lifted to the
 * top level only when it is the first field and `key` only when it is the
 * last; anywhere else they stay ordinary fields.
 */
import { ContidRangeError } from '../errors.js';
import { SyscallError, errnoName, Errno } from './libc.js';
import { AUDIT_ARCH, syscallName, type AuditArch } from './syscalls.js';

/** The filter list a rule belongs to, as auditctl names it. */
export type RuleList = 'user' | 'task' | 'exit' | 'exclude' | 'filesystem' | 'io_uring';
/** What a matching rule does. */
export type RuleAction = 'never' | 'always';
/** A field operator. `&` tests any bit of the mask, `&=` all of them. */
export type RuleOp = '=' | '!=' | '<' | '>' | '<=' | '>=' | '&' | '&=';

/** Field ids of linux/audit.h under their auditctl names. */
const FIELD_IDS = {
  pid: 0,
  uid: 1,
  euid: 2,
  suid: 3,
  fsuid: 4,
  gid: 5,
  egid: 6,
  sgid: 7,
  fsgid: 8,
  auid: 9,
  pers: 10,
  arch: 11,
  msgtype: 12,
  subj_user: 13,
  subj_role: 14,
  subj_type: 15,
  subj_sen: 16,
  subj_clr: 17,
  ppid: 18,
  obj_user: 19,
  obj_role: 20,
  obj_type: 21,
  obj_lev_low: 22,
  obj_lev_high: 23,
  loginuid_set: 24,
  sessionid: 25,
  fstype: 26,
  devmajor: 100,
  devminor: 101,
  inode: 102,
  exit: 103,
  success: 104,
  path: 105,
  perm: 106,
  dir: 107,
  filetype: 108,
  obj_uid: 109,
  obj_gid: 110,
  field_compare: 111,
  exe: 112,
  saddr_fam: 113,
  a0: 200,
  a1: 201,
  a2: 202,
  a3: 203,
  key: 210,
} as const;

/** A rule field, by its auditctl name (`auid` is AUDIT_LOGINUID). */
export type RuleFieldName = keyof typeof FIELD_IDS;

/**
 * One `-F name<op>value` condition. String fields (path, dir, exe, key,
 * subj_*, obj_user…obj_lev_high) take a string; all others a number, stored
 * as a u32 (so -1 is 4294967295; `exit` is read back signed).
 */
export interface RuleField {
  readonly name: RuleFieldName;
  readonly op: RuleOp;
  readonly value: number | string;
}

/**
 * An audit rule, e.g. `-a always,exit -F arch=b64 -S execve -F auid=4242 -k contid`:
 * `{ list: 'exit', action: 'always', arch: 'b64', syscalls: [59], fields: [{ name: 'auid', op: '=', value: 4242 }], key: 'contid' }`.
 */
export interface AuditRule {
  readonly list: RuleList;
  readonly action: RuleAction;
  /** `-A`: the rule goes to the front of its list. */
  readonly prepend?: boolean;
  /** `-F arch=…`, always encoded as the first field. */
  readonly arch?: AuditArch;
  /**
   * Syscall numbers of `arch` (x86_64 when absent), below 2032, or 'all'
   * (the default, as in auditctl, which also sets every bit for the lists
   * that ignore syscalls).
   */
  readonly syscalls?: readonly number[] | 'all';
  readonly fields?: readonly RuleField[];
  /** `-k`, always encoded as the last field. Several keys are joined by `\x01`. */
  readonly key?: string;
}

const LIST_IDS: Readonly<Record<RuleList, number>> = {
  user: 0,
  task: 1,
  exit: 4,
  exclude: 5,
  filesystem: 6,
  io_uring: 7,
};
const ACTION_IDS: Readonly<Record<RuleAction, number>> = { never: 0, always: 2 };
const OP_IDS: Readonly<Record<RuleOp, number>> = {
  '=': 0x40000000,
  '!=': 0x30000000,
  '<': 0x10000000,
  '>': 0x20000000,
  '<=': 0x50000000,
  '>=': 0x60000000,
  '&': 0x08000000,
  '&=': 0x48000000,
};
const AUDIT_FILTER_PREPEND = 0x10;

const STRING_FIELDS: ReadonlySet<RuleFieldName> = new Set([
  'subj_user',
  'subj_role',
  'subj_type',
  'subj_sen',
  'subj_clr',
  'obj_user',
  'obj_role',
  'obj_type',
  'obj_lev_low',
  'obj_lev_high',
  'path',
  'dir',
  'exe',
  'key',
]);
/** Fields whose all-ones value means "unset", printed by auditctl as -1. */
const ID_FIELDS: ReadonlySet<RuleFieldName> = new Set([
  'uid',
  'euid',
  'suid',
  'fsuid',
  'gid',
  'egid',
  'sgid',
  'fsgid',
  'auid',
  'obj_uid',
  'obj_gid',
  'sessionid',
]);

const MAX_FIELDS = 64;
const MASK_WORDS = 64;
/** The top 16 mask bits select syscall classes (AUDIT_SYSCALL_CLASSES), not syscalls. */
const MAX_SYSCALL = MASK_WORDS * 32 - 16 - 1;
const HEADER_BYTES = 12 + 4 * MASK_WORDS + 3 * 4 * MAX_FIELDS + 4;
const OFFSET_MASK = 12;
const OFFSET_FIELDS = OFFSET_MASK + 4 * MASK_WORDS;
const OFFSET_VALUES = OFFSET_FIELDS + 4 * MAX_FIELDS;
const OFFSET_FLAGS = OFFSET_VALUES + 4 * MAX_FIELDS;
const OFFSET_BUFLEN = OFFSET_FLAGS + 4 * MAX_FIELDS;

// Maps, not object lookups: names may come from a config file, and "constructor" is no field.
const byName = (table: Readonly<Record<string, number>>): ReadonlyMap<string, number> =>
  new Map(Object.entries(table));
const FIELD_ID = byName(FIELD_IDS);
const LIST_ID = byName(LIST_IDS);
const ACTION_ID = byName(ACTION_IDS);
const OP_ID = byName(OP_IDS);
const byId = <K extends string>(table: Readonly<Record<K, number>>): ReadonlyMap<number, K> =>
  new Map(Object.entries<number>(table).map(([name, id]) => [id, name as K]));
const FIELD_NAMES = byId<RuleFieldName>(FIELD_IDS);
const LIST_NAMES = byId(LIST_IDS);
const ACTION_NAMES = byId(ACTION_IDS);
const OP_NAMES = byId(OP_IDS);
const ARCH_NAMES = byId(AUDIT_ARCH);

function invalid(rule: string, reason: string): ContidRangeError {
  return new ContidRangeError(`Cannot encode audit rule ${rule}: ${reason}`, 'ERR_OUT_OF_RANGE');
}

/** All fields in encoding order: arch first, then `fields`, then key. */
function allFields(rule: AuditRule): RuleField[] {
  const fields: RuleField[] = [];
  if (rule.arch !== undefined) fields.push({ name: 'arch', op: '=', value: AUDIT_ARCH[rule.arch] });
  fields.push(...(rule.fields ?? []));
  if (rule.key !== undefined) fields.push({ name: 'key', op: '=', value: rule.key });
  return fields;
}

/**
 * Encodes a rule as `struct audit_rule_data`.
 *
 * @throws {RangeError} for an unknown list, action, field or operator, a
 *   value of the wrong kind, too many fields or a syscall out of range.
 */
export function encodeRule(rule: AuditRule): Buffer {
  const list = LIST_ID.get(rule.list);
  const action = ACTION_ID.get(rule.action);
  const label = JSON.stringify(rule.key ?? rule.list);
  if (list === undefined) throw invalid(label, `unknown list ${JSON.stringify(rule.list)}`);
  if (action === undefined) throw invalid(label, `unknown action ${JSON.stringify(rule.action)}`);
  const fields = allFields(rule);
  if (fields.length > MAX_FIELDS) throw invalid(label, `${fields.length} fields exceed ${MAX_FIELDS}`);

  const strings: Buffer[] = [];
  const head = Buffer.alloc(HEADER_BYTES);
  head.writeUInt32LE(list | (rule.prepend === true ? AUDIT_FILTER_PREPEND : 0), 0);
  head.writeUInt32LE(action, 4);
  head.writeUInt32LE(fields.length, 8);
  encodeMask(head, rule, label);
  fields.forEach((field, i) => {
    const id = FIELD_ID.get(field.name);
    const op = OP_ID.get(field.op);
    if (id === undefined) throw invalid(label, `unknown field ${JSON.stringify(field.name)}`);
    if (op === undefined) throw invalid(label, `unknown operator ${JSON.stringify(field.op)}`);
    let value: number;
    if (STRING_FIELDS.has(field.name)) {
      if (typeof field.value !== 'string' || field.value === '') {
        throw invalid(label, `field ${field.name} needs a non-empty string`);
      }
      const bytes = Buffer.from(field.value, 'utf8');
      strings.push(bytes);
      value = bytes.length;
    } else {
      if (typeof field.value !== 'number' || !Number.isInteger(field.value)) {
        throw invalid(label, `field ${field.name} needs an integer`);
      }
      if (field.value < -0x80000000 || field.value > 0xffffffff) {
        throw invalid(label, `value ${field.value} of field ${field.name} does not fit 32 bits`);
      }
      value = field.value >>> 0;
    }
    head.writeUInt32LE(id, OFFSET_FIELDS + 4 * i);
    head.writeUInt32LE(value, OFFSET_VALUES + 4 * i);
    head.writeUInt32LE(op, OFFSET_FLAGS + 4 * i);
  });
  const buf = Buffer.concat(strings);
  head.writeUInt32LE(buf.length, OFFSET_BUFLEN);
  return Buffer.concat([head, buf]);
}

function encodeMask(head: Buffer, rule: AuditRule, label: string): void {
  const syscalls = rule.syscalls ?? 'all';
  if (syscalls === 'all') {
    for (let word = 0; word < MASK_WORDS; word++) head.writeUInt32LE(0xffffffff, OFFSET_MASK + 4 * word);
    return;
  }
  for (const nr of syscalls) {
    if (!Number.isInteger(nr) || nr < 0 || nr > MAX_SYSCALL) {
      throw invalid(label, `syscall ${nr} is not in 0..${MAX_SYSCALL}`);
    }
    const offset = OFFSET_MASK + 4 * (nr >>> 5);
    head.writeUInt32LE((head.readUInt32LE(offset) | (1 << (nr & 31))) >>> 0, offset);
  }
}

/**
 * Decodes `struct audit_rule_data` as the kernel lists it.
 *
 * @throws {SyscallError} EPROTO for a truncated structure or an id this
 *   module does not know (a newer kernel's list, field or operator).
 */
export function decodeRule(data: Buffer): AuditRule {
  const fail = (reason: string): SyscallError =>
    new SyscallError('Cannot decode an audit rule from the kernel', Errno.EPROTO, { reason });
  if (data.length < HEADER_BYTES) {
    throw fail(`${data.length} bytes is shorter than the ${HEADER_BYTES}-byte header`);
  }
  const flags = data.readUInt32LE(0);
  const list = LIST_NAMES.get(flags & ~AUDIT_FILTER_PREPEND);
  const action = ACTION_NAMES.get(data.readUInt32LE(4));
  const count = data.readUInt32LE(8);
  const buflen = data.readUInt32LE(OFFSET_BUFLEN);
  if (list === undefined) throw fail(`unknown filter list ${flags}`);
  if (action === undefined) throw fail(`unknown action ${data.readUInt32LE(4)}`);
  if (count > MAX_FIELDS || HEADER_BYTES + buflen > data.length) {
    throw fail('field count or buffer out of range');
  }

  const fields: RuleField[] = [];
  let stringOffset = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const id = data.readUInt32LE(OFFSET_FIELDS + 4 * i);
    const raw = data.readUInt32LE(OFFSET_VALUES + 4 * i);
    const name = FIELD_NAMES.get(id);
    const op = OP_NAMES.get(data.readUInt32LE(OFFSET_FLAGS + 4 * i));
    if (name === undefined) throw fail(`unknown field ${id}`);
    if (op === undefined) {
      throw fail(`unknown operator ${data.readUInt32LE(OFFSET_FLAGS + 4 * i)} of field ${name}`);
    }
    let value: number | string;
    if (STRING_FIELDS.has(name)) {
      if (stringOffset + raw > HEADER_BYTES + buflen) {
        throw fail(`string of field ${name} overruns the buffer`);
      }
      value = data.toString('utf8', stringOffset, stringOffset + raw);
      stringOffset += raw;
    } else {
      value = name === 'exit' ? raw | 0 : raw;
    }
    fields.push({ name, op, value });
  }

  const rule: { -readonly [K in keyof AuditRule]: AuditRule[K] } = { list, action };
  if ((flags & AUDIT_FILTER_PREPEND) !== 0) rule.prepend = true;
  const first = fields[0];
  const arch = first?.name === 'arch' && first.op === '=' ? ARCH_NAMES.get(first.value as number) : undefined;
  if (arch !== undefined) {
    rule.arch = arch;
    fields.shift();
  }
  rule.syscalls = decodeMask(data);
  const last = fields.at(-1);
  const key = last?.name === 'key' && last.op === '=' ? last.value : undefined;
  if (typeof key === 'string') fields.pop();
  rule.fields = fields;
  if (typeof key === 'string') rule.key = key;
  return rule;
}

function decodeMask(data: Buffer): readonly number[] | 'all' {
  // Like auditctl: 'all' when every syscall word is full; the kernel
  // rewrites the last word, whose top bits are syscall classes.
  let all = true;
  for (let word = 0; word < MASK_WORDS - 1 && all; word++) {
    all = data.readUInt32LE(OFFSET_MASK + 4 * word) === 0xffffffff;
  }
  if (all) return 'all';
  const syscalls: number[] = [];
  for (let word = 0; word < MASK_WORDS; word++) {
    const bits = data.readUInt32LE(OFFSET_MASK + 4 * word);
    for (let bit = 0; bits !== 0 && bit < 32; bit++) {
      if ((bits & (1 << bit)) !== 0) syscalls.push(word * 32 + bit);
    }
  }
  return syscalls;
}

/**
 * The form the kernel will list `rule` in: syscalls sorted, defaults made
 * explicit, `-1` as 4294967295. Compare listed rules with this.
 */
export function normalizeRule(rule: AuditRule): AuditRule {
  return decodeRule(encodeRule(rule));
}

/**
 * Formats a rule as `auditctl -l` prints it:
 * `-a always,exit -F arch=b64 -S execve -F auid=4242 -F key=contid`.
 *
 * Differences: msgtype is printed as a number where auditctl prints known
 * type names, and field_compare as its raw number.
 */
export function formatRule(rule: AuditRule): string {
  const fields = allFields(rule);
  const parts = [rule.prepend === true ? '-A' : '-a', `${rule.action},${rule.list}`];
  // auditctl prints the first arch field up front, followed by -S.
  const archIndex = fields.findIndex((f) => f.name === 'arch' && f.op === '=');
  const archField = fields[archIndex];
  if (archField !== undefined) parts.push(`-F ${formatField(archField)}`);
  const arch = archField === undefined ? undefined : ARCH_NAMES.get(archField.value as number);
  const syscalls = rule.syscalls ?? 'all';
  if (rule.list === 'exit' || rule.list === 'io_uring') {
    const sorted = syscalls === 'all' ? 'all' : [...new Set(syscalls)].sort((a, b) => a - b);
    const names =
      sorted === 'all' ? 'all' : sorted.map((nr) => syscallName(arch ?? 'b64', nr) ?? String(nr)).join(',');
    parts.push(`-S ${names}`);
  }
  fields.forEach((field, i) => {
    if (i === archIndex) return;
    if (field.name === 'key' && typeof field.value === 'string') {
      for (const key of field.value.split('\x01')) parts.push(`-F key${field.op}${key}`);
    } else {
      parts.push(`-F ${formatField(field)}`);
    }
  });
  return parts.join(' ');
}

/** AUDIT_PERM_* bits in the order auditctl prints them. */
const PERM_LETTERS: readonly (readonly [number, string])[] = [
  [4, 'r'],
  [2, 'w'],
  [1, 'x'],
  [8, 'a'],
];

function formatField(field: RuleField): string {
  return `${field.name}${field.op}${formatValue(field)}`;
}

function formatValue({ name, op, value }: RuleField): string {
  if (typeof value === 'string') return value;
  const u32 = value >>> 0;
  if (name === 'arch') return ARCH_NAMES.get(u32) ?? `0x${u32.toString(16)}`;
  if (ID_FIELDS.has(name) && u32 === 0xffffffff) return '-1';
  if (name === 'a0' || name === 'a1' || name === 'a2' || name === 'a3') {
    return `0x${u32.toString(16).toUpperCase()}`;
  }
  if (name === 'perm') {
    return PERM_LETTERS.filter(([bit]) => (u32 & bit) !== 0)
      .map(([, letter]) => letter)
      .join('');
  }
  if (name === 'exit') {
    const signed = u32 | 0;
    if (signed < 0 && op !== '&' && op !== '&=') {
      const code = errnoName(-signed);
      return code.startsWith('E') && code !== `E${-signed}` ? `-${code}` : String(signed);
    }
    return String(signed);
  }
  return String(u32);
}
