/**
 * Splits the fields text of an audit record into names and raw values.
 *
 * Values keep their quoting exactly as written: `"..."` and `'...'` (which
 * may contain spaces, such as USER records' nested `msg='...'`) and `{ ... }`
 * (interpreted socket addresses in the enriched part). Words without `=`
 * (`user`, `PAM:`, `config changed,`) are not fields and are skipped; an
 * empty value (`subj= `) is kept as the empty string.
 *
 * A linear scan with charCodeAt: this runs for every record, so it avoids
 * regular expressions and intermediate arrays.
 */
export function splitFields(text: string, names: string[], values: string[], nested = false): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    // Skip separators.
    while (i < n && text.charCodeAt(i) === 0x20) i++;
    if (i >= n) return;
    // Scan the name up to '=' or a space.
    let j = i;
    let c = 0;
    while (j < n) {
      c = text.charCodeAt(j);
      if (c === 0x3d /* = */ || c === 0x20) break;
      j++;
    }
    if (j >= n || c === 0x20) {
      // A word without '=': not a field.
      i = j;
      continue;
    }
    const name = text.slice(i, j);
    const k = j + 1;
    const q = k < n ? text.charCodeAt(k) : 0;
    let end: number;
    if (q === 0x22 /* " */) {
      end = text.indexOf('"', k + 1);
      // An unterminated quote takes the rest of the line rather than losing it.
      end = end < 0 ? n : end + 1;
    } else if (q === 0x27 /* ' */) {
      end = singleQuoteEnd(text, k + 1);
    } else if (q === 0x7b /* { */) {
      end = text.indexOf('}', k + 1);
      end = end < 0 ? n : end + 1;
    } else {
      end = text.indexOf(' ', k);
      if (end < 0) end = n;
    }
    if (nested) {
      pushNested(name, text.slice(k, end), names, values);
    } else {
      names.push(name);
      values.push(text.slice(k, end));
    }
    i = end;
  }
}

/**
 * Finds the end of a single-quoted value (USER records' `msg='...'`). A
 * quote inside a double-quoted inner value (`acct="a('b')"`) does not end it.
 */
function singleQuoteEnd(text: string, from: number): number {
  const n = text.length;
  let inDouble = false;
  for (let i = from; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) inDouble = !inDouble;
    else if (c === 0x27 && !inDouble) return i + 1;
  }
  // Unbalanced: fall back to the last quote, else take the rest of the line.
  const last = text.lastIndexOf("'");
  return last >= from ? last + 1 : n;
}

/**
 * Inside a nested msg, old PAM and SELinux messages wrap fields in free text:
 * `(hostname=?, addr=?, terminal=cron res=success)`, `(seqno=2)`. The
 * parentheses and commas are punctuation of that text, not part of values.
 */
function pushNested(name: string, value: string, names: string[], values: string[]): void {
  let v = value;
  const c0 = v.charCodeAt(0);
  if (c0 !== 0x22 && c0 !== 0x27) {
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
  if (value.length < 2 || value.charCodeAt(0) !== 0x27 || value.charCodeAt(value.length - 1) !== 0x27) {
    return false;
  }
  splitFields(value.slice(1, -1), names, values, true);
  return true;
}
