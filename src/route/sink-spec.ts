/**
 * Sink specs: how the host names a container's sinks, in the config file
 * (`container-sink = file:/var/log/contid/containers/{contid}/audit.log`)
 * and in `contid set … --sink SPEC`. Pure: parsing and template expansion;
 * src/route/container-sinks.ts opens them.
 *
 *     KIND:TARGET[;OPTION=VALUE]...
 *     file:/var/log/contid/containers/{contid}/audit.log;max-file-bytes=8388608
 *     file:/var/log/audit/contid.log;root=/proc/{pid}/root
 *     unix:/run/audispd_events;root=/proc/{pid}/root
 *     remote:127.0.0.1:60;netns=/proc/{pid}/ns/net
 *
 * Templates: `{contid}` is the container's chain from the top down joined
 * by `/` (`42`, or `42/5` for 5 nested in 42), `{id}` its own ID, `{pid}`
 * the host pid its creating set labelled. Nothing the tenant chooses is
 * ever part of a path: the values are digits.
 */

import { ContidSyntaxError } from '../errors.js';
import { isIP } from 'node:net';

/** The sink kinds. */
export type SinkKind = 'file' | 'unix' | 'remote';

/** How a container sink formats events. */
export type SinkFormat = 'text' | 'json' | 'plugin';

/** A parsed spec, templates unexpanded. */
export interface SinkSpec {
  /** The spec as written (for messages and status). */
  readonly text: string;
  readonly kind: SinkKind;
  /** The path (file, unix) or `host:port` (remote), with templates. */
  readonly target: string;
  /** `root=`: a directory the path is inside, resolved without following links (file, unix). */
  readonly root: string | null;
  /** `netns=`: a network namespace file to connect from (remote). */
  readonly netns: string | null;
  readonly format: SinkFormat;
  /** `queue-bytes=`, `queue-events=`: the sink's queue bound (drops past it, counted). */
  readonly queueBytes: number;
  readonly queueEvents: number;
  /** `max-file-bytes=`, `num-logs=`: rotation (file). */
  readonly maxFileBytes: number;
  readonly numLogs: number;
  /** `mode=`: octal mode of a new file (file). */
  readonly mode: number;
}

/** What the templates of a spec expand to for one container. */
export interface SinkVars {
  /** The container's chain, leaf to root. */
  readonly chain: readonly string[];
  /** The host pid its creating set labelled. */
  readonly pid: number;
}

/** A spec that cannot be used; `code` is `ERR_BAD_SINK_SPEC`. */
export class SinkSpecError extends ContidSyntaxError<'ERR_BAD_SINK_SPEC'> {
  /** What is wrong, without the "Cannot use" (`sink "tcp:…": expected …`), for messages that wrap it. */
  readonly detail: string;

  constructor(detail: string) {
    super(`Cannot use ${detail}`, 'ERR_BAD_SINK_SPEC');
    this.detail = detail;
  }
}

/** Default queue bound of a container sink: it drops past it (a host log blocks instead). */
export const DEFAULT_CONTAINER_QUEUE_BYTES = 4 * 1024 * 1024;
export const DEFAULT_CONTAINER_QUEUE_EVENTS = 16_384;
const MAX_SPEC_LENGTH = 4096;

const TEMPLATE = /\{([a-z]+)\}/g;
const TEMPLATE_NAMES = new Set(['contid', 'id', 'pid']);

/** Parses a spec; throws {@link SinkSpecError} with what is wrong. */
export function parseSinkSpec(text: string): SinkSpec {
  const bad = (why: string): SinkSpecError => new SinkSpecError(`sink "${text.slice(0, 200)}": ${why}`);
  if (text.length > MAX_SPEC_LENGTH) throw bad(`longer than ${MAX_SPEC_LENGTH} characters`);

  if (/[\x00-\x1f\x7f]/.test(text)) throw bad('control characters are not allowed');
  const colon = text.indexOf(':');
  const kind = colon < 0 ? '' : text.slice(0, colon);
  if (kind !== 'file' && kind !== 'unix' && kind !== 'remote') {
    throw bad('expected file:PATH, unix:PATH or remote:HOST:PORT');
  }
  const [target = '', ...options] = text.slice(colon + 1).split(';');
  for (const m of `${target};${options.join(';')}`.matchAll(TEMPLATE)) {
    if (!TEMPLATE_NAMES.has(m[1]!))
      throw bad(`unknown template "{${m[1]}}" (expected {contid}, {id}, {pid})`);
  }
  const values = new Map<string, string>();
  for (const o of options) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw bad(`"${o}" is not OPTION=VALUE`);
    const key = o.slice(0, eq);
    if (values.has(key)) throw bad(`"${key}" given twice`);
    values.set(key, o.slice(eq + 1));
  }
  const allowed: Record<SinkKind, readonly string[]> = {
    file: ['root', 'format', 'queue-bytes', 'queue-events', 'max-file-bytes', 'num-logs', 'mode'],
    unix: ['root', 'format', 'queue-bytes', 'queue-events'],
    remote: ['netns', 'queue-bytes', 'queue-events'],
  };
  for (const key of values.keys()) {
    if (!allowed[kind].includes(key)) {
      throw bad(`unknown option "${key}" for a ${kind} sink (expected ${allowed[kind].join(', ')})`);
    }
  }
  const int = (key: string, fallback: number, min: number): number => {
    const v = values.get(key);
    if (v === undefined) return fallback;
    if (!/^[0-9]{1,15}$/.test(v) || Number(v) < min) throw bad(`"${key}" must be a whole number ≥ ${min}`);
    return Number(v);
  };
  const format = values.get('format') ?? (kind === 'unix' ? 'plugin' : 'text');
  const formats: Record<SinkKind, readonly string[]> = {
    file: ['text', 'json'],
    unix: ['plugin', 'json'],
    remote: ['text'],
  };
  if (!formats[kind].includes(format)) {
    throw bad(`format "${format}" is not one of ${formats[kind].join(', ')} for a ${kind} sink`);
  }
  if (kind === 'remote') {
    if (!/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/.test(target)) {
      throw bad('expected remote:HOST:PORT (an IPv6 address in brackets)');
    }
  } else if (!target.startsWith('/')) {
    throw bad('the path must be absolute');
  }
  const root = values.get('root') ?? null;
  if (root !== null && !root.startsWith('/')) throw bad('"root" must be an absolute path');
  const netns = values.get('netns') ?? null;
  if (netns !== null && !netns.startsWith('/')) throw bad('"netns" must be an absolute path');
  // A connection made inside another network namespace resolves no names.
  if (netns !== null && isIP(target.slice(0, target.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1')) === 0) {
    throw bad('with "netns" the host must be an IP address');
  }
  const modeText = values.get('mode');
  if (modeText !== undefined && !/^0?[0-7]{3}$/.test(modeText)) throw bad('"mode" must be octal, e.g. 0600');
  return {
    text,
    kind,
    target,
    root,
    netns,
    format: format as SinkFormat,
    queueBytes: int('queue-bytes', DEFAULT_CONTAINER_QUEUE_BYTES, 1),
    queueEvents: int('queue-events', DEFAULT_CONTAINER_QUEUE_EVENTS, 1),
    maxFileBytes: int('max-file-bytes', 0, 0),
    numLogs: int('num-logs', 5, 2),
    mode: modeText === undefined ? 0o600 : parseInt(modeText, 8),
  };
}

/** Replaces the templates of `text` with this container's values. */
export function expandTemplate(text: string, vars: SinkVars): string {
  return text.replace(TEMPLATE, (_, name: string) => {
    if (name === 'contid') return [...vars.chain].reverse().join('/');
    if (name === 'id') return vars.chain[0] ?? '';
    return String(vars.pid);
  });
}

/** A spec with its templates expanded for one container. */
export function expandSpec(spec: SinkSpec, vars: SinkVars): SinkSpec {
  return {
    ...spec,
    target: expandTemplate(spec.target, vars),
    root: spec.root === null ? null : expandTemplate(spec.root, vars),
    netns: spec.netns === null ? null : expandTemplate(spec.netns, vars),
  };
}
