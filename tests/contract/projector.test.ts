// The projection runner against a real event store (SQLite) and both view stores. The projection here
// is a small stand-in (per-stream counters, indexes by first and last position) whose result can be
// computed independently from the log, so "nothing lost, nothing applied twice" is an equality check.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openSqliteEventStore, type SqliteEventStore } from '../../src/events/sqlite-store.js';
import type { NewEvent, Position, StoredEvent } from '../../src/events/store.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryViewStore } from '../../src/projections/memory-views.js';
import { openSqliteViewStore } from '../../src/projections/sqlite-views.js';
import { rebuild, startProjector, type Projection, type Projector } from '../../src/projections/projector.js';
import { redisViewStore } from '../../src/projections/redis-views.js';
import type { Doc, IndexEntry, ViewStore } from '../../src/projections/views.js';
import { REDIS_URL, serviceAvailable, uniquePrefix, flushRedisKeys } from '../support/services.js';

const redisUp = await serviceAvailable('redis', REDIS_URL);
const prefix = uniquePrefix('projector');

// ---------------------------------------------------------------------------------------------------
// The test projection and its reference model.

interface StreamDoc {
  stream: string;
  count: number;
  first: Position;
  last: Position;
  lastType: string;
  /** Sum of revisions seen: applying an event twice (or skipping one) changes it. */
  revisions: number;
  v?: number;
}

const TYPES = ['Created', 'Touched', 'Renamed', 'Cleared'] as const;

/** v1 indexes streams by first position and by last event type; v2 drops the type indexes. */
function streamStats(version = 1, hooks: { beforeApply?: (event: StoredEvent) => void } = {}): Projection {
  return {
    name: 'stats',
    version,
    collections: ['streams', 'totals'],
    indexPrefixes: ['streams:'],
    indexesOf(collection, _id, doc): IndexEntry[] {
      if (collection !== 'streams') return [];
      const stream = doc as unknown as StreamDoc;
      const entries: IndexEntry[] = [{ index: 'streams:all', score: stream.first }];
      if (version === 1) entries.push({ index: `streams:type:${stream.lastType}`, score: stream.last });
      return entries;
    },
    async apply(event, tx) {
      hooks.beforeApply?.(event);
      const totals = (await tx.get('totals', 'all')) as { events: number } | undefined;
      tx.put('totals', 'all', { events: (totals?.events ?? 0) + 1 });
      if (event.type === 'Cleared') {
        tx.delete('streams', event.stream);
        return;
      }
      if (!(TYPES as readonly string[]).includes(event.type)) return; // unknown types are ignored
      const doc = (await tx.get('streams', event.stream)) as StreamDoc | undefined;
      const next: StreamDoc = doc
        ? { ...doc, count: doc.count + 1, last: event.position, lastType: event.type, revisions: doc.revisions + event.revision }
        : { stream: event.stream, count: 1, first: event.position, last: event.position, lastType: event.type, revisions: event.revision };
      if (version === 2) next.v = 2;
      tx.put('streams', event.stream, next as unknown as Doc);
    },
  };
}

interface ReadModel {
  totals: number;
  streams: Map<string, StreamDoc>;
  /** index name → ids, highest score first */
  indexes: Map<string, string[]>;
}

/** What the read models must be after projecting the whole log, computed without the runner. */
async function expectedModel(store: SqliteEventStore, version = 1): Promise<ReadModel> {
  const streams = new Map<string, StreamDoc>();
  let totals = 0;
  for (let after = 0; ; ) {
    const page = await store.readAll({ after, maxCount: 1_000 });
    if (page.length === 0) break;
    for (const event of page) {
      totals++;
      if (event.type === 'Cleared') streams.delete(event.stream);
      else if ((TYPES as readonly string[]).includes(event.type)) {
        const doc = streams.get(event.stream);
        const next: StreamDoc = doc
          ? { ...doc, count: doc.count + 1, last: event.position, lastType: event.type, revisions: doc.revisions + event.revision }
          : { stream: event.stream, count: 1, first: event.position, last: event.position, lastType: event.type, revisions: event.revision };
        if (version === 2) next.v = 2;
        streams.set(event.stream, next);
      }
    }
    after = page[page.length - 1]!.position;
  }
  const byScore = (score: (doc: StreamDoc) => number, docs: StreamDoc[]) =>
    [...docs].sort((a, b) => score(b) - score(a)).map((doc) => doc.stream);
  const indexes = new Map<string, string[]>([['streams:all', byScore((d) => d.first, [...streams.values()])]]);
  for (const type of TYPES) {
    const members = [...streams.values()].filter((doc) => doc.lastType === type);
    indexes.set(`streams:type:${type}`, version === 1 ? byScore((d) => d.last, members) : []);
  }
  return { totals, streams, indexes };
}

/** The read models as the view store holds them, for the streams the log mentions. */
async function actualModel(views: ViewStore, streamNames: readonly string[]): Promise<ReadModel> {
  const docs = await views.getMany('streams', streamNames);
  const streams = new Map<string, StreamDoc>();
  docs.forEach((doc, i) => {
    if (doc !== undefined) streams.set(streamNames[i]!, doc as unknown as StreamDoc);
  });
  const indexes = new Map<string, string[]>();
  for (const name of ['streams:all', ...TYPES.map((type) => `streams:type:${type}`)]) {
    indexes.set(name, (await views.range(name, { limit: 100_000 })).map((member) => member.id));
  }
  const totals = (await views.get('totals', 'all'))?.events;
  return { totals: typeof totals === 'number' ? totals : 0, streams, indexes };
}

async function expectProjected(store: SqliteEventStore, views: ViewStore, version = 1): Promise<void> {
  const expected = await expectedModel(store, version);
  const names = [...new Set((await store.readAll({ maxCount: 1_000_000 })).map((event) => event.stream))];
  const actual = await actualModel(views, names);
  expect(actual.totals).toBe(expected.totals);
  expect(actual.streams).toEqual(expected.streams);
  expect(actual.indexes).toEqual(expected.indexes);
}

// ---------------------------------------------------------------------------------------------------
// Log and view-store helpers.

let appended = 0;
/** Appends `count` events over `streams` streams, one append per event, every 7th stream event a Cleared. */
async function appendEvents(store: SqliteEventStore, count: number, streams = 20): Promise<Position> {
  let position = 0;
  for (let i = 0; i < count; i++) {
    const n = appended++;
    const type = n % 7 === 6 ? 'Cleared' : n % 11 === 10 ? 'SomethingUnknown' : TYPES[n % 3]!;
    const event: NewEvent = {
      id: randomUUID(),
      type,
      data: { n },
      metadata: { command_id: `c${n}`, correlation_id: `c${n}`, causation_id: `c${n}`, at: new Date(0).toISOString(), schema_version: 1 },
    };
    position = (await store.append(`s-${n % streams}`, [event], 'any')).position;
  }
  return position;
}

function openLog(): SqliteEventStore {
  return openSqliteEventStore(':memory:', { synchronous: 'off' });
}

interface Adapter {
  name: string;
  available: boolean;
  /** A fresh, empty view store. */
  open(): ViewStore;
}

let redisStores = 0;
let sqliteStores = 0;
const sqliteDir = mkdtempSync(join(tmpdir(), 'planline-projector-views-'));
afterAll(() => rmSync(sqliteDir, { recursive: true, force: true }));
const adapters: Adapter[] = [
  { name: 'memory', available: true, open: () => memoryViewStore() },
  { name: 'sqlite', available: true, open: () => openSqliteViewStore(join(sqliteDir, `views-${sqliteStores++}.db`)) },
  {
    name: 'redis',
    available: redisUp,
    open: () => redisViewStore(new Redis(REDIS_URL), { keyPrefix: `${prefix}${redisStores++}:` }),
  },
];

afterAll(async () => {
  if (!redisUp) return;
  await flushRedisKeys(REDIS_URL, prefix);
});

/**
 * A view store as seen by one process that can crash, pause or stall. Once dead, every call fails and
 * nothing reaches the real store: what that process had not committed is gone.
 */
function faultyViews(inner: ViewStore) {
  let dead = false;
  let crashAtCommit: { n: number; when: 'before' | 'after' } | undefined;
  let commits = 0;
  let leasePaused: Promise<void> | undefined;
  let resumeLease = () => {};
  let commitsHeld: Promise<void> | undefined;
  let releaseCommits = () => {};
  const alive = () => {
    if (dead) throw new Error('process is dead');
  };
  const views: ViewStore = {
    get: async (c, id) => (alive(), inner.get(c, id)),
    getMany: async (c, ids) => (alive(), inner.getMany(c, ids)),
    range: async (i, o) => (alive(), inner.range(i, o)),
    count: async (i) => (alive(), inner.count(i)),
    readFeed: async (f, o) => (alive(), inner.readFeed(f, o)),
    async commit(projection, ops, checkpoint, lease) {
      alive();
      if (commitsHeld) await commitsHeld;
      commits++;
      if (crashAtCommit?.n === commits && crashAtCommit.when === 'before') {
        dead = true;
        throw new Error('crashed before commit');
      }
      await inner.commit(projection, ops, checkpoint, lease);
      if (crashAtCommit?.n === commits) {
        dead = true;
        throw new Error('crashed after commit, before the ack');
      }
    },
    checkpoint: async (p) => (alive(), inner.checkpoint(p)),
    setVersion: async (p, v) => (alive(), inner.setVersion(p, v)),
    reset: async (p, c, i, f) => (alive(), inner.reset(p, c, i, f)),
    async acquireLease(lease, ttl) {
      alive();
      if (leasePaused) await leasePaused;
      return inner.acquireLease(lease, ttl);
    },
    releaseLease: async (lease) => (alive(), inner.releaseLease(lease)),
    ping: async () => !dead,
    close: async () => {},
  };
  return {
    views,
    crashAt(n: number, when: 'before' | 'after') {
      crashAtCommit = { n, when };
    },
    pauseLease() {
      leasePaused = new Promise((resolve) => (resumeLease = resolve));
    },
    resumeLease() {
      leasePaused = undefined;
      resumeLease();
    },
    holdCommits() {
      commitsHeld = new Promise((resolve) => (releaseCommits = resolve));
    },
    releaseCommits() {
      commitsHeld = undefined;
      releaseCommits();
    },
    commits: () => commits,
  };
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// ---------------------------------------------------------------------------------------------------

for (const adapter of adapters) {
  describe.skipIf(!adapter.available)(`projector on ${adapter.name} views`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    const logs: string[] = [];
    const log = (msg: string) => logs.push(msg);
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
      logs.length = 0;
    });
    const setup = () => {
      const store = openLog();
      const views = adapter.open();
      cleanups.push(async () => {
        await views.close();
        await store.close();
      });
      return { store, views };
    };
    const start = (deps: Parameters<typeof startProjector>[0]): Projector => {
      const projector = startProjector({ log, ...deps });
      cleanups.push(() => projector.stop());
      return projector;
    };

    it('catches up with the log, then follows it live', async () => {
      const { store, views } = setup();
      const head = await appendEvents(store, 400);
      const committed: Position[] = [];
      const projector = start({ store, views, projection: streamStats(), maxBatch: 64, onCommitted: (p) => committed.push(p) });
      expect(await projector.waitFor(head, 10_000)).toBe(true);
      expect(projector.isActive()).toBe(true);
      await expectProjected(store, views);
      expect(committed.length).toBeGreaterThanOrEqual(Math.ceil(400 / 64));
      expect(committed).toEqual([...committed].sort((a, b) => a - b));

      const live = await appendEvents(store, 60);
      expect(await projector.waitFor(live, 10_000)).toBe(true);
      expect(projector.position()).toBe(live);
      await expectProjected(store, views);
      expect(await views.checkpoint('stats')).toEqual({ position: live, version: 1 });
    });

    it('resumes after its checkpoint on restart: nothing lost, nothing applied twice', async () => {
      const { store, views } = setup();
      const head = await appendEvents(store, 300);
      const first = start({ store, views, projection: streamStats(), maxBatch: 50 });
      expect(await first.waitFor(head, 10_000)).toBe(true);
      await first.stop();
      expect(first.isActive()).toBe(false);

      const more = await appendEvents(store, 120);
      const applied: Position[] = [];
      const second = start({
        store,
        views,
        projection: streamStats(1, { beforeApply: (event) => applied.push(event.position) }),
        maxBatch: 50,
      });
      expect(await second.waitFor(more, 10_000)).toBe(true);
      expect(Math.min(...applied)).toBe(head + 1); // started right after the committed checkpoint
      expect(applied).toHaveLength(120);
      await expectProjected(store, views);
    });

    for (const when of ['before', 'after'] as const) {
      it(`a projector that dies mid-stream ${when} a commit is replaced without loss or double apply`, async () => {
        const { store, views } = setup();
        const head = await appendEvents(store, 500);
        const doomed = faultyViews(views);
        doomed.crashAt(4, when);
        const a = start({ store, views: doomed.views, projection: streamStats(), owner: 'a', leaseTtlMs: 300, maxBatch: 50 });
        await until(() => doomed.commits() >= 4);
        await until(() => !a.isActive());
        const checkpoint = (await views.checkpoint('stats'))!.position;
        expect(checkpoint).toBeLessThan(head); // it died part-way

        // A new process: the dead one never released its lease, so this waits for it to lapse.
        const b = start({ store, views, projection: streamStats(), owner: 'b', leaseTtlMs: 300, maxBatch: 50 });
        expect(await b.waitFor(head, 10_000)).toBe(true);
        await expectProjected(store, views);
        const live = await appendEvents(store, 30);
        expect(await b.waitFor(live, 10_000)).toBe(true);
        await expectProjected(store, views);
      });
    }

    it('a batch that fails half-way commits nothing and is retried whole', async () => {
      const { store, views } = setup();
      const head = await appendEvents(store, 200);
      let failures = 0;
      const projection = streamStats(1, {
        beforeApply: (event) => {
          if (event.position === 137 && failures++ < 2) throw new Error('transient failure');
        },
      });
      const projector = start({ store, views, projection, maxBatch: 40 });
      expect(await projector.waitFor(head, 10_000)).toBe(true);
      expect(failures).toBe(3);
      expect(logs.some((line) => line.includes('transient failure'))).toBe(true);
      await expectProjected(store, views);
    });

    it('a version bump resets the old data and rebuilds from position 0', async () => {
      const { store, views } = setup();
      const head = await appendEvents(store, 250);
      const v1 = start({ store, views, projection: streamStats(1) });
      expect(await v1.waitFor(head, 10_000)).toBe(true);
      await expectProjected(store, views, 1);
      expect(await views.count('streams:type:Created')).toBeGreaterThan(0);
      await v1.stop();

      const applied: Position[] = [];
      const v2 = start({ store, views, projection: streamStats(2, { beforeApply: (e) => applied.push(e.position) }) });
      expect(await v2.waitFor(head, 10_000)).toBe(true);
      expect(applied[0]).toBe(1);
      await expectProjected(store, views, 2); // includes: no streams:type:* members left over from v1
      expect(await views.checkpoint('stats')).toEqual({ position: head, version: 2 });
    });

    it('a standby takes over when the active one stops renewing, and the stale one is fenced', async () => {
      const { store, views } = setup();
      await appendEvents(store, 100);
      const paused = faultyViews(views);
      const a = start({ store, views: paused.views, projection: streamStats(), owner: 'a', leaseTtlMs: 300 });
      await until(() => a.isActive());
      const b = start({ store, views, projection: streamStats(), owner: 'b', leaseTtlMs: 300 });
      expect(await a.waitFor(await store.headPosition(), 10_000)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(b.isActive()).toBe(false);

      // A stalls: its renewals hang and its next commit is held up, as in a long GC pause or a partition.
      paused.pauseLease();
      paused.holdCommits();
      const stalled = await appendEvents(store, 40);
      await until(() => b.isActive());
      expect(await b.waitFor(stalled, 10_000)).toBe(true);
      expect(a.isActive()).toBe(false); // it noticed its renewal was overdue

      // A wakes up and tries to commit the batch it was holding: refused, so nothing is applied twice.
      paused.releaseCommits();
      paused.resumeLease();
      const more = await appendEvents(store, 40);
      expect(await b.waitFor(more, 10_000)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(a.isActive()).toBe(false);
      expect(b.isActive()).toBe(true);
      expect(logs.some((line) => line.includes('refused: lease lost'))).toBe(true);
      await expectProjected(store, views);
    });

    it('waitFor answers true once committed, false on timeout or stop', async () => {
      const { store, views } = setup();
      const head = await appendEvents(store, 30);
      const projector = start({ store, views, projection: streamStats() });
      expect(await projector.waitFor(head, 10_000)).toBe(true);
      expect(await projector.waitFor(head - 5, 1)).toBe(true);
      expect(await projector.waitFor(head + 1, 50)).toBe(false);
      const pending = projector.waitFor(head + 1_000, 10_000);
      const next = await appendEvents(store, 1);
      expect(await projector.waitFor(next, 10_000)).toBe(true);
      await projector.stop();
      expect(await pending).toBe(false);
      expect(await projector.waitFor(head + 1_000)).toBe(false);
    });

    it('waitFor on a standby answers from the active projector\'s checkpoint', async () => {
      const { store, views } = setup();
      await appendEvents(store, 20);
      const a = start({ store, views, projection: streamStats(), owner: 'a' });
      await until(() => a.isActive());
      const b = start({ store, views, projection: streamStats(), owner: 'b' });
      const head = await appendEvents(store, 20);
      expect(await b.waitFor(head, 10_000)).toBe(true);
      expect(b.isActive()).toBe(false);
      expect(await b.waitFor(head + 1_000, 100)).toBe(false);
    });

    it('keeps its lease through a catch-up and a rebuild that take longer than the ttl', async () => {
      // Catch-up and rebuild loops run on already-settled promises; renewal must not depend on timers
      // firing on their own. A slow projection (busy ~1.1 ms per event) makes each run several ttls long.
      // The ttl leaves room for a loaded machine descheduling this process for a while.
      const { store, views } = setup();
      const head = await appendEvents(store, 2_000, 50);
      const ttl = 1_000;
      const slow = streamStats(1, {
        beforeApply: () => {
          const until = performance.now() + 1.1;
          while (performance.now() < until);
        },
      });
      const started = Date.now();
      const projector = start({ store, views, projection: slow, leaseTtlMs: ttl, maxBatch: 10 });
      expect(await projector.waitFor(head, 20_000)).toBe(true);
      expect(Date.now() - started).toBeGreaterThan(2 * ttl);
      await projector.stop();
      const result = await rebuild({ store, views, projection: slow, leaseTtlMs: ttl, pageSize: 10 });
      expect(result.seconds * 1_000).toBeGreaterThan(2 * ttl);
      expect(result.events).toBe(2_000);
      expect(logs.filter((line) => line.includes('lease'))).toEqual([]);
      await expectProjected(store, views);
    });

    it('keeps results exact when the document cache is too small to hold everything', async () => {
      const { store, views } = setup();
      const head = await appendEvents(store, 300, 40);
      const projector = start({ store, views, projection: streamStats(), maxCachedDocs: 5, maxBatch: 16 });
      expect(await projector.waitFor(head, 10_000)).toBe(true);
      await expectProjected(store, views);
      await projector.stop();
      const restarted = start({ store, views, projection: streamStats(), maxCachedDocs: 5, maxBatch: 16 });
      const more = await appendEvents(store, 100, 40);
      expect(await restarted.waitFor(more, 10_000)).toBe(true);
      await expectProjected(store, views);
    });

    it('rebuild() produces what live projection produced', async () => {
      const { store, views } = setup();
      const head = await appendEvents(store, 700, 30);
      const projector = start({ store, views, projection: streamStats(), maxBatch: 33 });
      expect(await projector.waitFor(head, 10_000)).toBe(true);
      await projector.stop();
      const names = Array.from({ length: 30 }, (_, i) => `s-${i}`);
      const live = await actualModel(views, names);

      const progress: number[] = [];
      const result = await rebuild({ store, views, projection: streamStats(), pageSize: 100, onProgress: (n) => progress.push(n) });
      expect(result).toMatchObject({ events: 700, position: head });
      expect(progress[progress.length - 1]).toBe(700);
      expect(await actualModel(views, names)).toEqual(live);
      await expectProjected(store, views);
      expect(await views.checkpoint('stats')).toEqual({ position: head, version: 1 });

      // …and into a different, empty store, with a cache too small to hold the projection.
      const other = adapter.open();
      cleanups.push(() => other.close());
      await rebuild({ store, views: other, projection: streamStats(), pageSize: 64, maxCachedDocs: 8 });
      expect(await actualModel(other, names)).toEqual(live);
    });

    it('rebuild() refuses to run under an active projector', async () => {
      const { store, views } = setup();
      await appendEvents(store, 10);
      const projector = start({ store, views, projection: streamStats(), leaseTtlMs: 2_000 });
      await until(() => projector.isActive());
      await expect(rebuild({ store, views, projection: streamStats(), leaseTtlMs: 100 })).rejects.toThrow(/held by a running projector/);
    });

    it('documents handed to a projection are frozen, and foreign collections are refused', async () => {
      const { store, views } = setup();
      const head = await appendEvents(store, 5);
      const errors: string[] = [];
      const projection: Projection = {
        ...streamStats(),
        name: 'mutating',
        async apply(event, tx) {
          const doc = await tx.get('streams', 'x');
          if (doc === undefined) return tx.put('streams', 'x', { n: 1 });
          try {
            (doc as { n: number }).n++;
          } catch (error) {
            errors.push((error as Error).name);
          }
          try {
            await tx.get('elsewhere', 'x');
          } catch (error) {
            errors.push((error as Error).message);
          }
          tx.put('streams', 'x', { n: (doc.n as number) + 1, last: event.position });
        },
        indexesOf: () => [],
      };
      const projector = start({ store, views, projection });
      expect(await projector.waitFor(head, 10_000)).toBe(true);
      expect(await views.get('streams', 'x')).toEqual({ n: 5, last: head });
      expect(errors).toContain('TypeError');
      expect(errors.some((e) => e.includes('does not own'))).toBe(true);
    });
  });
}
