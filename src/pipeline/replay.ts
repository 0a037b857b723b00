import type { AssemblerStats } from '../assemble/assembler.js';
import { ContidTypeError } from '../errors.js';
import { EventAssembler } from '../assemble/assembler.js';
import type { AuditEvent } from '../assemble/event.js';
import type { IdNames } from '../output/interpretation.js';
import { RecordParser } from '../parse/parser.js';
import type { EvidenceFinding, EvidenceStats } from '../marker/evidence.js';
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
  /** Most records in one event (default 10,000; see AssemblerOptions.maxRecordsPerEvent). */
  readonly maxRecordsPerEvent?: number;
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

/** A run of consecutive spans of one start that seals showed intact. */
export interface IntactSpan {
  readonly start: string;
  /** Kernel serials, inclusive. */
  readonly from: number;
  to: number;
  /** Earliest and latest record time (`SEC.MS`), null when the spans held no record. */
  since: string | null;
  until: string | null;
  /** Seals merged into this run. */
  seals: number;
}

export interface ReplayStats extends AssemblerStats {
  lines: number;
  /** Blank and comment lines. */
  skippedLines: number;
  /** Lines that were not records (malformed, truncated, overlong). */
  badLines: number;
  /** contid's own CONTAINER_ID, CONTAINER_OP and CONTID_FORGERY records in the input, left out (recomputed). */
  ownRecords: number;
  /** ` record=N` links contid had appended to input records, left out (recomputed). */
  links: number;
  /** Last lines of an input without a final newline (read, reported: the record may be cut off). */
  unterminatedLines: number;
  /** Words with no value in kernel records, which JSON leaves out (reported; text keeps them). */
  wordsWithoutValue: number;
  /** Records with more fields than JSON writes (the rest is kept whole in `rest`). */
  fieldCapped: number;
  /** Records whose bytes were not valid UTF-8 (JSON has U+FFFD for each bad sequence; text keeps them). */
  invalidUtf8: number;
  /** EXECVE records written without `argv` in JSON (argument numbers far past the record's size). */
  argvOmitted: number;
  /** The first `keepIssues` problems, with line numbers. */
  issues: ParseIssue[];
  /** Label tracking counters (summed over nodes), when labels are on. */
  labels: LabellerStats | null;
  /** Events held for their process's parent, when labels are on. */
  hold: HoldStats | null;
  /** Nodes (`node=`) tracked separately; events of nodes past the bound went unlabelled. */
  nodes: number;
  nodesOverflow: number;
  /** Events whose labelling failed (a defect), written with the unknown label. */
  labelFailures: number;
  /** The first forgery attempts (all are counted in labels.forgeries). */
  forgeries: ForgeryReport[];
  /** What the markers prove beyond their MACs (with a keyring), else null. */
  evidence: EvidenceStats | null;
  /** The first problems the evidence checks found (all are counted in `evidence`). */
  evidenceProblems: EvidenceFinding[];
  /** The spans that seals showed intact, consecutive ones merged (the first `keepIssues` runs). */
  intactSpans: IntactSpan[];
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
  readonly #evidenceProblems: EvidenceFinding[] = [];
  readonly #intactSpans: IntactSpan[] = [];
  /** The events the hold stage hands over, one array reused for every event. */
  readonly #ready: LabelledEvent[] = [];
  readonly #filter: EventFilter | null;
  #matched = 0;
  #takenEvents = 0;
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
            // A seal is judged once events closed by the timeout have come.
            evidence: { settleMs: Math.max(5000, 2 * (options.timeoutMs ?? 2000)) },
            ...(options.state === undefined ? {} : { state: options.state }),
          }));
    const out = (this.#out = new EventEncoder(options.format, {
      ids,
      onIssue: (i) => {
        this.#note(i);
      },
    }));
    const filter = (this.#filter = options.filter ?? null);
    if (filter !== null && stage === null && filter.needsLabels) {
      throw new ContidTypeError('Cannot filter by contid: labels are off', 'ERR_INCOMPATIBLE_OPTIONS');
    }
    if (options.onLabelled != null && stage === null)
      throw new ContidTypeError('Cannot store events: labels are off', 'ERR_INCOMPATIBLE_OPTIONS');
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
      ...(options.maxRecordsPerEvent === undefined ? {} : { maxRecordsPerEvent: options.maxRecordsPerEvent }),
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
        this.#note(i);
      },
    });
  }

  /** Counts an issue (a skipped line unless the record was kept) and keeps the first ones. */
  #note(issue: ParseIssue): void {
    if (issue.kept !== true) this.#badLines++;
    if (this.#issues.length < this.#keepIssues) this.#issues.push(issue);
  }

  /** Feeds input; returns the output it completed (UTF-8). */
  push(chunk: Buffer | string): Buffer {
    this.#parser.push(chunk);
    return this.#take();
  }

  /**
   * Ends one input of several (a file): its last line ends there, newline
   * or not, rather than run into the next input's first. Returns the output
   * it completed.
   */
  endFile(): Buffer {
    this.#parser.endFile();
    return this.#take();
  }

  /** Ends the input; returns the rest of the output (UTF-8). */
  end(): Buffer {
    this.#parser.end();
    this.#assembler.end();
    if (this.#stage !== null) {
      for (const ready of this.#stage.end()) this.#emit(ready);
      for (const f of this.#stage.endEvidence()) this.#noteEvidence(f);
    }
    return this.#take();
  }

  stats(): ReplayStats {
    const parsed = this.#parser.stats();
    const written = this.#out.stats();
    return {
      ...this.#assembler.stats(),
      lines: parsed.lines,
      skippedLines: parsed.skipped,
      badLines: this.#badLines,
      ownRecords: parsed.ownRecords,
      links: parsed.links,
      unterminatedLines: parsed.unterminated,
      wordsWithoutValue: written.wordsWithoutValue,
      fieldCapped: written.fieldCapped,
      invalidUtf8: written.invalidUtf8,
      argvOmitted: written.argvOmitted,
      issues: [...this.#issues],
      ...this.#labelStats(),
      forgeries: [...this.#forgeries],
      evidenceProblems: [...this.#evidenceProblems],
      intactSpans: this.#intactSpans.map((s) => ({ ...s })),
      matched: this.#filter === null ? null : this.#matched,
    };
  }

  #labelStats(): Pick<
    ReplayStats,
    'labels' | 'hold' | 'evidence' | 'nodes' | 'nodesOverflow' | 'labelFailures'
  > {
    if (this.#stage === null)
      return { labels: null, hold: null, evidence: null, nodes: 0, nodesOverflow: 0, labelFailures: 0 };
    const s = this.#stage.stats();
    return {
      labels: s.labels,
      hold: s.hold,
      evidence: s.evidence,
      nodes: s.nodes,
      nodesOverflow: s.nodesOverflow,
      labelFailures: s.failed,
    };
  }

  #noteEvidence(f: EvidenceFinding): void {
    if (f.check !== 'seal' || f.result !== 'intact') {
      if (this.#evidenceProblems.length < this.#keepIssues) this.#evidenceProblems.push(f);
      return;
    }
    const last = this.#intactSpans[this.#intactSpans.length - 1];
    if (last !== undefined && last.start === f.start && last.to + 1 === f.from) {
      last.to = f.to;
      if (f.since !== null) {
        last.since ??= f.since;
        last.until = f.until;
      }
      last.seals++;
      return;
    }
    if (this.#intactSpans.length >= this.#keepIssues) return;
    this.#intactSpans.push({
      start: f.start,
      from: f.from,
      to: f.to,
      since: f.since,
      until: f.until,
      seals: 1,
    });
  }

  #noteForgeries(le: LabelledEvent): LabelledEvent {
    for (const f of le.evidence) this.#noteEvidence(f);
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
    this.#takenEvents = this.#out.events;
    return this.#out.take();
  }

  /** How many events the buffer that push(), endFile() or end() last returned holds. */
  get takenEvents(): number {
    return this.#takenEvents;
  }

  /**
   * Gives back the last buffer push() or end() returned, once the caller
   * has written it, so that the next one reuses its memory.
   */
  recycle(bytes: Buffer): void {
    this.#out.recycle(bytes);
  }
}
