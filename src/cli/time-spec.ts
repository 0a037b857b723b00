/**
 * `--since` and `--until` values, in ausearch's forms: a date
 * (`12/07/2026`, `12/07/26` as `date +%x` prints it, or `2026-12-07`), a
 * time (`13:00`, `13:00:00`), both, `@SECONDS` since the epoch, or one of
 * ausearch's words. Parsing is a pure function of the text; turning a spec
 * into a time needs "now" and the boot time, which the caller passes in.
 */
import { UsageError } from './usage.js';

/** ausearch's time words. */
export const TIME_WORDS = [
  'now',
  'recent',
  'boot',
  'today',
  'yesterday',
  'this-week',
  'week-ago',
  'this-month',
  'this-year',
] as const;
export type TimeWord = (typeof TIME_WORDS)[number];

interface ClockTime {
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

/** A parsed `--since`/`--until` value. */
export type TimeSpec =
  | { readonly kind: 'word'; readonly word: TimeWord }
  | { readonly kind: 'epoch'; readonly ms: number }
  | {
      readonly kind: 'local';
      /** Null for today. */
      readonly date: { readonly year: number; readonly month: number; readonly day: number } | null;
      /** Null for the start (since) or the end (until) of the day. */
      readonly time: ClockTime | null;
    };

const DATE_US = /^([0-9]{1,2})\/([0-9]{1,2})\/([0-9]{2}|[0-9]{4})$/;
const DATE_ISO = /^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$/;
const TIME = /^([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?$/;
const EPOCH = /^@([0-9]{1,12})(?:\.([0-9]{1,3}))?$/;

/** Whether `text` is a time of day (the second word of ausearch's `-ts DATE TIME`). */
export function isClockTime(text: string): boolean {
  return TIME.test(text);
}

function outOfRange(flag: string, text: string, what: string): UsageError {
  return new UsageError(`Cannot use ${flag}: "${text}" is out of range (${what})`);
}

function parseDate(flag: string, text: string): { year: number; month: number; day: number } | null {
  let m = DATE_US.exec(text);
  let year: number;
  let month: number;
  let day: number;
  if (m !== null) {
    month = Number(m[1]);
    day = Number(m[2]);
    year = m[3]!.length === 2 ? 2000 + Number(m[3]) : Number(m[3]);
  } else {
    m = DATE_ISO.exec(text);
    if (m === null) return null;
    year = Number(m[1]);
    month = Number(m[2]);
    day = Number(m[3]);
  }
  if (month < 1 || month > 12) throw outOfRange(flag, text, 'month 1 to 12');
  const days = new Date(year, month, 0).getDate();
  if (day < 1 || day > days) throw outOfRange(flag, text, `day 1 to ${days} in that month`);
  return { year, month, day };
}

function parseTime(flag: string, text: string): ClockTime | null {
  const m = TIME.exec(text);
  if (m === null) return null;
  const t = { hour: Number(m[1]), minute: Number(m[2]), second: m[3] === undefined ? 0 : Number(m[3]) };
  if (t.hour > 23 || t.minute > 59 || t.second > 59) throw outOfRange(flag, text, '00:00:00 to 23:59:59');
  return t;
}

/**
 * Parses a `--since`/`--until` value.
 *
 * @throws {UsageError} naming `flag` when the text is none of the forms.
 */
export function parseTimeSpec(flag: string, text: string): TimeSpec {
  const trimmed = text.trim();
  if ((TIME_WORDS as readonly string[]).includes(trimmed)) return { kind: 'word', word: trimmed as TimeWord };
  const epoch = EPOCH.exec(trimmed);
  if (epoch !== null) {
    return { kind: 'epoch', ms: Number(epoch[1]) * 1000 + Number((epoch[2] ?? '0').padEnd(3, '0')) };
  }
  const words = trimmed.split(/[ T]+/);
  if (words.length === 1) {
    const date = parseDate(flag, words[0]!);
    if (date !== null) return { kind: 'local', date, time: null };
    const time = parseTime(flag, words[0]!);
    if (time !== null) return { kind: 'local', date: null, time };
  } else if (words.length === 2) {
    const date = parseDate(flag, words[0]!);
    const time = parseTime(flag, words[1]!);
    if (date !== null && time !== null) return { kind: 'local', date, time };
  }
  throw new UsageError(
    `Cannot use ${flag}: "${text}" is not a time (expected MM/DD/YYYY, YYYY-MM-DD, HH:MM[:SS], ` +
      `a date and a time, @SECONDS, or one of ${TIME_WORDS.join(', ')})`,
  );
}

/** What resolving a spec needs to know of the world. */
export interface Clock {
  /** Now, ms since the epoch. */
  readonly nowMs: number;
  /** The boot time, ms since the epoch (only read for `boot`). */
  bootMs(): number;
}

function midnight(ms: number, daysBack = 0): Date {
  const d = new Date(ms);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate() - daysBack);
}

/**
 * The time a spec stands for, in ms since the epoch, in the local time
 * zone. `until` ends a day given without a time at its last millisecond and
 * a time given to the second at that second's last millisecond, so that
 * `--until 13:00:00` keeps events stamped 13:00:00.500.
 */
export function resolveTimeSpec(spec: TimeSpec, which: 'since' | 'until', clock: Clock): number {
  const now = clock.nowMs;
  const endOfSecond = (ms: number): number => (which === 'until' ? ms + 999 : ms);
  switch (spec.kind) {
    case 'epoch':
      return spec.ms;
    case 'local': {
      const day =
        spec.date === null ? midnight(now) : new Date(spec.date.year, spec.date.month - 1, spec.date.day);
      if (spec.time === null) {
        if (which === 'since') return day.getTime();
        return new Date(day.getFullYear(), day.getMonth(), day.getDate() + 1).getTime() - 1;
      }
      const t = new Date(day.getFullYear(), day.getMonth(), day.getDate(), spec.time.hour, spec.time.minute);
      return endOfSecond(t.getTime() + spec.time.second * 1000);
    }
    case 'word':
      switch (spec.word) {
        case 'now':
          return now;
        case 'recent':
          return now - 10 * 60 * 1000;
        case 'boot':
          return clock.bootMs();
        case 'today':
          // ausearch: the start of today for --since, now for --until.
          return which === 'since' ? midnight(now).getTime() : now;
        case 'yesterday':
          return midnight(now, 1).getTime();
        case 'this-week':
          return midnight(now, new Date(now).getDay()).getTime();
        case 'week-ago':
          return midnight(now, 7).getTime();
        case 'this-month': {
          const d = new Date(now);
          return new Date(d.getFullYear(), d.getMonth(), 1).getTime();
        }
        case 'this-year':
          return new Date(new Date(now).getFullYear(), 0, 1).getTime();
      }
  }
}
