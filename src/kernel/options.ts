/** Checks of the numeric options of the kernel readers (reader.ts, proc-connector.ts). */
import { ContidRangeError } from '../errors.js';

/**
 * Throws ERR_OUT_OF_RANGE for an option of `options` named in `names` that
 * is set but not a positive integer (at most `max`).
 */
export function checkPositiveIntegers<T extends object>(
  what: string,
  options: T,
  names: readonly (keyof T & string)[],
  max = Number.MAX_SAFE_INTEGER,
): void {
  for (const name of names) {
    const value = options[name];
    if (
      value !== undefined &&
      !(Number.isSafeInteger(value) && (value as number) > 0 && (value as number) <= max)
    ) {
      throw new ContidRangeError(
        `Cannot open ${what}: ${name} ${String(value)} is not a positive integer`,
        'ERR_OUT_OF_RANGE',
      );
    }
  }
}
