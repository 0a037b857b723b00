/**
 * StoreWriter with its real worker thread and a real SQLite file: what is
 * written is stored in order, the queue is bounded and says so, and what it
 * cannot keep is counted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { labelledEvents } from '../../test/support/labelled-events.js';
import { parseKeyring } from '../marker/keyring.js';
import type { LabelledEvent } from '../policy/labeller.js';
import { StoreError } from './errors.js';
import { EventStore } from './store.js';
import { StoreWriter } from './writer.js';

const CAPTURES = resolve(import.meta.dirname, '../../../testdata/captures');
const dir = mkdtempSync(join(tmpdir(), 'contid-writer-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function capture(name: string): LabelledEvent[] {
  const keyring = parseKeyring(readFileSync(`${CAPTURES}/${name}.keyring`, 'utf8'));
  return labelledEvents(readFileSync(`${CAPTURES}/${name}.log`), { keyring });
}

function storedSerials(path: string): number[] {
  const store = EventStore.open(path, { readOnly: true });
  try {
    return [...store.search({})].map((e) => EventStore.decode(e).event.serial);
  } finally {
    store.close();
  }
}

test('the writer stores every event written, in order, by flush and by close', async () => {
  const events = capture('a-fork-tree');
  const path = join(dir, 'all.db');
  const writer = await StoreWriter.open(path, { batchEvents: 50 });
  for (let i = 0; i < events.length; i += 7) writer.write(events.slice(i, i + 7));
  await writer.flush();
  assert.equal(writer.stats().written, events.length);
  assert.equal(writer.stats().queued, 0);
  // A reader sees what was flushed while the writer is still open (WAL).
  assert.deepEqual(
    storedSerials(path),
    events.map((e) => e.event.serial),
  );
  writer.write(events.slice(0, 3));
  await writer.close();
  await writer.close();
  const s = writer.stats();
  assert.equal(s.written, events.length + 3);
  assert.equal(s.dropped + s.failed + s.rejected, 0);
  assert.equal(storedSerials(path).length, events.length + 3);
  assert.equal(writer.write(events.slice(0, 2)), false, 'closed');
  assert.equal(writer.stats().dropped, 2);
});

test('write() says when to wait, drained() when to go on, and nothing is lost by waiting', async () => {
  const events = capture('d-refusals');
  const writer = await StoreWriter.open(join(dir, 'wait.db'), { highWater: 40, batchEvents: 16 });
  let waits = 0;
  let total = 0;
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < events.length; i += 25) {
      total += Math.min(25, events.length - i);
      if (!writer.write(events.slice(i, i + 25))) {
        waits++;
        await writer.drained();
        assert.ok(writer.queued <= 20, `drained at ${writer.queued}`);
      }
    }
  }
  await writer.close();
  assert.ok(waits > 10, `${waits} waits`);
  assert.equal(writer.stats().written, total);
  assert.equal(writer.stats().dropped, 0);
});

test('past maxQueue events are dropped and counted, never blocking the caller', async () => {
  const events = capture('a-fork-tree');
  const path = join(dir, 'drop.db');
  const writer = await StoreWriter.open(path, { maxQueue: 100, highWater: 50 });
  // One synchronous call: the worker cannot take any of it meanwhile.
  const batch = [...events, ...events];
  assert.equal(writer.write(batch), false);
  assert.equal(writer.stats().dropped, batch.length - 100);
  await writer.close();
  assert.equal(writer.stats().written, 100);
  assert.deepEqual(
    storedSerials(path),
    batch.slice(0, 100).map((e) => e.event.serial),
  );
});

test('destroy() stops at once and counts what was queued as dropped', async () => {
  const events = capture('a-fork-tree');
  const writer = await StoreWriter.open(join(dir, 'destroy.db'), { batchEvents: 1_000_000 });
  writer.write(events);
  writer.destroy(new Error('shutting down'));
  writer.destroy();
  const s = writer.stats();
  assert.equal(s.dropped, events.length);
  assert.equal(s.lastError?.message, 'shutting down');
  await writer.flush();
  await writer.close();
});

test('a store that cannot be opened rejects open() with its StoreError', async () => {
  const foreign = join(dir, 'notes.txt');
  writeFileSync(foreign, 'not a database at all, but long enough to have a header '.repeat(20));
  const cases: [string, string][] = [
    [join(dir, 'missing', 'x.db'), 'ERR_STORE_ACCESS'],
    [foreign, 'ERR_STORE_FOREIGN'],
    [dir, 'ERR_STORE_ACCESS'],
  ];
  for (const [path, code] of cases) {
    await assert.rejects(
      StoreWriter.open(path),
      (err: unknown) => err instanceof StoreError && err.code === code && err.message.includes(path),
      path,
    );
  }
});
