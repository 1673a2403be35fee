// Pass two of `planline import`: the validated file, written in order.
//
// A store with ordered import (OrderedImport: SQLite) takes one chunk of the file per commit, events of
// any streams in file order. The next chunks are read, parsed and handed over while one commits (the
// import session keeps them in order, and writes none after one that fails), so reading the file and
// writing the log overlap. Other stores get consecutive events of one stream per append, one append at
// a time.
import {
  ImportAbandonedError,
  ImportConflictError,
  supportsOrderedImport,
  type ImportedStoreEvent,
  type ImportSession,
} from '../events/ordered-import.js';
import { WrongExpectedRevisionError, type EventStore, type ExpectedRevision, type Revision } from '../events/store.js';
import { CliFailure } from './errors.js';
import { lineChunks, type LineChunk } from './import-chunks.js';

export interface ImportResult {
  imported: number;
  alreadyPresent: number;
  /** Commits it took (chunks, or appends). */
  commits: number;
}

interface NumberedEvent {
  line: number;
  /** Length of its line: what the stream-by-stream path bounds an append by. */
  chars: number;
  event: ImportedStoreEvent;
}

/** Chunks handed to an import session and not yet committed, at most. */
const ORDERED_CHUNKS_IN_FLIGHT = 2;

/** Largest append of the stream-by-stream path: consecutive events of one stream, up to this many or this much text. */
const MAX_APPEND_EVENTS = 500;
const MAX_APPEND_CHARS = 1_000_000;

export async function writeImport(
  store: EventStore,
  file: string,
  digests: readonly string[],
  progress: { update(done: number): void },
): Promise<ImportResult> {
  const counts: ImportResult = { imported: 0, alreadyPresent: 0, commits: 0 };
  const ordered = supportsOrderedImport(store);
  const writeChunk = ordered ? orderedWriter(store.openImport(), counts) : streamByStreamWriter(store, counts);
  const depth = ordered ? ORDERED_CHUNKS_IN_FLIGHT : 1;
  // Chunks being written, oldest first. A failure is kept (the first real one: chunks after it fail as
  // abandoned) and thrown once its chunk's turn comes.
  const writing: Promise<void>[] = [];
  let failure: { error: unknown } | null = null;
  let done = 0;
  const settleOldest = async () => {
    await writing.shift();
    if (failure !== null) throw failure.error;
  };
  try {
    let index = 0;
    for await (const chunk of lineChunks(file)) {
      const events = verifiedEvents(chunk, digests[index++]);
      if (events === undefined) {
        while (writing.length > 0) await settleOldest(); // what came before is written, and counted
        throw changedDuringImport(chunk, counts);
      }
      if (events.length === 0) continue; // a mebibyte of blank lines
      while (writing.length >= depth) await settleOldest();
      writing.push(
        writeChunk(events).then(
          () => progress.update((done += events.length)),
          (error: unknown) => {
            const earlierSaysWhy = failure !== null && !(failure.error instanceof ImportAbandonedError);
            if (!earlierSaysWhy) failure = { error };
          },
        ),
      );
    }
    while (writing.length > 0) await settleOldest();
    if (index !== digests.length) throw changedDuringImport(`it now ends after ${index} of ${digests.length} chunks`, counts);
  } finally {
    // Whatever happened, nothing is left writing behind the caller's back (the store closes next).
    await Promise.all(writing);
  }
  return counts;
}

/** The chunk's events, if its text is what pass one validated (so parsing alone is enough). */
function verifiedEvents(chunk: LineChunk, digest: string | undefined): NumberedEvent[] | undefined {
  if (chunk.digest !== digest) return undefined;
  return chunk.lines.map(({ number, text }) => {
    const { stream, revision, id, type, data, metadata } = JSON.parse(text) as ImportedStoreEvent;
    return { line: number, chars: text.length, event: { stream, revision, id, type, data, metadata } };
  });
}

function changedDuringImport(what: LineChunk | string, counts: ImportResult): CliFailure {
  const where =
    typeof what === 'string' ? what : `lines ${what.lines[0]?.number ?? 0}–${what.lines.at(-1)?.number ?? 0} are not the ones validated`;
  return new CliFailure(`the file changed during the import (${where}); ${counts.imported} events were imported before it; run the import again to finish`);
}

type ChunkWriter = (events: readonly NumberedEvent[]) => Promise<void>;

function orderedWriter(session: ImportSession, counts: ImportResult): ChunkWriter {
  return async (events) => {
    try {
      // Called while earlier chunks may still be committing: write() serializes the chunk right away.
      const result = await session.write(events.map(({ event }) => event));
      counts.imported += result.imported;
      counts.alreadyPresent += result.alreadyPresent;
      counts.commits += 1;
    } catch (error) {
      if (error instanceof ImportAbandonedError) throw error; // an earlier chunk's failure says why
      const at = error instanceof ImportConflictError ? events[error.index] : events[0];
      throw new CliFailure(describeWriteFailure(error, at!, counts.imported));
    }
  };
}

/**
 * For stores without ordered import: consecutive events of one stream go in one append, and for each
 * stream the import tracks how far the store already goes (read once), so a run splits into events
 * already there (re-appended with their ids, which the store checks and answers without writing) and
 * new ones.
 */
function streamByStreamWriter(store: EventStore, counts: ImportResult): ChunkWriter {
  const heads = new Map<string, Revision>();

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
      await store.append(stream, events.map(({ event: { id, type, data, metadata } }) => ({ id, type, data, metadata })), expected);
    } catch (error) {
      throw new CliFailure(describeWriteFailure(error, first, counts.imported));
    }
    counts.commits += 1;
  }

  async function appendRun(run: readonly NumberedEvent[]): Promise<void> {
    const stream = run[0]!.event.stream;
    const head = await headOf(stream);
    const present = run.filter(({ event }) => event.revision <= head);
    const fresh = run.filter(({ event }) => event.revision > head);
    // Appending what is already there is not wasted: the store verifies the ids match, so importing a
    // different history into streams of the same names fails loudly instead of counting as "present".
    await append(present);
    counts.alreadyPresent += present.length;
    await append(fresh);
    counts.imported += fresh.length;
    const last = fresh.at(-1);
    if (last !== undefined) heads.set(stream, last.event.revision);
  }

  return async (events) => {
    let run: NumberedEvent[] = [];
    let runChars = 0;
    for (const numbered of events) {
      const full = run.length >= MAX_APPEND_EVENTS || runChars + numbered.chars > MAX_APPEND_CHARS;
      if (run.length > 0 && (run[0]!.event.stream !== numbered.event.stream || full)) {
        await appendRun(run);
        run = [];
        runChars = 0;
      }
      run.push(numbered);
      runChars += numbered.chars;
    }
    if (run.length > 0) await appendRun(run);
  };
}

function describeWriteFailure(error: unknown, at: NumberedEvent, importedSoFar: number): string {
  const where = `line ${at.line}: stream ${at.event.stream} revision ${at.event.revision}`;
  const after = `${importedSoFar} events were imported before it; fix the cause and run the import again to finish`;
  if (error instanceof WrongExpectedRevisionError) {
    return `${where}: the target store holds different events in this stream (its last revision is ${String(error.actual)}); ${after}`;
  }
  return `${where}: ${error instanceof Error ? error.message : String(error)}; ${after}`;
}
