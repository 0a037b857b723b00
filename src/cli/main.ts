#!/usr/bin/env -S node --max-semi-space-size=4
import { setFlagsFromString } from 'node:v8';
import { readFileSync } from 'node:fs';
import { MAIN_HELP, UsageError } from './usage.js';
import { systemReason } from './errors.js';

// Heap sizing. contid's live set is small (a process table, events in
// flight) while it allocates fast, and short-lived garbage is most of it.
//
// The young generation's size is fixed when the heap is set up, so it is
// given on the command line (the line above; `node --max-semi-space-size=4
// dist/src/cli/main.js` does the same). V8's default lets it grow to 32 MB,
// and V8 starts marking the old generation for a full collection once the
// room left there is less than the young generation's: with labels, the
// process table's few megabytes then kept a full collection running every
// few megabytes promoted. 4 MB semi-spaces cost plain replay nothing
// measurable and labelled replay about 9% less CPU and 30 MB less peak
// memory (bench/README.md).
//
// The old generation's growth between full collections can be set at run
// time. The daemon runs for months: a growth of 30% keeps its peak memory
// near its live set, for little CPU. A replay is a batch job that ends:
// 200% (at most three times the live set) brings a labelled replay of the
// benchmark log from 8 full collections to 4, for 12 MB more peak memory.
setFlagsFromString(`--heap-growing-percent=${process.argv[2] === 'replay' ? 200 : 30}`);

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
  try {
    switch (verb) {
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(MAIN_HELP + '\n');
        return verb === undefined ? 2 : 0;
      case '-V':
      case '--version':
        process.stdout.write(`contid ${version()}\n`);
        return 0;
      case 'replay': {
        const { parseReplayArgs, REPLAY_HELP } = await import('./replay-args.js');
        const { runReplay } = await import('./replay.js');
        const args = parseReplayArgs(rest);
        if (args.help) {
          process.stdout.write(REPLAY_HELP + '\n');
          return 0;
        }
        return await runReplay(args, io);
      }
      case 'set':
      case 'get':
      case 'grant':
      case 'status':
      case 'oci-hook': {
        const { runControlCommand } = await import('./control-commands.js');
        return await runControlCommand(verb, rest, io);
      }
      case 'search':
      case 'ps':
      case 'report':
      case 'store': {
        // Loaded on demand: the store's modules (and SQLite) only for these commands.
        const { runStoreCommand } = await import('./store-commands.js');
        return await runStoreCommand(verb, rest, io);
      }
      case 'run': {
        const { parseRunArgs, RUN_HELP } = await import('./run-args.js');
        const { runDaemon } = await import('./run.js');
        const args = parseRunArgs(rest);
        if (args.help) {
          process.stdout.write(RUN_HELP + '\n');
          return 0;
        }
        return await runDaemon(args, io);
      }
      default:
        throw new UsageError(`Unknown command "${verb}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      // Name the command, so that the hint leads to the right help.
      const command = verb !== undefined && COMMANDS.has(verb) ? `contid ${verb}` : 'contid';
      process.stderr.write(`${command}: ${err.message}\nRun "${command} --help" for usage.\n`);
      return 2;
    }
    throw err;
  }
}

const COMMANDS: ReadonlySet<string> = new Set([
  'replay',
  'run',
  'set',
  'get',
  'grant',
  'status',
  'oci-hook',
  'search',
  'ps',
  'report',
  'store',
]);

/**
 * The first failed write to stdout. A closed pipe (| head) ends the output
 * quietly; any other error (a full disk) fails the command, reported once:
 * by the command itself when it watches its output (replay), else here.
 */
let stdoutError: NodeJS.ErrnoException | null = null;
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  stdoutError ??= err;
});

main(process.argv.slice(2)).then(
  (code) => {
    const err: NodeJS.ErrnoException | null = stdoutError;
    if (code === 0 && err !== null && err.code !== 'EPIPE') {
      process.stderr.write(`contid: Cannot write standard output: ${systemReason(err)}\n`);
      code = 1;
    }
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`contid: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
