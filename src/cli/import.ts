// `planline import <file>`: append the events of an export to the configured store, each stream in
// order with explicit expected revisions and the original event ids. The ids make it idempotent (the
// store answers a replayed append without writing), so an interrupted import is finished by running it
// again, and importing the same file twice writes nothing the second time.
//
// Two passes over the file: every line is validated before the first append, so a file with one bad
// line changes nothing. Events are appended in file order (which is log order for an export), one
// append at a time: the global order across streams is part of the history (a session's fsm_state at
// an event depends on which plan events came before it), and concurrent appends would not keep it.
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { toDomainEvent, validateEvent } from '../events/catalog.js';
import { WrongExpectedRevisionError, type EventStore, type ExpectedRevision, type NewEvent, type Revision } from '../events/store.js';
import { expectPositionals, parseCommandArgs } from './args.js';
import { CliFailure } from './errors.js';
import { EXIT, type CliCommand, type CliIo } from './io.js';
import { parseExportLine, type ImportedEvent } from './jsonl.js';
import { progressReporter, ratePerSecond } from './progress.js';
import { withEventStore } from './store.js';

const NAME = 'import';
/** Invalid lines listed in the error; the rest are counted. */
const MAX_LISTED_PROBLEMS = 20;
/** Largest append: consecutive events of one stream go in one append, up to this many events or bytes. */
const MAX_BATCH_EVENTS = 500;
const MAX_BATCH_BYTES = 1_000_000;

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
    const checked = await validateFile(file);
    io.err(`${file}: ${checked.events} valid events of ${checked.streams} streams; importing`);
    const result = await withEventStore(io, (store) => importFile(store, file, io));
    io.err(
      `imported ${result.imported}, already present ${result.alreadyPresent} ` +
        `(${result.appends} appends in ${result.seconds.toFixed(1)} s, ${ratePerSecond(result.imported + result.alreadyPresent, result.seconds * 1_000)} events/s)`,
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

// ---------------------------------------------------------------------------------------------------
// Reading and validating.

interface NumberedEvent {
  line: number;
  event: ImportedEvent;
}

/** Non-blank lines of the file, each parsed, with its 1-based line number. */
async function* linesOf(file: string): AsyncGenerator<{ line: number; parsed: ReturnType<typeof parseExportLine> }> {
  const reader = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let line = 0;
  for await (const text of reader) {
    line += 1;
    if (text.trim() === '') continue;
    yield { line, parsed: parseExportLine(text) };
  }
}

/**
 * Pass one: every line well-formed, and every stream's revisions 0, 1, 2, … in file order (what the
 * expected revisions of pass two rely on). Throws a CliFailure naming the bad lines; writes nothing.
 */
async function validateFile(file: string): Promise<{ events: number; streams: number }> {
  const nextRevision = new Map<string, Revision>();
  const malformed = problemList();
  const outOfOrder = problemList();
  let events = 0;
  for await (const { line, parsed } of linesOf(file)) {
    if (!parsed.ok) {
      malformed.add(line, parsed.problem);
      continue;
    }
    const order = orderProblem(parsed.event, nextRevision);
    const content = domainProblem(parsed.event);
    if (content !== undefined) malformed.add(line, content);
    else if (order !== undefined) outOfOrder.add(line, order);
    else events += 1;
  }
  // A malformed line also leaves a hole in its stream's revisions: report only the malformed lines
  // then, rather than a misleading gap in every stream they belonged to.
  const problems = malformed.count > 0 ? malformed : outOfOrder;
  if (problems.count > 0) {
    throw new CliFailure(
      [`${file}: ${problems.count} invalid line${problems.count === 1 ? '' : 's'}; nothing was imported`, ...problems.listed()].join('\n'),
    );
  }
  return { events, streams: nextRevision.size };
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

// ---------------------------------------------------------------------------------------------------
// Appending.

interface ImportResult {
  imported: number;
  alreadyPresent: number;
  appends: number;
  seconds: number;
}

/** Pass two: consecutive events of one stream, batched, appended in file order. */
async function importFile(store: EventStore, file: string, io: CliIo): Promise<ImportResult> {
  const target = targetStore(store);
  const progress = progressReporter(io.err, 'import');
  let batch: NumberedEvent[] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    await target.appendBatch(batch);
    batch = [];
    batchBytes = 0;
    progress.update(target.counts.imported + target.counts.alreadyPresent);
  };
  for await (const { line, parsed } of linesOf(file)) {
    // Validated in pass one; a file changed in between is caught here before its bad line is used.
    if (!parsed.ok) throw new CliFailure(`line ${line}: ${parsed.problem} (the file changed during the import)`);
    const size = JSON.stringify(parsed.event.data).length;
    const sameStream = batch[0]?.event.stream === parsed.event.stream;
    if (!sameStream || batch.length >= MAX_BATCH_EVENTS || batchBytes + size > MAX_BATCH_BYTES) await flush();
    batch.push({ line, event: parsed.event });
    batchBytes += size;
  }
  await flush();
  return { ...target.counts, seconds: progress.elapsedSeconds() };
}

/**
 * The store as the import sees it: for each stream, how far it already goes (read once, then tracked),
 * so a batch splits into events already there (re-appended with their ids, which the store checks and
 * answers without writing) and new ones.
 */
function targetStore(store: EventStore) {
  const heads = new Map<string, Revision>();
  const counts = { imported: 0, alreadyPresent: 0, appends: 0 };

  async function headOf(stream: string): Promise<Revision> {
    let head = heads.get(stream);
    if (head === undefined) {
      const [last] = await store.readStream(stream, { direction: 'backwards', maxCount: 1 });
      head = last?.revision ?? -1;
      heads.set(stream, head);
    }
    return head;
  }

  async function append(events: readonly NumberedEvent[]): Promise<void> {
    const first = events[0];
    if (first === undefined) return;
    const { stream, revision } = first.event;
    const expected: ExpectedRevision = revision === 0 ? 'no_stream' : revision - 1;
    try {
      await store.append(stream, events.map(({ event }) => toNewEvent(event)), expected);
    } catch (error) {
      throw new CliFailure(describeAppendFailure(error, first, counts.imported));
    }
    counts.appends += 1;
  }

  return {
    counts,
    async appendBatch(batch: readonly NumberedEvent[]): Promise<void> {
      const stream = batch[0]?.event.stream;
      if (stream === undefined) return;
      const head = await headOf(stream);
      const present = batch.filter(({ event }) => event.revision <= head);
      const fresh = batch.filter(({ event }) => event.revision > head);
      // Appending what is already there is not wasted: the store verifies the ids match, so importing a
      // different history into streams of the same names fails loudly instead of counting as "present".
      await append(present);
      counts.alreadyPresent += present.length;
      await append(fresh);
      counts.imported += fresh.length;
      const last = fresh.at(-1);
      if (last !== undefined) heads.set(stream, last.event.revision);
    },
  };
}

function toNewEvent(event: ImportedEvent): NewEvent {
  return { id: event.id, type: event.type, data: event.data, metadata: event.metadata };
}

function describeAppendFailure(error: unknown, first: NumberedEvent, importedSoFar: number): string {
  const where = `line ${first.line}: stream ${first.event.stream} revision ${first.event.revision}`;
  const after = `${importedSoFar} events were imported before it; fix the cause and run the import again to finish`;
  if (error instanceof WrongExpectedRevisionError) {
    return `${where}: the target store holds different events in this stream (its last revision is ${String(error.actual)}); ${after}`;
  }
  return `${where}: ${error instanceof Error ? error.message : String(error)}; ${after}`;
}
