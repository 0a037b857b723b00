/**
 * A log's labelled events, as the replay pipeline hands them to its output:
 * parser, assembler, labeller and hold stage, for tests that feed the event
 * store what `contid replay --store` will.
 */
import { EventAssembler } from '../../src/assemble/assembler.js';
import type { Keyring } from '../../src/marker/keyring.js';
import { RecordParser } from '../../src/parse/parser.js';
import { HoldStage } from '../../src/policy/hold.js';
import { Labeller, type LabelledEvent } from '../../src/policy/labeller.js';

/** Every event of `log`, labelled, in output order. */
export function labelledEvents(
  log: string | Buffer,
  options: { readonly keyring?: Keyring } = {},
): LabelledEvent[] {
  const labeller = new Labeller(options.keyring === undefined ? {} : { keyring: options.keyring });
  const hold = new HoldStage(labeller);
  const out: LabelledEvent[] = [];
  const assembler = new EventAssembler({
    onEvent: (e) => {
      out.push(...hold.push(labeller.process(e), []));
    },
  });
  const parser = new RecordParser({
    onRecord: (r) => {
      assembler.push(r);
    },
    onIssue: () => undefined,
  });
  parser.push(log);
  parser.end();
  assembler.end();
  out.push(...hold.end());
  return out;
}
