import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isIssue, parseLine } from '../parse/parser.js';
import type { AssemblerOptions } from './assembler.js';
import { EventAssembler } from './assembler.js';
import type { AuditEvent } from './event.js';

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
