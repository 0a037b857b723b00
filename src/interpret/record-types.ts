/**
 * Record type numbers and names (`1300` is `SYSCALL`), and which types always form an event alone.
 *
 * Names are libaudit's (record-types-generated.ts), so they match what auditd writes in `type=`
 * and what auparse prints; a number libaudit does not know is written `UNKNOWN[1420]`, as auditd
 * writes it. contid adds its own CONTAINER_OP.
 */
import { RECORD_TYPES } from './record-types-generated.js';

/**
 * contid's record for label operations (`op=set|drop|grant|adopt`). 1020 is the number the
 * kernel's audit container ID series (ghak90) gave AUDIT_CONTAINER_OP; mainline never used it.
 */
export const CONTAINER_OP = 1020;

/**
 * The type name of contid's auxiliary record that carries an event's container ID chain. The kernel
 * series numbered it 1336, which mainline has since given to URINGOP, so it deliberately has no
 * number here: 1336 reads as URINGOP, and recordTypeNumber('CONTAINER_ID') is undefined.
 */
export const CONTAINER_ID_NAME = 'CONTAINER_ID';

const FIRST = 1000;
const LIMIT = 3000;
// nlmsg_type, which carries the record type on the netlink socket, is 16 bits.
const MAX_TYPE = 0xffff;
const UNKNOWN_PREFIX = 'UNKNOWN[';

// A dense array over FIRST..LIMIT-1 ('' where unnamed): one load per lookup on the hot path.
const NAMES: readonly string[] = buildNames();
const NUMBERS: ReadonlyMap<string, number> = buildNumbers();

function buildNames(): string[] {
  const names = new Array<string>(LIMIT - FIRST).fill('');
  for (const [n, name] of RECORD_TYPES) names[n - FIRST] = name;
  names[CONTAINER_OP - FIRST] = 'CONTAINER_OP';
  return names;
}

function buildNumbers(): Map<string, number> {
  const numbers = new Map<string, number>();
  NAMES.forEach((name, i) => {
    if (name !== '') numbers.set(name, i + FIRST);
  });
  return numbers;
}

/** The name of record type `n` (`1300` is `SYSCALL`), or `UNKNOWN[n]` for a number without one. */
export function recordTypeName(n: number): string {
  const name = NAMES[n - FIRST];
  return name === undefined || name === '' ? `UNKNOWN[${n}]` : name;
}

/**
 * The number of a record type name (`SYSCALL` is 1300, `UNKNOWN[1420]` is 1420), or undefined for
 * a name that is neither known nor `UNKNOWN[n]` with n a decimal 0..65535. Like libaudit's
 * audit_name_to_msg_type, known names match in any case (`syscall` is 1300) but `UNKNOWN[` must be
 * upper case. libaudit is looser still (`1300`, `UNKNOWN[]`, `UNKNOWN[1420]x` all give a number);
 * auditd never writes those.
 */
export function recordTypeNumber(name: string): number | undefined {
  // Exact match first: auditd writes upper case, so the hot path is one Map lookup.
  return NUMBERS.get(name) ?? unknownTypeNumber(name) ?? NUMBERS.get(name.toUpperCase());
}

/** n for `UNKNOWN[n]`, n being 1 to 5 decimal digits with a value up to 65535; else undefined. */
function unknownTypeNumber(name: string): number | undefined {
  const len = name.length;
  if (len < UNKNOWN_PREFIX.length + 2 || len > UNKNOWN_PREFIX.length + 6) return undefined;
  if (!name.startsWith(UNKNOWN_PREFIX) || name.charCodeAt(len - 1) !== 0x5d /* ] */) return undefined;
  let n = 0;
  for (let i = UNKNOWN_PREFIX.length; i < len - 1; i++) {
    const d = name.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return n <= MAX_TYPE ? n : undefined;
}

/**
 * Whether records of type `n` always form an event by themselves: no other record ever shares
 * their serial and no EOE follows, so an assembler may emit the event as soon as it reads one.
 * Only auditd's own DAEMON_* records (1200..1299) qualify.
 *
 * auparse (audit_is_last_record) treats many more types as one-record events. Each candidate was
 * checked against the kernel's behaviour and the corpus under ../shared/corpus; the ones left out
 * can share their serial with other records, and wrongly closing an event early splits it in two:
 *
 * - DAEMON_* 1200..1299: included. auditd writes them into its own log; they never pass through
 *   the kernel, so nothing can join them.
 * - USER 1005, user messages 1100..1199 and 2100..2999: excluded. They come from userspace over
 *   netlink and are alone on most kernels, but kernels with LSM stacking log them in the sender's
 *   audit context, followed by auxiliary records, the sender's SYSCALL and EOE under one serial
 *   (laurel record-service-start.txt: SERVICE_START, SYSCALL, SOCKADDR, UNKNOWN[1420], EOE). See
 *   isUserMessageType.
 * - LOGIN 1006: excluded. The kernel logs it in the context of the write to /proc/self/loginuid,
 *   with that SYSCALL (laurel record-login.txt; 5 of 7 LOGIN events in the corpus).
 * - CONFIG_CHANGE 1305: excluded. Logged in the context of auditctl's netlink syscall (56 of 272 in
 *   the corpus come with SYSCALL, SOCKADDR, PROCTITLE).
 * - AVC 1400: excluded. Comes with the denied syscall's records (4 of 8 in the corpus).
 * - MAC_UNLBL_ALLOW..MAC_CALIPSO_DEL 1406..1419: excluded. Netlabel logs them in the context of
 *   the configuring process's syscall.
 * - ANOM_* 1700..1799 and INTEGRITY_* 1800..1899: excluded. ANOM_PROMISCUOUS comes with its
 *   SYSCALL and SOCKADDR (laurel record-anom-promiscuous.txt); IMA logs in syscall context.
 * - KERNEL 2000: excluded. Logged once at boot with no context today, but the LSM stacking series
 *   gives context-less records a local context to hang auxiliary records on; waiting for it costs
 *   nothing.
 * - CONTAINER_OP 1020: excluded. In the kernel series it came with the SYSCALL record of the write
 *   that set the ID, and ausearch grouped the two like LOGIN (../shared/notes/KERNEL-CONTID-SERIES.md).
 */
export function isStandaloneType(n: number): boolean {
  return n >= 1200 && n <= 1299;
}

/**
 * Whether type `n` is a userspace message relayed by the kernel: AUDIT_USER (1005) and the ranges
 * AUDIT_FIRST_USER_MSG..AUDIT_LAST_USER_MSG (1100..1199) and AUDIT_FIRST_USER_MSG2..
 * AUDIT_LAST_USER_MSG2 (2100..2999). Such a record is usually a whole event, but on kernels with
 * LSM stacking it is followed by other records and an EOE with the same serial (see
 * isStandaloneType), so an assembler should close it on EOE or after a short wait, not at once.
 */
export function isUserMessageType(n: number): boolean {
  return n === 1005 || (n >= 1100 && n <= 1199) || (n >= 2100 && n <= 2999);
}
