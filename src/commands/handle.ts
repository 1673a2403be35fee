// Command handling: load → decide → append, for one stream or for several in one commit.
//  - Idempotent: events carry the command id; a command already in the stream returns its original
//    result, and event ids derive from the command id, so even a retried append writes nothing twice.
//  - Optimistic: the append names the revision the decision was made on; a conflict reloads and
//    decides again, a bounded number of times. If-Match pins the revision instead (412 on mismatch).
//  - Cached: folded states stay in an LRU keyed by stream, so a hot aggregate is not re-read per
//    command; a stale entry (another process appended) shows up as a conflict and is reloaded.
//  - Serialized per stream within this process, so concurrent commands on one plan queue instead of
//    racing to conflicts.
import { SCHEMA_VERSIONS, toDomainEvent, validateEvent, type DomainEvent } from '../events/catalog.js';
import { eventIdFor } from '../events/ids.js';
import {
  WrongExpectedRevisionError,
  type EventStore,
  type NewEvent,
  type Position,
  type Revision,
  type StreamAppend,
  type AppendResult,
  type MultiAppendResult,
} from '../events/store.js';
import { conflict, DomainError, staleRevision } from './errors.js';

export interface Evolver<S, E extends DomainEvent> {
  initialState(): S;
  evolve(state: S, event: E): S;
}

export interface CommandMeta {
  /** Client-given (Idempotency-Key / command_id) or generated. */
  command_id: string;
  correlation_id?: string | undefined;
  causation_id?: string | undefined;
  /** If-Match: decide only on exactly this stream revision. */
  expected_revision?: number | undefined;
  /** Hash of the request behind a client-given command id; a retry with another request is refused. */
  request_fingerprint?: string | undefined;
  /** Who sends the command (recorded in every event's metadata); undefined for Planline's own commands. */
  principal?: string | undefined;
}

export interface Loaded<S> {
  state: S;
  /** Revision of the stream's last event; -1 when the stream does not exist. */
  revision: Revision;
  /** Global position of the stream's last event; 0 when it does not exist. */
  position: Position;
}

export interface Executed<S> extends Loaded<S> {
  stream: string;
  /** Types of the events this command appended (empty for a no-op or a duplicate). */
  appended: string[];
  /**
   * The events this command id wrote to the stream: just now, or, for a duplicate, the first time
   * (so a retried use case can finish the follow-ups those events record).
   */
  events: DomainEvent[];
  /** True when this command id had already been applied to the stream. */
  duplicate: boolean;
}

/** Loads another stream for a multi-stream decision; events decided for it expect the revision loaded. */
export type StreamLoader = <S, E extends DomainEvent>(stream: string, evolver: Evolver<S, E>) => Promise<S>;

/** Events a multi-stream decision writes to one stream. */
export interface StreamWrite {
  stream: string;
  events: DomainEvent[];
}

export interface ExecutedAcross {
  /** Highest log position the command reached (its own commit, or the original one for a duplicate). */
  position: Position;
  /** True when this command id had already been applied (to the primary stream). */
  duplicate: boolean;
  /** Per stream written now: its state after the commit and the event types appended. */
  written: Map<string, { state: unknown; revision: Revision; appended: string[] }>;
  /** The events the command wrote to the primary stream: now, or the first time for a duplicate. */
  primaryEvents: DomainEvent[];
}

interface CacheEntry<S> extends Loaded<S> {
  /** command id → revisions it wrote and the position it reached. */
  commands: Map<string, { first: Revision; revision: Revision; position: Position }>;
}

export interface CommandHandlerOptions {
  cacheSize?: number;
  maxAttempts?: number;
  clock?: () => Date;
}

export type CommandHandler = ReturnType<typeof createCommandHandler>;

export function createCommandHandler(store: EventStore, options: CommandHandlerOptions = {}) {
  const cacheSize = options.cacheSize ?? 10_000;
  const maxAttempts = options.maxAttempts ?? 5;
  const clock = options.clock ?? (() => new Date());
  const cache = new Map<string, CacheEntry<unknown>>();
  const queues = new Map<string, Promise<unknown>>();

  function remember<S>(stream: string, entry: CacheEntry<S>): void {
    cache.delete(stream);
    cache.set(stream, entry as CacheEntry<unknown>);
    if (cache.size > cacheSize) cache.delete(cache.keys().next().value!);
  }

  async function loadEntry<S, E extends DomainEvent>(stream: string, evolver: Evolver<S, E>): Promise<CacheEntry<S>> {
    const cached = cache.get(stream) as CacheEntry<S> | undefined;
    if (cached) return cached;
    const entry: CacheEntry<S> = { state: evolver.initialState(), revision: -1, position: 0, commands: new Map() };
    for (const stored of await store.readStream(stream)) {
      const event = toDomainEvent(stored);
      if (event) entry.state = evolver.evolve(entry.state, event as E);
      entry.revision = stored.revision;
      entry.position = stored.position;
      const seen = entry.commands.get(stored.metadata.command_id);
      entry.commands.set(stored.metadata.command_id, {
        first: seen?.first ?? stored.revision,
        revision: stored.revision,
        position: stored.position,
      });
    }
    remember(stream, entry);
    return entry;
  }

  /**
   * The cached entry caught up with the log: another process may have appended since it was cached.
   * One read of the events after the cached revision (usually none), for decisions that must not act
   * on a stale state without a conflict to correct them (access checks: a revoked share ends at once).
   */
  async function freshEntry<S, E extends DomainEvent>(stream: string, evolver: Evolver<S, E>): Promise<CacheEntry<S>> {
    const cached = cache.get(stream) as CacheEntry<S> | undefined;
    if (!cached) return loadEntry(stream, evolver);
    const newer = await store.readStream(stream, { fromRevision: cached.revision + 1 });
    if (newer.length === 0) return cached;
    const entry: CacheEntry<S> = { state: cached.state, revision: cached.revision, position: cached.position, commands: new Map(cached.commands) };
    for (const stored of newer) {
      const event = toDomainEvent(stored);
      if (event) entry.state = evolver.evolve(entry.state, event as E);
      entry.revision = stored.revision;
      entry.position = stored.position;
      const seen = entry.commands.get(stored.metadata.command_id);
      entry.commands.set(stored.metadata.command_id, { first: seen?.first ?? stored.revision, revision: stored.revision, position: stored.position });
    }
    // Replaced only if nothing newer was cached meanwhile (a command of this process appended).
    if (cache.get(stream) === cached) remember(stream, entry);
    return entry;
  }

  /**
   * A decision taken on cached state is checked by the append's expected revision, except when it
   * appends nothing: a no-op ("already done") or a refusal (409) decided on a state another process
   * has moved past would go uncorrected. Those two outcomes are confirmed against the log (one small
   * read per stream decided on from the cache); a stale cache makes the command decide again, fresh.
   */
  async function checkedDecision<T extends readonly unknown[]>(cached: ReadonlyArray<{ stream: string; revision: Revision }>, decide: () => Promise<T>): Promise<T> {
    let outcome: T;
    try {
      outcome = await decide();
    } catch (error) {
      if (error instanceof DomainError && (await anyNewer(cached))) throw new StaleCache();
      throw error;
    }
    if (outcome.length === 0 && (await anyNewer(cached))) throw new StaleCache();
    return outcome;
  }

  async function anyNewer(cached: ReadonlyArray<{ stream: string; revision: Revision }>): Promise<boolean> {
    for (const { stream, revision } of cached) {
      if ((await store.readStream(stream, { fromRevision: revision + 1, maxCount: 1 })).length > 0) return true;
    }
    return false;
  }

  /** The events a command id wrote to a stream the first time; refuses a reused key with another request. */
  async function originalEvents(
    stream: string,
    done: { first: Revision; revision: Revision },
    meta: CommandMeta,
  ): Promise<DomainEvent[]> {
    const original = await store.readStream(stream, { fromRevision: done.first, maxCount: done.revision - done.first + 1 });
    const recorded = original[0]?.metadata.request_fingerprint;
    if (meta.request_fingerprint !== undefined && recorded !== undefined && recorded !== meta.request_fingerprint) {
      throw new DomainError(
        'idempotency_key_reused',
        422,
        'this Idempotency-Key was already used for a different request; use a new key for a new request',
        { stream },
      );
    }
    return original.map(toDomainEvent).filter((e): e is DomainEvent => e !== undefined);
  }

  /**
   * Where the commit that wrote `position` for this command ends: a multi-stream commit's events are
   * contiguous in the log and all carry the command id, so the run after it tells.
   */
  async function commitEnd(position: Position, commandId: string): Promise<Position> {
    let end = position;
    for (;;) {
      const next = await store.readAll({ after: end, maxCount: 50 });
      const run = next.findIndex((event) => event.metadata.command_id !== commandId);
      const within = run === -1 ? next : next.slice(0, run);
      if (within.length === 0) return end;
      end = within[within.length - 1]!.position;
      if (run !== -1 || next.length < 50) return end;
    }
  }

  async function attemptAcross<S, E extends DomainEvent>(
    primary: { stream: string; evolver: Evolver<S, E> },
    meta: CommandMeta,
    decide: (state: S, load: StreamLoader) => StreamWrite[] | Promise<StreamWrite[]>,
  ): Promise<ExecutedAcross> {
    const cachedAtStart = new Set<string>();
    if (cache.has(primary.stream)) cachedAtStart.add(primary.stream);
    const entry = await loadEntry(primary.stream, primary.evolver);
    const done = entry.commands.get(meta.command_id);
    if (done) {
      const primaryEvents = await originalEvents(primary.stream, done, meta);
      return { position: await commitEnd(done.position, meta.command_id), duplicate: true, written: new Map(), primaryEvents };
    }
    if (meta.expected_revision !== undefined && meta.expected_revision !== entry.revision) {
      throw staleRevision(primary.stream, meta.expected_revision, entry.revision);
    }
    const loaded = new Map<string, { entry: CacheEntry<unknown>; evolver: Evolver<unknown, DomainEvent> }>();
    loaded.set(primary.stream, { entry: entry as CacheEntry<unknown>, evolver: primary.evolver as unknown as Evolver<unknown, DomainEvent> });
    const load: StreamLoader = async <S2, E2 extends DomainEvent>(stream: string, evolver: Evolver<S2, E2>) => {
      let known = loaded.get(stream);
      if (known === undefined) {
        if (cache.has(stream)) cachedAtStart.add(stream);
        known = { entry: (await loadEntry(stream, evolver)) as CacheEntry<unknown>, evolver: evolver as unknown as Evolver<unknown, DomainEvent> };
        loaded.set(stream, known);
      }
      return known.entry.state as S2;
    };

    const writes = await checkedDecision(
      [...loaded].filter(([stream]) => cachedAtStart.has(stream)).map(([stream, known]) => ({ stream, revision: known.entry.revision })),
      async () => (await decide(entry.state, load)).filter((w) => w.events.length > 0),
    );
    const at = clock().toISOString();
    const appends: StreamAppend[] = writes.map(({ stream, events }) => {
      const known = loaded.get(stream);
      if (known === undefined) throw new Error(`a decision wrote to ${stream} without loading it first`);
      const validated = events.map(validateEvent);
      return {
        stream,
        events: toNewEvents(validated, stream, known.entry.revision + 1, meta, at),
        expected: known.entry.revision < 0 ? 'no_stream' : known.entry.revision,
      };
    });
    if (appends.length === 0) {
      return { position: entry.position, duplicate: false, written: new Map(), primaryEvents: [] };
    }
    const result = appends.length === 1 || store.capabilities.atomicMultiStream ? await store.appendMulti(appends) : await appendInTurn(appends);
    const written = new Map<string, { state: unknown; revision: Revision; appended: string[] }>();
    writes.forEach(({ stream, events }, index) => {
      const known = loaded.get(stream)!;
      const outcome = result.streams[index]!;
      let state = known.entry.state;
      for (const event of events) state = known.evolver.evolve(state, event);
      // Mutating the cached map is safe for the primary stream (serialized below); another stream's
      // entry is replaced wholesale, so a concurrent reader sees the old entry or the new one.
      const commands = (stream === primary.stream ? known.entry.commands : new Map(known.entry.commands)).set(meta.command_id, {
        first: known.entry.revision + 1,
        revision: outcome.nextRevision,
        position: outcome.position,
      });
      remember(stream, { state, revision: outcome.nextRevision, position: outcome.position, commands });
      written.set(stream, { state, revision: outcome.nextRevision, appended: events.map((e) => e.type) });
    });
    const primaryEvents = writes.find((w) => w.stream === primary.stream)?.events ?? [];
    return { position: result.position, duplicate: false, written, primaryEvents };
  }

  /**
   * A store that cannot write several streams atomically (KurrentDB before 25.1) gets them one at a
   * time, the primary stream first: its event records the intent, so if a later append fails (a crash,
   * a conflict) a retry of the command finds it applied and finishes what it recorded.
   */
  async function appendInTurn(appends: readonly StreamAppend[]): Promise<MultiAppendResult> {
    const streams: AppendResult[] = [];
    for (const { stream, events, expected } of appends) streams.push(await store.append(stream, events, expected));
    return { streams, position: Math.max(...streams.map((s) => s.position)) };
  }

  /** Run `task` after every earlier task on the same stream (in this process) has finished. */
  function serialized<T>(stream: string, task: () => Promise<T>): Promise<T> {
    const previous = queues.get(stream) ?? Promise.resolve();
    const run = previous.then(task, task);
    const tail = run.catch(() => undefined);
    queues.set(stream, tail);
    void tail.then(() => {
      if (queues.get(stream) === tail) queues.delete(stream);
    });
    return run;
  }

  async function attempt<S, E extends DomainEvent>(
    stream: string,
    evolver: Evolver<S, E>,
    meta: CommandMeta,
    decide: (state: S) => E[] | Promise<E[]>,
  ): Promise<Executed<S>> {
    const fromCache = cache.has(stream);
    const entry = await loadEntry(stream, evolver);
    const done = entry.commands.get(meta.command_id);
    if (done) {
      const events = await originalEvents(stream, done, meta);
      return { stream, state: entry.state, revision: done.revision, position: done.position, appended: [], events, duplicate: true };
    }
    if (meta.expected_revision !== undefined && meta.expected_revision !== entry.revision) {
      throw staleRevision(stream, meta.expected_revision, entry.revision);
    }
    const events = await checkedDecision(fromCache ? [{ stream, revision: entry.revision }] : [], async () =>
      (await decide(entry.state)).map((e) => validateEvent(e) as E),
    );
    if (events.length === 0) {
      return {
        stream,
        state: entry.state,
        revision: entry.revision,
        position: entry.position,
        appended: [],
        events: [],
        duplicate: false,
      };
    }
    const firstRevision = entry.revision + 1;
    const batch = toNewEvents(events, stream, firstRevision, meta, clock().toISOString());
    const result = await store.append(stream, batch, entry.revision < 0 ? 'no_stream' : entry.revision);
    let state = entry.state;
    for (const event of events) state = evolver.evolve(state, event);
    // Mutating the cached map is safe: this stream's commands run one at a time (serialized below).
    const commands = entry.commands.set(meta.command_id, {
      first: firstRevision,
      revision: result.nextRevision,
      position: result.position,
    });
    remember(stream, { state, revision: result.nextRevision, position: result.position, commands });
    return {
      stream,
      state,
      revision: result.nextRevision,
      position: result.position,
      appended: events.map((e) => e.type),
      events,
      duplicate: false,
    };
  }

  return {
    clock,

    /**
     * Current state of a stream, as the command side sees it. `fresh` first catches the cached state up
     * with the log (one read), for checks that another process's appends must reach at once.
     */
    async load<S, E extends DomainEvent>(stream: string, evolver: Evolver<S, E>, options: { fresh?: boolean } = {}): Promise<Loaded<S>> {
      const { state, revision, position } = await (options.fresh ? freshEntry(stream, evolver) : loadEntry(stream, evolver));
      return { state, revision, position };
    },

    /**
     * Decide on the stream's current state and append. `decide` may load other streams' states
     * (it runs again, with fresh loads, after a conflict) but appends only to this stream.
     */
    execute<S, E extends DomainEvent>(
      stream: string,
      evolver: Evolver<S, E>,
      meta: CommandMeta,
      decide: (state: S) => E[] | Promise<E[]>,
    ): Promise<Executed<S>> {
      return serialized(stream, async () => {
        for (let tries = 1; ; tries++) {
          try {
            return await attempt(stream, evolver, meta, decide);
          } catch (error) {
            // Whatever failed, the cached state may be behind the log now.
            cache.delete(stream);
            if (error instanceof StaleCache) {
              if (tries < maxAttempts) continue;
              throw conflict('concurrency_conflict', 'the state kept changing under this command; try again', { attempts: tries });
            }
            if (!(error instanceof WrongExpectedRevisionError)) throw error;
            if (meta.expected_revision !== undefined) {
              const fresh = await loadEntry(stream, evolver);
              if (fresh.commands.has(meta.command_id)) continue;
              throw staleRevision(stream, meta.expected_revision, fresh.revision);
            }
            if (tries >= maxAttempts) {
              throw conflict('concurrency_conflict', `${stream} kept changing under this command; try again`, {
                stream,
                attempts: tries,
              });
            }
          }
        }
      });
    },

    /**
     * One command that writes several streams in ONE commit (an atomic multi-stream append). `decide`
     * gets the primary stream's state and a loader for any other stream; every stream it writes to must
     * have been loaded, and is appended expecting the revision it was loaded at, so a concurrent change
     * to any of them conflicts the whole commit, which is then decided again on fresh state. The
     * primary stream carries the idempotency check and If-Match, and serializes these commands in this
     * process.
     */
    executeAcross<S, E extends DomainEvent>(
      primary: { stream: string; evolver: Evolver<S, E> },
      meta: CommandMeta,
      decide: (state: S, load: StreamLoader) => StreamWrite[] | Promise<StreamWrite[]>,
    ): Promise<ExecutedAcross> {
      return serialized(primary.stream, async () => {
        for (let tries = 1; ; tries++) {
          const involved = new Set<string>([primary.stream]);
          try {
            return await attemptAcross(primary, meta, async (state, load) => {
              const tracked: StreamLoader = (stream, evolver) => {
                involved.add(stream);
                return load(stream, evolver);
              };
              return decide(state, tracked);
            });
          } catch (error) {
            // Whatever failed, the cached states may be behind the log now.
            for (const stream of involved) cache.delete(stream);
            if (error instanceof StaleCache) {
              if (tries < maxAttempts) continue;
              throw conflict('concurrency_conflict', 'the state kept changing under this command; try again', { attempts: tries });
            }
            if (!(error instanceof WrongExpectedRevisionError)) throw error;
            if (meta.expected_revision !== undefined && error.stream === primary.stream) {
              const fresh = await loadEntry(primary.stream, primary.evolver);
              if (fresh.commands.has(meta.command_id)) continue;
              throw staleRevision(primary.stream, meta.expected_revision, fresh.revision);
            }
            if (tries >= maxAttempts) {
              throw conflict('concurrency_conflict', `${error.stream} kept changing under this command; try again`, {
                stream: error.stream,
                attempts: tries,
              });
            }
          }
        }
      });
    },

    /** Forget cached state (tests, and after an import rewrote the log). */
    forget(stream?: string): void {
      if (stream === undefined) cache.clear();
      else cache.delete(stream);
    },
  };
}

function toNewEvents(events: readonly DomainEvent[], stream: string, firstRevision: Revision, meta: CommandMeta, at: string): NewEvent[] {
  return events.map((event, index) => ({
    id: eventIdFor(meta.command_id, stream, firstRevision + index),
    type: event.type,
    data: event.data as Record<string, unknown>,
    metadata: {
      command_id: meta.command_id,
      correlation_id: meta.correlation_id ?? meta.command_id,
      causation_id: meta.causation_id ?? meta.command_id,
      at,
      schema_version: SCHEMA_VERSIONS[event.type],
      ...(meta.request_fingerprint !== undefined ? { request_fingerprint: meta.request_fingerprint } : {}),
      ...(meta.principal !== undefined ? { principal: meta.principal } : {}),
    },
  }));
}

/** Internal: a no-op or refusal was decided on a cached state the log has moved past; decide again. */
class StaleCache extends Error {
  override readonly name = 'StaleCache';
}

