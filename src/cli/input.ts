/**
 * The inputs of `contid replay`: files or stdin, read as they are or, when
 * their first bytes say so, decompressed on the way (rotated logs are often
 * kept as `audit.log.1.gz`).
 */
import { createReadStream, type ReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { ContidError } from '../errors.js';

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

/** How an input is compressed, by its first bytes. */
export type Compression = 'none' | 'gzip' | 'zstd';

/** The compression `head` (an input's first bytes) announces. */
export function compressionOf(head: Uint8Array): Compression {
  const starts = (magic: readonly number[]): boolean =>
    head.length >= magic.length && magic.every((b, i) => head[i] === b);
  if (starts(GZIP_MAGIC)) return 'gzip';
  if (starts(ZSTD_MAGIC)) return 'zstd';
  return 'none';
}

/** A bad input that is not a system error: the message is the whole story. */
export class InputError extends ContidError<'ERR_INPUT'> {
  constructor(message: string) {
    super(message, 'ERR_INPUT');
  }
}

/** An opened input. */
export interface Input {
  /** The decompressed bytes. */
  readonly chunks: AsyncIterable<Buffer>;
  readonly compression: Compression;
  /** Bytes read from the file itself so far (compressed bytes for a compressed file). */
  bytesRead(): number;
  /** Stops reading (idempotent). */
  close(): void;
}

type Decoder = NodeJS.ReadWriteStream & Readable;

/**
 * Reads up to `n` bytes from the start of `stream` and puts them back, so
 * that the stream still yields everything. Resolves with fewer bytes at the
 * end of the input.
 */
function peek(stream: Readable, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let have = 0;
    const done = (): void => {
      stream.off('readable', onReadable);
      stream.off('end', done);
      stream.off('error', reject);
      const head = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      if (head.length > 0) stream.unshift(head);
      resolve(head);
    };
    const onReadable = (): void => {
      for (
        let chunk = stream.read() as Buffer | null;
        chunk !== null;
        chunk = stream.read() as Buffer | null
      ) {
        parts.push(chunk);
        have += chunk.length;
        if (have >= n) {
          done();
          return;
        }
      }
    };
    stream.on('readable', onReadable);
    stream.once('end', done);
    stream.once('error', reject);
  });
}

/**
 * Opens `path` (or stdin for `-`). A gzip input is decompressed; a zstd
 * input is too where node:zlib can (Node.js 22.15 and later), and is
 * refused with a hint otherwise.
 *
 * @throws {InputError} for a compression this runtime cannot read.
 * @throws {Error} the system error of the first read.
 */
export async function openInput(path: string, stdin: Readable): Promise<Input> {
  const raw: Readable = path === '-' ? stdin : createReadStream(path, { highWaterMark: 1 << 20 });
  const bytesRead = (): number => (raw as Partial<ReadStream>).bytesRead ?? 0;
  let head: Buffer;
  try {
    head = await peek(raw, ZSTD_MAGIC.length);
  } catch (err) {
    raw.destroy();
    throw err;
  }
  const compression = compressionOf(head);
  if (compression === 'none') {
    return {
      chunks: raw as AsyncIterable<Buffer>,
      compression,
      bytesRead,
      close: () => {
        if (raw !== stdin) raw.destroy();
      },
    };
  }
  // Loaded only for compressed input: a plain replay does without it.
  const zlib = await import('node:zlib');
  // zstd joined node:zlib in Node.js 22.15 and 23.8; Node.js 20 has none.
  const createZstdDecompress = (zlib as { createZstdDecompress?: () => Decoder }).createZstdDecompress;
  let decoder: Decoder;
  if (compression === 'gzip') {
    decoder = zlib.createGunzip();
  } else if (createZstdDecompress !== undefined) {
    decoder = createZstdDecompress();
  } else {
    if (raw !== stdin) raw.destroy();
    const name = path === '-' ? 'FILE.zst' : path;
    throw new InputError(
      `it is zstd-compressed, which Node.js ${process.versions.node} cannot decompress: ` +
        `run "zstd -dc ${name} | contid replay -"`,
    );
  }
  // pipeline() destroys both streams when either fails or the reader stops early.
  const out = pipeline(raw, decoder, () => undefined) as unknown as Readable;
  return {
    chunks: out as AsyncIterable<Buffer>,
    compression,
    bytesRead,
    close: () => {
      out.destroy();
    },
  };
}
