// Folding one batch of events into a projection's read models: the tx a projection writes through,
// the index membership diff, and the cache update once the batch's commit landed.
import type { StoredEvent } from '../events/store.js';
import type { ViewOp, ViewStore } from './views.js';
import type { DocumentCache, Known } from './document-cache.js';
import { deepFreeze } from './freeze.js';
import type { Projection, ProjectionTx } from './projection.js';

const UNKNOWN: unique symbol = Symbol('unknown');

interface Touched {
  collection: string;
  id: string;
  /** The committed document before this batch; UNKNOWN for a blind write not yet looked up. */
  base: Known | typeof UNKNOWN;
  current: Known;
  written: boolean;
  /** A write-once document: known to be new, kept out of the cache. */
  writeOnce?: boolean;
}

const keyOf = (collection: string, id: string) => `${collection}\u0000${id}`;

/** Runs apply() for every event against one tx; returns the batch's ops and how to update the cache once committed. */
export async function foldBatch(
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
  const writeOnce = new Set(projection.writeOnce ?? []);
  // Feed appends go to the commit as staged, in order, after the document ops; a feed trimmed several
  // times in one batch is trimmed once, at the highest offset, after its appends (trimming later is the
  // same: every entry appended in between is above the trim).
  const feedOps: ViewOp[] = [];
  const trims = new Map<string, number>();
  const ownFeed = (feed: string): void => {
    if (!(projection.feedPrefixes ?? []).some((prefix) => feed.startsWith(prefix))) {
      throw new Error(`projection ${projection.name} wrote feed "${feed}", outside its feed prefixes`);
    }
  };

  const own = (collection: string): void => {
    if (!owned.has(collection)) {
      // Reset only cleans owned collections, and reading another projection's data would make a rebuild
      // depend on timing: keep each projection self-contained.
      throw new Error(`projection ${projection.name} touched collection "${collection}", which it does not own`);
    }
  };

  /**
   * A committed document as the cache knows it. Never for write-once collections: their documents are
   * kept out of the cache, so a cache that counts itself complete (after a reset) would call an existing
   * one absent, and deleting it (a deleted session's history) would write nothing.
   */
  const cachedBase = (collection: string, key: string): Known | undefined => (writeOnce.has(collection) ? undefined : cache.lookup(key));

  const tx: ProjectionTx = {
    async get(collection, id) {
      own(collection);
      const key = keyOf(collection, id);
      const seen = touched.get(key);
      if (seen !== undefined) return seen.current ?? undefined;
      let base = cachedBase(collection, key);
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
      if (writeOnce.has(collection)) {
        // Written once, never read back by the projection (history entries): nothing to look up for
        // the index diff, and no place in the cache, where a rebuild's million entries would push
        // out the documents that are read again.
        touched.set(keyOf(collection, id), { collection, id, base: null, current: deepFreeze(doc), written: true, writeOnce: true });
        return;
      }
      stage(collection, id, deepFreeze(doc));
    },
    delete(collection, id) {
      own(collection);
      stage(collection, id, null);
    },
    append(feed, offset, entry) {
      ownFeed(feed);
      feedOps.push({ op: 'append', feed, offset, entry: deepFreeze(entry) });
    },
    trim(feed, below) {
      ownFeed(feed);
      trims.set(feed, Math.max(below, trims.get(feed) ?? below));
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
  await projection.batchDone?.(tx);

  // Blind writes: their old index membership comes from the committed document, one getMany per collection.
  const blind = new Map<string, Touched[]>();
  for (const [key, entry] of touched) {
    if (entry.base !== UNKNOWN) continue;
    const cached = cachedBase(entry.collection, key);
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

  ops.push(...feedOps);
  for (const [feed, below] of trims) ops.push({ op: 'trim', feed, below });
  return {
    ops,
    settle() {
      for (const [key, entry] of touched) if (!entry.writeOnce) cache.remember(key, entry.current);
    },
  };
}
