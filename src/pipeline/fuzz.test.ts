import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ReplayPipeline } from './replay.js';
import { prng } from '../../test/support/prng.js';

const sample = readFileSync(new URL('../../../testdata/mixed.log', import.meta.url));
const ALPHABET = Buffer.from(
  'type=SYSCALL msg=audit(1.000:1): a="b\' {}\x1d\n\r\0 node=x EOE PROCTITLE 0123456789',
);

function mutate(rnd: () => number, input: Buffer): Buffer {
  const out = Buffer.from(input);
  const edits = 1 + Math.floor(rnd() * 20);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(rnd() * out.length);
    out[at] = rnd() < 0.5 ? ALPHABET[Math.floor(rnd() * ALPHABET.length)]! : Math.floor(rnd() * 256);
  }
  return out;
}

test('random and mutated input never throws out of the parser or assembler', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const rnd = prng(seed);
    const input =
      seed % 3 === 0
        ? Buffer.from(Array.from({ length: 2000 }, () => Math.floor(rnd() * 256)))
        : mutate(rnd, sample);
    for (const format of ['json', 'text'] as const) {
      const p = new ReplayPipeline({ format, maxLineBytes: 4096, maxInFlight: 16 });
      let out = '';
      try {
        out += p.push(input).toString('utf8');
        out += p.end().toString('utf8');
      } catch (err) {
        assert.fail(`seed ${seed} (${format}) threw: ${(err as Error).stack}`);
      }
      // Every JSON line the pipeline writes must be valid JSON.
      if (format === 'json') for (const l of out.split('\n')) if (l !== '') JSON.parse(l);
      const st = p.stats();
      assert.ok(st.records + st.badLines + st.skippedLines <= st.lines + 1, `seed ${seed}: counts add up`);
    }
  }
});

test('a stream of endless lines and open events stays within its bounds', () => {
  const p = new ReplayPipeline({ format: 'json', maxLineBytes: 1 << 16, maxInFlight: 1000 });
  const before = process.memoryUsage().heapUsed;
  // 200 MB of one line: held bytes must stay at the line bound.
  const block = Buffer.alloc(1 << 20, 0x41);
  for (let i = 0; i < 200; i++) p.push(block);
  p.push('\n');
  // 100,000 events that never close: the in-flight bound must hold.
  let out = 0;
  for (let i = 0; i < 100_000; i++) out += p.push(`type=SYSCALL msg=audit(1.000:${i}): a=${i}\n`).length;
  const grown = process.memoryUsage().heapUsed - before;
  const st = p.stats();
  assert.equal(st.badLines, 1);
  assert.equal(st.issues[0]?.code, 'ERR_LINE_TOO_LONG');
  assert.ok(st.maxOpen <= 1001, `max open ${st.maxOpen}`);
  assert.equal(st.evictedAtCapacity, 99_000);
  assert.ok(out > 0);
  assert.ok(grown < 150 * 1024 * 1024, `heap grew by ${(grown / 1e6).toFixed(1)} MB`);
});
