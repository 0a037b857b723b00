/**
 * Stored events back to output, through the writers `contid replay` uses:
 * auditd text (what the host log holds), JSON lines (docs/json.md), or the
 * interpreted view of `ausearch -i` (src/output/interpreted.ts).
 */
import { ByteSink } from '../output/byte-sink.js';
import type { IdNames } from '../output/interpretation.js';
import { TextEventWriter, type ExtraRecord } from '../output/text.js';
import type { AuditEvent } from '../assemble/event.js';
import { fieldsOf } from '../pipeline/labels.js';
import { decodePayload, unpackPayload } from './payload.js';
import type { StoredEvent } from './store.js';

/** How `contid search` writes events. */
export type StoreFormat = 'text' | 'json' | 'table';

type Write = (
  event: AuditEvent,
  extras: readonly ExtraRecord[],
  links: readonly number[],
  contid: string | null,
) => void;

/** Formats stored events into a buffer that {@link take} empties. */
export class StoredEventWriter {
  readonly #sink: ByteSink;
  readonly #write: Write;

  private constructor(sink: ByteSink, write: Write) {
    this.#sink = sink;
    this.#write = write;
  }

  /**
   * A writer for `format`. Only that format's writer is loaded: JSON and the
   * interpreted view bring the interpretation tables, which a command that
   * prints auditd text does not need to start.
   */
  static async create(
    format: StoreFormat,
    options: { readonly ids?: IdNames | null } = {},
  ): Promise<StoredEventWriter> {
    const sink = new ByteSink(256 * 1024);
    const ids = options.ids ?? null;
    switch (format) {
      case 'text': {
        const w = new TextEventWriter(sink);
        return new StoredEventWriter(sink, (event, extras, links) => {
          w.write(event, extras, links);
        });
      }
      case 'table': {
        const { InterpretedEventWriter } = await import('../output/interpreted.js');
        const w = new InterpretedEventWriter(sink, { ids });
        return new StoredEventWriter(sink, (event, extras, links) => {
          w.write(event, extras, links);
        });
      }
      case 'json': {
        const { JsonEventWriter } = await import('../output/json.js');
        const w = new JsonEventWriter(sink, { ids });
        return new StoredEventWriter(sink, (event, extras, _links, contid) => {
          w.write(event, {
            contid,
            ...(extras.length === 0
              ? {}
              : { records: extras.map((x) => ({ type: x.typeName, fields: fieldsOf(x.body) })) }),
          });
        });
      }
    }
  }

  /**
   * Writes one stored event.
   *
   * @throws {PayloadError} when its payload cannot be read back.
   */
  write(stored: StoredEvent): void {
    const { event, extras, links } = decodePayload(unpackPayload(stored.data));
    this.#write(event, extras, links, stored.contid);
  }

  /** Bytes written since the last take. */
  get length(): number {
    return this.#sink.length;
  }

  /** What was written, as a fresh buffer. */
  take(): Buffer {
    return Buffer.from(this.#sink.take());
  }
}
