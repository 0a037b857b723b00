/**
 * Collects what an {@link AuditReader} delivers so a test can wait for a
 * particular record while the reader keeps being drained.
 */
import type { AuditMessage, AuditReader } from '../../src/kernel/reader.js';

interface Wait {
  readonly predicate: (message: AuditMessage) => boolean;
  readonly resolve: (message: AuditMessage) => void;
}

/** Consumes a reader in the background and keeps the last `limit` records. */
export class Collector {
  /** Records seen so far, oldest first, at most `limit`. */
  readonly messages: AuditMessage[] = [];
  /** Records dropped from {@link messages} to respect the limit. */
  dropped = 0;
  /** Resolves when the reader ends; rejects with its error. */
  readonly finished: Promise<void>;
  readonly #limit: number;
  readonly #waits = new Set<Wait>();

  constructor(reader: AuditReader, limit = 100_000) {
    this.#limit = limit;
    this.finished = this.#consume(reader);
    // Errors surface through finished and through waitFor's timeout.
    this.finished.catch(() => undefined);
  }

  async #consume(reader: AuditReader): Promise<void> {
    for await (const batch of reader) {
      for (const message of batch) {
        this.messages.push(message);
        for (const wait of this.#waits) {
          if (wait.predicate(message)) {
            this.#waits.delete(wait);
            wait.resolve(message);
          }
        }
      }
      const excess = this.messages.length - this.#limit;
      if (excess > 0) {
        this.messages.splice(0, excess);
        this.dropped += excess;
      }
    }
  }

  /**
   * Resolves with the first record, already seen or still to come, that
   * matches; rejects after `timeoutMs` or when the reader fails.
   */
  waitFor(
    predicate: (message: AuditMessage) => boolean,
    what: string,
    timeoutMs = 5000,
  ): Promise<AuditMessage> {
    const seen = this.messages.find(predicate);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waits.delete(wait);
        reject(new Error(`No ${what} within ${timeoutMs} ms (${this.messages.length} records seen)`));
      }, timeoutMs);
      const wait: Wait = {
        predicate,
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
      };
      this.#waits.add(wait);
      this.finished.then(
        () => undefined,
        (error: unknown) => {
          clearTimeout(timer);
          this.#waits.delete(wait);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }
}
