import { archName } from '../interpret/arch.js';
import { cloneFlags } from '../interpret/clone-flags.js';
import { interpretExit } from '../interpret/errno.js';
import { decodeHexString, decodeProctitle, isHexEncoded, unquote } from '../interpret/hex.js';
import { ID_FIELDS, interpretId } from '../interpret/ids.js';
import { syscallName } from '../interpret/syscalls.js';
import { splitFields } from '../parse/fields.js';
import type { AuditRecord } from '../parse/record.js';

const SYSCALL = 1300;
const EXECVE = 1309;
const PROCTITLE = 1327;

/**
 * Fields whose value auditd writes hex-encoded when it holds characters that
 * could confuse a log reader (spaces, quotes, control bytes). From auparse's
 * list of escaped field types.
 */
const ENCODED_FIELDS = new Set([
  'comm', 'exe', 'cwd', 'name', 'path', 'file', 'watch', 'cmd', 'acct', 'dir', 'key', 'data', 'vm',
  'old-chardev', 'new-chardev', 'old-disk', 'new-disk', 'old-fs', 'new-fs', 'old-net', 'new-net',
  'device', 'cgroup', 'ocomm', 'grp', 'new_group', 'root_dir', 'sw', 'unit', 'fp',
]); // prettier-ignore

/** User and group names supplied from outside the log (`--resolve-ids`). */
export interface IdNames {
  user(id: number): string | undefined;
  group(id: number): string | undefined;
}

const GROUP_FIELDS = new Set([
  'gid',
  'egid',
  'sgid',
  'fsgid',
  'ogid',
  'obj_gid',
  'igid',
  'new_gid',
  'old_gid',
]);

/** A record's interpretations: readable values for the fields that have one. */
export interface Interpretation {
  /** Field name to interpreted value, for fields whose meaning differs from the raw text. */
  readonly fields: Record<string, string> | null;
  /** The argument vector of EXECVE and PROCTITLE records, decoded. */
  readonly argv: string[] | null;
}

/** Parses the enriched part (`ARCH=x86_64 UID="root" ...`) into lower-case field names. */
function enrichedMap(enriched: string): Map<string, string> {
  const names: string[] = [];
  const values: string[] = [];
  splitFields(enriched, names, values);
  const out = new Map<string, string>();
  for (let i = 0; i < names.length; i++) {
    out.set(names[i]!.toLowerCase(), unquote(values[i]!));
  }
  return out;
}

function execveArgv(record: AuditRecord): string[] {
  const { names, values } = record;
  const argv: string[] = [];
  // Arguments arrive as aN=value, or split as aN_len=L aN[0]=... aN[1]=...
  let split = -1;
  let parts: string[] = [];
  const flush = (): void => {
    if (split >= 0) argv[split] = parts.map((p) => decodeArg(p)).join('');
    split = -1;
    parts = [];
  };
  for (let i = 0; i < names.length; i++) {
    const n = names[i]!;
    if (n.charCodeAt(0) !== 0x61 /* a */) continue;
    const br = n.indexOf('[');
    if (br > 0) {
      const idx = Number(n.slice(1, br));
      if (idx !== split) flush();
      split = idx;
      parts.push(values[i]!);
      continue;
    }
    if (n.endsWith('_len')) continue;
    const idx = Number(n.slice(1));
    if (!Number.isInteger(idx)) continue;
    flush();
    argv[idx] = decodeArg(values[i]!);
  }
  flush();
  // Holes (a missing record of a split argument) become empty strings, never undefined.
  for (let i = 0; i < argv.length; i++) if (argv[i] === undefined) argv[i] = '';
  return argv;
}

function decodeArg(raw: string): string {
  if (raw.charCodeAt(0) === 0x22) return unquote(raw);
  if (isHexEncoded(raw)) return decodeHexString(raw);
  return raw;
}

/**
 * Interprets a record's fields. Names for uids and gids come only from the
 * record's enriched part, or from `ids` when the caller asked for them: a
 * replay never consults this machine's user database on its own.
 */
export function interpretRecord(record: AuditRecord, ids: IdNames | null = null): Interpretation {
  const { names, values, type } = record;
  let out: Record<string, string> | null = null;
  const set = (name: string, value: string): void => {
    out ??= {};
    if (out[name] === undefined) out[name] = value;
  };
  const enriched = record.enriched === null ? null : enrichedMap(record.enriched);
  let arch: string | undefined;
  let sysName: string | undefined;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const raw = values[i]!;
    const fromEnriched = enriched?.get(name);
    if (fromEnriched !== undefined && fromEnriched !== raw) {
      set(name, fromEnriched);
      if (name === 'syscall') sysName = fromEnriched;
      continue;
    }
    if (name === 'arch') {
      arch = raw;
      const a = archName(raw);
      if (a !== undefined) set(name, a);
    } else if (name === 'syscall' && type === SYSCALL) {
      const nr = Number(raw);
      sysName = arch === undefined ? undefined : syscallName(arch, nr);
      if (sysName !== undefined) set(name, sysName);
    } else if (name === 'exit' && type === SYSCALL && raw.charCodeAt(0) === 0x2d /* - */) {
      const e = interpretExit(raw);
      if (e !== undefined) set(name, e);
    } else if (name === 'a0' && type === SYSCALL && sysName === 'clone') {
      set(name, cloneFlags(raw));
    } else if (ID_FIELDS.has(name)) {
      const u = interpretId(raw);
      if (u !== undefined) {
        set(name, u);
      } else if (ids !== null) {
        const id = Number(raw);
        const n = GROUP_FIELDS.has(name) ? ids.group(id) : ids.user(id);
        if (n !== undefined) set(name, n);
      }
    } else if (name === 'ses' && raw === '4294967295') {
      set(name, 'unset');
    } else if (ENCODED_FIELDS.has(name) && isHexEncoded(raw)) {
      // Several keys are joined with \x01 in one hex value.
      set(name, name === 'key' ? decodeHexString(raw).split('\x01').join(',') : decodeHexString(raw));
    }
  }
  let argv: string[] | null = null;
  if (type === EXECVE) {
    argv = execveArgv(record);
  } else if (type === PROCTITLE) {
    const i = names.indexOf('proctitle');
    if (i >= 0) {
      const raw = values[i]!;
      argv = isHexEncoded(raw) ? decodeProctitle(raw) : [decodeArg(raw)];
    }
  }
  return { fields: out, argv };
}
