/**
 * `contid store import|info|check|migrate`: filling the event store from
 * contid's JSON lines, and looking after it.
 */
import { isUtf8 } from 'node:buffer';
import { LineSplitter } from '../parse/lines.js';
import { isJsonRowIssue, JsonRowAdapter, type JsonRowIssue } from '../store/json-row.js';
import type { StoreRow } from '../store/row.js';
import { EventStore, type StoreInfo } from '../store/store.js';
import { StoreWriter } from '../store/writer.js';
import { systemReason } from './errors.js';
import { InputError, openInput } from './input.js';
import type { CliIo } from './replay.js';
import { STORE_EXIT, type StoreArgs } from './store-args.js';
import { openForReading, storeFailure, writeOutput } from './store-common.js';

function formatInfo(i: StoreInfo): string {
  const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  const when = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString());
  const per = (n: number): string => (i.events === 0 ? '-' : `${Math.round(n / i.events)} bytes/event`);
  return (
    [
      `store            ${i.path}`,
      `schema version   ${i.schemaVersion}`,
      `events           ${i.events}`,
      `first event      ${when(i.firstMs)}`,
      `last event       ${when(i.lastMs)}`,
      `containers       ${i.containers}`,
      `open processes   ${i.processes}`,
      `file             ${mib(i.fileBytes)} (${per(i.fileBytes)}), used ${mib(i.usedBytes)}, WAL ${mib(i.walBytes)}`,
      `records          ${mib(i.payloadBytes)} as text (${per(i.payloadBytes)}), ${mib(i.storedPayloadBytes)} stored`,
    ].join('\n') + '\n'
  );
}

/** Runs `contid store`. Returns the exit code. */
export async function runStore(args: StoreArgs, io: CliIo): Promise<number> {
  const fail = (err: unknown): number => storeFailure(io, 'store', err);
  switch (args.command) {
    case 'info': {
      const store = openForReading(args.store, 'store', io);
      if (store === null) return STORE_EXIT.store;
      let info: StoreInfo;
      try {
        info = store.info();
      } catch (err) {
        return fail(err);
      } finally {
        store.close();
      }
      return writeOutput(io, 'store', args.json ? JSON.stringify(info) + '\n' : formatInfo(info));
    }
    case 'check': {
      const store = openForReading(args.store, 'store', io);
      if (store === null) return STORE_EXIT.store;
      let problems: string[];
      try {
        problems = store.check();
      } catch (err) {
        return fail(err);
      } finally {
        store.close();
      }
      if (problems.length === 0) return writeOutput(io, 'store', `"${args.store}": ok\n`);
      io.stderr.write(
        `contid store: Cannot read all of event store "${args.store}": it is damaged\n` +
          problems.map((p) => `  ${p}\n`).join(''),
      );
      return STORE_EXIT.store;
    }
    case 'migrate': {
      let before: number;
      try {
        const store = EventStore.open(args.store);
        before = store.info().schemaVersion;
        store.close();
      } catch (err) {
        return fail(err);
      }
      return writeOutput(io, 'store', `${args.store}: schema version ${before}\n`);
    }
    case 'import':
      return importJson(args, io);
    case null:
      return STORE_EXIT.usage;
  }
}

/** JSON lines longer than this are reported and skipped. */
const MAX_JSON_LINE = 64 * 1024 * 1024;
/** Distinct store errors kept for the user. */
const MAX_ERRORS = 5;

/** Keeps `message` unless already kept or MAX_ERRORS are. */
function noteError(errors: string[], message: string): void {
  if (errors.length < MAX_ERRORS && !errors.includes(message)) errors.push(message);
}
/** Bad lines listed with their numbers; the rest are counted. */
const LISTED = 10;

async function importJson(args: StoreArgs, io: CliIo): Promise<number> {
  /** What went wrong, each message once: the error that lost a batch, not only the last one (a close). */
  const errors: string[] = [];
  let writer: StoreWriter;
  try {
    writer = await StoreWriter.open(args.store, {
      maxAgeMs: args.maxAgeMs,
      maxBytes: args.maxBytes,
      // Import waits for the writer instead: nothing is dropped.
      maxQueue: Number.MAX_SAFE_INTEGER,
      onError: (error) => {
        noteError(errors, error.message);
      },
    });
  } catch (err) {
    return storeFailure(io, 'store', err);
  }
  const adapter = new JsonRowAdapter();
  const issues: (JsonRowIssue & { readonly file: string })[] = [];
  let badLines = 0;
  let lines = 0;
  const readErrors: string[] = [];
  for (const f of args.files) {
    const name = f === '-' ? 'standard input' : `"${f}"`;
    let rows: StoreRow[] = [];
    const bad = (issue: JsonRowIssue): void => {
      badLines++;
      if (issues.length < LISTED) issues.push({ ...issue, file: name });
    };
    const splitter = new LineSplitter({
      maxLineBytes: MAX_JSON_LINE,
      onLine: (buf, start, end, lineNo) => {
        lines++;
        const text = buf.toString('utf8', start, end).trim();
        if (text === '') return;
        const row = isUtf8(buf.subarray(start, end))
          ? adapter.row(text, lineNo)
          : ({ code: 'ERR_BAD_JSON_EVENT', line: lineNo, message: 'Line is not UTF-8' } as const);
        if (isJsonRowIssue(row)) bad(row);
        else rows.push(row);
      },
      onOverlong: (lineNo, bytes) => {
        lines++;
        bad({
          code: 'ERR_BAD_JSON_EVENT',
          line: lineNo,
          message: `Line is longer than ${MAX_JSON_LINE} bytes (${bytes})`,
        });
      },
    });
    try {
      const input = await openInput(f, io.stdin);
      try {
        for await (const chunk of input.chunks) {
          splitter.push(chunk);
          if (rows.length > 0 && !writer.writeRows(rows)) await writer.drained();
          rows = [];
        }
        splitter.end();
        if (rows.length > 0) writer.writeRows(rows);
      } finally {
        input.close();
      }
    } catch (err) {
      readErrors.push(`Cannot read ${name}: ${err instanceof InputError ? err.message : systemReason(err)}`);
    }
  }
  await writer.close();
  const s = writer.stats();
  if (!args.quiet) {
    let text =
      `contid store import: ${s.written} events stored in "${args.store}" from ${lines} lines, ` +
      `${badLines} not contid events, ${s.failed + s.dropped + s.rejected} lost` +
      (s.deletedByAge + s.deletedBySize > 0
        ? `, ${s.deletedByAge + s.deletedBySize} old events deleted`
        : '') +
      '\n';
    for (const i of issues) text += `  ${i.file} line ${i.line}: ${i.message} (${i.code})\n`;
    if (badLines > issues.length) text += `  ... and ${badLines - issues.length} more\n`;
    io.stderr.write(text);
  }
  for (const m of readErrors) io.stderr.write(`contid store: ${m}\n`);
  if (s.lastError !== null && s.failed + s.dropped + s.rejected > 0) {
    for (const m of errors.length > 0 ? errors : [s.lastError.message])
      io.stderr.write(`contid store: ${m}\n`);
    return STORE_EXIT.store;
  }
  return badLines > 0 || readErrors.length > 0 ? STORE_EXIT.failed : STORE_EXIT.ok;
}
