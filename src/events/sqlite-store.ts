// The embedded event store: one SQLite file (better-sqlite3, WAL). Every append is synced before it is
// acknowledged, so throughput comes from GROUP COMMIT: appends that arrive while a commit is under way
// are written together in one transaction (one fsync), each still checked exactly against its stream's
// revision, including earlier appends of the same group.
//
// better-sqlite3 is synchronous, so the writing connection lives in a worker thread (sqlite-worker.mjs,
// driven through sqlite-worker-link.ts, which also restarts it if it dies): the inserts and the fsync
// of each commit block that thread, not the event loop that serves HTTP. This side validates and
// serializes appends (JSON strings cross threads cheaply), and settles promises from the worker's
// answers: an append resolves only once the worker reports its transaction committed.
//
// Reads of a file use a second, read-only connection on this thread (sqlite-reader.ts). A ':memory:'
// database exists only in the worker, which then answers reads too.
//
// Subscribers get what this process just committed directly (sqlite-subscription.ts, sqlite-tail.ts):
// while anyone subscribes, an append keeps a frozen copy of its events, and once the worker reports
// their positions they go to subscribers without a read or a parse. Events handed over that way are
// deep-frozen and shared by every subscriber; the caller's own objects are never frozen or kept.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import type { ImportChunkResult, ImportedStoreEvent, ImportSession, OrderedImport } from './ordered-import.js';
import type { CommitStats, ImportChunkWire, ImportRequest, Synchronous, WorkerRequest } from './sqlite-protocol.js';
import { createReader, parseEvents, prepareDatabase, SCHEMA, type SqliteDurability } from './sqlite-reader.js';
import { subscribe, type DeliveryStats, type SqliteSubscription, type SubscriptionSource } from './sqlite-subscription.js';
import { committedTail, frozenCopy, type TailLimits } from './sqlite-tail.js';
import { linkSqliteWorker, WORKER_FILE, workerFilePath, type RestartBackoff, type WorkerLink, type WorkerLinkStats } from './sqlite-worker-link.js';
import { assertCount, validateAppends } from './append-validation.js';
import {
  EventStoreUnavailableError,
  type AppendResult,
  type BatchHandler,
  type EventMetadata,
  type EventStore,
  type ExpectedRevision,
  type MultiAppendResult,
  type NewEvent,
  type Position,
  type ReadAllOptions,
  type ReadStreamOptions,
  type StoredEvent,
  type StreamAppend,
  type SubscribeOptions,
  type Subscription,
} from './store.js';

export type { CommitStats } from './sqlite-protocol.js';
export type { SqliteDurability } from './sqlite-reader.js';
export type { DeliveryStats } from './sqlite-subscription.js';

export interface SqliteEventStoreOptions {
  /**
   * SQLite `synchronous` pragma. 'full' (default) syncs the WAL at every commit, which is what makes an
   * acknowledged append durable across power loss. 'normal' keeps the file consistent but may lose the
   * last commits on power loss; 'off' is for throwaway data only.
   */
  synchronous?: Synchronous;
  /** How often a caught-up subscription re-reads the file to see appends made by another process. */
  pollIntervalMs?: number;
  /** Wait this long for another process's write lock before an append fails as unavailable. */
  busyTimeoutMs?: number;
  /** Heads of this many streams are cached so an append does not query for its stream's revision. */
  headCacheSize?: number;
  /** Bounds of the committed events held for subscribers (beyond them, subscribers read the file). */
  tail?: Partial<TailLimits>;
  /** Waits between attempts to start a worker after one failed to start. */
  restartBackoff?: Partial<RestartBackoff>;
}

export interface SqliteEventStore extends EventStore, OrderedImport {
  /** The file this store writes (':memory:' for a throwaway store). */
  readonly path: string;
  readonly durability: SqliteDurability;
  commitStats(): CommitStats;
  /** Worker starts and deaths, with the commit totals of every worker this store has had. */
  workerStats(): WorkerLinkStats;
  /** Where subscribers' events came from (the committed tail or reads), and what the tail holds now. */
  deliveryStats(): DeliveryStats & { heldEvents: number; heldBytes: number };
}

const DEFAULT_READ_ALL_PAGE = 1000;
const DEFAULT_SUBSCRIPTION_BATCH = 1000;
const DEFAULT_TAIL: TailLimits = { maxEvents: 10_000, maxBytes: 16 * 1024 * 1024 };
const DEFAULT_BACKOFF: RestartBackoff = { initialMs: 100, maxMs: 5_000 };
/** Per-event overhead counted against the tail's byte limit, beside the serialized data and metadata. */
const EVENT_OVERHEAD_BYTES = 200;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Each store's worker link; only tests look (to make the worker crash). */
const links = new WeakMap<SqliteEventStore, () => Worker | undefined>();

/** Tests only: the worker thread that owns `store`'s connection right now. */
export function workerThreadOf(store: SqliteEventStore): Worker | undefined {
  return links.get(store)?.();
}

/** One part of an append as subscribers will see it, kept until the worker reports its positions. */
interface HeldPart {
  stream: string;
  events: { id: string; type: string; payload: { data: Record<string, unknown>; metadata: EventMetadata }; bytes: number }[];
}

export function openSqliteEventStore(path: string, options: SqliteEventStoreOptions = {}): SqliteEventStore {
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const synchronous = options.synchronous ?? 'full';
  const busyTimeoutMs = options.busyTimeoutMs ?? 5_000;
  if (!existsSync(WORKER_FILE)) {
    throw new EventStoreUnavailableError(`${workerFilePath()} is missing (npm run build copies it next to sqlite-store.js)`);
  }
  // Open once here, synchronously, so a bad path fails this call (as it always has) and the durability
  // settings are known before it returns; the worker then opens its own connection to the same file.
  const prepared = prepareDatabase(path, synchronous, busyTimeoutMs, randomUUID());
  const durability = prepared.durability;
  // A file is shared: this connection stays open for reads (WAL readers never wait for the writer).
  // A private database (':memory:', '') exists only in the worker, which then serves reads too.
  const privateDatabase = path === ':memory:' || path === '';
  if (privateDatabase) prepared.db.close();
  const reader = privateDatabase ? null : createReader(prepared.db);

  let closing = false;
  let closed = false;
  let closeDone: Promise<void> | null = null;

  // What subscriptions wait on: this process's commits (and lost workers) bump `changes` and wake them.
  let changes = 0;
  let rechecks = 0;
  const changeWaiters = new Set<() => void>();
  const subscriptions = new Set<SqliteSubscription>();
  const tail = committedTail({ ...DEFAULT_TAIL, ...options.tail });
  let ownHead: Position = 0;
  const delivery: DeliveryStats = { directEvents: 0, readEvents: 0, reads: 0 };

  let link: WorkerLink;
  try {
    link = linkSqliteWorker({
      path,
      workerData: {
        path,
        synchronous,
        busyTimeoutMs,
        headCacheSize: options.headCacheSize ?? 100_000,
        schema: SCHEMA,
        // A file's log id exists already; a fresh candidate makes a file replaced behind our back (one
        // without an id) show up as another log, which a restarted worker then refuses to write.
        logIdCandidate: privateDatabase ? prepared.logId : randomUUID(),
        fileMustExist: !privateDatabase,
      },
      durability,
      logId: privateDatabase ? undefined : prepared.logId,
      restartable: !privateDatabase,
      backoff: { ...DEFAULT_BACKOFF, ...options.restartBackoff },
      onCommitted(head) {
        if (head > ownHead) ownHead = head;
        notify();
      },
      onLost() {
        rechecks += 1;
        notify();
      },
    });
  } catch (error) {
    reader?.close();
    throw error;
  }

  function notify(): void {
    changes += 1;
    const waiters = [...changeWaiters];
    changeWaiters.clear();
    for (const wake of waiters) wake();
  }

  /** The committed events of an append, handed to the tail once the worker says where they went. */
  function holdForSubscribers(parts: HeldPart[]) {
    return (ok: unknown, wrote: boolean) => {
      if (!wrote || subscriptions.size === 0) return;
      const result = ok as MultiAppendResult;
      parts.forEach((part, p) => {
        const { nextRevision, position } = result.streams[p] as AppendResult;
        const count = part.events.length;
        part.events.forEach(({ id, type, payload, bytes }, i) => {
          const stored: StoredEvent = {
            stream: part.stream,
            revision: nextRevision - count + 1 + i,
            position: position - count + 1 + i,
            id,
            type,
            data: payload.data,
            metadata: payload.metadata,
          };
          tail.add(Object.freeze(stored), bytes);
        });
      });
      forgetDelivered();
    };
  }

  /** Drop what every subscriber already has; with no subscriber, hold nothing. */
  function forgetDelivered(): void {
    let lowest = Number.POSITIVE_INFINITY;
    for (const subscription of subscriptions) lowest = Math.min(lowest, subscription.delivered());
    if (lowest === Number.POSITIVE_INFINITY) tail.clear();
    else tail.dropThrough(lowest);
  }

  function appendParts(appends: readonly StreamAppend[]): Promise<MultiAppendResult> {
    if (closing) return Promise.reject(new EventStoreUnavailableError('event store is closed'));
    let message: WorkerRequest;
    let held: HeldPart[] | null = null;
    try {
      // The rules every adapter shares (ids are UUIDs, unique per append; data a JSON object; …).
      validateAppends(appends);
      // Serialize now: a caller mutating its objects after append() must not change what is written,
      // and data that cannot be serialized fails this append alone.
      const parts = appends.map(({ stream, events, expected }) => ({
        stream,
        expected,
        ids: events.map((e) => e.id.toLowerCase()),
        types: events.map((e) => e.type),
        data: events.map((e) => JSON.stringify(e.data)),
        metadata: events.map((e) => JSON.stringify(e.metadata)),
      }));
      // Copy now, for the same reason, what subscribers of this process will be handed.
      if (subscriptions.size > 0) {
        held = appends.map(({ stream, events }, p) => {
          const part = parts[p]!;
          return {
            stream,
            events: events.map((event, i) => ({
              id: part.ids[i]!,
              type: event.type,
              payload: { data: frozenCopy(event.data, part.data[i]!), metadata: frozenCopy(event.metadata, part.metadata[i]!) },
              bytes: part.data[i]!.length + part.metadata[i]!.length + EVENT_OVERHEAD_BYTES,
            })),
          };
        });
      }
      message = { op: 'append', id: 0, parts };
    } catch (error) {
      return Promise.reject(error);
    }
    return link.request(message, held === null ? undefined : holdForSubscribers(held)) as Promise<MultiAppendResult>;
  }

  function append(stream: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    return appendParts([{ stream, events, expected }]).then((result) => result.streams[0]!);
  }

  function openImport(): ImportSession {
    const session = randomUUID();
    let seq = 0;
    return { write: (events) => importChunk(session, seq++, events) };
  }

  function importChunk(session: string, seq: number, events: readonly ImportedStoreEvent[]): Promise<ImportChunkResult> {
    if (closing) return Promise.reject(new EventStoreUnavailableError('event store is closed'));
    let message: ImportRequest;
    try {
      if (!Array.isArray(events as unknown) || events.length === 0) throw new RangeError('importEvents needs at least one event');
      const count = events.length;
      message = {
        op: 'import',
        id: 0,
        session,
        seq,
        streams: new Array<string>(count),
        revisions: new Array<number>(count),
        ids: new Array<string>(count),
        types: new Array<string>(count),
        data: new Array<string>(count),
        metadata: new Array<string>(count),
      };
      for (let i = 0; i < count; i++) {
        const event = events[i]!;
        validateImported(event, i);
        message.streams[i] = event.stream;
        message.revisions[i] = event.revision;
        message.ids[i] = event.id.toLowerCase();
        message.types[i] = event.type;
        message.data[i] = JSON.stringify(event.data);
        message.metadata[i] = JSON.stringify(event.metadata);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    // Subscribers of this process find these events in the file: the worker's commit report moves our
    // head past them, and the tail never holds them.
    return (link.request(message) as Promise<ImportChunkWire>).then((ok) => ({ imported: ok.imported, alreadyPresent: ok.present, position: ok.position }));
  }

  function readEvents(message: WorkerRequest): Promise<StoredEvent[]> {
    return link.request(message).then(parseEvents);
  }

  function readAllEvents(after: Position, limit: number): Promise<StoredEvent[]> {
    if (reader !== null) {
      if (closed) return Promise.reject(new EventStoreUnavailableError('event store is closed'));
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

  const source: SubscriptionSource = {
    tail,
    ownHead: () => ownHead,
    readAll: readAllEvents,
    nextChange() {
      let wake!: () => void;
      const changed = new Promise<void>((resolve) => {
        wake = resolve;
        changeWaiters.add(resolve);
      });
      return { changed, cancel: () => changeWaiters.delete(wake) };
    },
    changes: () => changes,
    rechecks: () => rechecks,
    pollIntervalMs,
    stats: delivery,
  };

  function subscribeToAll(options: SubscribeOptions, handler: BatchHandler): Subscription {
    const maxBatch = options.maxBatch ?? DEFAULT_SUBSCRIPTION_BATCH;
    assertCount(options.after ?? 0, 'after');
    if (maxBatch < 1) throw new RangeError('maxBatch must be at least 1');
    if (closing) return closedSubscription();
    const subscription = subscribe(source, options, handler, maxBatch);
    subscriptions.add(subscription);
    void subscription.done
      .finally(() => {
        subscriptions.delete(subscription);
        forgetDelivered();
      })
      .catch(() => undefined);
    return subscription;
  }

  function close(): Promise<void> {
    closeDone ??= (async () => {
      // Subscriptions first: their handlers may still append, and those appends must land.
      await Promise.all([...subscriptions].map((s) => s.close()));
      closing = true;
      await link.whenIdle(); // every append made so far has committed (or failed)
      closed = true;
      tail.clear();
      // The reader first: the worker's connection, closing last, checkpoints the WAL into the file.
      reader?.close();
      await link.close();
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
    openImport,
    readStream,
    readAll,
    headPosition: () => whenOpen(() => (reader !== null ? Promise.resolve(reader.headPosition()) : (link.request({ op: 'head', id: 0 }) as Promise<Position>))),
    subscribeToAll,
    logId: () => (privateDatabase ? link.ready : Promise.resolve(prepared.logId)),
    commitStats: () => {
      const { transactions, appends, events, largestGroup } = link.stats();
      return { transactions, appends, events, largestGroup };
    },
    workerStats: () => link.stats(),
    deliveryStats: () => ({ ...delivery, heldEvents: tail.size, heldBytes: tail.bytes }),
    close,
  };
  links.set(store, link.current);
  return store;
}

/** A subscription asked of a closing store: it ends at once, having delivered nothing. */
function closedSubscription(): Subscription {
  return { done: Promise.resolve(), close: () => Promise.resolve() };
}


/** One event of an import chunk; duplicates and conflicts are the worker's to find (it checks the file). */
function validateImported(event: ImportedStoreEvent, index: number): void {
  const where = `event ${index} of the chunk`;
  if (typeof event.stream !== 'string' || event.stream.length === 0) throw new TypeError(`${where}: stream name must be a non-empty string`);
  if (!Number.isSafeInteger(event.revision) || event.revision < 0) throw new RangeError(`${where}: revision must be a non-negative integer, got ${event.revision}`);
  if (typeof event.id !== 'string' || !UUID_PATTERN.test(event.id)) throw new TypeError(`${where}: event id ${event.id} is not a UUID`);
  if (typeof event.type !== 'string' || event.type.length === 0) throw new TypeError(`${where}: event type must be a non-empty string`);
}

