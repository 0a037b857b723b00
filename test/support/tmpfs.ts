/**
 * A small tmpfs for the file sink tests: a real filesystem that can be made
 * full (a filler file takes every free page) and given room again, so that
 * a FileSink meets a real ENOSPC. Mounting needs root.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Why a tmpfs cannot be mounted here, or undefined. */
export function tmpfsSkipReason(): string | undefined {
  return process.getuid?.() === 0 ? undefined : 'mounting a tmpfs needs root';
}

/** A mounted tmpfs. */
export interface Tmpfs {
  readonly dir: string;
  /** Takes every free byte with a filler file. */
  fill(): void;
  /** Removes the filler. */
  unfill(): void;
  /** Unmounts (lazily: a sink may still hold a file) and removes the mount point. */
  remove(): void;
}

/** Mounts a tmpfs of `sizeKiB` on a new temporary directory. */
export function mountTmpfs(sizeKiB: number): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), 'contid-tmpfs-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0700`, 'contid-test', dir], {
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`Cannot mount a tmpfs on "${dir}": ${r.stderr.trim()}`);
  }
  const filler = join(dir, 'filler');
  return {
    dir,
    fill() {
      const fd = openSync(filler, 'a');
      try {
        for (const size of [65536, 4096, 512, 1]) {
          const block = Buffer.alloc(size);
          for (;;) {
            try {
              writeSync(fd, block);
            } catch (error) {
              if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
              throw error;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
    },
    unfill() {
      rmSync(filler, { force: true });
    },
    remove() {
      spawnSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
