/**
 * contid's errors: one root, stable codes, the built-in class that fits.
 *
 * JavaScript classes have one parent, so, as Node.js does for its own
 * errors, there is one base per built-in: {@link ContidError} (Error),
 * {@link ContidSyntaxError} (bad input), {@link ContidRangeError} (a value
 * out of bounds) and {@link ContidTypeError} (a value of the wrong kind).
 * All of them carry a `code` that callers match on and a shared brand that
 * {@link isContidError} recognises. Messages read "Cannot <do what>: <why>",
 * sentence case, values quoted, no trailing period.
 *
 * Every `ERR_*` code is in {@link ERROR_CODES} and in docs/errors.md (a test
 * keeps the two equal). A failed system call keeps the errno name as its code
 * (`EEXIST`), as Node's system errors do, and an aborted operation Node's
 * `ABORT_ERR`.
 */

/** Every `ERR_*` code contid reports, with what it means. */
export const ERROR_CODES = {
  ERR_BAD_CONFIG: 'A setting of `contid run` (file line or flag) is malformed or out of range',
  ERR_BAD_HEX: 'A value that should be hex is not',
  ERR_BAD_JSON: 'A control request line is not JSON',
  ERR_BAD_JSON_EVENT: "A line given to `contid store import` is not one of contid's JSON events",
  ERR_BAD_KEYRING: 'A keyring line is malformed',
  ERR_BAD_OCI_STATE: 'The OCI state a runtime gave the hook cannot be used',
  ERR_BAD_OPERATION:
    'The daemon cannot carry an operation in a marker (no contid, a field the format cannot hold)',
  ERR_BAD_RECORD: 'A log line is not an audit record',
  ERR_BAD_REQUEST: 'A control request is JSON but not a request the daemon can serve',
  ERR_BAD_RESPONSE: 'The daemon closed the connection without answering, or answered garbage',
  ERR_BAD_SINK_SPEC: 'A sink spec (container-sink, set --sink) cannot be used',
  ERR_BAD_TIMESTAMP: "A record's audit(SEC.MS:SERIAL) stamp is truncated, has non-digits or is out of range",
  ERR_CALLER_CHANGED: 'A control caller executed another program or changed its ids since it connected',
  ERR_CALLER_GONE: 'A control caller exited before its request was served',
  ERR_CALLER_UNKNOWN: "A control caller's credentials or /proc entry could not be read",
  ERR_DAEMON_NOT_RUNNING: 'Nothing listens on the control socket',
  ERR_FIELD_WITHOUT_VALUE: 'A kernel record holds a word with no `=`, which JSON cannot hold as a field',
  ERR_HARD_LINKED: "A sink's log file has more than one hard link",
  ERR_INCOMPATIBLE_OPTIONS: 'Options that do not go together (a contid filter without labels)',
  ERR_INPUT: 'An input of `contid replay` cannot be read',
  ERR_INTERNAL: 'A failure inside contid, not caused by its caller (a bug)',
  ERR_INVALID_ADDRESS: 'A remote sink in another network namespace was given a host name',
  ERR_INVALID_PATH: 'A sink path with . or .., a NUL byte or no name, or a relative path without a root',
  ERR_INVALID_STATE: 'An object was used in a way it does not allow (now)',
  ERR_KERNEL: "The kernel refused the daemon's marker; the errno is the error's cause",
  ERR_LINE_TOO_LONG: 'A log line is longer than the line bound',
  ERR_NOT_A_SOCKET: 'The control socket path is taken by something that is not a socket',
  ERR_NOT_REGULAR_FILE: "A sink's log path inside a root is not a regular file",
  ERR_OUTPUT: 'The output of `contid replay` cannot be written',
  ERR_OUT_OF_RANGE: 'A value given to contid is outside the bounds it accepts',
  ERR_RECORD_TOO_LONG: "A record longer than auditd's remote protocol carries",
  ERR_REMOTE_DISK_ERROR: "auditd could not log a remote sink's record (disk error)",
  ERR_REMOTE_DISK_FULL: "auditd could not log a remote sink's record (disk full)",
  ERR_REMOTE_ENDING: 'auditd told a remote sink it is shutting down',
  ERR_REMOTE_PROTOCOL: "auditd's reply to a remote sink could not be read",
  ERR_REQUEST_TIMEOUT: 'A control connection sent no complete request line in time',
  ERR_REQUEST_TOO_LARGE: 'A control request line is longer than the bound',
  ERR_SHUTTING_DOWN: 'The daemon is stopping',
  ERR_SINK: 'A sink failed in a way it had no more specific code for',
  ERR_SINK_CLOSED: 'A write reached a sink after it was closed',
  ERR_SINK_DESTROYED: 'A sink was destroyed with an error, which the message carries',
  ERR_STORE_ACCESS: 'The event store or its directory cannot be opened, created or written',
  ERR_STORE_BUSY: "Another process held the event store's lock past the busy timeout",
  ERR_STORE_CLOSED: 'The event store was closed, or its writer stopped',
  ERR_STORE_CORRUPT: 'SQLite found the event store damaged',
  ERR_STORE_FOREIGN: 'The file is not an SQLite database, or a database of something else',
  ERR_STORE_FULL: 'A write to the event store failed for lack of space',
  ERR_STORE_IO: 'Anything else SQLite reported',
  ERR_STORE_NOT_FOUND: 'No event store at the path',
  ERR_STORE_PAYLOAD: "A stored event's records cannot be read back",
  ERR_STORE_TOO_NEW: "The event store's schema is newer (or, for reading, older) than this contid's",
  ERR_TOO_MANY_CONNECTIONS: "A control caller's uid holds as many connections as it may",
  ERR_TOO_MANY_REQUESTS: 'A control connection sent more requests ahead of their answers than it may',
  ERR_UNSAFE_PATH: "A state, keyring or host log directory or file is not the daemon's own",
  ERR_UNSAFE_SOCKET_DIR: "The control socket's directory is not root's or is writable by others",
  ERR_UNTERMINATED_LINE: 'The last line of an input has no newline: the record may be cut off',
  ERR_USAGE: 'A command-line mistake: unknown command or flag, missing argument, bad value',
  ERR_WORKER: 'The thread that connects from inside a network namespace exited without answering',
} as const satisfies Record<`ERR_${string}`, string>;

/** A stable `ERR_*` code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** An errno name (`EEXIST`): the code of a failed system call. */
export type ErrnoCode = `E${string}`;

/** What a contid error's `code` can be. */
export type ContidErrorCode = ErrorCode | ErrnoCode | 'ABORT_ERR';

/** Any contid error, whichever built-in it extends. */
export interface ContidErrorLike<C extends ContidErrorCode = ContidErrorCode> extends Error {
  readonly code: C;
}

// Symbol.for: a second copy of this module (two installed versions) still
// recognises the other's errors.
const BRAND = Symbol.for('contid.error');

function brand(prototype: object): void {
  Object.defineProperty(prototype, BRAND, { value: true });
}

/** Whether `value` is an error of contid's own (any of the bases below). */
export function isContidError(value: unknown): value is ContidErrorLike {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

/** The root of contid's errors that have no closer built-in. */
export class ContidError<C extends ContidErrorCode = ContidErrorCode> extends Error {
  readonly code: C;
  constructor(message: string, code: C, options?: ErrorOptions) {
    super(message, options);
    // Named classes carry their own name; the base itself keeps the built-in's, as Node's errors do.
    if (new.target !== ContidError) this.name = new.target.name;
    this.code = code;
  }
}
brand(ContidError.prototype);

/** Bad input: a line, a file or a value that does not parse. */
export class ContidSyntaxError<C extends ContidErrorCode = ContidErrorCode> extends SyntaxError {
  readonly code: C;
  constructor(message: string, code: C, options?: ErrorOptions) {
    super(message, options);
    // Named classes carry their own name; the base itself keeps the built-in's, as Node's errors do.
    if (new.target !== ContidSyntaxError) this.name = new.target.name;
    this.code = code;
  }
}
brand(ContidSyntaxError.prototype);

/** A value outside the bounds contid accepts. */
export class ContidRangeError<C extends ContidErrorCode = ContidErrorCode> extends RangeError {
  readonly code: C;
  constructor(message: string, code: C, options?: ErrorOptions) {
    super(message, options);
    // Named classes carry their own name; the base itself keeps the built-in's, as Node's errors do.
    if (new.target !== ContidRangeError) this.name = new.target.name;
    this.code = code;
  }
}
brand(ContidRangeError.prototype);

/** A value of the wrong kind, or options that do not go together. */
export class ContidTypeError<C extends ContidErrorCode = ContidErrorCode> extends TypeError {
  readonly code: C;
  constructor(message: string, code: C, options?: ErrorOptions) {
    super(message, options);
    // Named classes carry their own name; the base itself keeps the built-in's, as Node's errors do.
    if (new.target !== ContidTypeError) this.name = new.target.name;
    this.code = code;
  }
}
brand(ContidTypeError.prototype);
