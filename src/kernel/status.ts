/**
 * `struct audit_status` (linux/audit.h): what AUDIT_GET answers and what
 * AUDIT_SET changes, selected by the AUDIT_STATUS_* bits of its mask.
 */
import { ContidRangeError } from '../errors.js';

/** The kernel's audit status (`struct audit_status`, `auditctl -s`). */
export interface AuditStatus {
  /** 0 disabled, 1 enabled, 2 enabled and locked until reboot. */
  readonly enabled: number;
  /** Failure mode: 0 silent, 1 printk, 2 panic. */
  readonly failure: number;
  /** Pid of the registered audit daemon, 0 when none. */
  readonly pid: number;
  readonly rateLimit: number;
  readonly backlogLimit: number;
  /** Records the kernel dropped since boot (or the last reset). */
  readonly lost: number;
  /** Records waiting in the kernel queue now. */
  readonly backlog: number;
  readonly featureBitmap: number;
  /** Jiffies a producer may wait when the backlog is full. */
  readonly backlogWaitTime: number;
  /** Jiffies producers actually waited on a full backlog. */
  readonly backlogWaitTimeActual: number;
}

/**
 * A change to the audit status; absent properties are left as they are.
 *
 * Locking the configuration (enabled 2) and panic on failure (failure 2)
 * are deliberately not expressible: both are irreversible until reboot.
 */
export interface AuditStatusChange {
  readonly enabled?: boolean;
  readonly failure?: 0 | 1;
  /** Registers the caller's process as the audit daemon, or 0 to unregister. */
  readonly pid?: number;
  readonly rateLimit?: number;
  readonly backlogLimit?: number;
  readonly backlogWaitTime?: number;
}

// struct audit_status field offsets and the AUDIT_STATUS_* mask bits.
const STATUS_BYTES = 44;
const STATUS_FIELDS = [
  ['enabled', 4, 0x01],
  ['failure', 8, 0x02],
  ['pid', 12, 0x04],
  ['rateLimit', 16, 0x08],
  ['backlogLimit', 20, 0x10],
  ['backlogWaitTime', 36, 0x20],
] as const;

/** Decodes `struct audit_status`; older kernels send a shorter struct. */
export function decodeStatus(payload: Buffer): AuditStatus {
  const full = Buffer.alloc(STATUS_BYTES);
  payload.copy(full, 0, 0, Math.min(payload.length, STATUS_BYTES));
  return {
    enabled: full.readUInt32LE(4),
    failure: full.readUInt32LE(8),
    pid: full.readUInt32LE(12),
    rateLimit: full.readUInt32LE(16),
    backlogLimit: full.readUInt32LE(20),
    lost: full.readUInt32LE(24),
    backlog: full.readUInt32LE(28),
    featureBitmap: full.readUInt32LE(32),
    backlogWaitTime: full.readUInt32LE(36),
    backlogWaitTimeActual: full.readUInt32LE(40),
  };
}

/** Encodes a status change as `struct audit_status` with its mask. */
export function encodeStatusChange(change: AuditStatusChange): Buffer {
  const buf = Buffer.alloc(STATUS_BYTES);
  let mask = 0;
  for (const [name, offset, bit] of STATUS_FIELDS) {
    const value = change[name];
    if (value === undefined) continue;
    const number = typeof value === 'boolean' ? Number(value) : value;
    if (!Number.isInteger(number) || number < 0 || number > 0xffffffff) {
      throw new ContidRangeError(
        `Cannot set audit status: ${name} ${JSON.stringify(value)} is not a u32`,
        'ERR_OUT_OF_RANGE',
      );
    }
    buf.writeUInt32LE(number, offset);
    mask |= bit;
  }
  buf.writeUInt32LE(mask, 0);
  return buf;
}
