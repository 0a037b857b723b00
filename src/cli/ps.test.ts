// `contid ps` output of containers' names and metadata: whatever the text a
// set gave (or an imported log holds), a container stays one header line and
// one metadata line, and JSON gives the text back as it was.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { ContainerView } from '../store/ps.js';
import { displayText, formatPsJson, formatPsText } from './ps.js';

function view(name: string | null, meta: Record<string, string>, exe = '/usr/bin/crun'): ContainerView {
  return {
    chain: '42',
    ids: ['42'],
    state: 'live',
    owner: { uid: 0, auid: 4294967295, pid: 5000, exe, setMs: 1_795_886_100_000 },
    name,
    meta,
    firstMs: 1_795_886_100_100,
    lastMs: 1_795_886_100_100,
    events: 1,
    processes: [{ pid: 5001, ppid: 5000, exe, startMs: 1_795_886_100_100, born: true, children: [] }],
  };
}

const CASES: [string, string][] = [
  ['web', 'web'],
  ['nginx:1.27', 'nginx:1.27'],
  ['ünïcödé🐳', 'ünïcödé🐳'],
  ['web front', '"web front"'],
  ['say "hi"', '"say \\"hi\\""'],
  ['a\\b', '"a\\\\b"'],
  ['a\nb', '"a\\012b"'],
  ['\x1b[31mred', '"\\033[31mred"'],
  ['nel\u0085ls\u2028ps\u2029', '"nel\\302\\205ls\\342\\200\\250ps\\342\\200\\251"'],
  ['tab\there', '"tab\\011here"'],
  ['', '""'],
];

void describe('contid ps: names and metadata', () => {
  for (const [text, shown] of CASES) {
    void it(`shows ${JSON.stringify(text)} as ${shown}`, () => {
      assert.equal(displayText(text), shown);
    });
  }

  void it('puts the name on the container line and the metadata on the next, one line each', () => {
    for (const [text] of CASES) {
      const out = formatPsText([view(text, { image: text, [`k${text.length}`]: 'v' }, `/bin/${text}`)], null);
      const lines = out.split('\n');
      assert.equal(lines.length, 7, out);
      assert.equal(
        lines[2],
        `CONTAINER 42  name=${displayText(text)}  live  ${lines[2]!.split('  live  ')[1]!}`,
      );
      assert.ok(lines[3]!.startsWith(`  meta image=${displayText(text)} k${text.length}=v`), lines[3]);
      assert.ok(!/[\x00-\x1f\x7f\u0085\u2028\u2029]/.test(out.replace(/\n/g, '')), JSON.stringify(out));
      const json = JSON.parse(formatPsJson([view(text, { image: text })], null)) as {
        containers: { name: string; meta: Record<string, string> }[];
      };
      assert.equal(json.containers[0]!.name, text);
      assert.deepEqual(json.containers[0]!.meta, { image: text });
    }
  });

  void it('shows no name and no metadata line for a set that gave none', () => {
    const out = formatPsText([view(null, {})], null);
    assert.match(out, /^CONTAINER 42 {2}live {2}owner uid=0 /m);
    assert.ok(!out.includes('meta'));
    const json = JSON.parse(formatPsJson([view(null, {})], null)) as { containers: { name: unknown }[] };
    assert.equal(json.containers[0]!.name, null);
  });
});
