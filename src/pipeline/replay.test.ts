import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { OutputFormat } from './replay.js';
import { prng } from '../../test/support/prng.js';
import { ReplayPipeline } from './replay.js';

const sample = readFileSync(new URL('../../../testdata/mixed.log', import.meta.url));

function replay(chunks: Buffer[], format: OutputFormat): string {
  const p = new ReplayPipeline({ format });
  const out: Buffer[] = [];
  for (const c of chunks) out.push(p.push(c));
  out.push(p.end());
  return Buffer.concat(out).toString('utf8');
}

for (const format of ['json', 'text'] as const) {
  test(`replay (${format}) gives the same output whole, split at every byte, and in random chunks`, () => {
    const whole = replay([sample], format);
    assert.ok(whole.length > 0);
    for (let i = 1; i < sample.length; i++) {
      const got = replay([sample.subarray(0, i), sample.subarray(i)], format);
      if (got !== whole) assert.equal(got, whole, `split at byte ${i}`);
    }
    assert.equal(
      replay(
        [...sample].map((b) => Buffer.from([b])),
        format,
      ),
      whole,
      'one byte at a time',
    );
    for (let seed = 1; seed <= 50; seed++) {
      const rnd = prng(seed);
      const chunks: Buffer[] = [];
      for (let i = 0; i < sample.length;) {
        const n = 1 + Math.floor(rnd() * 300);
        chunks.push(sample.subarray(i, i + n));
        i += n;
      }
      assert.equal(replay(chunks, format), whole, `random chunks, seed ${seed}`);
    }
  });
}

test('replay writes one JSON object per event with the documented fields', () => {
  const lines = replay([sample], 'json').trimEnd().split('\n');
  const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const first = events.find((e) => e['serial'] === 15558)!;
  assert.equal(first['time'], '1615114232.375');
  assert.equal(first['node'], 'work');
  assert.equal(first['contid'], null);
  const recs = first['records'] as {
    type: string;
    fields: Record<string, string>;
    interp?: Record<string, string>;
    argv?: string[];
  }[];
  assert.deepEqual(
    recs.map((r) => r.type),
    ['SYSCALL', 'EXECVE', 'CWD', 'PATH'],
  );
  assert.deepEqual(Object.keys(recs[0]!.fields).slice(0, 3), ['arch', 'syscall', 'success']);
  assert.equal(recs[0]!.fields['comm'], '"whoami"');
  assert.equal(recs[0]!.interp?.['syscall'], 'execve');
  assert.equal(recs[0]!.interp?.['auid'], 'user');
  assert.deepEqual(recs[1]!.argv, ['sh', '-c', 'echo hello world']);
});

test('replay interprets syscalls, errnos, hex values and clone flags without the enriched part', () => {
  const events = replay([sample], 'json')
    .trimEnd()
    .split('\n')
    .map(
      (l) =>
        JSON.parse(l) as {
          serial: number;
          records: { type: string; interp?: Record<string, string>; argv?: string[] }[];
        },
    );
  const get = (serial: number) => events.find((e) => e.serial === serial)!.records;
  const open = get(15561);
  assert.equal(open[0]!.interp?.['syscall'], 'openat');
  assert.equal(open[0]!.interp?.['exit'], 'EACCES(Permission denied)');
  assert.equal(open[0]!.interp?.['comm'], 'a b c');
  assert.equal(open[0]!.interp?.['key'], 'k1,k2');
  assert.equal(open[0]!.interp?.['auid'], undefined);
  assert.deepEqual(open[1]!.argv, ['cat', '/etc/shadow']);
  const clone = get(15559);
  assert.equal(clone[0]!.interp?.['a0'], 'CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD');
  assert.deepEqual(get(15563)[0]!.argv, ['cat', 'ABCDEFGH']);
  assert.equal(get(15570)[0]!.interp?.['syscall'], 'execve');
  assert.equal(get(15571)[0]!.interp?.['syscall'], 'clone');
  assert.equal(get(15560)[0]!.interp?.['auid'], 'unset');
});

test('replay counts the bad line and keeps the truncated last line when it parses', () => {
  const p = new ReplayPipeline({ format: 'json' });
  p.push(sample);
  p.end();
  const st = p.stats();
  assert.equal(st.badLines, 1);
  assert.equal(st.issues[0]?.line, 10);
  assert.equal(st.records, 15);
});
