// The router against a model: random container trees (nesting, drops that
// cascade to parents, IDs reused under another parent), random sinks, and
// random event streams. The model knows containers as objects with parent
// links; the router sees only the labeller's strings. Every copy must be
// exactly what the model says the container sees, with IDs relative to it,
// and nothing of the host, an unknown process or a sibling.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { prngInt } from '../../test/support/prng.js';
import { record as recordOf } from '../../test/support/text-records.js';
import { EventAssembler } from '../assemble/assembler.js';
import { RecordParser } from '../parse/parser.js';
import type { AuditEvent } from '../assemble/event.js';
import type { AuditRecord } from '../parse/record.js';
import type { ContainerOp, LabelledEvent } from '../policy/labeller.js';
import { renderContainerId, renderContainerOp, type OpName } from '../policy/records.js';
import { EventEncoder } from '../pipeline/encoder.js';
import { ORCH, World } from '../../test/support/labeller-world.js';
import { containerChanges, Router, type RoutedCopy } from './router.js';

interface Box {
  readonly id: string;
  readonly parent: Box | null;
  readonly children: Box[];
  live: boolean;
  /** The router key while it has a sink. */
  sink: string | null;
}

function chainOf(b: Box): string[] {
  const out: string[] = [];
  for (let c: Box | null = b; c !== null; c = c.parent) out.push(c.id);
  return out;
}

/** True when `b` is `top` or nested in it (by identity, not by ID). */
function within(b: Box, top: Box): boolean {
  for (let c: Box | null = b; c !== null; c = c.parent) if (c === top) return true;
  return false;
}

/** `b`'s IDs up to `top`, leaf first (empty for `top` itself). */
function pathBelow(b: Box, top: Box): string[] {
  const out: string[] = [];
  for (let c: Box | null = b; c !== top && c !== null; c = c.parent) out.push(c.id);
  return out;
}

const CALLER = { pid: 100, uid: 0, auid: 4294967295, exe: '/usr/bin/crun' };

function op(
  f: { op: OpName; contid: string; oldContid: string; chain?: string | null; created?: boolean },
  refused = false,
): ContainerOp {
  const fields = {
    op: f.op,
    opid: 4000,
    contid: f.contid,
    oldContid: f.oldContid,
    caller: CALLER,
    errno: refused ? ('EEXIST' as const) : null,
  };
  return {
    ...fields,
    result: refused ? 'refused' : 'accepted',
    body: renderContainerOp(fields),
    marker: null,
    chain: f.chain ?? null,
    created: f.created ?? false,
  };
}

function record(serial: number, body: string, type = 'SYSCALL'): AuditRecord {
  return recordOf(`type=${type} msg=audit(1700000000.000:${serial}): ${body}`);
}

/** What the model expects a container's copy of one event to be. */
interface Expected {
  readonly records: boolean;
  readonly contid: string | null;
  readonly objects: string[];
  readonly ops: string[];
}

/** One random run: returns the number of copies checked. */
function run(seed: number, steps: number): number {
  const rnd = prngInt(seed);
  const router = new Router();
  const live: Box[] = [];
  const roots: Box[] = [];
  const sinks = new Map<string, Box>();
  let serial = 0;
  let checked = 0;

  const pick = <T>(list: readonly T[]): T => list[rnd(list.length)]!;
  const siblingsOf = (parent: Box | null): Box[] => (parent === null ? roots : parent.children);

  for (let step = 0; step < steps; step++) {
    serial++;
    const kind = rnd(10);
    let actor: Box | 'host' | 'unknown' = 'host';
    const ops: { op: ContainerOp; subject: Box | null; old?: Box | null }[] = [];
    const objects: { index: number; target: Box }[] = [];
    const drops: Box[] = [];
    let created: Box | null = null;

    if (kind <= 1 || live.length === 0) {
      // A set that creates a container, top-level or nested in a live one.
      const parent = live.length === 0 || rnd(2) === 0 ? null : pick(live);
      const taken = new Set(
        siblingsOf(parent)
          .filter((b) => b.live)
          .map((b) => b.id),
      );
      const free = ['1', '2', '3', '4', '5'].filter((id) => !taken.has(id));
      if (free.length === 0) continue;
      const box: Box = { id: pick(free), parent, children: [], live: true, sink: null };
      siblingsOf(parent).push(box);
      live.push(box);
      created = box;
      const chain = chainOf(box).join(',^');
      ops.push({
        op: op({
          op: 'set',
          contid: box.id,
          oldContid: parent === null ? '-1' : chainOf(parent).join(',^'),
          chain,
          created: true,
        }),
        subject: box,
        old: parent,
      });
    } else if (kind === 2) {
      // The last process of a leaf container ends: it drops, and so may its parents.
      const leaves = live.filter((b) => !b.children.some((c) => c.live));
      const leaf = pick(leaves);
      actor = leaf;
      for (let b: Box | null = leaf; b !== null; b = b.parent) {
        if (b !== leaf && (b.children.some((c) => c.live) || rnd(2) === 0)) break;
        b.live = false;
        live.splice(live.indexOf(b), 1);
        drops.push(b);
        ops.push({ op: op({ op: 'drop', contid: '-1', oldContid: chainOf(b).join(',^') }), subject: b });
      }
    } else if (kind === 3) {
      // Operations the daemon reads as markers (a host event): grant, adopt,
      // an injection, a refused attempt.
      const target = pick(live);
      const chain = chainOf(target).join(',^');
      const which = rnd(4);
      if (which === 0)
        ops.push({ op: op({ op: 'grant', contid: chain, oldContid: chain }), subject: target });
      else if (which === 1)
        ops.push({ op: op({ op: 'adopt', contid: chain, oldContid: '-1', chain }), subject: target });
      else if (which === 2)
        ops.push({
          op: op({ op: 'set', contid: target.id, oldContid: '-1', chain, created: false }),
          subject: target,
        });
      else ops.push({ op: op({ op: 'set', contid: '7', oldContid: chain }, true), subject: null });
    } else {
      // An ordinary event: of a container, the host, or a process whose container is unknown.
      const who = rnd(8);
      actor = who === 0 ? 'host' : who === 1 ? 'unknown' : pick(live);
      if (rnd(3) === 0) objects.push({ index: 1, target: pick(live) });
    }

    const records = [record(serial, `pid=${serial}`)];
    if (objects.length > 0) records.push(record(serial, `opid=${serial}`, 'OBJ_PID'));
    const event: AuditEvent = {
      node: null,
      time: '1700000000.000',
      timeMs: 1_700_000_000_000,
      serial,
      records,
      closedBy: 'eoe',
    };
    const actorChain = typeof actor === 'string' ? null : chainOf(actor);
    const contid = actor === 'unknown' ? 'unknown' : actorChain === null ? null : actorChain.join(',^');
    const le: LabelledEvent = {
      event,
      contid,
      chain: actorChain,
      containerIdRecord: contid === null ? null : { record: 1, body: renderContainerId(1, contid) },
      objectRecords: objects.map((o) => ({
        record: o.index + 1,
        body: renderContainerId(o.index + 1, chainOf(o.target).join(',^')),
        chain: chainOf(o.target),
      })),
      ops: ops.map((o) => o.op),
      forgeries: [],
      evidence: [],
      provisional: false,
    };

    // The model: every container with a sink, what it should get.
    const expected = new Map<string, Expected>();
    for (const [key, s] of sinks) {
      const sees = typeof actor !== 'string' && within(actor, s);
      const rel = sees ? pathBelow(actor as Box, s) : [];
      const myOps = ops.filter((o) => o.subject !== null && o.subject !== s && within(o.subject, s));
      if (!sees && myOps.length === 0) continue;
      expected.set(key, {
        records: sees,
        contid: sees && rel.length > 0 ? rel.join(',^') : null,
        objects: sees
          ? objects
              .filter((o) => o.target !== s && within(o.target, s))
              .map((o) => renderContainerId(o.index + 1, pathBelow(o.target, s).join(',^')))
          : [],
        ops: myOps.map((o) => {
          const rel = pathBelow(o.subject!, s).join(',^');
          const f = o.op;
          const contid = f.op === 'set' ? f.contid : f.op === 'drop' ? '-1' : rel;
          const old =
            f.op === 'drop' || f.op === 'grant'
              ? rel
              : o.old === undefined || o.old === null || o.old === s
                ? '-1'
                : pathBelow(o.old, s).join(',^');
          return `op=${f.op} opid=4000 contid=${contid} old-contid=${old} `;
        }),
      });
    }

    const copies: RoutedCopy[] = router.route(le);
    const got = new Map(copies.map((c) => [c.container, c.event]));
    assert.equal(got.size, copies.length, `seed ${seed} step ${step}: one copy per container`);
    assert.deepEqual(
      [...got.keys()].sort(),
      [...expected.keys()].sort(),
      `seed ${seed} step ${step}: which containers get event ${serial}`,
    );
    for (const [key, want] of expected) {
      const copy = got.get(key)!;
      const where = `seed ${seed} step ${step} container ${key}`;
      assert.equal(copy.event.records.length > 0, want.records, `${where}: the event's own records`);
      assert.equal(copy.contid, want.contid, `${where}: contid`);
      assert.equal(
        copy.containerIdRecord?.body ?? null,
        want.contid === null ? null : renderContainerId(1, want.contid),
        `${where}: CONTAINER_ID`,
      );
      assert.deepEqual(
        copy.objectRecords.map((o) => o.body),
        want.objects,
        `${where}: OBJ_PID CONTAINER_IDs`,
      );
      assert.equal(copy.ops.length, want.ops.length, `${where}: CONTAINER_OPs`);
      copy.ops.forEach((o, i) => {
        assert.ok(o.body.startsWith(want.ops[i]!), `${where}: ${o.body} is not ${want.ops[i]}…`);
      });
      assert.equal(copy.forgeries.length, 0, `${where}: forgery reports are the host's`);
      checked++;
    }

    // The daemon's side: sinks follow the containers' life.
    const changes = containerChanges(le);
    assert.deepEqual(
      changes.created.map((c) => c.chain.join(',^')),
      created === null ? [] : [chainOf(created).join(',^')],
    );
    assert.deepEqual(
      changes.dropped.map((c) => c.join(',^')),
      drops.map((b) => chainOf(b).join(',^')),
    );
    for (const c of changes.dropped) {
      const key = c.join(',^');
      if (sinks.has(key)) {
        assert.equal(router.delete(c), true);
        sinks.get(key)!.sink = null;
        sinks.delete(key);
      }
    }
    if (created !== null && rnd(3) !== 0) {
      created.sink = router.add(chainOf(created));
      sinks.set(created.sink, created);
    }
    assert.equal(router.size, sinks.size);
  }
  return checked;
}

describe('router', () => {
  it('copies to each container exactly its subtree, relative to itself (model, 100 seeds)', () => {
    let copies = 0;
    for (let seed = 1; seed <= 100; seed++) copies += run(seed, 400);
    // The runs must exercise the router, not skip it.
    assert.ok(copies > 3_000, `only ${copies} copies checked`);
  });

  it('writes Z nested in 2 as Z for container 2 and nothing for container 1', () => {
    const router = new Router();
    router.add(['1']);
    router.add(['2']);
    const le: LabelledEvent = {
      event: {
        node: null,
        time: '1700000000.000',
        timeMs: 0,
        serial: 9,
        records: [record(9, 'arch=c000003e syscall=59 pid=812')],
        closedBy: 'eoe',
      },
      contid: '5,^2',
      chain: ['5', '2'],
      containerIdRecord: { record: 1, body: renderContainerId(1, '5,^2') },
      objectRecords: [],
      ops: [],
      forgeries: [],
      evidence: [],
      provisional: false,
    };
    const copies = router.route(le);
    assert.deepEqual(
      copies.map((c) => c.container),
      ['2'],
    );
    const encoder = new EventEncoder('text');
    encoder.write(copies[0]!.event);
    assert.equal(
      encoder.take().toString(),
      'type=SYSCALL msg=audit(1700000000.000:9): arch=c000003e syscall=59 pid=812 record=1\n' +
        'type=CONTAINER_ID msg=audit(1700000000.000:9): record=1 contid=5\n',
    );
  });

  it('copies nothing of the host, unknown processes or other nodes', () => {
    const router = new Router({ node: 'a' });
    router.add(['2']);
    const base = {
      time: '1700000000.000',
      timeMs: 0,
      serial: 1,
      records: [record(1, 'pid=1')],
      closedBy: 'eoe' as const,
    };
    const host: LabelledEvent = {
      event: { ...base, node: 'a' },
      contid: null,
      chain: null,
      containerIdRecord: null,
      objectRecords: [{ record: 1, body: renderContainerId(1, '2'), chain: ['2'] }],
      ops: [],
      forgeries: [],
      evidence: [],
      provisional: false,
    };
    assert.deepEqual(router.route(host), []);
    assert.deepEqual(router.route({ ...host, contid: 'unknown' }), []);
    assert.deepEqual(router.route({ ...host, event: { ...base, node: 'b' }, contid: '2', chain: ['2'] }), []);
    assert.equal(router.route({ ...host, contid: '2', chain: ['2'] }).length, 1);
  });
});

describe('router with the real labeller', () => {
  it('a privileged caller inside 42 nests 5: 42 gets the set (named) and drop of 5, relative', () => {
    const w = new World();
    const router = new Router();
    const copies: RoutedCopy[] = [];
    const feed = (le: LabelledEvent): void => {
      router.route(le, copies);
      const changes = containerChanges(le);
      for (const c of changes.created) router.add(c.chain);
      for (const c of changes.dropped) router.delete(c);
    };
    feed(w.seen(100, 1));
    feed(w.fork(100, 200));
    feed(w.seen(200, 100));
    feed(w.marker({ op: 'set', pid: 200, contid: '42', caller: ORCH }));
    feed(w.fork(200, 300, 100));
    feed(w.fork(200, 301, 100));
    feed(w.seen(300, 200));
    feed(w.seen(301, 200));
    feed(
      w.marker({
        op: 'set',
        pid: 300,
        contid: '5',
        caller: { ...ORCH, pid: 301, exe: '/usr/bin/node' },
        name: 'inner one',
        meta: { app: 'x' },
      }),
    );
    assert.equal(w.contid(300), '5,^42');
    feed(w.seen(300, 200));
    feed(w.exit(300, 200));
    const ops = copies.filter((c) => c.container === '42').flatMap((c) => c.event.ops.map((o) => o.body));
    assert.equal(ops.length, 2, ops.join('\n'));
    // Its name and metadata too: the container's own copy names what is nested in it.
    assert.match(
      ops[0]!,
      /^op=set opid=300 contid=5 old-contid=-1 pid=301 .* name=696E6E6572206F6E65 meta\.app="x" res=1$/,
    );
    assert.match(ops[1]!, /^op=drop opid=300 contid=-1 old-contid=5 /);
    const inner = copies.filter((c) => c.container === '5,^42');
    assert.ok(inner.length >= 2 && inner.every((c) => c.event.contid === null && c.event.ops.length === 0));
  });
});

describe('router with assembled events', () => {
  it("an operation copied on its own keeps the event's time and serial", () => {
    // The assembler's events compute their stamp in getters (src/assemble/assembler.ts).
    const events: AuditEvent[] = [];
    const assembler = new EventAssembler({ onEvent: (e) => events.push(e) });
    const parser = new RecordParser({
      onRecord: (r) => {
        assembler.push(r);
      },
      onIssue: () => undefined,
    });
    parser.push("type=USER msg=audit(1700000000.123:77): pid=500 uid=0 msg='x'\n");
    parser.end();
    assembler.end();
    const router = new Router();
    router.add(['42']);
    const f = {
      op: 'set' as const,
      opid: 300,
      contid: '5',
      oldContid: '42',
      caller: { pid: 301, uid: 0, auid: 4242, exe: '/usr/bin/node' },
      errno: null,
    };
    const set: ContainerOp = {
      ...f,
      result: 'accepted',
      body: renderContainerOp(f),
      marker: null,
      chain: '5,^42',
      created: true,
    };
    const le: LabelledEvent = {
      event: events[0]!,
      contid: null,
      chain: null,
      containerIdRecord: null,
      objectRecords: [],
      ops: [set],
      forgeries: [],
      evidence: [],
      provisional: false,
    };
    const [copy] = router.route(le);
    const encoder = new EventEncoder('text');
    encoder.write(copy!.event);
    assert.equal(
      encoder.take().toString(),
      'type=CONTAINER_OP msg=audit(1700000000.123:77): op=set opid=300 contid=5 old-contid=-1 ' +
        'pid=301 uid=0 auid=4242 exe="/usr/bin/node" res=1\n',
    );
  });
});
