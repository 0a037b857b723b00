/**
 * Conformance against libauparse: compares the records contid parses from
 * each corpus log with what auparse made of the same file (the
 * `.auparse.jsonl` beside it), field by field, and sorts every disagreement
 * into a named kind. The kinds are documented in docs/conformance.md.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { splitNestedMsg } from '../src/parse/fields.js';
import { RecordParser } from '../src/parse/parser.js';
import type { AuditRecord } from '../src/parse/record.js';
import { recordTypeName } from '../src/interpret/record-types.js';

/** Where the corpus lives: $CONTID_CORPUS, else ../shared/corpus beside the repository. */
export function corpusDir(): string | null {
  const dir = process.env['CONTID_CORPUS'] ?? resolve(import.meta.dirname, '../../../shared/corpus');
  return existsSync(dir) ? dir : null;
}

export function corpusLogs(dir: string): string[] {
  const out: string[] = [];
  for (const sub of readdirSync(dir, { withFileTypes: true })) {
    if (!sub.isDirectory()) continue;
    for (const f of readdirSync(join(dir, sub.name))) {
      if (f.endsWith('.auparse.jsonl')) continue;
      if (existsSync(join(dir, sub.name, f + '.auparse.jsonl'))) out.push(join(dir, sub.name, f));
    }
  }
  return out.sort();
}

interface OracleRecord {
  type: string | null;
  fields: [string, string | null, string | null][];
}
interface OracleEvent {
  serial: number | null;
  time: string | null;
  node: string | null;
  records: OracleRecord[];
}

/** Kinds of disagreement, each explained in docs/conformance.md. */
export type DisagreementKind =
  | 'auparse-splits-quoted-value'
  | 'auparse-drops-empty-value'
  | 'auparse-splits-hex-key'
  | 'auparse-synthesized-field'
  | 'auparse-strips-punctuation'
  | 'record-only-in-auparse'
  | 'record-only-in-contid'
  | 'unexplained';

export interface FileResult {
  file: string;
  fields: number;
  agreed: number;
  kinds: Map<DisagreementKind, number>;
  examples: string[];
}

function ourFields(r: AuditRecord): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < r.names.length; i++) {
    const name = r.names[i]!;
    const value = r.values[i]!;
    // auparse flattens USER records' msg='...' into the record's own fields.
    if (name === 'msg') {
      const names: string[] = [];
      const values: string[] = [];
      if (splitNestedMsg(value, names, values)) {
        for (let j = 0; j < names.length; j++) out.push([names[j]!, values[j]!]);
        continue;
      }
    }
    out.push([name, value]);
  }
  return out;
}

function parseAll(text: string): AuditRecord[] {
  const recs: AuditRecord[] = [];
  const p = new RecordParser({ onRecord: (r) => recs.push(r), onIssue: () => undefined });
  p.push(text);
  p.end();
  return recs;
}

export function compareFile(file: string): FileResult {
  const ours = parseAll(readFileSync(file, 'utf8'));
  const oracle = readFileSync(file + '.auparse.jsonl', 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as OracleEvent);
  const res: FileResult = { file, fields: 0, agreed: 0, kinds: new Map(), examples: [] };
  const bump = (k: DisagreementKind, n: number, example: string): void => {
    res.kinds.set(k, (res.kinds.get(k) ?? 0) + n);
    if (k === 'unexplained' && res.examples.length < 20) res.examples.push(example);
  };
  // auparse's records by (node, time, serial), in its output order.
  const byKey = new Map<string, { rec: OracleRecord; used: boolean }[]>();
  for (const ev of oracle) {
    if (ev.serial === null) continue; // auparse's pseudo-event for unparseable text
    const key = `${ev.node ?? ''}|${ev.time}|${ev.serial}`;
    const list = byKey.get(key) ?? [];
    for (const rec of ev.records) list.push({ rec, used: false });
    byKey.set(key, list);
  }
  for (const r of ours) {
    const key = `${r.node ?? ''}|${r.time}|${r.serial}`;
    const list = byKey.get(key) ?? [];
    // auparse names UNKNOWN[1323] as MMAP but keeps the text in its `type` field.
    const names = new Set([r.typeName, recordTypeName(r.type)]);
    const match = list.find(
      (o) => !o.used && (names.has(o.rec.type ?? '') || o.rec.fields[0]?.[1] === r.typeName),
    );
    if (match === undefined) {
      // auparse keeps an EOE only when it closes an open event (quirk 2 in the corpus index).
      if (r.typeName === 'EOE') continue;
      bump('record-only-in-contid', 1, `${key} ${r.typeName}`);
      continue;
    }
    match.used = true;
    const theirs = match.rec.fields.filter((f) => f[0] !== 'node' && f[0] !== 'type');
    const mine = ourFields(r);
    let cursor = 0;
    for (const [name, raw] of theirs) {
      res.fields++;
      let k = cursor;
      while (k < mine.length && mine[k]![0] !== name) k++;
      if (k >= mine.length) {
        if (name === 'key' && raw !== null && raw.startsWith('"')) bump('auparse-splits-hex-key', 1, name);
        else if (name === 'seresult' || name === 'seperms') bump('auparse-synthesized-field', 1, name);
        else bump('unexplained', 1, `${file}:${r.line} ${name}=${raw} missing in contid`);
        continue;
      }
      // Fields that auparse dropped (empty values) are skipped on our side.
      for (let s = cursor; s < k; s++) {
        if (mine[s]![1] === '') bump('auparse-drops-empty-value', 1, mine[s]![0]);
      }
      cursor = k + 1;
      const value = mine[k]![1];
      if (value === raw) {
        res.agreed++;
      } else if (raw !== null && value.startsWith(raw) && value.includes(' ')) {
        bump('auparse-splits-quoted-value', 1, name);
      } else if (name === 'key' && raw !== null && raw.startsWith('"') && /^[0-9A-F]+"?$/.test(value)) {
        bump('auparse-splits-hex-key', 1, name);
      } else if (raw !== null && value.startsWith(raw) && /^[),:]+$/.test(value.slice(raw.length))) {
        bump('auparse-strips-punctuation', 1, name);
      } else {
        bump(
          'unexplained',
          1,
          `${file}:${r.line} ${name}: contid=${JSON.stringify(value)} auparse=${JSON.stringify(raw)}`,
        );
      }
    }
    for (let s = cursor; s < mine.length; s++) {
      if (mine[s]![1] === '') bump('auparse-drops-empty-value', 1, mine[s]![0]);
    }
  }
  for (const list of byKey.values()) {
    for (const o of list) {
      if (!o.used) {
        const n = o.rec.fields.filter((f) => f[0] !== 'node' && f[0] !== 'type').length;
        res.fields += n;
        bump('record-only-in-auparse', Math.max(n, 1), `${o.rec.type}`);
      }
    }
  }
  return res;
}
