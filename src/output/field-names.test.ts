import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prngInt } from '../../test/support/prng.js';
import { nextField } from '../parse/fields.js';
import { FieldNames, NAME_PRIME, NAME_SEED } from './field-names.js';

/** The keys FieldNames gives the fields of `text`, read as the JSON writer reads them. */
function keysOf(text: string, nested: boolean): string[] {
  const src = Buffer.from(text, 'latin1');
  const names = new FieldNames(4096);
  names.begin(src, 0, src.length, nested);
  const range = new Int32Array(4);
  const keys: string[] = [];
  for (let i = 0; (i = nextField(src, i, src.length, range, nested)) >= 0;) {
    let ns = range[0]!;
    const ne = range[1]!;
    if (nested && src[ns] === 0x28 /* ( */) ns++;
    let h = NAME_SEED;
    for (let k = ns; k < ne; k++) h = Math.imul(h ^ src[k]!, NAME_PRIME);
    const suffix = names.add(ns, ne, h);
    const name = src.toString('latin1', ns, ne);
    keys.push(suffix === 0 ? name : `${name}#${suffix}`);
  }
  return keys;
}

/**
 * The rule, written plainly: a name already a key gets the smallest suffix
 * from the last one its copies had (2 at first) that is not a key yet.
 */
function expectedKeys(names: readonly string[]): string[] {
  const taken = new Set<string>();
  const next = new Map<string, number>();
  return names.map((name) => {
    let key = name;
    if (taken.has(name)) {
      let m = next.get(name) ?? 2;
      while (taken.has(`${name}#${m}`)) m++;
      next.set(name, m + 1);
      key = `${name}#${m}`;
    }
    taken.add(key);
    return key;
  });
}

test('field names: a repeat after thousands of distinct names is found, whichever of them share a bucket', () => {
  // 3,000 distinct names fill most buckets of hashes, so names sharing one
  // put the names so far into the table before any name repeats.
  const names = Array.from({ length: 3000 }, (_, i) => `n${i}`);
  const all = [...names, 'n0', 'n2999', 'n1500', 'n0'];
  const keys = keysOf(all.map((n) => `${n}=1`).join(' '), false);
  assert.deepEqual(keys.slice(3000), ['n0#2', 'n2999#2', 'n1500#2', 'n0#3']);
  assert.equal(new Set(keys).size, keys.length);
});

test('field names: random objects get the smallest free suffixes, in records and in user messages', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const rnd = prngInt(seed);
    const nested = seed % 2 === 0;
    const pool = [
      'a',
      'b',
      'ab',
      'a#2',
      'a#3',
      'b#2',
      'a#2#2',
      ...Array.from({ length: 40 }, (_, i) => `x${i}`),
    ];
    const distinct = rnd(4) === 0 ? 600 : 0;
    const names: string[] = [];
    const words: string[] = [];
    const count = 1 + rnd(80);
    for (let i = 0; i < count + distinct; i++) {
      const name = i < distinct ? `d${i}` : pool[rnd(pool.length)]!;
      names.push(name);
      const value = rnd(3) === 0 ? '"v w"' : String(rnd(100));
      // In a user message, a name may carry the `(` of old PAM texts.
      words.push(`${nested && rnd(4) === 0 ? '(' : ''}${name}=${value}`);
      if (rnd(8) === 0) words.push('word'); // no `=`: not a field
    }
    const keys = keysOf(words.join(' '), nested);
    assert.deepEqual(keys, expectedKeys(names), `seed ${seed}`);
  }
});

test("field names: a name with a '#' that comes after suffixes were given is told apart from them", () => {
  // Suffixes are not put in the table while no name of the object has a
  // '#' (none can be taken); the first such name puts them in.
  const text = (names: string[]): string => names.map((n) => `${n}=1`).join(' ');
  assert.deepEqual(keysOf(text(['a', 'a', 'a', 'a#2', 'a#3', 'a']), false), [
    'a',
    'a#2',
    'a#3',
    'a#2#2',
    'a#3#2',
    'a#4',
  ]);
  assert.deepEqual(keysOf(text(['a', 'b', 'a', 'b', 'b#2', 'a#2', 'a']), true), [
    'a',
    'b',
    'a#2',
    'b#2',
    'b#2#2',
    'a#2#2',
    'a#3',
  ]);
  assert.deepEqual(keysOf(text(['a#2', 'a', 'a']), false), ['a#2', 'a', 'a#3']);
});
