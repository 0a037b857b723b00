/**
 * Finding the processes a test left behind: everything whose command line
 * or executable names the test's private directory, which every program it
 * starts (wrappers, contid with its config, containers) does.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { WAIT_MS } from './log-events.js';

/** Pids of processes whose command line mentions `dir`, this test's private directory. */
export function processesUsing(dir: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      let exe = '';
      try {
        exe = readlinkSync(`/proc/${name}/exe`);
      } catch {
        // A kernel thread or a process that just ended.
      }
      if (cmdline.includes(dir) || exe.startsWith(dir)) found.push(Number(name));
    } catch {
      // Ended while looked at.
    }
  }
  return found;
}

/** Waits until no process uses `dir`; returns those still there after WAIT_MS. */
export async function waitForNoProcesses(dir: string): Promise<number[]> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const left = processesUsing(dir);
    if (left.length === 0 || Date.now() >= deadline) return left;
    await sleep(100);
  }
}

/** Kills by pid what still uses `dir` (a failed test's contid). */
export function killLeftovers(dir: string): void {
  for (const pid of processesUsing(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
