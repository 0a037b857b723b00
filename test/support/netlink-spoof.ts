/**
 * A userspace netlink sender, for tests that check that contid takes
 * netlink messages only from the kernel: it finds the port id of one of
 * this process's own netlink sockets (/proc/net/netlink and /proc/self/fd)
 * and sends a datagram to it from a fresh socket of the same protocol, as
 * anyone with CAP_NET_ADMIN in the host's network namespace can.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { bind, close, sendto, socket, SyscallError, toNumber } from '../../src/kernel/libc.js';
import { AF_NETLINK, SOCK_CLOEXEC, SOCK_RAW } from '../../src/kernel/socket-constants.js';

/** Encodes a `struct sockaddr_nl`. */
function sockaddrNl(pid: number, groups: number): Buffer {
  const sa = Buffer.alloc(12);
  sa.writeUInt16LE(AF_NETLINK, 0);
  sa.writeUInt32LE(pid, 4);
  sa.writeUInt32LE(groups, 8);
  return sa;
}

/**
 * The port ids of this process's netlink sockets of `protocol` that joined
 * exactly the multicast groups `groups` (a bit mask).
 */
export function ownNetlinkPorts(protocol: number, groups: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[([0-9]+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m !== null) inodes.add(m[1]!);
    } catch {
      // Closed while listing.
    }
  }
  const ports: number[] = [];
  for (const line of readFileSync('/proc/net/netlink', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 10) continue;
    const [, eth, pid, groupHex, , , , , , inode] = cols;
    if (Number(eth) === protocol && parseInt(groupHex!, 16) === groups && inodes.has(inode!)) {
      ports.push(Number(pid));
    }
  }
  return ports;
}

/** Sends `datagram` to port `port` (and multicast `groups`) from a fresh userspace socket. */
export function sendFromUserspace(
  protocol: number,
  datagram: Buffer,
  to: { readonly port: number; readonly groups?: number },
): void {
  const fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd < 0) throw SyscallError.fromErrno('Cannot open a netlink socket');
  try {
    const self = sockaddrNl(0, 0);
    if (bind(fd, self, self.length) !== 0) throw SyscallError.fromErrno('Cannot bind a netlink socket');
    const address = sockaddrNl(to.port, to.groups ?? 0);
    if (toNumber(sendto(fd, datagram, datagram.length, 0, address, address.length)) < 0) {
      throw SyscallError.fromErrno(`Cannot send to netlink port ${to.port}`);
    }
  } finally {
    close(fd);
  }
}
