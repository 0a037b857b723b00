/**
 * The one /proc snapshot a live daemon takes at start (DESIGN.md: labels
 * are a function of the stream plus this snapshot): every process's pid,
 * ppid, comm, exe and start time, so that processes older than the stream
 * have a place (and ancestry) in the process table.
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
    out.push({ pid: Number(name), ppid: stat.ppid, comm: stat.comm, exe, startTime: stat.startTime });
  }
  return out;
}

/** The ppid of a live process, or undefined when it cannot be read. */
export function readPpid(pid: number, proc = '/proc'): number | undefined {
  try {
    return parseProcStat(readFileSync(`${proc}/${pid}/stat`, 'latin1'))?.ppid;
  } catch {
    return undefined;
  }
}
