/**
 * The control protocol: newline-delimited JSON over a unix stream socket,
 * one request object per line, one response line per request, in order.
 * Pure: framing, validation and messages, no I/O. See docs/control.md.
 */
import { isOwnerName } from '../marker/format.js';
import {
  isMetaKey,
  MAX_META_BYTES,
  MAX_META_ENTRIES,
  MAX_META_VALUE_BYTES,
  MAX_NAME_BYTES,
} from '../marker/description.js';
import { ContidError } from '../errors.js';
import { ERRNO_REASONS, type ContidErrno } from '../policy/errno.js';
import type { DaemonStatus } from '../daemon/api.js';
import { parseSinkSpec, SinkSpecError } from '../route/sink-spec.js';

/** Longest request line accepted, newline excluded (64 KiB). */
export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024;

/**
 * Bounds on the optional container description of `set`: what the set
 * marker carries (src/marker/description.ts).
 */
export { MAX_META_BYTES, MAX_META_ENTRIES, MAX_META_VALUE_BYTES, MAX_NAME_BYTES };
/** Most sinks one `set` may name. */
export const MAX_SINKS = 8;
/** The marker format's contid token (docs/markers.md); anything else cannot even be recorded. */
const CONTID_TOKEN = /^[0-9A-Za-z_+-]{1,64}$/;
/** A request id the client may attach; echoed back. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
/** Linux's PID_MAX_LIMIT on 64-bit is 2^22; accept any positive int32 and let the kernel state decide. */
const MAX_PID = 0x7fffffff;

/** A validated request. */
export type ControlRequest =
  | {
      readonly op: 'set';
      readonly id?: string;
      readonly pid: number;
      readonly contid: string;
      readonly name?: string;
      readonly meta?: Readonly<Record<string, string>>;
      /** The ID's owner, named (privileged callers only): `oci:<container id>`. */
      readonly owner?: string;
      /** Create-only: refused (ENOTUNIQ) when the ID is live. */
      readonly create?: boolean;
      /**
       * The container's sinks (privileged callers only), instead of the
       * daemon's `container-sink` default; empty for none. Used when the set
       * creates the container.
       */
      readonly sinks?: readonly string[];
    }
  | { readonly op: 'grant'; readonly id?: string; readonly pid: number }
  | { readonly op: 'get'; readonly id?: string; readonly pid: number }
  | { readonly op: 'status'; readonly id?: string };

/** Protocol-level failure codes (policy refusals carry `errno` instead). */
export type ControlErrorCode =
  | 'ERR_BAD_JSON'
  | 'ERR_BAD_REQUEST'
  | 'ERR_REQUEST_TOO_LARGE'
  | 'ERR_TOO_MANY_CONNECTIONS'
  | 'ERR_TOO_MANY_REQUESTS'
  | 'ERR_REQUEST_TIMEOUT'
  | 'ERR_CALLER_GONE'
  | 'ERR_CALLER_UNKNOWN'
  | 'ERR_CALLER_CHANGED'
  | 'ETIMEDOUT'
  | 'ERR_SHUTTING_DOWN'
  | 'ERR_KERNEL'
  | 'ERR_INTERNAL';

/** A response line. */
export type ControlResponse =
  | {
      readonly ok: true;
      readonly op: 'set' | 'grant';
      readonly id?: string;
      readonly pid: number;
      readonly contid: string;
      /** The CONTAINER_OP body the labeller recorded. */
      readonly record: string;
    }
  | {
      readonly ok: true;
      readonly op: 'get';
      readonly id?: string;
      readonly pid: number;
      /** Leaf-to-root chain (`4,^2,^1`), or null when the process is unset. */
      readonly contid: string | null;
    }
  | { readonly ok: true; readonly op: 'status'; readonly id?: string; readonly status: DaemonStatus }
  | {
      readonly ok: false;
      readonly op?: ControlRequest['op'];
      readonly id?: string;
      readonly pid?: number;
      /** Set when the operation was refused by a contid rule (or a privileged-read check). */
      readonly errno?: ContidErrno;
      /** Set when the request failed for any other reason. */
      readonly code?: ControlErrorCode;
      readonly message: string;
      readonly record?: string;
    };

/** A request line that cannot be served, with the error response to send. */
export class ControlRequestError extends ContidError<ControlErrorCode> {
  readonly id: string | undefined;
  constructor(message: string, code: ControlErrorCode, id?: string) {
    super(message, code);
    this.id = id;
  }
}

/**
 * Splits a byte stream into lines, holding at most `maxLineBytes` of an
 * unfinished line. A longer line is an error: the connection cannot be
 * resynchronised cheaply, so the server answers and closes it.
 */
export class LineFramer {
  readonly #max: number;
  #parts: Buffer[] = [];
  #held = 0;

  constructor(maxLineBytes = DEFAULT_MAX_REQUEST_BYTES) {
    this.#max = maxLineBytes;
  }

  /** Bytes of the unfinished line held. */
  get held(): number {
    return this.#held;
  }

  /**
   * Feeds a chunk; returns the complete lines (without `\n`, a trailing
   * `\r` removed).
   *
   * @throws {ControlRequestError} ERR_REQUEST_TOO_LARGE when a line exceeds the bound.
   */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      this.#check(this.#held + piece.length);
      const line = this.#held === 0 ? piece : Buffer.concat([...this.#parts, piece]);
      this.#parts = [];
      this.#held = 0;
      const end = line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
      lines.push(line.toString('utf8', 0, end));
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.#check(this.#held + rest.length);
      this.#parts.push(Buffer.from(rest));
      this.#held += rest.length;
    }
    return lines;
  }

  #check(bytes: number): void {
    if (bytes > this.#max) {
      this.#parts = [];
      this.#held = 0;
      throw new ControlRequestError(
        `Request line is longer than ${this.#max} bytes`,
        'ERR_REQUEST_TOO_LARGE',
      );
    }
  }
}

/**
 * Parses and validates one request line.
 *
 * @throws {ControlRequestError} ERR_BAD_JSON or ERR_BAD_REQUEST, with the request id when one was readable.
 */
export function parseRequest(line: string): ControlRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    throw new ControlRequestError(
      `Cannot parse the request: it is not JSON (${(error as Error).message})`,
      'ERR_BAD_JSON',
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ControlRequestError('Cannot parse the request: it is not a JSON object', 'ERR_BAD_REQUEST');
  }
  const o = value as Record<string, unknown>;
  let id: string | undefined;
  if (o['id'] !== undefined) {
    if (typeof o['id'] !== 'string' || !REQUEST_ID.test(o['id'])) {
      throw new ControlRequestError(
        'Cannot parse the request: "id" is not 1-64 of [A-Za-z0-9._:-]',
        'ERR_BAD_REQUEST',
      );
    }
    id = o['id'];
  }
  const bad = (why: string): ControlRequestError =>
    new ControlRequestError(`Cannot parse the request: ${why}`, 'ERR_BAD_REQUEST', id);
  const allow = (keys: readonly string[]): void => {
    for (const key of Object.keys(o)) {
      if (!['op', 'id', ...keys].includes(key)) throw bad(`field "${key.slice(0, 64)}" is not expected`);
    }
  };
  const withId = <T extends object>(request: T): T & { id?: string } =>
    id === undefined ? request : { ...request, id };
  const pid = (): number => {
    const p = o['pid'];
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > MAX_PID) {
      throw bad('"pid" is not a positive integer');
    }
    return p;
  };
  switch (o['op']) {
    case 'status':
      allow([]);
      return withId({ op: 'status' });
    case 'get':
      allow(['pid']);
      return withId({ op: 'get', pid: pid() });
    case 'grant':
      allow(['pid']);
      return withId({ op: 'grant', pid: pid() });
    case 'set': {
      allow(['pid', 'contid', 'name', 'meta', 'owner', 'create', 'sinks']);
      const target = pid();
      const contid = o['contid'];
      if (typeof contid !== 'string') {
        throw bad('"contid" is not a string holding a decimal u64 (numbers lose precision)');
      }
      if (!CONTID_TOKEN.test(contid)) throw bad(`"contid" "${contid.slice(0, 64)}" is not a decimal u64`);
      let request: ControlRequest & { op: 'set' } = { op: 'set', pid: target, contid };
      if (o['name'] !== undefined) request = { ...request, name: parseName(o['name'], bad) };
      if (o['meta'] !== undefined) request = { ...request, meta: parseMeta(o['meta'], bad) };
      const owner = o['owner'];
      if (owner !== undefined) {
        if (typeof owner !== 'string' || !isOwnerName(owner)) {
          throw bad('"owner" is not 1-256 printable ASCII characters without spaces');
        }
        request = { ...request, owner };
      }
      const create = o['create'];
      if (create !== undefined) {
        if (typeof create !== 'boolean') throw bad('"create" is not true or false');
        if (create) request = { ...request, create };
      }
      if (o['sinks'] !== undefined) request = { ...request, sinks: parseSinks(o['sinks'], bad) };
      return withId(request);
    }
    default:
      throw bad(
        typeof o['op'] === 'string'
          ? `"op" "${o['op'].slice(0, 64)}" is not set, get, grant or status`
          : '"op" is missing (set, get, grant or status)',
      );
  }
}

function parseSinks(sinks: unknown, bad: (m: string) => Error): string[] {
  if (!Array.isArray(sinks) || sinks.length > MAX_SINKS || !sinks.every((s) => typeof s === 'string')) {
    throw bad(`Cannot use "sinks": expected an array of at most ${MAX_SINKS} strings`);
  }
  for (const s of sinks) {
    try {
      parseSinkSpec(s);
    } catch (error) {
      if (error instanceof SinkSpecError) throw bad(error.message);
      throw error;
    }
  }
  return sinks;
}

function parseName(name: unknown, bad: (m: string) => Error): string {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw bad(`"name" is not a string of 1-${MAX_NAME_BYTES} bytes`);
  }
  if (/[\x00-\x1f\x7f]/.test(name)) throw bad('"name" has control characters');
  return name;
}

function parseMeta(meta: unknown, bad: (m: string) => Error): Record<string, string> {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
    throw bad('"meta" is not an object of string values');
  }
  const entries = Object.entries(meta as Record<string, unknown>);
  if (entries.length > MAX_META_ENTRIES) throw bad(`"meta" has more than ${MAX_META_ENTRIES} entries`);
  const out: [string, string][] = [];
  let total = 0;
  for (const [key, value] of entries) {
    if (!isMetaKey(key)) throw bad(`"meta" key "${key.slice(0, 64)}" is not 1-64 of [A-Za-z0-9._/-]`);
    if (typeof value !== 'string' || Buffer.byteLength(value) > MAX_META_VALUE_BYTES) {
      throw bad(`"meta" value for "${key}" is not a string of at most ${MAX_META_VALUE_BYTES} bytes`);
    }
    if (/[\x00-\x1f\x7f]/.test(value)) throw bad(`"meta" value for "${key}" has control characters`);
    total += Buffer.byteLength(key) + Buffer.byteLength(value);
    out.push([key, value]);
  }
  // The set marker carries the metadata, and a marker is one user message.
  if (total > MAX_META_BYTES) {
    throw bad(`"meta" keys and values are ${total} bytes together, more than ${MAX_META_BYTES}`);
  }
  // fromEntries makes own properties: a `__proto__` key stays an entry.
  return Object.fromEntries(out);
}

/** The start of every refusal message for an op on a pid. */
export function actionText(op: ControlRequest['op'], pid?: number): string {
  switch (op) {
    case 'set':
      return `Cannot set contid of pid ${pid ?? '?'}`;
    case 'grant':
      return `Cannot grant pid ${pid ?? '?'} the right to label its descendants`;
    case 'get':
      return `Cannot get contid of pid ${pid ?? '?'}`;
    case 'status':
      return 'Cannot get the daemon status';
  }
}

/** "Cannot set contid of pid 812: the target has children (EBUSY)". */
export function refusalMessage(
  op: ControlRequest['op'],
  pid: number | undefined,
  errno: ContidErrno,
  reason: string = ERRNO_REASONS[errno],
): string {
  return `${actionText(op, pid)}: ${reason} (${errno})`;
}

/** Serialises a response as one line, `\n` included. */
export function encodeResponse(response: ControlResponse): string {
  return `${JSON.stringify(response, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))}\n`;
}
