import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuditEvent } from '../assemble/event.js';
import { isIssue, parseNetlink, parseNetlinkBytes, RecordParser } from '../parse/parser.js';
import type { AuditRecord } from '../parse/record.js';
import { ByteSink } from './byte-sink.js';
import { formatEventText, TextEventWriter } from './text.js';

/** The records of `text`, parsed as a log. */
function records(text: string | Buffer): AuditRecord[] {
  const out: AuditRecord[] = [];
  const p = new RecordParser({
    onRecord: (r) => out.push(r),
    onIssue: (i) => {
      throw new Error(i.message);
    },
  });
  p.push(text);
  p.end();
  return out;
}

function event(recs: AuditRecord[]): AuditEvent {
  const first = recs[0]!;
  return {
    node: first.node,
    time: first.time,
    timeMs: first.timeMs,
    serial: first.serial,
    records: recs,
    closedBy: 'eoe',
  };
}

function write(e: AuditEvent, links: number[] = []): Buffer {
  const sink = new ByteSink(64);
  new TextEventWriter(sink).write(e, [], links);
  return sink.take();
}

test('text output is each record line byte for byte: spacing, numeric types, no colon, bad UTF-8', () => {
  const lines = Buffer.concat([
    Buffer.from('type=CWD msg=audit(1.000:1):  cwd="/root"\n'),
    Buffer.from('type=1302 msg=audit(1.000:1): item=0   name="/x"\n'),
    Buffer.from('node=h type=CONFIG_CHANGE msg=audit(1.000:1) config changed, x=1\n'),
    Buffer.from('type=PATH msg=audit(1.000:1): name='),
    Buffer.from([0xff, 0xc3, 0x28]),
    Buffer.from(' x=1\x1dOUID="root"\r\n'),
  ]);
  assert.deepEqual(write(event(records(lines))), lines);
});

test('text output replaces the record= link it read with the one it computes', () => {
  const line = 'type=SYSCALL msg=audit(1.000:1): arch=c000003e pid=5 record=1\x1dARCH=x86_64\n';
  const e = event(records(line));
  assert.equal(write(e, [0]).toString('latin1'), line);
  assert.equal(
    write(e).toString('latin1'),
    'type=SYSCALL msg=audit(1.000:1): arch=c000003e pid=5\x1dARCH=x86_64\n',
  );
  const empty = event(records('type=OBJ_PID msg=audit(1.000:1):  record=2\n'));
  assert.equal(write(empty).toString('latin1'), 'type=OBJ_PID msg=audit(1.000:1): \n');
});

test('text output links many records in linear time and in order', () => {
  const recs = records(
    Array.from({ length: 40 }, (_, i) => `type=OBJ_PID msg=audit(1.000:1): opid=${i}\n`).join(''),
  );
  const out = write(event(recs), [39, 3, 20, 0, 1, 2, 4, 5, 6, 7, 8]).toString('latin1').split('\n');
  assert.equal(out[3], 'type=OBJ_PID msg=audit(1.000:1): opid=3 record=4');
  assert.equal(out[9], 'type=OBJ_PID msg=audit(1.000:1): opid=9');
  assert.equal(out[39], 'type=OBJ_PID msg=audit(1.000:1): opid=39 record=40');
});

test('text output writes a netlink record as auditd writes it: one line, \\x1d as it came', () => {
  const r = parseNetlink(
    1100,
    Buffer.from(
      'audit(1.000:5): pid=7 uid=0 auid=4242 ses=3 msg=\'a\ntype=SYSCALL msg=audit(1.000:5): pid=1\x1dUID="root"\'',
    ),
  );
  assert.ok(!isIssue(r));
  const text = formatEventText(event([r]), [{ typeName: 'CONTAINER_ID', body: 'record=1 contid=4' }], [0]);
  assert.equal(
    text,
    'type=USER_AUTH msg=audit(1.000:5): pid=7 uid=0 auid=4242 ses=3 msg=\'a type=SYSCALL msg=audit(1.000:5): pid=1\x1dUID="root"\' record=1\n' +
      'type=CONTAINER_ID msg=audit(1.000:5): record=1 contid=4\n',
  );
});

test('text output of netlink records parsed where they lie in one batch buffer is each record alone', () => {
  // The live reader hands payloads over laid end to end, with no line end
  // between them: each record's line must stop at its own payload's end.
  const payloads = [
    'audit(1.000:5): arch=c000003e syscall=59 success=yes exit=0 pid=7 ',
    'audit(1.000:5): cwd="/"\0garbage after the NUL',
    'audit(1.000:5): item=0 name="/bin/true"   ',
    "audit(1.000:6): pid=7 uid=0 msg='a\nb'",
    'audit(1.000:6): proctitle=7472756500',
  ];
  const types = [1300, 1307, 1302, 1100, 1327];
  const batch = Buffer.from(payloads.join(''), 'latin1');
  const alone: string[] = [];
  const together: string[] = [];
  let start = 0;
  for (let i = 0; i < payloads.length; i++) {
    const end = start + Buffer.byteLength(payloads[i]!, 'latin1');
    const a = parseNetlink(types[i]!, Buffer.from(payloads[i]!, 'latin1'));
    const b = parseNetlinkBytes(types[i]!, batch, start, end);
    assert.ok(!isIssue(a) && !isIssue(b));
    alone.push(formatEventText(event([a])));
    together.push(formatEventText(event([b])));
    start = end;
  }
  assert.deepEqual(together, alone);
  assert.equal(alone[1], 'type=CWD msg=audit(1.000:5): cwd="/"\n');
});
