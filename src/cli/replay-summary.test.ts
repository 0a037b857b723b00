import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ReplayStats } from '../pipeline/replay.js';
import { progressLine, replaySummary } from './replay-summary.js';

const base: ReplayStats = {
  records: 40_000,
  events: 11_681,
  timedOut: 0,
  evictedAtCapacity: 0,
  duplicates: 0,
  late: 0,
  strayEoe: 0,
  lostEstimate: 0,
  serialResets: 0,
  maxOpen: 3,
  lines: 40_000,
  skippedLines: 0,
  badLines: 0,
  issues: [],
  labels: null,
  hold: null,
  nodes: 0,
  nodesOverflow: 0,
  forgeries: [],
  evidence: null,
  evidenceProblems: [],
  intactSpans: [],
  matched: null,
};

test('a clean replay sums up in one line', () => {
  assert.equal(
    replaySummary(base, { keyring: false, seconds: 1.25 }),
    'contid replay: 11,681 events from 40,000 records (40,000 lines) in 1.3 s\n',
  );
});

test('the summary shows only counters that are not zero, a line per subject', () => {
  const text = replaySummary(
    { ...base, badLines: 1, duplicates: 2, timedOut: 3, lostEstimate: 282, matched: 12 },
    { keyring: false, seconds: 1 },
  );
  const lines = text.trimEnd().split('\n');
  assert.deepEqual(lines.slice(1), [
    '  filters: 12 of 11,681 events matched',
    '  input: 1 line that is not an audit record, skipped (listed below), 2 duplicate records dropped',
    '  events: 3 events closed by the timeout',
    '  serial gaps: 282 events missing between serial numbers (normal for filtered input such as ausearch ' +
      'output; in a whole, unfiltered log they are lost events)',
  ]);
  assert.doesNotMatch(text, /records lost/);
});

test('progress shows the share, rate, events per second and time left', () => {
  assert.equal(
    progressLine({ bytes: 50e6, totalBytes: 200e6, events: 25_000, elapsedMs: 2000 }),
    'contid replay: 25.0% of 200.0 MB, 25.0 MB/s, 25,000 events (12,500/s), 6 s left',
  );
  assert.equal(
    progressLine({ bytes: 10e6, totalBytes: 0, events: 1, elapsedMs: 4000 }),
    'contid replay: 10.0 MB, 2.5 MB/s, 1 event (0/s)',
  );
  assert.match(
    progressLine({ bytes: 1e6, totalBytes: 200e6, events: 0, elapsedMs: 1000 }),
    /3 min 19 s left$/,
  );
});
