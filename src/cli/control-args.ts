/**
 * Arguments of the commands that talk to the daemon: `contid set`, `get`,
 * `grant`, `status`, `oci-hook`. Pure functions of argv.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_CONTROL_SOCKET } from '../control/socket-path.js';
import { MAX_META_ENTRIES, MAX_SINKS } from '../control/protocol.js';
import { parseSinkSpec, SinkSpecError } from '../route/sink-spec.js';
import { isOwnerName } from '../marker/format.js';
import { MAX_META_BYTES, MAX_NAME_BYTES, metaProblem, nameProblem } from '../marker/description.js';
import { UsageError } from './usage.js';

const EXIT_CODES = `Exit codes: 0 success, 1 refused or failed, 2 usage error,
3 the daemon is not running.`;

const SOCKET_OPTION = `      --socket PATH    The daemon's control socket (default ${DEFAULT_CONTROL_SOCKET})
      --timeout MS     Give up waiting for the daemon after MS (default 15000)`;

export const SET_HELP = `Usage: contid set PID CONTID [--name NAME] [--meta KEY=VALUE]... [options]

Give process PID (a host pid) the audit container ID CONTID, a decimal u64.
Its children inherit it; every audit event of the process then carries it.
The caller needs CAP_AUDIT_CONTROL in the initial user namespace, or a grant
(contid grant). The target must have no children and no contid yet; an
orchestrator may add more processes to an ID it created (exec, nsenter).

Options:
      --name NAME      A name for the container (1-${MAX_NAME_BYTES} bytes), written with its
                       metadata in the audit stream (the set's CONTAINER_OP
                       record), where contid ps and contid replay find it
      --meta KEY=VALUE Metadata for the container, repeatable (at most ${MAX_META_ENTRIES};
                       KEY 1-64 of [A-Za-z0-9._/-]; keys and values ${MAX_META_BYTES} bytes in all)
      --owner NAME     The ID's owner, instead of the caller's uid and executable
                       (privileged callers only): a set may join a live ID only
                       with the owner that created it. The OCI hook names
                       oci:<container id>, so to add an exec'd process to a
                       hook-labelled container: --owner oci:<container id>
      --create         Create-only: refuse (ENOTUNIQ) if the ID is live
      --sink SPEC      Copy the container's events (IDs relative to it) to this
                       sink instead of the daemon's container-sink default;
                       repeatable (at most ${MAX_SINKS}); "none" for no copies.
                       Privileged callers only; used when the set creates the
                       container. SPEC: file:PATH, unix:PATH or remote:HOST:PORT,
                       with ;root=DIR, ;netns=FILE, ;format=... (docs/routing.md)
${SOCKET_OPTION}
      --json           Print the daemon's answer as JSON
  -h, --help           Show this help

${EXIT_CODES}

Example:
  contid set 812 42 --name web --meta image=nginx:1.27
  contid set 812 42 --sink 'file:/var/log/audit/contid.log;root=/proc/{pid}/root'`;

export const GET_HELP = `Usage: contid get PID [options]

Print the audit container ID of process PID, leaf to root (4,^2,^1), or
"unset". Reading labels is privileged (CAP_AUDIT_CONTROL in the initial user
namespace).

Options:
${SOCKET_OPTION}
      --json           Print the daemon's answer as JSON
  -h, --help           Show this help

${EXIT_CODES}`;

export const GRANT_HELP = `Usage: contid grant PID [options]

Allow process PID (a nested orchestrator) to label its own descendants. The
IDs it sets record the granter's container as their parent (4,^2). Needs
CAP_AUDIT_CONTROL in the initial user namespace.

Options:
${SOCKET_OPTION}
      --json           Print the daemon's answer as JSON
  -h, --help           Show this help

${EXIT_CODES}`;

export const STATUS_HELP = `Usage: contid status [--json] [options]

Show the running daemon: source, record rates, lag behind the kernel, losses
(ENOBUFS, the kernel's lost counter, serial gaps), processes and containers
tracked, forgeries seen. Privileged, like every read.

Options:
${SOCKET_OPTION}
      --json           Print the status as JSON
  -h, --help           Show this help

${EXIT_CODES}`;

/** Options shared by every control command. */
export interface ControlCommonArgs {
  readonly help: boolean;
  readonly socket: string;
  readonly timeoutMs: number;
  readonly json: boolean;
}

export interface SetArgs extends ControlCommonArgs {
  readonly pid: number;
  readonly contid: string;
  readonly name: string | null;
  readonly meta: Readonly<Record<string, string>>;
  readonly owner: string | null;
  readonly create: boolean;
  /** --sink specs; null when not given (the daemon's default), empty for `none`. */
  readonly sinks: readonly string[] | null;
}

export interface PidArgs extends ControlCommonArgs {
  readonly pid: number;
}

const COMMON = {
  socket: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const SET_OPTIONS = {
  name: { type: 'string' },
  meta: { type: 'string', multiple: true },
  owner: { type: 'string' },
  create: { type: 'boolean' },
  sink: { type: 'string', multiple: true },
} as const;

function parse(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], allowPositionals: true, options: COMMON });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function parseSet(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], allowPositionals: true, options: { ...COMMON, ...SET_OPTIONS } });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function common(values: {
  socket?: string | undefined;
  timeout?: string | undefined;
  json?: boolean | undefined;
  help?: boolean | undefined;
}): ControlCommonArgs {
  return {
    help: values.help ?? false,
    socket: values.socket ?? DEFAULT_CONTROL_SOCKET,
    timeoutMs: positiveInt('--timeout', values.timeout, 15_000),
    json: values.json ?? false,
  };
}

/** Parses a pid argument. */
export function parsePid(raw: string | undefined): number {
  if (raw === undefined) throw new UsageError('Cannot read the arguments: PID is missing');
  if (!/^[1-9][0-9]{0,9}$/.test(raw) || Number(raw) > 0x7fffffff) {
    throw new UsageError(`Cannot use PID "${raw}": it is not a positive integer`);
  }
  return Number(raw);
}

function positiveInt(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  if (!/^[1-9][0-9]{0,8}$/.test(raw))
    throw new UsageError(`Cannot use ${flag}: "${raw}" is not a positive integer`);
  return Number(raw);
}

function positionals(list: readonly string[], names: readonly string[], help: boolean): void {
  if (help) return;
  if (list.length < names.length)
    throw new UsageError(`Cannot read the arguments: ${names[list.length]} is missing`);
  if (list.length > names.length)
    throw new UsageError(`Cannot use argument "${list[names.length]}": it is not expected`);
}

/** `contid set PID CONTID [--name N] [--meta K=V]...` */
export function parseSetArgs(argv: readonly string[]): SetArgs {
  const parsed = parseSet(argv);
  const v = parsed.values;
  const base = common(v);
  positionals(parsed.positionals, ['PID', 'CONTID'], base.help);
  const pairs = new Map<string, string>();
  for (const pair of v.meta ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`Cannot use --meta: "${pair}" is not KEY=VALUE`);
    const key = pair.slice(0, eq);
    if (pairs.has(key)) throw new UsageError(`Cannot use --meta: "${key}" given twice`);
    pairs.set(key, pair.slice(eq + 1));
  }
  // fromEntries makes own properties: a `__proto__` key stays an entry.
  const meta: Record<string, string> = Object.fromEntries(pairs);
  // The set marker carries both: refuse here what it cannot, with the reason.
  const metaBad = metaProblem(meta);
  if (metaBad !== null) throw new UsageError(`Cannot use --meta: ${metaBad}`);
  const nameBad = v.name === undefined ? null : nameProblem(v.name);
  if (nameBad !== null) throw new UsageError(`Cannot use --name: ${nameBad}`);
  const owner = v.owner ?? null;
  if (owner !== null && !isOwnerName(owner)) {
    throw new UsageError(
      `Cannot use --owner: "${owner.slice(0, 64)}" is not 1-256 printable ASCII characters without spaces`,
    );
  }
  const create = v.create ?? false;
  const sinks = parseSinkFlags(v.sink);
  if (base.help) return { ...base, pid: 0, contid: '', name: null, meta, owner, create, sinks };
  return {
    ...base,
    pid: parsePid(parsed.positionals[0]),
    contid: parsed.positionals[1]!,
    name: v.name ?? null,
    meta,
    owner,
    create,
    sinks,
  };
}

function parseSinkFlags(flags: readonly string[] | undefined): string[] | null {
  if (flags === undefined) return null;
  if (flags.length === 1 && flags[0] === 'none') return [];
  if (flags.length > MAX_SINKS) throw new UsageError(`Too many --sink options (at most ${MAX_SINKS})`);
  for (const f of flags) {
    try {
      parseSinkSpec(f);
    } catch (error) {
      if (error instanceof SinkSpecError) throw new UsageError(error.message);
      throw error;
    }
  }
  return [...flags];
}

/** `contid get PID` and `contid grant PID`. */
export function parsePidArgs(argv: readonly string[]): PidArgs {
  const parsed = parse(argv);
  const base = common(parsed.values);
  positionals(parsed.positionals, ['PID'], base.help);
  return { ...base, pid: base.help ? 0 : parsePid(parsed.positionals[0]) };
}

/** `contid status [--json]` */
export function parseStatusArgs(argv: readonly string[]): ControlCommonArgs {
  const parsed = parse(argv);
  const base = common(parsed.values);
  positionals(parsed.positionals, [], base.help);
  return base;
}
