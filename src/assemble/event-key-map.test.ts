import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventKeyMap } from './event-key-map.js';

test('event key map agrees with a Map under random sets and deletes', () => {
  // A small deterministic generator (xorshift), so a failure reproduces.
  let x = 2463534242;
  const next = (n: number): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const m = new EventKeyMap<number>();
  const model = new Map<number | string, number>();
  for (let step = 0; step < 200_000; step++) {
    // Keys near a moving serial (as in a log), some far apart, some strings.
    const r = next(10);
    const key: number | string =
      r === 0 ? `k${next(50)}` : r === 1 ? next(2 ** 40) : Math.floor(step / 4) + next(64);
    if (next(3) === 0) {
      assert.equal(m.delete(key), model.delete(key), `delete ${key} at ${step}`);
    } else {
      m.set(key, step);
      model.set(key, step);
    }
    assert.equal(m.size, model.size);
    const probe: number | string = next(2) === 0 ? key : Math.floor(step / 4) + next(64);
    assert.equal(m.get(probe), model.get(probe), `get ${probe} at ${step}`);
    assert.equal(m.has(probe), model.has(probe));
  }
  for (const [k, v] of model) assert.equal(m.get(k), v);
});

test('event key map compares keys as a Map does (NaN finds NaN, -0 is 0)', () => {
  const m = new EventKeyMap<string>();
  m.set(Number.NaN, 'nan');
  m.set(-0, 'zero');
  m.set(1.5, 'frac');
  assert.equal(m.get(Number.NaN), 'nan');
  assert.equal(m.get(0), 'zero');
  assert.equal(m.get(1.5), 'frac');
  assert.equal(m.size, 3);
  assert.equal(m.delete(Number.NaN), true);
  assert.equal(m.has(Number.NaN), false);
});
