import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ReplayStats } from '../pipeline/replay.js';
import { grouped, progressLine, replaySummary } from './replay-summary.js';

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
  recordLimit: 0,
  clockOutliers: 0,
  clockSteps: 0,
  lines: 40_000,
  skippedLines: 0,
  badLines: 0,
  ownRecords: 0,
  links: 0,
  unterminatedLines: 0,
  wordsWithoutValue: 0,
  fieldCapped: 0,
  invalidUtf8: 0,
  argvOmitted: 0,
  issues: [],
  labels: null,
  hold: null,
  nodes: 0,
  nodesOverflow: 0,
  labelFailures: 0,
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

test('the summary tells what was left out or bounded and what the clock did', () => {
  const text = replaySummary(
    {
      ...base,
      unterminatedLines: 1,
      ownRecords: 3,
      links: 2,
      wordsWithoutValue: 1,
      fieldCapped: 2,
      argvOmitted: 1,
      invalidUtf8: 4,
      recordLimit: 1,
      clockOutliers: 2,
      clockSteps: 1,
    },
    { keyring: false, seconds: 1 },
  );
  assert.deepEqual(text.trimEnd().split('\n').slice(1), [
    '  input: 1 last line of a file without a newline (read; the record may be cut off)',
    '  left out: 3 contid records and 2 record= links of an earlier run (computed again), ' +
      '1 word without a value (not in JSON fields), 2 records past 4,096 fields (the rest whole in JSON "rest"), ' +
      '1 EXECVE record without JSON argv (argument numbers far past the record), 4 records not valid UTF-8 (U+FFFD in JSON)',
    '  events: 1 event closed at 10,000 records',
    '  clock: 2 records whose time the stream did not bear out (timed from their arrival), 1 step back',
  ]);
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

const labels = {
  processes: 10,
  retained: 0,
  max: 1_000_000,
  expired: 0,
  evicted: 0,
  reused: 0,
  births: 0,
  birthsExpired: 0,
  containers: 1,
  markers: 9,
  forgeries: 0,
  ops: { accepted: 1, refused: 0, drops: 0 },
};
const noEvidence = {
  missing: 0,
  gaps: 0,
  order: 0,
  chain: 0,
  place: 0,
  intact: 0,
  broken: 0,
  late: 0,
  pendingAtEnd: 0,
};

test('with a keyring, the summary says which spans seals show intact and names each marker missing or moved', () => {
  const text = replaySummary(
    {
      ...base,
      labels,
      evidence: { ...noEvidence, intact: 3, broken: 1, missing: 1, gaps: 1, place: 1 },
      intactSpans: [
        { start: 'S1', from: 5120, to: 5695, since: '1700000002.400', until: '1700000012.085', seals: 3 },
      ],
      evidenceProblems: [
        {
          check: 'gap',
          start: 'S1',
          from: 2,
          to: 2,
          after: '1700000003.480:5154',
          before: '1700000006.140:5307',
        },
        { check: 'place', start: 'S1', seq: 4, at: '1700000004.000:5200', afterSerial: 5203 },
        {
          check: 'seal',
          start: 'S1',
          seq: 6,
          at: '1700000014.140:5707',
          from: 5696,
          to: 5759,
          since: '1700000012.100',
          until: '1700000013.900',
          records: 64,
          seen: 63,
          result: 'broken',
          lossy: false,
          late: 0,
        },
      ],
    },
    { keyring: true, seconds: 1 },
  );
  assert.deepEqual(text.trimEnd().split('\n').slice(2), [
    '  evidence: 3 seals intact, 1 broken, 1 marker missing (1 gap), 1 marker applied after a later event',
    '  intact: serials 5120-5695 (1700000002.400 to 1700000012.085) of start S1, 3 seals',
    '  missing: marker seq 2 of start S1 (between 1700000003.480:5154 and 1700000006.140:5307): deleted or lost',
    '  out of place: marker seq 4 of start S1 at 1700000004.000:5200 was applied after an event of serial 5203: moved',
    '  broken seal: serials 5696-5759 (1700000012.100 to 1700000013.900) of start S1 (seal seq 6 at ' +
      '1700000014.140:5707): 64 records sealed, 63 in the input',
  ]);
});

test('with a keyring and markers but no seal, the summary says no span is shown intact', () => {
  const text = replaySummary({ ...base, labels, evidence: noEvidence }, { keyring: true, seconds: 1 });
  assert.match(
    text,
    /evidence: no marker missing or moved; no seal markers, so no span of the input is shown intact/,
  );
});

test('numbers in the summary are grouped as toLocaleString("en-US") groups them', () => {
  const cases = [0, -0, 1, -1, 12, 999, 1000, -1000, 12_345, 123_456, 1_234_567, -98_765_432, 265_175];
  for (const n of [
    ...cases,
    Number.MAX_SAFE_INTEGER,
    -Number.MAX_SAFE_INTEGER,
    2 ** 53,
    1.5,
    NaN,
    Infinity,
  ]) {
    assert.equal(grouped(n), n.toLocaleString('en-US'), String(n));
  }
});
