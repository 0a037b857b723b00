/**
 * The worker thread that owns the event store for StoreWriter: it opens the
 * database, stores each batch it is sent in one transaction, runs retention
 * now and then, and answers every message in order, so that an ack or a
 * `flushed` covers everything sent before it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { StoreError, storeError } from './errors.js';
import { EventStore } from './store.js';
import type { FromWorker, ToWorker, WireError, WriterWorkerConfig } from './writer-protocol.js';

const config = workerData as WriterWorkerConfig;
const port = parentPort!;

function wire(err: unknown, doing: string): WireError {
  const e = err instanceof StoreError ? err : storeError(err, doing, config.path);
  return { code: e.code, message: e.message };
}

function post(message: FromWorker): void {
  port.postMessage(message);
}

let store: EventStore | null = null;
try {
  store = EventStore.open(config.path, {
    maxAgeMs: config.maxAgeMs,
    maxBytes: config.maxBytes,
    ...(config.maxOpenProcesses === null ? {} : { maxOpenProcesses: config.maxOpenProcesses }),
    ...(config.compressionLevel === null ? {} : { compressionLevel: config.compressionLevel }),
  });
  post({ type: 'ready', info: store.info() });
} catch (err) {
  post({ type: 'open-failed', error: wire(err, 'open event store') });
  port.close();
}

let lastRetention = Date.now();

function retain(): void {
  lastRetention = Date.now();
  try {
    const result = store!.retain();
    store!.optimize();
    post({ type: 'retained', result, error: null });
  } catch (err) {
    post({ type: 'retained', result: null, error: wire(err, 'delete old events from') });
  }
}

if (store !== null) {
  const open = store;
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'rows': {
        try {
          const r = open.ingest(m.rows);
          post({ type: 'ack', seq: m.seq, ...r, error: null });
        } catch (err) {
          post({
            type: 'ack',
            seq: m.seq,
            events: m.rows.length,
            payloadBytes: 0,
            storedBytes: 0,
            error: wire(err, 'write to event store'),
          });
        }
        if (Date.now() - lastRetention >= config.retainEveryMs) retain();
        break;
      }
      case 'flush':
        post({ type: 'flushed', seq: m.seq });
        break;
      case 'retain':
        retain();
        post({ type: 'flushed', seq: m.seq });
        break;
      case 'close': {
        let error: WireError | null = null;
        try {
          open.close();
        } catch (err) {
          error = wire(err, 'close event store');
        }
        post({ type: 'closed', error });
        port.close();
        break;
      }
    }
  });
}
