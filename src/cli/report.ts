/**
 * `contid report`: per container over a time range, what aureport's
 * summary gives per host: events, execs, failures, forgery attempts, label
 * operations, top executables and keys.
 */
import type { CountRow, ReportRow } from '../store/store.js';
import { stampOf } from './ps.js';
import type { CliIo } from './replay.js';
import type { ReportArgs } from './report-args.js';
import { machineClock, openForReading, storeFailure, writeOutput } from './store-common.js';
import { STORE_EXIT } from './store-args.js';
import { resolveTimeSpec } from './time-spec.js';

/** One container's line of the report, with its top lists. */
export interface ReportEntry extends Omit<ReportRow, 'chain'> {
  /** The chain, `unset` for the host, `unknown`. */
  readonly contid: string;
  readonly topExes: readonly { readonly exe: string; readonly events: number }[];
  readonly topKeys: readonly { readonly key: string; readonly events: number }[];
}

function top(
  counts: readonly CountRow[],
  chain: number | null,
  n: number,
): { text: string; count: number }[] {
  return counts
    .filter((c) => c.chain === chain)
    .sort((a, b) => b.count - a.count || (a.text < b.text ? -1 : 1))
    .slice(0, n)
    .map((c) => ({ text: c.text, count: c.count }));
}

/** The report's entries, busiest container first. */
export function reportEntries(
  data: {
    readonly rows: readonly ReportRow[];
    readonly exes: readonly CountRow[];
    readonly keys: readonly CountRow[];
  },
  chainNames: ReadonlyMap<number, string>,
  topN: number,
): ReportEntry[] {
  return data.rows
    .map((r) => ({
      contid: r.chain === null ? 'unset' : (chainNames.get(r.chain) ?? '?'),
      events: r.events,
      execs: r.execs,
      failed: r.failed,
      forgeries: r.forgeries,
      ops: r.ops,
      firstMs: r.firstMs,
      lastMs: r.lastMs,
      topExes: top(data.exes, r.chain, topN).map((t) => ({ exe: t.text, events: t.count })),
      // Several keys of one event are stored joined by \x01; shown as auditd shows them, k1,k2.
      topKeys: top(data.keys, r.chain, topN).map((t) => ({
        key: t.text.split('\x01').join(','),
        events: t.count,
      })),
    }))
    .sort((a, b) => b.events - a.events || (a.contid < b.contid ? -1 : 1));
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const rule = '='.repeat(Math.max(40, line(header).length));
  return [rule, line(header), rule, ...rows.map(line)];
}

/** The text view, laid out like aureport's summaries. */
export function formatReportText(
  entries: readonly ReportEntry[],
  range: { sinceMs: number | null; untilMs: number | null },
): string {
  const out: string[] = [];
  const from = range.sinceMs === null ? 'the first stored event' : stampOf(range.sinceMs);
  const to = range.untilMs === null ? 'the last' : stampOf(range.untilMs);
  out.push('', 'Container Report', `From ${from} to ${to}`);
  out.push(
    ...table(
      ['#', 'contid', 'events', 'execs', 'failed', 'forgeries', 'label ops', 'first', 'last'],
      entries.map((e, i) => [
        `${i + 1}.`,
        e.contid,
        String(e.events),
        String(e.execs),
        String(e.failed),
        String(e.forgeries),
        String(e.ops),
        stampOf(e.firstMs),
        stampOf(e.lastMs),
      ]),
    ),
  );
  for (const [title, pick] of [
    ['Top Executables', (e: ReportEntry) => e.topExes.map((x) => [x.exe, x.events] as const)],
    ['Top Keys', (e: ReportEntry) => e.topKeys.map((x) => [x.key, x.events] as const)],
  ] as const) {
    const rows: string[][] = [];
    for (const e of entries) {
      for (const [text, n] of pick(e)) rows.push([`${rows.length + 1}.`, e.contid, String(n), text]);
    }
    out.push('', title, ...table(['#', 'contid', 'events', title === 'Top Keys' ? 'key' : 'exe'], rows));
    if (rows.length === 0) out.push('(none)');
  }
  return out.join('\n') + '\n';
}

/** Runs `contid report`. Returns the exit code. */
export async function runReport(args: ReportArgs, io: CliIo): Promise<number> {
  const store = openForReading(args.store, 'report', io);
  if (store === null) return STORE_EXIT.store;
  let text: string;
  try {
    const clock = machineClock();
    const range = {
      sinceMs: args.since === null ? null : resolveTimeSpec(args.since, 'since', clock),
      untilMs: args.until === null ? null : resolveTimeSpec(args.until, 'until', clock),
    };
    const ids = args.contids.filter((c) => c !== 'unset');
    const only =
      args.contids.length === 0
        ? null
        : { chains: store.chainsHolding(ids, args.exact), host: args.contids.includes('unset') };
    const data = store.report(range, only);
    const names = new Map(store.chains().map((c) => [c.id, c.chain]));
    const entries = reportEntries(data, names, args.top);
    text =
      args.format === 'json'
        ? JSON.stringify({
            since: range.sinceMs === null ? null : range.sinceMs / 1000,
            until: range.untilMs === null ? null : range.untilMs / 1000,
            containers: entries.map(({ firstMs, lastMs, ...e }) => ({
              ...e,
              first: firstMs / 1000,
              last: lastMs / 1000,
            })),
          }) + '\n'
        : formatReportText(entries, range);
  } catch (err) {
    return storeFailure(io, 'report', err);
  } finally {
    store.close();
  }
  return writeOutput(io, 'report', text);
}
