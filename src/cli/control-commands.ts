/**
 * The verbs that talk to a running daemon, for src/cli/main.ts:
 * `set`, `get`, `grant`, `status` and `oci-hook`.
 */
import type { Readable, Writable } from 'node:stream';
import {
  GET_HELP,
  GRANT_HELP,
  parsePidArgs,
  parseSetArgs,
  parseStatusArgs,
  SET_HELP,
  STATUS_HELP,
} from './control-args.js';
import { runGet, runGrant, runSet, runStatus } from './control.js';
import { OCI_HOOK_HELP, parseOciHookArgs, runOciHook } from './oci-hook.js';

/** The verbs {@link runControlCommand} serves. */
export type ControlVerb = 'set' | 'get' | 'grant' | 'status' | 'oci-hook';

/**
 * Runs one control verb; returns the exit code.
 *
 * @throws {UsageError} on bad arguments (exit code 2, printed by main).
 */
export async function runControlCommand(
  verb: ControlVerb,
  argv: readonly string[],
  io: { readonly stdin: Readable; readonly stdout: Writable; readonly stderr: Writable },
): Promise<number> {
  const help = (text: string): number => {
    io.stdout.write(`${text}\n`);
    return 0;
  };
  switch (verb) {
    case 'set': {
      const args = parseSetArgs(argv);
      return args.help ? help(SET_HELP) : runSet(args, io);
    }
    case 'get': {
      const args = parsePidArgs(argv);
      return args.help ? help(GET_HELP) : runGet(args, io);
    }
    case 'grant': {
      const args = parsePidArgs(argv);
      return args.help ? help(GRANT_HELP) : runGrant(args, io);
    }
    case 'status': {
      const args = parseStatusArgs(argv);
      return args.help ? help(STATUS_HELP) : runStatus(args, io);
    }
    case 'oci-hook': {
      const args = parseOciHookArgs(argv);
      return args.help ? help(OCI_HOOK_HELP) : runOciHook(args, io);
    }
  }
}
