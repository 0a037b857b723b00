import assert from 'node:assert/strict';
import { test } from 'node:test';
import { archName } from './arch.js';

// Expected names were checked against auparse 3.0.9 (python3-audit, interpret_field on `arch=`),
// except where a comment says the kernel's name differs from auparse's.
const CASES: readonly (readonly [string, string | undefined])[] = [
  ['c000003e', 'x86_64'],
  ['C000003E', 'x86_64'],
  ['40000003', 'i386'],
  ['c00000b7', 'aarch64'],
  ['C00000b7', 'aarch64'],
  ['14', 'ppc'],
  ['80000015', 'ppc64'],
  ['c0000015', 'ppc64le'],
  ['16', 's390'],
  ['80000016', 's390x'],
  // AUDIT_ARCH_ARM; auparse 3.0.9 prints `armeb` here.
  ['40000028', 'arm'],
  // AUDIT_ARCH_ARMEB; auparse 3.0.9 prints `unknown-elf-type(28)`.
  ['28', 'armeb'],
  // auparse 3.0.9 knows none of these and prints `unknown-elf-type(...)`.
  ['c00000f3', 'riscv64'],
  ['400000f3', 'riscv32'],
  ['c0000102', 'loongarch64'],
  ['a0000008', 'mips64n32'],
  ['0', undefined],
  ['c000003f', undefined],
  ['', undefined],
  ['zz', undefined],
  ['0xc000003e', undefined],
  ['c000003e0', undefined],
  [' c000003e', undefined],
];

void test('archName names AUDIT_ARCH_* values in either case and nothing else', () => {
  for (const [raw, expected] of CASES) assert.equal(archName(raw), expected, raw);
});
