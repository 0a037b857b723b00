import { parseArgs } from 'node:util';
import {
  applySetting,
  CONFIG_KEYS,
  ConfigError,
  REPEATABLE_KEYS,
  type DaemonConfig,
} from '../daemon/config.js';
import { UsageError } from './usage.js';

export const RUN_HELP = `Usage: contid run [options]

Run the contid daemon (as root). With no configuration it reads the kernel
audit stream directly: as the audit daemon when none is registered (writing
the host log, so it can replace auditd), or as a read-only multicast reader
beside a running auditd. It installs the audit rules it needs and removes
them on stop, writes a marker keyring, and labels every event of a process
in a container with its audit container ID. See docs/daemon.md.

Options (each may also be set in the config file as "key = value"):
      --config FILE          Config file (default /etc/contid/contid.conf, if present)
      --source MODE          auto (default), unicast, multicast or plugin (auditd's
                             plugin stream on stdin)
      --host-log FILE|none   Host log (default /var/log/contid/audit.log in unicast
                             mode, none in multicast and plugin mode)
  -f, --format FMT           Host log format: text (auditd's, default) or json
      --state-dir DIR        State directory (default /var/lib/contid)
      --keyring FILE         Marker keyring (default STATE-DIR/keyring)
      --rules auto|yes|no    Install contid's audit rules (auto: except in plugin mode);
                             with no, the audit daemon still enables audit, as auditd does
      --backlog-limit N      Raise the kernel backlog limit to N (default 8192; 0: leave)
      --submit-timeout MS    How long an operation waits for its marker (default 5000)
      --status-interval MS   Kernel status poll and rate interval (default 5000)
      --receive-buffer BYTES Netlink receive buffer (default 67108864)
      --batch-wait MS        How often the kernel socket is read while records come;
                             the longest a record waits to be handled (default 100)
      --event-timeout MS     Close an event this long after it, in event time (default 2000)
      --max-in-flight N      Most events assembled at once (default 65536)
      --max-processes N      Most processes tracked (default 1000000)
      --seed-proc yes|no     Seed the process table from /proc at start (default yes)
      --adopt yes|no         Adopt processes that enter a labelled container's
                             cgroup from outside (crun exec, nsenter) (default no)
      --proc-connector yes|no
                             Watch exits with the proc connector, so that processes
                             that leave without an exit_group record (a signal, the
                             raw exit syscall) end (default yes)
      --reconcile-interval MS
                             Check labelled and delegated processes against /proc
                             this often (default 30000; 0: only after a loss)
      --seal-interval MS     Write a seal marker (an HMAC over the records read)
                             this often, so a replay can tell which spans of a
                             log are intact (default 10000; 0: never)
      --checkpoint-interval MS
                             Save the labels to STATE-DIR/checkpoint.json this often
                             and on stop; a restart restores them (default 60000;
                             0: no checkpoints, no restore)
      --container-sink SPEC|none
                             Copy each container's events (IDs relative to it) to
                             this sink, repeatable; templates {contid}, {id}, {pid}:
                             file:/var/log/contid/containers/{contid}/audit.log
                             (docs/routing.md; default none)
      --socket PATH|none     Control socket for contid set/get/grant/status and the
                             OCI hook (default /run/contid/control.sock; its
                             directory must be root's and not writable by others)
      --store DB|none        Also store every labelled event in the event store DB
                             (SQLite, created if missing; default none) for
                             contid search, ps and report. Its own thread and
                             bounded queue: it never holds up the host log
      --store-max-age AGE    Delete stored events older than AGE (90d, 12h)
      --store-max-size SIZE  Keep the store under SIZE (500M, 20G)
  -h, --help                 Show this help

Signals: SIGTERM and SIGINT stop gracefully (rules removed, log synced);
SIGHUP reopens the host log (after logrotate moved it).`;

export interface RunArgs {
  readonly help: boolean;
  /** --config, or null for the default file if it exists. */
  readonly config: string | null;
  /** Settings given as flags; they override the config file. */
  readonly flags: Partial<DaemonConfig>;
}

/** Parses `contid run` arguments; a pure function of argv. */
export function parseRunArgs(argv: readonly string[]): RunArgs {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    config: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const key of CONFIG_KEYS.keys()) {
    options[key] = REPEATABLE_KEYS.has(key) ? { type: 'string', multiple: true } : { type: 'string' };
  }
  options['format'] = { type: 'string', short: 'f' };
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: false, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
  const flags: Partial<DaemonConfig> = {};
  for (const key of CONFIG_KEYS.keys()) {
    const value = values[key];
    if (typeof value === 'boolean' || value === undefined) continue;
    try {
      for (const v of typeof value === 'string' ? [value] : value) applySetting(flags, key, v, `--${key}`);
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(err.message);
      throw err;
    }
  }
  const config = values['config'];
  return { help: values['help'] === true, config: typeof config === 'string' ? config : null, flags };
}
