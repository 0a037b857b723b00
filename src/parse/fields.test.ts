import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitFields, splitNestedMsg } from './fields.js';

function fields(text: string): [string, string][] {
  const n: string[] = [];
  const v: string[] = [];
  splitFields(text, n, v);
  return n.map((name, i) => [name, v[i]!]);
}

const cases: [string, string, [string, string][]][] = [
  [
    'plain values',
    'arch=c000003e syscall=59',
    [
      ['arch', 'c000003e'],
      ['syscall', '59'],
    ],
  ],
  [
    'quoted values keep their quotes and spaces',
    'comm="a b" exe="/x"',
    [
      ['comm', '"a b"'],
      ['exe', '"/x"'],
    ],
  ],
  [
    'empty value is kept',
    'subj= res=1',
    [
      ['subj', ''],
      ['res', '1'],
    ],
  ],
  [
    'words without = are skipped',
    'user pid=1 PAM: x=2',
    [
      ['pid', '1'],
      ['x', '2'],
    ],
  ],
  [
    'single-quoted msg stays whole',
    "pid=1 msg='op=x res=success' z=3",
    [
      ['pid', '1'],
      ['msg', "'op=x res=success'"],
      ['z', '3'],
    ],
  ],
  [
    'braces group an interpreted address',
    'SADDR={ saddr_fam=inet laddr=1.2.3.4 } X=1',
    [
      ['SADDR', '{ saddr_fam=inet laddr=1.2.3.4 }'],
      ['X', '1'],
    ],
  ],
  ['an unterminated quote takes the rest', 'a="open b=2', [['a', '"open b=2']]],
  [
    'split execve arguments',
    'a1_len=5 a1[0]=68 a1[1]=69',
    [
      ['a1_len', '5'],
      ['a1[0]', '68'],
      ['a1[1]', '69'],
    ],
  ],
  [
    'a value may contain =',
    'data=a=b c=1',
    [
      ['data', 'a=b'],
      ['c', '1'],
    ],
  ],
  [
    'several spaces between fields',
    'a=1   b=2 ',
    [
      ['a', '1'],
      ['b', '2'],
    ],
  ],
];

for (const [name, text, want] of cases) {
  test(`field splitter: ${name}`, () => {
    assert.deepEqual(fields(text), want);
  });
}

test('nested msg expands into its inner fields', () => {
  const n: string[] = [];
  const v: string[] = [];
  assert.equal(splitNestedMsg('\'op=PAM:accounting acct="root" res=success\'', n, v), true);
  assert.deepEqual(n, ['op', 'acct', 'res']);
  assert.deepEqual(v, ['PAM:accounting', '"root"', 'success']);
  assert.equal(splitNestedMsg('"not single"', n, v), false);
});

test("a user message's msg='…' runs to the last quote: quotes in its text add no field", () => {
  // The sender's text is `a' uid=0 x='y`: the kernel writes it inside msg='…' as it is.
  assert.deepEqual(fields("pid=7 uid=1000 auid=4242 ses=3 msg='a' uid=0 x='y'"), [
    ['pid', '7'],
    ['uid', '1000'],
    ['auid', '4242'],
    ['ses', '3'],
    ['msg', "'a' uid=0 x='y'"],
  ]);
  // Inside the text, its own quotes delimit its values (as auparse reads them).
  const n: string[] = [];
  const v: string[] = [];
  assert.ok(splitNestedMsg("'op=x cmd='ls' res=success'", n, v));
  assert.deepEqual(n, ['op', 'cmd', 'res']);
  assert.deepEqual(v, ['x', "'ls'", 'success']);
});
