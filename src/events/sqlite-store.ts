// The embedded event store: one SQLite file (better-sqlite3, WAL). Every append is synced before it is
// acknowledged, so throughput comes from GROUP COMMIT: appends that arrive while a flush is pending are
// written in one transaction (one fsync) on the next turn of the event loop, each still checked exactly
// against its stream's revision, including earlier appends of the same group.
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import {
  EventStoreUnavailableError,
  WrongExpectedRevisionError,
  type AppendResult,
  type BatchHandler,
  type EventMetadata,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type Position,
  type ReadAllOptions,
  type ReadStreamOptions,
  type Revision,
  type StoredEvent,
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
/** Revision of a stream that has no events, internally; the port calls it 'no_stream'. */
const NO_EVENTS = -1;
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

/** Columns as selected by every read, in this order (raw mode: arrays are cheaper than objects). */
type EventRow = [position: number, stream: string, revision: number, id: string, type: string, data: string, metadata: string];

/** An append waiting for the next group commit; its events are serialized when it is queued. */
interface PendingAppend {
  stream: string;
  expected: ExpectedRevision;
  ids: string[];
  types: string[];
  data: string[];
  metadata: string[];
  resolve: (result: AppendResult) => void;
  reject: (error: Error) => void;
}

/** `written` is 0 for an idempotent replay of an append that is already in the log. */
type AppendOutcome = { ok: AppendResult; written: number } | { error: Error };

export function openSqliteEventStore(path: string, options: SqliteEventStoreOptions = {}): SqliteEventStore {
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const headCacheSize = options.headCacheSize ?? 100_000;

  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${(options.synchronous ?? 'full').toUpperCase()}`);
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5_000}`);
    db.exec(SCHEMA);
    // INSERT OR IGNORE: two processes opening a new file at once agree on whichever id got there first.
    db.prepare(`INSERT OR IGNORE INTO meta (key, value) VALUES ('log_id', ?)`).run(randomUUID());
  } catch (error) {
    db.close();
    throw new EventStoreUnavailableError(`cannot open event store ${path}: ${describe(error)}`, { cause: error });
  }
  const synchronousLevel = (['off', 'normal', 'full', 'extra'] as const)[Number(db.pragma('synchronous', { simple: true }))];
  if (synchronousLevel === undefined) throw new EventStoreUnavailableError(`${path}: unexpected synchronous setting`);
  const durability: SqliteDurability = { journalMode: String(db.pragma('journal_mode', { simple: true })), synchronous: synchronousLevel };
  const logIdValue = String(db.prepare(`SELECT value FROM meta WHERE key = 'log_id'`).pluck().get());

  const selectColumns = 'SELECT position, stream, revision, id, type, data, metadata FROM events';
  const statements = {
    insert: db.prepare<[string, number, string, string, string, string]>(
      'INSERT INTO events (stream, revision, id, type, data, metadata) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    headRevision: db.prepare<[string], number | null>('SELECT max(revision) FROM events WHERE stream = ?').pluck(),
    revisionOfId: db.prepare<[string, string], number>('SELECT revision FROM events WHERE stream = ? AND id = ?').pluck(),
    runFrom: db.prepare<[string, number, number], [string, number]>(
      'SELECT id, position FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?',
    ).raw(),
    forwards: db.prepare<[string, number, number], EventRow>(
      `${selectColumns} WHERE stream = ? AND revision >= ? ORDER BY revision ASC LIMIT ?`,
    ).raw(),
    backwards: db.prepare<[string, number, number], EventRow>(
      `${selectColumns} WHERE stream = ? AND revision <= ? ORDER BY revision DESC LIMIT ?`,
    ).raw(),
    allAfter: db.prepare<[number, number], EventRow>(`${selectColumns} WHERE position > ? ORDER BY position LIMIT ?`).raw(),
    headPosition: db.prepare<[], number | null>('SELECT max(position) FROM events').pluck(),
    // Changes whenever ANOTHER connection commits: the signal that our cached stream heads may be stale.
    dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(),
  };

  // Heads (last revision) of recently appended streams, as committed. Never holds a value from a group
  // that has not committed: in-group heads live in a per-group overlay until the commit succeeds.
  const headCache = new Map<string, Revision>();
  let seenDataVersion = statements.dataVersion.get();

  let queue: PendingAppend[] = [];
  let flushScheduled: Promise<void> | null = null;
  let closing = false;
  let closed = false;
  const stats: CommitStats = { transactions: 0, appends: 0, events: 0, largestGroup: 0 };

  // Subscriptions wait on this; every commit bumps `commits` and wakes them.
  let commits = 0;
  const commitWaiters = new Set<() => void>();
  const subscriptions = new Set<Subscription>();

  function committedHead(stream: string): Revision {
    const cached = headCache.get(stream);
    if (cached !== undefined) {
      // Re-insert so the Map's insertion order approximates recency for eviction.
      headCache.delete(stream);
      headCache.set(stream, cached);
      return cached;
    }
    const head = statements.headRevision.get(stream) ?? NO_EVENTS;
    rememberHead(stream, head);
    return head;
  }

  function rememberHead(stream: string, head: Revision): void {
    headCache.delete(stream);
    headCache.set(stream, head);
    if (headCache.size > headCacheSize) {
      const oldest = headCache.keys().next();
      if (!oldest.done) headCache.delete(oldest.value);
    }
  }

  // Nested inside the group transaction this runs as a SAVEPOINT: if an insert fails, only this
  // append's rows are rolled back, and because positions are INTEGER PRIMARY KEY (max + 1) the
  // positions it would have taken are reused by the next append: no gaps.
  const insertRun = db.transaction((pending: PendingAppend, firstRevision: Revision): Position => {
    let position = 0;
    for (let i = 0; i < pending.ids.length; i++) {
      const info = statements.insert.run(
        pending.stream,
        firstRevision + i,
        pending.ids[i] as string,
        pending.types[i] as string,
        pending.data[i] as string,
        pending.metadata[i] as string,
      );
      position = Number(info.lastInsertRowid);
    }
    return position;
  });

  function appendOne(pending: PendingAppend, groupHeads: Map<string, Revision>): AppendOutcome {
    const { stream, expected, ids } = pending;
    const current = groupHeads.get(stream) ?? committedHead(stream);
    const conflict = () => ({ error: new WrongExpectedRevisionError(stream, expected, current === NO_EVENTS ? 'no_stream' : current) });

    // A retry of an append that was already written: same ids, same order, same place. Answer with the
    // original result and write nothing (EventStoreDB's idempotent write).
    const firstId = ids[0] as string;
    const writtenAt = statements.revisionOfId.get(stream, firstId);
    if (writtenAt !== undefined) {
      const run = statements.runFrom.all(stream, writtenAt, ids.length);
      const sameRun = run.length === ids.length && run.every(([id], i) => id === ids[i]);
      if (!sameRun || !expectationHeldAt(expected, writtenAt)) return conflict();
      const last = run[run.length - 1] as [string, number];
      return { ok: { nextRevision: writtenAt + ids.length - 1, position: last[1] }, written: 0 };
    }

    if (!expectationMet(expected, current)) return conflict();
    let position: Position;
    try {
      position = insertRun(pending, current + 1);
    } catch (error) {
      // A later id of this append already exists in the stream (a partial overlap with an earlier
      // append): a conflict for this caller, not a failure of the group.
      if (isUniqueViolation(error)) return conflict();
      throw error;
    }
    groupHeads.set(stream, current + ids.length);
    return { ok: { nextRevision: current + ids.length, position }, written: ids.length };
  }

  const writeGroup = db.transaction((group: PendingAppend[], groupHeads: Map<string, Revision>): AppendOutcome[] => {
    const version = statements.dataVersion.get();
    if (version !== seenDataVersion) {
      // Another process appended since our last look; its streams' heads may have moved.
      headCache.clear();
      seenDataVersion = version;
    }
    return group.map((pending) => appendOne(pending, groupHeads));
  });

  function flush(): void {
    const group = queue;
    queue = [];
    flushScheduled = null;
    if (group.length === 0) return;
    const groupHeads = new Map<string, Revision>();
    let outcomes: AppendOutcome[];
    try {
      // IMMEDIATE: take the write lock up front so a second process cannot slip in between our
      // revision checks and our inserts.
      outcomes = writeGroup.immediate(group, groupHeads);
    } catch (error) {
      // Nothing of this group was written. Heads read during it are fine, but clear them anyway:
      // failures here are rare (disk full, I/O, lock timeout) and a cold cache is always correct.
      headCache.clear();
      const failure = new EventStoreUnavailableError(`append failed: ${describe(error)}`, { cause: error });
      for (const pending of group) pending.reject(failure);
      return;
    }
    for (const [stream, head] of groupHeads) rememberHead(stream, head);

    stats.transactions += 1;
    stats.appends += group.length;
    stats.largestGroup = Math.max(stats.largestGroup, group.length);
    outcomes.forEach((outcome, i) => {
      const pending = group[i] as PendingAppend;
      if ('ok' in outcome) {
        stats.events += outcome.written;
        pending.resolve(outcome.ok);
      } else {
        pending.reject(outcome.error);
      }
    });
    // groupHeads only holds streams this group wrote to; idempotent replays and conflicts wrote nothing.
    if (groupHeads.size > 0) notifyCommitted();
  }

  function notifyCommitted(): void {
    commits += 1;
    const waiters = [...commitWaiters];
    commitWaiters.clear();
    for (const wake of waiters) wake();
  }

  function scheduleFlush(): Promise<void> {
    if (flushScheduled === null) {
      flushScheduled = new Promise<void>((resolve) => {
        setImmediate(() => {
          try {
            flush();
          } finally {
            resolve(); // close() waits on this; it must settle whatever happened
          }
        });
      });
    }
    return flushScheduled;
  }

  function append(stream: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    if (closing) return Promise.reject(new EventStoreUnavailableError('event store is closed'));
    let pending: Omit<PendingAppend, 'resolve' | 'reject'>;
    try {
      validateAppend(stream, events, expected);
      // Serialize now: a caller mutating its objects after append() must not change what is written,
      // and data that cannot be serialized fails this append alone.
      pending = {
        stream,
        expected,
        ids: events.map((e) => e.id.toLowerCase()),
        types: events.map((e) => e.type),
        data: events.map((e) => JSON.stringify(e.data)),
        metadata: events.map((e) => JSON.stringify(e.metadata)),
      };
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<AppendResult>((resolve, reject) => {
      queue.push({ ...pending, resolve, reject });
      void scheduleFlush();
    });
  }

  function readStreamNow(stream: string, options: ReadStreamOptions = {}): StoredEvent[] {
    const direction = options.direction ?? 'forwards';
    const limit = options.maxCount ?? -1; // SQLite: a negative LIMIT means no limit
    if (options.maxCount !== undefined) assertCount(options.maxCount, 'maxCount');
    if (options.fromRevision !== undefined) assertCount(options.fromRevision, 'fromRevision');
    if (limit === 0) return [];
    const rows =
      direction === 'forwards'
        ? statements.forwards.all(stream, options.fromRevision ?? 0, limit)
        : statements.backwards.all(stream, options.fromRevision ?? Number.MAX_SAFE_INTEGER, limit);
    return rows.map(toStoredEvent);
  }

  function readAllNow(after: Position, maxCount: number): StoredEvent[] {
    return statements.allAfter.all(after, maxCount).map(toStoredEvent);
  }

  function whenOpen<T>(read: () => T): Promise<T> {
    if (closed) return Promise.reject(new EventStoreUnavailableError('event store is closed'));
    try {
      return Promise.resolve(read());
    } catch (error) {
      return Promise.reject(error instanceof RangeError ? error : new EventStoreUnavailableError(`read failed: ${describe(error)}`, { cause: error }));
    }
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
        const batch = readAllNow(last, maxBatch);
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

  async function close(): Promise<void> {
    if (closing) {
      while (!closed) await new Promise((resolve) => setImmediate(resolve));
      return;
    }
    // Subscriptions first: their handlers may still append, and those appends must land.
    await Promise.all([...subscriptions].map((s) => s.close()));
    closing = true;
    while (flushScheduled !== null) await flushScheduled;
    closed = true;
    db.close();
  }

  return {
    path,
    durability,
    append,
    readStream: (stream, options) => whenOpen(() => readStreamNow(stream, options)),
    readAll: (options: ReadAllOptions = {}) =>
      whenOpen(() => {
        const after = options.after ?? 0;
        const maxCount = options.maxCount ?? DEFAULT_READ_ALL_PAGE;
        assertCount(after, 'after');
        assertCount(maxCount, 'maxCount');
        return readAllNow(after, maxCount);
      }),
    headPosition: () => whenOpen(() => statements.headPosition.get() ?? 0),
    subscribeToAll,
    logId: () => Promise.resolve(logIdValue),
    commitStats: () => ({ ...stats }),
    close,
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

/** Would `expected` have allowed an append whose first event landed at `revision`? */
function expectationHeldAt(expected: ExpectedRevision, revision: Revision): boolean {
  return expectationMet(expected, revision - 1);
}

function expectationMet(expected: ExpectedRevision, current: Revision): boolean {
  switch (expected) {
    case 'any':
      return true;
    case 'no_stream':
      return current === NO_EVENTS;
    case 'stream_exists':
      return current !== NO_EVENTS;
    default:
      return expected === current;
  }
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

function isUniqueViolation(error: unknown): boolean {
  return error instanceof Database.SqliteError && error.code === 'SQLITE_CONSTRAINT_UNIQUE';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
