import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { labelledEvents } from '../../test/support/labelled-events.js';
import { parseKeyring } from '../marker/keyring.js';
import { formatEventText } from '../output/text.js';
import { labelOutput } from '../pipeline/labels.js';
import { LabelledRowAdapter } from './labelled-row.js';
import { decodePayload, packPayload, PayloadBuilder, PayloadError, unpackPayload } from './payload.js';

const CAPTURES = resolve(import.meta.dirname, '../../../testdata/captures');

test('every captured event prints back from its stored payload as the text output wrote it', () => {
  let events = 0;
  let linked = 0;
  for (const name of ['a-fork-tree', 'c-vfork', 'd-refusals', 'e-crun']) {
    const keyring = parseKeyring(readFileSync(`${CAPTURES}/${name}.keyring`, 'utf8'));
    const adapter = new LabelledRowAdapter();
    for (const le of labelledEvents(readFileSync(`${CAPTURES}/${name}.log`), { keyring })) {
      const out = labelOutput(le);
      const want = formatEventText(le.event, out.text, out.links);
      const stored = packPayload(Buffer.from(adapter.row(le).payload));
      const back = decodePayload(unpackPayload(stored));
      assert.equal(formatEventText(back.event, back.extras, back.links), want);
      assert.deepEqual(back.links, out.links);
      events++;
      if (out.links.length > 0) linked++;
    }
  }
  assert.ok(events > 300 && linked > 50, `${events} events, ${linked} with a CONTAINER_ID`);
});

test('a \\x1d is the enriched part only where the record had one', () => {
  const enriched =
    'type=SYSCALL msg=audit(1.000:5): arch=c000003e syscall=59 success=yes exit=0 pid=1 ppid=0 key=(null)\x1dARCH=x86_64 UID="root"';
  // A user message's own text (a RAW log): the \x1d is part of msg.
  const plain = "type=USER msg=audit(1.000:5): pid=7 uid=0 msg='a\x1dARCH=fake'";
  const b = new PayloadBuilder();
  b.line(enriched, { enriched: true });
  b.line(plain);
  const back = decodePayload(b.take());
  assert.equal(back.event.records[0]!.enriched, 'ARCH=x86_64 UID="root"');
  assert.equal(back.event.records[1]!.enriched, null);
  assert.equal(back.event.records[1]!.body, "pid=7 uid=0 msg='a\x1dARCH=fake'");
  assert.equal(formatEventText(back.event), `${enriched}\n${plain}\n`);
});

test('payloads that do not compress are stored as they are, and every form reads back', () => {
  const noise = randomBytes(200);
  const stored = packPayload(noise);
  assert.equal(stored[0], 0, 'plain');
  assert.deepEqual(unpackPayload(stored), noise);
  const b = new PayloadBuilder();
  b.line('type=PATH msg=audit(1.000:5): item=0 name="/usr/bin/true" nametype=NORMAL'.repeat(3));
  const big = b.take();
  const packed = packPayload(big);
  assert.equal(packed[0], 1, 'deflated with the dictionary');
  assert.ok(packed.length < big.length / 2);
  assert.deepEqual(unpackPayload(packed), big);
});

test('a damaged payload is a PayloadError, never a crash or a wrong event', () => {
  const b = new PayloadBuilder();
  b.line('type=SYSCALL msg=audit(1.000:5): pid=1');
  const good = b.take();
  const cases: [string, Buffer][] = [
    ['unknown codec', Buffer.from([9, 1, 2, 3])],
    ['bad deflate', Buffer.from([1, 0xff, 0xfe, 0xfd, 0xfc])],
    ['truncated record', Buffer.concat([Buffer.from([0]), good.subarray(0, good.length - 3)])],
    ['not a record', Buffer.concat([Buffer.from([0, 0, 5, 0, 0, 0]), Buffer.from('hello')])],
    ['no record', Buffer.from([0])],
  ];
  for (const [what, stored] of cases) {
    assert.throws(
      () => decodePayload(unpackPayload(stored)),
      (err: unknown) => err instanceof PayloadError && err.code === 'ERR_STORE_PAYLOAD',
      what,
    );
  }
});
