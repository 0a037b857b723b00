import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTimeSpec, resolveTimeSpec, type Clock } from './time-spec.js';
import { UsageError } from './usage.js';

// Wednesday 2026-12-09 15:30:45.250 local time, booted an hour before.
const now = new Date(2026, 11, 9, 15, 30, 45, 250).getTime();
const clock: Clock = { nowMs: now, bootMs: () => now - 3_600_000 };
const local = (...a: [number, number, number, number?, number?, number?]): number =>
  new Date(a[0], a[1] - 1, a[2], a[3] ?? 0, a[4] ?? 0, a[5] ?? 0).getTime();

const cases: [string, 'since' | 'until', number][] = [
  ['now', 'since', now],
  ['recent', 'since', now - 600_000],
  ['boot', 'until', now - 3_600_000],
  ['today', 'since', local(2026, 12, 9)],
  ['today', 'until', now],
  ['yesterday', 'since', local(2026, 12, 8)],
  ['this-week', 'since', local(2026, 12, 6)], // the Sunday before
  ['week-ago', 'since', local(2026, 12, 2)],
  ['this-month', 'since', local(2026, 12, 1)],
  ['this-year', 'since', local(2026, 1, 1)],
  ['12/07/2026', 'since', local(2026, 12, 7)],
  ['12/07/26', 'since', local(2026, 12, 7)],
  ['2026-12-07', 'until', local(2026, 12, 8) - 1],
  ['12/07/2026 13:05', 'since', local(2026, 12, 7, 13, 5)],
  ['2026-12-07T13:05:09', 'until', local(2026, 12, 7, 13, 5, 9) + 999],
  ['08:00', 'since', local(2026, 12, 9, 8)],
  ['@1700000000', 'since', 1_700_000_000_000],
  ['@1700000000.25', 'since', 1_700_000_000_250],
];
for (const [text, which, expected] of cases) {
  test(`--${which} ${text} is ${new Date(expected).toString()}`, () => {
    assert.equal(resolveTimeSpec(parseTimeSpec(`--${which}`, text), which, clock), expected);
  });
}

test('time specs out of range or unknown are usage errors that say so', () => {
  assert.throws(() => parseTimeSpec('--since', '13/01/2026'), /out of range \(month 1 to 12\)/);
  assert.throws(() => parseTimeSpec('--since', '02/29/2026'), /out of range \(day 1 to 28 in that month\)/);
  assert.doesNotThrow(() => parseTimeSpec('--since', '02/29/2028'));
  assert.throws(() => parseTimeSpec('--until', '24:00'), /out of range \(00:00:00 to 23:59:59\)/);
  assert.throws(() => parseTimeSpec('--since', 'tomorrow'), UsageError);
  assert.throws(() => parseTimeSpec('--since', '12/07/2026 13:00 extra'), /is not a time/);
});
