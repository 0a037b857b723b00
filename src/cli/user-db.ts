import { readFileSync } from 'node:fs';
import type { IdNames } from '../output/interpretation.js';

function parseDb(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    const parts = line.split(':');
    if (parts.length < 3) continue;
    const id = Number(parts[2]);
    if (Number.isInteger(id) && !out.has(id)) out.set(id, parts[0]!);
  }
  return out;
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    // A missing database means no names, which the output shows as raw ids.
    return '';
  }
}

/** Names from this machine's passwd and group files (only on request: `--resolve-ids`). */
export function localIdNames(passwd = '/etc/passwd', group = '/etc/group'): IdNames {
  const users = parseDb(readOr(passwd));
  const groups = parseDb(readOr(group));
  return {
    user: (id) => users.get(id),
    group: (id) => groups.get(id),
  };
}
