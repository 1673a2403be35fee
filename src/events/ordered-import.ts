// An optional capability of an event store: importing another log's events in their global order, a
// large chunk per commit. `planline import` uses it when the store offers it (the SQLite adapter does)
// and falls back to ordinary appends otherwise.
import { WrongExpectedRevisionError, type EventStore, type ExpectedRevision, type NewEvent, type Position, type Revision } from './store.js';

/** An event as it stands in the source log: its stream and its revision there. */
export interface ImportedStoreEvent extends NewEvent {
  stream: string;
  revision: Revision;
}

export interface ImportChunkResult {
  /** Events written by this chunk. */
  imported: number;
  /** Events already in the store at their revision with the same id (an earlier import): not written again. */
  alreadyPresent: number;
  /** Position of the last event written; 0 when the chunk wrote nothing. */
  position: Position;
}

export interface OrderedImport {
  /** Start an import: a sequence of chunks, written in the order they are given. */
  openImport(): ImportSession;
}

export interface ImportSession {
  /**
   * Write `events` in the order given, as one commit: each event goes to its stream at exactly its
   * revision (the stream must end at revision - 1), or is recognised as already there (same id at that
   * revision) and skipped. New events take consecutive positions in the order given, so importing an
   * export chunk by chunk reproduces its global order. Anything else is an ImportConflictError naming
   * the event, and nothing of the chunk is written.
   *
   * Chunks may be handed over before earlier ones have committed (to keep the store busy); they are
   * written in the order of the calls, and once one fails every later chunk of the session fails too,
   * without writing, so what the store holds is always a prefix of what was handed over.
   */
  write(events: readonly ImportedStoreEvent[]): Promise<ImportChunkResult>;
}

export function supportsOrderedImport(store: EventStore): store is EventStore & OrderedImport {
  return typeof (store as Partial<OrderedImport>).openImport === 'function';
}

/** A chunk of an import session that was not written because an earlier chunk of the session was not. */
export class ImportAbandonedError extends Error {
  override readonly name = 'ImportAbandonedError';
}

/** The store holds something else where an imported event should go. */
export class ImportConflictError extends WrongExpectedRevisionError {
  constructor(
    stream: string,
    expected: ExpectedRevision,
    actual: Revision | 'no_stream',
    /** Index in the chunk of the event that conflicted. */
    readonly index: number,
  ) {
    super(stream, expected, actual);
  }
}
