import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isIssue, parseLine, RecordParser } from '../parse/parser.js';
import { prng } from '../../test/support/prng.js';
import type { AuditRecord } from '../parse/record.js';
import { EventAssembler } from './assembler.js';
import { RecentEvents } from './recent-events.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function rec(line: string): AuditRecord {
  const r = parseLine(line, 1);
  if (isIssue(r)) throw new Error(r.message);
  return r;
}

test('recent events recognise a record with the same type and text, enriched part included', () => {
  const recent = new RecentEvents(8);
  recent.remember(1, 1000, [
    rec('type=SYSCALL msg=audit(1.000:1): a=1 uid=0\x1dUID="root"'),
    rec('type=CWD msg=audit(1.000:1): cwd="/"'),
  ]);
  assert.equal(recent.has(1), true);
  assert.equal(recent.timeOf(1), 1000);
  assert.equal(recent.isDuplicate(1, rec('type=CWD msg=audit(1.000:1): cwd="/"')), true);
  assert.equal(recent.isDuplicate(1, rec('type=SYSCALL msg=audit(1.000:1): a=1 uid=0\x1dUID="root"')), true);
  // Same text, other type; same body, other enriched part; other body.
  assert.equal(recent.isDuplicate(1, rec('type=PATH msg=audit(1.000:1): cwd="/"')), false);
  assert.equal(recent.isDuplicate(1, rec('type=SYSCALL msg=audit(1.000:1): a=1 uid=0\x1dUID="adm"')), false);
  assert.equal(recent.isDuplicate(1, rec('type=SYSCALL msg=audit(1.000:1): a=1 uid=0')), false);
  assert.equal(recent.isDuplicate(1, rec('type=CWD msg=audit(1.000:1): cwd="/tmp"')), false);
  assert.equal(recent.isDuplicate(2, rec('type=CWD msg=audit(1.000:2): cwd="/"')), false);
  assert.equal(recent.has(2), false);
  assert.equal(recent.timeOf(2), undefined);
});

test('recent events recognise a record under a node key, each record parsed from its own buffer', () => {
  const recent = new RecentEvents(8);
  const key = 'n\u00001.000:1';
  const line = 'node=n type=SYSCALL msg=audit(1.000:1): a=1\x1dARCH=x86_64';
  recent.remember(key, 1000, [rec(line)]);
  assert.equal(recent.isDuplicate(key, rec(line)), true);
  assert.equal(recent.isDuplicate(key, rec(line.replace('\x1dARCH=x86_64', ''))), false);
  assert.equal(recent.isDuplicate(key, rec(line.replace('a=1', 'a=2'))), false);
});

test('recent events keep every event remembered under one key', () => {
  const recent = new RecentEvents(8);
  recent.remember(5, 1000, [rec('type=SYSCALL msg=audit(1.000:5): a=1')]);
  recent.remember(6, 1000, [rec('type=SYSCALL msg=audit(1.000:6): a=1')]);
  // A late event with the same key: both it and the first are remembered.
  recent.remember(5, 1000, [rec('type=PATH msg=audit(1.000:5): item=0')]);
  assert.equal(recent.isDuplicate(5, rec('type=SYSCALL msg=audit(1.000:5): a=1')), true);
  assert.equal(recent.isDuplicate(5, rec('type=PATH msg=audit(1.000:5): item=0')), true);
  assert.equal(recent.size, 3);
});

test('recent events forget the oldest events past the bound on events', () => {
  const recent = new RecentEvents(4);
  for (let s = 1; s <= 6; s++) recent.remember(s, 1000, [rec(`type=SYSCALL msg=audit(1.000:${s}): a=${s}`)]);
  assert.equal(recent.size, 4);
  assert.equal(recent.has(1), false);
  assert.equal(recent.has(2), false);
  assert.equal(recent.has(3), true);
  assert.equal(recent.isDuplicate(2, rec('type=SYSCALL msg=audit(1.000:2): a=2')), false);
  assert.equal(recent.isDuplicate(6, rec('type=SYSCALL msg=audit(1.000:6): a=6')), true);
  // A key remembered again stays while its newer event is in the window.
  const again = new RecentEvents(2);
  again.remember(1, 1000, [rec('type=SYSCALL msg=audit(1.000:1): a=1')]);
  again.remember(1, 1000, [rec('type=PATH msg=audit(1.000:1): item=0')]);
  again.remember(2, 1000, [rec('type=SYSCALL msg=audit(1.000:2): a=1')]);
  assert.equal(again.has(1), true);
  assert.equal(again.isDuplicate(1, rec('type=PATH msg=audit(1.000:1): item=0')), true);
  assert.equal(again.isDuplicate(1, rec('type=SYSCALL msg=audit(1.000:1): a=1')), false);
});

test('recent events grow their record ring for large events, up to the bound on records', () => {
  const recent = new RecentEvents(2, 64);
  const big = Array.from({ length: 40 }, (_, i) => rec(`type=PATH msg=audit(1.000:1): item=${i}`));
  recent.remember(1, 1000, big);
  recent.remember(2, 1000, [rec('type=SYSCALL msg=audit(1.000:2): a=1')]);
  for (let i = 0; i < 40; i++) {
    assert.equal(recent.isDuplicate(1, rec(`type=PATH msg=audit(1.000:1): item=${i}`)), true, `item ${i}`);
  }
  // 40 more records do not fit beside the first 40 in 64: the oldest event goes first.
  recent.remember(3, 1000, big.slice(0, 30));
  assert.equal(recent.has(1), false);
  assert.equal(recent.isDuplicate(2, rec('type=SYSCALL msg=audit(1.000:2): a=1')), true);
  assert.equal(recent.isDuplicate(3, rec('type=PATH msg=audit(1.000:1): item=29')), true);
});

test('recent events copy records into an arena that grows, up to the bound on bytes', () => {
  const path = (s: number, i: number): AuditRecord =>
    rec(`type=PATH msg=audit(1.000:${s}): item=${i} name="${'x'.repeat(40)}"\x1dOUID="root"`);
  // Four events of 40 records of about 70 bytes: more than the arena's first 4 KiB.
  const growing = new RecentEvents(4, 1024, 1 << 16);
  for (let s = 1; s <= 4; s++)
    growing.remember(
      s,
      1000,
      Array.from({ length: 40 }, (_, i) => path(s, i)),
    );
  assert.equal(growing.size, 4);
  for (let s = 1; s <= 4; s++)
    for (let i = 0; i < 40; i++) assert.equal(growing.isDuplicate(s, path(s, i)), true, `${s} ${i}`);
  const recent = new RecentEvents(64, 1024, 1024);
  for (let s = 1; s <= 4; s++) recent.remember(s, 1000, [path(s, 0), path(s, 1)]);
  // Past 1,024 bytes the oldest events go.
  for (let s = 5; s <= 20; s++) recent.remember(s, 1000, [path(s, 0), path(s, 1)]);
  assert.equal(recent.has(1), false);
  assert.equal(recent.isDuplicate(20, path(20, 1)), true);
  assert.ok(recent.size < 16);
  // One event larger than the arena: what fits is kept, the rest matches nothing.
  const big = Array.from({ length: 30 }, (_, i) => path(99, i));
  recent.remember(99, 1000, big);
  assert.equal(recent.isDuplicate(99, path(99, 0)), true);
  assert.equal(recent.isDuplicate(99, path(99, 29)), false);
  assert.equal(recent.isDuplicate(99, path(99, 1)), true);
});

test('the assembler lets go of a closed event and its records, and still spots their duplicates', async () => {
  const events: number[] = [];
  const a = new EventAssembler({ onEvent: (e) => events.push(e.serial) });
  let refs: WeakRef<AuditRecord>[] = [];
  (() => {
    const records = [
      rec('type=SYSCALL msg=audit(1.000:1): a=1'),
      rec('type=CWD msg=audit(1.000:1): cwd="/"'),
      rec('type=EOE msg=audit(1.000:1): '),
    ];
    refs = records.map((r) => new WeakRef(r));
    // An event still open when the first one closes: the open-event queue's head stays behind it.
    a.push(rec('type=SYSCALL msg=audit(1.000:2): a=1'));
    for (const r of records) a.push(r);
    for (let s = 3; s < 40; s++) {
      a.push(rec(`type=SYSCALL msg=audit(1.000:${s}): a=1`));
      a.push(rec(`type=EOE msg=audit(1.000:${s}): `));
    }
    a.push(rec('type=EOE msg=audit(1.000:2): '));
  })();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  assert.deepEqual(
    refs.map((r) => r.deref()),
    [undefined, undefined, undefined],
  );
  a.push(rec('type=CWD msg=audit(1.000:1): cwd="/"'));
  assert.equal(a.stats().duplicates, 1);
  assert.equal(events.length, 39);
});

/**
 * Events whose records interleave (as several CPUs write them), parsed from
 * randomly split input, remembered as each one's last record arrives. A
 * duplicate verdict must name a record truly remembered under that key;
 * with room enough, every record of the last `maxEvents` events is found.
 */
function interleaved(seed: number, maxEvents: number, maxBytes: number): void {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const types = ['SYSCALL', 'CWD', 'PATH', 'PROCTITLE'];
  const bodies = ['a=1', 'a=2 b="x y"', 'name="/bin/sh" inode=3', 'proctitle=2F62696E', 'x=1 y=2 z=3'];
  const enriched = ['', '\x1dUID="root"', '\x1dARCH=x86_64 SYSCALL=clone'];
  const events = Array.from({ length: 400 }, (_, i) => ({
    serial: i + 1,
    lines: Array.from(
      { length: 1 + Math.floor(rnd() * 5) },
      () => `type=${pick(types)} msg=audit(1.000:${i + 1}): ${pick(bodies)}${pick(enriched)}`,
    ),
  }));
  const left = new Map(events.map((e) => [e.serial, e.lines.length]));
  // Up to four events open at once; each step writes the next line of one of them.
  const lines: string[] = [];
  const open: { serial: number; lines: string[] }[] = [];
  for (let next = 0; next < events.length || open.length > 0;) {
    while (open.length < 1 + Math.floor(rnd() * 4) && next < events.length)
      open.push({ serial: events[next]!.serial, lines: [...events[next++]!.lines] });
    const k = Math.floor(rnd() * open.length);
    lines.push(open[k]!.lines.shift()!);
    if (open[k]!.lines.length === 0) open.splice(k, 1);
  }
  const text = Buffer.from(`${lines.join('\n')}\n`);
  const recent = new RecentEvents(maxEvents, maxEvents * 64, maxBytes);
  const remembered: { serial: number; records: AuditRecord[] }[] = [];
  const gathering = new Map<number, AuditRecord[]>();
  const same = (a: AuditRecord, b: AuditRecord): boolean =>
    a.type === b.type && a.body === b.body && a.enriched === b.enriched;
  const parser = new RecordParser({
    onIssue: (i) => assert.fail(i.message),
    onRecord: (r) => {
      // A query before each record: a copy of a record remembered lately, or one never seen.
      const past =
        remembered.length > 0
          ? remembered[Math.max(0, remembered.length - 1 - Math.floor(rnd() * 2 * maxEvents))]!
          : undefined;
      if (past !== undefined) {
        const q =
          rnd() < 0.8 ? pick(past.records) : rec(`type=CWD msg=audit(1.000:${past.serial}): never="seen"`);
        const got = recent.isDuplicate(past.serial, q);
        const truly = past.records.some((x) => same(x, q));
        if (got) assert.ok(truly, `false duplicate, seed ${seed}`);
        const age = remembered.length - remembered.indexOf(past);
        if (maxBytes >= 1 << 20 && age <= maxEvents)
          assert.equal(got, truly, `missed duplicate, seed ${seed}`);
      }
      const list = gathering.get(r.serial) ?? [];
      list.push(r);
      gathering.set(r.serial, list);
      if (list.length === left.get(r.serial)) {
        gathering.delete(r.serial);
        recent.remember(r.serial, r.timeMs, list);
        remembered.push({ serial: r.serial, records: list });
      }
    },
  });
  for (let i = 0; i < text.length;) {
    const n = 1 + Math.floor(rnd() * 2000);
    parser.push(text.subarray(i, i + n));
    i += n;
  }
  parser.end();
  assert.equal(remembered.length, events.length);
}

test('recent events find the duplicates of interleaved events, and only those, however the input is split', () => {
  for (let seed = 1; seed <= 30; seed++) {
    interleaved(seed, 64, 1 << 20);
    // A small arena: laps, growth and forgetting by bytes.
    interleaved(seed, 64, 2048);
  }
});

test('recent events: a key with many events answers as the plain walk over its newest 64 records does', () => {
  // Late records of one large event become events of their own under its
  // key; past a few, the key keeps its newest records' hashes in a ring
  // that answers "no duplicate" at once. Checked against the rule written
  // plainly: the newest events first, each one's records in order, 64
  // records compared at most.
  const pool = Array.from(
    { length: 90 },
    (_, i) => `type=PROCTITLE msg=audit(1.000:1): proctitle=${4096 + i}`,
  );
  for (let seed = 1; seed <= 40; seed++) {
    const rnd = prng(seed);
    const pick = (n: number): number => Math.floor(rnd() * n);
    const recent = new RecentEvents(4096);
    const events = new Map<number, string[][]>();
    const remember = (key: number, lines: string[]): void => {
      recent.remember(key, 1000, lines.map(rec));
      const list = events.get(key) ?? [];
      list.push(lines);
      events.set(key, list);
    };
    const expected = (key: number, line: string): boolean => {
      let checked = 0;
      for (const lines of [...(events.get(key) ?? [])].reverse()) {
        for (const l of lines) {
          if (checked++ >= 64) return false;
          if (l === line) return true;
        }
      }
      return false;
    };
    for (let step = 0; step < 600; step++) {
      const key = pick(8) === 0 ? 2 : 1;
      if (pick(20) === 0) {
        // A large event: more records than are compared.
        remember(
          key,
          Array.from({ length: 1 + pick(100) }, () => pool[pick(pool.length)]!),
        );
        continue;
      }
      const line = pool[pick(pool.length)]!;
      const got = recent.isDuplicate(key, rec(line));
      assert.equal(got, expected(key, line), `seed ${seed}, step ${step}`);
      if (!got) remember(key, [line]);
    }
  }
});
