/**
 * Audit events for the sink tests: realistic auditd text records (ausearch
 * drops a SYSCALL record that lacks its usual fields), of varying sizes and
 * record counts, each event with its own serial, and a reader that splits
 * what reached a destination back into events.
 */

/** How the records of an event are written: auditd's log, or its plugin stream (EOE records included). */
export type EventFormat = 'text' | 'plugin';

/** Options of {@link auditEvent}. */
export interface AuditEventOptions {
  readonly format: EventFormat;
  /** Records before the EOE, 1..5 (SYSCALL first). */
  readonly records?: number;
  /** Extra bytes of argument text, to vary the size. */
  readonly pad?: number;
  /** The SYSCALL record's key. */
  readonly key?: string;
}

/** The records of event `serial`, each line ending in `\n`. */
export function auditEventLines(serial: number, options: AuditEventOptions): string[] {
  const stamp = `audit(1700000000.${String(serial % 1000).padStart(3, '0')}:${serial})`;
  const records = Math.min(Math.max(options.records ?? 5, 1), 5);
  const key = options.key ?? 'sink-test';
  const all = [
    `type=SYSCALL msg=${stamp}: arch=c000003e syscall=59 success=yes exit=0 a0=55d0c1 a1=55d0c2 a2=55d0c3 a3=0 ` +
      `items=1 ppid=${1000 + (serial % 97)} pid=${2000 + serial} auid=4242 uid=0 gid=0 euid=0 suid=0 fsuid=0 ` +
      `egid=0 sgid=0 fsgid=0 tty=(none) ses=7 comm="true" exe="/usr/bin/true" subj=unconfined key="${key}"`,
    `type=EXECVE msg=${stamp}: argc=2 a0="true" a1="${'x'.repeat(options.pad ?? serial % 200)}"`,
    `type=CWD msg=${stamp}: cwd="/"`,
    `type=PATH msg=${stamp}: item=0 name="/usr/bin/true" inode=1234 dev=fd:01 mode=0100755 ouid=0 ogid=0 ` +
      `rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`,
    `type=PROCTITLE msg=${stamp}: proctitle=74727565`,
  ].slice(0, records);
  if (options.format === 'plugin') all.push(`type=EOE msg=${stamp}: `);
  return all.map((line) => `${line}\n`);
}

/** The bytes of event `serial`. */
export function auditEvent(serial: number, options: AuditEventOptions): Buffer {
  return Buffer.from(auditEventLines(serial, options).join(''));
}

const STAMP = / msg=audit\([0-9]+\.[0-9]+:([0-9]+)\): /;

/** One event as read back: its serial and its lines, in the order they arrived. */
export interface ReadEvent {
  readonly serial: number;
  readonly text: string;
}

/**
 * Splits bytes that reached a destination into events: runs of lines with
 * the same serial. A line that is not a record, or a last line without its
 * line feed, becomes an event of serial -1 (so a torn event shows).
 */
export function splitEvents(bytes: Buffer): ReadEvent[] {
  const text = bytes.toString('latin1');
  const events: { serial: number; text: string }[] = [];
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    const end = nl < 0 ? text.length : nl + 1;
    const line = text.slice(start, end);
    const m = nl < 0 ? null : STAMP.exec(line);
    const serial = m === null ? -1 : Number(m[1]);
    const last = events[events.length - 1];
    if (last !== undefined && last.serial === serial && serial !== -1) last.text += line;
    else events.push({ serial, text: line });
    start = end;
  }
  return events;
}
