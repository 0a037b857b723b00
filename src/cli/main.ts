#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';
import { readFileSync } from 'node:fs';
import { runControlCommand } from './control-commands.js';
import { parseReplayArgs, REPLAY_HELP } from './replay-args.js';
import { runReplay } from './replay.js';
import { parseRunArgs, RUN_HELP } from './run-args.js';
import { runDaemon } from './run.js';
import { MAIN_HELP, UsageError } from './usage.js';

// contid's live set is small (a process table, events in flight) while it
// allocates fast; V8's default lets the heap grow to several times the live
// set between full collections. The daemon runs for months: a growth of 30%
// keeps its peak memory near its live set, for little CPU. A replay is a
// batch job that ends: with labels, its process table keeps the old
// generation just above the size where V8 starts marking, and at 30% it
// ran a full collection every few megabytes; 100% halves their number for
// about 5 MB more peak memory (bench/README.md).
setFlagsFromString(`--heap-growing-percent=${process.argv[2] === 'replay' ? 100 : 30}`);
setFlagsFromString('--max-semi-space-size=8');

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
      case 'oci-hook':
        return await runControlCommand(verb, rest, io);
      case 'run': {
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
      process.stderr.write(`contid: ${err.message}\nRun "contid --help" for usage.\n`);
      return 2;
    }
    throw err;
  }
}

process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  // A closed pipe (| head) ends the output, not the program with a stack trace.
  if (err.code !== 'EPIPE') throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`contid: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
