/**
 * Text bodies of the CONTAINER_OP and CONTAINER_ID records, in the kernel
 * series' (v11) format, with the caller fields of v7 added after them.
 */
import type { ContidErrno } from './errno.js';

/** An operation on a container ID. */
export type OpName = 'set' | 'grant' | 'adopt' | 'drop';

/** Who asked for an operation (for drop: the process whose exit dropped the ID). */
export interface OpCaller {
  readonly pid: number;
  /** Numeric ids, or null when unknown (then printed as `?`). */
  readonly uid: number | null;
  readonly auid: number | null;
  /** The executable path, or null when unknown. */
  readonly exe: string | null;
}

/** The facts of one CONTAINER_OP record. */
export interface ContainerOpFields {
  readonly op: OpName;
  /** The target process (host pid). */
  readonly opid: number;
  /** The value asked for (`-1` for unset, `?` when not a u64), or the target's chain for grant. */
  readonly contid: string;
  /** The target's chain before the operation, or `-1`. */
  readonly oldContid: string;
  readonly caller: OpCaller;
  /** Null when accepted. */
  readonly errno: ContidErrno | null;
  /** The container's name a set gave (its marker's `name=`). */
  readonly name?: string;
  /** The container's metadata a set gave, in its order (keys are `[A-Za-z0-9._/-]`). */
  readonly meta?: Readonly<Record<string, string>>;
}

/**
 * `op=set opid=8730 contid=4 old-contid=-1 pid=8724 uid=0 auid=4294967295 exe="/usr/bin/runc" res=1`;
 * a refused attempt ends `res=0 errno=EBUSY`. A set that described the
 * container has, between the caller and the result, `name=` and one
 * `meta.KEY=` per entry, each value written as the kernel writes untrusted
 * strings (quoted, or hex), so the result stays last.
 */
export function renderContainerOp(f: ContainerOpFields): string {
  const c = f.caller;
  const head = `op=${f.op} opid=${f.opid} contid=${f.contid} old-contid=${f.oldContid}`;
  let who = `pid=${c.pid} uid=${num(c.uid)} auid=${num(c.auid)} exe=${c.exe === null ? '?' : renderUntrusted(c.exe)}`;
  if (f.name !== undefined) who += ` name=${renderUntrusted(f.name)}`;
  for (const [key, value] of Object.entries(f.meta ?? {})) who += ` meta.${key}=${renderUntrusted(value)}`;
  return f.errno === null ? `${head} ${who} res=1` : `${head} ${who} res=0 errno=${f.errno}`;
}

/** `record=1 contid=4,^2,^1`. */
export function renderContainerId(record: number, chain: string): string {
  return `record=${record} contid=${chain}`;
}

function num(n: number | null): string {
  return n === null ? '?' : String(n);
}

/**
 * A string as the kernel's `audit_log_untrustedstring` writes it: quoted
 * when every byte is printable and not `"`, otherwise upper-case hex of its
 * UTF-8 bytes, so a crafted name cannot inject fields.
 */
export function renderUntrusted(value: string): string {
  const bytes = Buffer.from(value, 'utf8');
  for (const b of bytes) {
    if (b < 0x21 || b > 0x7e || b === 0x22) return bytes.toString('hex').toUpperCase();
  }
  return `"${value}"`;
}
