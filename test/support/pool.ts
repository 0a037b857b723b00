/**
 * Holds every thread of libuv's pool, as work that never ends would (a
 * file on a filesystem that never answers): each open of a FIFO without a
 * writer holds one pool thread until a writer comes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Holds the pool; the returned function lets it go (opens a writer for each FIFO) and cleans up. */
export function holdLibuvPool(): () => Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'contid-pool-'));
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const fifos = Array.from({ length: threads }, (_, i) => join(dir, `fifo${i}`));
  for (const fifo of fifos) assert.equal(spawnSync('mkfifo', [fifo]).status, 0, `mkfifo ${fifo}`);
  const held = fifos.map((fifo) => open(fifo, 'r'));
  let released: Promise<void> | undefined;
  return () =>
    (released ??= (async () => {
      const writers = fifos.map((fifo) => openSync(fifo, 'w'));
      for (const handle of await Promise.all(held)) await handle.close();
      for (const fd of writers) closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    })());
}
