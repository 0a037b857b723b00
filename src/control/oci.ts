/**
 * What `contid oci-hook` takes from an OCI runtime's state (runtime-spec
 * "State", passed to hooks on stdin) and how it chooses the container's
 * contid. Pure. See docs/control.md, "OCI hook".
 */
import { createHash } from 'node:crypto';
import { ContidSyntaxError } from '../errors.js';
import { isOwnerName } from '../marker/format.js';
import { CONTID_UNSET, parseContid } from '../policy/contid.js';

/** The annotation that carries an explicit contid in the bundle's config.json, by default. */
export const CONTID_ANNOTATION = 'org.contid.id';

/** An annotation key the hook accepts for `--annotation` (OCI keys are reverse-domain names). */
const ANNOTATION_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,252}$/;

/** True for a key `--annotation` accepts. */
export function isAnnotationKey(text: string): boolean {
  return ANNOTATION_KEY.test(text);
}

/** Longest state accepted on stdin. */
export const MAX_STATE_BYTES = 1024 * 1024;

/** The fields of the OCI state the hook uses. */
export interface OciState {
  readonly id: string;
  /** The container init's host pid (createRuntime, prestart: still the runtime, before the user process execs). */
  readonly pid: number;
  readonly bundle: string | null;
  readonly annotations: Readonly<Record<string, string>>;
}

/** A state the hook cannot use. `code` is 'ERR_BAD_OCI_STATE'. */
export class OciStateError extends ContidSyntaxError<'ERR_BAD_OCI_STATE'> {
  constructor(message: string) {
    super(message, 'ERR_BAD_OCI_STATE');
  }
}

/**
 * Parses the state JSON a runtime writes to a hook's stdin.
 *
 * @throws {OciStateError} when it is not JSON, has no container id, or no init pid (a stage without one).
 */
export function parseOciState(text: string): OciState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new OciStateError(
      `Cannot read the OCI state on stdin: it is not JSON (${(error as Error).message})`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new OciStateError('Cannot read the OCI state on stdin: it is not a JSON object');
  }
  const o = value as Record<string, unknown>;
  const id = o['id'];
  if (typeof id !== 'string' || id.length === 0)
    throw new OciStateError('Cannot read the OCI state on stdin: it has no container "id"');
  const pid = o['pid'];
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 1) {
    throw new OciStateError(
      `Cannot read the OCI state of container ${JSON.stringify(id)}: it has no init "pid" (run the hook at createRuntime or prestart)`,
    );
  }
  const annotations: Record<string, string> = {};
  const raw = o['annotations'];
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    for (const [key, v] of Object.entries(raw as Record<string, unknown>)) {
      if (typeof v === 'string') annotations[key] = v;
    }
  }
  return { id, pid, bundle: typeof o['bundle'] === 'string' ? o['bundle'] : null, annotations };
}

/**
 * The contid derived from a container id: SHA-256 of the id's UTF-8 bytes,
 * read as big-endian u64 words; the first word that is neither 0 nor the
 * unset value 2^64−1 is the contid (the first one, except with probability
 * 2^-63). Stable across hosts, runtimes and restarts of the same id.
 */
export function deriveContid(containerId: string): string {
  const digest = createHash('sha256').update(containerId, 'utf8').digest();
  for (let offset = 0; offset + 8 <= digest.length; offset += 8) {
    const word = digest.readBigUInt64BE(offset);
    if (word !== 0n && word !== CONTID_UNSET) return word.toString();
  }
  // Four words all 0 or all ones: not a SHA-256 output anyone will meet.
  return '1';
}

/** Where the contid came from. */
export interface ContidChoice {
  readonly contid: string;
  readonly source: 'annotation' | 'derived';
}

/** Options of {@link chooseContid}. */
export interface ChooseOptions {
  /**
   * The annotation that may carry the contid (default {@link CONTID_ANNOTATION});
   * null to ignore annotations and always derive it. Whoever can set
   * annotations (podman `--annotation`, CRI-O pod annotations) chooses the ID.
   */
  readonly annotation?: string | null;
}

/**
 * The annotation when present (it must be a decimal u64 other than the unset
 * value), else {@link deriveContid} of the container id.
 *
 * @throws {OciStateError} when the annotation is present but not a valid contid.
 */
export function chooseContid(state: OciState, options: ChooseOptions = {}): ContidChoice {
  const key = options.annotation === undefined ? CONTID_ANNOTATION : options.annotation;
  const annotated = key === null ? undefined : state.annotations[key];
  if (key === null || annotated === undefined) return { contid: deriveContid(state.id), source: 'derived' };
  const value = parseContid(annotated);
  if (value === null || value === CONTID_UNSET) {
    throw new OciStateError(
      `Cannot use annotation ${key}=${JSON.stringify(annotated.slice(0, 64))}: it is not a decimal u64 below 18446744073709551615`,
    );
  }
  return { contid: value.toString(), source: 'annotation' };
}

/**
 * The owner the hook names for a container's ID: `oci:<container id>`, so
 * that only this container's owner, naming it again, can add processes to
 * the ID (`contid set PID ID --owner oci:<id>`). An id that cannot be an
 * owner name (longer than 252 characters, or not printable ASCII) is named
 * by its SHA-256 instead: `oci-sha256:<64 hex digits>`.
 */
export function ociOwner(containerId: string): string {
  const name = `oci:${containerId}`;
  if (isOwnerName(name)) return name;
  return `oci-sha256:${createHash('sha256').update(containerId, 'utf8').digest('hex')}`;
}
