/**
 * The event store's commands: `contid search`, `ps`, `report` and `store
 * import|info|check|migrate`. main.ts loads this module only for these, and
 * it loads only the modules of the command given: a search starts in little
 * more than node's own start-up.
 */
import type { CliIo } from './replay.js';
import { STORE_EXIT } from './store-args.js';

/** The store commands main.ts hands over. */
export type StoreVerb = 'search' | 'ps' | 'report' | 'store';

function help(io: CliIo, text: string): number {
  io.stdout.write(text + '\n');
  return STORE_EXIT.ok;
}

/** Runs one of the store commands (argv after the verb). Returns the exit code. */
export async function runStoreCommand(verb: StoreVerb, argv: readonly string[], io: CliIo): Promise<number> {
  switch (verb) {
    case 'search': {
      const { parseSearchArgs, SEARCH_HELP } = await import('./search-args.js');
      const args = parseSearchArgs(argv);
      if (args.help) return help(io, SEARCH_HELP);
      const { runSearch } = await import('./search.js');
      return runSearch(args, io);
    }
    case 'ps': {
      const { parsePsArgs, PS_HELP } = await import('./ps-args.js');
      const args = parsePsArgs(argv);
      if (args.help) return help(io, PS_HELP);
      const { runPs } = await import('./ps.js');
      return runPs(args, io);
    }
    case 'report': {
      const { parseReportArgs, REPORT_HELP } = await import('./report-args.js');
      const args = parseReportArgs(argv);
      if (args.help) return help(io, REPORT_HELP);
      const { runReport } = await import('./report.js');
      return runReport(args, io);
    }
    case 'store': {
      const { parseStoreArgs, STORE_HELP } = await import('./store-args.js');
      const args = parseStoreArgs(argv);
      if (args.help) return help(io, STORE_HELP);
      const { runStore } = await import('./store.js');
      return runStore(args, io);
    }
  }
}
