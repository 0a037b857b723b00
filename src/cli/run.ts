import { readFileSync } from 'node:fs';
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

/** Runs `contid run` until a signal or the end of its input; returns the exit code. */
export async function runDaemon(args: RunArgs, io: CliIo): Promise<number> {
  const log = streamLogger(io.stderr);
  let config: DaemonConfig;
  try {
    config = resolveConfig(loadConfigFile(args.config), args.flags);
  } catch (err) {
    io.stderr.write(`contid run: ${(err as Error).message}\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) log('warning', 'Not running as root: expect EPERM from the kernel');
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({ config, log, input: io.stdin });
  } catch (err) {
    log('error', `Cannot start: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    void daemon.stop(`signal ${signal}`);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    return await daemon.finished;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
