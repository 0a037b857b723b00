/**
 * Splits a byte stream into lines, with a hard bound on line length.
 *
 * Lines are handed over as byte ranges of the input, never decoded or
 * changed here: the pipeline reads fields straight from bytes, and the text
 * writer copies a line as it came in (evidence keeps its bytes, invalid
 * UTF-8 included; the JSON writer deals with such bytes itself). A line that
 * spans chunks is joined into a buffer of its own, so the output does not
 * depend on where chunks end.
 */
export interface LineSplitterOptions {
  /** Longest line accepted, in bytes (default 1 MiB). Longer lines are reported and skipped. */
  readonly maxLineBytes?: number;
  /**
   * Called with each complete line as `buf[start..end)` (without the newline)
   * and its 1-based number. `terminated` is false for a last line that had
   * no newline (ended by endFile() or end()). The buffer stays valid after
   * the call: records may keep referring to it.
   */
  readonly onLine: (buf: Buffer, start: number, end: number, lineNo: number, terminated: boolean) => void;
  /** Called once per line that exceeded the bound, with its number, its length and its start. */
  readonly onOverlong: (lineNo: number, bytes: number, head: string) => void;
}

const NL = 0x0a;
/**
 * Bytes of an overlong line kept for the report. Never more than the line
 * bound, so that the excerpt is the same whichever way the line was chunked.
 */
const HEAD = 200;

export class LineSplitter {
  readonly #max: number;
  readonly #onLine: LineSplitterOptions['onLine'];
  readonly #onOverlong: LineSplitterOptions['onOverlong'];
  /** Bytes of the current incomplete line. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** True while skipping the rest of an overlong line. */
  #skipping = false;
  #skippedBytes = 0;
  #skippedHead = '';
  #lineNo = 0;

  constructor(options: LineSplitterOptions) {
    this.#max = options.maxLineBytes ?? 1024 * 1024;
    this.#onLine = options.onLine;
    this.#onOverlong = options.onOverlong;
  }

  /** Number of lines completed so far. */
  get lines(): number {
    return this.#lineNo;
  }

  /**
   * Feeds a chunk of input. The chunk must not be modified afterwards: lines
   * are handed over as ranges of it.
   */
  push(chunk: Buffer | string): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(NL, start);
      if (nl < 0) {
        this.#hold(buf.subarray(start));
        return;
      }
      if (this.#skipping) {
        this.#skippedBytes += nl - start;
        this.#finishSkip();
        start = nl + 1;
      } else if (this.#pendingBytes > 0) {
        this.#pending.push(buf.subarray(start, nl));
        this.#pendingBytes += nl - start;
        this.#flushPending(true);
        start = nl + 1;
      } else {
        // Every complete line of this chunk at once.
        const last = buf.lastIndexOf(NL);
        this.#emitBlock(buf.subarray(start, last + 1));
        start = last + 1;
      }
    }
  }

  /**
   * Ends the current input (one file of several): a last line without a
   * newline is a line of its own, never joined to the next input's first.
   * Line numbers go on counting.
   */
  endFile(): void {
    if (this.#skipping) this.#finishSkip();
    else if (this.#pendingBytes > 0) this.#flushPending(false);
  }

  /** Ends the input: flushes a final line that had no newline. */
  end(): void {
    this.endFile();
  }

  #flushPending(terminated: boolean): void {
    const whole = Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#emit(whole, 0, whole.length, terminated);
  }

  #hold(part: Buffer): void {
    if (part.length === 0) return;
    if (this.#skipping) {
      this.#skippedBytes += part.length;
      return;
    }
    if (this.#pendingBytes + part.length > this.#max) {
      this.#skipping = true;
      this.#skippedBytes = this.#pendingBytes + part.length;
      const head = Buffer.concat([...this.#pending, part.subarray(0, HEAD)]);
      this.#skippedHead = head.toString('utf8', 0, Math.min(head.length, HEAD, this.#max));
      this.#pending = [];
      this.#pendingBytes = 0;
      return;
    }
    // Copy: the rest of the caller's chunk is not ours to keep.
    this.#pending.push(Buffer.from(part));
    this.#pendingBytes += part.length;
  }

  #finishSkip(): void {
    this.#lineNo++;
    this.#onOverlong(this.#lineNo, this.#skippedBytes, this.#skippedHead);
    this.#skipping = false;
    this.#skippedBytes = 0;
    this.#skippedHead = '';
  }

  #emit(buf: Buffer, start: number, end: number, terminated: boolean): void {
    this.#lineNo++;
    if (end - start > this.#max) {
      this.#onOverlong(
        this.#lineNo,
        end - start,
        buf.toString('utf8', start, start + Math.min(HEAD, this.#max)),
      );
      return;
    }
    this.#onLine(buf, start, end, this.#lineNo, terminated);
  }

  /** Emits every line of a block that ends with a newline. */
  #emitBlock(block: Buffer): void {
    let from = 0;
    const n = block.length;
    while (from < n) {
      const nl = block.indexOf(NL, from);
      this.#emit(block, from, nl, true);
      from = nl + 1;
    }
  }
}
