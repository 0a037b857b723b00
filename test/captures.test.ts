/**
 * Conformance fixtures captured from this machine's kernel (issue 3):
 * testdata/captures/<scenario>.log (auditd RAW log), .keyring and
 * .expect.json, made by scripts/capture/capture-labels.mjs. Each log is
 * replayed through the parser, the assembler and the labeller, and checked
 * against expectations written from the scenario's intent (docs/design.md):
 *
 * - every event of every process carries exactly the expected contid: the
 *   processes are named in the expectations by pid (set targets, with the
 *   marker before which they are still unset), or by comm/exe/ppid, and an
 *   event of a process that no expectation names fails the test;
 * - the CONTAINER_OP attempts and drops, in order, with results and errnos;
 * - the forgeries, with the sender (by comm) and its contid;
 * - every daemon marker is honoured; replaying twice gives the same result.
 *
 * Process facts (comm, exe, ppid) come from the fixture's own SYSCALL
 * records, never from the labeller.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { EventAssembler } from '../src/assemble/assembler.js';
import type { AuditEvent } from '../src/assemble/event.js';
import { parseKeyring } from '../src/marker/keyring.js';
import { RecordParser } from '../src/parse/parser.js';
import type { AuditRecord } from '../src/parse/record.js';
import { Labeller, type LabelledEvent } from '../src/policy/labeller.js';

const DIR = new URL('../../testdata/captures/', import.meta.url);
const MARKER_TYPE = 2942;

interface ProcessExpectation {
  readonly role: string;
  readonly contid: string | null;
  readonly pid?: number;
  readonly comm?: string;
  readonly exe?: string;
  readonly ppid?: number;
  /** Unset before the event of the marker with this seq, `contid` from it on. */
  readonly beforeMarker?: number;
}

interface OpExpectation {
  readonly op: string;
  readonly opid?: number;
  readonly contid?: string;
  readonly oldContid: string;
  readonly result: 'accepted' | 'refused';
  readonly errno: string | null;
  readonly seq?: number;
}

interface ForgeryExpectation {
  readonly reason: string;
  readonly senderComm: string;
  readonly senderContid: string | null;
}

interface Expectation {
  readonly scenario: string;
  readonly description: string;
  readonly daemonPid: number;
  readonly start: string;
  readonly markers: number;
  readonly processes: readonly ProcessExpectation[];
  readonly ops: readonly OpExpectation[];
  readonly forgeries: readonly ForgeryExpectation[];
}

interface Replay {
  readonly labelled: readonly LabelledEvent[];
  readonly issues: number;
  readonly markers: number;
}

function replay(log: string, keyringText: string): Replay {
  const labeller = new Labeller({ keyring: parseKeyring(keyringText) });
  const labelled: LabelledEvent[] = [];
  let issues = 0;
  const assembler = new EventAssembler({
    onEvent: (event: AuditEvent) => {
      labelled.push(labeller.process(event));
    },
  });
  const parser = new RecordParser({
    onRecord: (record) => {
      assembler.push(record);
    },
    onIssue: () => {
      issues++;
    },
  });
  parser.push(log);
  parser.end();
  assembler.end();
  return { labelled, issues, markers: labeller.stats().markers };
}

/** What a replay produced, in a comparable form. */
function summary(r: Replay): unknown {
  return r.labelled.map((l) => ({
    serial: l.event.serial,
    contid: l.contid,
    id: l.containerIdRecord?.body ?? null,
    objects: l.objectRecords.map((o) => o.body),
    ops: l.ops.map((o) => o.body),
    forgeries: l.forgeries.map((f) => `${f.reason} ${f.senderPid} ${f.senderContid}`),
  }));
}

function unquote(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.startsWith('"') && value.endsWith('"')) return value.slice(1, -1);
  if (/^(?:[0-9A-F]{2})+$/.test(value)) return Buffer.from(value, 'hex').toString('utf8');
  return value;
}

function int(record: AuditRecord, name: string): number | undefined {
  const v = record.field(name);
  return v !== undefined && /^[0-9]+$/.test(v) ? Number(v) : undefined;
}

interface Actor {
  readonly pid: number;
  readonly ppid: number | undefined;
  readonly comm: string | undefined;
  readonly exe: string | undefined;
}

/** The acting process of each event, from the fixture's records alone. */
function actors(events: readonly AuditEvent[]): (Actor | null)[] {
  const last = new Map<number, Actor>();
  return events.map((event) => {
    const sys = event.records.find((r) => r.type === 1300);
    if (sys !== undefined) {
      const pid = int(sys, 'pid');
      if (pid === undefined) return null;
      const actor = {
        pid,
        ppid: int(sys, 'ppid'),
        comm: unquote(sys.field('comm')),
        exe: unquote(sys.field('exe')),
      };
      last.set(pid, actor);
      return actor;
    }
    for (const r of event.records) {
      const pid = int(r, 'pid');
      if (pid !== undefined)
        return last.get(pid) ?? { pid, ppid: undefined, comm: undefined, exe: undefined };
    }
    return null;
  });
}

function matches(e: ProcessExpectation, a: Actor): boolean {
  if (e.pid !== undefined) return e.pid === a.pid;
  if (e.comm === undefined || e.comm !== a.comm) return false;
  if (e.exe !== undefined && e.exe !== a.exe) return false;
  if (e.ppid !== undefined && e.ppid !== a.ppid) return false;
  return true;
}

function markerSeq(event: AuditEvent, daemonPid: number): number | undefined {
  for (const r of event.records) {
    if (r.type !== MARKER_TYPE || int(r, 'pid') !== daemonPid) continue;
    const m = /\bseq=([0-9]+)\b/.exec(r.body);
    if (m !== null) return Number(m[1]);
  }
  return undefined;
}

function describe(event: AuditEvent, actor: Actor | null): string {
  const who =
    actor === null ? '-' : `pid=${actor.pid} ppid=${actor.ppid} comm=${actor.comm} exe=${actor.exe}`;
  return `:${event.serial} ${event.records[0]?.typeName} ${who}`;
}

const fixtures = readdirSync(DIR)
  .filter((name) => name.endsWith('.expect.json'))
  .map((name) => name.slice(0, -'.expect.json'.length))
  .sort();

test('capture fixtures are present', () => {
  assert.ok(fixtures.length >= 5, `found ${fixtures.join(', ')}`);
});

for (const name of fixtures) {
  test(`captured fixture ${name}`, async (t) => {
    const log = readFileSync(new URL(`${name}.log`, DIR), 'latin1');
    const keyring = readFileSync(new URL(`${name}.keyring`, DIR), 'utf8');
    const expect = JSON.parse(readFileSync(new URL(`${name}.expect.json`, DIR), 'utf8')) as Expectation;
    const first = replay(log, keyring);
    const events = first.labelled.map((l) => l.event);
    const who = actors(events);

    await t.test('replays deterministically', () => {
      assert.equal(first.issues, 0);
      assert.deepEqual(summary(replay(log, keyring)), summary(first));
    });

    await t.test('honours every marker of the daemon', () => {
      assert.equal(first.markers, expect.markers);
    });

    await t.test('labels every event of every process as expected', () => {
      const seen = new Set<number>();
      const problems: string[] = [];
      first.labelled.forEach((l, i) => {
        const seq = markerSeq(l.event, expect.daemonPid);
        if (seq !== undefined) seen.add(seq);
        const actor = who[i] ?? null;
        let want: string | null = null;
        if (actor !== null && actor.pid !== expect.daemonPid && actor.comm !== undefined) {
          const e = expect.processes.find((p) => matches(p, actor));
          if (e === undefined) {
            problems.push(`${describe(l.event, actor)}: no expectation names this process`);
            return;
          }
          want = e.beforeMarker !== undefined && !seen.has(e.beforeMarker) ? null : e.contid;
        }
        if (l.contid !== want) {
          problems.push(
            `${describe(l.event, actor)}: contid ${l.contid ?? 'unset'}, expected ${want ?? 'unset'}`,
          );
        }
        const record = l.containerIdRecord;
        if (want !== null && record?.body !== `record=${record?.record} contid=${want}`) {
          problems.push(`${describe(l.event, actor)}: CONTAINER_ID record ${record?.body}`);
        }
      });
      assert.deepEqual(problems.slice(0, 40), [], `${problems.length} problems`);
    });

    await t.test('records every operation with its result', () => {
      const ops = first.labelled.flatMap((l) => l.ops);
      const got = ops.map((o, i) => {
        const e = expect.ops[i];
        return {
          op: o.op,
          ...(e?.opid === undefined ? {} : { opid: o.opid }),
          ...(e?.contid === undefined ? {} : { contid: o.contid }),
          oldContid: o.oldContid,
          result: o.result,
          errno: o.errno,
          ...(e?.seq === undefined ? {} : { seq: o.marker?.seq }),
        };
      });
      assert.deepEqual(got, expect.ops);
    });

    await t.test('reports every forgery with its sender', () => {
      const got = first.labelled.flatMap((l, i) =>
        l.forgeries.map((f) => {
          const sender = who.slice(0, i + 1).findLast((a) => a?.pid === f.senderPid);
          return { reason: f.reason, senderComm: sender?.comm ?? '?', senderContid: f.senderContid };
        }),
      );
      assert.deepEqual(got, expect.forgeries);
    });
  });
}
