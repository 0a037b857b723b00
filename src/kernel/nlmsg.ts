/**
 * Netlink framing: `struct nlmsghdr` (length u32, type u16, flags u16,
 * seq u32, sender port u32, all little-endian on the machines contid runs
 * on), payloads padded to 4 bytes, several messages per datagram. Pure
 * functions, no I/O.
 */
import { Errno, SyscallError } from './libc.js';

/** Size of `struct nlmsghdr`. */
export const NLMSG_HDRLEN = 16;
/** Request flags. */
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
/** Netlink control message types; audit record types start far above them. */
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
/** Types below this are netlink control messages, never audit records. */
export const NLMSG_MIN_TYPE = 16;

/** One decoded netlink message. `payload` is a view into the receive buffer. */
export interface NetlinkMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  /** The sender's port id (0 for the kernel). */
  readonly pid: number;
  readonly payload: Buffer;
}

/** Encodes one netlink message: header, payload, padding to 4 bytes. */
export function encodeMessage(type: number, flags: number, seq: number, payload: Uint8Array): Buffer {
  const length = NLMSG_HDRLEN + payload.length;
  const buf = Buffer.alloc((length + 3) & ~3);
  buf.writeUInt32LE(length, 0);
  buf.writeUInt16LE(type, 4);
  buf.writeUInt16LE(flags, 6);
  buf.writeUInt32LE(seq >>> 0, 8);
  buf.writeUInt32LE(0, 12);
  buf.set(payload, NLMSG_HDRLEN);
  return buf;
}

/**
 * Called for each message of a datagram with its type, sequence number and
 * the bounds of its payload in `buf`; the header is the 16 bytes before
 * `start`.
 */
export type MessageVisitor = (buf: Buffer, type: number, seq: number, start: number, end: number) => void;

/**
 * Walks the messages of one datagram of `length` bytes (the recv result)
 * without allocating; returns how many there were.
 *
 * Audit records sent to the registered daemon (unicast) carry an
 * `nlmsg_len` that excludes the 16-byte header (kernel/audit.c sets it
 * after the fact). The kernel sends one record per datagram, so a first
 * header whose length is exactly `length - 16` is that quirk and the
 * payload runs to the end of the datagram. Everything else (multicast
 * records, replies, ACKs) follows the standard layout.
 *
 * @throws {SyscallError} EPROTO when a header points outside the datagram.
 */
export function visitMessages(buf: Buffer, length: number, visit: MessageVisitor): number {
  let offset = 0;
  let count = 0;
  while (offset + NLMSG_HDRLEN <= length) {
    let size = buf.readUInt32LE(offset);
    if (offset === 0 && size + NLMSG_HDRLEN === length) size = length;
    if (size < NLMSG_HDRLEN || offset + size > length) {
      throw new SyscallError('Cannot decode a netlink message', Errno.EPROTO, {
        reason: `length ${size} at offset ${offset} does not fit a datagram of ${length} bytes`,
      });
    }
    visit(
      buf,
      buf.readUInt16LE(offset + 4),
      buf.readUInt32LE(offset + 8),
      offset + NLMSG_HDRLEN,
      offset + size,
    );
    count++;
    offset += (size + 3) & ~3;
  }
  return count;
}

/** Decodes the messages of one datagram (see {@link visitMessages} for the unicast quirk). */
export function decodeMessages(buf: Buffer, length: number): NetlinkMessage[] {
  const messages: NetlinkMessage[] = [];
  visitMessages(buf, length, (_, type, seq, start, end) => {
    messages.push({
      type,
      flags: buf.readUInt16LE(start - NLMSG_HDRLEN + 6),
      seq,
      pid: buf.readUInt32LE(start - NLMSG_HDRLEN + 12),
      payload: buf.subarray(start, end),
    });
  });
  return messages;
}
