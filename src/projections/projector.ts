// The projection runner: $all → a projection's apply() → one atomic commit per batch.
//
// It knows nothing about what a projection computes. What it guarantees:
// - exactly-once effect: a batch's read-model changes and its checkpoint commit together, a restarted
//   projector resumes after the committed checkpoint, and the store ignores a commit that does not move
//   the checkpoint forward — so a crash at any point neither loses nor double-applies an event;
// - one active projector per projection: it holds the lease `projection:<name>`, renews it every ttl/3,
//   and every commit is fenced by it; others stand by and take over once it lapses;
// - a version bump resets the projection's data and rebuilds it from position 0;
// - speed: documents are cached across batches (valid only while the lease is held), so a rebuild does
//   not read the store once per event.
import { randomUUID } from 'node:crypto';
import type { EventStore, Position, StoredEvent, Subscription } from '../events/store.js';
import { LeaseLostError, type Doc, type IndexEntry, type Lease, type ViewOp, type ViewStore } from './views.js';

/** A projection's window on the read models while it folds one batch of events. */
export interface ProjectionTx {
  /**
   * Read-through: this batch's pending writes first, then the projector's cache, then the store.
   * Documents handed out are deep-frozen (they are shared with the cache): build a new object to change
   * one, e.g. `tx.put(c, id, { ...doc, count: doc.count + 1 })`.
   */
  get(collection: string, id: string): Promise<Doc | undefined>;
  /** Stage a document; it is deep-frozen from here on. Committed with the rest of the batch. */
  put(collection: string, id: string, doc: Doc): void;
  delete(collection: string, id: string): void;
}

export interface Projection {
  /** e.g. 'views'; names the checkpoint and the lease `projection:<name>`. */
  name: string;
  /** Bump → the projector resets the projection's data and rebuilds from position 0. */
  version: number;
  /** Collections this projection owns: the only ones its tx may touch, and the ones reset deletes. */
  collections: readonly string[];
  /** Every index it writes starts with one of these (reset deletes `<prefix>*`). */
  indexPrefixes: readonly string[];
  /** Index membership of a document; the runner diffs old vs new membership into index/unindex ops. */
  indexesOf(collection: string, id: string, doc: Doc): IndexEntry[];
  /** Pure apart from tx: fold one event into the read models. Unknown event types are ignored. */
  apply(event: StoredEvent, tx: ProjectionTx): Promise<void> | void;
}

export interface ProjectorDeps {
  store: EventStore;
  views: ViewStore;
  projection: Projection;
  /** Lease owner; a random id by default. Give a stable one only if restarts should reclaim at once. */
  owner?: string;
  /** Lease time to live (default 10 s); renewed every ttl/3, standbys retry every ttl/3. */
  leaseTtlMs?: number;
  /** Largest batch of events folded into one commit (default 1000). */
  maxBatch?: number;
  /** Documents kept in memory across batches (default 100,000). */
  maxCachedDocs?: number;
  onCommitted?: (position: Position) => void;
  log?: (msg: string) => void;
}

export interface Projector {
  /** Last position this process committed or started from (a standby does not track the active one). */
  position(): Position;
  /**
   * True once the read models include `position` (committed here, or — on a standby — by the active
   * projector, seen through the checkpoint); false after timeoutMs (default 5 s) or on stop.
   */
  waitFor(position: Position, timeoutMs?: number): Promise<boolean>;
  /** Holds the lease and is projecting. */
  isActive(): boolean;
  /** Stop projecting and release the lease. */
  stop(): Promise<void>;
  /** Resolves once stopped. Failures do not end it: they are logged and retried with backoff. */
  readonly done: Promise<void>;
}

export interface RebuildDeps {
  store: EventStore;
  views: ViewStore;
  projection: Projection;
  onProgress?: (projected: number, position: Position) => void;
  /** Events read per readAll page and folded into one commit (default 2000). */
  pageSize?: number;
  /** The rebuild holds the projection's lease; it waits up to one ttl for a lapsed holder (default 10 s). */
  leaseTtlMs?: number;
  maxCachedDocs?: number;
}

export interface RebuildResult {
  events: number;
  position: Position;
  seconds: number;
}

const DEFAULT_LEASE_TTL_MS = 10_000;
const DEFAULT_MAX_BATCH = 1_000;
const DEFAULT_PAGE_SIZE = 2_000;
const DEFAULT_MAX_CACHED_DOCS = 100_000;
const DEFAULT_WAIT_MS = 5_000;
const MAX_BACKOFF_MS = 10_000;
const STANDBY_POLL_MS = 25;

export const leaseName = (projection: Projection): string => `projection:${projection.name}`;

export function startProjector(deps: ProjectorDeps): Projector {
  const { store, views, projection } = deps;
  const ttl = deps.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  const lease: Lease = { name: leaseName(projection), owner: deps.owner ?? `projector-${randomUUID()}` };
  const log = deps.log ?? ((msg: string) => console.warn(`[projector ${projection.name}] ${msg}`));
  const cache = documentCache(deps.maxCachedDocs ?? DEFAULT_MAX_CACHED_DOCS);
  const waiters = new Set<{ position: Position; settle: (reached: boolean) => void }>();

  let committed: Position = 0;
  let active = false;
  let stopping = false;
  // Ends the current active session (lease lost, stop); replaced at the start of each session.
  let endSession: () => void = () => {};
  // Wakes a sleeping standby or backoff so stop() is prompt.
  let wake: () => void = () => {};

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  function reached(position: Position): void {
    committed = position;
    for (const waiter of waiters) if (waiter.position <= position) waiter.settle(true);
  }

  // A standby learns what the active projector (in another process) committed by polling the checkpoint,
  // so waitFor() answers correctly on every instance, not only on the one holding the lease.
  let polling = false;
  async function pollCheckpointWhileStandby(): Promise<void> {
    if (polling) return;
    polling = true;
    try {
      while (waiters.size > 0 && !active && !stopping) {
        const checkpoint = await views.checkpoint(projection.name).catch(() => undefined);
        if (checkpoint !== undefined && checkpoint.version === projection.version && !active) {
          for (const waiter of waiters) if (waiter.position <= checkpoint.position) waiter.settle(true);
        }
        await new Promise((resolve) => setTimeout(resolve, STANDBY_POLL_MS));
      }
    } finally {
      polling = false;
    }
  }

  async function activeSession(leaseTakenAt: number): Promise<void> {
    active = true;
    cache.clear();
    let ended = false;
    const sessionEnded = new Promise<void>((resolve) => {
      endSession = () => {
        ended = true;
        resolve();
      };
    });

    // Renew every ttl/3 in the background (while idle, waiting for events) and inline before each commit
    // (a long catch-up runs on microtasks only and can starve timers). A refused or failed renewal means
    // another process may take over: stop applying. The local expiry fires no later than the store's, so
    // a stalled renewal demotes us before a standby can take over. (Commits are fenced regardless; this
    // stops wasted work and keeps isActive() honest.)
    const keeper = leaseKeeper(views, lease, ttl, leaseTakenAt);
    let localExpiry: NodeJS.Timeout | undefined;
    const armExpiry = () => {
      clearTimeout(localExpiry);
      localExpiry = setTimeout(() => {
        if (ended) return;
        if (Date.now() < keeper.expiresAt()) return armExpiry(); // renewed inline meanwhile
        log('lease renewal overdue; standing by');
        endSession();
      }, Math.max(0, keeper.expiresAt() - Date.now()));
    };
    armExpiry();
    const renewal = setInterval(() => {
      if (ended) return;
      keeper.renew().then(
        (held) => {
          if (ended) return;
          if (held) armExpiry();
          else {
            log('lease lost (taken by another owner, or it may have lapsed); standing by');
            endSession();
          }
        },
        (error: unknown) => {
          if (ended) return;
          log(`lease renewal failed (${describe(error)}); standing by`);
          endSession();
        },
      );
    }, Math.max(1, Math.floor(ttl / 3)));
    const pacer = eventLoopPacer();

    let subscription: Subscription | undefined;
    try {
      const checkpoint = await views.checkpoint(projection.name);
      let after: Position;
      if (checkpoint === undefined || checkpoint.version !== projection.version) {
        log(
          checkpoint === undefined
            ? `no checkpoint; building version ${projection.version} from the start`
            : `version ${checkpoint.version} → ${projection.version}; resetting and rebuilding from the start`,
        );
        await views.reset(projection.name, projection.collections, projection.indexPrefixes);
        await views.setVersion(projection.name, projection.version);
        cache.clearAsEmpty(); // we just emptied the store and hold the lease: a cache miss means "absent"
        after = 0;
      } else {
        after = checkpoint.position;
      }
      if (ended) return;
      reached(after);

      const handleBatch = async (events: StoredEvent[]): Promise<void> => {
        if (ended) throw new LeaseLostError(lease); // closing: apply nothing more
        const last = events[events.length - 1];
        if (last === undefined) return;
        await pacer.breathe();
        try {
          const { ops, settle } = await foldBatch(events, projection, views, cache);
          await keeper.ensure();
          await views.commit(projection.name, ops, last.position, lease);
          settle();
        } catch (error) {
          cache.clear(); // the cache may now be ahead of the store
          if (error instanceof LeaseLostError) {
            log(`commit up to ${last.position} refused: lease lost to another projector; standing by`);
            endSession();
          }
          throw error;
        }
        reached(last.position);
        deps.onCommitted?.(last.position);
      };

      subscription = store.subscribeToAll(
        { after, maxBatch: deps.maxBatch ?? DEFAULT_MAX_BATCH },
        handleBatch,
      );
      const failed = subscription.done.then(
        () => undefined,
        (error: unknown) => error,
      );
      const outcome = await Promise.race([failed, sessionEnded.then(() => undefined)]);
      // A subscription that ends on its own (its store closed) is a failure too: retry with backoff
      // rather than spin.
      if (!ended) throw outcome ?? new Error('the $all subscription ended');
    } finally {
      ended = true;
      clearInterval(renewal);
      clearTimeout(localExpiry);
      active = false;
      cache.clear();
      await subscription?.close().catch(() => {});
      subscription = undefined;
      void pollCheckpointWhileStandby();
    }
  }

  async function run(): Promise<void> {
    let failures = 0;
    let standingBy = false;
    while (!stopping) {
      let held: boolean;
      const askedAt = Date.now();
      try {
        held = await views.acquireLease(lease, ttl);
      } catch (error) {
        log(`cannot reach the view store to take the lease (${describe(error)})`);
        held = false;
      }
      if (stopping) break;
      if (!held) {
        if (!standingBy) log(`standby: lease ${lease.name} is held by another projector`);
        standingBy = true;
        await sleep(Math.max(1, Math.floor(ttl / 3)));
        continue;
      }
      if (standingBy) log('took over the lease; projecting');
      standingBy = false;
      try {
        await activeSession(askedAt);
        failures = 0;
      } catch (error) {
        if (stopping) break;
        failures++;
        const backoff = Math.min(100 * 2 ** Math.min(failures, 16), MAX_BACKOFF_MS);
        log(`projection failed after position ${committed} (${describe(error)}); retrying in ${backoff} ms`);
        await sleep(backoff);
      }
    }
  }

  const done = run().finally(async () => {
    for (const waiter of waiters) waiter.settle(false);
    await views.releaseLease(lease).catch(() => {});
  });

  return {
    position: () => committed,
    isActive: () => active,
    waitFor(position, timeoutMs = DEFAULT_WAIT_MS) {
      if (committed >= position) return Promise.resolve(true);
      if (stopping) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const waiter = {
          position,
          settle: (ok: boolean) => {
            clearTimeout(timer);
            waiters.delete(waiter);
            resolve(ok);
          },
        };
        const timer = setTimeout(() => waiter.settle(false), timeoutMs);
        waiters.add(waiter);
        if (!active) void pollCheckpointWhileStandby();
      });
    },
    async stop() {
      stopping = true;
      endSession();
      wake();
      await done;
    },
    done,
  };
}

/**
 * Rebuild a projection from the whole log: reset, setVersion, then readAll page by page, one commit per
 * page. Holds the projection's lease throughout, so it never races a running projector; a projector
 * that later takes over finds a current checkpoint and just continues.
 */
export async function rebuild(deps: RebuildDeps): Promise<RebuildResult> {
  const { store, views, projection } = deps;
  const started = performance.now();
  const ttl = deps.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  const pageSize = deps.pageSize ?? DEFAULT_PAGE_SIZE;
  const lease: Lease = { name: leaseName(projection), owner: `rebuild-${randomUUID()}` };

  const deadline = Date.now() + ttl;
  let leaseTakenAt = Date.now();
  while (!(await views.acquireLease(lease, ttl))) {
    if (Date.now() >= deadline) {
      throw new Error(`cannot rebuild ${projection.name}: lease ${lease.name} is held by a running projector; stop it first`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.floor(ttl / 10))));
    leaseTakenAt = Date.now();
  }
  // Renewed in the background (a reset of a big projection takes a while) and inline before each commit
  // (folding runs on microtasks and can starve timers); a lapse aborts the rebuild with LeaseLostError.
  const keeper = leaseKeeper(views, lease, ttl, leaseTakenAt);
  const renewal = setInterval(() => {
    keeper.renew().catch(() => {});
  }, Math.max(1, Math.floor(ttl / 3)));
  const pacer = eventLoopPacer();

  const cache = documentCache(deps.maxCachedDocs ?? DEFAULT_MAX_CACHED_DOCS);
  let position: Position = 0;
  let events = 0;
  try {
    await views.reset(projection.name, projection.collections, projection.indexPrefixes);
    await views.setVersion(projection.name, projection.version);
    cache.clearAsEmpty();
    // Pipelined: page N+1 is folded while page N's commit runs in the view store. The cache is settled
    // before the commit resolves, which is safe only because a failed rebuild is abandoned whole; any
    // store read during a fold waits for the commit in flight, so it never sees the store behind.
    let inFlight: Promise<void> = Promise.resolve();
    let after: Position = 0;
    try {
      for (;;) {
        const page = await store.readAll({ after, maxCount: pageSize });
        const last = page[page.length - 1];
        if (last === undefined) break;
        after = last.position;
        await pacer.breathe();
        const { ops, settle } = await foldBatch(page, projection, views, cache, () => inFlight);
        settle();
        await inFlight;
        await keeper.ensure();
        inFlight = views.commit(projection.name, ops, last.position, lease).then(() => {
          position = last.position;
          events += page.length;
          deps.onProgress?.(events, position);
        });
        inFlight.catch(() => {}); // handled: awaited before the next commit or in finally below
      }
    } finally {
      await inFlight; // surfaces a failed last commit; never leaves one running behind our back
    }
  } finally {
    clearInterval(renewal);
    await views.releaseLease(lease).catch(() => {});
  }
  return { events, position, seconds: (performance.now() - started) / 1_000 };
}

/**
 * Tracks when the lease was last confirmed. `ensure()` renews when a third of the ttl has passed and
 * refuses (LeaseLostError) once a whole ttl has: by then the lease may have lapsed, another projector
 * may have committed in between, and re-taking it would keep a stale cache. Ages are measured from when
 * a renewal was sent, so they never run behind the store's own expiry.
 */
function leaseKeeper(views: ViewStore, lease: Lease, ttl: number, takenAt: number) {
  let renewedAt = takenAt;
  let pending: Promise<boolean> | undefined;
  function renew(): Promise<boolean> {
    pending ??= (async () => {
      const sentAt = Date.now();
      try {
        if (sentAt - renewedAt >= ttl) return false;
        const held = await views.acquireLease(lease, ttl);
        if (held) renewedAt = Math.max(renewedAt, sentAt);
        return held;
      } finally {
        pending = undefined;
      }
    })();
    return pending;
  }
  return {
    renew,
    expiresAt: () => renewedAt + ttl,
    async ensure(): Promise<void> {
      const age = Date.now() - renewedAt;
      if (age >= ttl || (age >= ttl / 3 && !(await renew()))) throw new LeaseLostError(lease);
    },
  };
}

/**
 * Catch-up and rebuild loops resolve only promises that are already settled (SQLite reads, the memory
 * store), so without a pause they would hold the event loop for as long as the log is long: no timers,
 * no health checks, no HTTP. breathe() yields one macrotask turn every ~20 ms of work.
 */
function eventLoopPacer(sliceMs = 20) {
  let since = performance.now();
  return {
    async breathe(): Promise<void> {
      if (performance.now() - since < sliceMs) return;
      await new Promise<void>((resolve) => setImmediate(resolve));
      since = performance.now();
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Folding one batch: the tx, the index diff, the cache.

/** A document as known to the runner: null = known to be absent. */
type Known = Doc | null;

/** Committed documents of one projection, bounded, least recently used evicted first. */
interface DocumentCache {
  /** Doc or null when known, undefined when not cached (and the cache is not complete). */
  lookup(key: string): Known | undefined;
  remember(key: string, doc: Known): void;
  /** After a reset: the store holds nothing of the projection, so an empty cache is complete. */
  clearAsEmpty(): void;
  clear(): void;
}

function documentCache(maxDocs: number): DocumentCache {
  // Two generations instead of a strict LRU: when the young map is full it becomes the old one and the
  // old one is dropped. Every operation stays O(1) (evicting one entry at a time from the front of a
  // Map degrades badly once it holds many deleted slots), and a document read again is promoted.
  const generation = Math.max(1, Math.floor(maxDocs / 2));
  let young = new Map<string, Known>();
  let old = new Map<string, Known>();
  // After a reset, a miss is an authoritative "absent" — except for documents we wrote and then
  // evicted. Those are remembered in a Bloom filter, so a rebuild larger than the cache still reads the
  // store only for documents it really evicted (and the odd false positive), never for new ones.
  let complete = false;
  let evicted = bloomFilter();

  function rotateIfFull(): void {
    if (young.size < generation) return;
    if (complete) {
      for (const key of old.keys()) {
        if (!young.has(key)) evicted.add(key);
      }
      if (evicted.saturated()) complete = false;
    }
    old = young;
    young = new Map();
  }

  return {
    lookup(key) {
      const doc = young.get(key);
      if (doc !== undefined) return doc;
      const older = old.get(key);
      if (older !== undefined) {
        young.set(key, older);
        rotateIfFull();
        return older;
      }
      return complete && !evicted.mightContain(key) ? null : undefined;
    },
    remember(key, doc) {
      young.set(key, doc);
      rotateIfFull();
    },
    clearAsEmpty() {
      young = new Map();
      old = new Map();
      evicted = bloomFilter();
      complete = true;
    },
    clear() {
      young = new Map();
      old = new Map();
      complete = false;
    },
  };
}

/** Set membership with false positives only; 2 MiB, about 1% false positives up to 1.7 million keys. */
function bloomFilter() {
  const BITS = 2 ** 24;
  const HASHES = 7;
  const CAPACITY = 1_700_000;
  const words = new Uint32Array(BITS / 32);
  let added = 0;
  // Two 32-bit FNV-1a hashes with different seeds, finished with murmur3's fmix; the k probes are
  // h1 + i·h2 (Kirsch–Mitzenmacher double hashing).
  function probes(key: string): [number, number] {
    let a = 0x811c9dc5;
    let b = 0x050c5d1f;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x01000193);
    }
    return [fmix(a), fmix(b) | 1];
  }
  return {
    add(key: string): void {
      const [h1, h2] = probes(key);
      for (let i = 0; i < HASHES; i++) {
        const bit = ((h1 + Math.imul(i, h2)) >>> 0) % BITS;
        words[bit >>> 5]! |= 1 << (bit & 31);
      }
      added++;
    },
    mightContain(key: string): boolean {
      if (added === 0) return false;
      const [h1, h2] = probes(key);
      for (let i = 0; i < HASHES; i++) {
        const bit = ((h1 + Math.imul(i, h2)) >>> 0) % BITS;
        if ((words[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
      }
      return true;
    },
    saturated: () => added > CAPACITY,
  };
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const UNKNOWN: unique symbol = Symbol('unknown');

interface Touched {
  collection: string;
  id: string;
  /** The committed document before this batch; UNKNOWN for a blind write not yet looked up. */
  base: Known | typeof UNKNOWN;
  current: Known;
  written: boolean;
}

const keyOf = (collection: string, id: string) => `${collection}\u0000${id}`;

/** Runs apply() for every event against one tx; returns the batch's ops and how to update the cache once committed. */
async function foldBatch(
  events: readonly StoredEvent[],
  projection: Projection,
  views: ViewStore,
  cache: DocumentCache,
  /** Awaited before any read from the store (rebuild: the commit still in flight). */
  beforeStoreRead: () => Promise<void> = () => Promise.resolve(),
): Promise<{ ops: ViewOp[]; settle: () => void }> {
  const touched = new Map<string, Touched>();
  const loading = new Map<string, Promise<Known>>();
  const owned = new Set(projection.collections);

  const own = (collection: string): void => {
    if (!owned.has(collection)) {
      // Reset only cleans owned collections, and reading another projection's data would make a rebuild
      // depend on timing: keep each projection self-contained.
      throw new Error(`projection ${projection.name} touched collection "${collection}", which it does not own`);
    }
  };

  const tx: ProjectionTx = {
    async get(collection, id) {
      own(collection);
      const key = keyOf(collection, id);
      const seen = touched.get(key);
      if (seen !== undefined) return seen.current ?? undefined;
      let base = cache.lookup(key);
      if (base === undefined) {
        let load = loading.get(key);
        if (load === undefined) {
          load = beforeStoreRead()
            .then(() => views.get(collection, id))
            .then((doc) => (doc === undefined ? null : deepFreeze(doc)));
          loading.set(key, load);
        }
        base = await load;
        loading.delete(key);
        const meanwhile = touched.get(key); // a put (or a concurrent get) may have landed while we waited
        if (meanwhile !== undefined) {
          if (meanwhile.base === UNKNOWN) meanwhile.base = base;
          return meanwhile.current ?? undefined;
        }
      }
      touched.set(key, { collection, id, base, current: base, written: false });
      return base ?? undefined;
    },
    put(collection, id, doc) {
      own(collection);
      stage(collection, id, deepFreeze(doc));
    },
    delete(collection, id) {
      own(collection);
      stage(collection, id, null);
    },
  };

  function stage(collection: string, id: string, doc: Known): void {
    const key = keyOf(collection, id);
    const seen = touched.get(key);
    if (seen === undefined) touched.set(key, { collection, id, base: UNKNOWN, current: doc, written: true });
    else {
      seen.current = doc;
      seen.written = true;
    }
  }

  for (const event of events) {
    const pending = projection.apply(event, tx);
    if (pending !== undefined) await pending; // skip a microtask per event for synchronous projections
  }

  // Blind writes: their old index membership comes from the committed document, one getMany per collection.
  const blind = new Map<string, Touched[]>();
  for (const [key, entry] of touched) {
    if (entry.base !== UNKNOWN) continue;
    const cached = cache.lookup(key);
    if (cached !== undefined) entry.base = cached;
    else {
      const list = blind.get(entry.collection);
      if (list === undefined) blind.set(entry.collection, [entry]);
      else list.push(entry);
    }
  }
  if (blind.size > 0) await beforeStoreRead();
  for (const [collection, entries] of blind) {
    const docs = await views.getMany(collection, entries.map((entry) => entry.id));
    entries.forEach((entry, i) => {
      const doc = docs[i];
      entry.base = doc === undefined ? null : deepFreeze(doc);
    });
  }

  const ops: ViewOp[] = [];
  for (const entry of touched.values()) {
    const base = entry.base === UNKNOWN ? null : entry.base;
    if (!entry.written || entry.current === base) continue;
    const { collection, id, current } = entry;
    const before = base === null ? [] : projection.indexesOf(collection, id, base);
    const after = current === null ? [] : projection.indexesOf(collection, id, current);
    if (current === null) ops.push({ op: 'delete', collection, id });
    else ops.push({ op: 'put', collection, id, doc: current });
    const scoreAfter = new Map<string, number>();
    for (const entry of after) {
      if (!projection.indexPrefixes.some((prefix) => entry.index.startsWith(prefix))) {
        throw new Error(`projection ${projection.name} indexed ${collection}/${id} in "${entry.index}", outside its index prefixes`);
      }
      scoreAfter.set(entry.index, entry.score);
    }
    const scoreBefore = new Map<string, number>();
    for (const entry of before) {
      scoreBefore.set(entry.index, entry.score);
      if (!scoreAfter.has(entry.index)) ops.push({ op: 'unindex', index: entry.index, id });
    }
    for (const [index, score] of scoreAfter) {
      if (scoreBefore.get(index) !== score) ops.push({ op: 'index', index, id, score });
    }
  }

  return {
    ops,
    settle() {
      for (const [key, entry] of touched) cache.remember(key, entry.current);
    },
  };
}

/** Freezes a JSON value in place; subtrees already frozen (shared with an older frozen doc) are skipped. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
