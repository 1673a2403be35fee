// Embedded read-model store: plain maps in this process, rebuilt from the log at every start.
// It mirrors the Redis adapter's semantics exactly (the same contract suite runs against both), so a
// projection that works embedded works in production: documents round-trip through JSON, commits are
// all-or-nothing, an older checkpoint is a no-op, and leases fence commits.
import type { Position } from '../events/store.js';
import {
  LeaseLostError,
  type Doc,
  type IndexMember,
  type Lease,
  type RangeOptions,
  type ViewOp,
  type ViewStore,
} from './views.js';

/**
 * One sorted index: score per member for O(1) lookups, plus members kept in ascending score order
 * for range reads. Projections index by log position, so inserts land at the end and stay cheap.
 */
interface SortedIndex {
  scoreOf: Map<string, number>;
  ascending: IndexMember[];
}

/** Either half may be unset: setVersion comes before the first commit of a rebuild. */
interface ProjectionState {
  position?: Position;
  version?: number;
}

interface HeldLease {
  owner: string;
  expiresAt: number;
}

export function memoryViewStore(): ViewStore {
  // Documents are kept as JSON text, not objects: callers can never mutate stored state through a
  // reference they kept, and values behave as they do in Redis (undefined dropped, Dates as strings).
  const collections = new Map<string, Map<string, string>>();
  const indexes = new Map<string, SortedIndex>();
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
    const at = positionOf(index.ascending, score, id);
    if (index.ascending[at]?.id === id) index.ascending.splice(at, 1);
  }

  function addMember(index: SortedIndex, id: string, score: number): void {
    removeMember(index, id);
    index.scoreOf.set(id, score);
    const last = index.ascending[index.ascending.length - 1];
    if (last === undefined || compare(last.score, last.id, score, id) < 0) {
      index.ascending.push({ id, score }); // the common case: a new, highest log position
    } else {
      index.ascending.splice(positionOf(index.ascending, score, id), 0, { id, score });
    }
  }

  function applyOp(op: ViewOp, serialized: string | undefined): void {
    switch (op.op) {
      case 'put': {
        let docs = collections.get(op.collection);
        if (docs === undefined) collections.set(op.collection, (docs = new Map()));
        docs.set(op.id, serialized as string);
        return;
      }
      case 'delete':
        collections.get(op.collection)?.delete(op.id);
        return;
      case 'index': {
        let index = indexes.get(op.index);
        if (index === undefined) indexes.set(op.index, (index = { scoreOf: new Map(), ascending: [] }));
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
    }
  }

  return {
    async get(collection, id) {
      assertOpen();
      const text = collections.get(collection)?.get(id);
      return text === undefined ? undefined : (JSON.parse(text) as Doc);
    },

    async getMany(collection, ids) {
      assertOpen();
      const docs = collections.get(collection);
      return ids.map((id) => {
        const text = docs?.get(id);
        return text === undefined ? undefined : (JSON.parse(text) as Doc);
      });
    },

    async range(indexName, options: RangeOptions) {
      assertOpen();
      const index = indexes.get(indexName);
      if (index === undefined || options.limit <= 0) return [];
      const members = index.ascending;
      // Start just below the cursor: the first member with score >= below is excluded.
      let at = options.below === undefined ? members.length - 1 : firstAtOrAbove(members, options.below) - 1;
      const page: IndexMember[] = [];
      for (; at >= 0 && page.length < options.limit; at--) {
        const member = members[at] as IndexMember;
        page.push({ id: member.id, score: member.score });
      }
      return page;
    },

    async count(indexName) {
      assertOpen();
      return indexes.get(indexName)?.scoreOf.size ?? 0;
    },

    async commit(projection, ops, checkpoint, lease) {
      assertOpen();
      // Everything that can fail is checked before the first write, so a refused commit changes nothing.
      if (lease !== undefined && !holds(lease)) throw new LeaseLostError(lease);
      const current = projections.get(projection);
      // Equal counts as older: a commit replayed verbatim (a client resend, a redelivered batch) must
      // not apply its ops a second time.
      if (current?.position !== undefined && checkpoint <= current.position) return;
      const serialized = ops.map((op) => {
        validateOp(op);
        return op.op === 'put' ? JSON.stringify(op.doc) : undefined;
      });
      ops.forEach((op, i) => applyOp(op, serialized[i]));
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

    async reset(projection, collectionNames, indexPrefixes) {
      assertOpen();
      // The checkpoint goes first (as in Redis, where reset is not atomic): an interrupted reset then
      // reads as "never built" and is redone, never as "built" with half the data gone.
      projections.delete(projection);
      for (const name of collectionNames) collections.delete(name);
      for (const name of [...indexes.keys()]) {
        if (indexPrefixes.some((prefix) => name.startsWith(prefix))) indexes.delete(name);
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

/** Rejects ops the Redis adapter could not store either, before anything is applied. */
function validateOp(op: ViewOp): void {
  if ((op.op === 'index' || op.op === 'unindex') && typeof op.index !== 'string') {
    throw new TypeError(`view op ${op.op}: index must be a string`);
  }
  if (op.op === 'index' && !Number.isFinite(op.score)) {
    throw new TypeError(`view op index ${op.index}/${op.id}: score must be a finite number, got ${String(op.score)}`);
  }
  if (op.op === 'put' && (op.doc === null || typeof op.doc !== 'object')) {
    throw new TypeError(`view op put ${op.collection}/${op.id}: doc must be an object`);
  }
}

function compare(scoreA: number, idA: string, scoreB: number, idB: string): number {
  // Scores are unique per index by contract; the id tie-break only keeps a misuse deterministic.
  if (scoreA !== scoreB) return scoreA < scoreB ? -1 : 1;
  return idA < idB ? -1 : idA > idB ? 1 : 0;
}

/** Index of (score, id) in the ascending array, or where it would be inserted. */
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
