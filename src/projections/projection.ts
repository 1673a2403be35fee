// What a projection is: a pure fold of events into read-model documents through a tx. The projector
// (projector.ts) runs one; fold.ts folds a batch of events through one.
import type { StoredEvent } from '../events/store.js';
import type { Doc, IndexEntry, ViewOp, ViewStore } from './views.js';

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
  /** Stage a feed entry (offsets strictly increasing per feed); the feed's name must start with one of the projection's feedPrefixes. */
  append(feed: string, offset: number, entry: Doc): void;
  /** Stage dropping a feed's entries below an offset. */
  trim(feed: string, below: number): void;
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
  /**
   * Collections whose documents are written once and never read back by apply() (history entries):
   * the projector neither looks them up nor caches them.
   */
  writeOnce?: readonly string[];
  /** Every feed it writes starts with one of these (reset deletes `<prefix>*`). */
  feedPrefixes?: readonly string[];
  /** Index membership of a document; the runner diffs old vs new membership into index/unindex ops. */
  indexesOf(collection: string, id: string, doc: Doc): IndexEntry[];
  /** Pure apart from tx: fold one event into the read models. Unknown event types are ignored. */
  apply(event: StoredEvent, tx: ProjectionTx): Promise<void> | void;
  /** Runs once per batch, after apply() of its last event, with the same tx (to record what the batch did). */
  batchDone?(tx: ProjectionTx): Promise<void> | void;
  /** Runs after a batch's commit landed, with its operations (the client feed publishes its frames here). */
  committed?(ops: readonly ViewOp[]): void;
  /**
   * Runs when this process takes the lease and continues from a committed checkpoint, before the first
   * batch: the previous holder may have died between a commit and its `committed` hook (the client feed
   * republishes its last batch here).
   */
  resumed?(views: ViewStore): Promise<void>;
}
