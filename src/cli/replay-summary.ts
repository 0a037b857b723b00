/**
 * What `contid replay` tells on stderr: the summary at the end, a few
 * lines that say what each counter means, and the progress line while it
 * reads. Pure functions of the counters, so that tests read them as text.
 */
import type { EvidenceFinding, EvidenceStats } from '../marker/evidence.js';
import type { ReplayStats } from '../pipeline/replay.js';

/** What the summary needs to know beside the pipeline's counters. */
export interface SummaryContext {
  /** Whether a keyring was given (markers can only verify with one). */
  readonly keyring: boolean;
  /** Wall time of the replay, in seconds. */
  readonly seconds: number;
  /** Set when reading stopped because the output's reader went away (| head): the bytes read. */
  readonly stoppedAt?: number;
}

/** `1 marker`, `2 markers`, with thousands separators. */
export function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${grouped(n)} ${n === 1 ? singular : plural}`;
}

/**
 * `n` with thousands separators, as `toLocaleString('en-US')` writes it.
 * Integers are grouped here: the first toLocaleString of a process loads
 * ICU's number formats, some 10 ms of a replay that prints a summary.
 */
export function grouped(n: number): string {
  if (!Number.isSafeInteger(n)) return n.toLocaleString('en-US');
  const digits = String(Math.abs(n));
  let out = digits.slice(0, ((digits.length - 1) % 3) + 1);
  for (let i = out.length; i < digits.length; i += 3) out += `,${digits.slice(i, i + 3)}`;
  return n < 0 || Object.is(n, -0) ? `-${out}` : out;
}

/**
 * Input problems, each shown when its counter is not zero. A new counter
 * (of the parser or the assembler) is one more line here.
 */
const INPUT_PROBLEMS: readonly ((s: ReplayStats) => string | null)[] = [
  (s) =>
    s.badLines > 0
      ? `${count(s.badLines, 'line')} that ${s.badLines === 1 ? 'is not an audit record' : 'are not audit records'}, skipped (listed below)`
      : null,
  (s) => (s.duplicates > 0 ? `${count(s.duplicates, 'duplicate record')} dropped` : null),
  (s) =>
    s.late > 0
      ? `${count(s.late, 'record')} after their event had closed (written as events of their own)`
      : null,
  (s) =>
    s.unterminatedLines > 0
      ? `${count(s.unterminatedLines, 'last line')} of a file without a newline (read; the record may be cut off)`
      : null,
];

/** What was left out of the output or bounded in it. */
const LEFT_OUT: readonly ((s: ReplayStats) => string | null)[] = [
  (s) =>
    s.ownRecords + s.links > 0
      ? `${count(s.ownRecords, 'contid record')} and ${count(s.links, 'record= link')} of an earlier run (computed again)`
      : null,
  (s) =>
    s.wordsWithoutValue > 0
      ? `${count(s.wordsWithoutValue, 'word')} without a value (not in JSON fields)`
      : null,
  (s) =>
    s.fieldCapped > 0
      ? `${count(s.fieldCapped, 'record')} past 4,096 fields (the rest whole in JSON "rest")`
      : null,
  (s) =>
    s.argvOmitted > 0
      ? `${count(s.argvOmitted, 'EXECVE record')} without JSON argv (argument numbers far past the record)`
      : null,
  (s) => (s.invalidUtf8 > 0 ? `${count(s.invalidUtf8, 'record')} not valid UTF-8 (U+FFFD in JSON)` : null),
];

/** What the log's own clock did (event grouping follows it). */
const CLOCK: readonly ((s: ReplayStats) => string | null)[] = [
  (s) =>
    s.clockOutliers > 0
      ? `${count(s.clockOutliers, 'record')} whose time the stream did not bear out (timed from their arrival)`
      : null,
  (s) => (s.clockSteps > 0 ? `${count(s.clockSteps, 'step', 'steps')} back` : null),
];

/** How events were closed, when not by their last record. */
const EARLY_CLOSES: readonly ((s: ReplayStats) => string | null)[] = [
  (s) => (s.timedOut > 0 ? `${count(s.timedOut, 'event')} closed by the timeout` : null),
  (s) =>
    s.evictedAtCapacity > 0 ? `${count(s.evictedAtCapacity, 'event')} closed early at --max-in-flight` : null,
  (s) => (s.recordLimit > 0 ? `${count(s.recordLimit, 'event')} closed at 10,000 records` : null),
];

function joined(parts: readonly ((s: ReplayStats) => string | null)[], stats: ReplayStats): string | null {
  const texts = parts.map((p) => p(stats)).filter((t): t is string => t !== null);
  return texts.length === 0 ? null : texts.join(', ');
}

/** The summary written to stderr at the end of a replay, lines ending in `\n`. */
export function replaySummary(stats: ReplayStats, context: SummaryContext): string {
  const lines: string[] = [];
  const head =
    `contid replay: ${count(stats.events, 'event')} from ${count(stats.records, 'record')} ` +
    `(${count(stats.lines, 'line')}) in ${context.seconds.toFixed(1)} s`;
  lines.push(head);
  if (context.stoppedAt !== undefined) {
    lines.push(
      `  stopped: the output was closed by its reader, so reading stopped after ${count(context.stoppedAt, 'byte')} of input`,
    );
  }
  if (stats.matched !== null) {
    lines.push(`  filters: ${grouped(stats.matched)} of ${count(stats.events, 'event')} matched`);
  }
  const input = joined(INPUT_PROBLEMS, stats);
  if (input !== null) lines.push(`  input: ${input}`);
  const leftOut = joined(LEFT_OUT, stats);
  if (leftOut !== null) lines.push(`  left out: ${leftOut}`);
  const closes = joined(EARLY_CLOSES, stats);
  if (closes !== null) lines.push(`  events: ${closes}`);
  const clock = joined(CLOCK, stats);
  if (clock !== null) lines.push(`  clock: ${clock}`);
  if (stats.lostEstimate > 0) {
    // Serials number events, not records; a filter (ausearch -k, a rule
    // excluding a process) leaves gaps that are not losses.
    lines.push(
      `  serial gaps: ${count(stats.lostEstimate, 'event')} missing between serial numbers ` +
        '(normal for filtered input such as ausearch output; in a whole, unfiltered log they are lost events)',
    );
  }
  const l = stats.labels;
  if (l !== null) {
    const ops = l.ops.accepted + l.ops.refused + l.ops.drops;
    lines.push(
      `  labels: ${count(l.markers, 'marker')}, ${count(l.forgeries, 'forgery attempt')}; ` +
        (l.markers + ops === 0
          ? ''
          : `${count(l.ops.accepted, 'operation')} accepted, ${l.ops.refused} refused, ${count(l.ops.drops, 'drop')}; `) +
        `${count(l.processes, 'process', 'processes')} tracked, ${count(l.containers, 'live container')} at the end`,
    );
    if (stats.labelFailures > 0) {
      lines.push(
        `  labels: ${count(stats.labelFailures, 'event')} could not be labelled (a defect of contid: please report it) ` +
          'and were written with contid=unknown',
      );
    }
    if (!context.keyring && l.forgeries > 0) {
      lines.push(
        `  note: no keyring was given, so no marker can be verified: the ${count(l.forgeries, 'marker-like record')} ` +
          'below count as forgery attempts and nothing is labelled. Labels need the keyring of the daemon ' +
          'that wrote the log: --keyring /var/lib/contid/keyring',
      );
    } else if (l.markers === 0 && l.forgeries === 0) {
      lines.push(
        '  note: no contid markers in the input, so nothing is labelled: labels come from the markers ' +
          '"contid run" writes into the audit stream, which an ordinary auditd log does not have',
      );
    }
  }
  if (stats.evidence !== null && l !== null && l.markers > 0)
    lines.push(...evidenceLines(stats, stats.evidence));
  for (const f of stats.forgeries.slice(0, 10)) {
    lines.push(
      `  forgery at ${f.time}:${f.serial}: ${f.reason} from pid ${f.senderPid ?? '?'} (contid ${f.senderContid ?? 'unset'})`,
    );
  }
  for (const i of stats.issues.slice(0, 10)) {
    lines.push(`  line ${i.line}: ${i.message} (${i.code}): ${JSON.stringify(i.excerpt.slice(0, 80))}`);
  }
  // Lines reported but kept (cut off, words without a value) are listed with the bad ones.
  const listed = stats.badLines + stats.unterminatedLines + stats.wordsWithoutValue;
  if (listed > 10) lines.push(`  ... and ${count(listed - 10, 'more problem')}`);
  return lines.map((line) => `${line}\n`).join('');
}

/** What the evidence checks found, then the intact spans and the problems (10 of each at most). */
function evidenceLines(stats: ReplayStats, e: EvidenceStats): string[] {
  const lines: string[] = [];
  const parts: string[] = [];
  if (e.intact + e.broken > 0) parts.push(`${count(e.intact, 'seal')} intact, ${e.broken} broken`);
  if (e.missing > 0) parts.push(`${count(e.missing, 'marker')} missing (${count(e.gaps, 'gap')})`);
  if (e.order > 0) parts.push(`${count(e.order, 'marker')} out of serial order`);
  if (e.chain > 0) parts.push(count(e.chain, 'chain break'));
  if (e.place > 0) parts.push(`${count(e.place, 'marker')} applied after a later event`);
  if (e.late > 0) parts.push(`${count(e.late, 'record')} of spans already judged`);
  if (parts.length === 0) {
    lines.push(
      '  evidence: no marker missing or moved; no seal markers, so no span of the input is shown intact ' +
        '(contid run seals every --seal-interval)',
    );
    return lines;
  }
  lines.push(`  evidence: ${parts.join(', ')}`);
  for (const span of stats.intactSpans.slice(0, 10)) {
    const times = span.since === null ? '' : ` (${span.since} to ${span.until ?? span.since})`;
    lines.push(
      `  intact: serials ${span.from}-${span.to}${times} of start ${span.start}, ${count(span.seals, 'seal')}`,
    );
  }
  if (stats.intactSpans.length > 10)
    lines.push(`  ... and ${count(stats.intactSpans.length - 10, 'more intact run')}`);
  for (const f of stats.evidenceProblems.slice(0, 10)) lines.push(`  ${describeFinding(f)}`);
  const problems = e.gaps + e.order + e.chain + e.place + e.broken + e.late;
  if (problems > 10) lines.push(`  ... and ${count(problems - 10, 'more evidence problem')}`);
  return lines;
}

/** One evidence problem, for the summary. */
export function describeFinding(f: EvidenceFinding): string {
  switch (f.check) {
    case 'gap':
      return (
        `missing: marker${f.from === f.to ? ` seq ${f.from}` : `s seq ${f.from}-${f.to}`} of start ${f.start} ` +
        `(between ${f.after} and ${f.before}): deleted or lost`
      );
    case 'order':
      return `out of order: marker seq ${f.seq} of start ${f.start} at ${f.at} comes after ${f.after}, a later one: moved`;
    case 'chain':
      return `chain break: marker seq ${f.seq} of start ${f.start} at ${f.at} follows ${f.prev}, which is not before it: a marker deleted or moved`;
    case 'place':
      return `out of place: marker seq ${f.seq} of start ${f.start} at ${f.at} was applied after an event of serial ${f.afterSerial}: moved`;
    case 'seal': {
      const times = f.since === null ? '' : ` (${f.since} to ${f.until ?? f.since})`;
      return (
        `broken seal: serials ${f.from}-${f.to}${times} of start ${f.start} (seal seq ${f.seq} at ${f.at}): ` +
        `${count(f.records, 'record')} sealed, ${f.seen} in the input` +
        (f.late > 0
          ? `; the daemon says it read ${count(f.late, 'record')} of earlier spans after their seal`
          : '') +
        (f.lossy ? '; the daemon lost records in this span' : '')
      );
    }
    case 'late':
      return `late: a record at ${f.at} of start ${f.start}'s spans judged up to serial ${f.judgedTo}: added or moved`;
  }
}

/** What the progress line knows. */
export interface Progress {
  /** Input bytes read so far. */
  readonly bytes: number;
  /** All input bytes (0 when unknown: stdin). */
  readonly totalBytes: number;
  readonly events: number;
  readonly elapsedMs: number;
}

function duration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** The progress line (no line end): share, rate and time left. */
export function progressLine(p: Progress): string {
  const seconds = Math.max(p.elapsedMs, 1) / 1000;
  const mb = (n: number): string => (n / 1e6).toFixed(1);
  const rate = p.bytes / seconds;
  const parts: string[] = [];
  if (p.totalBytes > 0) {
    parts.push(
      `${((100 * Math.min(p.bytes, p.totalBytes)) / p.totalBytes).toFixed(1)}% of ${mb(p.totalBytes)} MB`,
    );
  } else {
    parts.push(`${mb(p.bytes)} MB`);
  }
  parts.push(
    `${mb(rate)} MB/s`,
    `${count(p.events, 'event')} (${grouped(Math.round(p.events / seconds))}/s)`,
  );
  if (p.totalBytes > 0 && rate > 0)
    parts.push(`${duration(Math.max(p.totalBytes - p.bytes, 0) / rate)} left`);
  return `contid replay: ${parts.join(', ')}`;
}
