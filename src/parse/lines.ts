/**
 * Splits a byte or text stream into lines, with a hard bound on line length.
 *
 * Lines are decoded only once complete, so a multi-byte character split
 * across chunks decodes the same as when it arrives whole: the output does not
 * depend on where chunks happen to end.
 */
export interface LineSplitterOptions {
  /** Longest line accepted, in bytes (default 1 MiB). Longer lines are reported and skipped. */
  readonly maxLineBytes?: number;
  /** Called with each complete line (without the newline) and its 1-based number. */
  readonly onLine: (line: string, lineNo: number) => void;
  /** Called once per line that exceeded the bound, with its number and the bytes it had. */
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
  readonly #onLine: (line: string, lineNo: number) => void;
  readonly #onOverlong: (lineNo: number, bytes: number, head: string) => void;
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

  /** Feeds a chunk of input. */
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
      } else if (this.#pendingBytes === 0) {
        // Fast path: decode every complete line of this chunk in one call.
        // (Overlong lines inside the block are caught line by line.)
        const last = buf.lastIndexOf(NL);
        this.#emitBlock(buf.toString('utf8', start, last));
        start = last + 1;
        continue;
      } else {
        this.#pending.push(buf.subarray(start, nl));
        this.#pendingBytes += nl - start;
        const whole = Buffer.concat(this.#pending, this.#pendingBytes);
        this.#pending = [];
        this.#pendingBytes = 0;
        this.#emitOne(whole);
      }
      start = nl + 1;
    }
  }

  /** Flushes a final line that had no newline. */
  end(): void {
    if (this.#skipping) {
      this.#finishSkip();
    } else if (this.#pendingBytes > 0) {
      const whole = Buffer.concat(this.#pending, this.#pendingBytes);
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#emitOne(whole);
    }
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
    // Copy: the caller may reuse its buffer after push() returns.
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

  #emitOne(bytes: Buffer): void {
    this.#lineNo++;
    if (bytes.length > this.#max) {
      this.#onOverlong(this.#lineNo, bytes.length, bytes.toString('utf8', 0, Math.min(HEAD, this.#max)));
      return;
    }
    this.#onLine(bytes.toString('utf8'), this.#lineNo);
  }

  #emitBlock(text: string): void {
    let from = 0;
    for (;;) {
      const nl = text.indexOf('\n', from);
      const line = nl < 0 ? text.slice(from) : text.slice(from, nl);
      this.#lineNo++;
      // The block was decoded whole, so measure in bytes only when a line might be over.
      if (line.length * 3 > this.#max && Buffer.byteLength(line) > this.#max) {
        const bytes = Buffer.from(line, 'utf8');
        this.#onOverlong(this.#lineNo, bytes.length, bytes.toString('utf8', 0, Math.min(HEAD, this.#max)));
      } else {
        this.#onLine(line, this.#lineNo);
      }
      if (nl < 0) return;
      from = nl + 1;
    }
  }
}
