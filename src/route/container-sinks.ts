/**
 * The containers' sinks: opened when a container is created (its set read
 * back from the stream), fed the router's copies, flushed and closed after
 * the container's drop. The edge around the pure router (router.ts): it
 * owns sinks, encoders and their queues, the daemon owns the order.
 *
 * Every container sink is a `drop` sink with its own bounded queue: a
 * stalled or dead destination fills its own queue and then drops, counted,
 * while write() stays a synchronous append, so it never delays the host log
 * or another container.
 */
import { EventEncoder } from '../pipeline/encoder.js';
import type { LabelledEvent } from '../policy/labeller.js';
import { FileSink } from '../sink/file.js';
import { RemoteSink } from '../sink/remote.js';
import type { Sink, SinkErrorInfo, SinkState } from '../sink/sink.js';
import { SinkError } from '../sink/sink.js';
import { UnixSocketSink } from '../sink/unix.js';
import { Router, type Chain, type RoutedCopy } from './router.js';
import { expandSpec, type SinkFormat, type SinkSpec } from './sink-spec.js';

/** One container sink as `contid status` lists it. */
export interface ContainerSinkStatus {
  /** The container's chain on the host (`5,^42`). */
  readonly container: string;
  /** The host pid its creating set labelled. */
  readonly pid: number;
  readonly kind: string;
  readonly target: string;
  readonly format: SinkFormat;
  readonly state: SinkState | 'failed';
  readonly queuedEvents: number;
  readonly queuedBytes: number;
  readonly writtenEvents: number;
  readonly droppedEvents: number;
  readonly errors: number;
  readonly lastError: SinkErrorInfo | null;
}

/** Counters over all container sinks, closed ones included. */
export interface ContainerSinksStats {
  /** Containers with sinks now. */
  readonly containers: number;
  readonly sinks: readonly ContainerSinkStatus[];
  /** Sinks opened, and sinks that could not be made (a bad path, an unknown host). */
  readonly opened: number;
  readonly failed: number;
  /** Sinks closed after their container's drop (or at stop). */
  readonly closed: number;
  /** Events written and dropped by sinks since closed. */
  readonly closedWrittenEvents: number;
  readonly closedDroppedEvents: number;
  /** Containers that got no sinks because {@link ContainerSinksOptions.maxContainers} were open. */
  readonly overflow: number;
}

/** Options of {@link ContainerSinks}. */
export interface ContainerSinksOptions {
  /** The sinks of a container created without `--sink` (config `container-sink`). */
  readonly defaults: readonly SinkSpec[];
  /** Most containers with sinks at once (default 10,000); more are counted, not opened. */
  readonly maxContainers?: number;
  /** Each sink's errors, once per change of code (library code never logs). */
  readonly onError?: (container: string, error: SinkError) => void;
  /** Makes a sink from an expanded spec (default: the real sinks). */
  readonly openSink?: (spec: SinkSpec, onError: (error: SinkError) => void) => Sink;
}

interface OpenSink {
  readonly spec: SinkSpec;
  readonly sink: Sink | null;
  /** Why it could not be made. */
  readonly failure: SinkErrorInfo | null;
}

interface Entry {
  readonly key: string;
  readonly pid: number;
  readonly sinks: OpenSink[];
  /** One encoder per format the container's sinks use. */
  readonly encoders: Map<SinkFormat, EventEncoder>;
  /** Events encoded and not yet handed to the sinks. */
  pending: number;
}

const DEFAULT_MAX_CONTAINERS = 10_000;
/** Container sinks closed, kept for status a while (by count). */
const KEEP_CLOSED = 64;

/** The sinks of every container that has some. */
export class ContainerSinks {
  readonly router = new Router();
  readonly #defaults: readonly SinkSpec[];
  readonly #max: number;
  readonly #onError: ((container: string, error: SinkError) => void) | undefined;
  readonly #openSink: (spec: SinkSpec, onError: (error: SinkError) => void) => Sink;
  readonly #entries = new Map<string, Entry>();
  /** Entries with events encoded since the last pump. */
  readonly #dirty = new Set<Entry>();
  readonly #copies: RoutedCopy[] = [];
  readonly #closing = new Set<Promise<void>>();
  readonly #recentlyClosed: ContainerSinkStatus[] = [];
  #opened = 0;
  #failed = 0;
  #closed = 0;
  #closedWritten = 0;
  #closedDropped = 0;
  #overflow = 0;

  constructor(options: ContainerSinksOptions) {
    this.#defaults = options.defaults;
    this.#max = options.maxContainers ?? DEFAULT_MAX_CONTAINERS;
    this.#onError = options.onError;
    this.#openSink = options.openSink ?? openSink;
  }

  /**
   * A container was created: opens its sinks (`specs`, or the defaults when
   * null; an empty list is none). A sink that cannot be made is counted and
   * listed with its error; it never stops the others.
   */
  open(chain: Chain, options: { readonly pid: number; readonly specs: readonly SinkSpec[] | null }): void {
    const specs = options.specs ?? this.#defaults;
    if (specs.length === 0) return;
    const key = chain.join(',^');
    if (this.#entries.has(key)) return;
    if (this.#entries.size >= this.#max) {
      this.#overflow++;
      return;
    }
    const entry: Entry = { key, pid: options.pid, sinks: [], encoders: new Map(), pending: 0 };
    for (const template of specs) {
      const spec = expandSpec(template, { chain, pid: options.pid });
      let lastCode: string | null = null;
      const onError = (error: SinkError): void => {
        if (error.code === lastCode) return;
        lastCode = error.code;
        this.#onError?.(key, error);
      };
      try {
        const sink = this.#openSink(spec, onError);
        entry.sinks.push({ spec, sink, failure: null });
        this.#opened++;
        if (!entry.encoders.has(spec.format)) {
          entry.encoders.set(
            spec.format,
            new EventEncoder(spec.format === 'json' ? 'json' : 'text', {
              bufferBytes: 4096,
              eoe: spec.format === 'plugin',
            }),
          );
        }
      } catch (cause) {
        const error = SinkError.from(`Cannot open sink "${spec.text}" of container ${key}`, cause);
        entry.sinks.push({ spec, sink: null, failure: { message: error.message, code: error.code } });
        this.#failed++;
        this.#onError?.(key, error);
      }
    }
    this.#entries.set(key, entry);
    if (entry.encoders.size > 0) this.router.add(chain);
  }

  /** Encodes the copies of `le` for the containers that see it (handed to the sinks by {@link pump}). */
  deliver(le: LabelledEvent): void {
    const copies = this.router.route(le, this.#copies);
    if (copies.length === 0) return;
    try {
      for (const copy of copies) {
        const entry = this.#entries.get(copy.container);
        if (entry === undefined) continue;
        for (const encoder of entry.encoders.values()) encoder.write(copy.event);
        entry.pending++;
        this.#dirty.add(entry);
      }
    } finally {
      while (copies.length > 0) copies.pop();
    }
  }

  /** Hands what was encoded to the sinks: one write per sink per call. Never waits. */
  pump(): void {
    for (const entry of this.#dirty) this.#pumpEntry(entry);
    this.#dirty.clear();
  }

  /** A container was dropped: its sinks get what is encoded, then are closed (delivered, fsynced). */
  drop(chain: Chain): void {
    const key = chain.join(',^');
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#pumpEntry(entry);
    this.#dirty.delete(entry);
    this.#entries.delete(key);
    this.router.delete(chain);
    this.#closeEntry(entry);
  }

  /** Closes every sink (daemon stop): each delivers what it can within its close timeout. */
  async close(): Promise<void> {
    this.pump();
    for (const entry of this.#entries.values()) this.#closeEntry(entry);
    this.#entries.clear();
    for (const key of [...this.router.keys()]) this.router.delete(key.split(',^'));
    await Promise.all(this.#closing);
  }

  stats(): ContainerSinksStats {
    const sinks: ContainerSinkStatus[] = [];
    for (const entry of this.#entries.values()) {
      for (const s of entry.sinks) sinks.push(status(entry, s));
    }
    return {
      containers: this.#entries.size,
      sinks: [...sinks, ...this.#recentlyClosed],
      opened: this.#opened,
      failed: this.#failed,
      closed: this.#closed,
      closedWrittenEvents: this.#closedWritten,
      closedDroppedEvents: this.#closedDropped,
      overflow: this.#overflow,
    };
  }

  #pumpEntry(entry: Entry): void {
    if (entry.pending === 0) return;
    const events = entry.pending;
    entry.pending = 0;
    // A drop sink at its bound drops and counts these events itself.
    if (entry.encoders.size === 1) {
      // Most containers have one format: no map per pump.
      const bytes = entry.encoders.values().next().value!.takeCopy();
      for (const s of entry.sinks) s.sink?.write(bytes, events);
      return;
    }
    const bytes = new Map<SinkFormat, Buffer>();
    for (const [format, encoder] of entry.encoders) bytes.set(format, encoder.takeCopy());
    for (const s of entry.sinks) s.sink?.write(bytes.get(s.spec.format)!, events);
  }

  #closeEntry(entry: Entry): void {
    for (const s of entry.sinks) {
      const sink = s.sink;
      if (sink === null) continue;
      // close() delivers (and fsyncs) what it can within the sink's close
      // timeout, then drops and counts the rest: a stalled destination
      // cannot hold a dropped container's sink, or the daemon's stop, for ever.
      const done = sink.close().then(() => {
        const final = status(entry, s);
        this.#closed++;
        this.#closedWritten += final.writtenEvents;
        this.#closedDropped += final.droppedEvents;
        this.#recentlyClosed.push(final);
        if (this.#recentlyClosed.length > KEEP_CLOSED) this.#recentlyClosed.shift();
        this.#closing.delete(done);
      });
      this.#closing.add(done);
    }
  }
}

function status(entry: Entry, s: OpenSink): ContainerSinkStatus {
  const st = s.sink?.stats();
  return {
    container: entry.key,
    pid: entry.pid,
    kind: s.spec.kind,
    target: st?.target ?? s.spec.target,
    format: s.spec.format,
    state: st?.state ?? 'failed',
    queuedEvents: st?.queuedEvents ?? 0,
    queuedBytes: st?.queuedBytes ?? 0,
    writtenEvents: st?.writtenEvents ?? 0,
    droppedEvents: st?.droppedEvents ?? 0,
    errors: st?.errors ?? 1,
    lastError: st?.lastError ?? s.failure,
  };
}

/** The real sinks, each a `drop` sink with the spec's queue bound. */
export function openSink(spec: SinkSpec, onError: (error: SinkError) => void): Sink {
  const common = {
    policy: 'drop' as const,
    maxQueueBytes: spec.queueBytes,
    maxQueueEvents: spec.queueEvents,
    onError,
  };
  switch (spec.kind) {
    case 'file':
      return new FileSink({
        ...common,
        path: spec.target,
        ...(spec.root === null ? {} : { root: spec.root }),
        mode: spec.mode,
        maxFileBytes: spec.maxFileBytes,
        numLogs: spec.numLogs,
      });
    case 'unix':
      return new UnixSocketSink({
        ...common,
        path: spec.target,
        ...(spec.root === null ? {} : { root: spec.root }),
      });
    case 'remote': {
      const colon = spec.target.lastIndexOf(':');
      const host = spec.target.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
      return new RemoteSink({
        ...common,
        host,
        port: Number(spec.target.slice(colon + 1)),
        ...(spec.netns === null ? {} : { netns: spec.netns }),
      });
    }
  }
}
