// Messages exchanged between the SQLite event store (main thread) and its worker thread
// (sqlite-worker.mjs). The worker is plain JavaScript: keep these shapes in step with it.
import type { ExpectedRevision, Position, Revision } from './store.js';

export type Synchronous = 'full' | 'normal' | 'off';

/** What group commit has done so far: how many transactions carried how many appends. */
export interface CommitStats {
  transactions: number;
  /** Appends handled in those transactions (written, idempotent replays and rejected ones). */
  appends: number;
  /** Events written. */
  events: number;
  /** Most appends handled by one transaction. */
  largestGroup: number;
}

export interface WorkerData {
  path: string;
  synchronous: Synchronous;
  busyTimeoutMs: number;
  headCacheSize: number;
  schema: string;
  logIdCandidate: string;
  /**
   * A file must already exist (the main thread created it): a worker restarted after the file vanished
   * must fail, not start a new empty log under the same name.
   */
  fileMustExist: boolean;
}

/** One stream's events, serialized on the main thread: a caller mutating its objects later changes nothing. */
export interface AppendPart {
  stream: string;
  expected: ExpectedRevision;
  ids: string[];
  types: string[];
  data: string[];
  metadata: string[];
}

/** One append: a single stream, or several written as one (appendMulti). */
export interface AppendRequest {
  op: 'append';
  id: number;
  parts: AppendPart[];
}

/**
 * A chunk of an ordered import: events of any streams, written in the order given, each at the
 * revision it names (or recognised as already there), all or nothing.
 */
export interface ImportRequest {
  op: 'import';
  id: number;
  /** The import session, and this chunk's place in it: the worker writes chunk n only after chunk n - 1. */
  session: string;
  seq: number;
  streams: string[];
  revisions: Revision[];
  ids: string[];
  types: string[];
  data: string[];
  metadata: string[];
}

export type WorkerRequest =
  | AppendRequest
  | ImportRequest
  | { op: 'readStream'; id: number; stream: string; forwards: boolean; from: number; limit: number }
  | { op: 'readAll'; id: number; after: Position; limit: number }
  | { op: 'head'; id: number };

export type WorkerFailure =
  | {
      kind: 'conflict';
      stream: string;
      expected: ExpectedRevision;
      actual: Revision | 'no_stream';
      /** Import only: the event of the chunk that conflicted. */
      index?: number;
    }
  | { kind: 'unavailable'; message: string; code?: string }
  /** An import chunk not written because an earlier chunk of its session was not. */
  | { kind: 'abandoned'; message: string };

/**
 * `ok` is a MultiAppendResult (append), an ImportChunkWire (import), the JSON text of a StoredEvent[]
 * (reads) or a Position (head). `wrote` marks a result that wrote events (not an idempotent replay).
 */
export type WorkerResult = { id: number; ok: unknown; wrote?: boolean; error?: undefined } | { id: number; error: WorkerFailure };

export interface ImportChunkWire {
  imported: number;
  present: number;
  /** Position of the last event this chunk wrote; 0 when it wrote none. */
  position: Position;
}

export type FromWorker =
  | { type: 'ready'; logId: string; journalMode: string; synchronous: string }
  /** `head`: the last position written by this group, present when it wrote anything. */
  | { type: 'results'; results: WorkerResult[]; stats?: CommitStats; committed?: boolean; head?: Position }
  | { type: 'startFailed'; message: string; code?: string }
  | { type: 'closed' };
