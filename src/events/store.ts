// The event store port: the only source of truth. Three adapters implement it (sqlite-store.ts,
// kurrent-store.ts, postgres-store.ts) and one contract suite (tests/contract/event-store.contract.ts)
// proves them all.

/**
 * A place in the global order ($all). Monotonic across the whole log; 0 means "before the first event".
 * SQLite and PostgreSQL: 1, 2, 3 … without gaps. KurrentDB: the commit position (increasing, with
 * gaps), kept as a number because it stays below 2^53 for any log this side of nine petabytes.
 */
export type Position = number;

/** Revision of an event within its stream: 0 for the first event, as in EventStoreDB. */
export type Revision = number;

/** Expected state of a stream before an append: a revision (of its last event) or a stream state. */
export type ExpectedRevision = Revision | 'no_stream' | 'stream_exists' | 'any';

export interface EventMetadata {
  /** The command that caused this event; event ids derive from it, so retries are idempotent. */
  command_id: string;
  /** The conversation this belongs to (the first command's id, carried along). */
  correlation_id: string;
  /** The command or event that directly caused this one. */
  causation_id: string;
  /** ISO-8601 time the decision was taken. */
  at: string;
  /** Version of the event's data schema when written; older versions are upcast on read. */
  schema_version: number;
  /**
   * Hash of the request that carried a client-given idempotency key: a retry must match it, so a key
   * reused for a different request is refused instead of being answered as a duplicate.
   */
  request_fingerprint?: string;
  /**
   * The principal (a token's `sub`, or `local` with auth off) whose command this event records, so the
   * history says who did what. Absent for events written before principals, and for commands Planline
   * issues itself (the approval timer, the executor).
   */
  principal?: string;
}

/** An event about to be appended. `id` must be a UUID, deterministic for a retried command. */
export interface NewEvent {
  id: string;
  type: string;
  data: Record<string, unknown>;
  metadata: EventMetadata;
}

/** An event as read back from the store. */
export interface StoredEvent extends NewEvent {
  stream: string;
  revision: Revision;
  position: Position;
}

export interface AppendResult {
  /** Revision of the last event in the stream after the append (pass it as the next expected revision). */
  nextRevision: Revision;
  /** Global position of the last event appended. */
  position: Position;
}

/** One stream's part of an atomic multi-stream append. */
export interface StreamAppend {
  stream: string;
  events: NewEvent[];
  expected: ExpectedRevision;
}

export interface MultiAppendResult {
  /** One result per StreamAppend, in the order given. */
  streams: AppendResult[];
  /** Position of the last event appended: the end of the append's position range. */
  position: Position;
}

export interface ReadStreamOptions {
  /** First revision to return (inclusive). Default: 0 forwards, the last event backwards. */
  fromRevision?: Revision;
  direction?: 'forwards' | 'backwards';
  /** Default: all of it. */
  maxCount?: number;
}

export interface ReadAllOptions {
  /** Return events strictly after this position. Default 0 (from the start). */
  after?: Position;
  /** Default 1000. */
  maxCount?: number;
}

export interface SubscribeOptions {
  /** Deliver events strictly after this position (a checkpoint). Default 0: from the start. */
  after?: Position;
  /** Largest batch handed to the handler at once (the SQLite adapter batches; KurrentDB may send 1). */
  maxBatch?: number;
}

/**
 * A catch-up subscription to $all. The handler is awaited before the next batch is delivered
 * (back-pressure), batches arrive in position order, and no event is delivered twice or skipped,
 * including at the switch from catch-up to live.
 */
export interface Subscription {
  /** Stop delivering; resolves once the handler is no longer running. */
  close(): Promise<void>;
  /** Resolves when closed; rejects if the subscription failed (including a handler that threw). */
  readonly done: Promise<void>;
}

export type BatchHandler = (events: StoredEvent[]) => Promise<void> | void;

/** What an adapter can promise beyond the basics; callers choose their strategy from it. */
export interface StoreCapabilities {
  /**
   * appendMulti writes several streams as one atomic commit. When false (a KurrentDB server older than
   * 25.1), appendMulti refuses more than one stream: write one stream, then follow up on the others.
   */
  readonly atomicMultiStream: boolean;
}

export interface EventStore {
  /** Known once the store is open (an adapter that must ask its server asks while opening). */
  readonly capabilities: StoreCapabilities;
  /** Append atomically with optimistic concurrency. Durable before it resolves. */
  append(stream: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult>;
  /**
   * Append to several streams as one commit: every expected revision holds and everything is written,
   * or nothing is (the conflict names the first stream whose expectation failed). The events take one
   * contiguous range of the global order, in the order given, so a subscriber sees them together. A
   * stream may appear once. A retry of the same appends (same ids) answers with the original result.
   */
  appendMulti(appends: readonly StreamAppend[]): Promise<MultiAppendResult>;
  /** Events of one stream. A stream that does not exist reads as []. */
  readStream(stream: string, options?: ReadStreamOptions): Promise<StoredEvent[]>;
  /** Events of every stream in global order, one page at a time. System events are never returned. */
  readAll(options?: ReadAllOptions): Promise<StoredEvent[]>;
  /** Position of the last event in the log (0 when empty). */
  headPosition(): Promise<Position>;
  subscribeToAll(options: SubscribeOptions, handler: BatchHandler): Subscription;
  /** Stable identity of this log (epochs of the client feed derive from it). */
  logId(): Promise<string>;
  close(): Promise<void>;
}

/** Another writer got there first. Carries what the caller needs to retry or explain. */
export class WrongExpectedRevisionError extends Error {
  override readonly name = 'WrongExpectedRevisionError';
  constructor(
    readonly stream: string,
    readonly expected: ExpectedRevision,
    /** Revision of the stream's last event, or 'no_stream'. */
    readonly actual: Revision | 'no_stream',
  ) {
    super(`stream ${stream}: expected revision ${String(expected)}, actual ${String(actual)}`);
  }
}

/** The store cannot be reached or failed; not the caller's fault. */
export class EventStoreUnavailableError extends Error {
  override readonly name = 'EventStoreUnavailableError';
}
