import { readFileSync } from 'node:fs';
import { startControlServer, type ControlServer } from '../control/server.js';
import { ConfigError, DEFAULT_CONFIG_FILE, parseConfigFile, resolveConfig } from '../daemon/config.js';
import type { DaemonConfig } from '../daemon/config.js';
import { Daemon } from '../daemon/daemon.js';
import { streamLogger } from '../daemon/logger.js';
import type { CliIo } from './replay.js';
import type { RunArgs } from './run-args.js';

/** Reads the config file: the given one must exist, the default one may not. */
function loadConfigFile(path: string | null): Partial<DaemonConfig> {
  const file = path ?? DEFAULT_CONFIG_FILE;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (path === null && (err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`Cannot read config "${file}": ${(err as Error).message}`);
  }
  return parseConfigFile(text, file);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs `contid run` until a signal or the end of its input; returns the exit code.
 *
 * Order: the daemon starts (rules, registration, keyring, start marker), then
 * the control socket listens; on stop the socket closes first (requests in
 * flight are answered ERR_SHUTTING_DOWN), then the daemon stops and restores
 * the kernel state. A socket that cannot be opened stops the daemon at once
 * (exit 1, kernel state restored).
 */
export async function runDaemon(args: RunArgs, io: CliIo): Promise<number> {
  // The daemon must outlive whoever reads its stderr (a closed pipe, a
  // journal restart): a failed log write is dropped, never an uncaught
  // error that would end the daemon without restoring the kernel state.
  io.stderr.on('error', () => undefined);
  const log = streamLogger(io.stderr);
  let config: DaemonConfig;
  try {
    config = resolveConfig(loadConfigFile(args.config), args.flags);
  } catch (err) {
    io.stderr.write(`contid run: ${(err as Error).message}\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) log('warning', 'Not running as root: expect EPERM from the kernel');
  // A signal during the start (whose last line, "Started:", supervisors and
  // tests take as ready) must not kill the process with its rules installed:
  // it is kept, and acted on as soon as the daemon exists.
  let early: NodeJS.Signals | null = null;
  const onEarlySignal = (signal: NodeJS.Signals): void => {
    early ??= signal;
  };
  const onEarlyHangup = (): void => undefined;
  process.on('SIGTERM', onEarlySignal);
  process.on('SIGINT', onEarlySignal);
  process.on('SIGHUP', onEarlyHangup);
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({ config, log, input: io.stdin });
  } catch (err) {
    process.off('SIGTERM', onEarlySignal);
    process.off('SIGINT', onEarlySignal);
    process.off('SIGHUP', onEarlyHangup);
    log('error', `Cannot start: ${messageOf(err)}`);
    return 1;
  }

  let server: ControlServer | null = null;
  let stopping: Promise<number> | undefined;
  /** Closes the socket, then stops the daemon. Idempotent. */
  const stop = (reason: string): Promise<number> => {
    stopping ??= (async () => {
      if (server !== null) {
        await server.close();
        log('info', `Closed the control socket ${server.path}`);
      }
      return daemon.stop(reason);
    })();
    return stopping;
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    void stop(`signal ${signal}`);
  };
  const onHangup = (): void => {
    void daemon.reopenLog();
  };
  // Handlers first: a signal while the socket opens still stops gracefully.
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onHangup);
  // Only now, so that there is never a moment without a handler.
  process.off('SIGTERM', onEarlySignal);
  process.off('SIGINT', onEarlySignal);
  process.off('SIGHUP', onEarlyHangup);
  if (early !== null) onSignal(early);
  try {
    if (config.socket !== '') {
      let opened: ControlServer;
      try {
        opened = await startControlServer(daemon, {
          path: config.socket,
          onError: (error) => {
            log('error', `Control socket: ${messageOf(error)}`);
          },
        });
      } catch (err) {
        log('error', `Cannot open the control socket ${config.socket}: ${messageOf(err)}`);
        await (stopping ?? daemon.stop('the control socket could not be opened'));
        return 1;
      }
      if (stopping === undefined) {
        server = opened;
        log('notice', `Listening on ${opened.path}`);
      } else {
        await opened.close();
      }
    }
    // The input ended (plugin mode) or reading failed: the daemon stops itself;
    // the socket then closes too.
    // finished settles after a signal's stop too (it is the same stop).
    const code = await daemon.finished;
    await server?.close();
    return code;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('SIGHUP', onHangup);
  }
}
