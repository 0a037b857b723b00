/**
 * The keyring: per daemon start, its id, its pid and its secret. The live
 * daemon appends a line at start-up to a root-only file (mode 0600); `contid
 * replay --keyring FILE` loads it. Reading and writing the file is the
 * edge's job; this module only parses and formats its text.
 *
 *     # contid keyring v1: <start-id> <daemon-pid|-> <secret hex, 32-128 digits>
 *     20261128T175500Z-4242 4242 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
 */
import { isStartId } from './format.js';
import { ContidRangeError, ContidSyntaxError } from '../errors.js';

export interface KeyringEntry {
  readonly startId: string;
  /** The daemon's host pid, or null to learn it from the start's `op=start` marker. */
  readonly daemonPid: number | null;
  readonly secret: Buffer;
}

/** Start id → entry. */
export type Keyring = ReadonlyMap<string, KeyringEntry>;

/** A keyring text that cannot be used; `line` is 1-based. */
export class KeyringSyntaxError extends ContidSyntaxError<'ERR_BAD_KEYRING'> {
  readonly line: number;
  /** What is wrong with the line, to follow "line N: ". */
  readonly reason: string;

  constructor(reason: string, line: number) {
    super(`Cannot read keyring line ${line}: ${reason}`, 'ERR_BAD_KEYRING');
    this.line = line;
    this.reason = reason;
  }
}

/** Most starts a keyring may hold: the verifier keeps state per start. */
export const MAX_KEYRING_ENTRIES = 100_000;

/** Parses a keyring file's text. Blank lines and `#` comments are skipped. */
export function parseKeyring(text: string): Keyring {
  const ring = new Map<string, KeyringEntry>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const cols = line.split(/[ \t]+/);
    if (cols.length !== 3)
      throw new KeyringSyntaxError('expected "<start-id> <daemon-pid|-> <secret>"', i + 1);
    const [startId, pidText, secretHex] = cols as [string, string, string];
    if (!isStartId(startId))
      throw new KeyringSyntaxError(`"${startId.slice(0, 64)}" is not a start id`, i + 1);
    if (ring.has(startId)) throw new KeyringSyntaxError(`start id "${startId}" is repeated`, i + 1);
    let daemonPid: number | null = null;
    if (pidText !== '-') {
      if (!/^[1-9][0-9]{0,9}$/.test(pidText) || Number(pidText) > 0xffffffff) {
        throw new KeyringSyntaxError(`"${pidText.slice(0, 20)}" is not a daemon pid`, i + 1);
      }
      daemonPid = Number(pidText);
    }
    if (!/^(?:[0-9a-fA-F]{2}){16,64}$/.test(secretHex)) {
      throw new KeyringSyntaxError('the secret is not 32 to 128 hex digits', i + 1);
    }
    if (ring.size >= MAX_KEYRING_ENTRIES)
      throw new KeyringSyntaxError(`more than ${MAX_KEYRING_ENTRIES} entries`, i + 1);
    ring.set(startId, { startId, daemonPid, secret: Buffer.from(secretHex, 'hex') });
  }
  return ring;
}

/** One keyring line (with its newline) for the daemon to append. */
export function formatKeyringEntry(entry: KeyringEntry): string {
  if (!isStartId(entry.startId))
    throw new ContidRangeError(
      `Cannot write the keyring entry: "${entry.startId}" is not a start id`,
      'ERR_OUT_OF_RANGE',
    );
  if (entry.secret.length < 16 || entry.secret.length > 64)
    throw new ContidRangeError(
      'Cannot write the keyring entry: the secret is not 16 to 64 bytes',
      'ERR_OUT_OF_RANGE',
    );
  return `${entry.startId} ${entry.daemonPid ?? '-'} ${entry.secret.toString('hex')}\n`;
}
