/**
 * Containers' names and metadata in the event store: the migration of a
 * store made by the version-2 contid (testdata/store/v2.db, which kept them
 * only in the records' text), stores filled at version 3 by both row
 * adapters, and what `contid ps` makes of them.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { encodeMarker, MARKER_TYPE, type MarkerBody } from '../marker/format.js';
import type { Keyring } from '../marker/keyring.js';
import type { LabelledEvent } from '../policy/labeller.js';
import { ReplayPipeline } from '../pipeline/replay.js';
import { StoreError } from './errors.js';
import { isJsonRowIssue, JsonRowAdapter } from './json-row.js';
import { LabelledRowAdapter } from './labelled-row.js';
import { containerViews, type ContainerView } from './ps.js';
import type { StoreRow } from './row.js';
import { SCHEMA_VERSION } from './schema.js';
import { EventStore } from './store.js';

const FIXTURES = new URL('../../../testdata/store/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'contid-names-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});
let n = 0;
function freshPath(): string {
  return join(dir, `s${++n}.db`);
}

/** `contid ps -a` of a store, as views. */
function views(store: EventStore, atMs: number | null = null): ContainerView[] {
  const chains = atMs === null ? store.chains() : store.chainsAt(atMs);
  return containerViews({ chains, ops: store.ops(atMs), processes: new Map(), all: true });
}

function described(vs: readonly ContainerView[]): [string, string | null, Record<string, string>][] {
  return vs.map((v) => [v.chain, v.name, { ...v.meta }]);
}

/** What the fixture's events say (testdata/store/README.md). */
const FIXTURE_CONTAINERS: [string, string | null, Record<string, string>][] = [
  ['42', 'web', { image: 'nginx:1.27', note: 'two words' }],
  ['43', 'db \u201cprimary\u201d\n2', {}],
  ['44', null, {}],
];

test('a version 2 store is migrated: the names and metadata come from the records it kept', () => {
  const path = freshPath();
  copyFileSync(join(FIXTURES, 'v2.db'), path);
  const before = new Database(path, { readonly: true });
  assert.equal(before.pragma('user_version', { simple: true }), 2);
  const bodies = before.prepare('SELECT body FROM ops ORDER BY id').pluck().all();
  before.close();
  assert.throws(
    () => EventStore.open(path, { readOnly: true }),
    (err: unknown) =>
      err instanceof StoreError &&
      err.code === 'ERR_STORE_TOO_NEW' &&
      err.message.includes('its schema is version 2') &&
      err.message.includes('contid store migrate'),
  );
  const store = EventStore.open(path);
  assert.equal(store.info().schemaVersion, SCHEMA_VERSION);
  const ops = store.ops();
  // The records' text is kept as it was.
  assert.deepEqual(
    ops.map((o) => o.body),
    bodies,
  );
  assert.deepEqual(
    ops.map((o) => [o.contid, o.res, o.name, o.meta]),
    [
      ['42', 1, 'web', { image: 'nginx:1.27', note: 'two words' }],
      ['43', 1, 'db \u201cprimary\u201d\n2', null],
      ['44', 1, null, null],
      ['42', 0, 'intruder', null],
    ],
  );
  // The refused set that names 42 otherwise changes nothing.
  assert.deepEqual(described(views(store)), FIXTURE_CONTAINERS);
  // --at: before 43's set, only 42 was there.
  assert.deepEqual(described(views(store, 1_795_886_100_500)), FIXTURE_CONTAINERS.slice(0, 1));
  // New events are stored with their descriptions.
  store.ingest(rowsOf([setEvent(200, '45', 'new one', { a: 'b' })]));
  assert.deepEqual(store.ops().at(-1)?.name, 'new one');
  store.close();
  const reader = EventStore.open(path, { readOnly: true });
  assert.deepEqual(described(views(reader)).at(-1), ['45', 'new one', { a: 'b' }]);
  reader.close();
});

test('a version 1 store is migrated through version 2 to 3, descriptions included', () => {
  const path = freshPath();
  copyFileSync(join(FIXTURES, 'v2.db'), path);
  EventStore.open(path).close();
  // What version 1 was: no ops or procs tables.
  const db = new Database(path);
  db.exec('DROP TABLE ops; DROP TABLE procs;');
  db.pragma('user_version = 1');
  db.close();
  const store = EventStore.open(path);
  assert.equal(store.info().schemaVersion, SCHEMA_VERSION);
  assert.deepEqual(described(views(store)), FIXTURE_CONTAINERS);
  store.close();
});

/** JSON lines of contid's output, to rows. */
function rowsOf(lines: readonly string[]): StoreRow[] {
  const adapter = new JsonRowAdapter();
  return lines.map((line, i) => {
    const row = adapter.row(line, i + 1);
    assert.ok(!isJsonRowIssue(row), isJsonRowIssue(row) ? row.message : '');
    return row;
  });
}

/** A set's event in contid's JSON, its CONTAINER_OP written as the labeller writes it. */
function setEvent(serial: number, contid: string, name: string, meta: Record<string, string>): string {
  const untrusted = (s: string) =>
    /^[\x21-\x7e]*$/.test(s) && !s.includes('"')
      ? `"${s}"`
      : Buffer.from(s, 'utf8').toString('hex').toUpperCase();
  const fields: Record<string, string> = {
    op: 'set',
    opid: String(serial),
    contid,
    'old-contid': '-1',
    pid: '1',
    uid: '0',
    auid: '0',
    exe: '"/usr/bin/crun"',
    name: untrusted(name),
    ...Object.fromEntries(Object.entries(meta).map(([k, v]) => [`meta.${k}`, untrusted(v)])),
    res: '1',
  };
  return JSON.stringify({
    time: `1795886200.${String(serial % 1000).padStart(3, '0')}`,
    serial,
    node: null,
    contid: null,
    records: [
      { type: 'UNKNOWN[2942]', fields: { pid: '500', msg: "'contid-marker'" } },
      { type: 'CONTAINER_OP', fields },
    ],
  });
}

const SECRET = Buffer.alloc(32, 5);
const KEYRING: Keyring = new Map([['S1', { startId: 'S1', daemonPid: 500, secret: SECRET }]]);
const ORCH = { pid: 100, uid: 0, auid: 4294967295, exe: '/usr/bin/runc', privileged: true };

/** A log in which the daemon labels three containers, with hostile names; text. */
function describedLog(): string {
  let serial = 0;
  let seq = 0;
  const lines: string[] = [];
  const stamp = () => `msg=audit(1795886300.${String(++serial).padStart(3, '0')}:${serial})`;
  const sys = (pid: number, ppid: number, nr: number, exit = 0) => {
    const s = stamp();
    lines.push(
      `type=SYSCALL ${s}: arch=c000003e syscall=${nr} success=yes exit=${exit} a0=1200011 a1=0 a2=0 a3=0 ` +
        `items=0 ppid=${ppid} pid=${pid} auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 ` +
        `fsgid=0 tty=(none) ses=4294967295 comm="sh" exe="/bin/sh" key=(null)`,
      `type=EOE ${s}: `,
    );
  };
  const marker = (body: MarkerBody) => {
    const text = encodeMarker({ start: 'S1', seq: ++seq, body }, SECRET);
    lines.push(
      `type=UNKNOWN[${MARKER_TYPE}] ${stamp()}: pid=500 uid=0 auid=4294967295 ses=4294967295 msg='${text}'`,
    );
  };
  marker({ op: 'start', daemonPid: 500 });
  sys(100, 1, 39);
  NAMES.forEach(([contid, name, meta], i) => {
    const pid = 1001 + i;
    sys(100, 1, 56, pid);
    sys(pid, 100, 39);
    marker({ op: 'set', pid, contid, caller: ORCH, name, ...(Object.keys(meta).length > 0 ? { meta } : {}) });
    sys(pid, 100, 59);
  });
  return `${lines.join('\n')}\n`;
}

const NAMES: [string, string, Record<string, string>][] = [
  ['7', 'web', { image: 'nginx:1.27' }],
  ['8', `it's "db" – ünï 🐳 x=y`, { note: 'two words', q: '"' }],
  ['9', "' pid=1 msg=' res=0\u2028", {}],
];

test('a replay gives the names of the log: JSON imported, and stored as replay --store stores them', () => {
  const log = describedLog();
  const labelled: LabelledEvent[] = [];
  const json = new ReplayPipeline({
    format: 'json',
    keyring: KEYRING,
    onLabelled: (le) => labelled.push(le),
  });
  const lines = Buffer.concat([json.push(log), json.end()])
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '');
  // Each CONTAINER_OP is one record: no line of the text output comes from a name.
  const text = new ReplayPipeline({ format: 'text', keyring: KEYRING });
  const out = Buffer.concat([text.push(log), text.end()]).toString('utf8');
  assert.equal(out.split('\n').filter((l) => l.startsWith('type=CONTAINER_OP ')).length, NAMES.length);
  assert.equal(out.split('\n').filter((l) => l !== '' && !/^(node=\S+ )?type=/.test(l)).length, 0);

  const want = NAMES.map(([contid, name, meta]) => [contid, name, meta]);
  const imported = EventStore.open(freshPath());
  imported.ingest(rowsOf(lines));
  assert.deepEqual(described(views(imported)), want);
  imported.close();
  const adapter = new LabelledRowAdapter();
  const stored = EventStore.open(freshPath());
  stored.ingest(labelled.map((le) => adapter.row(le)));
  assert.deepEqual(described(views(stored)), want);
  stored.close();
});

test('a meta column that is not a JSON object of strings is reported as damage', () => {
  const path = freshPath();
  const store = EventStore.open(path);
  store.ingest(rowsOf([setEvent(300, '46', 'x', { a: 'b' })]));
  store.close();
  const db = new Database(path);
  db.prepare("UPDATE ops SET meta = '[1'").run();
  db.close();
  const reader = EventStore.open(path, { readOnly: true });
  assert.throws(
    () => reader.ops(),
    (err: unknown) =>
      err instanceof StoreError &&
      err.code === 'ERR_STORE_CORRUPT' &&
      /the metadata of operation 1 is not a JSON object of strings/.test(err.message),
  );
  reader.close();
});
