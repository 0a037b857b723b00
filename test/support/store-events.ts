/**
 * Random events in contid's JSON output shape (docs/json.md), with the facts
 * each was made from, for tests that check the event store's answers
 * against a model that reads those facts directly.
 */
import { prngInt } from './prng.js';

/** What an event was made of. */
export interface EventSpec {
  readonly serial: number;
  readonly timeMs: number;
  /** Leaf to root (`4,^2,^1`), `unknown`, or null for the host. */
  readonly chain: string | null;
  readonly pid: number;
  readonly ppid: number;
  readonly exe: string;
  readonly syscall: 'execve' | 'openat' | 'clone' | 'exit_group';
  readonly success: boolean | null;
  readonly keys: readonly string[];
  readonly types: readonly string[];
  /** Chains named by contid's records (CONTAINER_OP ids, forgery senders). */
  readonly refs: readonly string[];
  readonly json: string;
}

const SYSCALLS = { execve: 59, openat: 257, clone: 56, exit_group: 231 } as const;
const EXES = ['/usr/bin/true', '/bin/busybox', '/usr/sbin/nginx', '/usr/bin/crun', '/usr/bin/dash'];
const KEYSETS: readonly (readonly string[])[] = [[], ['k1'], ['k2'], ['k1', 'k2'], ['exec']];

/** A container forest: each chain leaf to root. */
export function randomChains(seed: number, count: number): string[] {
  const next = prngInt(seed);
  const chains: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = String(1 + next(1000) + i * 1000);
    const parent = chains.length > 0 && next(3) > 0 ? chains[next(chains.length)]! : null;
    chains.push(parent === null ? id : `${id},^${parent}`);
  }
  return chains;
}

function hex(text: string): string {
  return Buffer.from(text, 'utf8').toString('hex').toUpperCase();
}

/**
 * `count` events over the chains, the host and `unknown`, in stream order
 * (times mostly rising, some a little out of order as the assembler
 * writes them).
 */
export function randomEvents(
  seed: number,
  options: { readonly count: number; readonly chains: readonly string[]; readonly startMs: number },
): EventSpec[] {
  const next = prngInt(seed);
  const out: EventSpec[] = [];
  let clock = options.startMs;
  for (let i = 0; i < options.count; i++) {
    clock += next(2000);
    const timeMs = clock - next(3) * 700;
    const pick = next(10);
    const chain = pick < 3 ? null : pick === 3 ? 'unknown' : options.chains[next(options.chains.length)]!;
    const names = Object.keys(SYSCALLS) as EventSpec['syscall'][];
    const syscall = names[next(names.length)]!;
    const success = syscall === 'exit_group' ? null : next(4) > 0;
    const keys = KEYSETS[next(KEYSETS.length)]!;
    const exe = EXES[next(EXES.length)]!;
    const pid = 100 + next(50);
    const ppid = 100 + next(50);
    const serial = 1000 + i;
    const time = `${Math.floor(timeMs / 1000)}.${String(timeMs % 1000).padStart(3, '0')}`;
    const key = keys.length === 0 ? '(null)' : keys.length === 1 ? `"${keys[0]!}"` : hex(keys.join('\x01'));
    const sys: Record<string, string> = {
      arch: 'c000003e',
      syscall: String(SYSCALLS[syscall]),
      ...(success === null ? {} : { success: success ? 'yes' : 'no', exit: success ? '0' : '-13' }),
      a0: '0',
      items: '0',
      ppid: String(ppid),
      pid: String(pid),
      auid: '4242',
      uid: '0',
      comm: '"x"',
      exe: `"${exe}"`,
      key,
    };
    const records: { type: string; fields: Record<string, string> }[] = [{ type: 'SYSCALL', fields: sys }];
    if (syscall === 'execve') {
      records.push({ type: 'EXECVE', fields: { argc: '1', a0: `"${exe}"` } });
      records.push({ type: 'CWD', fields: { cwd: '"/"' } });
    }
    if (next(3) === 0) records.push({ type: 'PROCTITLE', fields: { proctitle: hex(exe) } });
    if (chain !== null && chain !== 'unknown') {
      records.push({ type: 'CONTAINER_ID', fields: { record: '1', contid: chain } });
    }
    const refs: string[] = [];
    if (next(12) === 0 && options.chains.length > 0) {
      const target = options.chains[next(options.chains.length)]!;
      const leaf = target.split(',^')[0]!;
      const old = target.includes(',^') ? target.slice(target.indexOf(',^') + 2) : '-1';
      records.push({
        type: 'CONTAINER_OP',
        fields: {
          op: 'set',
          opid: String(pid),
          contid: leaf,
          'old-contid': old,
          pid: '1',
          uid: '0',
          auid: '4294967295',
          exe: '"/usr/bin/crun"',
          res: '1',
        },
      });
      refs.push(leaf);
      if (old !== '-1') refs.push(old);
    }
    if (next(15) === 0 && options.chains.length > 0) {
      const sender = options.chains[next(options.chains.length)]!;
      records.push({
        type: 'CONTID_FORGERY',
        fields: {
          reason: 'wrong-sender',
          pid: String(pid),
          uid: '0',
          auid: '4242',
          contid: sender,
          start: '?',
          record: '1',
        },
      });
      refs.push(sender);
    }
    const json = JSON.stringify({ time, serial, node: null, contid: chain, records });
    out.push({
      serial,
      timeMs,
      chain,
      pid,
      ppid,
      exe,
      syscall,
      success,
      keys,
      types: [...new Set(records.map((r) => r.type))],
      refs: refs.filter((r) => r !== chain),
      json,
    });
  }
  return out;
}
