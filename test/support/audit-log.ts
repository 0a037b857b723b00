/**
 * Hand-written audit logs for replay tests: kernel SYSCALL/PROCTITLE pairs
 * and authentic (or forged) contid markers, with increasing stamps.
 */
import { encodeMarker, MARKER_TYPE } from '../../src/marker/format.js';
import type { MarkerBody, MarkerCaller } from '../../src/marker/format.js';
import { formatKeyringEntry } from '../../src/marker/keyring.js';

/** A privileged orchestrator (crun) as markers name it. */
export const ORCHESTRATOR: MarkerCaller = {
  pid: 600,
  uid: 0,
  auid: 4294967295,
  exe: '/usr/bin/crun',
  privileged: true,
};

export interface SyscallOptions {
  readonly a0?: string;
  readonly key?: string;
  readonly success?: boolean;
  readonly auid?: number;
  readonly uid?: number;
}

/** Writes records of one daemon start's log, each with the next stamp. */
export class AuditLogWriter {
  readonly secret: Buffer;
  readonly daemonPid: number;
  readonly start: string;
  #serial: number;
  #ms: number;
  #seq = 0;
  readonly #baseSeconds: number;

  constructor(
    options: { secret?: Buffer; daemonPid?: number; start?: string; serial?: number; seconds?: number } = {},
  ) {
    this.secret = options.secret ?? Buffer.alloc(32, 9);
    this.daemonPid = options.daemonPid ?? 700;
    this.start = options.start ?? 'T1';
    this.#serial = options.serial ?? 100;
    this.#baseSeconds = options.seconds ?? 1700000000;
    this.#ms = 0;
  }

  /** The next `SEC.MS:SERIAL`, 5 ms after the last. */
  stamp(): string {
    this.#ms += 5;
    const sec = this.#baseSeconds + Math.floor(this.#ms / 1000);
    return `${sec}.${String(this.#ms % 1000).padStart(3, '0')}:${++this.#serial}`;
  }

  /** Moves the log's clock forward. */
  skip(ms: number): void {
    this.#ms += ms;
  }

  /** A SYSCALL and its PROCTITLE. */
  sys(pid: number, ppid: number, nr: number, exit: number, comm: string, o: SyscallOptions = {}): string {
    const s = this.stamp();
    const success = o.success ?? exit >= 0;
    const uid = o.uid ?? 0;
    return (
      `type=SYSCALL msg=audit(${s}): arch=c000003e syscall=${nr} success=${success ? 'yes' : 'no'} exit=${exit} ` +
      `a0=${o.a0 ?? '0'} a1=0 a2=0 a3=0 items=0 ppid=${ppid} pid=${pid} auid=${o.auid ?? 4242} uid=${uid} ` +
      `gid=0 euid=${uid} suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=3 comm="${comm}" ` +
      `exe="/bin/${comm}" key=${o.key === undefined ? '"t"' : o.key}\n` +
      `type=PROCTITLE msg=audit(${s}): proctitle=${Buffer.from(comm).toString('hex').toUpperCase()}\n`
    );
  }

  /** A marker sent by `sender` (the daemon by default) and signed with `secret` (this start's by default). */
  marker(body: MarkerBody, sender = this.daemonPid, secret = this.secret): string {
    const text = encodeMarker({ start: this.start, seq: ++this.#seq, body }, secret);
    return `type=UNKNOWN[${MARKER_TYPE}] msg=audit(${this.stamp()}): pid=${sender} uid=0 auid=4294967295 ses=4294967295 msg='${text}'\n`;
  }

  /** The keyring line of this start. */
  keyring(): string {
    return formatKeyringEntry({ startId: this.start, daemonPid: this.daemonPid, secret: this.secret }) + '\n';
  }
}
