/**
 * NETLINK_AUDIT: {@link AuditNetlink}, the class that owns one audit socket
 * and speaks the kernel's request/ACK protocol on it. The message codec
 * (nlmsg.ts), the status struct (status.ts) and the rule model (rule.ts)
 * are re-exported from here.
 *
 * Requests are synchronous: the kernel answers within microseconds (from a
 * short-lived kthread), and each wait is bounded by `requestTimeoutMs`. The
 * record stream is read without blocking (receiveMany with MSG_DONTWAIT) by
 * the audit reader (reader.ts), on a timer.
 */
import { ContidRangeError } from '../errors.js';
import {
  Errno,
  SyscallError,
  allocNative,
  bind,
  close as closeFd,
  errno,
  errnoName,
  freeNative,
  getsockopt,
  recvfrom,
  recvmmsg,
  type NativeBlock,
  sendto,
  setsockopt,
  socket,
  toNumber,
} from './libc.js';
import {
  NLM_F_ACK,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_MIN_TYPE,
  decodeMessages,
  encodeMessage,
  visitMessages,
  type MessageVisitor,
  type NetlinkMessage,
} from './nlmsg.js';
import { decodeRule, encodeRule, formatRule, type AuditRule } from './rule.js';
import { decodeStatus, encodeStatusChange, type AuditStatus, type AuditStatusChange } from './status.js';
import {
  AF_NETLINK,
  MSG_TRUNC,
  NETLINK_AUDIT,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_RCVTIMEO,
  SOCK_CLOEXEC,
  SOCK_RAW,
  SOL_SOCKET,
} from './socket-constants.js';

export * from './nlmsg.js';
export * from './status.js';
export { formatRule, normalizeRule } from './rule.js';
export type { AuditRule, RuleAction, RuleField, RuleFieldName, RuleList, RuleOp } from './rule.js';

export { MSG_DONTWAIT } from './socket-constants.js';
/** recvmmsg(2) flag: block for the first datagram only, then take what is queued. */
const MSG_WAITFORONE = 0x10000;

/** Audit netlink message types used here (linux/audit.h). */
export const AuditMessageType = {
  GET: 1000,
  SET: 1001,
  USER: 1005,
  ADD_RULE: 1011,
  DEL_RULE: 1012,
  LIST_RULES: 1013,
  /** The kernel's liveness probe of the registered daemon: a binary pid, not a record. */
  REPLACE: 1329,
  FIRST_USER_MSG: 1100,
  LAST_USER_MSG: 1199,
  FIRST_USER_MSG2: 2100,
  LAST_USER_MSG2: 2999,
} as const;

/** Multicast group that carries a copy of every record (needs CAP_AUDIT_READ). */
export const AUDIT_NLGRP_READLOG = 1;

/** The kernel's limit on the text of a user message (AUDIT_MESSAGE_TEXT_MAX). */
export const AUDIT_MESSAGE_TEXT_MAX = 8560;

// Largest datagram the kernel sends on this socket: a record is capped at
// MAX_AUDIT_MESSAGE_LENGTH (8970); a rule reply can carry several paths.
const RECEIVE_BUFFER_BYTES = 64 * 1024;

// receiveMany: one recvmmsg(2) fills up to MANY_SLOTS datagrams of at most
// MANY_SLOT_BYTES (records only, so 16 KiB is ample). The native block holds
// struct mmsghdr[MANY_SLOTS] (64 bytes each on LP64), then
// struct iovec[MANY_SLOTS] (16 bytes each), then each datagram's sender
// (struct sockaddr_nl, 12 bytes, in 16), then the slots.
const MANY_SLOTS = 64;
const MANY_SLOT_BYTES = 16 * 1024;
const MMSGHDR_BYTES = 64;
const IOVEC_BYTES = 16;
const NAME_BYTES = 16;
const SOCKADDR_NL_BYTES = 12;
const MANY_NAME_OFFSET = MANY_SLOTS * (MMSGHDR_BYTES + IOVEC_BYTES);
const MANY_DATA_OFFSET = MANY_NAME_OFFSET + MANY_SLOTS * NAME_BYTES;

/** Encodes a `struct sockaddr_nl`. */
function sockaddrNl(pid: number, groups: number): Buffer {
  const sa = Buffer.alloc(12);
  sa.writeUInt16LE(AF_NETLINK, 0);
  sa.writeUInt32LE(pid, 4);
  sa.writeUInt32LE(groups, 8);
  return sa;
}

const KERNEL_ADDRESS = sockaddrNl(0, 0);

/** Options for {@link AuditNetlink}. */
export interface AuditNetlinkOptions {
  /** Multicast groups to join, as a bit mask (1 = {@link AUDIT_NLGRP_READLOG}). Default 0. */
  readonly groups?: number;
  /**
   * Receive buffer size, forced with SO_RCVBUFFORCE (or SO_RCVBUF, capped at
   * rmem_max, without CAP_NET_ADMIN). Default: the kernel's (208 KiB).
   */
  readonly receiveBufferBytes?: number;
  /** SO_RCVTIMEO: how long one blocking receive may wait. Default 100 ms. */
  readonly receiveTimeoutMs?: number;
  /** How long a request waits for the kernel's answer. Default 2000 ms. */
  readonly requestTimeoutMs?: number;
  /**
   * Called with audit records (sequence 0) that arrive while a request waits
   * for its answer, as they do on the registered daemon's socket.
   */
  readonly onRecord?: (message: NetlinkMessage) => void;
}

type ReplyShape = 'ack' | 'one' | 'multi';

/**
 * One NETLINK_AUDIT socket and the audit control protocol over it.
 *
 * Control requests need CAP_AUDIT_CONTROL, user messages CAP_AUDIT_WRITE,
 * multicast CAP_AUDIT_READ. Not thread-safe: one owner per socket.
 */
export class AuditNetlink {
  readonly #options: AuditNetlinkOptions;
  readonly #buf = Buffer.alloc(RECEIVE_BUFFER_BYTES);
  readonly #sender = Buffer.alloc(SOCKADDR_NL_BYTES);
  #fd: number;
  #seq = 0;
  #many: { block: NativeBlock; slots: Buffer[] } | undefined;
  #foreign = 0;

  /** Opens and binds the socket. @throws {SyscallError} */
  constructor(options: AuditNetlinkOptions = {}) {
    this.#options = options;
    const fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
    if (fd < 0) throw SyscallError.fromErrno('Cannot open a NETLINK_AUDIT socket');
    this.#fd = fd;
    try {
      const groups = options.groups ?? 0;
      const address = sockaddrNl(0, groups);
      if (bind(fd, address, address.length) !== 0) {
        throw SyscallError.fromErrno(
          groups === 0 ? 'Cannot bind the audit socket' : `Cannot join audit multicast groups ${groups}`,
        );
      }
      const timeout = Buffer.alloc(16); // struct timeval { tv_sec, tv_usec }
      const timeoutMs = Math.max(1, Math.round(options.receiveTimeoutMs ?? 100));
      timeout.writeBigInt64LE(BigInt(Math.floor(timeoutMs / 1000)), 0);
      timeout.writeBigInt64LE(BigInt((timeoutMs % 1000) * 1000), 8);
      this.#setOption(SO_RCVTIMEO, timeout, 'Cannot set the audit socket receive timeout');
      if (options.receiveBufferBytes !== undefined) this.#setReceiveBuffer(options.receiveBufferBytes);
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** The socket's file descriptor, or -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /**
   * Datagrams received from a sender other than the kernel, and ignored.
   * Any process with CAP_NET_ADMIN in the network namespace can send to this
   * socket's port id; only the kernel's (port id 0) are audit records or
   * answers.
   */
  get foreignDatagrams(): number {
    return this.#foreign;
  }

  /** The receive buffer the kernel actually granted (SO_RCVBUF, doubled by the kernel). */
  receiveBufferBytes(): number {
    const value = Buffer.alloc(4);
    const length: [number] = [4];
    if (getsockopt(this.#open(), SOL_SOCKET, SO_RCVBUF, value, length) !== 0) {
      throw SyscallError.fromErrno('Cannot read the audit socket receive buffer size');
    }
    return value.readInt32LE(0);
  }

  /** Reads the kernel's audit status (AUDIT_GET). @throws {SyscallError} */
  getStatus(): AuditStatus {
    const [reply] = this.#request(
      AuditMessageType.GET,
      Buffer.alloc(0),
      'one',
      'Cannot read the audit status',
    );
    if (reply === undefined || reply.type !== AuditMessageType.GET) {
      throw new SyscallError('Cannot read the audit status', Errno.EPROTO, { reason: 'unexpected reply' });
    }
    return decodeStatus(reply.payload);
  }

  /** Changes the audit status (AUDIT_SET with the matching mask bits). @throws {SyscallError} */
  setStatus(change: AuditStatusChange): void {
    const payload = encodeStatusChange(change);
    this.#request(AuditMessageType.SET, payload, 'ack', `Cannot set the audit status ${describe(change)}`);
  }

  /**
   * Registers this socket as the audit daemon's: from now on the kernel
   * sends every record here (unicast) instead of to the printk fallback.
   *
   * @param pid The caller's process id; the kernel insists it is ours.
   * @throws {SyscallError} EEXIST when another daemon is registered.
   */
  registerDaemon(pid: number = process.pid): void {
    this.#request(
      AuditMessageType.SET,
      encodeStatusChange({ pid }),
      'ack',
      'Cannot register as the audit daemon',
      {
        EEXIST: 'another daemon is registered',
        EINVAL: `pid ${pid} is not the calling process`,
        EPERM: 'CAP_AUDIT_CONTROL is missing',
      },
    );
  }

  /**
   * Unregisters the audit daemon (AUDIT_SET pid 0). The kernel only lets the
   * registered process do this.
   *
   * @throws {SyscallError} EACCES when another process is registered.
   */
  unregisterDaemon(): void {
    this.#request(
      AuditMessageType.SET,
      encodeStatusChange({ pid: 0 }),
      'ack',
      'Cannot unregister the audit daemon',
      {
        EACCES: 'another process is registered',
      },
    );
  }

  /**
   * Sends a user message into the audit stream and waits for the kernel's
   * ACK. The kernel stamps the record with the sender's pid, uid, auid and
   * ses, and orders it with every other record. While audit is disabled the
   * kernel ACKs and drops the message.
   *
   * @param type 1005, 1100–1199 or 2100–2999; other types are refused by the
   *   kernel with EINVAL, and 1000–1099 (control commands, which would be
   *   executed with the text as their argument) are refused here with EINVAL.
   * @param text At most {@link AUDIT_MESSAGE_TEXT_MAX} bytes, no NUL.
   * @throws {SyscallError} EINVAL, EPERM (no CAP_AUDIT_WRITE).
   * @throws {RangeError} for an empty or oversized text, or one with NUL.
   */
  sendUserMessage(type: number, text: string): void {
    const action = `Cannot send an audit user message of type ${type}`;
    if (!Number.isInteger(type) || type < 0 || type > 0xffff) {
      throw new ContidRangeError(`${action}: the type is not a u16`, 'ERR_OUT_OF_RANGE');
    }
    if (
      type >= AuditMessageType.GET &&
      type < AuditMessageType.FIRST_USER_MSG &&
      type !== AuditMessageType.USER
    ) {
      throw new SyscallError(action, Errno.EINVAL, { reason: 'the type is an audit control command' });
    }
    const bytes = Buffer.from(`${text}\0`, 'utf8');
    // The kernel overwrites the last byte with NUL and needs one character.
    if (text.length === 0 || text.includes('\0') || bytes.length - 1 > AUDIT_MESSAGE_TEXT_MAX) {
      throw new ContidRangeError(
        `${action}: the text must be 1 to ${AUDIT_MESSAGE_TEXT_MAX} bytes without NUL`,
        'ERR_OUT_OF_RANGE',
      );
    }
    this.#request(type, bytes, 'ack', action);
  }

  /** Lists every audit rule, in kernel order (AUDIT_LIST_RULES). @throws {SyscallError} */
  listRules(): AuditRule[] {
    const replies = this.#request(
      AuditMessageType.LIST_RULES,
      Buffer.alloc(0),
      'multi',
      'Cannot list the audit rules',
    );
    return replies.filter((m) => m.type === AuditMessageType.LIST_RULES).map((m) => decodeRule(m.payload));
  }

  /** Adds a rule at the end of its list. @throws {SyscallError} EEXIST when an identical rule exists. */
  addRule(rule: AuditRule): void {
    this.#request(
      AuditMessageType.ADD_RULE,
      encodeRule(rule),
      'ack',
      `Cannot add the audit rule "${formatRule(rule)}"`,
      {
        EEXIST: 'an identical rule exists',
      },
    );
  }

  /** Deletes the identical rule. @throws {SyscallError} ENOENT when there is none. */
  deleteRule(rule: AuditRule): void {
    this.#request(
      AuditMessageType.DEL_RULE,
      encodeRule(rule),
      'ack',
      `Cannot delete the audit rule "${formatRule(rule)}"`,
      {
        ENOENT: 'no identical rule exists',
      },
    );
  }

  /**
   * Receives one datagram and decodes it. Returns an empty array when the
   * receive timed out or was interrupted, when the datagram came from
   * userspace (counted, see {@link foreignDatagrams}), or, with
   * {@link MSG_DONTWAIT}, when nothing was queued.
   *
   * @throws {SyscallError} ENOBUFS when the kernel dropped messages because
   *   the receive buffer was full (the socket stays usable); EPROTO when a
   *   datagram did not fit the receive buffer.
   */
  receive(flags = 0): NetlinkMessage[] {
    const length = this.#receiveDatagram(flags);
    return length < 0 ? [] : decodeMessages(this.#buf, length);
  }

  /**
   * The reader's hot path: receives every datagram already queued, up to
   * 64, in one recvmmsg(2) call, which blocks (up to the receive timeout)
   * for the first only, and hands each message to `visit` as bounds into
   * native memory that stays valid until the next call. No allocation per
   * message; measured at a quarter of the CPU of one recv per record.
   * Meant for record streams: a datagram over 16 KiB is an error. A
   * datagram from userspace is skipped and counted ({@link foreignDatagrams}).
   * Returns the message count, 0 when nothing arrived.
   *
   * @throws {SyscallError} like {@link receive}.
   */
  receiveMany(visit: MessageVisitor, flags = 0): number {
    const fd = this.#open();
    const { block, slots } = (this.#many ??= this.#allocateMany());
    // The kernel writes each sender's address length back: reset it.
    for (let i = 0; i < MANY_SLOTS; i++) block.view.writeUInt32LE(SOCKADDR_NL_BYTES, i * MMSGHDR_BYTES + 8);
    const received = recvmmsg(fd, block.address, MANY_SLOTS, flags | MSG_WAITFORONE | MSG_TRUNC, null);
    if (received < 0) {
      const code = errno();
      if (code === Errno.EAGAIN || code === Errno.EWOULDBLOCK || code === Errno.EINTR) return 0;
      throw new SyscallError('Cannot receive from the audit socket', code);
    }
    let count = 0;
    for (let i = 0; i < received; i++) {
      const header = i * MMSGHDR_BYTES;
      if (block.view.readUInt32LE(MANY_NAME_OFFSET + i * NAME_BYTES + 4) !== 0) {
        this.#foreign++;
        continue;
      }
      const length = block.view.readUInt32LE(header + 56);
      if (length > MANY_SLOT_BYTES || (block.view.readInt32LE(header + 48) & MSG_TRUNC) !== 0) {
        throw new SyscallError('Cannot receive from the audit socket', Errno.EPROTO, {
          reason: `a ${length}-byte datagram does not fit a ${MANY_SLOT_BYTES}-byte slot`,
        });
      }
      count += visitMessages(slots[i]!, length, visit);
    }
    return count;
  }

  #allocateMany(): { block: NativeBlock; slots: Buffer[] } {
    const block = allocNative(MANY_DATA_OFFSET + MANY_SLOTS * MANY_SLOT_BYTES);
    const slots: Buffer[] = [];
    for (let i = 0; i < MANY_SLOTS; i++) {
      const iovec = MANY_SLOTS * MMSGHDR_BYTES + i * IOVEC_BYTES;
      const data = MANY_DATA_OFFSET + i * MANY_SLOT_BYTES;
      // struct msghdr: msg_name at 0, msg_namelen at 8, msg_iov at 16,
      // msg_iovlen at 24; the rest stays 0.
      block.view.writeBigUInt64LE(
        block.address + BigInt(MANY_NAME_OFFSET + i * NAME_BYTES),
        i * MMSGHDR_BYTES,
      );
      block.view.writeUInt32LE(SOCKADDR_NL_BYTES, i * MMSGHDR_BYTES + 8);
      block.view.writeBigUInt64LE(block.address + BigInt(iovec), i * MMSGHDR_BYTES + 16);
      block.view.writeBigUInt64LE(1n, i * MMSGHDR_BYTES + 24);
      // struct iovec { iov_base, iov_len }
      block.view.writeBigUInt64LE(block.address + BigInt(data), iovec);
      block.view.writeBigUInt64LE(BigInt(MANY_SLOT_BYTES), iovec + 8);
      slots.push(block.view.subarray(data, data + MANY_SLOT_BYTES));
    }
    return { block, slots };
  }

  /**
   * One recv into the buffer; the datagram's length, or -1 when there was
   * none, or when it came from userspace (skipped and counted).
   */
  #receiveDatagram(flags: number): number {
    const fd = this.#open();
    const senderLength: [number] = [SOCKADDR_NL_BYTES];
    this.#sender.fill(0);
    const length = toNumber(
      recvfrom(fd, this.#buf, this.#buf.length, flags | MSG_TRUNC, this.#sender, senderLength),
    );
    if (length < 0) {
      const code = errno();
      if (code === Errno.EAGAIN || code === Errno.EWOULDBLOCK || code === Errno.EINTR) return -1;
      throw new SyscallError('Cannot receive from the audit socket', code);
    }
    if (this.#sender.readUInt32LE(4) !== 0) {
      this.#foreign++;
      return -1;
    }
    if (length > this.#buf.length) {
      throw new SyscallError('Cannot receive from the audit socket', Errno.EPROTO, {
        reason: `a ${length}-byte datagram does not fit the ${this.#buf.length}-byte buffer`,
      });
    }
    return length;
  }

  /** Closes the socket. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    closeFd(this.#fd);
    this.#fd = -1;
    if (this.#many !== undefined) freeNative(this.#many.block);
    this.#many = undefined;
  }

  #open(): number {
    if (this.#fd < 0) {
      throw new SyscallError('Cannot use the audit socket', Errno.EBADF, { reason: 'it is closed' });
    }
    return this.#fd;
  }

  /**
   * SO_RCVBUFFORCE ignores rmem_max but needs CAP_NET_ADMIN; without it,
   * fall back to SO_RCVBUF, which the kernel caps at rmem_max.
   */
  #setReceiveBuffer(bytes: number): void {
    if (!Number.isInteger(bytes) || bytes <= 0 || bytes > 0x3fffffff) {
      throw new ContidRangeError(
        `Cannot set the audit socket receive buffer: ${bytes} bytes is out of range`,
        'ERR_OUT_OF_RANGE',
      );
    }
    const size = Buffer.alloc(4);
    size.writeInt32LE(bytes);
    if (setsockopt(this.#fd, SOL_SOCKET, SO_RCVBUFFORCE, size, size.length) === 0) return;
    if (errno() !== Errno.EPERM) throw SyscallError.fromErrno('Cannot force the audit socket receive buffer');
    this.#setOption(SO_RCVBUF, size, 'Cannot set the audit socket receive buffer');
  }

  #setOption(name: number, value: Buffer, action: string): void {
    if (setsockopt(this.#fd, SOL_SOCKET, name, value, value.length) !== 0) {
      throw SyscallError.fromErrno(action);
    }
  }

  /**
   * Sends a request and collects the answer. The kernel sends the ACK
   * first and the reply after it (from a kthread that waits for the ACK),
   * so both orders are accepted. Messages with another sequence number are
   * records (sequence 0, passed to `onRecord`) or late answers to a request
   * that timed out (dropped).
   */
  #request(
    type: number,
    payload: Buffer,
    shape: ReplyShape,
    action: string,
    reasons: Readonly<Record<string, string>> = {},
  ): NetlinkMessage[] {
    const fd = this.#open();
    this.#seq = this.#seq >= 0x7fffffff ? 1 : this.#seq + 1;
    const seq = this.#seq;
    const message = encodeMessage(type, NLM_F_REQUEST | NLM_F_ACK, seq, payload);
    if (toNumber(sendto(fd, message, message.length, 0, KERNEL_ADDRESS, KERNEL_ADDRESS.length)) < 0) {
      throw SyscallError.fromErrno(action);
    }
    const deadline = Date.now() + (this.#options.requestTimeoutMs ?? 2000);
    const replies: NetlinkMessage[] = [];
    let acked = false;
    let done = false;
    for (;;) {
      if (
        acked &&
        (shape === 'ack' || (shape === 'one' && replies.length > 0) || (shape === 'multi' && done))
      ) {
        return replies;
      }
      if (Date.now() >= deadline) {
        throw new SyscallError(action, Errno.ETIMEDOUT, {
          reason: `no answer to request type ${type} within ${this.#options.requestTimeoutMs ?? 2000} ms`,
        });
      }
      let messages: NetlinkMessage[];
      try {
        messages = this.receive();
      } catch (error) {
        // Records were lost while we waited; our answer may still come.
        if (error instanceof SyscallError && error.errno === Errno.ENOBUFS) continue;
        throw error;
      }
      for (const m of messages) {
        if (m.seq !== seq) {
          if (m.seq === 0 && m.type >= NLMSG_MIN_TYPE) this.#options.onRecord?.(copy(m));
          continue;
        }
        if (m.type === NLMSG_ERROR) {
          const error = m.payload.length >= 4 ? m.payload.readInt32LE(0) : -Errno.EPROTO;
          if (error < 0) {
            const reason = reasons[errnoName(-error)];
            throw new SyscallError(action, -error, reason === undefined ? {} : { reason });
          }
          acked = true;
        } else if (m.type === NLMSG_DONE) {
          done = true;
        } else {
          replies.push(copy(m));
        }
      }
    }
  }
}

/** Detaches a message from the shared receive buffer. */
function copy(m: NetlinkMessage): NetlinkMessage {
  return { ...m, payload: Buffer.from(m.payload) };
}

function describe(change: AuditStatusChange): string {
  return Object.entries(change)
    .map(([name, value]) => `${name}=${String(value)}`)
    .join(' ');
}
