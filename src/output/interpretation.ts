import { archName } from '../interpret/arch.js';
import { cloneFlags } from '../interpret/clone-flags.js';
import { interpretExit } from '../interpret/errno.js';
import {
  decodeHexString,
  decodeProctitle,
  decodeUntrustedString,
  isHexEncoded,
  unquote,
} from '../interpret/hex.js';
import { GID_FIELDS, ID_FIELDS, interpretId } from '../interpret/ids.js';
import { syscallName } from '../interpret/syscalls.js';
import { splitFields } from '../parse/fields.js';
import type { AuditRecord } from '../parse/record.js';
import { RecordType } from '../interpret/record-types-generated.js';

const SYSCALL = RecordType.SYSCALL;
const EXECVE = RecordType.EXECVE;
const PROCTITLE = RecordType.PROCTITLE;

/**
 * Fields whose value auditd writes hex-encoded when it holds characters that
 * could confuse a log reader (spaces, quotes, control bytes). From auparse's
 * list of escaped field types.
 */
export const ENCODED_FIELDS: ReadonlySet<string> = new Set([
  'comm', 'exe', 'cwd', 'name', 'path', 'file', 'watch', 'cmd', 'acct', 'dir', 'key', 'data', 'vm',
  'old-chardev', 'new-chardev', 'old-disk', 'new-disk', 'old-fs', 'new-fs', 'old-net', 'new-net',
  'device', 'cgroup', 'ocomm', 'grp', 'new_group', 'root_dir', 'sw', 'unit', 'fp',
]); // prettier-ignore

/** User and group names supplied from outside the log (`--resolve-ids`). */
export interface IdNames {
  user(id: number): string | undefined;
  group(id: number): string | undefined;
}

/** How a field is interpreted, decided once per field name. */
export enum FieldKind {
  None,
  Arch,
  Syscall,
  Exit,
  A0,
  Uid,
  Gid,
  Ses,
  Encoded,
}

/** The interpretation kind of a field name. */
export function fieldKind(name: string): FieldKind {
  switch (name) {
    case 'arch':
      return FieldKind.Arch;
    case 'syscall':
      return FieldKind.Syscall;
    case 'exit':
      return FieldKind.Exit;
    case 'a0':
      return FieldKind.A0;
    case 'ses':
      return FieldKind.Ses;
  }
  if (ID_FIELDS.has(name)) return GID_FIELDS.has(name) ? FieldKind.Gid : FieldKind.Uid;
  if (ENCODED_FIELDS.has(name)) return FieldKind.Encoded;
  return FieldKind.None;
}

/** What earlier fields of the same record tell about later ones (arch before syscall, syscall before a0). */
export interface RecordContext {
  type: number;
  arch: string | undefined;
  syscall: string | undefined;
}

/**
 * Interprets one raw value, or returns undefined when it has no
 * interpretation. Updates `ctx` as arch and syscall go by.
 */
export function interpretValue(
  kind: FieldKind,
  name: string,
  raw: string,
  ctx: RecordContext,
  ids: IdNames | null,
): string | undefined {
  switch (kind) {
    case FieldKind.None:
      return undefined;
    case FieldKind.Arch:
      ctx.arch = raw;
      return archName(raw);
    case FieldKind.Syscall:
      if (ctx.type !== SYSCALL || ctx.arch === undefined) return undefined;
      ctx.syscall = syscallName(ctx.arch, Number(raw));
      return ctx.syscall;
    case FieldKind.Exit:
      return ctx.type === SYSCALL && raw.charCodeAt(0) === 0x2d /* - */ ? interpretExit(raw) : undefined;
    case FieldKind.A0:
      return ctx.type === SYSCALL && ctx.syscall === 'clone' ? cloneFlags(raw) : undefined;
    case FieldKind.Uid:
    case FieldKind.Gid: {
      const u = interpretId(raw);
      if (u !== undefined || ids === null) return u;
      return kind === FieldKind.Gid ? ids.group(Number(raw)) : ids.user(Number(raw));
    }
    case FieldKind.Ses:
      return raw === '4294967295' ? 'unset' : undefined;
    case FieldKind.Encoded:
      if (!isHexEncoded(raw)) return undefined;
      // Several keys are joined with \x01 in one hex value.
      return name === 'key' ? decodeHexString(raw).split('\x01').join(',') : decodeHexString(raw);
  }
}

/** Calls `cb` with each field of the enriched part, name lower-cased, value unquoted. */
export function forEachEnriched(enriched: string, cb: (name: string, value: string) => void): void {
  const names: string[] = [];
  const values: string[] = [];
  splitFields(enriched, names, values);
  for (let i = 0; i < names.length; i++) cb(names[i]!.toLowerCase(), unquote(values[i]!));
}

function execveArgv(record: AuditRecord): string[] {
  const { names, values } = record;
  const argv: string[] = [];
  // Arguments arrive as aN=value, or split as aN_len=L aN[0]=... aN[1]=...
  let split = -1;
  let parts: string[] = [];
  const flush = (): void => {
    if (split >= 0) argv[split] = parts.map((p) => decodeUntrustedString(p)).join('');
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
    if (!Number.isInteger(idx) || idx < 0 || idx > 1 << 20) continue;
    flush();
    argv[idx] = decodeUntrustedString(values[i]!);
  }
  flush();
  // Holes (a missing record of a split argument) become empty strings, never undefined.
  for (let i = 0; i < argv.length; i++) if (argv[i] === undefined) argv[i] = '';
  return argv;
}

/** The argument vector of an EXECVE or PROCTITLE record, decoded; null for other types. */
export function recordArgv(record: AuditRecord): string[] | null {
  if (record.type === EXECVE) return execveArgv(record);
  if (record.type !== PROCTITLE) return null;
  const i = record.names.indexOf('proctitle');
  if (i < 0) return null;
  const raw = record.values[i]!;
  return isHexEncoded(raw) ? decodeProctitle(raw) : [decodeUntrustedString(raw)];
}

/** A record's interpretations: readable values for the fields that have one. */
export interface Interpretation {
  /** Field name to interpreted value, for fields whose meaning differs from the raw text. */
  readonly fields: Record<string, string> | null;
  /** The argument vector of EXECVE and PROCTITLE records, decoded. */
  readonly argv: string[] | null;
}

/**
 * Interprets a record's fields. Values in the record's enriched part win;
 * names for uids and gids come only from there, or from `ids` when the
 * caller asked for them: a replay never consults this machine's user
 * database on its own. (The JSON writer does the same in one pass over the
 * text; this form is for library callers.)
 */
export function interpretRecord(record: AuditRecord, ids: IdNames | null = null): Interpretation {
  let out: Record<string, string> | null = null;
  if (record.enriched !== null) {
    forEachEnriched(record.enriched, (n, v) => {
      out ??= {};
      out[n] ??= v;
    });
  }
  const ctx: RecordContext = { type: record.type, arch: undefined, syscall: undefined };
  const { names, values } = record;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const v = interpretValue(fieldKind(name), name, values[i]!, ctx, ids);
    if (v !== undefined) {
      out ??= {};
      out[name] ??= v;
    }
  }
  return { fields: out, argv: recordArgv(record) };
}
