// The labelling stage keeps state per node: an aggregated log (audisp-remote,
// name_format = hostname) holds hosts whose pids and daemon starts have
// nothing to do with each other.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { EventAssembler } from '../assemble/assembler.js';
import type { AuditEvent } from '../assemble/event.js';
import { encodeMarker, MARKER_TYPE, type MarkerBody } from '../marker/format.js';
import type { Keyring } from '../marker/keyring.js';
import { isIssue, parseLine } from '../parse/parser.js';
import { LabellingStage } from './labelling.js';
import { ReplayPipeline } from './replay.js';

const SECRET = Buffer.alloc(32, 9);
const KEYRING: Keyring = new Map([['S1', { startId: 'S1', daemonPid: 500, secret: SECRET }]]);
const ORCH = { pid: 100, uid: 0, auid: 4294967295, exe: '/usr/bin/runc', privileged: true };

/** Builds a log one record (one event) per call. */
class Log {
  #serial = 0;
  #ms = 1_700_000_000_000;
  #seq = 0;
  readonly lines: string[] = [];

  #stamp(): string {
    this.#ms += 1;
    return `msg=audit(${(this.#ms / 1000).toFixed(3)}:${++this.#serial})`;
  }

  /** A SYSCALL event, closed by its EOE record (as auditd's plugin stream has them). */
  sys(node: string, f: { pid: number; ppid: number; nr: number; exit?: number; a0?: string }): void {
    const stamp = this.#stamp();
    this.lines.push(
      `node=${node} type=SYSCALL ${stamp}: arch=c000003e syscall=${f.nr} success=yes exit=${f.exit ?? 0} ` +
        `a0=${f.a0 ?? '0'} a1=0 a2=0 a3=0 items=0 ppid=${f.ppid} pid=${f.pid} auid=4294967295 uid=0 gid=0 ` +
        `euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="sh" exe="/bin/sh" key=(null)`,
      `node=${node} type=EOE ${stamp}: `,
    );
  }

  marker(node: string, body: MarkerBody): void {
    const text = encodeMarker({ start: 'S1', seq: ++this.#seq, body }, SECRET);
    this.lines.push(
      `node=${node} type=UNKNOWN[${MARKER_TYPE}] ${this.#stamp()}: pid=500 uid=0 auid=4294967295 ses=4294967295 msg='${text}'`,
    );
  }
}

function replay(lines: readonly string[]): {
  events: Record<string, unknown>[];
  stats: ReturnType<ReplayPipeline['stats']>;
} {
  const p = new ReplayPipeline({ format: 'json', keyring: KEYRING });
  const out = Buffer.concat([p.push(`${lines.join('\n')}\n`), p.end()]).toString('utf8');
  return {
    events: out
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>),
    stats: p.stats(),
  };
}

void describe('labelling stage', () => {
  void it("a process on another node with a colliding pid does not end this node's container", () => {
    const log = new Log();
    log.marker('a', { op: 'start', daemonPid: 500 });
    log.sys('a', { pid: 1000, ppid: 1, nr: 39 });
    log.sys('a', { pid: 1000, ppid: 1, nr: 56, a0: '1200011', exit: 1001 });
    log.sys('a', { pid: 1001, ppid: 1000, nr: 39 });
    log.marker('a', { op: 'set', pid: 1001, contid: '42', caller: ORCH });
    // Host b: its own pid 1001 starts and exits.
    log.sys('b', { pid: 1001, ppid: 77, nr: 59 });
    log.sys('b', { pid: 1001, ppid: 77, nr: 231 });
    log.sys('a', { pid: 1001, ppid: 1000, nr: 39 });
    const { events, stats } = replay(log.lines);
    const last = events.at(-1)!;
    assert.equal(last['contid'], '42', "a's container is still live");
    assert.equal(stats.labels?.ops.drops, 0);
    assert.equal(stats.nodes, 2);
    assert.ok(events.filter((e) => e['node'] === 'b').every((e) => e['contid'] === null));
  });

  void it("a start's markers count only on its node: the same marker on another node is a forgery", () => {
    const log = new Log();
    log.marker('a', { op: 'start', daemonPid: 500 });
    log.sys('b', { pid: 1000, ppid: 1, nr: 39 });
    log.marker('b', { op: 'set', pid: 1000, ppid: 1, contid: '7', caller: ORCH });
    const { events, stats } = replay(log.lines);
    assert.equal(stats.labels?.forgeries, 1);
    assert.equal(stats.forgeries[0]?.reason, 'wrong-node');
    assert.ok(events.every((e) => e['contid'] === null));
  });
});

void describe('a replay from a checkpoint', () => {
  void it('labels the processes of a log that begins after the daemon started (rotated), from its checkpoint', () => {
    const log = new Log();
    // The rotated log starts here: no start marker, no set; 1001 is in 4, 1002 nested in it.
    log.sys('a', { pid: 1001, ppid: 1000, nr: 56, a0: '1200011', exit: 1003 });
    log.sys('a', { pid: 1003, ppid: 1001, nr: 59 });
    log.sys('a', { pid: 1002, ppid: 1001, nr: 59 });
    log.sys('a', { pid: 1000, ppid: 1, nr: 59 });
    const p = new ReplayPipeline({
      format: 'json',
      keyring: KEYRING,
      state: {
        node: 'a',
        containers: [
          { chain: ['4'], ownerUid: 0, ownerExe: '/usr/bin/runc' },
          { chain: ['5', '4'], ownerUid: 0, ownerExe: '/usr/bin/lxc' },
        ],
        processes: [
          { pid: 1001, ppid: 1000, start: 11, chain: ['4'] },
          { pid: 1002, ppid: 1001, start: 12, chain: ['5', '4'] },
        ],
        grants: [],
      },
    });
    const out = Buffer.concat([p.push(`${log.lines.join('\n')}\n`), p.end()]).toString('utf8');
    const labels = out
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { contid: string | null }).contid);
    assert.deepEqual(labels, ['4', '4', '5,^4', null]);
  });
});

/** The events of `lines`, assembled as the pipeline would, for the stage on its own. */
function assembled(lines: readonly string[]): AuditEvent[] {
  const events: AuditEvent[] = [];
  const asm = new EventAssembler({ onEvent: (e) => events.push(e) });
  lines.forEach((l, i) => {
    const r = parseLine(l, i + 1);
    if (isIssue(r)) throw new Error(r.message);
    asm.push(r);
  });
  asm.end();
  return events;
}

void describe('a labelling failure', () => {
  void it('writes the event with the unknown label, counts it, reports it, and labels the next events', () => {
    const log = new Log();
    log.sys('a', { pid: 2000, ppid: 1, nr: 39 });
    log.sys('a', { pid: 2001, ppid: 1, nr: 39 });
    const events = assembled(log.lines);
    assert.equal(events.length, 2);
    const failures: string[] = [];
    const stage = new LabellingStage({
      onFailure: (error, event) => failures.push(`${event.serial} ${error.message}`),
    });
    // A defect inside the labeller, made to happen once (no known input raises one).
    const labeller = stage.labeller('a')!;
    const process = labeller.process.bind(labeller);
    let failOnce = true;
    labeller.process = (e) => {
      if (failOnce) {
        failOnce = false;
        throw new RangeError('boom');
      }
      return process(e);
    };
    const first = stage.push(events[0]!);
    assert.equal(first.length, 1);
    assert.equal(first[0]!.contid, 'unknown', 'never written as host');
    assert.equal(first[0]!.containerIdRecord?.body, 'record=1 contid=unknown');
    assert.deepEqual(failures, [`${events[0]!.serial} boom`]);
    assert.equal(stage.stats().failed, 1);
    const second = stage.push(events[1]!);
    assert.equal(second.length, 1);
    assert.equal(second[0]!.contid, null, 'the next event is labelled as usual');
  });
});

void describe('nodes past the bound', () => {
  void it("are written as unknown, never as host, and counted; the tracked nodes' events are labelled as usual", () => {
    const log = new Log();
    log.sys('a', { pid: 2000, ppid: 1, nr: 39 });
    log.sys('b', { pid: 2000, ppid: 1, nr: 39 });
    const events = assembled(log.lines);
    const stage = new LabellingStage({ maxNodes: 1 });
    const [a] = stage.push(events[0]!);
    const [b] = stage.push(events[1]!);
    assert.equal(a!.contid, null);
    assert.equal(b!.contid, 'unknown');
    assert.equal(b!.containerIdRecord?.body, 'record=1 contid=unknown');
    assert.equal(stage.stats().nodesOverflow, 1);
  });
});
