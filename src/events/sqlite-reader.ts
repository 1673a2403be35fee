// The SQLite event log's schema, its opening on the main thread, and the main thread's read-only
// connection: WAL readers never wait for the writer, and a small read (loading a stream for a command)
// costs less here than a round trip to a worker that may be in the middle of a commit.
import Database from 'better-sqlite3';
import type { Synchronous } from './sqlite-protocol.js';
import { EventStoreUnavailableError, type EventMetadata, type Position, type Revision, type StoredEvent } from './store.js';

/** The durability settings SQLite reports it is actually using (read back, not assumed). */
export interface SqliteDurability {
  /** 'wal' for a file; ':memory:' databases report 'memory'. */
  journalMode: string;
  synchronous: 'off' | 'normal' | 'full' | 'extra';
}

export const SCHEMA = `
  CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    stream   TEXT    NOT NULL,
    revision INTEGER NOT NULL,
    id       TEXT    NOT NULL,
    type     TEXT    NOT NULL,
    data     TEXT    NOT NULL,
    metadata TEXT    NOT NULL,
    UNIQUE (stream, revision),
    UNIQUE (stream, id)
  );
  CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
`;

export interface PreparedDatabase {
  db: Database.Database;
  durability: SqliteDurability;
  logId: string;
}

/**
 * Create the file's schema and log id and read back the durability SQLite will use. A ':memory:'
 * database opened here is thrown away (the worker's is the one that counts), but it reports the same
 * settings the worker's will.
 */
export function prepareDatabase(path: string, synchronous: Synchronous, busyTimeoutMs: number, logIdCandidate: string): PreparedDatabase {
  let db: Database.Database | undefined;
  try {
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous.toUpperCase()}`);
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    db.exec(SCHEMA);
    // INSERT OR IGNORE: two processes opening a new file at once agree on whichever id got there first.
    db.prepare(`INSERT OR IGNORE INTO meta (key, value) VALUES ('log_id', ?)`).run(logIdCandidate);
    const logId = String(db.prepare(`SELECT value FROM meta WHERE key = 'log_id'`).pluck().get());
    const level = (['off', 'normal', 'full', 'extra'] as const)[Number(db.pragma('synchronous', { simple: true }))];
    if (level === undefined) throw new Error('unexpected synchronous setting');
    return { db, logId, durability: { journalMode: String(db.pragma('journal_mode', { simple: true })), synchronous: level } };
  } catch (error) {
    db?.close();
    throw new EventStoreUnavailableError(`cannot open event store ${path}: ${describe(error)}`, { cause: error });
  }
}

/** Columns as selected by every read, in this order (raw mode: arrays are cheaper than objects). */
type EventRow = [position: number, stream: string, revision: number, id: string, type: string, data: string, metadata: string];

/** Reads on the main thread's own connection. */
export interface Reader {
  readStream(stream: string, forwards: boolean, from: Revision, limit: number): StoredEvent[];
  readAll(after: Position, limit: number): StoredEvent[];
  headPosition(): Position;
  close(): void;
}

export function createReader(db: Database.Database): Reader {
  db.pragma('query_only = ON'); // this connection never writes: the worker's is the only writer
  const selectColumns = 'SELECT position, stream, revision, id, type, data, metadata FROM events';
  const statements = {
    forwards: db.prepare<[string, number, number], EventRow>(`${selectColumns} WHERE stream = ? AND revision >= ? ORDER BY revision ASC LIMIT ?`).raw(),
    backwards: db.prepare<[string, number, number], EventRow>(`${selectColumns} WHERE stream = ? AND revision <= ? ORDER BY revision DESC LIMIT ?`).raw(),
    allAfter: db.prepare<[number, number], EventRow>(`${selectColumns} WHERE position > ? ORDER BY position LIMIT ?`).raw(),
    headPosition: db.prepare<[], number | null>('SELECT max(position) FROM events').pluck(),
  };
  const reading = <T>(read: () => T): T => {
    try {
      return read();
    } catch (error) {
      throw new EventStoreUnavailableError(`read failed: ${describe(error)}`, { cause: error });
    }
  };
  return {
    readStream: (stream, forwards, from, limit) =>
      reading(() => (forwards ? statements.forwards : statements.backwards).all(stream, from, limit).map(toStoredEvent)),
    readAll: (after, limit) => reading(() => statements.allAfter.all(after, limit).map(toStoredEvent)),
    headPosition: () => reading(() => statements.headPosition.get() ?? 0),
    close: () => db.close(),
  };
}

function toStoredEvent(row: EventRow): StoredEvent {
  const [position, stream, revision, id, type, data, metadata] = row;
  return {
    position,
    stream,
    revision,
    id,
    type,
    data: JSON.parse(data) as Record<string, unknown>,
    metadata: JSON.parse(metadata) as EventMetadata,
  };
}

/** A worker's answer to a read: the JSON text of a StoredEvent[] (one JSON.parse per batch). */
export function parseEvents(json: unknown): StoredEvent[] {
  try {
    return JSON.parse(json as string) as StoredEvent[];
  } catch (error) {
    throw new EventStoreUnavailableError(`read failed: ${describe(error)}`, { cause: error });
  }
}

export function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  // An error thrown in the worker may arrive as a plain object (its class does not cross threads).
  const { message, code } = typeof error === 'object' && error !== null ? (error as { message?: unknown; code?: unknown }) : {};
  if (typeof message === 'string') return message;
  return typeof code === 'string' ? code : String(error);
}
