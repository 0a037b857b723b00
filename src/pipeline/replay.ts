import type { AssemblerStats } from '../assemble/assembler.js';
import { EventAssembler } from '../assemble/assembler.js';
import type { AuditEvent } from '../assemble/event.js';
import { ByteSink } from '../output/byte-sink.js';
import type { IdNames } from '../output/interpretation.js';
import { JsonEventWriter } from '../output/json.js';
import { TextEventWriter } from '../output/text.js';
import { RecordParser } from '../parse/parser.js';
import type { ParseIssue } from '../parse/record.js';

export type OutputFormat = 'json' | 'text';

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
}

export interface ReplayStats extends AssemblerStats {
  lines: number;
  /** Blank and comment lines. */
  skippedLines: number;
  /** Lines that were not records (malformed, truncated, overlong). */
  badLines: number;
  /** The first `keepIssues` problems, with line numbers. */
  issues: ParseIssue[];
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
  readonly #out = new ByteSink();
  #badLines = 0;
  readonly #issues: ParseIssue[] = [];

  constructor(options: ReplayOptions) {
    const ids = options.ids ?? null;
    this.#keepIssues = options.keepIssues ?? 100;
    if (options.format === 'json') {
      const writer = new JsonEventWriter(this.#out, ids);
      this.#write = (e) => {
        writer.write(e);
      };
    } else {
      const writer = new TextEventWriter(this.#out);
      this.#write = (e) => {
        writer.write(e);
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
    return this.#take();
  }

  stats(): ReplayStats {
    return {
      ...this.#assembler.stats(),
      lines: this.#parser.lines,
      skippedLines: this.#parser.skipped,
      badLines: this.#badLines,
      issues: [...this.#issues],
    };
  }

  #take(): Buffer {
    return this.#out.take();
  }
}
