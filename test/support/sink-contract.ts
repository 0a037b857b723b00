/**
 * The contract every sink passes (docs/sinks.md), run by each sink's tests
 * against a real destination the harness starts itself: a file on a small
 * tmpfs, a unix socket server on a private path, a real auditd listening in
 * its own network namespace. Like hono's shared router suite: one set of
 * behaviours, every implementation.
 *
 * A harness opens a fresh destination and sink for each test, and can
 * stall its destination (it stops taking bytes: a full disk, a reader that
 * stops reading, a stopped auditd) and resume it. Nothing here asserts on
 * time: waits are for conditions, with a deadline only to fail.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import type { Sink, SinkOptions, SinkStats } from '../../src/sink/sink.js';
import { WAIT_MS } from './log-events.js';
import { auditEvent, splitEvents, type EventFormat } from './sink-events.js';

/** A destination and the sink writing to it, for one test. */
export interface ContractDestination {
  readonly sink: Sink;
  /**
   * The bytes that reached the destination, in the order they arrived,
   * without what the destination adds of its own (auditd's DAEMON_*
   * records). Waits until there are at least `expectedBytes` (or a
   * deadline passes, then returns what is there).
   */
  received(expectedBytes: number): Promise<Buffer>;
  /** The destination stops taking bytes. */
  stall(): Promise<void>;
  /** It takes bytes again. */
  resume(): Promise<void>;
  /** Releases the destination (the sink is already closed or destroyed). */
  cleanup(): Promise<void>;
}

/** What a sink's test gives the contract. */
export interface ContractHarness {
  readonly name: string;
  /** Why the suite cannot run here (it is then reported as skipped), or undefined. */
  readonly skip?: string | undefined;
  /** The bytes the destination expects. */
  readonly format: EventFormat;
  /** Starts a destination and a sink with these options (the harness adds its own: paths, short retry delays). */
  open(options: SinkOptions): Promise<ContractDestination>;
  /**
   * Breaks the destination and brings it back (the reader or auditd exits
   * and starts again), when the sink has connections to survive: between
   * the two, `whileDown` runs once the sink has seen the break.
   */
  restart?(destination: ContractDestination, whileDown: () => void): Promise<void>;
}

const MAX_EVENTS = 100_000;

/** A source of distinct events: serials never repeat within a process. */
let nextSerial = 1;
function events(n: number, format: EventFormat): { serial: number; bytes: Buffer }[] {
  return Array.from({ length: n }, () => {
    const serial = nextSerial++;
    return {
      serial,
      bytes: auditEvent(serial, { format, records: 1 + (serial % 5), pad: (serial * 7) % 300 }),
    };
  });
}

/** What the test wrote: every write's bytes and events, and what write() returned. */
class Ledger {
  readonly #policy: 'block' | 'drop';
  readonly accepted: Buffer[] = [];
  readonly dropped: Buffer[] = [];
  events = 0;
  bytes = 0;
  acceptedEvents = 0;

  constructor(policy: 'block' | 'drop') {
    this.#policy = policy;
  }

  /** Writes; false from a block sink still means queued, from a drop sink dropped. */
  write(sink: Sink, bytes: Buffer, count = 1): boolean {
    const ok = sink.write(bytes, count);
    this.events += count;
    this.bytes += bytes.length;
    const queued =
      ok || (this.#policy === 'block' && sink.stats().state !== 'closing' && sink.stats().state !== 'closed');
    if (queued) this.acceptedEvents += count;
    (queued ? this.accepted : this.dropped).push(bytes);
    return ok;
  }

  acceptedBytes(): Buffer {
    return Buffer.concat(this.accepted);
  }
}

function assertAccounting(stats: SinkStats, ledger: Ledger): void {
  assert.equal(
    stats.writtenEvents + stats.droppedEvents + stats.queuedEvents,
    ledger.events,
    `written + dropped + queued events is what was written: ${JSON.stringify(stats)}`,
  );
  assert.equal(
    stats.writtenBytes + stats.droppedBytes + stats.queuedBytes,
    ledger.bytes,
    `written + dropped + queued bytes is what was written: ${JSON.stringify(stats)}`,
  );
}

/**
 * Stalls the destination and writes events until the sink's queue is at
 * its bound and stays there (what the kernel still buffers drains first);
 * fails if it never does.
 */
async function stallAndFill(d: ContractDestination, ledger: Ledger, format: EventFormat): Promise<void> {
  await d.stall();
  for (let i = 0; i < MAX_EVENTS;) {
    for (; i < MAX_EVENTS; i++) {
      if (!ledger.write(d.sink, events(1, format)[0]!.bytes)) break;
    }
    if (await isPending(d.sink.drained())) return;
  }
  assert.fail(`The queue never stayed full in ${MAX_EVENTS} events with a stalled destination`);
}

async function waitFor(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`Timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** True when `promise` is still pending after the event loop went round a few times. */
async function isPending(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(() => (settled = true));
  for (let i = 0; i < 5; i++) await tick();
  return !settled;
}

/** Runs the sink contract against `harness`. */
export function sinkContract(harness: ContractHarness): void {
  const { format } = harness;

  async function withDestination(
    options: SinkOptions,
    fn: (d: ContractDestination) => Promise<void>,
  ): Promise<void> {
    const d = await harness.open(options);
    try {
      await fn(d);
    } finally {
      d.sink.destroy();
      await d.cleanup();
    }
  }

  void describe(`${harness.name} sink contract`, { skip: harness.skip, timeout: 4 * WAIT_MS }, () => {
    void test('delivers every event in order, byte for byte, and flush() means it arrived', () =>
      withDestination({ policy: 'block' }, async (d) => {
        const ledger = new Ledger('block');
        const list = events(300, format);
        // One event per write, then several per write.
        for (const e of list.slice(0, 100)) ledger.write(d.sink, e.bytes);
        for (let i = 100; i < 300; i += 5) {
          ledger.write(d.sink, Buffer.concat(list.slice(i, i + 5).map((e) => e.bytes)), 5);
        }
        await d.sink.flush();
        const stats = d.sink.stats();
        assert.equal(stats.writtenEvents, 300);
        assert.equal(stats.queuedEvents, 0);
        assert.equal(stats.droppedEvents, 0);
        assertAccounting(stats, ledger);
        const expected = ledger.acceptedBytes();
        assert.equal(stats.writtenBytes, expected.length);
        assert.ok(
          (await d.received(expected.length)).equals(expected),
          'the destination has exactly the bytes',
        );
        assert.equal(stats.kind, d.sink.kind);
        assert.equal(stats.target, d.sink.target);
        assert.equal(stats.policy, 'block');
        assert.equal(stats.state, 'open');
      }));

    void test('block: write() returns false at the bound, drained() waits for room, nothing is lost', () =>
      withDestination({ policy: 'block', maxQueueEvents: 40, maxQueueBytes: 1 << 20 }, async (d) => {
        const ledger = new Ledger('block');
        await d.sink.flush(); // connected, opened
        await stallAndFill(d, ledger, format);
        assert.equal(ledger.dropped.length, 0, 'a block sink drops nothing');
        assert.ok(d.sink.stats().queuedEvents >= 40, 'the queue is at its bound');
        // It keeps accepting (the caller decides to wait), and drops nothing.
        ledger.write(d.sink, events(1, format)[0]!.bytes);
        const drained = d.sink.drained();
        assert.ok(await isPending(drained), 'drained() waits while the destination is stalled');
        const flushed = d.sink.flush();
        assert.ok(await isPending(flushed), 'flush() waits while the destination is stalled');
        await d.resume();
        await drained;
        for (const e of events(200, format)) {
          if (!ledger.write(d.sink, e.bytes)) await d.sink.drained();
        }
        await flushed;
        await d.sink.flush();
        const stats = d.sink.stats();
        assert.equal(stats.droppedEvents, 0);
        assert.equal(stats.writtenEvents, ledger.events);
        assertAccounting(stats, ledger);
        assert.equal(ledger.dropped.length, 0);
        const expected = ledger.acceptedBytes();
        assert.ok((await d.received(expected.length)).equals(expected), 'everything arrived, in order');
      }));

    void test('drop: a stalled destination costs the writer nothing; drops are counted, the rest arrives whole', () =>
      withDestination({ policy: 'drop', maxQueueEvents: 30, maxQueueBytes: 1 << 20 }, async (d) => {
        const ledger = new Ledger('drop');
        await d.sink.flush();
        await stallAndFill(d, ledger, format);
        for (const e of events(100, format)) ledger.write(d.sink, e.bytes);
        let stats = d.sink.stats();
        assert.ok(stats.droppedEvents > 0);
        assert.equal(
          stats.droppedEvents,
          ledger.dropped.length,
          'write() returned false for each dropped event',
        );
        assert.ok(stats.queuedEvents <= 30, `the queue stays within its bound: ${stats.queuedEvents}`);
        assertAccounting(stats, ledger);
        await d.resume();
        await d.sink.flush();
        stats = d.sink.stats();
        assertAccounting(stats, ledger);
        assert.equal(stats.queuedEvents, 0);
        assert.equal(stats.writtenEvents, ledger.acceptedEvents);
        const expected = ledger.acceptedBytes();
        const got = await d.received(expected.length);
        for (const e of splitEvents(got)) assert.notEqual(e.serial, -1, `a torn record arrived: ${e.text}`);
        assert.ok(got.equals(expected), 'exactly the accepted events arrived, whole and in order');
      }));

    void test('close() delivers what is queued, is idempotent, and refuses later writes', () =>
      withDestination({ policy: 'drop' }, async (d) => {
        const ledger = new Ledger('drop');
        for (const e of events(50, format)) ledger.write(d.sink, e.bytes);
        const closing = d.sink.close();
        assert.equal(d.sink.close(), closing, 'every close() returns the same promise');
        assert.equal(
          ledger.write(d.sink, events(1, format)[0]!.bytes),
          false,
          'a write after close is dropped',
        );
        await closing;
        await d.sink.close();
        await d.sink.flush();
        await d.sink.drained();
        d.sink.destroy();
        const stats = d.sink.stats();
        assert.equal(stats.state, 'closed');
        assert.equal(stats.writtenEvents, 50);
        assert.equal(stats.droppedEvents, 1);
        assertAccounting(stats, ledger);
        const expected = ledger.acceptedBytes();
        assert.ok((await d.received(expected.length)).equals(expected));
      }));

    void test('close() gives up on a stalled destination after its timeout and counts what it dropped', () =>
      withDestination({ policy: 'drop', maxQueueEvents: 30, closeTimeoutMs: 200 }, async (d) => {
        const ledger = new Ledger('drop');
        await d.sink.flush();
        await stallAndFill(d, ledger, format);
        await d.sink.close();
        const stats = d.sink.stats();
        assert.equal(stats.state, 'closed');
        assert.equal(stats.queuedEvents, 0);
        assert.ok(stats.droppedEvents > 0);
        assert.equal(stats.lastError?.code, 'ETIMEDOUT');
        assert.match(
          stats.lastError.message,
          /^Cannot deliver to ".+" within 200 ms of closing: \d+ events dropped$/,
        );
        assertAccounting(stats, ledger);
        await d.resume();
      }));

    void test('destroy() drops the queue at once, counts it, and settles every waiter', () =>
      withDestination({ policy: 'block', maxQueueEvents: 20 }, async (d) => {
        const ledger = new Ledger('block');
        await d.sink.flush();
        await stallAndFill(d, ledger, format);
        const drained = d.sink.drained();
        const flushed = d.sink.flush();
        d.sink.destroy(new Error('the container is gone'));
        d.sink.destroy();
        await drained;
        await flushed;
        await d.sink.close();
        const stats = d.sink.stats();
        assert.equal(stats.state, 'closed');
        assert.equal(stats.queuedEvents, 0);
        assert.ok(stats.droppedEvents > 0);
        assert.ok(stats.errors >= 1);
        assert.match(stats.lastError?.message ?? '', /the container is gone/);
        assertAccounting(stats, ledger);
        assert.equal(ledger.write(d.sink, events(1, format)[0]!.bytes), false);
        assertAccounting(d.sink.stats(), ledger);
        await d.resume();
      }));

    void test('flush() with an abort signal stops waiting and loses nothing', () =>
      withDestination({ policy: 'block', maxQueueEvents: 30 }, async (d) => {
        const ledger = new Ledger('block');
        await d.sink.flush();
        await stallAndFill(d, ledger, format);
        const controller = new AbortController();
        const flushed = d.sink.flush({ signal: controller.signal });
        controller.abort(new Error('shutting down'));
        await assert.rejects(flushed, /shutting down/);
        await d.resume();
        await d.sink.flush();
        assert.equal(d.sink.stats().writtenEvents, ledger.events);
      }));

    const restart = harness.restart?.bind(harness);
    void test(
      'survives its destination going away (EPIPE, ECONNRESET) and delivers what was queued meanwhile',
      { skip: restart === undefined ? 'this destination has no connection to break' : false },
      () =>
        withDestination({ policy: 'drop', maxQueueEvents: 1000 }, async (d) => {
          const ledger = new Ledger('drop');
          for (const e of events(20, format)) ledger.write(d.sink, e.bytes);
          await d.sink.flush();
          const before = ledger.acceptedBytes();
          await d.received(before.length);
          await restart!(d, () => {
            for (const e of events(20, format)) ledger.write(d.sink, e.bytes);
          });
          for (const e of events(20, format)) ledger.write(d.sink, e.bytes);
          await d.sink.flush();
          const stats = d.sink.stats();
          assert.ok(stats.reconnects >= 1, 'it reconnected');
          assert.equal(stats.droppedEvents, 0);
          assert.equal(stats.writtenEvents, 60);
          assertAccounting(stats, ledger);
          const expected = ledger.acceptedBytes();
          assert.ok(
            (await d.received(expected.length)).equals(expected),
            'everything arrived once, in order',
          );
        }),
    );

    void test('onSettled hears of every write once, delivered or dropped, queued ones in order', async () => {
      const settled: { bytes: Buffer; delivered: boolean }[] = [];
      const onSettled = (bytes: Buffer, delivered: boolean): void => {
        settled.push({ bytes, delivered });
      };
      await withDestination({ policy: 'drop', maxQueueEvents: 30, onSettled }, async (d) => {
        const ledger = new Ledger('drop');
        for (const e of events(20, format)) ledger.write(d.sink, e.bytes);
        await d.sink.flush();
        await stallAndFill(d, ledger, format);
        for (const e of events(50, format)) ledger.write(d.sink, e.bytes);
        await d.resume();
        await d.sink.flush();
        await d.sink.close();
        ledger.write(d.sink, events(1, format)[0]!.bytes);
        const stats = d.sink.stats();
        assertAccounting(stats, ledger);
        assert.equal(settled.length, ledger.accepted.length + ledger.dropped.length, 'one call per write');
        const seen = new Set(settled.map((s) => s.bytes));
        assert.equal(seen.size, settled.length, 'no write settles twice');
        for (const b of [...ledger.accepted, ...ledger.dropped])
          assert.ok(seen.has(b), 'every write settles');
        const delivered = settled.filter((s) => s.delivered).map((s) => s.bytes);
        assert.equal(Buffer.concat(delivered).length, stats.writtenBytes);
        assert.equal(
          settled.filter((s) => !s.delivered).reduce((n, s) => n + s.bytes.length, 0),
          stats.droppedBytes,
        );
        assert.ok(
          Buffer.concat(delivered).equals(ledger.acceptedBytes()),
          'delivered writes settle in the order they were made',
        );
      });
    });

    void test('write() refuses a count that is not one', () =>
      withDestination({}, async (d) => {
        assert.throws(() => d.sink.write(Buffer.from('x\n'), -1), RangeError);
        assert.throws(() => d.sink.write(Buffer.from('x\n'), 1.5), RangeError);
        await d.sink.close();
      }));
  });
}

/** Waits until `sink` no longer reports itself open (it saw its destination go). */
export function waitUntilNotOpen(sink: Sink): Promise<void> {
  return waitFor(`${sink.kind} sink "${sink.target}" to notice`, () => sink.stats().state !== 'open');
}

/** Waits until `sink` reports itself open. */
export function waitUntilOpen(sink: Sink): Promise<void> {
  return waitFor(`${sink.kind} sink "${sink.target}" to open`, () => sink.stats().state === 'open');
}
