// How the benchmarks start contid: as the installed `contid` command does,
// with the node options of dist/src/cli/main.js's first line
// (`#!/usr/bin/env -S node --max-semi-space-size=4`), which sizes V8's heap
// before any code runs. It is run through this node with those options,
// which is what the `#!` line does, so that the node that runs the
// benchmark is the one measured.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(ROOT, 'dist/src/cli/main.js');

/** The node options on the `#!` line of the CLI (of this tree's build, or of `cli`). */
export function cliNodeOptions(cli = CLI) {
  const first = readFileSync(cli, 'utf8').split('\n', 1)[0];
  const m = /^#!\/usr\/bin\/env -S node( .*)?$/.exec(first);
  if (m === null) throw new Error(`${cli}: unexpected first line ${JSON.stringify(first)}`);
  return (m[1] ?? '').trim().split(/\s+/).filter(Boolean);
}

/** argv that runs `contid args...` as the installed command does. */
export function contidArgv(...args) {
  return [process.execPath, ...cliNodeOptions(), CLI, ...args];
}
