/**
 * Reading an audit log in auditd's text format (contid's host log, auditd's
 * own log, `contid replay --format text` output) as events, for the tests
 * that check which events carry which contid. Records are awaited by polling
 * the file, never by fixed sleeps.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** How long a test waits for something to appear: generous, the machine may be loaded. */
export const WAIT_MS = 30_000;

/** One event of a log: its records, by timestamp and serial. */
export interface LogEvent {
  /** `SEC.MS:SERIAL`, which names the event across logs. */
  readonly stamp: string;
  readonly serial: number;
  readonly lines: string[];
}

const MSG_ID = / msg=audit\(([0-9]+)\.([0-9]+):([0-9]+)\): /;

/**
 * Groups a text log into events by stamp. Lines are kept from `type=` on, so
 * that logs with `node=` names read the same, and without auditd's enriched
 * part (after `\x1d`).
 */
export function parseEvents(text: string): LogEvent[] {
  const byStamp = new Map<string, LogEvent>();
  for (const raw of text.split('\n')) {
    const sep = raw.indexOf('\x1d');
    const line = (sep < 0 ? raw : raw.slice(0, sep)).replace(/^node=[^ ]* /, '');
    const m = MSG_ID.exec(line);
    if (m === null) continue;
    const stamp = `${m[1]}.${m[2]}:${m[3]}`;
    let e = byStamp.get(stamp);
    if (e === undefined) {
      e = { stamp, serial: Number(m[3]), lines: [] };
      byStamp.set(stamp, e);
    }
    e.lines.push(line);
  }
  return [...byStamp.values()];
}

/** The events of a log file (none while it does not exist). */
export function readEvents(file: string): LogEvent[] {
  return existsSync(file) ? parseEvents(readFileSync(file, 'utf8')) : [];
}

/** A field's value as written (quotes kept), from a record line. */
export function field(line: string, name: string): string | undefined {
  return new RegExp(`(?:^| )${name}=("[^"]*"|[^ ]*)`).exec(line)?.[1];
}

/** The SYSCALL record of an event, if any. */
export function syscallOf(e: LogEvent): string | undefined {
  return e.lines.find((l) => l.startsWith('type=SYSCALL '));
}

/** The contid chain of an event's CONTAINER_ID records, or null when it has none. */
export function contidOf(e: LogEvent): string | null {
  const ids = e.lines.filter((l) => l.startsWith('type=CONTAINER_ID '));
  if (ids.length === 0) return null;
  const chains = new Set(ids.map((l) => field(l, 'contid')));
  assert.equal(chains.size, 1, `one chain per event: ${e.lines.join('\n')}`);
  return [...chains][0] ?? null;
}

/** Polls the log until `find` returns something. */
export async function waitForEvents<T>(
  file: string,
  what: string,
  find: (events: LogEvent[]) => T | undefined,
): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const found = find(readEvents(file));
    if (found !== undefined) return found;
    if (Date.now() >= deadline) throw new Error(`No ${what} in ${file} within ${WAIT_MS} ms`);
    await sleep(100);
  }
}

/** Polls `text()` (a daemon's stderr) until `pattern` matches it. */
export async function waitForText(text: () => string, pattern: RegExp): Promise<RegExpExecArray> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const m = pattern.exec(text());
    if (m !== null) return m;
    if (Date.now() >= deadline) throw new Error(`No ${String(pattern)} within ${WAIT_MS} ms:\n${text()}`);
    await sleep(50);
  }
}

/** Waits for the exit_group of `pid` in the log. */
export function waitForExit(file: string, pid: number): Promise<LogEvent> {
  return waitForEvents(file, `exit_group of pid ${pid}`, (events) =>
    events.find((e) => {
      const s = syscallOf(e);
      return s !== undefined && field(s, 'syscall') === '231' && field(s, 'pid') === String(pid);
    }),
  );
}

/**
 * Runs a sentinel process and waits for its execve in the log: every event
 * recorded before it has then been assembled and written too. `spawnIt`
 * starts it (default: plain `/bin/true`; a narrow rule may need a loginuid).
 */
export async function flushLog(
  file: string,
  spawnIt: () => ReturnType<typeof spawn> = () => spawn('/bin/true', [], { stdio: 'ignore' }),
): Promise<void> {
  const child = spawnIt();
  const pid = child.pid ?? -1;
  await once(child, 'exit');
  await waitForEvents(file, `the sentinel execve of pid ${pid}`, (events) =>
    events.find((e) => {
      const s = syscallOf(e);
      return s !== undefined && field(s, 'syscall') === '59' && field(s, 'pid') === String(pid);
    }),
  );
}

/** The accepted CONTAINER_OP set of `contid`, as event serial and target pid. */
export function setOp(events: LogEvent[], contid: string): { serial: number; opid: number } | undefined {
  for (const e of events) {
    const op = e.lines.find(
      (l) => l.startsWith('type=CONTAINER_OP ') && / op=set /.test(l) && / res=1$/.test(l),
    );
    if (op !== undefined && field(op, 'contid') === contid) {
      return { serial: e.serial, opid: Number(field(op, 'opid')) };
    }
  }
  return undefined;
}

/** The pids descending from `root` (itself included), by the SYSCALL records' pid/ppid. */
export function descendants(events: LogEvent[], root: number): Set<number> {
  const tree = new Set([root]);
  const edges: [number, number][] = [];
  for (const e of events) {
    const s = syscallOf(e);
    if (s === undefined) continue;
    edges.push([Number(field(s, 'pid')), Number(field(s, 'ppid'))]);
  }
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of edges) {
      if (!tree.has(pid) && tree.has(ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  return tree;
}

/**
 * Checks the labels of the whole log: every event of a process in `tree`
 * after the set (serial above `after`) carries `contid`, and no event of any
 * other process carries any. Returns the tree's labelled events.
 */
export function assertOnlyTreeLabelled(
  events: LogEvent[],
  tree: Set<number>,
  after: number,
  contid: string,
): LogEvent[] {
  const labelled: LogEvent[] = [];
  for (const e of events) {
    const chain = contidOf(e);
    const s = syscallOf(e);
    const pid = s === undefined ? undefined : Number(field(s, 'pid'));
    if (pid !== undefined && tree.has(pid) && e.serial > after) {
      // Every event, also one that reached the daemon before any record of
      // its process's parent (held until the parent appears: src/policy/hold.ts).
      assert.equal(chain, contid, `an event of pid ${pid} in the tree:\n${e.lines.join('\n')}`);
      labelled.push(e);
    } else if (chain !== null) {
      // A user message sent from inside the tree (the forger's) is its event too.
      const sender = Number(field(e.lines[0]!, 'pid'));
      assert.ok(
        tree.has(sender) && e.serial > after,
        `an event outside the tree is labelled:\n${e.lines.join('\n')}`,
      );
      assert.equal(chain, contid);
    }
  }
  return labelled;
}
