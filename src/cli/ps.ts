/**
 * `contid ps`: the containers in the event store and their process trees,
 * now (the newest stored event) or at a past time.
 */
import { escapeControls, formatStamp } from '../output/interpreted.js';
import { containerViews, type ContainerView, type ProcNode } from '../store/ps.js';
import type { ProcRow } from '../store/store.js';
import type { PsArgs } from './ps-args.js';
import type { CliIo } from './replay.js';
import { machineClock, openForReading, storeFailure, writeOutput } from './store-common.js';
import { STORE_EXIT } from './store-args.js';
import { resolveTimeSpec } from './time-spec.js';

/** `12/07/26 15:32:01.330`, as the interpreted view writes stamps. */
export function stampOf(ms: number): string {
  return formatStamp(ms, `${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}`);
}

/** Text that needs no quotes: no space, quote, backslash or control character. */
const PLAIN = /^[^\s"\\\p{Cc}]+$/u;
/** What escapeControls leaves that a terminal may still take for a line break or a control. */
const OTHER_CONTROLS = /[\p{Cc}\u2028\u2029]/gu;

/**
 * Text on one line: each control character (C0, DEL, C1, U+2028, U+2029)
 * as the octal of its UTF-8 bytes, as the interpreted view writes C0 ones
 * (`\012`).
 */
function oneLine(text: string): string {
  return escapeControls(text).replace(OTHER_CONTROLS, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join(''),
  );
}

/**
 * A name or metadata value from the store, on one line: as it is when
 * plain, else in double quotes, `"` and `\` escaped, control characters as
 * {@link oneLine} writes them. The text comes from whoever set the
 * container, or from an imported log.
 */
export function displayText(text: string): string {
  if (text !== '' && PLAIN.test(text)) return text;
  return `"${oneLine(text.replace(/[\\"]/g, (c) => `\\${c}`))}"`;
}

/** A path from the store on one line. */
function pathText(path: string | null): string {
  return path === null ? '?' : oneLine(path);
}

function ownerText(v: ContainerView): string {
  const o = v.owner;
  if (o === null) return 'owner ? (set before the store began)';
  const id = (n: number | null): string => (n === null ? '?' : String(n));
  return `owner uid=${id(o.uid)} auid=${id(o.auid)} pid=${id(o.pid)} exe=${pathText(o.exe)}`;
}

function treeLines(nodes: readonly ProcNode[], depth: number, out: string[]): void {
  for (const n of nodes) {
    const start = `${n.born ? ' ' : '~'}${stampOf(n.startMs)}`;
    const branch = depth === 0 ? '' : `${'   '.repeat(depth - 1)}\\_ `;
    out.push(
      `    ${String(n.pid).padStart(7)} ${String(n.ppid ?? '?').padStart(7)}  ${start}  ${branch}${pathText(n.exe)}`,
    );
    treeLines(n.children, depth + 1, out);
  }
}

/** The text view: a block per container, its processes as a tree. */
export function formatPsText(views: readonly ContainerView[], atMs: number | null): string {
  const out: string[] = [];
  out.push(atMs === null ? 'Containers as of the newest stored event' : `Containers at ${stampOf(atMs)}`);
  if (views.length === 0) out.push('(none)');
  for (const v of views) {
    const indent = '  '.repeat(v.ids.length - 1);
    const span =
      v.firstMs === null || v.lastMs === null
        ? 'no events'
        : `${v.events} event${v.events === 1 ? '' : 's'}, ${stampOf(v.firstMs)} to ${stampOf(v.lastMs)}`;
    out.push('');
    const name = v.name === null ? '' : `  name=${displayText(v.name)}`;
    out.push(`${indent}CONTAINER ${v.chain}${name}  ${v.state}  ${ownerText(v)}  ${span}`);
    const meta = Object.entries(v.meta);
    if (meta.length > 0)
      out.push(
        `${indent}  meta ${meta.map(([k, val]) => `${displayText(k)}=${displayText(val)}`).join(' ')}`,
      );
    if (v.processes.length === 0) {
      out.push(`${indent}    (no process${v.state === 'dropped' ? '' : ' seen alive'})`);
      continue;
    }
    out.push(`    ${'PID'.padStart(7)} ${'PPID'.padStart(7)}   ${'START'.padEnd(21)}  EXE`);
    treeLines(v.processes, 0, out);
  }
  return out.join('\n') + '\n';
}

function procJson(n: ProcNode): object {
  return {
    pid: n.pid,
    ppid: n.ppid,
    exe: n.exe,
    start: n.startMs / 1000,
    born: n.born,
    children: n.children.map(procJson),
  };
}

/** The JSON view: one object, `containers` in nesting order. */
export function formatPsJson(views: readonly ContainerView[], atMs: number | null): string {
  return (
    JSON.stringify({
      at: atMs === null ? null : atMs / 1000,
      containers: views.map((v) => ({
        contid: v.chain,
        ids: v.ids,
        name: v.name,
        state: v.state,
        owner: v.owner === null ? null : { ...v.owner, setMs: undefined, set: v.owner.setMs / 1000 },
        meta: v.meta,
        first: v.firstMs === null ? null : v.firstMs / 1000,
        last: v.lastMs === null ? null : v.lastMs / 1000,
        events: v.events,
        processes: v.processes.map(procJson),
      })),
    }) + '\n'
  );
}

/** Runs `contid ps`. Returns the exit code. */
export async function runPs(args: PsArgs, io: CliIo): Promise<number> {
  const store = openForReading(args.store, 'ps', io);
  if (store === null) return STORE_EXIT.store;
  let text: string;
  try {
    const atMs = args.at === null ? null : resolveTimeSpec(args.at, 'until', machineClock());
    let chains = atMs === null ? store.chains() : store.chainsAt(atMs);
    if (args.contids.length > 0) {
      const wanted = new Set(store.chainsHolding(args.contids, args.exact));
      chains = chains.filter((c) => wanted.has(c.id));
    }
    const live = chains.filter((c) => c.events > 0 && c.chain !== 'unknown');
    const procs = store.processes(
      live.map((c) => c.id),
      atMs,
    );
    const byChain = new Map<number, ProcRow[]>();
    for (const p of procs) {
      if (p.chain === null) continue;
      let list = byChain.get(p.chain);
      if (list === undefined) byChain.set(p.chain, (list = []));
      list.push(p);
    }
    let views = containerViews({ chains, ops: store.ops(atMs), processes: byChain, all: args.all });
    if (args.contids.length > 0) {
      const names = new Set(chains.map((c) => c.chain));
      views = views.filter((v) => names.has(v.chain));
    }
    text = args.format === 'json' ? formatPsJson(views, atMs) : formatPsText(views, atMs);
  } catch (err) {
    return storeFailure(io, 'ps', err);
  } finally {
    store.close();
  }
  return writeOutput(io, 'ps', text);
}
