import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DisagreementKind } from './corpus.js';
import { compareFile, corpusDir, corpusLogs } from './corpus.js';

const dir = corpusDir();

test(
  'records agree with libauparse on at least 99.5% of the corpus fields',
  { skip: dir === null ? 'corpus not found (set CONTID_CORPUS or place it at ../shared/corpus)' : false },
  (t) => {
    const files = corpusLogs(dir!);
    assert.ok(files.length > 100, `expected the whole corpus, found ${files.length} logs`);
    let fields = 0;
    let agreed = 0;
    const kinds = new Map<DisagreementKind, number>();
    const unexplained: string[] = [];
    for (const f of files) {
      const r = compareFile(f);
      fields += r.fields;
      agreed += r.agreed;
      for (const [k, n] of r.kinds) kinds.set(k, (kinds.get(k) ?? 0) + n);
      unexplained.push(...r.examples);
    }
    const ratio = agreed / fields;
    const table = [...kinds].map(([k, n]) => `${k}=${n}`).join(' ');
    t.diagnostic(
      `${files.length} logs, ${fields} auparse fields, ${agreed} agree (${((100 * agreed) / fields).toFixed(3)}%)`,
    );
    t.diagnostic(`disagreements: ${table || 'none'}`);
    assert.ok(ratio >= 0.995, `agreement ${(ratio * 100).toFixed(3)}% of ${fields} fields; ${table}`);
    assert.equal(kinds.get('unexplained') ?? 0, 0, `unexplained disagreements:\n${unexplained.join('\n')}`);
  },
);
