// The embedded event store: one SQLite file (better-sqlite3, WAL). Every append is synced before it is
// acknowledged, so throughput comes from GROUP COMMIT: appends that arrive while a commit is under way
// are written together in one transaction (one fsync), each still checked exactly against its stream's
// revision, including earlier appends of the same group.
//
// better-sqlite3 is synchronous, so the writing connection lives in a worker thread (sqlite-worker.mjs):
// the inserts and the fsync of each commit block that thread, not the event loop that serves HTTP. This
// side validates and serializes appends (JSON strings cross threads cheaply), sends every request of
// one event-loop turn in one message, and settles promises from the worker's answers: an append
// resolves only once the worker reports its transaction committed.
//
// Reads of a file use a second, read-only connection on this thread: WAL readers never wait for the
// writer, and a small read (loading a stream for a command) costs less here than a round trip to a
// worker that may be in the middle of a commit. A ':memory:' database exists only in the worker, which
// then answers reads too (as one JSON text per batch: one JSON.parse here).
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import {
  EventStoreUnavailableError,
  WrongExpectedRevisionError,
  type AppendResult,
  type BatchHandler,
  type EventStore,
  type EventMetadata,
  type ExpectedRevision,
  type MultiAppendResult,
  type NewEvent,
  type Position,
  type ReadAllOptions,
  type ReadStreamOptions,
  type Revision,
  type StoredEvent,
  type StreamAppend,
  type SubscribeOptions,
  type Subscription,
} from './store.js';

export interface SqliteEventStoreOptions {
  /**
   * SQLite `synchronous` pragma. 'full' (default) syncs the WAL at every commit, which is what makes an
   * acknowledged append durable across power loss. 'normal' keeps the file consistent but may lose the
   * last commits on power loss; 'off' is for throwaway data only.
   */
  synchronous?: 'full' | 'normal' | 'off';
  /** How often a caught-up subscription re-reads the file to see appends made by another process. */
  pollIntervalMs?: number;
  /** Wait this long for another process's write lock before an append fails as unavailable. */
  busyTimeoutMs?: number;
  /** Heads of this many streams are cached so an append does not query for its stream's revision. */
  headCacheSize?: number;
}

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

/** The durability settings SQLite reports it is actually using (read back, not assumed). */
export interface SqliteDurability {
  /** 'wal' for a file; ':memory:' databases report 'memory'. */
  journalMode: string;
  synchronous: 'off' | 'normal' | 'full' | 'extra';
}

export interface SqliteEventStore extends EventStore {
  /** The file this store writes (':memory:' for a throwaway store). */
  readonly path: string;
  readonly durability: SqliteDurability;
  commitStats(): CommitStats;
}

const DEFAULT_READ_ALL_PAGE = 1000;
const DEFAULT_SUBSCRIPTION_BATCH = 1000;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const SCHEMA = `
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

/** The worker entry: next to this module in src/, and in dist/ because `npm run build` copies it there. */
const WORKER_FILE = new URL('./sqlite-worker.mjs', import.meta.url);

// Messages exchanged with sqlite-worker.mjs. It is plain JavaScript: keep these shapes in step with it.

interface WorkerData {
  path: string;
  synchronous: NonNullable<SqliteEventStoreOptions['synchronous']>;
  busyTimeoutMs: number;
  headCacheSize: number;
  schema: string;
  logIdCandidate: string;
}

/** One stream's events, serialized here: a caller mutating its objects later changes nothing. */
interface AppendPart {
  stream: string;
  expected: ExpectedRevision;
  ids: string[];
  types: string[];
  data: string[];
  metadata: string[];
}

/** One append: a single stream, or several written as one (appendMulti). */
interface AppendRequest {
  op: 'append';
  id: number;
  parts: AppendPart[];
}

type WorkerRequest =
  | AppendRequest
  | { op: 'readStream'; id: number; stream: string; forwards: boolean; from: number; limit: number }
  | { op: 'readAll'; id: number; after: Position; limit: number }
  | { op: 'head'; id: number };

type WorkerFailure =
  | { kind: 'conflict'; stream: string; expected: ExpectedRevision; actual: Revision | 'no_stream' }
  | { kind: 'unavailable'; message: string; code?: string };

/** `ok` is a MultiAppendResult (append), the JSON text of a StoredEvent[] (reads) or a Position (head). */
type WorkerResult = { id: number; ok: unknown; error?: undefined } | { id: number; error: WorkerFailure };

type FromWorker =
  | { type: 'ready'; logId: string; journalMode: string; synchronous: string }
  | { type: 'results'; results: WorkerResult[]; stats?: CommitStats; committed?: boolean }
  | { type: 'closed' };

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/** The worker thread behind each store; only tests look (to make it crash). */
const workers = new WeakMap<SqliteEventStore, Worker>();

/** Tests only: the worker thread that owns `store`'s connection. */
export function workerThreadOf(store: SqliteEventStore): Worker | undefined {
  return workers.get(store);
}

export function openSqliteEventStore(path: string, options: SqliteEventStoreOptions = {}): SqliteEventStore {
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const synchronous = options.synchronous ?? 'full';
  const busyTimeoutMs = options.busyTimeoutMs ?? 5_000;
  const logIdCandidate = randomUUID();
  if (!existsSync(WORKER_FILE)) {
    throw new EventStoreUnavailableError(`${fileURLToPath(WORKER_FILE)} is missing (npm run build copies it next to sqlite-store.js)`);
  }
  // Open once here, synchronously, so a bad path fails this call (as it always has) and the durability
  // settings are known before it returns; the worker then opens its own connection to the same file.
  const prepared = prepareDatabase(path, synchronous, busyTimeoutMs, logIdCandidate);
  const durability = prepared.durability;
  // A file is shared: this connection stays open for reads (WAL readers never wait for the writer).
  // A private database (':memory:', '') exists only in the worker, which then serves reads too.
  const privateDatabase = path === ':memory:' || path === '';
  if (privateDatabase) prepared.db.close();
  const reader = privateDatabase ? null : createReader(prepared.db);
  const workerData: WorkerData = {
    path,
    synchronous,
    busyTimeoutMs,
    headCacheSize: options.headCacheSize ?? 100_000,
    schema: SCHEMA,
    logIdCandidate,
  };
  let worker: Worker;
  try {
    worker = new Worker(WORKER_FILE, { workerData });
  } catch (error) {
    reader?.close();
    throw new EventStoreUnavailableError(`cannot start the event store worker: ${describe(error)}`, { cause: error });
  }
  // Like an open database file, an idle store must not keep the process alive; requests in flight do.
  worker.unref();

  let nextRequestId = 1;
  const pending = new Map<number, Pending>();
  /** Requests made during this turn of the event loop; they cross to the worker in one message. */
  let outbox: WorkerRequest[] = [];
  let postScheduled = false;
  let closing = false;
  let closed = false;
  let closeDone: Promise<void> | null = null;
  let exitExpected = false;
  let failure: EventStoreUnavailableError | null = null;
  let stats: CommitStats = { transactions: 0, appends: 0, events: 0, largestGroup: 0 };
  const idleWaiters: (() => void)[] = [];

  let resolveReady!: (logId: string) => void;
  let rejectReady!: (error: Error) => void;
  const ready = new Promise<string>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => undefined); // observed by logId(); a failure also reaches every request

  // Subscriptions wait on this; every commit bumps `commits` and wakes them.
  let commits = 0;
  const commitWaiters = new Set<() => void>();
  const subscriptions = new Set<Subscription>();

  worker.on('message', (message: FromWorker) => {
    switch (message.type) {
      case 'results':
        if (message.stats !== undefined) stats = message.stats;
        for (const result of message.results) settle(result);
        if (message.committed) notifyCommitted();
        if (pending.size === 0) becameIdle();
        return;
      case 'ready':
        if (message.journalMode !== durability.journalMode || message.synchronous !== durability.synchronous) {
          fail(`reports ${message.journalMode}/${message.synchronous}, expected ${durability.journalMode}/${durability.synchronous}`);
        } else {
          resolveReady(message.logId);
        }
        return;
      case 'closed':
        return; // 'exit' follows
    }
  });
  worker.on('error', (error) => fail(`crashed: ${describe(error)}`, error));
  worker.on('messageerror', (error) => fail(`sent a message that cannot be read: ${describe(error)}`, error));
  worker.on('exit', (code) => {
    if (!exitExpected) fail(`exited with code ${code}`);
  });

  function settle(result: WorkerResult): void {
    const waiting = pending.get(result.id);
    if (waiting === undefined) return;
    pending.delete(result.id);
    if (result.error === undefined) waiting.resolve(result.ok);
    else waiting.reject(toError(result.error));
  }

  function becameIdle(): void {
    worker.unref();
    for (const wake of idleWaiters.splice(0)) wake();
  }

  /** The worker is gone or unusable: everything waiting on it fails now, and so does everything after. */
  function fail(reason: string, cause?: unknown): void {
    if (failure !== null) return;
    failure = new EventStoreUnavailableError(`event store ${path}: worker ${reason}`, { cause });
    rejectReady(failure);
    outbox = [];
    const waiting = [...pending.values()];
    pending.clear();
    for (const request of waiting) request.reject(failure);
    becameIdle();
    void worker.terminate();
    notifyCommitted(); // caught-up subscriptions look again, fail to read, and end with this error
  }

  function request(message: WorkerRequest): Promise<unknown> {
    if (failure !== null) return Promise.reject(failure);
    message.id = nextRequestId++;
    return new Promise<unknown>((resolve, reject) => {
      if (pending.size === 0) worker.ref();
      pending.set(message.id, { resolve, reject });
      outbox.push(message);
      if (!postScheduled) {
        postScheduled = true;
        // After the rest of this turn: every append made meanwhile joins the message, and the group.
        setImmediate(postOutbox);
      }
    });
  }

  function postOutbox(): void {
    postScheduled = false;
    const requests = outbox;
    outbox = [];
    if (requests.length === 0 || failure !== null) return;
    try {
      worker.postMessage({ type: 'requests', requests });
    } catch (error) {
      // Something in a request cannot be cloned (a read given a stream name that is not a string).
      const unsent = new EventStoreUnavailableError(`cannot send to the event store worker: ${describe(error)}`, { cause: error });
      for (const { id } of requests) pending.get(id)?.reject(unsent);
      for (const { id } of requests) pending.delete(id);
      if (pending.size === 0) becameIdle();
    }
  }

  function whenIdle(): Promise<void> {
    if (pending.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => idleWaiters.push(resolve));
  }

  function notifyCommitted(): void {
    commits += 1;
    const waiters = [...commitWaiters];
    commitWaiters.clear();
    for (const wake of waiters) wake();
  }

  function appendParts(appends: readonly StreamAppend[]): Promise<MultiAppendResult> {
    if (closing) return Promise.reject(new EventStoreUnavailableError('event store is closed'));
    let message: AppendRequest;
    try {
      if (!Array.isArray(appends as unknown) || appends.length === 0) throw new RangeError('appendMulti needs at least one stream');
      const streams = new Set<string>();
      const ids = new Set<string>();
      for (const { stream, events, expected } of appends) {
        validateAppend(stream, events, expected);
        if (streams.has(stream)) throw new TypeError(`stream ${stream} appears twice in one append`);
        streams.add(stream);
        for (const event of events) {
          const id = event.id.toLowerCase();
          if (ids.has(id)) throw new TypeError(`event id ${event.id} appears twice in one append`);
          ids.add(id);
        }
      }
      // Serialize now: a caller mutating its objects after append() must not change what is written,
      // and data that cannot be serialized fails this append alone.
      message = {
        op: 'append',
        id: 0,
        parts: appends.map(({ stream, events, expected }) => ({
          stream,
          expected,
          ids: events.map((e) => e.id.toLowerCase()),
          types: events.map((e) => e.type),
          data: events.map((e) => JSON.stringify(e.data)),
          metadata: events.map((e) => JSON.stringify(e.metadata)),
        })),
      };
    } catch (error) {
      return Promise.reject(error);
    }
    return request(message) as Promise<MultiAppendResult>;
  }

  function append(stream: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    return appendParts([{ stream, events, expected }]).then((result) => result.streams[0]!);
  }

  function readEvents(message: WorkerRequest): Promise<StoredEvent[]> {
    return request(message).then(parseEvents);
  }

  function readAllEvents(after: Position, limit: number): Promise<StoredEvent[]> {
    if (failure !== null) return Promise.reject(failure);
    if (reader !== null) {
      try {
        return Promise.resolve(reader.readAll(after, limit));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return readEvents({ op: 'readAll', id: 0, after, limit });
  }

  function whenOpen<T>(read: () => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(new EventStoreUnavailableError('event store is closed'));
    if (failure !== null) return Promise.reject(failure);
    try {
      return read();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  function readStream(stream: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    return whenOpen(() => {
      const forwards = (options.direction ?? 'forwards') === 'forwards';
      if (options.maxCount !== undefined) assertCount(options.maxCount, 'maxCount');
      if (options.fromRevision !== undefined) assertCount(options.fromRevision, 'fromRevision');
      const limit = options.maxCount ?? -1; // SQLite: a negative LIMIT means no limit
      if (limit === 0) return Promise.resolve([]);
      const from = options.fromRevision ?? (forwards ? 0 : Number.MAX_SAFE_INTEGER);
      if (reader !== null) return Promise.resolve(reader.readStream(stream, forwards, from, limit));
      return readEvents({ op: 'readStream', id: 0, stream, forwards, from, limit });
    });
  }

  function readAll(options: ReadAllOptions = {}): Promise<StoredEvent[]> {
    return whenOpen(() => {
      const after = options.after ?? 0;
      const maxCount = options.maxCount ?? DEFAULT_READ_ALL_PAGE;
      assertCount(after, 'after');
      assertCount(maxCount, 'maxCount');
      return readAllEvents(after, maxCount);
    });
  }

  function subscribeToAll(options: SubscribeOptions, handler: BatchHandler): Subscription {
    const maxBatch = options.maxBatch ?? DEFAULT_SUBSCRIPTION_BATCH;
    assertCount(options.after ?? 0, 'after');
    if (maxBatch < 1) throw new RangeError('maxBatch must be at least 1');
    let stopped = closing;
    let wakeEarly: (() => void) | null = null;

    // Delivery always re-reads the file strictly after the last delivered position. Notifications only
    // say "look again"; they never carry events. That is why the switch from catch-up to live can
    // neither skip nor repeat an event, whichever process wrote it.
    async function deliver(): Promise<void> {
      // Start on a later turn: the first batch must not reach the handler before subscribeToAll returns.
      await new Promise<void>((resolve) => setImmediate(resolve));
      let last = options.after ?? 0;
      while (!stopped) {
        const seen = commits;
        // The worker answers in order: if this read missed a commit, that commit's notification arrives
        // after the answer and bumps `commits`, so the check below cannot sleep through it.
        const batch = await readAllEvents(last, maxBatch);
        if (stopped) break; // closed while the read was in flight: deliver nothing more
        if (batch.length > 0) {
          await handler(batch);
          last = (batch[batch.length - 1] as StoredEvent).position;
          continue;
        }
        if (seen !== commits) continue; // a commit landed while we read: look again before sleeping
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            commitWaiters.delete(wake);
            wakeEarly = null;
            resolve();
          };
          const timer = setTimeout(wake, pollIntervalMs);
          commitWaiters.add(wake);
          wakeEarly = wake;
        });
      }
    }

    const done = deliver();
    // `done` is the failure channel; mark it observed so a subscription nobody awaits cannot crash the
    // process with an unhandled rejection. Whoever awaits `done` still sees the error.
    done.catch(() => undefined);
    const subscription: Subscription = {
      done,
      async close() {
        stopped = true;
        wakeEarly?.();
        subscriptions.delete(subscription);
        await done.catch(() => undefined);
      },
    };
    subscriptions.add(subscription);
    void done.finally(() => subscriptions.delete(subscription)).catch(() => undefined);
    return subscription;
  }

  function close(): Promise<void> {
    closeDone ??= (async () => {
      // Subscriptions first: their handlers may still append, and those appends must land.
      await Promise.all([...subscriptions].map((s) => s.close()));
      closing = true;
      await whenIdle(); // every append made so far has committed (or failed)
      closed = true;
      // The reader first: the worker's connection, closing last, checkpoints the WAL into the file.
      reader?.close();
      if (failure !== null) return; // the worker is already gone
      exitExpected = true;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.ref();
      worker.postMessage({ type: 'close' });
      await exited;
    })();
    return closeDone;
  }

  const store: SqliteEventStore = {
    path,
    durability,
    // One SQLite transaction holds every stream of an appendMulti.
    capabilities: { atomicMultiStream: true },
    append,
    appendMulti: appendParts,
    readStream,
    readAll,
    headPosition: () => whenOpen(() => (reader !== null ? Promise.resolve(reader.headPosition()) : (request({ op: 'head', id: 0 }) as Promise<Position>))),
    subscribeToAll,
    logId: () => ready,
    commitStats: () => ({ ...stats }),
    close,
  };
  workers.set(store, worker);
  return store;
}

/**
 * Create the file's schema and log id and read back the durability SQLite will use. A ':memory:'
 * database opened here is thrown away (the worker's is the one that counts), but it reports the same
 * settings the worker's will.
 */
function prepareDatabase(
  path: string,
  synchronous: string,
  busyTimeoutMs: number,
  logIdCandidate: string,
): { db: Database.Database; durability: SqliteDurability } {
  let db: Database.Database | undefined;
  try {
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous.toUpperCase()}`);
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    db.exec(SCHEMA);
    // INSERT OR IGNORE: two processes opening a new file at once agree on whichever id got there first.
    db.prepare(`INSERT OR IGNORE INTO meta (key, value) VALUES ('log_id', ?)`).run(logIdCandidate);
    const level = (['off', 'normal', 'full', 'extra'] as const)[Number(db.pragma('synchronous', { simple: true }))];
    if (level === undefined) throw new Error('unexpected synchronous setting');
    return { db, durability: { journalMode: String(db.pragma('journal_mode', { simple: true })), synchronous: level } };
  } catch (error) {
    db?.close();
    throw new EventStoreUnavailableError(`cannot open event store ${path}: ${describe(error)}`, { cause: error });
  }
}

/** Columns as selected by every read, in this order (raw mode: arrays are cheaper than objects). */
type EventRow = [position: number, stream: string, revision: number, id: string, type: string, data: string, metadata: string];

/** Reads on the main thread's own connection: small reads cost less than a round trip to the worker. */
interface Reader {
  readStream(stream: string, forwards: boolean, from: Revision, limit: number): StoredEvent[];
  readAll(after: Position, limit: number): StoredEvent[];
  headPosition(): Position;
  close(): void;
}

function createReader(db: Database.Database): Reader {
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

function parseEvents(json: unknown): StoredEvent[] {
  try {
    return JSON.parse(json as string) as StoredEvent[];
  } catch (error) {
    throw new EventStoreUnavailableError(`read failed: ${describe(error)}`, { cause: error });
  }
}

function toError(failure: WorkerFailure): Error {
  if (failure.kind === 'conflict') return new WrongExpectedRevisionError(failure.stream, failure.expected, failure.actual);
  const error = new EventStoreUnavailableError(failure.message);
  if (failure.code !== undefined) Object.assign(error, { code: failure.code });
  return error;
}

function validateAppend(stream: string, events: NewEvent[], expected: ExpectedRevision): void {
  if (typeof stream !== 'string' || stream.length === 0) throw new TypeError('stream name must be a non-empty string');
  if (!Array.isArray(events) || events.length === 0) throw new RangeError('append needs at least one event');
  if (typeof expected === 'number') assertCount(expected, 'expected revision');
  else if (expected !== 'any' && expected !== 'no_stream' && expected !== 'stream_exists') {
    throw new TypeError(`unknown expected revision ${String(expected)}`);
  }
  const ids = new Set<string>();
  for (const event of events) {
    // KurrentDB only accepts UUIDs; holding the embedded store to the same rule keeps the two honest.
    if (!UUID_PATTERN.test(event.id)) throw new TypeError(`event id ${event.id} is not a UUID`);
    const id = event.id.toLowerCase();
    if (ids.has(id)) throw new TypeError(`event id ${event.id} appears twice in one append`);
    ids.add(id);
    if (typeof event.type !== 'string' || event.type.length === 0) throw new TypeError('event type must be a non-empty string');
  }
}

function assertCount(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what} must be a non-negative integer, got ${value}`);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
