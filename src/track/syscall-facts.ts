/**
 * What the labeller reads from every SYSCALL record: who ran it (pid,
 * ppid), which syscall and how it went (arch, syscall, success, exit, a0),
 * and, only when a process is new or execs, its comm and exe.
 *
 * Records are read from their bytes. A record laid out as the kernel writes
 * it is read by checking each expected name in its place (no search); any
 * other is read in one general pass, which stops once the fields needed are
 * found. Either way a field is read only when asked for and only once. The
 * values are those of the first field of each name, as the record's `field`
 * and `fieldInt` give them; a record whose fields the pass cannot follow
 * exactly (a single-quoted or braced value, which the kernel never writes
 * there) is read through those instead.
 */
import { decimalField, rawValueText } from '../parse/parser.js';
import type { AuditRecord } from '../parse/record.js';
import type { LifecycleKind } from './lifecycle.js';
import { cloneFlagsOfBytes, cloneFlagsWord, lifecycleKind, lifecycleKindOfBytes } from './lifecycle.js';
import { asciiAt } from '../bytes.js';

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
/** Field names as the kernel writes them, with their '='. */
const fieldName = (name: string): Uint8Array => Buffer.from(`${name}=`, 'latin1');
const K_ARCH = fieldName('arch');
const K_SYSCALL = fieldName('syscall');
const K_PER = fieldName('per');
const K_SUCCESS = fieldName('success');
const K_EXIT = fieldName('exit');
const K_A0 = fieldName('a0');
const K_BEFORE_PPID = ['a1', 'a2', 'a3', 'items'].map(fieldName);
const K_PPID = fieldName('ppid');
const K_PID = fieldName('pid');
const K_BEFORE_COMM = [
  'auid',
  'uid',
  'gid',
  'euid',
  'suid',
  'fsuid',
  'egid',
  'sgid',
  'fsgid',
  'tty',
  'ses',
].map(fieldName);
const K_COMM = fieldName('comm');
const K_EXE = fieldName('exe');
const CORE = PID | PPID | ARCH | SYSCALL | SUCCESS | EXIT | A0;
const NAMES = COMM | EXE;

/** One reusable reading of a SYSCALL record (the labeller keeps one). */
export class SyscallFacts {
  pid: number | null = null;
  ppid: number | null = null;
  /** The lifecycle meaning of arch + syscall; null when either is missing. */
  kind: LifecycleKind | null = null;
  /** clone(2) flags from `a0=` (see cloneFlagsWord): read only for clone records. */
  cloneFlags: number | null = null;
  #record: AuditRecord | null = null;
  // Byte reading state: the record's bytes (null: the general lookup was
  // used), where the pass stopped (-1: at the end), what it found.
  #src: Buffer | null = null;
  #end = 0;
  #next = -1;
  /** Where #kernelOrder stopped, after `pid=`; -1 when it was not used. */
  #afterPid = -1;
  #found = 0;
  #success = false;
  #exit: number | null = null;
  #commStart = -1;
  #commEnd = -1;
  #exeStart = -1;
  #exeEnd = -1;
  #a0Start = -1;
  #a0End = -1;
  #archStart = -1;
  #archEnd = -1;
  #syscall: number | null = null;
  /** Where the value #expect last read starts. */
  #vs = 0;

  /** Reads `r` (a SYSCALL record). */
  read(r: AuditRecord): void {
    this.#record = r;
    if (this.#kernelOrder(r.src, r.bodyStart, r.bodyEnd) || this.#scan(r.src, r.bodyStart, r.bodyEnd, CORE)) {
      this.kind = this.#archStart < 0 || this.#syscall === null ? null : this.#kindFromBytes();
      this.cloneFlags =
        this.kind === 'clone' && this.#a0Start >= 0
          ? cloneFlagsOfBytes(this.#src!, this.#a0Start, this.#a0End)
          : null;
      return;
    }
    this.#general(r);
  }

  /** `success=yes`. */
  get success(): boolean {
    this.#want(SUCCESS);
    return this.#success;
  }

  /** `exit=` as an integer, or null. */
  get exit(): number | null {
    this.#want(EXIT);
    return this.#exit;
  }

  /** The record's raw `comm=` value, or undefined. */
  comm(): string | undefined {
    this.#want(NAMES);
    if (this.#src === null) return this.#record!.field('comm');
    return this.#commStart < 0 ? undefined : rawValueText(this.#src, this.#commStart, this.#commEnd);
  }

  /** The record's raw `exe=` value, or undefined. */
  exe(): string | undefined {
    this.#want(NAMES);
    if (this.#src === null) return this.#record!.field('exe');
    return this.#exeStart < 0 ? undefined : rawValueText(this.#src, this.#exeStart, this.#exeEnd);
  }

  /** Everything through the record's own lookup (values the pass cannot follow). */
  #general(r: AuditRecord): void {
    this.#src = null;
    this.pid = r.fieldInt('pid');
    this.ppid = r.fieldInt('ppid');
    const arch = r.field('arch');
    const nr = r.fieldInt('syscall');
    this.kind = arch === undefined || nr === null ? null : lifecycleKind(arch, nr);
    this.#success = r.field('success') === 'yes';
    this.#exit = r.fieldInt('exit');
    this.cloneFlags = this.kind === 'clone' ? cloneFlagsWord(r.field('a0') ?? '') : null;
  }

  #kindFromBytes(): LifecycleKind {
    return lifecycleKindOfBytes(this.#src!, this.#archStart, this.#archEnd, this.#syscall!);
  }

  /** Goes on past the fields read so far until those in `bits` are found, once per record. */
  #want(bits: number): void {
    if (this.#src === null || (this.#found & bits) === bits || this.#next < 0) return;
    if (bits === NAMES && this.#next === this.#afterPid && this.#kernelNames()) return;
    // A value the pass cannot follow: the general lookup decides.
    if (!this.#resume(bits)) this.#general(this.#record!);
  }

  /**
   * The pass for a record laid out as the kernel writes it: `arch= syscall=
   * [per=] [success= exit=] a0= a1= a2= a3= items= ppid= pid=`, one space
   * apart, no value quoted. Each name is checked where it must be, with no
   * search; these are then the first fields of their names, so the result
   * is the general pass's. False (and nothing found) for any other layout.
   */
  #kernelOrder(src: Buffer, from: number, end: number): boolean {
    this.#src = src;
    this.#end = end;
    this.#found = 0;
    this.#afterPid = -1;
    this.#commStart = this.#exeStart = -1;
    let i = this.#expect(src, from, end, K_ARCH);
    if (i < 0) return false;
    this.#archStart = this.#vs;
    this.#archEnd = i;
    i = this.#expect(src, i + 1, end, K_SYSCALL);
    if (i < 0) return false;
    this.#syscall = decimalField(src, this.#vs, i);
    if (src[i + 1] === 0x70) {
      i = this.#expect(src, i + 1, end, K_PER);
      if (i < 0) return false;
    }
    // Without `success= exit=` here (a syscall that did not return, as
    // exit_group), the pass looks for them further only if they are asked for.
    let found = CORE & ~(SUCCESS | EXIT);
    this.#success = false;
    this.#exit = null;
    if (src[i + 1] === 0x73) {
      i = this.#expect(src, i + 1, end, K_SUCCESS);
      if (i < 0) return false;
      const vs = this.#vs;
      this.#success = i - vs === 3 && src[vs] === 0x79 && src[vs + 1] === 0x65 && src[vs + 2] === 0x73;
      i = this.#expect(src, i + 1, end, K_EXIT);
      if (i < 0) return false;
      this.#exit = decimalField(src, this.#vs, i);
      found = CORE;
    }
    i = this.#expect(src, i + 1, end, K_A0);
    if (i < 0) return false;
    this.#a0Start = this.#vs;
    this.#a0End = i;
    for (let k = 0; k < K_BEFORE_PPID.length && i >= 0; k++)
      i = this.#expect(src, i + 1, end, K_BEFORE_PPID[k]!);
    if (i < 0) return false;
    i = this.#expect(src, i + 1, end, K_PPID);
    if (i < 0) return false;
    this.ppid = decimalField(src, this.#vs, i);
    i = this.#expect(src, i + 1, end, K_PID);
    if (i < 0) return false;
    this.pid = decimalField(src, this.#vs, i);
    this.#found = found;
    this.#next = this.#afterPid = i < end ? i : -1;
    return true;
  }

  /**
   * comm and exe after the kernel's task fields (`auid= … ses=`), where
   * #kernelOrder stopped; false, with nothing found, for any other layout.
   */
  #kernelNames(): boolean {
    const src = this.#src!;
    const end = this.#end;
    let i = this.#next;
    for (let k = 0; k < K_BEFORE_COMM.length && i >= 0; k++)
      i = this.#expect(src, i + 1, end, K_BEFORE_COMM[k]!);
    if (i < 0) return false;
    i = this.#expect(src, i + 1, end, K_COMM, true);
    if (i < 0) return false;
    const commStart = this.#vs;
    const commEnd = i;
    i = this.#expect(src, i + 1, end, K_EXE, true);
    if (i < 0) return false;
    this.#commStart = commStart;
    this.#commEnd = commEnd;
    this.#exeStart = this.#vs;
    this.#exeEnd = i;
    this.#found |= NAMES;
    return true;
  }

  /**
   * The end of the value of field `name` (given with its '=') at
   * `src[at..]`, its start in #vs; -1 when another field is there or the
   * value is single-quoted, braced, or (unless `quoted`, for comm and exe)
   * double-quoted. A double-quoted value is read as the general pass does.
   */
  #expect(src: Buffer, at: number, end: number, name: Uint8Array, quoted = false): number {
    let i = nameEnd(src, at, end, name);
    if (i < 0) return -1;
    this.#vs = i;
    const c = i < end ? src[i]! : 0;
    if (c === 0x27 || c === 0x7b || (c === DQ && !quoted)) return -1;
    if (c !== DQ) {
      while (i < end && src[i] !== SPACE) i++;
      return i;
    }
    i++;
    while (i < end && src[i] !== DQ) i++;
    return i < end ? i + 1 : end; // an unterminated quote takes the rest
  }

  /** Starts a pass over `src[from..end)`; false when it met a value it cannot follow. */
  #scan(src: Buffer, from: number, end: number, want: number): boolean {
    this.#src = src;
    this.#end = end;
    this.#next = from;
    this.#found = 0;
    this.#afterPid = -1;
    this.pid = this.ppid = this.#exit = this.#syscall = null;
    this.#success = false;
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
          this.#exit = decimalField(src, vs, ve);
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
        this.#success = ve - vs === 3 && src[vs] === 0x79 && src[vs + 1] === 0x65 && src[vs + 2] === 0x73;
      }
    } else if (len === 2 && c0 === 0x61 && src[ns + 1] === 0x30 && (found & A0) === 0) {
      this.#found |= A0;
      this.#a0Start = vs;
      this.#a0End = ve;
    }
  }
}

/** Where the value starts when `name` (with its '=') is at `src[at..]`, else -1. */
function nameEnd(src: Buffer, at: number, end: number, name: Uint8Array): number {
  const n = name.length;
  if (at + n > end) return -1;
  for (let k = 0; k < n; k++) if (src[at + k] !== name[k]) return -1;
  return at + n;
}
