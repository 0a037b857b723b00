/**
 * The event store on real SQLite files in a temp dir: searches checked
 * against a model that reads the facts the events were made from, retention,
 * schema migration, and databases that are not (or no longer) what contid
 * expects.
 */
import assert from 'node:assert/strict';
import {
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { prngInt } from '../../test/support/prng.js';
import { randomChains, randomEvents, type EventSpec } from '../../test/support/store-events.js';
import { StoreError } from './errors.js';
import { isJsonRowIssue, JsonRowAdapter } from './json-row.js';
import type { SearchQuery } from './query.js';
import type { StoreRow } from './row.js';
import { SCHEMA_VERSION } from './schema.js';
import { EventStore } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'contid-store-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});
let n = 0;
function freshPath(): string {
  return join(dir, `s${++n}.db`);
}

function rowsOf(specs: readonly EventSpec[]): StoreRow[] {
  const adapter = new JsonRowAdapter();
  return specs.map((s, i) => {
    const row = adapter.row(s.json, i + 1);
    assert.ok(!isJsonRowIssue(row), isJsonRowIssue(row) ? row.message : '');
    return row;
  });
}

function serials(store: EventStore, q: SearchQuery): number[] {
  return [...store.search(q)].map((e) => EventStore.decode(e).event.serial);
}

/** The model: which events a query selects, read from the facts the events were made of. */
function expected(specs: readonly EventSpec[], q: SearchQuery): number[] {
  const ids = (chain: string, exact: boolean): string[] => {
    const all = chain.split(',^');
    return exact ? all.slice(0, 1) : all;
  };
  return specs
    .filter((s) => {
      if (q.contids !== undefined && q.contids.length > 0) {
        const exact = q.exact === true;
        const mine = [s.chain, ...s.refs].flatMap((c) => (c === null ? [] : ids(c, exact)));
        const hit = q.contids.some((c) => (c === 'unset' ? s.chain === null : mine.includes(c)));
        if (!hit) return false;
      }
      if (q.sinceMs !== undefined && s.timeMs < q.sinceMs) return false;
      if (q.untilMs !== undefined && s.timeMs > q.untilMs) return false;
      if (q.pids?.length && !q.pids.includes(s.pid)) return false;
      if (q.ppids?.length && !q.ppids.includes(s.ppid)) return false;
      if (q.exes?.length && !q.exes.some((x) => (x.includes('/') ? s.exe === x : s.exe.endsWith(`/${x}`)))) {
        return false;
      }
      if (q.syscalls?.length && !q.syscalls.includes(s.syscall)) return false;
      if (q.keys?.length && !q.keys.some((k) => s.keys.includes(k))) return false;
      if (q.types?.length && !q.types.some((t) => s.types.includes(t))) return false;
      if (q.success !== undefined && s.success !== q.success) return false;
      return true;
    })
    .map((s) => s.serial)
    .slice(0, q.limit ?? Infinity);
}

function randomQuery(
  next: (n: number) => number,
  chains: readonly string[],
  specs: readonly EventSpec[],
): SearchQuery {
  const q: Record<string, unknown> = {};
  const ids = [...new Set(chains.flatMap((c) => c.split(',^')))];
  if (next(3) > 0) {
    const pick = () => (next(8) === 0 ? ['unknown', 'unset', '999999'][next(3)]! : ids[next(ids.length)]!);
    q.contids = next(4) === 0 ? [pick(), pick()] : [pick()];
    q.exact = next(3) === 0;
  }
  const t = (): number => specs[next(specs.length)]!.timeMs;
  if (next(2) === 0) q.sinceMs = t();
  if (next(3) === 0) q.untilMs = t();
  if (next(6) === 0) q.pids = [100 + next(50)];
  if (next(8) === 0) q.ppids = [100 + next(50), 100 + next(50)];
  if (next(5) === 0) q.exes = [['/usr/bin/true', 'busybox', 'nginx', '/bin/crun'][next(4)]!];
  if (next(4) === 0) q.syscalls = [['execve', 'openat', 'clone', 'exit_group'][next(4)]!];
  if (next(5) === 0) q.keys = [['k1', 'k2', 'exec', 'nokey'][next(4)]!];
  if (next(5) === 0) q.types = [['EXECVE', 'CONTAINER_OP', 'CONTID_FORGERY', 'PROCTITLE', 'PATH'][next(5)]!];
  if (next(5) === 0) q.success = next(2) === 0;
  if (next(10) === 0) q.limit = 1 + next(20);
  return q;
}

test('search agrees with the model on 400 random queries over nested containers, the host and unknown', () => {
  const chains = randomChains(7, 12);
  const specs = randomEvents(11, { count: 3000, chains, startMs: 1_795_000_000_000 });
  const store = EventStore.open(freshPath());
  // In several transactions, as the writer sends them.
  const rows = rowsOf(specs);
  for (let i = 0; i < rows.length; i += 700) store.ingest(rows.slice(i, i + 700));
  const next = prngInt(3);
  let nonEmpty = 0;
  for (let i = 0; i < 400; i++) {
    const q = randomQuery(next, chains, specs);
    const want = expected(specs, q);
    if (want.length > 0) nonEmpty++;
    assert.deepEqual(serials(store, q), want, JSON.stringify(q));
  }
  assert.ok(nonEmpty > 200, `most queries should match something (${nonEmpty})`);
  store.close();
});

test('a parent ID finds its nested containers and --exact only itself', () => {
  const chains = ['2', '5,^2', '4,^5,^2', '9'];
  const specs = randomEvents(5, { count: 400, chains, startMs: 1_795_000_000_000 });
  const store = EventStore.open(freshPath());
  store.ingest(rowsOf(specs));
  const own = (c: string): EventSpec[] => specs.filter((s) => s.chain === c);
  const found = new Set(serials(store, { contids: ['2'] }));
  for (const c of ['2', '5,^2', '4,^5,^2']) for (const s of own(c)) assert.ok(found.has(s.serial), c);
  for (const s of own('9'))
    if (!s.refs.some((r) => r.split(',^').includes('2'))) assert.ok(!found.has(s.serial));
  const exact = new Set(serials(store, { contids: ['2'], exact: true }));
  for (const s of own('5,^2')) {
    if (!s.refs.some((r) => r.startsWith('2'))) assert.ok(!exact.has(s.serial), 'nested event with --exact');
  }
  assert.deepEqual(
    serials(store, { contids: ['unknown'] }),
    specs.filter((s) => s.chain === 'unknown').map((s) => s.serial),
  );
  store.close();
});

test('retention by age keeps the events within the age of the newest', () => {
  const specs = randomEvents(21, { count: 2000, chains: ['7', '8,^7'], startMs: 1_795_000_000_000 });
  const path = freshPath();
  const maxAgeMs = 10 * 60_000;
  const store = EventStore.open(path, { maxAgeMs });
  store.ingest(rowsOf(specs));
  const newest = Math.max(...specs.map((s) => s.timeMs));
  const result = store.retain();
  const kept = specs.filter((s) => s.timeMs >= newest - maxAgeMs).map((s) => s.serial);
  assert.equal(result.deletedByAge, specs.length - kept.length);
  assert.ok(result.deletedByAge > 0);
  assert.deepEqual(serials(store, {}), kept);
  // Per-container counts and first events follow.
  const chain = store.chains().find((c) => c.chain === '7')!;
  const left = specs.filter((s) => s.chain === '7' && s.timeMs >= newest - maxAgeMs);
  assert.equal(chain.events, left.length);
  assert.equal(chain.firstMs, Math.min(...left.map((s) => s.timeMs)));
  assert.deepEqual(
    serials(store, { contids: ['7'], exact: true, types: ['CONTAINER_OP'] }),
    expected(
      specs.filter((s) => s.timeMs >= newest - maxAgeMs),
      { contids: ['7'], exact: true, types: ['CONTAINER_OP'] },
    ),
  );
  store.close();
});

test('retention by size keeps the file under the bound and the newest events', () => {
  const specs = randomEvents(31, { count: 12_000, chains: randomChains(2, 6), startMs: 1_795_000_000_000 });
  const path = freshPath();
  const maxBytes = 2 * 1024 * 1024;
  const store = EventStore.open(path, { maxBytes });
  const rows = rowsOf(specs);
  let deleted = 0;
  for (let i = 0; i < rows.length; i += 1000) {
    store.ingest(rows.slice(i, i + 1000));
    deleted += store.retain().deletedBySize;
    assert.ok(store.info().usedBytes <= maxBytes, `used ${store.info().usedBytes} after ${i + 1000} events`);
  }
  assert.ok(deleted > 0, 'the bound was reached');
  const left = serials(store, {});
  assert.equal(left.length, specs.length - deleted);
  // The oldest went: what is left is the end of the stream.
  assert.deepEqual(
    left,
    specs.slice(deleted).map((s) => s.serial),
  );
  store.close();
  assert.ok(statSync(path).size <= maxBytes, `file ${statSync(path).size} bytes`);
});

test('a version 1 store is migrated: the label operations and process spans are derived from its events', () => {
  const chains = ['30', '31,^30'];
  const specs = randomEvents(41, { count: 1500, chains, startMs: 1_795_000_000_000 });
  const path = freshPath();
  const store = EventStore.open(path);
  store.ingest(rowsOf(specs));
  const ops = store.ops();
  const procs = store.processes(
    store.chains().map((c) => c.id),
    null,
  );
  const found = serials(store, { contids: ['30'] });
  store.close();
  assert.ok(ops.length > 0 && procs.length > 0);
  // What version 1 was: no ops or procs tables.
  const db = new Database(path);
  db.exec('DROP TABLE ops; DROP TABLE procs;');
  db.pragma('user_version = 1');
  db.close();
  assert.throws(
    () => EventStore.open(path, { readOnly: true }),
    (err: unknown) =>
      err instanceof StoreError &&
      err.code === 'ERR_STORE_TOO_NEW' &&
      /contid store migrate/.test(err.message),
  );
  const migrated = EventStore.open(path);
  assert.equal(migrated.info().schemaVersion, SCHEMA_VERSION);
  assert.deepEqual(migrated.ops(), ops);
  assert.deepEqual(
    migrated.processes(
      migrated.chains().map((c) => c.id),
      null,
    ),
    procs,
  );
  assert.deepEqual(serials(migrated, { contids: ['30'] }), found);
  migrated.close();
});

test('a store of a newer schema is refused, not written', () => {
  const path = freshPath();
  EventStore.open(path).close();
  const db = new Database(path);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  const before = readFileSync(path);
  for (const readOnly of [false, true]) {
    assert.throws(
      () => EventStore.open(path, { readOnly }),
      (err: unknown) =>
        err instanceof StoreError &&
        err.code === 'ERR_STORE_TOO_NEW' &&
        err.message.includes(`version ${SCHEMA_VERSION + 1}`),
    );
  }
  assert.deepEqual(readFileSync(path), before);
});

test('a file that is not a contid store is refused with a clear error and left alone', () => {
  const text = freshPath();
  writeFileSync(text, 'type=SYSCALL msg=audit(1.000:1): this is an audit log, not a database\n'.repeat(100));
  const foreign = freshPath();
  const db = new Database(foreign);
  db.exec("CREATE TABLE songs (title TEXT); INSERT INTO songs VALUES ('x');");
  db.close();
  for (const path of [text, foreign]) {
    const before = readFileSync(path);
    for (const readOnly of [false, true]) {
      assert.throws(
        () => EventStore.open(path, { readOnly }),
        (err: unknown) =>
          err instanceof StoreError && err.code === 'ERR_STORE_FOREIGN' && err.message.includes(path),
      );
    }
    assert.deepEqual(readFileSync(path), before);
  }
  assert.throws(
    () => EventStore.open(join(dir, 'missing.db'), { readOnly: true }),
    (err: unknown) => err instanceof StoreError && err.code === 'ERR_STORE_NOT_FOUND',
  );
  assert.throws(
    () => EventStore.open(join(dir, 'no', 'such', 'dir.db')),
    (err: unknown) => err instanceof StoreError && err.code === 'ERR_STORE_ACCESS',
  );
});

test('a damaged store fails with ERR_STORE_CORRUPT, on open or on read, and never crashes', () => {
  const specs = randomEvents(51, { count: 3000, chains: ['60'], startMs: 1_795_000_000_000 });
  const path = freshPath();
  const store = EventStore.open(path);
  store.ingest(rowsOf(specs));
  store.close();
  // Overwrite the middle half of the file (the header and schema pages stay intact).
  const pages = statSync(path).size / 4096;
  const fd = openSync(path, 'r+');
  const junk = Buffer.alloc(4096, 0xa5);
  for (let p = Math.floor(pages / 4); p < Math.floor((pages * 3) / 4); p++)
    writeSync(fd, junk, 0, 4096, p * 4096);
  closeSync(fd);
  let code: string | null = null;
  try {
    const damaged = EventStore.open(path, { readOnly: true });
    try {
      for (const e of damaged.search({ contids: ['60'] })) EventStore.decode(e);
      damaged.report({ sinceMs: null, untilMs: null }, null);
    } finally {
      damaged.close();
    }
  } catch (err) {
    assert.ok(err instanceof Error);
    code = (err as { code?: string }).code ?? null;
  }
  assert.ok(code === 'ERR_STORE_CORRUPT' || code === 'ERR_STORE_PAYLOAD', `got ${String(code)}`);
});

test("the store is a WAL database marked as contid's: a reader sees each committed batch while the writer keeps it open", () => {
  const specs = randomEvents(41, { count: 600, chains: ['7', '8,^7'], startMs: 1_795_000_000_000 });
  const rows = rowsOf(specs);
  const path = freshPath();
  const writer = EventStore.open(path);
  writer.ingest(rows.slice(0, 300));
  const db = new Database(path, { readonly: true });
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  assert.equal(db.pragma('application_id', { simple: true }), 0x636e7464);
  db.close();
  const reader = EventStore.open(path, { readOnly: true });
  assert.deepEqual(
    serials(reader, {}),
    specs.slice(0, 300).map((s) => s.serial),
  );
  writer.ingest(rows.slice(300));
  assert.deepEqual(serials(reader, { contids: ['7'] }), expected(specs, { contids: ['7'] }));
  reader.close();
  writer.close();
});
