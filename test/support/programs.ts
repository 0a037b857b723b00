/**
 * The small C programs the live tests build with gcc: the workloads and
 * attacks of testdata/attacks, and fx-forge, which sends a file's text as a
 * user message of a given type over raw netlink (marker text, forged).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { which } from './crun.js';

const ATTACKS = new URL('../../../testdata/attacks/', import.meta.url).pathname;
const FORGE_SOURCE = new URL('../../../scripts/capture/helpers/fx-forge.c', import.meta.url).pathname;

/** Why tests that build programs cannot run here (no gcc), or undefined; `purpose` says what for. */
export function gccSkipReason(purpose?: string): string | undefined {
  if (which('gcc') !== null) return undefined;
  return purpose === undefined ? 'gcc is needed' : `gcc is needed (${purpose})`;
}

function gcc(args: readonly string[]): void {
  const r = spawnSync('gcc', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

/** Builds testdata/attacks/NAME.c as a static, executable program at `dest`. */
export function compileAttack(name: string, dest: string): void {
  gcc(['-static', '-O2', '-pthread', '-o', dest, join(ATTACKS, `${name}.c`)]);
  chmodSync(dest, 0o755);
}

/** Builds fx-forge at `dest`: static with `static` (for a container's busybox rootfs). */
export function compileForge(dest: string, options: { readonly static?: boolean } = {}): void {
  gcc([...(options.static === true ? ['-static'] : []), '-O2', '-o', dest, FORGE_SOURCE]);
}
