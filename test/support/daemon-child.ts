/**
 * A separate process registered as the audit daemon, standing in for a
 * running auditd in tests. It registers with its own socket, drains it so
 * the kernel never stalls on it, and unregisters when asked to stop.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';

/** A running stand-in daemon. */
export interface DaemonChild {
  readonly pid: number;
  /** Asks it to unregister and waits for it to exit; resolves with its exit code. */
  stop(): Promise<number | null>;
}

const netlinkUrl = new URL('../../src/kernel/netlink.js', import.meta.url).href;

// Runs in the child: register, report, read until stdin closes, unregister.
const script = `
import { AuditNetlink } from ${JSON.stringify(netlinkUrl)};
const net = new AuditNetlink({ receiveTimeoutMs: 50 });
net.registerDaemon();
process.stdout.write('registered\\n');
let stop = false;
process.stdin.on('end', () => { stop = true; }).resume();
const poll = () => {
  if (stop) { net.unregisterDaemon(); net.close(); return; }
  net.receive(0x40 /* MSG_DONTWAIT */);
  setTimeout(poll, 10);
};
poll();
`;

/**
 * Starts the stand-in daemon and resolves once it is registered.
 *
 * @throws {Error} with the child's stderr when it could not register.
 */
export async function startDaemonChild(): Promise<DaemonChild> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = once(child, 'exit') as Promise<[number | null]>;
  const registered = new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (chunk.includes('registered')) resolve();
    });
    void exited.then(([code]) => {
      reject(new Error(`The stand-in daemon exited with code ${String(code)} before registering: ${stderr}`));
    });
  });
  await registered;
  return {
    pid: child.pid ?? -1,
    async stop() {
      child.stdin.end();
      const [code] = await exited;
      return code;
    },
  };
}
