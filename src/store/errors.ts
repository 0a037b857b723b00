/**
 * The event store's errors: one class, a stable `code` per cause (tabled in
 * docs/errors.md), and a message in the "Cannot <do what>: <why>" form that
 * names the store's path.
 */

/** Why the store failed. */
export type StoreErrorCode =
  /** No store at the path (commands that only read never create one). */
  | 'ERR_STORE_NOT_FOUND'
  /** The file or its directory cannot be opened, created or written (EACCES, EROFS, ENOENT). */
  | 'ERR_STORE_ACCESS'
  /** The file is not an SQLite database, or a database of something else. */
  | 'ERR_STORE_FOREIGN'
  /** SQLite found the database damaged. */
  | 'ERR_STORE_CORRUPT'
  /** The schema is newer than this contid knows. */
  | 'ERR_STORE_TOO_NEW'
  /** The disk (or the file system's quota) is full. */
  | 'ERR_STORE_FULL'
  /** Another process holds a lock for longer than the busy timeout. */
  | 'ERR_STORE_BUSY'
  /** The store was closed, or its writer stopped. */
  | 'ERR_STORE_CLOSED'
  /** Anything else SQLite reported (the message carries its code). */
  | 'ERR_STORE_IO';

/** An event store failure with a stable code. */
export class StoreError extends Error {
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options: { readonly cause?: unknown } = {}) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'StoreError';
    this.code = code;
  }
}

/** SQLite's primary result code names, as better-sqlite3 reports them (`SQLITE_FULL`, `SQLITE_IOERR_WRITE`). */
function sqliteCode(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : null;
}

const SYSTEM_REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory (ENOENT)',
  EACCES: 'permission denied (EACCES)',
  EROFS: 'read-only file system (EROFS)',
  ENOSPC: 'no space left on device (ENOSPC)',
  EISDIR: 'is a directory (EISDIR)',
  ENOTDIR: 'a part of the path is not a directory (ENOTDIR)',
};

/**
 * Turns what SQLite or the file system threw into a StoreError saying
 * `Cannot <doing> "<path>": <why>`. A StoreError passes through.
 */
export function storeError(err: unknown, doing: string, path: string): StoreError {
  if (err instanceof StoreError) return err;
  const what = `Cannot ${doing} "${path}"`;
  const sys = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof sys === 'string' && sys in SYSTEM_REASONS) {
    const code = sys === 'ENOSPC' ? 'ERR_STORE_FULL' : 'ERR_STORE_ACCESS';
    return new StoreError(code, `${what}: ${SYSTEM_REASONS[sys]!}`, { cause: err });
  }
  const code = sqliteCode(err);
  const detail = err instanceof Error ? err.message : String(err);
  if (code === null) return new StoreError('ERR_STORE_IO', `${what}: ${detail}`, { cause: err });
  if (code === 'SQLITE_NOTADB') {
    return new StoreError('ERR_STORE_FOREIGN', `${what}: it is not an SQLite database (SQLITE_NOTADB)`, {
      cause: err,
    });
  }
  if (code.startsWith('SQLITE_CORRUPT')) {
    return new StoreError('ERR_STORE_CORRUPT', `${what}: the database is damaged (${code})`, { cause: err });
  }
  if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE' || code === 'SQLITE_IOERR_FSYNC') {
    return new StoreError('ERR_STORE_FULL', `${what}: ${detail} (${code}); is the disk full?`, {
      cause: err,
    });
  }
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code.startsWith('SQLITE_BUSY_')) {
    return new StoreError('ERR_STORE_BUSY', `${what}: the database is locked by another process (${code})`, {
      cause: err,
    });
  }
  if (code === 'SQLITE_READONLY_DIRECTORY' || code === 'SQLITE_READONLY_CANTINIT') {
    return new StoreError(
      'ERR_STORE_ACCESS',
      `${what}: its directory cannot be written, and a store that is being written or was not ` +
        `closed cleanly needs its -wal and -shm files there (${code})`,
      { cause: err },
    );
  }
  if (code === 'SQLITE_READONLY' || code.startsWith('SQLITE_READONLY_') || code === 'SQLITE_CANTOPEN') {
    return new StoreError('ERR_STORE_ACCESS', `${what}: ${detail} (${code})`, { cause: err });
  }
  return new StoreError('ERR_STORE_IO', `${what}: ${detail} (${code})`, { cause: err });
}
