// The production event store: KurrentDB (EventStoreDB) through its official client, 1.3.1. A thin
// mapping: the server does optimistic concurrency, idempotent writes (by event id) and catch-up
// subscriptions. What this file adds is what the port promises and the server leaves to its clients:
// resending appends the server dropped, resubscribing after a drop, closing what it opened, and reads
// that other tools' records on a shared server cannot break. Shapes and decisions live beside it:
// kurrent-decode.ts (records), kurrent-errors.ts (errors), kurrent-policy.ts (backoff, capabilities).
//
// Known limits, all from the client or the server rather than this file:
// - The Rust client behind stream and $all reads (@kurrent/bridge 0.2.2) has no close, and its
//   connection outlives garbage collection: a store that has read keeps that one connection open
//   until the process exits. Everything else it opened (gRPC channel, streams) is closed by close().
// - A caller's own retry with `any`/`stream_exists` is deduplicated by the server only while its
//   bounded cache of recent event ids remembers the first write; explicit revisions and `no_stream`
//   are checked against the index and always are (the command side uses those).
// - A multi-stream retry that is idempotent on some of its streams but not all is refused by the
//   server without naming a stream; it surfaces here as unavailable, not as a conflict.
import { randomUUID } from 'node:crypto';
import {
  BACKWARDS,
  END,
  FORWARDS,
  KurrentDBClient,
  NO_STREAM,
  START,
  StreamDeletedError,
  StreamNotFoundError,
  UnsupportedError,
  excludeSystemEvents,
  jsonEvent,
  type AllStreamResolvedEvent,
  type AppendStreamState,
  type ReadPosition,
  type ReadRevision,
} from '@kurrent/kurrentdb-client';
import { createLogger, type Logger } from '../log.js';
import { assertCount, validateAppends } from './append-validation.js';
import { inFlight } from './in-flight.js';
import {
  LOG_STREAM,
  decodeRecordedEvent,
  toKurrentPosition,
  toPosition,
  toProperties,
  type RecordedEventShape,
} from './kurrent-decode.js';
import { isResendable, translateAppendError, translateError } from './kurrent-errors.js';
import { multiStreamSupport, resendDelayMs, resubscribeDelayMs } from './kurrent-policy.js';
import {
  EventStoreUnavailableError,
  WrongExpectedRevisionError,
  type AppendResult,
  type BatchHandler,
  type EventStore,
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

export { LOG_STREAM } from './kurrent-decode.js';

const DEFAULT_READ_ALL_PAGE = 1000;
/** How far back a resend looks for an `any`/`stream_exists` write that may have landed (see findWritten). */
const RESEND_LOOKBACK = 1000;

export interface KurrentEventStoreOptions {
  /** Where the connect line (server version, multi-stream capability) and drops go. Default: info to stderr. */
  log?: Logger;
  /** How long opening keeps trying to reach the server before it gives up. Default 10 s. */
  connectTimeoutMs?: number;
}

export interface KurrentEventStore extends EventStore {
  /** The version the server reported at connect ('unknown' for servers without ServerFeatures). */
  readonly serverVersion: string;
}

/**
 * Members of the 1.3.1 client that are public at run time but `protected` in its typings. The client
 * itself uses `capabilities` to decide whether it may call multiStreamAppend, and it has no close():
 * `dispose()` only cancels streams, so the adapter closes the gRPC channel through `getChannel`, and
 * replaces `resolveUri` so nothing can open a new channel afterwards. A unit test pins these names.
 */
interface ClientInternals {
  readonly capabilities: Promise<{ serverVersion: string; supports(method: { path: string }): boolean }>;
  getChannel(): Promise<{ close(): void }>;
  resolveUri: () => Promise<string>;
}

/** The method the client's multiStreamAppend calls (and checks the server lists). */
export const APPEND_SESSION_METHOD = { path: '/kurrentdb.protocol.v2.streams.StreamsService/AppendSession' };

/**
 * Connect, ask the server what it is, log it, and return the store. `connectionString`: kurrentdb://…
 * or esdb://… as the client documents it. Fails with EventStoreUnavailableError when the server cannot
 * be reached within `connectTimeoutMs`, leaving nothing open.
 */
export async function openKurrentEventStore(connectionString: string, options: KurrentEventStoreOptions = {}): Promise<KurrentEventStore> {
  const log = options.log ?? createLogger('info');
  const opened = KurrentDBClient.connectionString(connectionString);
  let server: { serverVersion: string; appendSession: boolean };
  try {
    server = await probeServer(opened, options.connectTimeoutMs ?? 10_000);
  } catch (error) {
    await closeClient(opened);
    throw new EventStoreUnavailableError(`cannot reach KurrentDB at ${redacted(connectionString)}: ${translateError(error).message}`, { cause: error });
  }
  const support = multiStreamSupport(server.serverVersion, server.appendSession);
  // Chosen once, at connect, and said out loud: the command side writes differently without it.
  log.info('KurrentDB connected', {
    server_version: server.serverVersion,
    atomic_multi_stream: support.atomicMultiStream,
    reason: support.reason,
  });
  return kurrentEventStore(opened, server.serverVersion, support, log);
}

function kurrentEventStore(
  opened: KurrentDBClient,
  serverVersion: string,
  support: { atomicMultiStream: boolean; reason: string },
  log: Logger,
): KurrentEventStore {
  // Dropped on close, so the Rust client behind the reads (which has no close of its own) is freed.
  let client: KurrentDBClient | null = opened;
  const subscriptions = new Set<Subscription>();
  const appendsInFlight = inFlight<AppendResult>();
  const multiAppendsInFlight = inFlight<MultiAppendResult>();
  let logIdLoading: Promise<string> | null = null;
  let closing: Promise<void> | null = null;
  let skippedWarnings = 0;

  let acceptingAppends = true;
  /** Appends under way: close() lets them finish (they are bounded) before it closes the client. */
  const appendsUnderWay = new Set<Promise<unknown>>();

  function open(): KurrentDBClient {
    if (client === null) throw new EventStoreUnavailableError('event store is closed');
    return client;
  }

  function tracked<T>(work: Promise<T>): Promise<T> {
    appendsUnderWay.add(work);
    void work.finally(() => appendsUnderWay.delete(work)).catch(() => undefined);
    return work;
  }

  function noteSkipped(stream: string, revision: bigint, reason: string): void {
    // A shared server is full of other tools' records; say so a few times, not for every one of them.
    if (reason === 'system' || reason === 'log-marker' || skippedWarnings >= 20) return;
    skippedWarnings += 1;
    log.warn('KurrentDB record skipped: not a Planline event', { stream, revision: Number(revision), reason });
  }

  /** A record as the port's event, or undefined when it is not one of ours (see kurrent-decode.ts). */
  function decode(record: RecordedEventShape, commitPosition?: bigint): StoredEvent | undefined {
    const decoded = decodeRecordedEvent(record, commitPosition);
    if ('event' in decoded) return decoded.event;
    noteSkipped(record.streamId, record.revision, decoded.skip);
    return undefined;
  }

  // ---- appends -------------------------------------------------------------------------------

  async function append(stream: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    const [part] = validateAppends([{ stream, events, expected }]) as [StreamAppend];
    if (!acceptingAppends) throw new EventStoreUnavailableError(client === null ? 'event store is closed' : 'event store is closing');
    // Identical appends in flight in this process go to the server once (see in-flight.ts).
    return tracked(
      appendsInFlight.run(appendKey([part]), () => sendWithResends([part], () => appendOnce(part), (found) => found.streams[0]!)),
    );
  }

  async function appendOnce({ stream, events, expected }: StreamAppend): Promise<AppendResult> {
    const result = await open().appendToStream(
      stream,
      events.map((e) => jsonEvent({ id: e.id, type: e.type, data: e.data, metadata: { ...e.metadata } })),
      { streamState: toStreamState(expected) },
    );
    const nextRevision = Number(result.nextExpectedRevision);
    // Only when the connection string sets throwOnAppendFailure=false; keep the port's contract anyway.
    if (!result.success) throw new WrongExpectedRevisionError(stream, expected, nextRevision < 0 ? 'no_stream' : nextRevision);
    // Servers answer an idempotent replay with the original event's position, except old ones that
    // answer without one: the original event still has it.
    const position = result.position !== undefined ? toPosition(result.position.commit) : await positionOf(stream, nextRevision);
    return { nextRevision, position };
  }

  async function appendMulti(appends: readonly StreamAppend[]): Promise<MultiAppendResult> {
    const parts = validateAppends(appends);
    if (!acceptingAppends) throw new EventStoreUnavailableError(client === null ? 'event store is closed' : 'event store is closing');
    if (parts.length === 1) {
      // One stream is atomic on any server.
      const result = await append(parts[0]!.stream, parts[0]!.events, parts[0]!.expected);
      return { streams: [result], position: result.position };
    }
    if (!support.atomicMultiStream) {
      // Several streams cannot be one commit here, and faking it (one stream after another) would let a
      // reader see half of it, or a crash leave half of it. Refuse; callers check capabilities first.
      throw new EventStoreUnavailableError(`appendMulti of ${parts.length} streams refused: ${support.reason}`);
    }
    return tracked(multiAppendsInFlight.run(appendKey(parts), () => sendWithResends(parts, () => multiAppendOnce(parts), (found) => found)));
  }

  async function multiAppendOnce(parts: StreamAppend[]): Promise<MultiAppendResult> {
    let response;
    try {
      response = await open().multiStreamAppend(
        parts.map(({ stream, events, expected }) => ({
          streamName: stream,
          expectedState: toStreamState(expected),
          // The client sends metadata as string-valued properties and refuses anything else;
          // kurrent-decode.ts turns them back into the metadata that was written.
          events: events.map((e) => jsonEvent({ id: e.id, type: e.type, data: e.data, metadata: toProperties(e.metadata) })),
        })),
      );
    } catch (error) {
      // The server stopped offering it (a failover to an older node): refuse as at connect.
      if (error instanceof UnsupportedError) {
        throw new EventStoreUnavailableError(`appendMulti refused: the server no longer offers multi-stream append (${error.message})`);
      }
      throw error;
    }
    const position = toPosition(response.position);
    const revisions = response.responses.map((r) => Number(r.revision));
    if (revisions.length !== parts.length) throw new EventStoreUnavailableError(`KurrentDB answered ${revisions.length} streams for ${parts.length}`);
    // The server reports one position, that of the last event (the last stream's). Each stream's own
    // last position is read back: the events are contiguous in the log, but positions are byte offsets.
    const streams = await Promise.all(
      parts.map(async ({ stream }, i) => ({
        nextRevision: revisions[i]!,
        position: i === parts.length - 1 ? position : await positionOf(stream, revisions[i]!),
      })),
    );
    return { streams, position };
  }

  /**
   * Send an append, and send the identical append again (same ids, same expected states) while the
   * outcome is unknown: the server answers a repeat idempotently. Bounded (kurrent-policy.ts).
   *
   * Idempotency of a repeat with an explicit revision or `no_stream` is checked against the stream's
   * index (durable). With `any` or `stream_exists` the server only checks a bounded in-memory cache of
   * recent event ids, so before resending such an append, look in the stream for the first copy.
   */
  async function sendWithResends<T>(
    parts: StreamAppend[],
    send: () => Promise<T>,
    fromFound: (found: MultiAppendResult) => T,
  ): Promise<T> {
    const expectedByStream = new Map(parts.map((p) => [p.stream, p.expected] as const));
    for (let sends = 1; ; sends++) {
      try {
        return await send();
      } catch (error) {
        const delay = isResendable(error) ? resendDelayMs(sends) : undefined;
        if (delay === undefined || client === null) {
          const translated = translateAppendError(error, expectedByStream);
          if (isResendable(error) && translated instanceof EventStoreUnavailableError) {
            translated.message = `${translated.message} (after ${sends} attempt${sends === 1 ? '' : 's'})`;
          }
          throw translated;
        }
        log.warn('KurrentDB append outcome unknown; sending it again', { streams: [...expectedByStream.keys()], attempt: sends, error: String(error) });
        await sleep(delay);
        const landed = await findWritten(parts);
        if (landed !== undefined) return fromFound(landed);
      }
    }
  }

  /**
   * The result of appends already in their streams, or undefined. Only for `any`/`stream_exists` parts
   * (the others are deduplicated by the server from its index); looks at the last RESEND_LOOKBACK
   * events of each stream, which holds a write made moments ago.
   */
  async function findWritten(parts: StreamAppend[]): Promise<MultiAppendResult | undefined> {
    if (!parts.some((p) => p.expected === 'any' || p.expected === 'stream_exists')) return undefined;
    try {
      const found: AppendResult[] = [];
      for (const { stream, events } of parts) {
        const tail = await readStream(stream, { direction: 'backwards', maxCount: Math.max(RESEND_LOOKBACK, events.length) });
        const last = tail.find((e) => e.id === events[events.length - 1]!.id);
        if (last === undefined) return undefined;
        found.push({ nextRevision: last.revision, position: last.position });
      }
      return { streams: found, position: found[found.length - 1]!.position };
    } catch {
      return undefined; // could not look: resend, and let the server decide
    }
  }

  async function positionOf(stream: string, revision: Revision): Promise<Position> {
    const [event] = await readStream(stream, { fromRevision: revision, maxCount: 1 });
    if (event === undefined) throw new EventStoreUnavailableError(`KurrentDB: ${stream}@${revision} was written but cannot be read`);
    return event.position;
  }

  // ---- reads ---------------------------------------------------------------------------------

  async function readStream(stream: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    const reader = open();
    if (typeof stream !== 'string' || stream.length === 0) throw new TypeError('stream name must be a non-empty string');
    if (options.maxCount !== undefined) assertCount(options.maxCount, 'maxCount');
    if (options.fromRevision !== undefined) assertCount(options.fromRevision, 'fromRevision');
    const direction = options.direction ?? 'forwards';
    if (options.maxCount === 0) return [];
    const fromRevision: ReadRevision =
      options.fromRevision !== undefined ? BigInt(options.fromRevision) : direction === 'forwards' ? START : END;
    const events: StoredEvent[] = [];
    try {
      for await (const resolved of reader.readStream(stream, {
        direction: direction === 'forwards' ? FORWARDS : BACKWARDS,
        fromRevision,
        ...(options.maxCount !== undefined ? { maxCount: options.maxCount } : {}),
      })) {
        if (resolved.event === undefined) continue;
        const event = decode(resolved.event, resolved.commitPosition);
        if (event !== undefined) events.push(event);
      }
    } catch (error) {
      // Not there, or deleted: both read as a stream that does not exist.
      if (error instanceof StreamNotFoundError || error instanceof StreamDeletedError) return [];
      throw translateError(error);
    }
    return events;
  }

  async function readAll(options: ReadAllOptions = {}): Promise<StoredEvent[]> {
    open();
    const after = options.after ?? 0;
    const maxCount = options.maxCount ?? DEFAULT_READ_ALL_PAGE;
    assertCount(after, 'after');
    assertCount(maxCount, 'maxCount');
    if (maxCount === 0) return [];
    try {
      return await readAllFrom(after > 0 ? toKurrentPosition(after) : START, after, maxCount);
    } catch (error) {
      // A number that is not an event's position may point inside a record, which the server refuses
      // ("invalid position", surfacing as an unknown error). Start at the event before it instead.
      if (after === 0 || isResendable(error)) throw translateError(error);
      try {
        return await readAllFrom(await boundaryAtOrBefore(after), after, maxCount);
      } catch (retryError) {
        throw translateError(retryError);
      }
    }
  }

  /**
   * Up to maxCount of our events strictly after `after`, reading forwards from `from`. A forward read of
   * $all includes the event AT its start position, and skipped records (system, foreign) count toward
   * the server's page, so pages continue from the last record seen until enough events are found.
   */
  async function readAllFrom(from: ReadPosition, after: Position, maxCount: number): Promise<StoredEvent[]> {
    const reader = open();
    const events: StoredEvent[] = [];
    let cursor: ReadPosition = from;
    let last = after;
    while (events.length < maxCount) {
      const pageSize = maxCount - events.length + 1;
      let received = 0;
      let moved = false;
      const page: AsyncIterable<AllStreamResolvedEvent> = reader.readAll({
        fromPosition: cursor,
        maxCount: pageSize,
        direction: FORWARDS,
        filter: excludeSystemEvents(),
      });
      for await (const resolved of page) {
        received += 1;
        const record = resolved.event;
        if (record === undefined) continue;
        cursor = record.position;
        const position = toPosition(record.position.commit);
        if (position <= last) continue;
        last = position;
        moved = true;
        if (events.length >= maxCount) continue;
        const event = decode(record);
        if (event !== undefined) events.push(event);
      }
      // A short page is the end of the log; a page that did not move us on would loop forever.
      if (received < pageSize || !moved) break;
    }
    return events;
  }

  /**
   * The position of the last record at or before `position` (START when there is none): a place the
   * server accepts to read from. Reads backwards from the end of the log, so it costs what lies after
   * `position`; only needed for numbers that are not positions of events.
   */
  async function boundaryAtOrBefore(position: Position): Promise<ReadPosition> {
    const reader = open();
    let cursor: ReadPosition = END;
    for (;;) {
      let received = 0;
      const page: AsyncIterable<AllStreamResolvedEvent> = reader.readAll({ fromPosition: cursor, maxCount: 500, direction: BACKWARDS, filter: excludeSystemEvents() });
      // Backwards from a record's position starts with the record before it: no repeats across pages.
      for await (const resolved of page) {
        received += 1;
        const record = resolved.event;
        if (record === undefined) continue;
        if (record.position.commit <= BigInt(position)) return record.position;
        cursor = record.position;
      }
      if (received < 500) return START;
    }
  }

  async function headPosition(): Promise<Position> {
    const reader = open();
    let cursor: ReadPosition = END;
    try {
      // The newest record that is one of ours: the head a reader of this store can reach.
      for (;;) {
        let received = 0;
        const page: AsyncIterable<AllStreamResolvedEvent> = reader.readAll({ fromPosition: cursor, direction: BACKWARDS, maxCount: 100, filter: excludeSystemEvents() });
        for await (const resolved of page) {
          received += 1;
          const record = resolved.event;
          if (record === undefined) continue;
          cursor = record.position;
          const event = decode(record);
          if (event !== undefined) return event.position;
        }
        if (received < 100) return 0;
      }
    } catch (error) {
      throw translateError(error);
    }
  }

  // ---- subscriptions -------------------------------------------------------------------------

  function subscribeToAll(options: SubscribeOptions, handler: BatchHandler): Subscription {
    open();
    const after = options.after ?? 0;
    assertCount(after, 'after');
    // Subscribing to a store that is closing gives a subscription that has already ended, as SQLite does.
    let stopped = closing !== null;
    let current: { unsubscribe(): Promise<void>; destroy(): void } | null = null;
    let wake: (() => void) | null = null;

    class HandlerFailed {
      constructor(readonly error: unknown) {}
    }

    async function endCurrent(): Promise<void> {
      const source = current;
      current = null;
      if (source === null) return;
      await source.unsubscribe().catch(() => undefined);
      // A cancelled gRPC stream does not always end the piped subscription stream; make sure it does.
      source.destroy();
    }

    /**
     * Deliver strictly after `after`, in order, never twice, and keep delivering across drops: a
     * transient error (unavailable, not leader, deadline…) or a stream that ends without close()
     * resubscribes from the last record seen, with backoff. Only close() or a handler error end it.
     */
    async function deliver(): Promise<void> {
      await Promise.resolve(); // the first event must not reach the handler before subscribeToAll returns
      let last = after;
      let from: ReadPosition | null = null;
      let failures = 0;
      while (!stopped) {
        try {
          // Resolved once, on the first successful connection; afterwards `from` is a record we saw.
          from ??= after > 0 ? await startAfter(after) : START;
          if (stopped) break;
          const source = open().subscribeToAll({ fromPosition: from, filter: excludeSystemEvents() });
          current = source;
          for await (const resolved of source as AsyncIterable<AllStreamResolvedEvent>) {
            if (stopped) break;
            failures = 0;
            const record = resolved.event;
            if (record === undefined) continue;
            from = record.position;
            const position = toPosition(record.position.commit);
            // Strictly after the checkpoint, and never twice, whatever the server resends.
            if (position <= last) continue;
            last = position;
            const event = decode(record);
            if (event === undefined) continue;
            try {
              // The server pushes one event at a time; a batch of one keeps back-pressure exact.
              await handler([event]);
            } catch (error) {
              throw new HandlerFailed(error);
            }
          }
          if (stopped || client === null) break;
          log.warn('KurrentDB subscription ended without close(); resubscribing', { after: last });
        } catch (error) {
          if (error instanceof HandlerFailed) throw error.error;
          if (stopped || client === null) break; // closed, or the store closed under it
          log.warn('KurrentDB subscription dropped; resubscribing', { after: last, error: String(error) });
        } finally {
          await endCurrent();
        }
        failures += 1;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, resubscribeDelayMs(failures));
          function done() {
            clearTimeout(timer);
            wake = null;
            resolve();
          }
          wake = done;
        });
      }
    }

    const done = deliver();
    done.catch(() => undefined); // failures are reported through `done`, never as unhandled rejections
    const subscription: Subscription = {
      done,
      async close() {
        stopped = true;
        wake?.();
        subscriptions.delete(subscription);
        await endCurrent();
        await done.catch(() => undefined);
      },
    };
    subscriptions.add(subscription);
    void done.finally(() => subscriptions.delete(subscription)).catch(() => undefined);
    return subscription;
  }

  /**
   * Where a subscription strictly after `after` starts: `after` itself when the server accepts it as
   * a position (every position this store hands out), else the last record before it.
   */
  async function startAfter(after: Position): Promise<ReadPosition> {
    const reader = open();
    try {
      for await (const resolved of reader.readAll({ fromPosition: toKurrentPosition(after), maxCount: 1, direction: FORWARDS, filter: excludeSystemEvents() })) {
        void resolved;
      }
      return toKurrentPosition(after);
    } catch (error) {
      if (isResendable(error)) throw error;
      return boundaryAtOrBefore(after);
    }
  }

  // ---- log id and lifecycle ------------------------------------------------------------------

  /** The log's identity: the first event of LOG_STREAM, created by whoever asks first. */
  async function loadOrCreateLogId(): Promise<string> {
    const existing = await readLogMarker();
    if (existing !== undefined) return existing;
    const id = randomUUID();
    const at = new Date().toISOString();
    try {
      await open().appendToStream(
        LOG_STREAM,
        jsonEvent({ id, type: 'LogCreated', data: { log_id: id, at }, metadata: { command_id: id, correlation_id: id, causation_id: id, at, schema_version: 1 } }),
        { streamState: NO_STREAM },
      );
    } catch (error) {
      // Someone else created it first: theirs is the log id.
      if (!(translateAppendError(error, new Map()) instanceof WrongExpectedRevisionError)) throw translateError(error);
    }
    const created = await readLogMarker();
    if (created === undefined) throw new EventStoreUnavailableError(`${LOG_STREAM} is empty right after it was written`);
    return created;
  }

  /** LOG_STREAM is hidden from decode (it is bookkeeping), so it is read raw here. */
  async function readLogMarker(): Promise<string | undefined> {
    try {
      for await (const resolved of open().readStream(LOG_STREAM, { maxCount: 1, fromRevision: START, direction: FORWARDS })) {
        const data = resolved.event?.data;
        const logId = typeof data === 'object' && data !== null ? (data as { log_id?: unknown }).log_id : undefined;
        return typeof logId === 'string' ? logId : resolved.event?.id;
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return undefined;
      throw translateError(error);
    }
    return undefined;
  }

  return {
    serverVersion,
    capabilities: { atomicMultiStream: support.atomicMultiStream },
    append,
    appendMulti,
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
    close() {
      closing ??= (async () => {
        // Subscriptions first: their handlers may still append, and those appends must land. Then the
        // appends under way finish (resends are bounded), and only then is the client closed.
        await Promise.all([...subscriptions].map((s) => s.close()));
        acceptingAppends = false;
        await Promise.allSettled([...appendsUnderWay]);
        const closed = client;
        client = null;
        if (closed !== null) await closeClient(closed);
      })();
      return closing;
    },
  };
}

/** What identifies an append for merging: its streams, expected states and event ids, in order. */
function appendKey(parts: StreamAppend[]): string {
  return JSON.stringify(parts.map((p) => [p.stream, p.expected, p.events.map((e) => e.id)]));
}

function toStreamState(expected: ExpectedRevision): AppendStreamState {
  return typeof expected === 'number' ? BigInt(expected) : expected;
}

/** Ask the server what it is (ServerFeatures), retrying while it cannot be reached, up to `timeoutMs`. */
async function probeServer(client: KurrentDBClient, timeoutMs: number): Promise<{ serverVersion: string; appendSession: boolean }> {
  const deadline = Date.now() + timeoutMs;
  for (let failures = 1; ; failures++) {
    try {
      const features = await (client as unknown as ClientInternals).capabilities;
      return { serverVersion: features.serverVersion, appendSession: features.supports(APPEND_SESSION_METHOD) };
    } catch (error) {
      const delay = resubscribeDelayMs(failures);
      if (Date.now() + delay > deadline) throw error;
      await sleep(delay);
    }
  }
}

/**
 * Close everything a client opened: its streams (dispose), its gRPC channel (dispose leaves it open,
 * and with it the HTTP/2 connection), and the possibility of opening another. The Rust client behind
 * the reads has no close in bridge 0.2.2; the adapter drops its last reference to it on close.
 */
async function closeClient(client: KurrentDBClient): Promise<void> {
  const internals = client as unknown as ClientInternals;
  await client.dispose().catch(() => undefined);
  internals.resolveUri = () => Promise.reject(new EventStoreUnavailableError('event store is closed'));
  try {
    (await internals.getChannel()).close();
  } catch {
    // No channel was open (the replaced resolveUri refused to make one): nothing to close.
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The connection string without credentials, for messages. */
function redacted(connectionString: string): string {
  return connectionString.replace(/\/\/[^@/]*@/, '//***@');
}
