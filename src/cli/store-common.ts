/**
 * What the event store's commands share: the machine's clock, opening the
 * store for reading, saying why it failed, writing a whole output.
 */
import { uptime } from 'node:os';
import { StoreError, storeError } from '../store/errors.js';
import { EventStore } from '../store/store.js';
import { deliver, finishOutput, openOutput } from './output.js';
import type { CliIo } from './replay.js';
import { STORE_EXIT } from './store-args.js';
import type { Clock } from './time-spec.js';

/** The clock of this machine: `boot` is now minus the uptime, as ausearch reckons it. */
export function machineClock(): Clock {
  const nowMs = Date.now();
  return { nowMs, bootMs: () => nowMs - Math.round(uptime() * 1000) };
}

/** Prints why the store failed and returns the exit code for it. */
export function storeFailure(io: CliIo, command: string, err: unknown): number {
  const e = err instanceof StoreError ? err : storeError(err, 'read event store', '?');
  io.stderr.write(`contid ${command}: ${e.message}\n`);
  return STORE_EXIT.store;
}

/** Opens the store read-only, or says why it cannot and returns null. */
export function openForReading(path: string, command: string, io: CliIo): EventStore | null {
  try {
    return EventStore.open(path, { readOnly: true });
  } catch (err) {
    storeFailure(io, command, err);
    return null;
  }
}

/** Writes a command's whole output to stdout; the exit code (4 when it cannot be written). */
export async function writeOutput(io: CliIo, command: string, text: string): Promise<number> {
  const out = openOutput(null, io.stdout);
  // A table, not events: it counts as none in the sink's event bound.
  await deliver(out, Buffer.from(text, 'utf8'), 0);
  const failure = await finishOutput(out);
  if (failure?.kind === 'error') {
    io.stderr.write(`contid ${command}: ${failure.message}\n`);
    return STORE_EXIT.store;
  }
  return STORE_EXIT.ok;
}
