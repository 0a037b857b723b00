/**
 * Splits the fields text of an audit record into names and raw values.
 *
 * Values keep their quoting exactly as written: `"..."` and `'...'` (which
 * may contain spaces, such as USER records' nested `msg='...'`) and `{ ... }`
 * (interpreted socket addresses in the enriched part). Words without `=`
 * (`user`, `PAM:`, `config changed,`) are not fields and are skipped; an
 * empty value (`subj= `) is kept as the empty string.
 *
 * The one tokenizer works on bytes and index ranges: it runs for every
 * record, so it avoids regular expressions and intermediate strings, and the
 * JSON writer copies fields straight from the input bytes with it.
 */

const SPACE = 0x20;
const EQ = 0x3d;
const DQ = 0x22;
const SQ = 0x27;

/**
 * Finds the next field of `buf[from..end)`. Writes its name range to
 * `r[0]..r[1]` and its value range to `r[2]..r[3]`, and returns the index
 * after it; returns -1 when no field is left.
 *
 * A single-quoted value is a user message's text, `msg='…'`, which the
 * kernel writes last and passes on as the sender wrote it, quotes included:
 * it runs to the last `'` before `end`, so that a quote in the text cannot
 * end it early and make the rest of the text into fields. Inside that text
 * (`nested`), quotes are the text's own and a value ends at its first
 * closing quote.
 */
export function nextField(buf: Uint8Array, from: number, end: number, r: Int32Array, nested = false): number {
  let i = from;
  for (;;) {
    while (i < end && buf[i] === SPACE) i++;
    if (i >= end) return -1;
    let j = i;
    let c = 0;
    while (j < end) {
      c = buf[j]!;
      if (c === EQ || c === SPACE) break;
      j++;
    }
    if (j >= end || c === SPACE) {
      // A word without '=': not a field.
      i = j;
      continue;
    }
    const k = j + 1;
    const q = k < end ? buf[k]! : 0;
    let stop: number;
    if (q === DQ) {
      // An unterminated quote takes the rest of the line rather than losing it.
      stop = find(buf, DQ, k + 1, end);
      stop = stop < 0 ? end : stop + 1;
    } else if (q === SQ) {
      stop = nested ? singleQuoteEnd(buf, k + 1, end) : lastQuoteEnd(buf, k + 1, end);
    } else if (q === 0x7b /* { */) {
      stop = find(buf, 0x7d /* } */, k + 1, end);
      stop = stop < 0 ? end : stop + 1;
    } else {
      stop = find(buf, SPACE, k, end);
      if (stop < 0) stop = end;
    }
    r[0] = i;
    r[1] = j;
    r[2] = k;
    r[3] = stop;
    return stop;
  }
}

function find(buf: Uint8Array, byte: number, from: number, end: number): number {
  for (let i = from; i < end; i++) if (buf[i] === byte) return i;
  return -1;
}

/** The end of a single-quoted value whose text starts at `from`: after the last quote, else the end. */
function lastQuoteEnd(buf: Uint8Array, from: number, end: number): number {
  for (let i = end - 1; i >= from; i--) if (buf[i] === SQ) return i + 1;
  return end;
}

/**
 * Finds the end of a single-quoted value inside a user message's text. A
 * quote inside a double-quoted inner value (`acct="a('b')"`) does not end it.
 */
function singleQuoteEnd(buf: Uint8Array, from: number, end: number): number {
  let inDouble = false;
  for (let i = from; i < end; i++) {
    const c = buf[i];
    if (c === DQ) inDouble = !inDouble;
    else if (c === SQ && !inDouble) return i + 1;
  }
  // Unbalanced: fall back to the last quote, else take the rest of the line.
  for (let i = end - 1; i >= from; i--) if (buf[i] === SQ) return i + 1;
  return end;
}

const range = new Int32Array(4);

/** Appends the fields of `text` to `names` and `values`. */
export function splitFields(text: string | Buffer, names: string[], values: string[], nested = false): void {
  const buf = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  splitFieldsOf(buf, 0, buf.length, names, values, nested);
}

/** Appends the fields of `buf[from..end)` to `names` and `values`. */
export function splitFieldsOf(
  buf: Buffer,
  from: number,
  end: number,
  names: string[],
  values: string[],
  nested = false,
): void {
  let i = from;
  while ((i = nextField(buf, i, end, range, nested)) >= 0) {
    const name = buf.toString('utf8', range[0], range[1]);
    const value = buf.toString('utf8', range[2], range[3]);
    if (nested) {
      pushNested(name, value, names, values);
    } else {
      names.push(name);
      values.push(value);
    }
  }
}

/**
 * Inside a nested msg, old PAM and SELinux messages wrap fields in free text:
 * `(hostname=?, addr=?, terminal=cron res=success)`, `(seqno=2)`. The
 * parentheses and commas are punctuation of that text, not part of values.
 */
function pushNested(name: string, value: string, names: string[], values: string[]): void {
  let v = value;
  const c0 = v.charCodeAt(0);
  if (c0 !== DQ && c0 !== SQ) {
    if (v.endsWith(',')) v = v.slice(0, -1);
    if (v.endsWith(')') && !v.includes('(')) v = v.slice(0, -1);
  }
  names.push(name.charCodeAt(0) === 0x28 /* ( */ ? name.slice(1) : name);
  values.push(v);
}

/**
 * Expands a nested `msg='...'` value (USER records) into its inner fields.
 * Returns false when the value is not single-quoted.
 */
export function splitNestedMsg(value: string, names: string[], values: string[]): boolean {
  if (value.length < 2 || value.charCodeAt(0) !== SQ || value.charCodeAt(value.length - 1) !== SQ) {
    return false;
  }
  splitFields(value.slice(1, -1), names, values, true);
  return true;
}
