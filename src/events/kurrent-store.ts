// The production event store: EventStoreDB / KurrentDB through its official client. A thin mapping;
// the server already does optimistic concurrency, idempotent writes (by event id) and catch-up
// subscriptions, so this file only translates shapes, errors and positions.
import { randomUUID } from 'node:crypto';
import {
  ANY,
  BACKWARDS,
  CancelledError,
  DeadlineExceededError,
  END,
  FORWARDS,
  KurrentDBClient,
  NO_STREAM,
  NotLeaderError,
  START,
  STREAM_EXISTS,
  StreamNotFoundError,
  UnavailableError,
  WrongExpectedVersionError,
  excludeSystemEvents,
  jsonEvent,
  type AllStreamResolvedEvent,
  type AppendStreamState,
  type Position as KurrentPosition,
  type ReadPosition,
  type ReadRevision,
} from '@kurrent/kurrentdb-client';
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

/** Holds the one event that names this log (see logId). Our bookkeeping: never shown to readers. */
export const LOG_STREAM = 'planline-log';
const DEFAULT_READ_ALL_PAGE = 1000;

/** What the client hands back for a recorded event, narrowed to what we read. */
interface RecordedEventShape {
  streamId: string;
  id: string;
  revision: bigint;
  type: string;
  data: unknown;
  metadata: unknown;
  position?: KurrentPosition | undefined;
}

export interface KurrentEventStore extends EventStore {
  /** The underlying client, for health checks; do not append through it. */
  readonly client: KurrentDBClient;
}

/** `connectionString`: kurrentdb://… or esdb://… as the client documents it. */
export function openKurrentEventStore(connectionString: string): KurrentEventStore {
  const client = KurrentDBClient.connectionString(connectionString);
  const subscriptions = new Set<Subscription>();
  let logIdLoading: Promise<string> | null = null;
  let closed = false;

  function ensureOpen(): void {
    if (closed) throw new EventStoreUnavailableError('event store is closed');
  }

  async function append(stream: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    ensureOpen();
    if (events.length === 0) throw new RangeError('append needs at least one event');
    let result;
    try {
      result = await client.appendToStream(
        stream,
        events.map((e) => jsonEvent({ id: e.id, type: e.type, data: e.data, metadata: asJsonObject(e.metadata) })),
        { streamState: toStreamState(expected) },
      );
    } catch (error) {
      throw translate(error, stream, expected);
    }
    const nextRevision = Number(result.nextExpectedRevision);
    // Only when the connection string sets throwOnAppendFailure=false; keep the port's contract anyway.
    if (!result.success) throw new WrongExpectedRevisionError(stream, expected, nextRevision < 0 ? 'no_stream' : nextRevision);
    // The server answers an idempotent replay without a position; the original event still has one.
    const position = result.position !== undefined ? toPosition(result.position.commit) : await positionOf(stream, nextRevision);
    return { nextRevision, position };
  }

  async function positionOf(stream: string, revision: Revision): Promise<Position> {
    const [event] = await readStream(stream, { fromRevision: revision, maxCount: 1 });
    // Servers before 22.6 leave positions off stream reads; the head is then a safe upper bound
    // (waiting for it still guarantees the write is visible).
    return event?.position ?? (await headPosition());
  }

  async function readStream(stream: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    ensureOpen();
    const direction = options.direction ?? 'forwards';
    if (options.maxCount === 0) return [];
    const fromRevision: ReadRevision =
      options.fromRevision !== undefined ? BigInt(options.fromRevision) : direction === 'forwards' ? START : END;
    const events: StoredEvent[] = [];
    try {
      for await (const resolved of client.readStream(stream, {
        direction: direction === 'forwards' ? FORWARDS : BACKWARDS,
        fromRevision,
        ...(options.maxCount !== undefined ? { maxCount: options.maxCount } : {}),
      })) {
        const event = resolved.event;
        if (event === undefined) continue;
        const commit = event.position?.commit ?? resolved.commitPosition;
        if (commit === undefined) throw new EventStoreUnavailableError(`server returned ${stream}@${event.revision} without a position`);
        events.push(toStoredEvent(event, commit));
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return [];
      throw translate(error);
    }
    return events;
  }

  async function readAll(options: ReadAllOptions = {}): Promise<StoredEvent[]> {
    ensureOpen();
    const maxCount = options.maxCount ?? DEFAULT_READ_ALL_PAGE;
    let cursor = options.after ?? 0;
    const events: StoredEvent[] = [];
    let from: ReadPosition = cursor > 0 ? toKurrentPosition(cursor) : START;
    try {
      while (events.length < maxCount) {
        // fromPosition is inclusive: the event AT the checkpoint comes back first and is skipped below,
        // hence one more than we still need.
        const pageSize = maxCount - events.length + 1;
        const pageStart = cursor;
        let received = 0;
        const page: AsyncIterable<AllStreamResolvedEvent> = client.readAll({
          fromPosition: from,
          maxCount: pageSize,
          direction: FORWARDS,
          filter: excludeSystemEvents(),
        });
        for await (const resolved of page) {
          received += 1;
          const event = resolved.event;
          if (event === undefined) continue;
          from = event.position;
          const position = toPosition(event.position.commit);
          if (position <= cursor) continue;
          cursor = position;
          if (!isVisible(event) || events.length >= maxCount) continue;
          events.push(toStoredEvent(event, event.position.commit));
        }
        // A short page is the end of the log; a page that did not move us on would loop forever.
        if (received < pageSize || cursor === pageStart) break;
      }
    } catch (error) {
      throw translate(error);
    }
    return events;
  }

  async function headPosition(): Promise<Position> {
    ensureOpen();
    try {
      // Two: the newest non-system event may be our own log marker, which readers never see.
      for await (const resolved of client.readAll({ fromPosition: END, direction: BACKWARDS, maxCount: 2, filter: excludeSystemEvents() })) {
        const event = resolved.event;
        if (event !== undefined && isVisible(event)) return toPosition(event.position.commit);
      }
    } catch (error) {
      throw translate(error);
    }
    return 0;
  }

  function subscribeToAll(options: SubscribeOptions, handler: BatchHandler): Subscription {
    ensureOpen();
    const after = options.after ?? 0;
    const source = client.subscribeToAll({
      fromPosition: after > 0 ? toKurrentPosition(after) : START,
      filter: excludeSystemEvents(),
    });
    let stopped = false;

    async function stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      subscriptions.delete(subscription);
      await source.unsubscribe().catch(() => undefined);
      // A cancelled gRPC stream does not always end the piped subscription stream; make sure it does.
      source.destroy();
    }

    async function deliver(): Promise<void> {
      let last = after;
      try {
        for await (const resolved of source) {
          if (stopped) break;
          const event = resolved.event;
          if (event === undefined) continue;
          const position = toPosition(event.position.commit);
          // Strictly after the checkpoint, and never twice, whatever the server resends.
          if (position <= last) continue;
          last = position;
          if (!isVisible(event)) continue;
          // The server pushes one event at a time; a batch of one keeps back-pressure exact.
          await handler([toStoredEvent(event, event.position.commit)]);
        }
      } catch (error) {
        if (!stopped) throw translate(error);
      } finally {
        await stop(); // a handler that threw must not leave the server subscription running
      }
    }

    const subscription: Subscription = {
      done: Promise.resolve().then(deliver),
      async close() {
        await stop();
        await subscription.done.catch(() => undefined);
      },
    };
    const done = subscription.done;
    done.catch(() => undefined); // failures are reported through `done`, never as unhandled rejections
    subscriptions.add(subscription);
    void done.finally(() => subscriptions.delete(subscription)).catch(() => undefined);
    return subscription;
  }

  /** The log's identity: the first event of LOG_STREAM, created by whoever asks first. */
  async function loadOrCreateLogId(): Promise<string> {
    const existing = await readLogMarker();
    if (existing !== undefined) return existing;
    const id = randomUUID();
    const at = new Date().toISOString();
    try {
      await client.appendToStream(
        LOG_STREAM,
        jsonEvent({
          id,
          type: 'LogCreated',
          data: { log_id: id, at },
          metadata: { command_id: id, correlation_id: id, causation_id: id, at, schema_version: 1 },
        }),
        { streamState: NO_STREAM },
      );
    } catch (error) {
      // Someone else created it first: theirs is the log id.
      if (!(error instanceof WrongExpectedVersionError)) throw translate(error);
    }
    const created = await readLogMarker();
    if (created === undefined) throw new EventStoreUnavailableError(`${LOG_STREAM} is empty right after it was written`);
    return created;
  }

  async function readLogMarker(): Promise<string | undefined> {
    const [first] = await readStream(LOG_STREAM, { maxCount: 1 });
    if (first === undefined) return undefined;
    const logId = first.data.log_id;
    return typeof logId === 'string' ? logId : first.id;
  }

  return {
    client,
    append,
    // Interim: atomic multi-stream appends need the client's multiStreamAppend (KurrentDB 25.1+),
    // chosen at connect; until that lands this adapter refuses them rather than fake atomicity.
    appendMulti: async () => {
      throw new EventStoreUnavailableError('multi-stream append is not available on this KurrentDB adapter yet');
    },
    readStream,
    readAll,
    headPosition,
    subscribeToAll,
    logId() {
      logIdLoading ??= loadOrCreateLogId().catch((error: unknown) => {
        logIdLoading = null; // let the next call try again
        throw error;
      });
      return logIdLoading;
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...subscriptions].map((s) => s.close()));
      await client.dispose();
    },
  };
}

function toStreamState(expected: ExpectedRevision): AppendStreamState {
  switch (expected) {
    case 'any':
      return ANY;
    case 'no_stream':
      return NO_STREAM;
    case 'stream_exists':
      return STREAM_EXISTS;
    default:
      return BigInt(expected);
  }
}

/** Our positions are numbers; a commit position beyond 2^53 would silently lose precision. */
function toPosition(commit: bigint): Position {
  if (commit > BigInt(Number.MAX_SAFE_INTEGER) || commit < 0n) {
    throw new EventStoreUnavailableError(`commit position ${commit} does not fit a Position`);
  }
  return Number(commit);
}

/**
 * Since server 20.6 an event written outside an explicit transaction has commit === prepare, which
 * is what lets a number round-trip to a $all position.
 */
function toKurrentPosition(position: Position): KurrentPosition {
  return { commit: BigInt(position), prepare: BigInt(position) };
}

/** Readers never see system events (should the filter let one through) nor our log marker. */
function isVisible(event: RecordedEventShape): boolean {
  return !event.type.startsWith('$') && event.streamId !== LOG_STREAM;
}

function toStoredEvent(event: RecordedEventShape, commit: bigint): StoredEvent {
  return {
    stream: event.streamId,
    revision: Number(event.revision),
    position: toPosition(commit),
    id: event.id,
    type: event.type,
    data: asRecord(event.data, `data of ${event.streamId}@${event.revision}`),
    metadata: asRecord(event.metadata, `metadata of ${event.streamId}@${event.revision}`) as unknown as EventMetadata,
  };
}

/** JSON events arrive parsed; binary ones (written by other tools) as bytes holding JSON, if anything. */
function asRecord(value: unknown, what: string): Record<string, unknown> {
  const parsed: unknown = value instanceof Uint8Array ? JSON.parse(Buffer.from(value).toString('utf8')) : value;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TypeError(`${what} is not a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** Our metadata is an interface (no index signature); the client wants a JSON object. */
function asJsonObject(metadata: EventMetadata): Record<string, unknown> {
  return { ...metadata };
}

function translate(error: unknown, stream?: string, expected?: ExpectedRevision): unknown {
  if (error instanceof WrongExpectedVersionError && stream !== undefined && expected !== undefined) {
    const actual = error.actualState === NO_STREAM ? 'no_stream' : Number(error.actualState);
    return new WrongExpectedRevisionError(stream, expected, actual);
  }
  if (
    error instanceof UnavailableError ||
    error instanceof DeadlineExceededError ||
    error instanceof NotLeaderError ||
    error instanceof CancelledError
  ) {
    return new EventStoreUnavailableError(`KurrentDB: ${error.message}`, { cause: error });
  }
  return error;
}
