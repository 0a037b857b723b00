/** Linux socket constants (x86_64 and aarch64 share them) for the netlink sockets contid opens. */
export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_AUDIT = 9;
export const NETLINK_CONNECTOR = 11;
export const SOL_SOCKET = 1;
export const SO_RCVBUF = 8;
export const SO_RCVTIMEO = 20;
export const SO_RCVBUFFORCE = 33;
/** recv(2) flag: return at once with EAGAIN when nothing is queued. */
export const MSG_DONTWAIT = 0x40;
/** recv(2) flag: return the real length of a datagram longer than the buffer. */
export const MSG_TRUNC = 0x20;
