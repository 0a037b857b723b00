/**
 * What the labeller reads from every SYSCALL record: who ran it (pid,
 * ppid), which syscall and how it went (arch, syscall, success, exit, a0),
 * and, only when a process is new or execs, its comm and exe.
 *
 * Records from the parser are read in one pass over their bytes, which
 * stops once the fields needed are found (they come first in a kernel
 * record). The values are those of the first field of each name, as
 * `fieldValue` and `fieldInt` give them; a record whose fields the pass
 * cannot follow exactly (a single-quoted or braced value, which the kernel
 * never writes there) is read through the general lookup instead, as are
 * records built elsewhere.
 */
import { ByteRecord, asciiAt, decimalField, rawValueText } from '../parse/parser.js';
import type { AuditRecord } from '../parse/record.js';
import { fieldInt, fieldValue } from '../parse/record.js';
import type { LifecycleKind } from './lifecycle.js';
import { cloneFlagsWord, lifecycleKind, lifecycleKindOfBytes } from './lifecycle.js';

const SPACE = 0x20;
const EQ = 0x3d;
const DQ = 0x22;

// Bits of the fields found so far.
const PID = 1;
const PPID = 2;
const ARCH = 4;
const SYSCALL = 8;
const SUCCESS = 16;
const EXIT = 32;
const A0 = 64;
const COMM = 128;
const EXE = 256;
const CORE = PID | PPID | ARCH | SYSCALL | SUCCESS | EXIT | A0;
const NAMES = COMM | EXE;

/** One reusable reading of a SYSCALL record (the labeller keeps one). */
export class SyscallFacts {
  pid: number | null = null;
  ppid: number | null = null;
  /** The lifecycle meaning of arch + syscall; null when either is missing. */
  kind: LifecycleKind | null = null;
  /** `success=yes`. */
  success = false;
  /** `exit=` as an integer, or null. */
  exit: number | null = null;
  /** clone(2) flags from `a0=` (see cloneFlagsWord): read only for clone records. */
  cloneFlags: number | null = null;
  #record: AuditRecord | null = null;
  // Byte reading state: the record's bytes, where the pass stopped, what it found.
  #src: Buffer | null = null;
  #end = 0;
  #next = -1;
  #found = 0;
  #commStart = -1;
  #commEnd = -1;
  #exeStart = -1;
  #exeEnd = -1;
  #a0Start = -1;
  #a0End = -1;
  #archStart = -1;
  #archEnd = -1;
  #syscall: number | null = null;

  /** Reads `r` (a SYSCALL record). */
  read(r: AuditRecord): void {
    this.#record = r;
    if (r instanceof ByteRecord && this.#scan(r.src, r.bodyStart, r.bodyEnd, CORE)) {
      this.kind = this.#archStart < 0 || this.#syscall === null ? null : this.#kindFromBytes();
      this.cloneFlags =
        this.kind === 'clone' ? cloneFlagsBytes(this.#src!, this.#a0Start, this.#a0End) : null;
      return;
    }
    this.#src = null;
    this.pid = fieldInt(r, 'pid');
    this.ppid = fieldInt(r, 'ppid');
    const arch = fieldValue(r, 'arch');
    const nr = fieldInt(r, 'syscall');
    this.kind = arch === undefined || nr === null ? null : lifecycleKind(arch, nr);
    this.success = fieldValue(r, 'success') === 'yes';
    this.exit = fieldInt(r, 'exit');
    this.cloneFlags = this.kind === 'clone' ? cloneFlagsWord(fieldValue(r, 'a0') ?? '') : null;
  }

  /** The record's raw `comm=` value, or undefined. */
  comm(): string | undefined {
    this.#names();
    if (this.#src === null) return fieldValue(this.#record!, 'comm');
    return this.#commStart < 0 ? undefined : rawValueText(this.#src, this.#commStart, this.#commEnd);
  }

  /** The record's raw `exe=` value, or undefined. */
  exe(): string | undefined {
    this.#names();
    if (this.#src === null) return fieldValue(this.#record!, 'exe');
    return this.#exeStart < 0 ? undefined : rawValueText(this.#src, this.#exeStart, this.#exeEnd);
  }

  #kindFromBytes(): LifecycleKind {
    return lifecycleKindOfBytes(this.#src!, this.#archStart, this.#archEnd, this.#syscall!);
  }

  /** Goes on past the core fields to comm and exe, once per record. */
  #names(): void {
    if (this.#src === null || (this.#found & NAMES) === NAMES || this.#next < 0) return;
    // A value the pass cannot follow: the general lookup decides.
    if (!this.#resume(NAMES)) this.#src = null;
  }

  /** Starts a pass over `src[from..end)`; false when it met a value it cannot follow. */
  #scan(src: Buffer, from: number, end: number, want: number): boolean {
    this.#src = src;
    this.#end = end;
    this.#next = from;
    this.#found = 0;
    this.pid = this.ppid = this.exit = this.#syscall = null;
    this.success = false;
    this.#commStart = this.#exeStart = this.#a0Start = this.#archStart = -1;
    return this.#resume(want);
  }

  /** Reads fields from where the pass stopped until those in `want` are found or the record ends. */
  #resume(want: number): boolean {
    const src = this.#src!;
    const end = this.#end;
    let i = this.#next;
    while (i < end && (this.#found & want) !== want) {
      while (i < end && src[i] === SPACE) i++;
      if (i >= end) break;
      const ns = i;
      let c = 0;
      while (i < end) {
        c = src[i]!;
        if (c === EQ || c === SPACE) break;
        i++;
      }
      if (i >= end || c === SPACE) continue; // a word without '=': not a field
      const ne = i;
      const vs = i + 1;
      const q = vs < end ? src[vs]! : 0;
      let ve: number;
      if (q === DQ) {
        ve = vs + 1;
        while (ve < end && src[ve] !== DQ) ve++;
        ve = ve < end ? ve + 1 : end; // an unterminated quote takes the rest
      } else if (q === 0x27 || q === 0x7b) {
        this.#next = -1;
        return false;
      } else {
        ve = vs;
        while (ve < end && src[ve] !== SPACE) ve++;
      }
      this.#take(src, ns, ne - ns, vs, ve);
      i = ve;
    }
    this.#next = i < end ? i : -1;
    return true;
  }

  /** Notes field `src[ns..]` (name length `len`) with value `src[vs..ve)` if it is one asked for and the first. */
  #take(src: Buffer, ns: number, len: number, vs: number, ve: number): void {
    const c0 = src[ns];
    const found = this.#found;
    if (len === 3) {
      if (c0 === 0x70 && (found & PID) === 0 && src[ns + 1] === 0x69 && src[ns + 2] === 0x64) {
        this.#found |= PID;
        this.pid = decimalField(src, vs, ve);
      } else if (c0 === 0x65 && (found & EXE) === 0 && src[ns + 1] === 0x78 && src[ns + 2] === 0x65) {
        this.#found |= EXE;
        this.#exeStart = vs;
        this.#exeEnd = ve;
      }
    } else if (len === 4) {
      if (c0 === 0x70) {
        if ((found & PPID) === 0 && src[ns + 1] === 0x70 && src[ns + 2] === 0x69 && src[ns + 3] === 0x64) {
          this.#found |= PPID;
          this.ppid = decimalField(src, vs, ve);
        }
      } else if (c0 === 0x61) {
        if ((found & ARCH) === 0 && src[ns + 1] === 0x72 && src[ns + 2] === 0x63 && src[ns + 3] === 0x68) {
          this.#found |= ARCH;
          this.#archStart = vs;
          this.#archEnd = ve;
        }
      } else if (c0 === 0x65) {
        if ((found & EXIT) === 0 && src[ns + 1] === 0x78 && src[ns + 2] === 0x69 && src[ns + 3] === 0x74) {
          this.#found |= EXIT;
          this.exit = decimalField(src, vs, ve);
        }
      } else if (c0 === 0x63) {
        if ((found & COMM) === 0 && src[ns + 1] === 0x6f && src[ns + 2] === 0x6d && src[ns + 3] === 0x6d) {
          this.#found |= COMM;
          this.#commStart = vs;
          this.#commEnd = ve;
        }
      }
    } else if (len === 7 && c0 === 0x73) {
      if ((found & SYSCALL) === 0 && asciiAt(src, ns, 'syscall')) {
        this.#found |= SYSCALL;
        this.#syscall = decimalField(src, vs, ve);
      } else if ((found & SUCCESS) === 0 && asciiAt(src, ns, 'success')) {
        this.#found |= SUCCESS;
        this.success = ve - vs === 3 && src[vs] === 0x79 && src[vs + 1] === 0x65 && src[vs + 2] === 0x73;
      }
    } else if (len === 2 && c0 === 0x61 && src[ns + 1] === 0x30 && (found & A0) === 0) {
      this.#found |= A0;
      this.#a0Start = vs;
      this.#a0End = ve;
    }
  }
}

/** cloneFlagsWord of the bytes `src[from..to)`; null when absent (from < 0). */
function cloneFlagsBytes(src: Buffer, from: number, to: number): number | null {
  return cloneFlagsWord(from < 0 ? '' : src.toString('latin1', from, to));
}
