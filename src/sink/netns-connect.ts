/**
 * A TCP connection made from inside another network namespace (a
 * container's), so that the container publishes no port: a short-lived
 * worker thread joins the namespace with setns(CLONE_NEWNET) (which moves
 * only the calling thread), creates and connects the socket there, and
 * hands back the fd. A socket keeps the namespace it was created in, so the
 * main thread then uses it as any other (`new net.Socket({ fd })`), and the
 * thread that changed namespace ends with the worker.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { Worker } from 'node:worker_threads';
import { SinkError } from './sink.js';

/** What the worker is asked to do. */
export interface NetnsConnectRequest {
  /** A network namespace file: /proc/PID/ns/net, or a bind mount of one. */
  readonly netns: string;
  /** AF_INET or AF_INET6. */
  readonly family: number;
  /** The encoded sockaddr_in or sockaddr_in6. */
  readonly sockaddr: Uint8Array;
  readonly timeoutMs: number;
}

/** What the worker answers. */
export type NetnsConnectReply =
  | { readonly fd: number }
  | {
      readonly step: 'open' | 'setns' | 'socket' | 'connect';
      /** The errno name, e.g. ECONNREFUSED. */
      readonly code: string;
      /** The reason in words, code included: "connection refused (ECONNREFUSED)". */
      readonly message: string;
    };

export const AF_INET = 2;
export const AF_INET6 = 10;

/** Encodes `host` (an IPv4 or IPv6 literal) and `port` as a sockaddr. */
export function encodeSockaddr(host: string, port: number): { family: number; sockaddr: Buffer } {
  if (isIPv4(host)) {
    const sa = Buffer.alloc(16);
    sa.writeUInt16LE(AF_INET, 0);
    sa.writeUInt16BE(port, 2);
    host.split('.').forEach((octet, i) => (sa[4 + i] = Number(octet)));
    return { family: AF_INET, sockaddr: sa };
  }
  if (isIPv6(host)) {
    const sa = Buffer.alloc(28);
    sa.writeUInt16LE(AF_INET6, 0);
    sa.writeUInt16BE(port, 2);
    ipv6Bytes(host).copy(sa, 8);
    return { family: AF_INET6, sockaddr: sa };
  }
  throw new SinkError(
    `Cannot connect to "${host}": an address in another network namespace must be an IP literal`,
    'ERR_INVALID_ADDRESS',
  );
}

/** The 16 bytes of an IPv6 literal (`::1`, `fe80::1`, `::ffff:127.0.0.1`). */
export function ipv6Bytes(host: string): Buffer {
  const out = Buffer.alloc(16);
  let text = host.replace(/%.*$/, ''); // a zone id is not part of the address
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null) {
    const o = v4[1]!.split('.').map(Number);
    tail.push((o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!);
    text = text.slice(0, -v4[1]!.length);
    if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1);
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const words = (s: string): number[] => (s === '' ? [] : s.split(':').map((w) => parseInt(w, 16)));
  const before = words(head);
  const after = rest === undefined ? [] : words(rest);
  const groups = [
    ...before,
    ...new Array<number>(8 - before.length - after.length - tail.length).fill(0),
    ...after,
    ...tail,
  ];
  groups.forEach((g, i) => out.writeUInt16BE(g, 2 * i));
  return out;
}

/** Options of {@link connectInNetns}. */
export interface NetnsConnectOptions {
  readonly netns: string;
  /** What is connected to, for messages: `auditd at "127.0.0.1:60"`. */
  readonly label: string;
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
}

/**
 * Connects to `host:port` from inside the network namespace `netns`;
 * resolves with the connected socket's fd (the caller owns it and must
 * close it). Rejects with a {@link SinkError} naming the step that failed.
 */
export function connectInNetns(options: NetnsConnectOptions): Promise<number> {
  const { family, sockaddr } = encodeSockaddr(options.host, options.port);
  const request: NetnsConnectRequest = {
    netns: options.netns,
    family,
    sockaddr,
    timeoutMs: options.timeoutMs,
  };
  const ns = `network namespace "${options.netns}"`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./netns-connect-worker.js', import.meta.url), {
      workerData: request,
      // The worker only makes a few system calls.
      resourceLimits: { maxOldGenerationSizeMb: 32 },
    });
    let settled = false;
    worker.once('message', (reply: NetnsConnectReply) => {
      settled = true;
      if ('fd' in reply) {
        resolve(reply.fd);
        return;
      }
      const what =
        reply.step === 'connect'
          ? `Cannot connect to ${options.label} in ${ns}`
          : `Cannot enter ${ns} to reach ${options.label}`;
      reject(new SinkError(`${what}: ${reply.message}`, reply.code));
    });
    worker.once('error', (error) => {
      if (settled) return;
      settled = true;
      reject(SinkError.from(`Cannot connect to ${options.label} in ${ns}`, error));
    });
    worker.once('exit', (code) => {
      if (settled) return;
      settled = true;
      reject(
        new SinkError(
          `Cannot connect to ${options.label} in ${ns}: its worker exited with code ${code}`,
          'ERR_WORKER',
        ),
      );
    });
  });
}
