import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { labelledEvents } from '../../test/support/labelled-events.js';
import { parseKeyring } from '../marker/keyring.js';
import { EventEncoder } from '../pipeline/encoder.js';
import { isJsonRowIssue, JsonRowAdapter } from './json-row.js';
import { LabelledRowAdapter } from './labelled-row.js';
import type { StoreRow } from './row.js';

const CAPTURES = resolve(import.meta.dirname, '../../../testdata/captures');

function facts(row: StoreRow): Omit<StoreRow, 'payload'> & { payload: null } {
  return { ...row, payload: null };
}

test('a JSON line and the labelled event it was written from give the store the same facts', () => {
  let ops = 0;
  let forgeries = 0;
  let labelled = 0;
  for (const name of ['a-fork-tree', 'b-threads', 'c-vfork', 'd-refusals', 'e-crun']) {
    const keyring = parseKeyring(readFileSync(`${CAPTURES}/${name}.keyring`, 'utf8'));
    const fromLabels = new LabelledRowAdapter();
    const fromJson = new JsonRowAdapter();
    const encoder = new EventEncoder('json');
    labelledEvents(readFileSync(`${CAPTURES}/${name}.log`), { keyring }).forEach((le, i) => {
      encoder.write(le);
      const line = encoder.take().toString('utf8').trimEnd();
      const a = fromLabels.row(le);
      const b = fromJson.row(line, i + 1);
      assert.ok(!isJsonRowIssue(b), isJsonRowIssue(b) ? b.message : '');
      assert.deepEqual(facts(b), facts(a), `${name} event ${i + 1}`);
      ops += a.ops.length;
      forgeries += a.forgeries;
      if (a.contid !== null) labelled++;
    });
  }
  assert.ok(
    ops > 5 && forgeries >= 3 && labelled > 100,
    `${ops} ops, ${forgeries} forgeries, ${labelled} labelled`,
  );
});

test('lines that are not contid events are reported with their line number', () => {
  const adapter = new JsonRowAdapter();
  const ok = {
    time: '1.000',
    serial: 1,
    node: null,
    contid: null,
    records: [{ type: 'SYSCALL', fields: { pid: '1' } }],
  };
  const cases: [string, RegExp][] = [
    ['{"time":', /not JSON/],
    ['[1,2]', /not a JSON object/],
    [JSON.stringify({ ...ok, time: 'yesterday' }), /"time"/],
    [JSON.stringify({ ...ok, serial: -1 }), /"serial"/],
    [JSON.stringify({ ...ok, records: [] }), /"records"/],
    [JSON.stringify({ ...ok, records: [{ type: 'SYSCALL', fields: { pid: 1 } }] }), /"records"/],
    [JSON.stringify({ ...ok, records: [{ type: 'SYS CALL', fields: {} }] }), /"type"/],
    [JSON.stringify({ ...ok, node: 'a b' }), /"node"/],
    [JSON.stringify({ ...ok, records: [{ type: 'SYSCALL', fields: { msg: 'a\nb' } }] }), /newline/],
    [
      JSON.stringify({ ...ok, records: [{ type: 'CONTAINER_ID', fields: { contid: '1' } }] }),
      /no record of its own/,
    ],
  ];
  for (const [line, why] of cases) {
    const r = adapter.row(line, 17);
    assert.ok(isJsonRowIssue(r), line);
    assert.equal(r.line, 17);
    assert.match(r.message, why, line);
  }
  const good = adapter.row(JSON.stringify(ok), 18);
  assert.ok(!isJsonRowIssue(good));
  assert.equal(good.pid, 1);
});
