// Embedded read-model store: plain maps in this process, rebuilt from the log at every start.
// It mirrors the Redis adapter's semantics (the same contract suite runs against both), so a projection
// that works embedded works in production: documents hold JSON values only, commits are all-or-nothing,
// an older checkpoint is a no-op, and leases fence commits.
//
// Documents are kept as deep-frozen objects, not JSON text: the projector already hands over frozen
// documents (its tx freezes what it stages), so a commit stores them as they are and a read hands out
// the same object, with no encode or decode on either side. Nobody can change stored state through a
// reference: a caller's unfrozen object is copied (through JSON, as Redis would) before it is frozen.
import type { Position } from '../events/store.js';
import { deepFreeze } from './freeze.js';
import {
  LeaseLostError,
  validateViewOp,
  type Doc,
  type FeedPage,
  type IndexMember,
  type Lease,
  type RangeOptions,
  type ViewOp,
  type ViewStore,
} from './views.js';

/** One sorted index: score per member for O(1) lookups, plus the members in score order for ranges. */
interface SortedIndex {
  scoreOf: Map<string, number>;
  members: SortedMembers;
}

/** Either half may be unset: setVersion comes before the first commit of a rebuild. */
interface ProjectionState {
  position?: Position;
  version?: number;
}

/**
 * One feed: parallel arrays of offsets and entries (frozen, as documents are), live from `start` on. Trimming moves
 * `start` and compacts now and then, so dropping the oldest entry of a long feed is not an O(n) shift.
 * `last` is the newest offset ever appended, trimmed or not (Redis streams remember it the same way).
 */
interface MemoryFeed {
  offsets: number[];
  entries: Doc[];
  start: number;
  last: number;
}

interface HeldLease {
  owner: string;
  expiresAt: number;
}

export function memoryViewStore(): ViewStore {
  const collections = new Map<string, Map<string, Doc>>();
  const indexes = new Map<string, SortedIndex>();
  const feeds = new Map<string, MemoryFeed>();
  const projections = new Map<string, ProjectionState>();
  const leases = new Map<string, HeldLease>();
  let closed = false;

  function assertOpen(): void {
    if (closed) throw new Error('memory view store is closed');
  }

  function holds(lease: Lease, now = Date.now()): boolean {
    const held = leases.get(lease.name);
    return held !== undefined && held.owner === lease.owner && held.expiresAt > now;
  }

  function removeMember(index: SortedIndex, id: string): void {
    const score = index.scoreOf.get(id);
    if (score === undefined) return;
    index.scoreOf.delete(id);
    index.members.remove(score, id);
  }

  function addMember(index: SortedIndex, id: string, score: number): void {
    removeMember(index, id);
    index.scoreOf.set(id, score);
    index.members.insert({ id, score });
  }

  function applyOp(op: ViewOp, stored: Doc | undefined): void {
    switch (op.op) {
      case 'put': {
        let docs = collections.get(op.collection);
        if (docs === undefined) collections.set(op.collection, (docs = new Map()));
        docs.set(op.id, stored as Doc);
        return;
      }
      case 'delete':
        collections.get(op.collection)?.delete(op.id);
        return;
      case 'index': {
        let index = indexes.get(op.index);
        if (index === undefined) indexes.set(op.index, (index = { scoreOf: new Map(), members: sortedMembers() }));
        addMember(index, op.id, op.score);
        return;
      }
      case 'unindex': {
        const index = indexes.get(op.index);
        if (index === undefined) return;
        removeMember(index, op.id);
        if (index.scoreOf.size === 0) indexes.delete(op.index); // like Redis: an empty sorted set is gone
        return;
      }
      case 'append': {
        let feed = feeds.get(op.feed);
        if (feed === undefined) feeds.set(op.feed, (feed = { offsets: [], entries: [], start: 0, last: 0 }));
        feed.offsets.push(op.offset);
        feed.entries.push(stored as Doc);
        feed.last = op.offset;
        return;
      }
      case 'trim': {
        const feed = feeds.get(op.feed);
        if (feed === undefined) return;
        feed.start = Math.max(feed.start, firstAbove(feed.offsets, feed.start, op.below - 1));
        if (feed.start > 1_024 && feed.start * 2 > feed.offsets.length) {
          feed.offsets.splice(0, feed.start);
          feed.entries.splice(0, feed.start);
          feed.start = 0;
        }
        return;
      }
    }
  }

  /** Everything a commit could trip on, checked before the first write (feed offsets included). */
  function validateAll(ops: readonly ViewOp[]): (Doc | undefined)[] {
    const lastOf = new Map<string, number>();
    return ops.map((op) => {
      validateViewOp(op);
      if (op.op === 'put') return frozenDoc(op.doc);
      if (op.op !== 'append') return undefined;
      const last = lastOf.get(op.feed) ?? feeds.get(op.feed)?.last ?? 0;
      if (op.offset <= last) {
        throw new RangeError(`feed ${op.feed}: offset ${op.offset} does not move the feed forward (its last offset is ${last})`);
      }
      lastOf.set(op.feed, op.offset);
      return frozenDoc(op.entry);
    });
  }

  return {
    async get(collection, id) {
      assertOpen();
      return collections.get(collection)?.get(id);
    },

    async getMany(collection, ids) {
      assertOpen();
      const docs = collections.get(collection);
      return ids.map((id) => docs?.get(id));
    },

    async range(indexName, options: RangeOptions) {
      assertOpen();
      const index = indexes.get(indexName);
      if (index === undefined || options.limit <= 0) return [];
      const page: IndexMember[] = [];
      for (const member of index.members.descending(options.below)) {
        page.push({ id: member.id, score: member.score });
        if (page.length >= options.limit) break;
      }
      return page;
    },

    async count(indexName) {
      assertOpen();
      return indexes.get(indexName)?.scoreOf.size ?? 0;
    },

    async readFeed(name, options) {
      assertOpen();
      const feed = feeds.get(name);
      const empty: FeedPage = { entries: [], first: undefined, last: undefined };
      if (feed === undefined || feed.start >= feed.offsets.length) return empty;
      const from = firstAbove(feed.offsets, feed.start, options.after);
      const to = Math.min(feed.offsets.length, from + Math.max(0, options.limit));
      const entries = [];
      for (let i = from; i < to; i++) entries.push({ offset: feed.offsets[i] as number, entry: feed.entries[i] as Doc });
      return { entries, first: feed.offsets[feed.start], last: feed.offsets[feed.offsets.length - 1] };
    },

    async commit(projection, ops, checkpoint, lease) {
      assertOpen();
      // Everything that can fail is checked before the first write, so a refused commit changes nothing.
      if (lease !== undefined && !holds(lease)) throw new LeaseLostError(lease);
      const current = projections.get(projection);
      // Equal counts as older: a commit replayed verbatim (a client resend, a redelivered batch) must
      // not apply its ops a second time.
      if (current?.position !== undefined && checkpoint <= current.position) return;
      const stored = validateAll(ops);
      ops.forEach((op, i) => applyOp(op, stored[i]));
      projections.set(projection, { ...current, position: checkpoint });
    },

    async checkpoint(projection) {
      assertOpen();
      const state = projections.get(projection);
      return state === undefined ? undefined : { position: state.position ?? 0, version: state.version ?? 0 };
    },

    async setVersion(projection, version) {
      assertOpen();
      projections.set(projection, { ...projections.get(projection), version });
    },

    async reset(projection, collectionNames, indexPrefixes, feedPrefixes = []) {
      assertOpen();
      // The checkpoint goes first (as in Redis, where reset is not atomic): an interrupted reset then
      // reads as "never built" and is redone, never as "built" with half the data gone.
      projections.delete(projection);
      for (const name of collectionNames) collections.delete(name);
      for (const name of [...indexes.keys()]) {
        if (indexPrefixes.some((prefix) => name.startsWith(prefix))) indexes.delete(name);
      }
      for (const name of [...feeds.keys()]) {
        if (feedPrefixes.some((prefix) => name.startsWith(prefix))) feeds.delete(name);
      }
    },

    async acquireLease(lease, ttlMs) {
      assertOpen();
      const now = Date.now();
      const held = leases.get(lease.name);
      if (held !== undefined && held.expiresAt > now && held.owner !== lease.owner) return false;
      leases.set(lease.name, { owner: lease.owner, expiresAt: now + ttlMs });
      return true;
    },

    async releaseLease(lease) {
      assertOpen();
      if (leases.get(lease.name)?.owner === lease.owner) leases.delete(lease.name);
    },

    async ping() {
      return !closed;
    },

    async close() {
      closed = true;
    },
  };
}

/**
 * The document as stored: a frozen object is taken as it is (the projector deep-freezes what it stages,
 * and a frozen document is immutable all the way down by that contract); anything else is copied
 * through JSON, exactly what Redis would keep, then deep-frozen.
 */
function frozenDoc(doc: Doc): Doc {
  if (Object.isFrozen(doc)) return doc;
  return deepFreeze(JSON.parse(JSON.stringify(doc)) as Doc);
}

/** Index of the first offset above `after` in the ascending `offsets`, searching from `from`. */
function firstAbove(offsets: readonly number[], from: number, after: number): number {
  let lo = from;
  let hi = offsets.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((offsets[mid] as number) <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}



function compare(scoreA: number, idA: string, scoreB: number, idB: string): number {
  // Scores are unique per index by contract; the id tie-break only keeps a misuse deterministic.
  if (scoreA !== scoreB) return scoreA < scoreB ? -1 : 1;
  return idA < idB ? -1 : idA > idB ? 1 : 0;
}

/** Members in ascending (score, id) order with O(log n + chunk) inserts and removals anywhere. */
interface SortedMembers {
  insert(member: IndexMember): void;
  remove(score: number, id: string): void;
  /** Highest first; only members with a score strictly below `below` when given. */
  descending(below?: number): Iterable<IndexMember>;
}

const CHUNK = 512;

/**
 * A list of sorted chunks (as Python's sortedcontainers does it). One flat array would make every
 * insert or removal away from the top an O(n) splice — a status index losing old members, say — while
 * chunks bound that to CHUNK, and appending a new highest position stays a push.
 */
function sortedMembers(): SortedMembers {
  const chunks: IndexMember[][] = [];

  /** The chunk that holds (score, id), or would: the first whose last member is not below it. */
  function chunkFor(score: number, id: string): number {
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = chunks[mid] as IndexMember[];
      const last = chunk[chunk.length - 1] as IndexMember;
      if (compare(last.score, last.id, score, id) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  return {
    insert(member) {
      if (chunks.length === 0) {
        chunks.push([member]);
        return;
      }
      const at = chunkFor(member.score, member.id);
      const chunk = chunks[at] as IndexMember[];
      const last = chunk[chunk.length - 1] as IndexMember;
      if (compare(last.score, last.id, member.score, member.id) < 0) chunk.push(member);
      else chunk.splice(positionOf(chunk, member.score, member.id), 0, member);
      if (chunk.length > 2 * CHUNK) chunks.splice(at + 1, 0, chunk.splice(CHUNK));
    },

    remove(score, id) {
      if (chunks.length === 0) return;
      const at = chunkFor(score, id);
      const chunk = chunks[at] as IndexMember[];
      const position = positionOf(chunk, score, id);
      const found = chunk[position];
      if (found === undefined || found.id !== id || found.score !== score) return;
      chunk.splice(position, 1);
      if (chunk.length === 0) chunks.splice(at, 1);
    },

    *descending(below) {
      let at = chunks.length - 1;
      let position = (chunks[at]?.length ?? 0) - 1;
      if (below !== undefined) {
        // First chunk whose last score reaches the cursor; everything before it is below.
        let lo = 0;
        let hi = chunks.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          const chunk = chunks[mid] as IndexMember[];
          if ((chunk[chunk.length - 1] as IndexMember).score < below) lo = mid + 1;
          else hi = mid;
        }
        if (lo < chunks.length) {
          at = lo;
          position = firstAtOrAbove(chunks[at] as IndexMember[], below) - 1;
        }
      }
      for (; at >= 0; at--) {
        const chunk = chunks[at] as IndexMember[];
        if (position >= chunk.length) position = chunk.length - 1;
        for (; position >= 0; position--) yield chunk[position] as IndexMember;
        position = Number.MAX_SAFE_INTEGER; // the next chunk down is read from its end
      }
    },
  };
}

/** Index of (score, id) in an ascending array, or where it would be inserted. */
function positionOf(members: readonly IndexMember[], score: number, id: string): number {
  let lo = 0;
  let hi = members.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const member = members[mid] as IndexMember;
    if (compare(member.score, member.id, score, id) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first member whose score is >= score. */
function firstAtOrAbove(members: readonly IndexMember[], score: number): number {
  let lo = 0;
  let hi = members.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((members[mid] as IndexMember).score < score) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
