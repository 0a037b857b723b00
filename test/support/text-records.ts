/**
 * Builds records and events from text for the tests of src/track,
 * src/policy, src/marker, src/route and src/output, through the real parser.
 */
import type { AuditEvent } from '../../src/assemble/event.js';
import { isIssue, parseLine } from '../../src/parse/parser.js';
import type { AuditRecord } from '../../src/parse/record.js';

/** Parses one record line, as line 1 of a log (test input: throws on a line that is not a record). */
export function record(line: string): AuditRecord {
  const r = parseLine(line, 1);
  if (isIssue(r)) throw new SyntaxError(`Not a record: ${r.message}: ${line}`);
  return r;
}

/** Groups record lines (all of one event) into an event. */
export function event(...lines: string[]): AuditEvent {
  const records = lines.map(record);
  const first = records[0]!;
  return {
    node: null,
    time: first.time,
    timeMs: first.timeMs,
    serial: first.serial,
    records,
    closedBy: 'eoe',
  };
}

/** A clock for test streams: each call is the next serial, 1 ms later. */
export class Stream {
  #serial = 0;
  #ms = 1_700_000_000_000;

  /** The `msg=audit(…)` stamp of the next event. */
  next(stepMs = 1): string {
    this.#serial++;
    this.#ms += stepMs;
    return `msg=audit(${Math.floor(this.#ms / 1000)}.${String(this.#ms % 1000).padStart(3, '0')}:${this.#serial})`;
  }

  /** A one-record SYSCALL event. */
  syscall(f: SyscallFields, stepMs = 1): AuditEvent {
    return event(syscallLine(this.next(stepMs), f));
  }

  /** A user message event (kernel-stamped sender fields, then `msg='text'`). */
  user(type: number | string, pid: number, text: string, uid = 0): AuditEvent {
    const t = typeof type === 'number' ? `UNKNOWN[${type}]` : type;
    return event(
      `type=${t} ${this.next()}: pid=${pid} uid=${uid} auid=4294967295 ses=4294967295 msg='${text}'`,
    );
  }
}

export interface SyscallFields {
  readonly pid: number;
  readonly ppid: number;
  /** x86_64 numbers: 56 clone, 57 fork, 58 vfork, 59 execve, 62 kill, 231 exit_group, 435 clone3. */
  readonly nr: number;
  readonly exit?: number;
  readonly a0?: string;
  readonly arch?: string;
  readonly uid?: number;
  readonly exe?: string;
  readonly success?: boolean;
}

/** A SYSCALL record line. exit_group records carry no success/exit, as the kernel writes them. */
export function syscallLine(stamp: string, f: SyscallFields): string {
  const result = f.nr === 231 ? '' : ` success=${f.success === false ? 'no' : 'yes'} exit=${f.exit ?? 0}`;
  return (
    `type=SYSCALL ${stamp}: arch=${f.arch ?? 'c000003e'} syscall=${f.nr}${result} a0=${f.a0 ?? '0'} a1=0 a2=0 a3=0 ` +
    `items=0 ppid=${f.ppid} pid=${f.pid} auid=0 uid=${f.uid ?? 0} gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 ` +
    `fsgid=0 tty=(none) ses=1 comm="t" exe="${f.exe ?? '/bin/t'}" key=(null)`
  );
}

/** glibc fork(): clone with SIGCHLD|CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID. */
export const FORK_FLAGS = '1200011';
/** pthread-style clone: CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|… */
export const THREAD_FLAGS = '3d0f00';
