/**
 * What the live daemon reads in /proc: the snapshot it takes at start
 * (processes older than the stream get a place and an ancestry in the
 * process table; the daemon writes it into the stream as `seed` markers),
 * and the facts of one process (parent, start time, pid in each namespace)
 * that answer the labeller's questions about never-seen parents.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { SeedProcess } from '../track/process-table.js';

/**
 * Parses /proc/PID/stat. comm is in parentheses and may hold spaces and
 * parentheses itself, so the fields after it are found from the last `)`.
 */
export function parseProcStat(text: string): { ppid: number; comm: string; startTime: number } | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  // After ") ": state(3) ppid(4) … starttime(22).
  const rest = text.slice(close + 2).split(' ');
  const ppid = Number(rest[1]);
  const startTime = Number(rest[19]);
  if (!Number.isSafeInteger(ppid) || !Number.isSafeInteger(startTime)) return null;
  return { ppid, comm: text.slice(open + 1, close), startTime };
}

/** Reads the snapshot; processes that exit while it is taken are skipped. */
export function readProcSnapshot(proc = '/proc'): SeedProcess[] {
  const out: SeedProcess[] = [];
  // The daemon's own namespace is the initial one (the proc connector and
  // the audit socket serve only it); /proc/1 may not be readable.
  const initialNs = pidNamespaceOf('self', proc);
  for (const name of readdirSync(proc)) {
    if (!/^[1-9][0-9]*$/.test(name)) continue;
    let stat;
    try {
      stat = parseProcStat(readFileSync(`${proc}/${name}/stat`, 'latin1'));
    } catch {
      continue; // exited meanwhile
    }
    if (stat === null) continue;
    let exe: string | null = null;
    try {
      exe = readlinkSync(`${proc}/${name}/exe`);
    } catch {
      // Kernel threads have no exe; a process may have exited.
    }
    const ns = initialNs === null ? null : pidNamespaceOf(name, proc);
    const pidns = ns === null ? {} : { pidns: ns === initialNs ? ('host' as const) : ('nested' as const) };
    out.push({
      pid: Number(name),
      ppid: stat.ppid,
      comm: stat.comm,
      exe,
      startTime: stat.startTime,
      ...pidns,
    });
  }
  return out;
}

/** The `pid:[inode]` link of a process's pid namespace, or null. */
function pidNamespaceOf(pid: string, proc: string): string | null {
  try {
    return readlinkSync(`${proc}/${pid}/ns/pid`);
  } catch {
    return null;
  }
}

/** One process as /proc shows it now. */
export interface ProcFacts {
  readonly pid: number;
  readonly ppid: number;
  /** Start time, clock ticks since boot: with the pid, names one incarnation. */
  readonly startTime: number;
  /** Its pid in each pid namespace it is in, outermost (the host's) first: `NSpid:`. */
  readonly nspid: readonly number[];
  /** Exited, not yet reaped (state Z): the whole thread group is dead. */
  readonly zombie: boolean;
}

/**
 * Reads a process's facts, or null when it does not exist (any more).
 * `/proc/PID/stat` gives ppid, state and start time; `status` the NSpid line.
 */
export function readProcFacts(pid: number, proc = '/proc'): ProcFacts | null {
  let statText: string;
  let statusText: string;
  try {
    statText = readFileSync(`${proc}/${pid}/stat`, 'latin1');
    statusText = readFileSync(`${proc}/${pid}/status`, 'latin1');
  } catch {
    return null;
  }
  const stat = parseProcStat(statText);
  if (stat === null) return null;
  const state = statText.slice(statText.lastIndexOf(')') + 2, statText.lastIndexOf(')') + 3);
  const line = /^NSpid:\s*([0-9\s]+)$/m.exec(statusText);
  const nspid = line === null ? [pid] : line[1]!.trim().split(/\s+/).map(Number);
  return { pid, ppid: stat.ppid, startTime: stat.startTime, nspid, zombie: state === 'Z' || state === 'X' };
}

/**
 * The pid of `child` in `parent`'s pid namespace: the `exit=` its creation
 * showed. A child is in its parent's namespace or one nested in it, so its
 * NSpid list is at least as long; the entry at the parent's depth is it.
 */
export function pidInParentNamespace(child: ProcFacts, parent: ProcFacts): number {
  const depth = parent.nspid.length;
  return child.nspid[depth - 1] ?? child.pid;
}

/** The ppid of a live process, or undefined when it cannot be read. */
export function readPpid(pid: number, proc = '/proc'): number | undefined {
  try {
    return parseProcStat(readFileSync(`${proc}/${pid}/stat`, 'latin1'))?.ppid;
  } catch {
    return undefined;
  }
}
