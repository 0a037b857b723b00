/**
 * `contid search`: events from the event store, chosen with ausearch's
 * criteria, printed as auditd text, JSON lines or the interpreted view.
 */
import { PayloadError } from '../store/payload.js';
import type { SearchQuery } from '../store/query.js';
import { StoredEventWriter } from '../store/render.js';
import { deliver, finishOutput, openOutput } from './output.js';
import type { CliIo } from './replay.js';
import type { SearchArgs } from './search-args.js';
import { machineClock, openForReading, storeFailure } from './store-common.js';
import { STORE_EXIT } from './store-args.js';
import { resolveTimeSpec } from './time-spec.js';
import { localIdNames } from './user-db.js';

/** Output is handed to stdout in pieces of about this size. */
const CHUNK_BYTES = 256 * 1024;
/** Unreadable events listed by id; the rest are counted. */
const LISTED = 10;

/** The store query for the arguments, times resolved against the machine's clock. */
export function searchQuery(args: SearchArgs, clock = machineClock()): SearchQuery {
  return {
    ...(args.contids.length === 0 ? {} : { contids: args.contids, exact: args.exact }),
    ...(args.since === null ? {} : { sinceMs: resolveTimeSpec(args.since, 'since', clock) }),
    ...(args.until === null ? {} : { untilMs: resolveTimeSpec(args.until, 'until', clock) }),
    pids: args.pids,
    ppids: args.ppids,
    exes: args.exes,
    syscalls: args.syscalls,
    keys: args.keys,
    types: args.types,
    ...(args.success === null ? {} : { success: args.success }),
    ...(args.limit === null ? {} : { limit: args.limit }),
  };
}

/** Runs `contid search`. Returns the exit code. */
export async function runSearch(args: SearchArgs, io: CliIo): Promise<number> {
  const store = openForReading(args.store, 'search', io);
  if (store === null) return STORE_EXIT.store;
  const out = openOutput(null, io.stdout);
  const writer = await StoredEventWriter.create(args.format, {
    ids: args.resolveIds ? localIdNames() : null,
  });
  let matched = 0;
  /** Events in the writer's buffer. */
  let pending = 0;
  const unreadable: number[] = [];
  let unreadableCount = 0;
  try {
    for (const e of store.search(searchQuery(args))) {
      try {
        writer.write(e);
      } catch (err) {
        if (!(err instanceof PayloadError)) throw err;
        unreadableCount++;
        if (unreadable.length < LISTED) unreadable.push(e.id);
        continue;
      }
      matched++;
      pending++;
      if (writer.length >= CHUNK_BYTES) {
        const events = pending;
        pending = 0;
        if (!(await deliver(out, writer.take(), events))) break;
      }
    }
    await deliver(out, writer.take(), pending);
  } catch (err) {
    return storeFailure(io, 'search', err);
  } finally {
    store.close();
  }
  const failure = await finishOutput(out);
  if (failure?.kind === 'error') {
    io.stderr.write(`contid search: ${failure.message}\n`);
    return STORE_EXIT.store;
  }
  if (unreadableCount > 0) {
    io.stderr.write(
      `contid search: Cannot read ${unreadableCount} stored event${unreadableCount === 1 ? '' : 's'} ` +
        `(ids ${unreadable.join(', ')}${unreadableCount > LISTED ? ', …' : ''}): their records are damaged\n`,
    );
    return STORE_EXIT.store;
  }
  if (matched === 0) {
    io.stderr.write('<no matches>\n');
    return STORE_EXIT.noMatch;
  }
  return STORE_EXIT.ok;
}
