// `planline import <file>`: append the events of an export to the configured store, in the export's
// global order, each at its revision, with the original event ids. The ids make it idempotent (events
// already there are recognised and not written again), so an interrupted import is finished by running
// it again, and importing the same file twice writes nothing the second time.
//
// Two passes over the file: every line is validated before the first write, so a file with one bad
// line changes nothing. The second pass writes the file in order, because the global order across
// streams is part of the history (a session's fsm_state at an event depends on which plan events came
// before it). A store that offers ordered import (SQLite) takes a chunk of thousands of events of any
// streams per commit; any other store gets the events one stream run at a time (import-write.ts).
// Both passes cut the file into the same chunks (import-chunks.ts): the second writes a chunk only if
// its text is the one the first validated.
import { access } from 'node:fs/promises';
import { toDomainEvent, validateEvent } from '../events/catalog.js';
import type { Revision } from '../events/store.js';
import { expectPositionals, parseCommandArgs } from './args.js';
import { CliFailure } from './errors.js';
import { lineChunks } from './import-chunks.js';
import { writeImport } from './import-write.js';
import { EXIT, type CliCommand } from './io.js';
import { parseExportLine, type ImportedEvent } from './jsonl.js';
import { progressReporter, ratePerSecond } from './progress.js';
import { withEventStore } from './store.js';

const NAME = 'import';
/** Invalid lines listed in the error; the rest are counted. */
const MAX_LISTED_PROBLEMS = 20;

export const importCommand: CliCommand = {
  name: NAME,
  synopsis: 'import <file>',
  summary: 'append the events of an export (ids kept: importing twice writes nothing the second time)',
  details: [
    '<file>  JSON Lines written by `planline export`; every line is validated before anything is written',
  ],
  async run(args, io) {
    const { positionals } = parseCommandArgs(NAME, args, {});
    const [file] = expectPositionals(NAME, positionals, ['file']) as [string];
    await assertReadable(file);
    const started = performance.now();
    const checked = await validateFile(file, progressReporter(io.err, 'import: validated'));
    io.err(`${file}: ${checked.events} valid events of ${checked.streams} streams; importing`);
    const result = await withEventStore(io, (store) => writeImport(store, file, checked.digests, progressReporter(io.err, 'import: written')));
    const seconds = (performance.now() - started) / 1_000;
    io.err(
      `imported ${result.imported}, already present ${result.alreadyPresent} ` +
        `(${result.commits} commits in ${seconds.toFixed(1)} s, ${ratePerSecond(result.imported + result.alreadyPresent, seconds * 1_000)} events/s)`,
    );
    return EXIT.ok;
  },
};

async function assertReadable(file: string): Promise<void> {
  try {
    await access(file);
  } catch (error) {
    throw new CliFailure(`cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Pass one: every line well-formed, and every stream's revisions 0, 1, 2, … in file order (what the
 * writes of pass two rely on). Throws a CliFailure naming the bad lines; writes nothing. Returns the
 * digest of every chunk, for pass two to check.
 */
async function validateFile(
  file: string,
  progress: { update(done: number): void },
): Promise<{ events: number; streams: number; digests: string[] }> {
  const nextRevision = new Map<string, Revision>();
  const malformed = problemList();
  const outOfOrder = problemList();
  const digests: string[] = [];
  let events = 0;
  for await (const chunk of lineChunks(file)) {
    digests.push(chunk.digest);
    for (const { number, text } of chunk.lines) {
      const parsed = parseExportLine(text);
      if (!parsed.ok) {
        malformed.add(number, parsed.problem);
        continue;
      }
      const order = orderProblem(parsed.event, nextRevision);
      const content = domainProblem(parsed.event);
      if (content !== undefined) malformed.add(number, content);
      else if (order !== undefined) outOfOrder.add(number, order);
      else events += 1;
    }
    progress.update(events);
  }
  // A malformed line also leaves a hole in its stream's revisions: report only the malformed lines
  // then, rather than a misleading gap in every stream they belonged to.
  const problems = malformed.count > 0 ? malformed : outOfOrder;
  if (problems.count > 0) {
    throw new CliFailure(
      [`${file}: ${problems.count} invalid line${problems.count === 1 ? '' : 's'}; nothing was imported`, ...problems.listed()].join('\n'),
    );
  }
  return { events, streams: nextRevision.size, digests };
}

/**
 * Events are immutable once appended, so a Planline event whose data does not match its schema (a
 * hand-edited file) would poison the log for good: check it as the deciders do before writing.
 * Types this version does not know (other applications', newer ones) are carried over as they are.
 */
function domainProblem(event: ImportedEvent): string | undefined {
  try {
    const domainEvent = toDomainEvent(event);
    if (domainEvent !== undefined) validateEvent(domainEvent);
    return undefined;
  } catch (error) {
    return `invalid ${event.type} data: ${(error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ')}`;
  }
}

/** Whether this event continues its stream; after a gap, checking resumes from the event, so one gap is one problem. */
function orderProblem(event: ImportedEvent, nextRevision: Map<string, Revision>): string | undefined {
  const expected = nextRevision.get(event.stream) ?? 0;
  nextRevision.set(event.stream, event.revision + 1);
  if (event.revision === expected) return undefined;
  return expected === 0
    ? `stream ${event.stream} starts at revision ${event.revision}; an import needs each stream from revision 0`
    : `stream ${event.stream} revision ${event.revision} follows revision ${expected - 1}; expected ${expected}`;
}

/** Problems by line: the first few listed, the rest only counted (enough to see the pattern, not a flood). */
function problemList() {
  const listed: string[] = [];
  let count = 0;
  return {
    get count() {
      return count;
    },
    add(line: number, problem: string) {
      count += 1;
      if (listed.length < MAX_LISTED_PROBLEMS) listed.push(`  line ${line}: ${problem}`);
    },
    listed: () => (count > listed.length ? [...listed, `  … and ${count - listed.length} more`] : listed),
  };
}
