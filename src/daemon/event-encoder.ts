/**
 * Labelled event → output bytes, in the host log's format: the same
 * writers and the same labelOutput as `contid replay`, so a live host log
 * and a replay of the same stream are byte-identical.
 */
import { ByteSink } from '../output/byte-sink.js';
import { JsonEventWriter } from '../output/json.js';
import { TextEventWriter } from '../output/text.js';
import { labelOutput } from '../pipeline/labels.js';
import type { LabelledEvent } from '../policy/labeller.js';
import type { HostLogFormat } from './config.js';

/** Formats labelled events into a buffer that {@link take} empties. */
export class EventEncoder {
  // Small: take() starts a fresh buffer of this size after each batch.
  readonly #sink = new ByteSink(16 * 1024);
  readonly #write: (le: LabelledEvent) => void;

  constructor(format: HostLogFormat) {
    if (format === 'json') {
      const writer = new JsonEventWriter(this.#sink, null);
      this.#write = (le) => {
        writer.write(le.event, labelOutput(le).json);
      };
    } else {
      const writer = new TextEventWriter(this.#sink);
      this.#write = (le) => {
        const out = labelOutput(le);
        writer.write(le.event, out.text, out.links);
      };
    }
  }

  write(le: LabelledEvent): void {
    this.#write(le);
  }

  /** Bytes written since the last take. */
  get length(): number {
    return this.#sink.length;
  }

  take(): Buffer {
    return this.#sink.take();
  }
}
