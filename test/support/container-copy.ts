/**
 * What a container's copy of its events must be, checked against the host
 * log (docs/routing.md, "What a container sees"), and the daemon's
 * container-sink status: for the routing tests on the real kernel.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerSinksStats } from '../../src/route/container-sinks.js';
import { contid, type DaemonPaths } from './live-daemon.js';
import { contidOf, WAIT_MS, type LogEvent } from './log-events.js';

/** The daemon's container sinks, from `contid status --json`. */
export async function sinkStatus(paths: DaemonPaths): Promise<ContainerSinksStats> {
  const r = await contid(['status', '--json', '--socket', paths.socket]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { status: { containerSinks: ContainerSinksStats } }).status.containerSinks;
}
/** Waits until `n` container sinks have been flushed and closed (their containers dropped). */
export async function waitForClosed(paths: DaemonPaths, n: number): Promise<ContainerSinksStats> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const last = await sinkStatus(paths);
    if (last.closed >= n) return last;
    if (Date.now() >= deadline) {
      throw new Error(`Only ${last.closed} of ${n} sinks closed: ${JSON.stringify(last)}`);
    }
    await sleep(100);
  }
}

/** The chain a container's own copy shows for a host chain: the levels below `base`, or null (not its). */
export function relative(chain: string | null, base: string): string | null | undefined {
  if (chain === null || chain === 'unknown') return undefined;
  if (chain === base) return null;
  return chain.endsWith(`,^${base}`) ? chain.slice(0, -`,^${base}`.length) : undefined;
}

/**
 * The host event as container `base` must see it: its own records, the
 * CONTAINER_ID relative to `base` (none for `base`'s own processes), no
 * CONTAINER_OP about `base` itself, no forgery verdicts.
 */
export function expectedCopy(e: LogEvent, base: string): string[] {
  const rel = relative(contidOf(e), base);
  const out: string[] = [];
  for (const line of e.lines) {
    if (line.startsWith('type=CONTAINER_OP ') || line.startsWith('type=CONTID_FORGERY ')) continue;
    if (line.startsWith('type=CONTAINER_ID ')) {
      if (rel !== null) out.push(line.replace(/ contid=[^ ]+$/, ` contid=${rel}`));
      continue;
    }
    out.push(rel === null ? line.replace(/ record=[0-9]+$/, '') : line);
  }
  return out;
}

/** Checks a container's copy against the host log: exactly its events, as it must see them. */
export function assertExactCopy(host: LogEvent[], copy: LogEvent[], base: string): void {
  const mine = host.filter((e) => relative(contidOf(e), base) !== undefined);
  const want = new Map(mine.map((e) => [e.stamp, expectedCopy(e, base)]));
  const got = new Map(
    copy.filter((e) => !e.lines.every(isOp)).map((e) => [e.stamp, e.lines.filter((l) => !isOp(l))]),
  );
  assert.ok(want.size > 0, `container ${base} has events in the host log`);
  for (const [stamp, lines] of got) {
    assert.ok(
      want.has(stamp),
      `container ${base}'s copy has an event that is not its own:\n${lines.join('\n')}`,
    );
  }
  for (const [stamp, lines] of want) {
    assert.deepEqual(got.get(stamp), lines, `container ${base}'s copy of event ${stamp}`);
  }
}

export function isOp(line: string): boolean {
  return line.startsWith('type=CONTAINER_OP ');
}

/**
 * `/bin/sh -c NESTING_SCRIPT GO CHILD_GO NODE MAIN SOCKET`: waits on the
 * fifo GO, starts a child C that waits on CHILD_GO, labels C 5 with `contid
 * set` (nested: a privileged caller in a container sets an ID under its
 * own), lets C run (/bin/true, echo nested), waits for it and runs
 * /bin/true itself.
 */
export const NESTING_SCRIPT =
  'read _ < "$0"; ' +
  '/bin/sh -c \'read _ < "$0"; /bin/true; /bin/echo nested\' "$1" & ' +
  '"$2" "$3" set $! 5 --socket "$4" || exit 9; ' +
  'echo go > "$1"; wait; /bin/true';

/** Container `base`'s copy after NESTING_SCRIPT ran in it: it names 5 and nothing else, set and dropped once. */
export function assertNestedCopy(copy: readonly LogEvent[], base: string): void {
  const ids = new Set(copy.map(contidOf).filter((c) => c !== null));
  assert.deepEqual(ids, new Set(['5']), `${base}'s copy names 5 and nothing else`);
  const ops = copy.flatMap((e) => e.lines.filter(isOp));
  assert.equal(ops.length, 2, ops.join('\n'));
  assert.match(ops[0]!, / op=set opid=[0-9]+ contid=5 old-contid=-1 .* res=1$/);
  assert.match(ops[1]!, / op=drop opid=[0-9]+ contid=-1 old-contid=5 /);
}
