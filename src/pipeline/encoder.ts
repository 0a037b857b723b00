/**
 * Events → output bytes, in auditd text or JSON lines, with or without the
 * labels the labeller attached. The one encoder behind `contid replay` and
 * the daemon's host log, so that a live host log and a replay of the same
 * stream are byte-identical.
 */
import type { AuditEvent } from '../assemble/event.js';
import { ByteSink } from '../output/byte-sink.js';
import type { IdNames } from '../output/interpretation.js';
import { InterpretedEventWriter } from '../output/interpreted.js';
import { JsonEventWriter, type JsonWriterStats } from '../output/json.js';
import type { ParseIssue } from '../parse/record.js';
import { TextEventWriter } from '../output/text.js';
import type { LabelledEvent } from '../policy/labeller.js';
import { labelOutput } from './labels.js';

/**
 * `json` (JSON lines), `text` (auditd's log format) or `interpreted` (text
 * with names for numbers, like `ausearch -i`; for people, not for parsing).
 */
export type OutputFormat = 'json' | 'text' | 'interpreted';

export interface EncoderOptions {
  /** Names for uids/gids, only when the user asked for them. */
  readonly ids?: IdNames | null;
  /** Told of input the JSON format cannot hold as it is (see JsonWriterOptions.onIssue). */
  readonly onIssue?: (issue: ParseIssue) => void;
  /** Initial output buffer size; take() starts a fresh buffer of this size (default 1 MiB). */
  readonly bufferBytes?: number;
  /** Text only: an EOE record after each event, as auditd's plugin stream has them. */
  readonly eoe?: boolean;
}

/** Formats events into a buffer that {@link take} empties. */
export class EventEncoder {
  readonly #sink: ByteSink;
  readonly #json: JsonEventWriter | null;
  readonly #text: TextEventWriter | InterpretedEventWriter | null;
  readonly #eoe: boolean;
  #events = 0;

  constructor(format: OutputFormat, options: EncoderOptions = {}) {
    this.#sink = new ByteSink(options.bufferBytes ?? 1 << 20);
    this.#json =
      format === 'json'
        ? new JsonEventWriter(this.#sink, {
            ids: options.ids ?? null,
            ...(options.onIssue === undefined ? {} : { onIssue: options.onIssue }),
          })
        : null;
    this.#text =
      format === 'text'
        ? new TextEventWriter(this.#sink)
        : format === 'interpreted'
          ? new InterpretedEventWriter(this.#sink, { ids: options.ids ?? null })
          : null;
    this.#eoe = options.eoe === true && format === 'text';
  }

  /** Writes an event with the labeller's verdict on it. */
  write(le: LabelledEvent): void {
    const out = labelOutput(le);
    if (this.#json !== null) this.#json.write(le.event, out.json);
    else this.#text!.write(le.event, out.text, out.links);
    if (this.#eoe) this.#endOfEvent(le.event);
    this.#events++;
  }

  /** Writes an event without labels (plain replay). */
  writePlain(event: AuditEvent): void {
    if (this.#json !== null) this.#json.write(event);
    else this.#text!.write(event);
    if (this.#eoe) this.#endOfEvent(event);
    this.#events++;
  }

  #endOfEvent(event: AuditEvent): void {
    const s = this.#sink;
    if (event.node !== null) {
      s.ascii('node=');
      s.utf8(event.node);
      s.ascii(' ');
    }
    s.ascii(`type=EOE msg=audit(${event.time}:${event.serial}): \n`);
  }

  /** The JSON writer's counters (all zero for text, which writes every byte as it came). */
  stats(): JsonWriterStats {
    return this.#json?.stats() ?? { fieldCapped: 0, wordsWithoutValue: 0, invalidUtf8: 0, argvOmitted: 0 };
  }

  /** Bytes written since the last take. */
  get length(): number {
    return this.#sink.length;
  }

  /** Events written since the last take: what a sink's write() is told the bytes hold. */
  get events(): number {
    return this.#events;
  }

  /** Returns what was written and starts a fresh buffer. */
  take(): Buffer {
    this.#events = 0;
    return this.#sink.take();
  }

  /** Returns a copy of what was written since the last take, and keeps the buffer (see ByteSink.takeCopy). */
  takeCopy(): Buffer {
    this.#events = 0;
    return this.#sink.takeCopy();
  }

  /** Gives back the last buffer take() returned, once written (see ByteSink.recycle). */
  recycle(bytes: Buffer): void {
    this.#sink.recycle(bytes);
  }
}
