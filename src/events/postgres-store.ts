// A shared event store on PostgreSQL (`EVENTSTORE_URL=postgres://…`): any number of Planline processes
// append to and subscribe to one log. Tables live in one schema (default `planline`), created on start
// (postgres-schema.ts). Appends go through group commit under one row lock, which is what keeps global
// positions gap-free and in commit order across processes (postgres-appends.ts). Subscriptions re-read
// the log after their last position, woken by LISTEN/NOTIFY (postgres-listener.ts) and by polling.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { assertCount } from './append-validation.js';
import { groupCommitter, type CommitStats } from './postgres-appends.js';
import { describeTarget, isConnectionFailure, unavailable } from './postgres-connection.js';
import { listenForCommits, type CommitListener } from './postgres-listener.js';
import { prepareParts } from './postgres-parts.js';
import { DEFAULT_SCHEMA, ensureSchema, tablesOf } from './postgres-schema.js';
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

export type { CommitStats } from './postgres-appends.js';

export interface PostgresEventStoreOptions {
  /** Schema holding the tables (created if missing). Default `planline`. */
  schema?: string;
  /** How often a caught-up subscription re-reads the log anyway, in case a notification was lost. */
  pollIntervalMs?: number;
  /** Connections for reads and subscriptions (appends and LISTEN use one more each). Default 10. */
  maxConnections?: number;
  /** Shown in pg_stat_activity. Default `planline`. */
  applicationName?: string;
  /** Give up connecting after this long. Default 5000. */
  connectTimeoutMs?: number;
  /** How long an append waits for another process's commit before it fails as unavailable. Default 10000. */
  lockTimeoutMs?: number;
}

export interface PostgresEventStore extends EventStore {
  /** The schema this store's tables are in. */
  readonly schema: string;
  commitStats(): CommitStats;
}

const DEFAULT_READ_ALL_PAGE = 1000;
const DEFAULT_SUBSCRIPTION_BATCH = 1000;
/** A server that is really down refuses at once, so a few attempts cost nothing. */
const READ_ATTEMPTS = 3;

type EventRow = [position: string, stream: string, revision: string, id: string, type: string, data: unknown, metadata: unknown];

/** Open (and if needed create) the store; rejects with EventStoreUnavailableError if the server cannot be used. */
export async function openPostgresEventStore(connectionString: string, options: PostgresEventStoreOptions = {}): Promise<PostgresEventStore> {
  const tables = tablesOf(options.schema ?? DEFAULT_SCHEMA);
  const pollIntervalMs = options.pollIntervalMs ?? 500;
  const target = describeTarget(connectionString);
  const applicationName = options.applicationName ?? 'planline';
  const clientConfig: pg.ClientConfig = {
    connectionString,
    application_name: applicationName,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    // A connection to a server that vanished without closing it (a network partition) is noticed
    // within a minute or so instead of the operating system's two hours.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
  const readPool = new pg.Pool({ ...clientConfig, max: options.maxConnections ?? 10, idleTimeoutMillis: 30_000 });
  // One connection for appends, pipelined: a group's statements go out together (see postgres-appends.ts).
  const writePool = new pg.Pool({ ...clientConfig, max: 1, idleTimeoutMillis: 30_000, pipeline: true });
  // An idle pooled connection that the server closes emits 'error' on its pool; the pool drops it and
  // the next query opens a new one. Without a listener that event would crash the process.
  readPool.on('error', () => undefined);
  writePool.on('error', () => undefined);

  let logId: string;
  try {
    const client = await readPool.connect();
    const ignore = () => undefined; // a lost connection also fails the query in flight, which reports it
    client.on('error', ignore);
    try {
      logId = await ensureSchema(client, tables, randomUUID());
    } finally {
      client.off('error', ignore);
      client.release();
    }
  } catch (error) {
    await Promise.all([readPool.end(), writePool.end()]).catch(() => undefined);
    throw unavailable(target, error, 'opening');
  }

  let closing = false;
  let closed = false;
  let closeDone: Promise<void> | null = null;

  // Subscriptions wait on this; every commit (ours, or any process's through LISTEN) wakes them.
  let commits = 0;
  const commitWaiters = new Set<() => void>();
  const subscriptions = new Set<Subscription>();
  let listener: CommitListener | null = null;

  function wakeSubscribers(): void {
    commits += 1;
    const waiters = [...commitWaiters];
    commitWaiters.clear();
    for (const wake of waiters) wake();
  }

  const committer = groupCommitter({
    pool: writePool,
    tables,
    target,
    lockTimeoutMs: options.lockTimeoutMs ?? 10_000,
    // Our own commits wake our subscribers at once; the NOTIFY reaches other processes.
    onCommitted: wakeSubscribers,
  });

  const sql = {
    forwards: `SELECT position, stream, revision, id, type, data, metadata FROM ${tables.events} WHERE stream = $1 AND revision >= $2 ORDER BY revision ASC LIMIT $3`,
    backwards: `SELECT position, stream, revision, id, type, data, metadata FROM ${tables.events} WHERE stream = $1 AND revision <= $2 ORDER BY revision DESC LIMIT $3`,
    // Positions become visible in order (postgres-appends.ts), so "after the last one seen" never skips.
    allAfter: `SELECT position, stream, revision, id, type, data, metadata FROM ${tables.events} WHERE position > $1 ORDER BY position LIMIT $2`,
    head: `SELECT position FROM ${tables.head}`,
  };

  /**
   * One read. Reads are safe to repeat: one that met a pooled connection the server had closed (a
   * restart, pg_terminate_backend) is tried again; the pool drops each dead connection it hands out.
   */
  async function query<R extends unknown[]>(name: string, text: string, values: unknown[]): Promise<R[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await readPool.query<R>({ name, text, values, rowMode: 'array' })).rows;
      } catch (error) {
        if (attempt >= READ_ATTEMPTS || !isConnectionFailure(error)) throw unavailable(target, error, 'reading');
      }
    }
  }

  const read = (name: string, text: string, values: unknown[]) => query<EventRow>(name, text, values);

  function whenOpen<T>(work: () => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(new EventStoreUnavailableError('event store is closed'));
    try {
      return work();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  function appendMulti(appends: readonly StreamAppend[]): Promise<MultiAppendResult> {
    if (closing) return Promise.reject(new EventStoreUnavailableError('event store is closed'));
    try {
      return committer.append(prepareParts(appends));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  function append(stream: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    return appendMulti([{ stream, events, expected }]).then((result) => result.streams[0]!);
  }

  function readStream(stream: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    return whenOpen(async () => {
      if (typeof stream !== 'string') throw new TypeError('stream name must be a string');
      const forwards = (options.direction ?? 'forwards') === 'forwards';
      if (options.maxCount !== undefined) assertCount(options.maxCount, 'maxCount');
      if (options.fromRevision !== undefined) assertCount(options.fromRevision, 'fromRevision');
      // No stream is named with NUL (appends refuse it), and PostgreSQL would refuse the parameter.
      if (options.maxCount === 0 || stream.includes('\u0000')) return [];
      const from = options.fromRevision ?? (forwards ? 0 : Number.MAX_SAFE_INTEGER);
      const limit = options.maxCount ?? null; // LIMIT NULL: no limit
      const rows = forwards
        ? await read('planline_read_forwards', sql.forwards, [stream, from, limit])
        : await read('planline_read_backwards', sql.backwards, [stream, from, limit]);
      return rows.map(toStoredEvent);
    });
  }

  function readAllAfter(after: Position, maxCount: number): Promise<StoredEvent[]> {
    return read('planline_read_all', sql.allAfter, [after, maxCount]).then((rows) => rows.map(toStoredEvent));
  }

  function readAll(options: ReadAllOptions = {}): Promise<StoredEvent[]> {
    return whenOpen(() => {
      const after = options.after ?? 0;
      const maxCount = options.maxCount ?? DEFAULT_READ_ALL_PAGE;
      assertCount(after, 'after');
      assertCount(maxCount, 'maxCount');
      return readAllAfter(after, maxCount);
    });
  }

  function headPosition(): Promise<Position> {
    return whenOpen(async () => Number((await query<[string]>('planline_head', sql.head, []))[0]?.[0] ?? 0));
  }

  function subscribeToAll(options: SubscribeOptions, handler: BatchHandler): Subscription {
    const maxBatch = options.maxBatch ?? DEFAULT_SUBSCRIPTION_BATCH;
    assertCount(options.after ?? 0, 'after');
    if (maxBatch < 1) throw new RangeError('maxBatch must be at least 1');
    // Other processes' commits arrive through LISTEN; one listener serves every subscription.
    if (!closing && listener === null) {
      listener = listenForCommits({
        connectionString,
        clientConfig: { ...clientConfig, application_name: `${applicationName} listener` },
        channelIdentifier: tables.channelIdentifier,
        onWake: wakeSubscribers,
      });
    }
    let stopped = closing;
    let wakeEarly: (() => void) | null = null;

    // Delivery always re-reads the log strictly after the last delivered position; notifications only
    // say "look again". So the switch from catch-up to live can neither skip nor repeat an event.
    async function deliver(): Promise<void> {
      // Start on a later turn: the first batch must not reach the handler before subscribeToAll returns.
      await new Promise<void>((resolve) => setImmediate(resolve));
      let last = options.after ?? 0;
      while (!stopped) {
        const seen = commits;
        const batch = await readAllAfter(last, maxBatch);
        if (stopped) break; // closed while the read was in flight: deliver nothing more
        if (batch.length > 0) {
          await handler(batch);
          last = batch[batch.length - 1]!.position;
          continue;
        }
        // A commit announced while we read may not be in what we read: look again before sleeping.
        if (seen !== commits) continue;
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            commitWaiters.delete(wake);
            wakeEarly = null;
            resolve();
          };
          // The poll: a lost notification, or a listener that is reconnecting, delays delivery by this much at most.
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
      await committer.whenIdle(); // every append made so far has committed (or failed)
      closed = true;
      await listener?.close();
      await Promise.all([readPool.end(), writePool.end()]);
    })();
    return closeDone;
  }

  return {
    schema: tables.schema,
    capabilities: { atomicMultiStream: true },
    append,
    appendMulti,
    readStream,
    readAll,
    headPosition,
    subscribeToAll,
    logId: () => Promise.resolve(logId),
    commitStats: committer.stats,
    close,
  };
}

function toStoredEvent(row: EventRow): StoredEvent {
  const [position, stream, revision, id, type, data, metadata] = row;
  return {
    position: Number(position),
    stream,
    revision: Number(revision),
    id,
    type,
    // json columns arrive parsed (pg parses json with JSON.parse).
    data: data as Record<string, unknown>,
    metadata: metadata as EventMetadata,
  };
}
