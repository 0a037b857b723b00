/**
 * Stored events back to output, through the writers `contid replay` uses:
 * auditd text (what the host log holds), JSON lines (docs/json.md), or the
 * interpreted view of `ausearch -i` (src/output/interpreted.ts).
 */
import { ByteSink } from '../output/byte-sink.js';
import type { IdNames } from '../output/interpretation.js';
import { InterpretedEventWriter } from '../output/interpreted.js';
import { JsonEventWriter } from '../output/json.js';
import { TextEventWriter } from '../output/text.js';
import { splitFields } from '../parse/fields.js';
import { decodePayload, unpackPayload } from './payload.js';
import type { StoredEvent } from './store.js';

/** How `contid search` writes events. */
export type StoreFormat = 'text' | 'json' | 'table';

function fieldsOf(body: string): Record<string, string> {
  const names: string[] = [];
  const values: string[] = [];
  splitFields(body, names, values);
  const out: Record<string, string> = {};
  names.forEach((n, i) => {
    out[n] = values[i]!;
  });
  return out;
}

/** Formats stored events into a buffer that {@link take} empties. */
export class StoredEventWriter {
  readonly #sink = new ByteSink(256 * 1024);
  readonly #format: StoreFormat;
  readonly #text: TextEventWriter;
  readonly #json: JsonEventWriter;
  readonly #table: InterpretedEventWriter;

  constructor(format: StoreFormat, options: { readonly ids?: IdNames | null } = {}) {
    this.#format = format;
    this.#text = new TextEventWriter(this.#sink);
    this.#json = new JsonEventWriter(this.#sink, options.ids ?? null);
    this.#table = new InterpretedEventWriter(this.#sink, { ids: options.ids ?? null });
  }

  /**
   * Writes one stored event.
   *
   * @throws {PayloadError} when its payload cannot be read back.
   */
  write(stored: StoredEvent): void {
    const { event, extras, links } = decodePayload(unpackPayload(stored.data));
    switch (this.#format) {
      case 'text':
        this.#text.write(event, extras, links);
        break;
      case 'table':
        this.#table.write(event, extras, links);
        break;
      case 'json':
        this.#json.write(event, {
          contid: stored.contid,
          ...(extras.length === 0
            ? {}
            : { records: extras.map((x) => ({ type: x.typeName, fields: fieldsOf(x.body) })) }),
        });
        break;
    }
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
