/**
 * The options the store's query commands (`ps`, `report`, `search`) share:
 * --store, --contid and --exact, --format, --help, and the times
 * (--since/--until, or ps's --at). Pure functions of argv.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { contidValue, DEFAULT_STORE_PATH, list, normalizeArgv, usageErrors } from './store-args.js';
import { parseTimeSpec, type TimeSpec } from './time-spec.js';
import { UsageError } from './usage.js';

/** What every query command's arguments hold. */
export interface QueryArgs {
  readonly help: boolean;
  readonly store: string;
  readonly contids: readonly string[];
  readonly exact: boolean;
}

/** The options every query command takes. */
const QUERY_OPTIONS = {
  store: { type: 'string' },
  contid: { type: 'string', multiple: true },
  exact: { type: 'boolean' },
  format: { type: 'string', short: 'f' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A time range: --since (also -ts, --start) and --until (also -te, --end). */
export const RANGE_OPTIONS = {
  since: { type: 'string' },
  until: { type: 'string' },
} as const;

/** Parses a query command's argv: the shared options and the command's own. */
export function parseQueryArgs<const O extends NonNullable<ParseArgsConfig['options']>>(
  argv: readonly string[],
  options: O,
) {
  const config = {
    args: normalizeArgv(argv),
    allowPositionals: false,
    options: { ...QUERY_OPTIONS, ...options },
  } as const;
  return usageErrors(() => parseArgs(config)).values;
}

/** The store's path: --store, or the daemon's default. */
export function storeValue(raw: string | undefined): string {
  return raw ?? DEFAULT_STORE_PATH;
}

/** --format: one of `formats`, the first when it is not given. */
export function formatValue<F extends string>(raw: string | undefined, formats: readonly [F, ...F[]]): F {
  if (raw === undefined) return formats[0];
  if (!(formats as readonly string[]).includes(raw)) {
    const names =
      formats.length === 1 ? formats[0] : `${formats.slice(0, -1).join(', ')} or ${formats.at(-1)!}`;
    throw new UsageError(`Cannot use --format: "${raw}" is not ${names}`);
  }
  return raw as F;
}

/** The --contid values (repeated, or comma lists), and --exact, which needs one. */
export function contidsValue(values: {
  readonly contid?: readonly string[] | undefined;
  readonly exact?: boolean | undefined;
}): string[] {
  const contids = list(values.contid).map((c) => contidValue('--contid', c));
  if (values.exact === true && contids.length === 0) throw new UsageError('--exact applies to --contid');
  return contids;
}

/** A time option's value, or null when it is not given. */
export function timeValue(flag: string, raw: string | undefined): TimeSpec | null {
  return raw === undefined ? null : parseTimeSpec(flag, raw);
}
