/**
 * Syscall names for the `syscall=` field of SYSCALL records.
 *
 * Syscall numbers depend on the ABI in `arch=`: 59 is execve on x86_64 but oldolduname on i386, and
 * aarch64 uses the generic table (221 is execve). The tables are auditd's own (`ausyscall --dump`,
 * see syscalls-generated.ts), so names match what ausearch and auparse print.
 */
import { parseHexU32 } from './hex-number.js';
import { SYSCALL_TABLES } from './syscalls-generated.js';

// Dense arrays indexed by number: one bounds-checked load per lookup on the hot path.
const BY_VALUE: ReadonlyMap<number, readonly string[]> = new Map(SYSCALL_TABLES);
// The kernel writes `arch=` with `%x`; that spelling skips the hex parse (see arch.ts).
const BY_SPELLING: ReadonlyMap<string, readonly string[]> = new Map(
  SYSCALL_TABLES.map(([value, table]) => [value.toString(16), table]),
);

/**
 * The name of syscall `nr` under the raw `arch=` value `archRaw` (hex, either case), or undefined
 * when contid has no table for that architecture (only x86_64, i386 and aarch64 have one) or the
 * table has no syscall with that number. auparse prints `unknown-syscall(N)` in the latter case;
 * callers that want that text build it themselves.
 *
 * The tables end where auditd 3.0.9's do (450, set_mempolicy_home_node): newer syscalls such as
 * cachestat (451) are unknown here as they are to auparse. On x86_64, x32 syscalls carry bit 30
 * (0x40000000) in the number and are not in any table.
 */
export function syscallName(archRaw: string, nr: number): string | undefined {
  const table = BY_SPELLING.get(archRaw) ?? BY_VALUE.get(parseHexU32(archRaw));
  if (table === undefined) return undefined;
  // A negative, fractional or too-large nr indexes nothing and gives undefined.
  const name = table[nr];
  return name === '' ? undefined : name;
}
