// AuditReader against the real kernel, under withAuditState (lock, then
// restore). Audit is enabled only for the duration of each test and the
// one rule matches only processes spawned with auid 4242.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  auditSkipReason,
  skipIfDaemonRegistered,
  runWithLoginuid,
  TEST_LOGINUID,
  withAuditState,
  type AuditStateContext,
} from '../../test/support/audit-state.js';
import { Collector } from '../../test/support/collector.js';
import { holdLibuvPool } from '../../test/support/pool.js';
import { startDaemonChild } from '../../test/support/daemon-child.js';
import { ownNetlinkPorts, sendFromUserspace } from '../../test/support/netlink-spoof.js';
import { encodeMessage } from './nlmsg.js';
import { NETLINK_AUDIT } from './socket-constants.js';
import type { AuditNetlink } from './netlink.js';
import { AuditReader, HURRY_MS, type AuditMessage, type AuditReaderOptions } from './reader.js';

const skip = auditSkipReason() ?? false;
// Longer than the lock wait (120 s), so a busy lock fails with its own message.
const timeout = 180_000;
const USER_TYPE = 2142;
const SYSCALL = 1300;

/** Enables audit and adds `-a always,exit -F arch=b64 -S execve -F auid=4242 -k KEY`. */
function auditExecveOfTestUser({ netlink }: AuditStateContext, key: string): void {
  netlink.setStatus({ enabled: true, backlogLimit: 8192 });
  netlink.addRule({
    list: 'exit',
    action: 'always',
    arch: 'b64',
    syscalls: [59],
    fields: [{ name: 'auid', op: '=', value: TEST_LOGINUID }],
    key,
  });
}

const isUserMessage =
  (nonce: string) =>
  (m: AuditMessage): boolean =>
    m.type === USER_TYPE && m.payload.includes(`nonce=${nonce}`);

const isExecveOf =
  (pid: number, key: string) =>
  (m: AuditMessage): boolean =>
    m.type === SYSCALL && m.payload.includes(` pid=${pid} `) && m.payload.includes(`key="${key}"`);

/** Sends a marker and runs /bin/true as auid 4242; returns the nonce and the child's pid. */
async function provoke(netlink: AuditNetlink): Promise<{ nonce: string; pid: number }> {
  const nonce = randomUUID();
  netlink.sendUserMessage(USER_TYPE, `op=test nonce=${nonce}`);
  const run = await runWithLoginuid(TEST_LOGINUID, ['/bin/true']);
  assert.equal(run.code, 0, run.stderr);
  return { nonce, pid: run.pid };
}

void test(
  'a unicast reader registers, reads kernel-stamped records and unregisters on close',
  { skip, timeout },
  async (t) => {
    await withAuditState(async (context) => {
      if (skipIfDaemonRegistered(t, context)) return;
      const key = `contid-test-${process.pid}`;
      auditExecveOfTestUser(context, key);
      const reader = await AuditReader.open({ mode: 'unicast' });
      try {
        assert.equal(context.netlink.getStatus().pid, process.pid, 'the reader registered process.pid');
        assert.ok(reader.stats().receiveBufferBytes >= 64 * 1024 * 1024, 'SO_RCVBUFFORCE took effect');
        const collector = new Collector(reader);
        const { nonce, pid } = await provoke(context.netlink);

        const user = await collector.waitFor(isUserMessage(nonce), 'user message');
        assert.match(user.payload, /^audit\(\d+\.\d{3}:\d+\): /);
        assert.match(user.payload, new RegExp(` pid=${process.pid} uid=0 `), 'the kernel stamped our pid');
        assert.ok(user.payload.endsWith(`msg='op=test nonce=${nonce}'`), 'the text arrived whole');

        const execve = await collector.waitFor(isExecveOf(pid, key), 'execve SYSCALL record');
        assert.match(execve.payload, / syscall=59 success=yes /);
        assert.match(execve.payload, new RegExp(` auid=${TEST_LOGINUID} `));
        assert.match(execve.payload, / exe="\/usr\/bin\/true" /);
        // The EOE record carries the event's stamp, `audit(SEC.MS:SERIAL): `, and nothing else.
        const stamp = execve.payload.slice(0, execve.payload.indexOf('): ') + 3);
        await collector.waitFor((m) => m.type === 1320 && m.payload.startsWith(stamp), 'EOE record');
      } finally {
        await reader.close();
      }
      await reader.close();
      assert.equal(context.netlink.getStatus().pid, 0, 'close unregistered');
      const stats = reader.stats();
      assert.ok(stats.messages >= 3 && stats.bytes > 0 && stats.batches > 0, JSON.stringify(stats));
      assert.equal(stats.enobufs, 0);
      assert.equal(stats.queuedMessages, 0);
    });
  },
);

void test(
  'a multicast reader reads the same records while another socket is the daemon',
  { skip, timeout },
  async (t) => {
    await withAuditState(async (context) => {
      if (skipIfDaemonRegistered(t, context)) return;
      const key = `contid-test-${process.pid}`;
      auditExecveOfTestUser(context, key);
      const daemon = await AuditReader.open({ mode: 'unicast' });
      const copy = await AuditReader.open({ mode: 'multicast' });
      try {
        const fromDaemon = new Collector(daemon);
        const fromCopy = new Collector(copy);
        const { nonce, pid } = await provoke(context.netlink);
        for (const collector of [fromDaemon, fromCopy]) {
          const user = await collector.waitFor(isUserMessage(nonce), 'user message');
          assert.match(user.payload, new RegExp(` pid=${process.pid} `));
          await collector.waitFor(isExecveOf(pid, key), 'execve SYSCALL record');
        }
        const [a, b] = [fromDaemon, fromCopy].map((c) => c.messages.find(isUserMessage(nonce))?.payload);
        assert.equal(a, b, 'both readers got the identical record');
      } finally {
        await copy.close();
        await daemon.close();
      }
      assert.equal(context.netlink.getStatus().pid, 0);
    });
  },
);

void test(
  'a unicast reader cannot open while another daemon is registered (EEXIST)',
  { skip, timeout },
  async (t) => {
    await withAuditState(async (context) => {
      if (skipIfDaemonRegistered(t, context)) return;
      const { netlink } = context;
      const daemon = await startDaemonChild();
      try {
        await assert.rejects(AuditReader.open({ mode: 'unicast' }), {
          name: 'SyscallError',
          code: 'EEXIST',
          message: 'Cannot register as the audit daemon: another daemon is registered (EEXIST)',
        });
        assert.equal(netlink.getStatus().pid, daemon.pid);
      } finally {
        assert.equal(await daemon.stop(), 0);
      }
    });
  },
);

void test('close leaves a registration alone that is no longer ours', { skip, timeout }, async (t) => {
  await withAuditState(async (context) => {
    if (skipIfDaemonRegistered(t, context)) return;
    const { netlink } = context;
    const reader = await AuditReader.open({ mode: 'unicast' });
    // Same pid, so the kernel lets another of our sockets unregister.
    netlink.unregisterDaemon();
    const daemon = await startDaemonChild();
    try {
      await reader.close();
      assert.equal(netlink.getStatus().pid, daemon.pid, 'the other daemon is still registered');
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });
});

void test('a full queue pauses reading and no record is lost', { skip, timeout }, async (t) => {
  await withAuditState(async (context) => {
    if (skipIfDaemonRegistered(t, context)) return;
    const { netlink } = context;
    netlink.setStatus({ enabled: true, backlogLimit: 8192 });
    const reader = await AuditReader.open({ mode: 'unicast', maxQueuedMessages: 8, maxBatchMessages: 4 });
    try {
      const nonce = randomUUID();
      const count = 60;
      let highest = 0;
      for (let i = 0; i < count; i++) {
        netlink.sendUserMessage(USER_TYPE, `op=test nonce=${nonce} i=${i}`);
        // Let batches arrive between sends so the main thread sees the queue fill.
        if (i % 5 === 4) await sleep(10);
        highest = Math.max(highest, reader.stats().queuedMessages);
      }
      await sleep(300);
      const paused = reader.stats();
      assert.ok(paused.pauses >= 1, `reading paused: ${JSON.stringify(paused)}`);
      assert.ok(Math.max(highest, paused.queuedMessages) < count, 'the queue stayed bounded');

      const seen: number[] = [];
      for await (const batch of reader) {
        for (const m of batch) {
          const match = / i=(\d+)'$/.exec(m.payload);
          if (m.type === USER_TYPE && m.payload.includes(nonce) && match?.[1] !== undefined) {
            seen.push(Number(match[1]));
          }
        }
        if (seen.length === count) break;
      }
      assert.deepEqual(
        seen,
        Array.from({ length: count }, (_, i) => i),
        'every record arrived, in order',
      );
      assert.equal(reader.stats().enobufs, 0);
    } finally {
      await reader.close();
    }
    assert.equal(netlink.getStatus().pid, 0);
  });
});

void test('aborting the signal closes the reader and ends the iteration', { skip, timeout }, async (t) => {
  await withAuditState(async (context) => {
    if (skipIfDaemonRegistered(t, context)) return;
    const { netlink } = context;
    const controller = new AbortController();
    const reader = await AuditReader.open({ mode: 'unicast', signal: controller.signal });
    const consumed = (async () => {
      let batches = 0;
      for await (const batch of reader) batches += batch.length > 0 ? 1 : 0;
      return batches;
    })();
    controller.abort();
    assert.ok((await consumed) >= 0);
    await reader.close();
    assert.equal(netlink.getStatus().pid, 0);
  });
});

void test(
  'destroy discards queued records and the iteration throws the given error',
  { skip, timeout },
  async () => {
    await withAuditState(async ({ netlink }) => {
      netlink.setStatus({ enabled: true });
      const reader = await AuditReader.open({ mode: 'multicast' });
      netlink.sendUserMessage(USER_TYPE, `op=test nonce=${randomUUID()}`);
      await sleep(100);
      await reader.destroy(new Error('stop now'));
      assert.equal(reader.stats().queuedMessages, 0);
      await assert.rejects(reader[Symbol.asyncIterator]().next(), { message: 'stop now' });
    });
  },
);

void test(
  'records the kernel drops for a stalled multicast reader are counted as ENOBUFS',
  { skip, timeout },
  async () => {
    await withAuditState(async ({ netlink }) => {
      netlink.setStatus({ enabled: true, backlogLimit: 8192 });
      // A tiny socket buffer, and a queue that pauses reading after one record.
      const reader = await AuditReader.open({
        mode: 'multicast',
        receiveBufferBytes: 4096,
        maxQueuedMessages: 1,
      });
      try {
        const nonce = randomUUID();
        netlink.sendUserMessage(USER_TYPE, `op=test nonce=${nonce} i=first`);
        for (let waited = 0; reader.stats().pauses === 0 && waited < 5000; waited += 10) await sleep(10);
        assert.equal(reader.stats().pauses, 1, 'reading paused');
        const flood = 300;
        for (let i = 0; i < flood; i++) netlink.sendUserMessage(USER_TYPE, `op=test nonce=${nonce} i=${i}`);

        // kauditd delivers asynchronously: give it time while reading is paused.
        await sleep(300);
        assert.equal(reader.stats().pauses, 1, 'reading stayed paused');
        const collector = new Collector(reader);
        // Resumed, the reader first gets ENOBUFS, then what the socket held;
        // the socket drops everything until it has room again.
        for (let waited = 0; reader.stats().enobufs === 0 && waited < 5000; waited += 10) await sleep(10);
        await sleep(100);
        netlink.sendUserMessage(USER_TYPE, `op=test nonce=${nonce} i=last`);
        await collector.waitFor((m) => m.payload.includes(`nonce=${nonce} i=last`), 'last user message');
        const flooded = collector.messages.filter(
          (m) => / i=\d+'$/.test(m.payload) && m.payload.includes(nonce),
        );
        assert.ok(
          flooded.length < flood,
          `the kernel dropped records (${flooded.length} of ${flood} arrived)`,
        );
        assert.ok(reader.stats().enobufs >= 1, `the drop was counted: ${JSON.stringify(reader.stats())}`);
      } finally {
        await reader.close();
      }
    });
  },
);

void test(
  'a record sent to the reader by a userspace socket is ignored and counted, never delivered',
  { skip, timeout },
  async (t) => {
    // Multicast, so that no audit state changes: the reader's socket still
    // has a port id that any process with CAP_NET_ADMIN can send to.
    const reader = await AuditReader.open({ mode: 'multicast' });
    t.after(() => reader.close());
    const collector = new Collector(reader);
    const [port, ...others] = ownNetlinkPorts(NETLINK_AUDIT, 1);
    assert.ok(port !== undefined && others.length === 0, 'the reader socket is found');
    const nonce = randomUUID();
    const forged = Buffer.from(`audit(1795884974.142:24): arch=c000003e syscall=59 pid=1 nonce=${nonce}`);
    sendFromUserspace(NETLINK_AUDIT, encodeMessage(SYSCALL, 0, 0, forged), { port });
    const delivered = (): boolean => collector.messages.some((m) => m.payload.includes(nonce));
    for (let waited = 0; !(reader.stats().foreign >= 1) && !delivered() && waited < 10_000; waited += 10) {
      await sleep(10);
    }
    assert.equal(delivered(), false, 'a userspace datagram was taken for a kernel record');
    assert.equal(reader.stats().foreign, 1);
  },
);

void test('open refuses an unknown mode or a non-positive bound before opening a socket', async () => {
  await assert.rejects(AuditReader.open({ mode: 'both' as 'unicast' }), {
    name: 'RangeError',
    message: 'Cannot open an audit reader: unknown mode "both"',
  });
  await assert.rejects(AuditReader.open({ mode: 'multicast', maxQueuedMessages: 0 }), {
    name: 'RangeError',
    message: 'Cannot open an audit reader: maxQueuedMessages 0 is not a positive integer',
  });
});

/**
 * Iterates `reader` until a record matches `last`; returns the batches
 * read, in order. A record held back would come after NEVER_MS: past
 * HELD_MS the reader is destroyed, which fails the test (and lets it
 * restore the audit state) instead of hanging it.
 */
async function batchesUntil(
  reader: AuditReader,
  batches: AsyncIterator<readonly AuditMessage[]>,
  last: (m: AuditMessage) => boolean,
): Promise<(readonly AuditMessage[])[]> {
  const guard = setTimeout(() => {
    void reader.destroy(new Error(`The record was held back: no batch brought it within ${HELD_MS} ms`));
  }, HELD_MS);
  try {
    const out: (readonly AuditMessage[])[] = [];
    for (;;) {
      const next = await batches.next();
      assert.equal(next.done, false, 'the reader ended early');
      out.push(next.value);
      if (next.value.some(last)) return out;
    }
  } finally {
    clearTimeout(guard);
  }
}

// Records that wait for more wait far longer than the test.
const NEVER_MS = 3_600_000;
const HELD_MS = 30_000;
const URGENT_TYPE = 2143;
/** A reader whose records wait for ever, unless an urgent record is expected. */
const WAITING_FOR_URGENT = { flushMs: NEVER_MS, urgentTypes: [URGENT_TYPE] };

const hasNonce = (nonce: string) => (m: AuditMessage) => m.payload.includes(`nonce=${nonce}`);

/**
 * Under withAuditState, with audit enabled: a unicast reader opened with
 * `options` for `body`, closed after it.
 */
async function withUnicastReader(
  t: TestContext,
  options: Omit<AuditReaderOptions, 'mode'>,
  body: (reader: AuditReader, context: AuditStateContext) => Promise<void>,
): Promise<void> {
  await withAuditState(async (context) => {
    if (skipIfDaemonRegistered(t, context)) return;
    context.netlink.setStatus({ enabled: true });
    const reader = await AuditReader.open({ mode: 'unicast', ...options });
    try {
      await body(reader, context);
    } finally {
      await reader.close();
    }
  });
}

/** Resolves with true when `batches` brings nothing within `ms` (the pending next() is returned). */
async function quietFor(
  batches: AsyncIterator<readonly AuditMessage[]>,
  ms: number,
): Promise<{ quiet: boolean; pending: Promise<IteratorResult<readonly AuditMessage[]>> }> {
  const pending = batches.next();
  const quiet = await Promise.race([pending.then(() => false), sleep(ms).then(() => true)]);
  return { quiet, pending };
}

void test(
  'records wait in the socket for the next read, and expect() hands them over at once with the urgent record, in order',
  { skip, timeout },
  async (t) => {
    await withUnicastReader(t, WAITING_FOR_URGENT, async (reader, { netlink }) => {
      const batches = reader[Symbol.asyncIterator]();
      const nonces = Array.from({ length: 5 }, () => randomUUID());
      for (const nonce of nonces) netlink.sendUserMessage(USER_TYPE, `op=test nonce=${nonce}`);
      const { quiet, pending } = await quietFor(batches, 300);
      assert.equal(quiet, true, 'records were handed over before the batch wait');
      reader.expect();
      const urgent = randomUUID();
      netlink.sendUserMessage(URGENT_TYPE, `op=test nonce=${urgent}`);
      const first = await pending;
      assert.equal(first.done, false);
      const read = first.value.some(hasNonce(urgent))
        ? [first.value]
        : [first.value, ...(await batchesUntil(reader, batches, hasNonce(urgent)))];
      const ours = read.flat().filter((m) => [...nonces, urgent].some((n) => hasNonce(n)(m)));
      assert.deepEqual(
        ours.map((m) => /nonce=([0-9a-f-]+)/.exec(m.payload)?.[1]),
        [...nonces, urgent],
        'the five records waited and came with the urgent one, in the order sent',
      );
    });
  },
);

void test(
  'after expect(), records are handed over at once until the urgent record came, then wait again',
  { skip, timeout },
  async (t) => {
    await withUnicastReader(t, WAITING_FOR_URGENT, async (reader, { netlink }) => {
      const batches = reader[Symbol.asyncIterator]();
      reader.expect();
      const before = randomUUID();
      netlink.sendUserMessage(USER_TYPE, `op=test nonce=${before}`);
      // Without the announcement this record would wait for NEVER_MS.
      await batchesUntil(reader, batches, hasNonce(before));
      const marker = randomUUID();
      netlink.sendUserMessage(URGENT_TYPE, `op=test nonce=${marker}`);
      await batchesUntil(reader, batches, hasNonce(marker));

      // The announced record came: records wait again, for the next announcement.
      const after = randomUUID();
      netlink.sendUserMessage(USER_TYPE, `op=test nonce=${after}`);
      const { quiet, pending } = await quietFor(batches, 300);
      assert.equal(quiet, true, 'a record sent after the announced marker came was handed over at once');
      reader.expect();
      const next = randomUUID();
      netlink.sendUserMessage(URGENT_TYPE, `op=test nonce=${next}`);
      const got = await pending;
      assert.equal(got.done, false);
      assert.ok(got.value.some(hasNonce(after)), 'the waiting record came with the next announced read');
    });
  },
);

void test(
  `an announced urgent record that never comes is written off after ${HURRY_MS} ms: records wait again`,
  { skip, timeout },
  async (t) => {
    await withUnicastReader(t, WAITING_FOR_URGENT, async (reader, { netlink }) => {
      const batches = reader[Symbol.asyncIterator]();
      reader.expect(); // and no marker is sent
      const early = randomUUID();
      netlink.sendUserMessage(USER_TYPE, `op=test nonce=${early}`);
      await batchesUntil(reader, batches, hasNonce(early));
      await sleep(HURRY_MS + 100);
      const late = randomUUID();
      netlink.sendUserMessage(USER_TYPE, `op=test nonce=${late}`);
      const { quiet } = await quietFor(batches, 300);
      assert.equal(quiet, true, 'the reader still read every millisecond for a record that never came');
    });
  },
);

void test(
  "a reader that found its socket empty waits on it, with no thread of its own nor of libuv's pool, and wakes for the next record",
  { skip, timeout },
  async (t) => {
    // libuv's pool starts its threads on first use: start them before counting.
    await stat('/');
    const threads = readdirSync('/proc/self/task').length;
    // No idle reads: only the wait on the socket can bring the records, and
    // every pool thread is held, so that wait cannot be a poll on the pool.
    await withUnicastReader(t, { flushMs: 20, idleReadMs: NEVER_MS }, async (reader, { netlink }) => {
      assert.equal(readdirSync('/proc/self/task').length, threads, 'the reader started a thread');
      const release = holdLibuvPool();
      try {
        const batches = reader[Symbol.asyncIterator]();
        // Reads find nothing: the reader goes to sleep on the socket.
        await sleep(300);
        const nonce = randomUUID();
        netlink.sendUserMessage(USER_TYPE, `op=test nonce=${nonce}`);
        await batchesUntil(reader, batches, hasNonce(nonce));
        // And again, after another quiet spell.
        await sleep(300);
        const again = randomUUID();
        netlink.sendUserMessage(USER_TYPE, `op=test nonce=${again}`);
        await batchesUntil(reader, batches, hasNonce(again));
        // A stop does not wait for the pool either.
        await reader.close();
      } finally {
        await reader.close();
        await release();
      }
    });
  },
);

void test(
  'a SIGIO that no record raised (sent by another process) wakes nothing: the sleeping reader hands over nothing and still reads the next record',
  { skip, timeout },
  async (t) => {
    await withUnicastReader(t, { flushMs: 20, idleReadMs: NEVER_MS }, async (reader, { netlink }) => {
      const batches = reader[Symbol.asyncIterator]();
      await sleep(300); // the reader found its socket empty and sleeps
      // What came before (the registration's own records) is taken first.
      while (reader.queuedMessages > 0) await batches.next();
      for (let i = 0; i < 3; i++) process.kill(process.pid, 'SIGIO');
      const { quiet, pending } = await quietFor(batches, 300);
      if (!quiet) {
        const got = await pending;
        assert.fail(`a signal with nothing in the socket brought a batch: ${JSON.stringify(got.value)}`);
      }
      const nonce = randomUUID();
      netlink.sendUserMessage(USER_TYPE, `op=test nonce=${nonce}`);
      const first = await pending;
      assert.equal(first.done, false);
      if (!first.value.some(hasNonce(nonce))) await batchesUntil(reader, batches, hasNonce(nonce));
    });
  },
);

void test(
  'a sleeping reader hands over a batch at each idle read, even without records, and never more often',
  { skip, timeout },
  async (t) => {
    await withUnicastReader(t, { flushMs: 20, idleReadMs: 400 }, async (reader) => {
      assert.equal(reader.idleReadMs, 400);
      const batches = reader.batches();
      let empty = 0;
      const counting = (async () => {
        for (;;) {
          const next = await batches.next();
          if (next.done === true) return;
          if (next.value.types.length === 0) empty++;
        }
      })();
      await sleep(1300);
      // The consumer's turn (the daemon reads the proc connector then) about
      // every 400 ms: every 20 ms batch wait would make some 60.
      assert.ok(empty >= 2, `${empty} empty batches in 1.3 s: the idle reads gave the consumer no turn`);
      assert.ok(empty <= 4, `${empty} empty batches in 1.3 s: more than the idle reads`);
      await reader.close();
      await counting;
    });
  },
);

void test(
  'a record after a quiet spell is handed over a few milliseconds after its signal, not a batch wait later',
  { skip, timeout },
  async (t) => {
    const flushMs = 1000;
    await withUnicastReader(t, { flushMs, idleReadMs: NEVER_MS }, async (reader, { netlink }) => {
      const batches = reader[Symbol.asyncIterator]();
      // The registration's own records are read a batch wait after opening,
      // the next read finds the socket empty: the reader sleeps, and no
      // record comes for more than a batch wait.
      await sleep(2 * flushMs + 300);
      const nonce = randomUUID();
      netlink.sendUserMessage(USER_TYPE, `op=test nonce=${nonce}`);
      const sent = Date.now();
      await batchesUntil(reader, batches, hasNonce(nonce));
      const waited = Date.now() - sent;
      assert.ok(waited < flushMs / 2, `the record waited ${waited} ms: it was read at the batch wait`);
      // Records that follow closely get the batch wait again.
      const next = randomUUID();
      netlink.sendUserMessage(USER_TYPE, `op=test nonce=${next}`);
      const { quiet } = await quietFor(batches, 300);
      assert.equal(quiet, true, 'a record right after another was handed over without the batch wait');
    });
  },
);
