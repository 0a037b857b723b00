/**
 * Syscall numbers by name and back, for the two audit arches of x86_64, as
 * auditctl knows them: the tables are auditd's own (`ausyscall --dump`,
 * generated into src/interpret), so rules print exactly like `auditctl -l`.
 *
 * `b64` is AUDIT_ARCH_X86_64 and `b32` is AUDIT_ARCH_I386, the names
 * auditctl accepts for `-F arch=`.
 */
import { I386_SYSCALLS, X86_64_SYSCALLS } from '../interpret/syscalls-generated.js';

/** An audit arch as auditctl names it. */
export type AuditArch = 'b64' | 'b32';

/** The AUDIT_ARCH_* value of each arch (EM_* | 64-bit | little-endian). */
export const AUDIT_ARCH: Readonly<Record<AuditArch, number>> = { b64: 0xc000003e, b32: 0x40000003 };

// Dense arrays indexed by number; '' marks a number with no syscall.
const TABLES: Readonly<Record<AuditArch, readonly string[]>> = { b64: X86_64_SYSCALLS, b32: I386_SYSCALLS };
const NUMBERS: Readonly<Record<AuditArch, ReadonlyMap<string, number>>> = {
  b64: index(X86_64_SYSCALLS),
  b32: index(I386_SYSCALLS),
};

function index(names: readonly string[]): ReadonlyMap<string, number> {
  const map = new Map<string, number>();
  names.forEach((name, nr) => {
    if (name !== '') map.set(name, nr);
  });
  return map;
}

/** The name of syscall `nr` on `arch`, or undefined when auditctl does not know it. */
export function syscallName(arch: AuditArch, nr: number): string | undefined {
  const name = TABLES[arch][nr];
  return name === '' ? undefined : name;
}

/** The number of syscall `name` on `arch`, or undefined when there is no such syscall. */
export function syscallNumber(arch: AuditArch, name: string): number | undefined {
  return NUMBERS[arch].get(name);
}
