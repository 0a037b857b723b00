/**
 * The proc connector's wire format (linux/connector.h, linux/cn_proc.h),
 * read and written by {@link ProcConnector} (proc-connector.ts). No I/O
 * here.
 *
 * A datagram holds one or more netlink messages (type NLMSG_DONE), each
 * carrying a `struct cn_msg` whose data is a `struct proc_event`:
 *
 * ```text
 * nlmsghdr  len u32, type u16, flags u16, seq u32, pid u32            16 bytes
 * cn_msg    idx u32, val u32, seq u32, ack u32, len u16, flags u16    20 bytes
 * proc_event what u32, cpu u32, timestamp_ns u64, event_data…         16 + 24 bytes
 * ```
 *
 * EXIT's event_data is process_pid, process_tgid, exit_code, exit_signal,
 * parent_pid, parent_tgid (u32 or pid_t each). The kernel sends one event
 * per datagram, but the walker accepts several, as netlink allows.
 */
import { NLMSG_DONE, NLMSG_HDRLEN } from './nlmsg.js';

/** The connector channel of process events (`struct cb_id`). */
export const CN_IDX_PROC = 1;
export const CN_VAL_PROC = 1;
/** `struct cn_msg` without its data. */
export const CN_MSG_BYTES = 20;
/** `struct proc_event` up to `event_data`. */
export const PROC_EVENT_HEADER_BYTES = 16;
/** `struct exit_proc_event`. */
export const EXIT_EVENT_BYTES = 24;

/** `proc_event.what` values used here. */
export const ProcEventWhat = {
  /** An acknowledgement of a control message; event_data is `{ err u32 }`. */
  NONE: 0,
  FORK: 0x1,
  EXEC: 0x2,
  EXIT: 0x80000000,
} as const;

/** `enum proc_cn_mcast_op`. */
export const ProcMcastOp = {
  LISTEN: 1,
  IGNORE: 2,
} as const;

/** The exit of a whole process (the thread group leader), as the kernel reported it. */
export interface ProcExit {
  /** The task id; equal to `tgid` for the processes delivered by {@link ProcConnector}. */
  readonly pid: number;
  readonly tgid: number;
  /**
   * The wait(2) status: `(code << 8)` for exit(code), the signal number in
   * the low 7 bits (plus 0x80 for a core dump) for a death by signal.
   */
  readonly exitCode: number;
  /**
   * The signal the parent gets for this exit (`task->exit_signal`): SIGCHLD
   * (17) for an ordinary child, whatever clone(2) asked for otherwise, -1
   * for threads. Not the signal that killed the process: that is in `exitCode`.
   */
  readonly exitSignal: number;
  /** The parent task (`real_parent`) at exit, in host pids. */
  readonly parentPid: number;
  readonly parentTgid: number;
}

/**
 * Whether an exit is that of a whole process rather than one of its
 * threads. The kernel reports every task; threads come with pid !== tgid
 * (and exitSignal -1, parent 0/0 on kernel 6.18). The leader's exit may
 * arrive before those of its last threads.
 */
export function isProcessExit(exit: ProcExit): boolean {
  return exit.pid === exit.tgid;
}

/** Receives the events of a datagram, see {@link parseProcDatagram}. */
export interface ProcEventHandlers {
  /** An EXIT event, threads included. */
  readonly exit: (exit: ProcExit) => void;
  /** An acknowledgement: `ack` is the control message's `cn_msg.ack` plus one, `error` an errno or 0. */
  readonly ack?: (ack: number, error: number) => void;
}

/** What one datagram held. */
export interface DatagramSummary {
  /** Well-formed proc events of any kind, acknowledgements excluded. */
  readonly events: number;
  /**
   * Messages that could not be read as proc events (truncated, lengths
   * that do not fit, another connector channel); the walk stops at a
   * length that does not fit, so the rest of the datagram counts as one.
   */
  readonly malformed: number;
}

/**
 * Walks one received datagram of `length` bytes and hands its EXIT events
 * and acknowledgements to `handlers`. Never throws on bad input: anything
 * unreadable is counted in {@link DatagramSummary.malformed}. Other events
 * (FORK, EXEC…) are counted and skipped.
 */
export function parseProcDatagram(
  buf: Uint8Array,
  length: number,
  handlers: ProcEventHandlers,
): DatagramSummary {
  const view = new DataView(buf.buffer, buf.byteOffset, Math.min(length, buf.byteLength));
  const end = view.byteLength;
  let events = 0;
  let malformed = 0;
  let offset = 0;
  while (offset < end) {
    if (offset + NLMSG_HDRLEN > end) {
      malformed++;
      break;
    }
    const size = view.getUint32(offset, true);
    if (size < NLMSG_HDRLEN || size > end - offset) {
      malformed++;
      break;
    }
    const kind = readProcEvent(view, offset, size, handlers);
    if (kind === 'event') events++;
    else if (kind === 'malformed') malformed++;
    // NLMSG_ALIGN; the padding after the last message may be absent.
    offset += (size + 3) & ~3;
  }
  return { events, malformed };
}

/** Reads the proc event in the netlink message at `offset` of `size` bytes. */
function readProcEvent(
  view: DataView,
  offset: number,
  size: number,
  handlers: ProcEventHandlers,
): 'event' | 'ack' | 'malformed' {
  if (view.getUint16(offset + 4, true) !== NLMSG_DONE) return 'malformed';
  const cn = offset + NLMSG_HDRLEN;
  const payload = size - NLMSG_HDRLEN;
  if (payload < CN_MSG_BYTES) return 'malformed';
  if (view.getUint32(cn, true) !== CN_IDX_PROC || view.getUint32(cn + 4, true) !== CN_VAL_PROC) {
    return 'malformed';
  }
  const dataBytes = view.getUint16(cn + 16, true);
  if (dataBytes > payload - CN_MSG_BYTES || dataBytes < PROC_EVENT_HEADER_BYTES) return 'malformed';
  const event = cn + CN_MSG_BYTES;
  const what = view.getUint32(event, true);
  const data = event + PROC_EVENT_HEADER_BYTES;
  const dataEnd = event + dataBytes;
  if (what === ProcEventWhat.NONE) {
    if (dataEnd - data < 4) return 'malformed';
    handlers.ack?.(view.getUint32(cn + 12, true), view.getUint32(data, true));
    return 'ack';
  }
  if (what === ProcEventWhat.EXIT) {
    if (dataEnd - data < EXIT_EVENT_BYTES) return 'malformed';
    handlers.exit({
      pid: view.getInt32(data, true),
      tgid: view.getInt32(data + 4, true),
      exitCode: view.getUint32(data + 8, true),
      // Declared __u32 but holds task->exit_signal, which is -1 for threads.
      exitSignal: view.getInt32(data + 12, true),
      parentPid: view.getInt32(data + 16, true),
      parentTgid: view.getInt32(data + 20, true),
    });
  }
  return 'event';
}

/**
 * Encodes a control message: PROC_CN_MCAST_LISTEN or _IGNORE, optionally
 * with the event filter of kernel 6.6+ (`struct proc_input`), which older
 * kernels ignore (they accept only the 4-byte form). The kernel answers
 * with a NONE event whose `cn_msg.ack` is `ack + 1`, sent to every
 * listener whose filter lets NONE through.
 */
export function encodeControl(op: number, ack: number, eventFilter?: number): Buffer {
  const dataBytes = eventFilter === undefined ? 4 : 8;
  const size = NLMSG_HDRLEN + CN_MSG_BYTES + dataBytes;
  const msg = Buffer.alloc(size);
  msg.writeUInt32LE(size, 0);
  msg.writeUInt16LE(NLMSG_DONE, 4);
  msg.writeUInt32LE(CN_IDX_PROC, 16);
  msg.writeUInt32LE(CN_VAL_PROC, 20);
  msg.writeUInt32LE(ack >>> 0, 28);
  msg.writeUInt16LE(dataBytes, 32);
  msg.writeUInt32LE(op, 36);
  if (eventFilter !== undefined) msg.writeUInt32LE(eventFilter >>> 0, 40);
  return msg;
}
