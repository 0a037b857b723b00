/**
 * `contid set`, `get`, `grant`, `status`: one request to the daemon's
 * control socket each, the answer printed for a person (or as JSON).
 */
import type { Writable } from 'node:stream';
import { ControlClientError, controlRequest } from '../control/client.js';
import type { ControlRequest, ControlResponse } from '../control/protocol.js';
import type { DaemonStatus } from '../daemon/api.js';
import type { ControlCommonArgs, PidArgs, SetArgs } from './control-args.js';

/** Exit codes of the control commands (and of `contid oci-hook`). */
export const EXIT = { ok: 0, failed: 1, usage: 2, notRunning: 3 } as const;

/** Where a command writes. */
export interface ControlIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
}

/**
 * Sends one request; prints refusals and transport errors on stderr.
 * Returns the answer when it is a success, else the exit code.
 */
export async function ask(
  args: ControlCommonArgs,
  request: ControlRequest,
  io: ControlIo,
): Promise<(ControlResponse & { ok: true }) | number> {
  let response: ControlResponse;
  try {
    response = await controlRequest(args.socket, request, { timeoutMs: args.timeoutMs });
  } catch (error) {
    if (!(error instanceof ControlClientError)) throw error;
    io.stderr.write(`contid: ${error.message}\n`);
    return error.code === 'ERR_DAEMON_NOT_RUNNING' ? EXIT.notRunning : EXIT.failed;
  }
  if (args.json) io.stdout.write(`${JSON.stringify(response)}\n`);
  if (!response.ok) {
    io.stderr.write(`contid: ${response.message}\n`);
    return EXIT.failed;
  }
  return response;
}

export async function runSet(args: SetArgs, io: ControlIo): Promise<number> {
  const request: ControlRequest = {
    op: 'set',
    pid: args.pid,
    contid: args.contid,
    ...(args.name === null ? {} : { name: args.name }),
    ...(Object.keys(args.meta).length === 0 ? {} : { meta: args.meta }),
    ...(args.owner === null ? {} : { owner: args.owner }),
    ...(args.create ? { create: true } : {}),
    ...(args.sinks === null ? {} : { sinks: args.sinks }),
  };
  const answer = await ask(args, request, io);
  if (typeof answer === 'number') return answer;
  if (!args.json) io.stdout.write(`pid ${args.pid}: contid ${args.contid}\n`);
  return EXIT.ok;
}

export async function runGrant(args: PidArgs, io: ControlIo): Promise<number> {
  const answer = await ask(args, { op: 'grant', pid: args.pid }, io);
  if (typeof answer === 'number') return answer;
  if (!args.json) io.stdout.write(`pid ${args.pid}: may label its descendants\n`);
  return EXIT.ok;
}

export async function runGet(args: PidArgs, io: ControlIo): Promise<number> {
  const answer = await ask(args, { op: 'get', pid: args.pid }, io);
  if (typeof answer === 'number') return answer;
  if (!args.json && answer.op === 'get') io.stdout.write(`${answer.contid ?? 'unset'}\n`);
  return EXIT.ok;
}

export async function runStatus(args: ControlCommonArgs, io: ControlIo): Promise<number> {
  const answer = await ask(args, { op: 'status' }, io);
  if (typeof answer === 'number') return answer;
  if (!args.json && answer.op === 'status') io.stdout.write(formatStatus(answer.status));
  return EXIT.ok;
}

const KNOWN = new Set([
  'pid',
  'startedAt',
  'source',
  'records',
  'events',
  'recordRate',
  'lagMs',
  'losses',
  'processes',
  'containers',
  'forgeries',
]);

/** The status for a person: one fact a line, known fields first, then whatever else the daemon reports. */
export function formatStatus(s: DaemonStatus): string {
  const lines = [
    `daemon      pid ${s.pid}, started ${s.startedAt}, source ${s.source}`,
    `records     ${count(s.records)} (${rate(s.recordRate)}/s)`,
    `events      ${count(s.events)}`,
    `lag         ${duration(s.lagMs)}`,
    `losses      ${count(s.losses.enobufs)} ENOBUFS, ${count(s.losses.kernelLost)} kernel lost, ${count(s.losses.serialGaps)} serial gaps`,
    `processes   ${count(s.processes)}`,
    `containers  ${count(s.containers)}`,
    `forgeries   ${count(s.forgeries)}`,
  ];
  const described = s['described'];
  if (Array.isArray(described)) {
    for (const d of described as { contid?: unknown; name?: unknown; meta?: unknown; pid?: unknown }[]) {
      const name = typeof d.name === 'string' ? ` ${JSON.stringify(d.name)}` : '';
      const meta = d.meta === undefined ? '' : ` ${JSON.stringify(d.meta)}`;
      lines.push(`container   ${String(d.contid)}${name}${meta} (set on pid ${String(d.pid)})`);
    }
  }
  const sinks = s['containerSinks'];
  if (typeof sinks === 'object' && sinks !== null) lines.push(...formatSinks(sinks));
  for (const [key, value] of Object.entries(s)) {
    if (KNOWN.has(key) || key === 'described' || key === 'containerSinks') continue;
    lines.push(`${key.padEnd(11)} ${typeof value === 'string' ? value : JSON.stringify(value)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The part of the status `formatSinks` reads (src/route/container-sinks.ts). */
interface SinksStatus {
  readonly containers?: number;
  readonly opened?: number;
  readonly failed?: number;
  readonly closed?: number;
  readonly overflow?: number;
  readonly sinks?: readonly {
    readonly container?: string;
    readonly kind?: string;
    readonly target?: string;
    readonly state?: string;
    readonly queuedEvents?: number;
    readonly writtenEvents?: number;
    readonly droppedEvents?: number;
    readonly errors?: number;
    readonly lastError?: { readonly code?: string } | null;
  }[];
}

/**
 * `sinks       2 containers, 2 opened, 0 failed, 0 closed` then one line per sink:
 * `sink        42 file /var/log/contid/containers/42/audit.log open: queue 0, written 118, dropped 0, errors 0`.
 */
function formatSinks(s: SinksStatus): string[] {
  const lines = [
    `sinks       ${count(s.containers ?? 0)} containers, ${count(s.opened ?? 0)} opened, ` +
      `${count(s.failed ?? 0)} failed, ${count(s.closed ?? 0)} closed` +
      (s.overflow ? `, ${count(s.overflow)} containers over the bound` : ''),
  ];
  for (const k of s.sinks ?? []) {
    const last = k.lastError?.code === undefined ? '' : ` (last ${k.lastError.code})`;
    lines.push(
      `sink        ${String(k.container)} ${String(k.kind)} ${String(k.target)} ${String(k.state)}: ` +
        `queue ${count(k.queuedEvents ?? 0)}, written ${count(k.writtenEvents ?? 0)}, ` +
        `dropped ${count(k.droppedEvents ?? 0)}, errors ${count(k.errors ?? 0)}${last}`,
    );
  }
  return lines;
}

function count(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : String(n);
}

function rate(n: number): string {
  return Number.isFinite(n) ? n.toFixed(1) : String(n);
}

function duration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
