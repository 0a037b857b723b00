import type { AssemblerStats } from '../assemble/assembler.js';
import { EventAssembler } from '../assemble/assembler.js';
import type { AuditEvent } from '../assemble/event.js';
import type { IdNames } from '../output/interpretation.js';
import { RecordParser } from '../parse/parser.js';
import type { Keyring } from '../marker/keyring.js';
import type { LabelledEvent, LabellerStats } from '../policy/labeller.js';
import type { HoldStats } from '../policy/hold.js';
import { LabellingStage, type LabellingOptions } from './labelling.js';
import type { OutputFormat } from './encoder.js';
import { EventEncoder } from './encoder.js';
import type { EventFilter } from './filter.js';
import type { ParseIssue } from '../parse/record.js';

export type { OutputFormat } from './encoder.js';

export interface ReplayOptions {
  readonly format: OutputFormat;
  /** Event timeout in event time, ms (default 2000). */
  readonly timeoutMs?: number;
  /** Most events in flight (default 65,536). */
  readonly maxInFlight?: number;
  /** Longest input line in bytes (default 1 MiB). */
  readonly maxLineBytes?: number;
  /** Names for uids/gids, only when the user asked for them. */
  readonly ids?: IdNames | null;
  /** Most parse issues kept with their details (all are counted; default 100). */
  readonly keepIssues?: number;
  /**
   * Track processes and apply markers (default true). Markers verify only
   * against starts in the keyring; without one, every marker is reported as
   * a forgery attempt and nothing is labelled.
   */
  readonly labels?: boolean;
  readonly keyring?: Keyring;
  /** Most processes tracked (default 1,000,000). */
  readonly maxProcesses?: number;
  /** A daemon checkpoint to start from (logs that begin after the daemon started). */
  readonly state?: LabellingOptions['state'];
  /**
   * Which events to write (default: all). It sees events once labelled,
   * so that filtering never changes a label.
   */
  readonly filter?: EventFilter | null;
  /**
   * Told of every labelled event written (the filter's matches, with one),
   * right after it is formatted: the event store's sink. Needs labels.
   */
  readonly onLabelled?: ((le: LabelledEvent) => void) | null;
}

/** A forgery attempt, as the replay summary reports it. */
export interface ForgeryReport {
  readonly time: string;
  readonly serial: number;
  readonly reason: string;
  readonly senderPid: number | null;
  readonly senderContid: string | null;
}

export interface ReplayStats extends AssemblerStats {
  lines: number;
  /** Blank and comment lines. */
  skippedLines: number;
  /** Lines that were not records (malformed, truncated, overlong). */
  badLines: number;
  /** The first `keepIssues` problems, with line numbers. */
  issues: ParseIssue[];
  /** Label tracking counters (summed over nodes), when labels are on. */
  labels: LabellerStats | null;
  /** Events held for their process's parent, when labels are on. */
  hold: HoldStats | null;
  /** Nodes (`node=`) tracked separately; events of nodes past the bound went unlabelled. */
  nodes: number;
  nodesOverflow: number;
  /** The first forgery attempts (all are counted in labels.forgeries). */
  forgeries: ForgeryReport[];
  /** Events the filter kept; null without a filter. */
  matched: number | null;
}

/**
 * The offline pipeline as a pure push machine: text in, formatted events
 * out. `push` and `end` return the output produced so far, so the caller
 * owns all I/O (and its backpressure).
 */
export class ReplayPipeline {
  readonly #parser: RecordParser;
  readonly #assembler: EventAssembler;
  readonly #write: (event: AuditEvent) => void;
  readonly #keepIssues: number;
  readonly #out: EventEncoder;
  #badLines = 0;
  readonly #issues: ParseIssue[] = [];
  readonly #stage: LabellingStage | null;
  readonly #forgeries: ForgeryReport[] = [];
  /** The events the hold stage hands over, one array reused for every event. */
  readonly #ready: LabelledEvent[] = [];
  readonly #filter: EventFilter | null;
  #matched = 0;
  /** Writes a labelled event, when the filter (if any) keeps it. */
  #emit: (le: LabelledEvent) => void = () => undefined;

  constructor(options: ReplayOptions) {
    const ids = options.ids ?? null;
    this.#keepIssues = options.keepIssues ?? 100;
    const stage = (this.#stage =
      options.labels === false
        ? null
        : new LabellingStage({
            labeller: {
              ...(options.keyring === undefined ? {} : { keyring: options.keyring }),
              ...(options.maxProcesses === undefined ? {} : { maxProcesses: options.maxProcesses }),
            },
            ...(options.state === undefined ? {} : { state: options.state }),
          }));
    const out = (this.#out = new EventEncoder(options.format, { ids }));
    const filter = (this.#filter = options.filter ?? null);
    if (filter !== null && stage === null && filter.needsLabels) {
      throw new TypeError('A --contid filter needs labels');
    }
    if (options.onLabelled != null && stage === null) throw new TypeError('An event store needs labels');
    const sink = options.onLabelled ?? null;
    // Without a filter, the write paths are the ones that existed before
    // filters: no test and no extra call per event.
    if (stage === null) {
      this.#write =
        filter === null
          ? (e) => {
              out.writePlain(e);
            }
          : (e) => {
              if (filter.matchesEvent(e)) {
                this.#matched++;
                out.writePlain(e);
              }
            };
    } else {
      const emit =
        filter === null && sink === null
          ? (le: LabelledEvent) => {
              out.write(this.#noteForgeries(le));
            }
          : (le: LabelledEvent) => {
              this.#noteForgeries(le);
              if (filter !== null) {
                if (!filter.matches(le)) return;
                this.#matched++;
              }
              out.write(le);
              sink?.(le);
            };
      this.#emit = emit;
      this.#write = (e) => {
        const ready = stage.push(e, this.#ready);
        try {
          for (let i = 0; i < ready.length; i++) emit(ready[i]!);
        } finally {
          // pop(), not `length = 0`, which is a call into the runtime per event.
          while (ready.length > 0) ready.pop();
        }
      };
    }
    this.#assembler = new EventAssembler({
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }),
      onEvent: (e) => {
        this.#write(e);
      },
    });
    this.#parser = new RecordParser({
      ...(options.maxLineBytes === undefined ? {} : { maxLineBytes: options.maxLineBytes }),
      onRecord: (r) => {
        this.#assembler.push(r);
      },
      onIssue: (i) => {
        this.#badLines++;
        if (this.#issues.length < this.#keepIssues) this.#issues.push(i);
      },
    });
  }

  /** Feeds input; returns the output it completed (UTF-8). */
  push(chunk: Buffer | string): Buffer {
    this.#parser.push(chunk);
    return this.#take();
  }

  /** Ends the input; returns the rest of the output (UTF-8). */
  end(): Buffer {
    this.#parser.end();
    this.#assembler.end();
    if (this.#stage !== null) for (const ready of this.#stage.end()) this.#emit(ready);
    return this.#take();
  }

  stats(): ReplayStats {
    return {
      ...this.#assembler.stats(),
      lines: this.#parser.lines,
      skippedLines: this.#parser.skipped,
      badLines: this.#badLines,
      issues: [...this.#issues],
      ...this.#labelStats(),
      forgeries: [...this.#forgeries],
      matched: this.#filter === null ? null : this.#matched,
    };
  }

  #labelStats(): Pick<ReplayStats, 'labels' | 'hold' | 'nodes' | 'nodesOverflow'> {
    if (this.#stage === null) return { labels: null, hold: null, nodes: 0, nodesOverflow: 0 };
    const s = this.#stage.stats();
    return { labels: s.labels, hold: s.hold, nodes: s.nodes, nodesOverflow: s.nodesOverflow };
  }

  #noteForgeries(le: LabelledEvent): LabelledEvent {
    for (const f of le.forgeries) {
      if (this.#forgeries.length >= this.#keepIssues) break;
      this.#forgeries.push({
        time: le.event.time,
        serial: le.event.serial,
        reason: f.reason,
        senderPid: f.senderPid,
        senderContid: f.senderContid,
      });
    }
    return le;
  }

  #take(): Buffer {
    return this.#out.take();
  }

  /**
   * Gives back the last buffer push() or end() returned, once the caller
   * has written it, so that the next one reuses its memory.
   */
  recycle(bytes: Buffer): void {
    this.#out.recycle(bytes);
  }
}
