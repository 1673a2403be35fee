// The read-model store port. Projections write documents, sorted indexes and feeds (append-only logs
// numbered by offset and bounded by trimming: the client feed) through it; queries read them. Two
// adapters (memory-views.ts, redis-views.ts) and one contract suite (tests/contract/view-store.contract.ts)
// prove both.
import type { Position } from '../events/store.js';

/** A read-model document: plain JSON. */
export type Doc = Record<string, unknown>;

/** Membership of a document in a sorted index. Scores are unique per index (we use log positions). */
export interface IndexEntry {
  index: string;
  score: number;
}

export type ViewOp =
  | { op: 'put'; collection: string; id: string; doc: Doc }
  | { op: 'delete'; collection: string; id: string }
  | { op: 'index'; index: string; id: string; score: number }
  | { op: 'unindex'; index: string; id: string }
  /** Add an entry to a feed. Offsets are positive integers, strictly increasing per feed. */
  | { op: 'append'; feed: string; offset: number; entry: Doc }
  /** Drop a feed's entries with an offset below `below` (bounded history). */
  | { op: 'trim'; feed: string; below: number };

export interface RangeOptions {
  /** Largest page. */
  limit: number;
  /** Cursor: only members with a score strictly below this one (pages run newest first). */
  below?: number;
}

export interface IndexMember {
  id: string;
  score: number;
}

export interface FeedEntry {
  offset: number;
  entry: Doc;
}

export interface FeedPage {
  /** Entries with an offset above `after`, oldest first, at most `limit`. */
  entries: FeedEntry[];
  /** Oldest retained offset (undefined: the feed is empty or absent). Read with the page, consistently. */
  first: number | undefined;
  /** Newest offset. */
  last: number | undefined;
}

/** Proof that the caller is the active projector; commits with a lost lease are refused. */
export interface Lease {
  name: string;
  owner: string;
}

export interface ViewStore {
  /**
   * Documents handed out are read-only: the memory adapter returns its own frozen objects (mutating
   * one throws), the Redis adapter fresh copies. Build a new object to change one.
   */
  get(collection: string, id: string): Promise<Doc | undefined>;
  getMany(collection: string, ids: readonly string[]): Promise<(Doc | undefined)[]>;
  /** Members of an index, highest score first. */
  range(index: string, options: RangeOptions): Promise<IndexMember[]>;
  count(index: string): Promise<number>;
  /** A feed oldest first after an offset, with its retained bounds (DESIGN §5 resume reads this). */
  readFeed(feed: string, options: { after: number; limit: number }): Promise<FeedPage>;

  /**
   * Apply the ops and move the projection's checkpoint to `checkpoint`, all or nothing. When `lease`
   * is given, the commit is refused with LeaseLostError unless that owner still holds it (fencing a
   * projector that paused past its lease). An append whose offset does not move its feed forward, or
   * any other invalid op, refuses the whole commit.
   */
  commit(projection: string, ops: readonly ViewOp[], checkpoint: Position, lease?: Lease): Promise<void>;
  /** Last committed position of a projection and the projection version it was built with. */
  checkpoint(projection: string): Promise<{ position: Position; version: number } | undefined>;
  /** Record the version a projection's data is built with (set on reset, before rebuilding). */
  setVersion(projection: string, version: number): Promise<void>;
  /**
   * Delete everything a projection wrote: documents of `collections`, indexes named `<prefix>*`, feeds
   * named `<feedPrefix>*`, checkpoint.
   */
  reset(projection: string, collections: readonly string[], indexPrefixes: readonly string[], feedPrefixes?: readonly string[]): Promise<void>;

  /** Take or extend a lease for `ttlMs`. True when `owner` holds it afterwards. */
  acquireLease(lease: Lease, ttlMs: number): Promise<boolean>;
  releaseLease(lease: Lease): Promise<void>;

  /** True when the backing store answers. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  constructor(readonly lease: Lease) {
    super(`lease ${lease.name} is no longer held by ${lease.owner}`);
  }
}

/** Rejects an op no adapter could store (Redis decides the rules), before anything is applied. */
export function validateViewOp(op: ViewOp): void {
  if ((op.op === 'index' || op.op === 'unindex') && typeof op.index !== 'string') {
    throw new TypeError(`view op ${op.op}: index must be a string`);
  }
  if (op.op === 'index' && !Number.isFinite(op.score)) {
    throw new TypeError(`view op index ${op.index}/${op.id}: score must be a finite number, got ${String(op.score)}`);
  }
  if (op.op === 'put' && (op.doc === null || typeof op.doc !== 'object')) {
    throw new TypeError(`view op put ${op.collection}/${op.id}: doc must be an object`);
  }
  if ((op.op === 'append' || op.op === 'trim') && (typeof op.feed !== 'string' || op.feed === '')) {
    throw new TypeError(`view op ${op.op}: feed must be a non-empty string`);
  }
  if (op.op === 'append' && !(Number.isSafeInteger(op.offset) && op.offset > 0)) {
    throw new TypeError(`view op append ${op.feed}: offset must be a positive integer, got ${String(op.offset)}`);
  }
  if (op.op === 'append' && (op.entry === null || typeof op.entry !== 'object')) {
    throw new TypeError(`view op append ${op.feed}/${op.offset}: entry must be an object`);
  }
  if (op.op === 'trim' && !Number.isSafeInteger(op.below)) {
    throw new TypeError(`view op trim ${op.feed}: below must be an integer, got ${String(op.below)}`);
  }
}

