/**
 * The daemon's settings: their defaults, the config file (`key = value`,
 * keys named like the `contid run` flags), and how the two combine. Pure:
 * reading the file is the CLI's job. Every key is documented in
 * docs/daemon.md and etc/contid.conf.
 */
import { duration, size } from '../cli/store-args.js';
import { ContidSyntaxError } from '../errors.js';

import { parseSinkSpec, SinkSpecError, type SinkSpec } from '../route/sink-spec.js';

/** Where records come from. */
export type SourceMode = 'auto' | 'unicast' | 'multicast' | 'plugin';
/** Host log format: auditd text with CONTAINER_* records, or JSON lines as `contid replay`. */
export type HostLogFormat = 'text' | 'json';
/** Whether contid installs (and removes) its audit rules; `auto` is yes except in plugin mode. */
export type RulesMode = 'auto' | 'yes' | 'no';

export interface DaemonConfig {
  readonly source: SourceMode;
  /** Host log path; null for the mode's default (a file in unicast mode, none otherwise); '' for none. */
  readonly hostLog: string | null;
  readonly format: HostLogFormat;
  /** Directory of the keyring and the kernel-state file (0700). */
  readonly stateDir: string;
  /** Keyring path; null for `<stateDir>/keyring`. */
  readonly keyring: string | null;
  readonly rules: RulesMode;
  /** The kernel backlog limit contid raises to (never lowers); 0 leaves it alone. */
  readonly backlogLimit: number;
  /** How long submit() waits for its marker to come back. */
  readonly submitTimeoutMs: number;
  /** How often the kernel status (the `lost` counter) is polled and rates are computed. */
  readonly statusIntervalMs: number;
  /** Forced netlink receive buffer. */
  readonly receiveBufferBytes: number;
  /** Longest time a record read from netlink waits for more before the batch goes to the main thread. */
  readonly batchWaitMs: number;
  /** Assembler timeout in event time. */
  readonly eventTimeoutMs: number;
  readonly maxInFlight: number;
  readonly maxProcesses: number;
  /** Seed the process table from /proc at start. */
  readonly seedProc: boolean;
  /** Adopt processes found in a labelled container's cgroup (src/daemon/adoption.ts). */
  readonly adopt: boolean;
  /** Watch process exits (proc connector) to end processes that leave without an exit_group record. */
  readonly procConnector: boolean;
  /**
   * How often labelled and delegated processes are checked against /proc
   * (ms; 0: never, only after a loss).
   */
  readonly reconcileIntervalMs: number;
  /**
   * How often a seal marker is written (ms; 0: never): an HMAC over the
   * records read since the last, so a replay can say which spans of a log
   * are intact (docs/markers.md, "What a replay proves").
   */
  readonly sealIntervalMs: number;
  /**
   * How often the labels are saved to STATE-DIR/checkpoint.json (ms; also
   * after each accepted operation and on stop; 0: never, and no restore).
   */
  readonly checkpointIntervalMs: number;
  /** The control socket (docs/control.md); '' for none. */
  readonly socket: string;
  /**
   * The sinks each container gets when its set names none (`container-sink`,
   * repeatable; docs/routing.md). Empty: no copies.
   */
  readonly containerSinks: readonly SinkSpec[];
  /** The event store every labelled event also goes to (docs/store.md); '' for none. */
  readonly store: string;
  /** Store retention: delete events older than this (ms, from the newest stored); null keeps them. */
  readonly storeMaxAgeMs: number | null;
  /** Store retention: keep the database under this many bytes; null for no bound. */
  readonly storeMaxBytes: number | null;
}

/** The default host log in unicast mode, where contid replaces auditd. */
export const DEFAULT_HOST_LOG = '/var/log/contid/audit.log';
/** Where `contid run` listens for orchestrators (the same as src/control/socket-path.ts). */
export const DEFAULT_CONTROL_SOCKET = '/run/contid/control.sock';
/** Read when present; `--config` names another file. */
export const DEFAULT_CONFIG_FILE = '/etc/contid/contid.conf';

export const DEFAULT_CONFIG: DaemonConfig = {
  source: 'auto',
  hostLog: null,
  format: 'text',
  stateDir: '/var/lib/contid',
  keyring: null,
  rules: 'auto',
  backlogLimit: 8192,
  submitTimeoutMs: 5000,
  statusIntervalMs: 5000,
  receiveBufferBytes: 64 * 1024 * 1024,
  batchWaitMs: 100,
  eventTimeoutMs: 2000,
  maxInFlight: 65536,
  maxProcesses: 1_000_000,
  seedProc: true,
  adopt: false,
  procConnector: true,
  reconcileIntervalMs: 30_000,
  sealIntervalMs: 10_000,
  checkpointIntervalMs: 60_000,
  socket: DEFAULT_CONTROL_SOCKET,
  containerSinks: [],
  store: '',
  storeMaxAgeMs: null,
  storeMaxBytes: null,
};

/** A bad setting, from the file (with its line) or a flag. */
export class ConfigError extends ContidSyntaxError<'ERR_BAD_CONFIG'> {
  constructor(message: string) {
    super(message, 'ERR_BAD_CONFIG');
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Setter = (config: Mutable<Partial<DaemonConfig>>, value: string, where: string) => void;

function oneOf(allowed: readonly string[], key: keyof DaemonConfig): Setter {
  return (c, v, where) => {
    if (!allowed.includes(v)) {
      throw new ConfigError(`Cannot use ${where}: "${v}" is not one of ${allowed.join(', ')}`);
    }
    (c as Record<string, unknown>)[key] = v;
  };
}

const DAY_MS = 86_400_000;

function integer(key: keyof DaemonConfig, min: number, max: number): Setter {
  return (c, v, where) => {
    if (!/^[0-9]+$/.test(v)) throw new ConfigError(`Cannot use ${where}: "${v}" is not a whole number`);
    const n = Number(v);
    if (n < min || n > max) {
      throw new ConfigError(
        `Cannot use ${where}: "${v}" is out of range (${min} to ${max.toLocaleString('en-US')})`,
      );
    }
    (c as Record<string, unknown>)[key] = n;
  };
}

function path(key: keyof DaemonConfig, noneAllowed: boolean): Setter {
  return (c, v, where) => {
    if (noneAllowed && v === 'none') {
      (c as Record<string, unknown>)[key] = '';
      return;
    }
    if (!v.startsWith('/')) throw new ConfigError(`Cannot use ${where}: "${v}" is not an absolute path`);
    (c as Record<string, unknown>)[key] = v;
  };
}

function boolean(key: keyof DaemonConfig): Setter {
  return (c, v, where) => {
    if (v !== 'yes' && v !== 'no') throw new ConfigError(`Cannot use ${where}: "${v}" is not yes or no`);
    (c as Record<string, unknown>)[key] = v === 'yes';
  };
}

/** A sink spec; repeated settings add up, `none` clears them. */
function sinkSpec(): Setter {
  return (c, v, where) => {
    if (v === 'none') {
      c.containerSinks = [];
      return;
    }
    try {
      c.containerSinks = [...(c.containerSinks ?? []), parseSinkSpec(v)];
    } catch (error) {
      if (error instanceof SinkSpecError) throw new ConfigError(`Cannot use ${where}: ${error.detail}`);
      throw error;
    }
  };
}

/** A store retention bound (`90d`, `20G`) as `contid store import` takes it, or `none`. */
function bound(key: keyof DaemonConfig, parse: (flag: string, raw: string) => number): Setter {
  return (c, v, where) => {
    if (v === 'none') {
      (c as Record<string, unknown>)[key] = null;
      return;
    }
    try {
      (c as Record<string, unknown>)[key] = parse(where, v);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
  };
}

/** Settings that may be given more than once (each adds to the list). */
export const REPEATABLE_KEYS: ReadonlySet<string> = new Set(['container-sink']);

/** Config keys, which are also the `contid run` long flags. */
export const CONFIG_KEYS: ReadonlyMap<string, Setter> = new Map<string, Setter>([
  ['source', oneOf(['auto', 'unicast', 'multicast', 'plugin'], 'source')],
  ['host-log', path('hostLog', true)],
  ['format', oneOf(['text', 'json'], 'format')],
  ['state-dir', path('stateDir', false)],
  ['keyring', path('keyring', false)],
  ['rules', oneOf(['auto', 'yes', 'no'], 'rules')],
  ['backlog-limit', integer('backlogLimit', 0, 0xffffffff)],
  ['submit-timeout', integer('submitTimeoutMs', 1, DAY_MS)],
  ['status-interval', integer('statusIntervalMs', 100, DAY_MS)],
  ['receive-buffer', integer('receiveBufferBytes', 65536, 0x7fffffff)],
  ['batch-wait', integer('batchWaitMs', 1, 1000)],
  ['event-timeout', integer('eventTimeoutMs', 1, DAY_MS)],
  ['max-in-flight', integer('maxInFlight', 1, 16_777_216)],
  ['max-processes', integer('maxProcesses', 1, 100_000_000)],
  ['seed-proc', boolean('seedProc')],
  ['adopt', boolean('adopt')],
  ['proc-connector', boolean('procConnector')],
  ['reconcile-interval', integer('reconcileIntervalMs', 0, DAY_MS)],
  ['seal-interval', integer('sealIntervalMs', 0, DAY_MS)],
  ['checkpoint-interval', integer('checkpointIntervalMs', 0, DAY_MS)],
  ['socket', path('socket', true)],
  ['container-sink', sinkSpec()],
  ['store', path('store', true)],
  ['store-max-age', bound('storeMaxAgeMs', duration)],
  ['store-max-size', bound('storeMaxBytes', size)],
]);

/** Applies one `key = value` setting; `where` names it in errors. */
export function applySetting(
  config: Mutable<Partial<DaemonConfig>>,
  key: string,
  value: string,
  where: string,
): void {
  const set = CONFIG_KEYS.get(key);
  if (set === undefined) throw new ConfigError(`Cannot use ${where}: "${key}" is not a setting`);
  set(config, value, `${key} (${where})`);
}

/**
 * Parses a config file: `key = value` lines, `#` comments, blank lines.
 * A key may appear once, except those in {@link REPEATABLE_KEYS}.
 */
export function parseConfigFile(text: string, name = 'config'): Partial<DaemonConfig> {
  const config: Mutable<Partial<DaemonConfig>> = {};
  const seen = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${name} line ${i + 1}`;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new ConfigError(`Cannot read ${where}: expected "key = value"`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (seen.has(key) && !REPEATABLE_KEYS.has(key))
      throw new ConfigError(`Cannot use ${where}: setting "${key}" is repeated`);
    seen.add(key);
    applySetting(config, key, value, where);
  });
  return config;
}

/** Defaults, then the file, then flags. */
export function resolveConfig(file: Partial<DaemonConfig>, flags: Partial<DaemonConfig>): DaemonConfig {
  return { ...DEFAULT_CONFIG, ...file, ...flags };
}

/** The keyring path a config resolves to. */
export function keyringPath(config: DaemonConfig): string {
  return config.keyring ?? `${config.stateDir.replace(/\/+$/, '')}/keyring`;
}

/** The host log a config resolves to in `mode`, or null for none. */
export function hostLogPath(config: DaemonConfig, mode: 'unicast' | 'multicast' | 'plugin'): string | null {
  if (config.hostLog === '') return null;
  if (config.hostLog !== null) return config.hostLog;
  return mode === 'unicast' ? DEFAULT_HOST_LOG : null;
}
