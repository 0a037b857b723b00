import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isIssue, parseLine } from '../parse/parser.js';
import type { AssemblerOptions } from './assembler.js';
import { EventAssembler } from './assembler.js';
import type { AuditEvent } from './event.js';
import { prngInt } from '../../test/support/prng.js';

function run(
  lines: string[],
  options: Partial<AssemblerOptions> = {},
): { events: AuditEvent[]; a: EventAssembler } {
  const events: AuditEvent[] = [];
  const a = new EventAssembler({ ...options, onEvent: (e) => events.push(e) });
  lines.forEach((l, i) => {
    const r = parseLine(l, i + 1);
    if (isIssue(r)) throw new Error(r.message);
    a.push(r);
  });
  a.end();
  return { events, a };
}

const summary = (events: AuditEvent[]): string[] =>
  events.map((e) => `${e.serial}:${e.records.map((r) => r.typeName).join(',')}:${e.closedBy}`);

test('assembler closes an event on EOE', () => {
  const { events } = run([
    'type=SYSCALL msg=audit(1.000:1): a=1',
    'type=CWD msg=audit(1.000:1): cwd="/"',
    'type=EOE msg=audit(1.000:1): ',
    'type=SYSCALL msg=audit(1.001:2): a=1',
  ]);
  assert.deepEqual(summary(events), ['1:SYSCALL,CWD:eoe', '2:SYSCALL:end']);
});

test('assembler groups interleaved records of concurrent events', () => {
  const { events } = run([
    'type=SYSCALL msg=audit(1.000:10): a=1',
    'type=SYSCALL msg=audit(1.000:11): a=2',
    'type=PATH msg=audit(1.000:10): item=0',
    'type=EOE msg=audit(1.000:11): ',
    'type=PATH msg=audit(1.000:10): item=1',
    'type=EOE msg=audit(1.000:10): ',
  ]);
  assert.deepEqual(summary(events), ['11:SYSCALL:eoe', '10:SYSCALL,PATH,PATH:eoe']);
});

test('assembler emits user messages at once as events by themselves', () => {
  const { events } = run([
    "type=USER_CMD msg=audit(1.000:5): pid=1 msg='x'",
    'type=SYSCALL msg=audit(1.000:6): a=1',
  ]);
  assert.deepEqual(summary(events), ['5:USER_CMD:standalone', '6:SYSCALL:end']);
});

test('assembler closes on PROCTITLE, the last record the kernel writes before EOE', () => {
  const { events, a } = run([
    'type=SYSCALL msg=audit(1.000:1): a=1',
    'type=PROCTITLE msg=audit(1.000:1): proctitle=6C73',
    'type=EOE msg=audit(1.000:1): ',
  ]);
  assert.deepEqual(summary(events), ['1:SYSCALL,PROCTITLE:proctitle']);
  assert.equal(a.stats().strayEoe, 1);
});

test('assembler times out events in event time, not wall time', () => {
  const { events, a } = run([
    'type=SYSCALL msg=audit(100.000:1): a=1',
    'type=SYSCALL msg=audit(101.000:2): a=1',
    'type=SYSCALL msg=audit(102.001:3): a=1',
    'type=PATH msg=audit(102.001:3): item=0',
  ]);
  assert.deepEqual(summary(events), ['1:SYSCALL:timeout', '2:SYSCALL:end', '3:SYSCALL,PATH:end']);
  assert.equal(a.stats().timedOut, 1);
});

test('assembler honours a configured timeout', () => {
  const { events } = run(
    ['type=SYSCALL msg=audit(100.000:1): a=1', 'type=SYSCALL msg=audit(100.600:2): a=1'],
    {
      timeoutMs: 500,
    },
  );
  assert.deepEqual(summary(events), ['1:SYSCALL:timeout', '2:SYSCALL:end']);
});

test('assembler drops and counts duplicate records', () => {
  const { events, a } = run([
    'type=SYSCALL msg=audit(1.000:1): a=1',
    'type=SYSCALL msg=audit(1.000:1): a=1',
    'type=EOE msg=audit(1.000:1): ',
    'type=SYSCALL msg=audit(1.000:1): a=1',
  ]);
  assert.deepEqual(summary(events), ['1:SYSCALL:eoe']);
  assert.equal(a.stats().duplicates, 2);
});

test('assembler emits a late record as its own event and counts it', () => {
  const { events, a } = run([
    'type=SYSCALL msg=audit(1.000:1): a=1',
    'type=EOE msg=audit(1.000:1): ',
    'type=PATH msg=audit(1.000:1): item=0',
  ]);
  assert.deepEqual(summary(events), ['1:SYSCALL:eoe', '1:PATH:end']);
  assert.equal(a.stats().late, 1);
});

test('assembler bounds the events in flight and counts early closes', () => {
  const lines: string[] = [];
  for (let i = 1; i <= 10; i++) lines.push(`type=SYSCALL msg=audit(1.000:${i}): a=1`);
  const { events, a } = run(lines, { maxInFlight: 4 });
  assert.equal(events.length, 10);
  assert.equal(a.stats().evictedAtCapacity, 6);
  assert.equal(a.stats().maxOpen, 5);
  assert.deepEqual(
    events.map((e) => e.serial),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  );
});

test('assembler keeps events of different nodes apart', () => {
  const { events } = run([
    'node=a type=SYSCALL msg=audit(1.000:1): a=1',
    'node=b type=SYSCALL msg=audit(1.000:1): a=2',
    'node=a type=EOE msg=audit(1.000:1): ',
  ]);
  assert.deepEqual(
    events.map((e) => `${e.node}:${e.records.length}`),
    ['a:1', 'b:1'],
  );
});

test('assembler estimates lost records from serial gaps and forgives late arrivals', () => {
  const { a } = run([
    'type=SYSCALL msg=audit(1.000:1): a=1',
    'type=SYSCALL msg=audit(1.000:5): a=1',
    'type=SYSCALL msg=audit(1.000:3): a=1',
    'type=DAEMON_START msg=audit(1.000:9000): op=start',
    'type=SYSCALL msg=audit(1.000:6): a=1',
  ]);
  // 2, 3 and 4 were missing when 5 arrived; 3 came late; DAEMON_* has auditd's own counter.
  assert.equal(a.stats().lostEstimate, 2);
});

/** `msg=audit(…)` for a time in ms and a serial. */
const at = (ms: number, serial: number): string =>
  `msg=audit(${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}:${serial})`;

/** Events of two records (SYSCALL, PATH) and no EOE, as logs of some kernels have them, from `ms` on. */
function pairs(first: number, count: number, ms: number, stepMs = 10): string[] {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const s = at(ms + i * stepMs, first + i);
    lines.push(`type=SYSCALL ${s}: syscall=59 pid=${first + i}`, `type=PATH ${s}: item=0 name="/bin/x${i}"`);
  }
  return lines;
}

const DAY = 86_400_000;
const T = 1_700_000_000_000;

test('assembler: one record dated a day ahead splits nothing and is counted', () => {
  const lines = [
    ...pairs(1, 5, T),
    `type=PATH ${at(T + DAY, 6)}: item=0 name="/bad/clock"`,
    ...pairs(7, 1000, T + 60),
  ];
  const { events, a } = run(lines);
  assert.equal(
    events.filter((e) => e.serial !== 6).every((e) => e.records.length === 2),
    true,
  );
  assert.equal(events.length, 1006);
  assert.equal(a.stats().late, 0);
  assert.equal(a.stats().clockOutliers, 1);
  // The clock went on with the stream (10 s of it): events closed on time, not all at the end.
  assert.ok(events.filter((e) => e.closedBy === 'timeout').length > 750);
});

test('assembler counts a record dated a day ahead that came between the records of an open event', () => {
  const first = pairs(1, 5, T);
  const lines = [
    ...first.slice(0, 9), // the fifth event's SYSCALL: its PATH follows the outlier
    `type=USER_LOGIN ${at(T + DAY, 100)}: pid=1 uid=0 msg='op=login res=success'`,
    ...first.slice(9),
    ...pairs(7, 1000, T + 60),
  ];
  const { events, a } = run(lines);
  assert.ok(events.filter((e) => e.serial !== 100).every((e) => e.records.length === 2));
  assert.equal(a.stats().clockOutliers, 1);
  assert.equal(a.stats().clockSteps, 0);
});

test('assembler: a backward step with an event open does not stop expiry', () => {
  const lines = [
    `type=SYSCALL ${at(T, 1)}: syscall=59 pid=1`,
    // The clock is set back a day; the stream goes on from there for 30 s.
    ...pairs(2, 3000, T - DAY),
  ];
  const events: AuditEvent[] = [];
  const a = new EventAssembler({ onEvent: (e) => events.push(e) });
  lines.forEach((l, i) => {
    const r = parseLine(l, i + 1);
    if (isIssue(r)) throw new Error(r.message);
    a.push(r);
  });
  const beforeEnd = events.length;
  a.end();
  assert.equal(a.stats().clockSteps, 1);
  // All but the last 2 s of the 30 s after the step.
  assert.ok(beforeEnd > 2750, `only ${beforeEnd} events closed before the end`);
  assert.ok(a.stats().maxOpen < 400);
  assert.equal(
    events.filter((e) => e.serial !== 1).every((e) => e.records.length === 2),
    true,
  );
  assert.equal(a.stats().late, 0);
});

test('assembler: logs given newest first give the same events as oldest first', () => {
  const older = pairs(1, 500, T);
  const newer = pairs(501, 500, T + DAY);
  const key = (e: AuditEvent): string => `${e.serial}:${e.records.length}`;
  const inOrder = run([...older, ...newer])
    .events.map(key)
    .sort();
  const { events, a } = run([...newer, ...older]);
  assert.deepEqual(events.map(key).sort(), inOrder);
  assert.equal(events.length, 1000);
  assert.equal(a.stats().clockSteps, 1);
  assert.equal(a.stats().late, 0);
});

test('assembler: an event stamped long before it is written keeps its records together', () => {
  // A syscall that blocked for 10 s is stamped when it started, written when it returned.
  const lines = [
    ...pairs(1, 200, T),
    `type=SYSCALL ${at(T - 10_000, 201)}: syscall=61 pid=9`,
    `type=PATH ${at(T - 10_000, 201)}: item=0 name="/x"`,
    `type=CWD ${at(T - 10_000, 201)}: cwd="/"`,
    ...pairs(202, 300, T + 2000),
  ];
  const { events, a } = run(lines);
  const old = events.find((e) => e.serial === 201)!;
  assert.equal(old.records.length, 3);
  assert.equal(old.closedBy, 'timeout');
  assert.equal(a.stats().clockOutliers, 1);
  assert.equal(a.stats().late, 0);
});

test('assembler closes an event at its record limit and goes on with another, counted', () => {
  const lines = Array.from({ length: 7 }, (_, i) => `type=PATH ${at(T, 1)}: item=${i}`);
  const { events, a } = run(lines, { maxRecordsPerEvent: 3 });
  assert.deepEqual(summary(events), ['1:PATH,PATH,PATH:limit', '1:PATH,PATH,PATH:limit', '1:PATH:end']);
  assert.equal(a.stats().recordLimit, 2);
  assert.equal(a.stats().late, 0);
});

test('assembler finds duplicates in a large event by content', () => {
  const lines: string[] = [];
  for (let i = 0; i < 500; i++)
    lines.push(`type=PATH ${at(T, 1)}: item=${i}`, `type=PATH ${at(T, 1)}: item=${i}`);
  lines.push(`type=PATH ${at(T, 1)}: item=0 `, `type=CWD ${at(T, 1)}: item=0`);
  const { events, a } = run(lines);
  assert.equal(events.length, 1);
  // A trailing space is not text; another type is another record.
  assert.equal(events[0]!.records.length, 501);
  assert.equal(a.stats().duplicates, 501);
});

/**
 * The assembler's rule before its clock was made robust: the clock is the
 * newest time read, and the oldest open events close while they are more
 * than the timeout behind it. On input whose clock never steps back, the
 * assembler must give exactly what it gave.
 */
function plainClock(lines: string[], timeoutMs: number): string[] {
  interface Ev {
    serial: number;
    time: number;
    types: string[];
    closed: boolean;
  }
  const open = new Map<number, Ev>();
  const order: Ev[] = [];
  const out: string[] = [];
  let clock = 0;
  const close = (e: Ev, by: string): void => {
    e.closed = true;
    open.delete(e.serial);
    out.push(`${e.serial}:${e.types.join(',')}:${by}`);
  };
  for (const l of lines) {
    const r = parseLine(l, 1);
    if (isIssue(r)) throw new Error(r.message);
    clock = Math.max(clock, r.timeMs);
    const e = open.get(r.serial);
    if (r.typeName === 'EOE') {
      if (e !== undefined) close(e, 'eoe');
    } else if (e !== undefined) {
      e.types.push(r.typeName);
      if (r.typeName === 'PROCTITLE') close(e, 'proctitle');
    } else {
      const n: Ev = { serial: r.serial, time: r.timeMs, types: [r.typeName], closed: false };
      open.set(r.serial, n);
      if (r.typeName === 'PROCTITLE') close(n, 'proctitle');
      else order.push(n);
    }
    while (order.length > 0 && (order[0]!.closed || order[0]!.time < clock - timeoutMs)) {
      const h = order.shift()!;
      if (!h.closed) close(h, 'timeout');
    }
  }
  for (const e of order) if (!e.closed) close(e, 'end');
  return out;
}

test('assembler closes events exactly as the plain newest-time clock on input that never steps back', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const next = prngInt(seed);
    const lines: string[] = [];
    let ms = T;
    let serial = 0;
    // Events being written (up to three at once, as on several CPUs): their stamp and records left.
    const active: { stamp: string; left: string[] }[] = [];
    const flush = (): void => {
      for (const a of active)
        for (const l of a.left)
          lines.push(`${l.split(' ')[0]} ${a.stamp}: ${l.split(' ').slice(1).join(' ')}`);
      active.length = 0;
    };
    for (let i = 0; i < 400; i++) {
      if (next(20) === 0) {
        // A quiet spell longer than the timeout: the events being written end first.
        flush();
        ms += 2500 + next(6000);
      } else {
        ms += next(4);
      }
      const stamp = at(ms, ++serial);
      const kinds = ['type=PATH item=1', 'type=CWD cwd="/"', 'type=EXECVE argc=1 a0="x"'].slice(0, next(4));
      const end = next(3);
      if (end === 1) kinds.push('type=PROCTITLE proctitle=78');
      if (end === 2) kinds.push('type=EOE');
      active.push({ stamp, left: ['type=SYSCALL syscall=59', ...kinds] });
      while (active.length > next(3)) {
        const a = active[next(active.length)]!;
        const l = a.left.shift()!;
        lines.push(`${l.split(' ')[0]} ${a.stamp}: ${l.split(' ').slice(1).join(' ')}`);
        if (a.left.length === 0) active.splice(active.indexOf(a), 1);
      }
    }
    flush();
    const { events, a } = run(lines);
    assert.deepEqual(summary(events), plainClock(lines, 2000), `seed ${seed}`);
    assert.equal(a.stats().clockOutliers + a.stats().clockSteps, 0, `seed ${seed}`);
  }
});

test('assembler: outliers every other record leave the open events within the timeout window', () => {
  // 20 s of records 1 ms apart, every other one dated a day ahead.
  const lines = Array.from({ length: 40_000 }, (_, i) =>
    i % 2 === 0 ? `type=PATH ${at(T + i / 2, i + 1)}: item=0` : `type=PATH ${at(T + DAY + i, i + 1)}: item=0`,
  );
  const { events, a } = run(lines);
  assert.equal(events.length, 40_000);
  // The last one ends the input: nothing follows to undo it.
  assert.equal(a.stats().clockOutliers, 19_999);
  // Two seconds of each kind: the ones ahead time out two seconds after they came, not one after another.
  assert.ok(a.stats().maxOpen < 4500, `maxOpen ${a.stats().maxOpen}`);
  assert.ok(a.stats().timedOut > 35_000);
});
