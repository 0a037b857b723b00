/**
 * `contid oci-hook`: an OCI runtime hook (createRuntime or prestart) that
 * labels a container's init before its user process starts. The runtime
 * writes the container state on stdin; a non-zero exit makes it abort the
 * container, so a refusal is never silently a container without a label.
 */
import { parseArgs } from 'node:util';
import type { Readable } from 'node:stream';
import { ControlClientError, controlRequest } from '../control/client.js';
import {
  chooseContid,
  CONTID_ANNOTATION,
  isAnnotationKey,
  MAX_STATE_BYTES,
  OciStateError,
  ociOwner,
  parseOciState,
} from '../control/oci.js';
import { DEFAULT_CONTROL_SOCKET } from '../control/socket-path.js';
import { EXIT, type ControlIo } from './control.js';
import { UsageError } from './usage.js';

export const OCI_HOOK_HELP = `Usage: contid oci-hook [options] < state.json

An OCI runtime hook for runc, crun and podman, run at createRuntime (or
prestart): reads the container state on stdin and gives the container's init
process its audit container ID before the user process execs, so that every
process of the container inherits it.

The contid is the annotation org.contid.id when the bundle has it (a decimal
u64; --annotation names another key, or none), else it is derived from the
container id: the first big-endian 64-bit word of SHA-256(id) that is neither
0 nor 2^64-1. The set is create-only: an ID that is live refuses (ENOTUNIQ)
and the container does not start. The ID's owner is oci:<container id>, so
only a privileged caller naming it (contid set PID ID --owner oci:<id>) adds
processes to it. The container id is sent as the container's name, the
bundle path as metadata.

Options:
      --annotation KEY|none    The annotation that may carry the contid (default
                               ${CONTID_ANNOTATION}); none: always derive it, so
                               whoever sets annotations cannot choose the ID
      --socket PATH            The daemon's control socket (default ${DEFAULT_CONTROL_SOCKET})
      --timeout MS             Give up waiting for the daemon after MS (default 15000)
      --allow-missing-daemon   Exit 0, with a warning, when the daemon is not running
                               (default: fail, so the runtime does not start an unlabelled container)
  -h, --help                   Show this help

Exit codes: 0 labelled, 1 refused or failed, 2 usage error or unusable state,
3 the daemon is not running. Any non-zero code aborts the container.

Install: etc/oci/hooks.d/contid.json (podman, CRI-O) or the hooks section of
etc/oci/crun-config-example.json (a bundle's config.json).`;

export interface OciHookArgs {
  readonly help: boolean;
  readonly socket: string;
  readonly timeoutMs: number;
  readonly allowMissingDaemon: boolean;
  /** The annotation that may carry the contid; null: never read one. */
  readonly annotation: string | null;
}

/** Parses `contid oci-hook` arguments; a pure function of argv. */
export function parseOciHookArgs(argv: readonly string[]): OciHookArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        socket: { type: 'string' },
        timeout: { type: 'string' },
        annotation: { type: 'string' },
        'allow-missing-daemon': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  const extra = parsed.positionals[0];
  // runc and crun pass the hook's args; a stage name as the only positional is harmless.
  if (parsed.positionals.length > 1 || (extra !== undefined && !/^[a-zA-Z]+$/.test(extra))) {
    throw new UsageError(`Cannot use argument "${extra ?? parsed.positionals[1] ?? ''}": it is not expected`);
  }
  const timeout = v.timeout;
  if (timeout !== undefined && !/^[1-9][0-9]{0,8}$/.test(timeout)) {
    throw new UsageError(`Cannot use --timeout: "${timeout}" is not a positive integer`);
  }
  const annotation = v.annotation ?? CONTID_ANNOTATION;
  if (annotation !== 'none' && !isAnnotationKey(annotation)) {
    throw new UsageError(
      `Cannot use --annotation: "${annotation.slice(0, 64)}" is not an annotation key (or none)`,
    );
  }
  return {
    help: v.help ?? false,
    socket: v.socket ?? DEFAULT_CONTROL_SOCKET,
    timeoutMs: timeout === undefined ? 15_000 : Number(timeout),
    allowMissingDaemon: v['allow-missing-daemon'] ?? false,
    annotation: annotation === 'none' ? null : annotation,
  };
}

/** Reads stdin up to the bound. */
async function readState(stdin: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    bytes += buf.length;
    if (bytes > MAX_STATE_BYTES)
      throw new OciStateError(
        `Cannot read the OCI state on stdin: it is longer than ${MAX_STATE_BYTES} bytes`,
      );
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Runs the hook; returns the exit code. */
export async function runOciHook(
  args: OciHookArgs,
  io: ControlIo & { readonly stdin: Readable },
): Promise<number> {
  let state;
  let choice;
  try {
    state = parseOciState(await readState(io.stdin));
    choice = chooseContid(state, { annotation: args.annotation });
  } catch (error) {
    if (!(error instanceof OciStateError)) throw error;
    io.stderr.write(`contid oci-hook: ${error.message}\n`);
    return EXIT.usage;
  }
  const meta: Record<string, string> = { 'oci.contid-source': choice.source };
  if (
    state.bundle !== null &&
    Buffer.byteLength(state.bundle) <= 1024 &&
    !/[\x00-\x1f\x7f]/.test(state.bundle)
  ) {
    meta['oci.bundle'] = state.bundle;
  }
  const name = Buffer.byteLength(state.id) <= 256 && !/[\x00-\x1f\x7f]/.test(state.id) ? state.id : undefined;
  const what = `container ${JSON.stringify(state.id.slice(0, 128))} (init pid ${state.pid}, contid ${choice.contid})`;
  try {
    const response = await controlRequest(
      args.socket,
      {
        op: 'set',
        pid: state.pid,
        contid: choice.contid,
        ...(name === undefined ? {} : { name }),
        meta,
        owner: ociOwner(state.id),
        create: true,
      },
      { timeoutMs: args.timeoutMs },
    );
    if (response.ok) return EXIT.ok;
    io.stderr.write(`contid oci-hook: cannot label ${what}: ${response.message}\n`);
    return EXIT.failed;
  } catch (error) {
    if (!(error instanceof ControlClientError)) throw error;
    if (error.code === 'ERR_DAEMON_NOT_RUNNING') {
      if (args.allowMissingDaemon) {
        io.stderr.write(`contid oci-hook: warning: ${what} is not labelled: ${error.message}\n`);
        return EXIT.ok;
      }
      io.stderr.write(`contid oci-hook: cannot label ${what}: ${error.message}\n`);
      return EXIT.notRunning;
    }
    io.stderr.write(`contid oci-hook: cannot label ${what}: ${error.message}\n`);
    return EXIT.failed;
  }
}
