/**
 * Architecture names for the `arch=` field of SYSCALL records.
 *
 * The kernel writes the AUDIT_ARCH_* constant of the syscall's ABI in hex (`c000003e` for x86_64,
 * `40000003` for an i386 binary on an x86_64 kernel). The table comes from the kernel's own headers
 * (see arch-generated.ts), so every architecture Linux can audit has a name.
 */
import { AUDIT_ARCHES } from './arch-generated.js';
import { parseHexU32 } from './hex-number.js';

const BY_VALUE: ReadonlyMap<number, string> = new Map(AUDIT_ARCHES);
// The kernel writes `%x`: lower case, no leading zeros. Looking that spelling up directly spares the
// hot path a parse; any other spelling falls back to the numeric value.
const BY_SPELLING: ReadonlyMap<string, string> = new Map(
  AUDIT_ARCHES.map(([value, name]) => [value.toString(16), name]),
);

/**
 * The architecture name for a raw `arch=` value, in either case: `c000003e` is `x86_64`,
 * `40000003` is `i386`, `c00000b7` is `aarch64`. Returns undefined for a value that is not an
 * AUDIT_ARCH_* constant.
 *
 * Names are the AUDIT_ARCH_* suffix in lower case, which is also what auparse prints for the
 * architectures it knows, with one exception: auparse 3.0.9 calls little-endian ARM (`40000028`)
 * `armeb`, while the kernel calls it AUDIT_ARCH_ARM and big-endian ARM (`28`) AUDIT_ARCH_ARMEB;
 * this returns `arm` and `armeb`. auparse 3.0.9 also has no name for riscv64, loongarch64 and
 * many others (it prints `unknown-elf-type(c00000f3)`); this names them all.
 */
export function archName(raw: string): string | undefined {
  return BY_SPELLING.get(raw) ?? BY_VALUE.get(parseHexU32(raw));
}
