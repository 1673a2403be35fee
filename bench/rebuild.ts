// Rebuild throughput: project N events (default 1,000,000; REBUILD_EVENTS to change) from a temp SQLite
// log into the memory view store and into Redis, next to the raw readAll of the same log measured in the
// same run (the ceiling: a rebuild cannot read faster than that). Also measures Redis commit throughput
// for both ways of shipping ops to the commit script.
// Run: npm run build && node dist/bench/rebuild.js   (Redis at REDIS_URL, default redis://127.0.0.1:6379)
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { openSqliteEventStore } from '../src/events/sqlite-store.js';
import type { EventStore, NewEvent, StoredEvent } from '../src/events/store.js';
import { memoryViewStore } from '../src/projections/memory-views.js';
import { rebuild, startProjector, type Projection } from '../src/projections/projector.js';
import { redisViewStore } from '../src/projections/redis-views.js';
import type { Doc, IndexEntry, ViewOp, ViewStore } from '../src/projections/views.js';

export interface RebuildRun {
  events: number;
  seconds: number;
  perSecond: number;
  /** perSecond / raw readAll events per second. */
  ratioToReadAll: number;
}

export interface CommitThroughput {
  encoding: 'argv' | 'json';
  opsPerCommit: number;
  commitsPerSecond: number;
  opsPerSecond: number;
}

export interface RebuildBenchResult {
  events: number;
  streams: number;
  readAllPerSecond: number;
  memory: RebuildRun;
  /** The same projection built by a fresh startProjector (subscription path), as the embedded mode does at start. */
  memoryCatchUp: RebuildRun;
  /** Undefined when Redis is unreachable. */
  redis?: RebuildRun;
  redisCatchUp?: RebuildRun;
  commits?: CommitThroughput[];
}

export interface RebuildBenchOptions {
  events?: number;
  /** Events per stream in the generated log (default 10). */
  eventsPerStream?: number;
  redisUrl?: string;
  log?: (line: string) => void;
}

// A stand-in for the real `views` projection with the same write pattern: a document per stream
// (updated by every event, indexed by status), and a history document per event indexed per stream.
const STREAMS = 'bench-streams';
const HISTORY = 'bench-history';

export const benchProjection: Projection = {
  name: 'bench-views',
  version: 1,
  collections: [STREAMS, HISTORY],
  indexPrefixes: ['bench:'],
  indexesOf(collection, _id, doc): IndexEntry[] {
    if (collection === STREAMS) {
      const first = doc.first as number;
      return [
        { index: 'bench:streams', score: first },
        { index: `bench:status:${String(doc.status)}`, score: first },
      ];
    }
    return [{ index: `bench:history:${String(doc.stream)}`, score: doc.position as number }];
  },
  async apply(event: StoredEvent, tx) {
    const doc = await tx.get(STREAMS, event.stream);
    const status = event.type === 'BenchStarted' ? 'running' : event.type === 'BenchFinished' ? 'done' : (doc?.status ?? 'running');
    tx.put(STREAMS, event.stream, {
      stream: event.stream,
      count: ((doc?.count as number | undefined) ?? 0) + 1,
      first: (doc?.first as number | undefined) ?? event.position,
      last: event.position,
      status,
      updated_at: event.metadata.at,
    });
    tx.put(HISTORY, event.id, {
      event_id: event.id,
      stream: event.stream,
      position: event.position,
      type: event.type,
      at: event.metadata.at,
      data: event.data,
    });
  },
};

export async function benchRebuild(options: RebuildBenchOptions = {}): Promise<RebuildBenchResult> {
  const events = options.events ?? 1_000_000;
  const perStream = options.eventsPerStream ?? 10;
  const log = options.log ?? ((line: string) => console.log(line));
  const redisUrl = options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const dir = mkdtempSync(join(tmpdir(), 'planline-rebuild-'));
  const store = openSqliteEventStore(join(dir, 'log.db'), { synchronous: 'off' });
  try {
    log(`generating ${events.toLocaleString('en-US')} events (${perStream} per stream) in ${dir}`);
    const streams = await generateLog(store, events, perStream);
    const readAllPerSecond = await measureReadAll(store, 2_000);
    log(`raw readAll (pages of 2000):   ${rate(readAllPerSecond)} events/s`);

    const memory = await timeRebuild(store, memoryViewStore(), readAllPerSecond);
    log(`rebuild into memory:           ${rate(memory.perSecond)} events/s  (${memory.seconds.toFixed(1)} s, ${(memory.ratioToReadAll * 100).toFixed(0)}% of readAll)`);

    const memoryCatchUp = await timeCatchUp(store, memoryViewStore(), readAllPerSecond);
    log(`catch-up via startProjector (memory): ${rate(memoryCatchUp.perSecond)} events/s  (${memoryCatchUp.seconds.toFixed(1)} s)`);

    const result: RebuildBenchResult = { events, streams, readAllPerSecond, memory, memoryCatchUp };
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    const reachable = await redis.connect().then(
      () => true,
      () => false,
    );
    if (!reachable) {
      redis.disconnect();
      log(`redis at ${redisUrl} unreachable: skipped`);
      return result;
    }
    const prefix = `planline-bench:${randomUUID().slice(0, 8)}:`;
    try {
      for (const encoding of ['json', 'argv'] as const) {
        const views = redisViewStore(redis, { keyPrefix: prefix, closeClient: false, commitEncoding: encoding });
        const run = await timeRebuild(store, views, readAllPerSecond);
        if (encoding === 'json') result.redis = run;
        log(`rebuild into redis (${encoding}):     ${rate(run.perSecond)} events/s  (${run.seconds.toFixed(1)} s, ${(run.ratioToReadAll * 100).toFixed(0)}% of readAll)`);
        await unlinkPrefix(redis, prefix);
      }
      const catchUpViews = redisViewStore(redis, { keyPrefix: prefix, closeClient: false });
      result.redisCatchUp = await timeCatchUp(store, catchUpViews, readAllPerSecond);
      log(`catch-up via startProjector (redis):  ${rate(result.redisCatchUp.perSecond)} events/s  (${result.redisCatchUp.seconds.toFixed(1)} s)`);
      await unlinkPrefix(redis, prefix);
      result.commits = [];
      for (const encoding of ['argv', 'json', 'argv', 'json'] as const) {
        const commitViews = redisViewStore(redis, { keyPrefix: `${prefix}${encoding}:`, closeClient: false, commitEncoding: encoding });
        const measured = await measureCommits(commitViews, encoding, 2_000, 200);
        result.commits.push(measured);
        log(`redis commit, ${encoding.padEnd(4)} encoding, ${measured.opsPerCommit} ops/commit: ${rate(measured.commitsPerSecond)} commits/s = ${rate(measured.opsPerSecond)} ops/s`);
        await unlinkPrefix(redis, prefix);
      }
    } finally {
      await unlinkPrefix(redis, prefix);
      await redis.quit();
    }
    return result;
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function timeRebuild(store: EventStore, views: ViewStore, readAllPerSecond: number): Promise<RebuildRun> {
  try {
    const result = await rebuild({ store, views, projection: benchProjection });
    const perSecond = result.events / result.seconds;
    return { events: result.events, seconds: result.seconds, perSecond, ratioToReadAll: perSecond / readAllPerSecond };
  } finally {
    await views.close();
  }
}

async function timeCatchUp(store: EventStore, views: ViewStore, readAllPerSecond: number): Promise<RebuildRun> {
  const head = await store.headPosition();
  const started = performance.now();
  const projector = startProjector({ store, views, projection: benchProjection, log: () => {} });
  try {
    if (!(await projector.waitFor(head, 600_000))) throw new Error('catch-up did not finish in 10 minutes');
    const seconds = (performance.now() - started) / 1000;
    const events = head; // the generated log has no gaps
    return { events, seconds, perSecond: events / seconds, ratioToReadAll: events / seconds / readAllPerSecond };
  } finally {
    await projector.stop();
    await views.close();
  }
}

/** Appends `events` events as streams of `perStream`, many appends in flight (group commit). */
async function generateLog(store: EventStore, events: number, perStream: number): Promise<number> {
  const streams = Math.ceil(events / perStream);
  const at = new Date(0).toISOString();
  let next = 0;
  const appender = async () => {
    while (next < streams) {
      const s = next++;
      const size = Math.min(perStream, events - s * perStream);
      const batch: NewEvent[] = Array.from({ length: size }, (_, i) => {
        const id = randomUUID();
        const type = i === 0 ? 'BenchStarted' : i === perStream - 1 ? 'BenchFinished' : 'BenchProgressed';
        return { id, type, data: { step: i, note: `step ${i} of stream ${s}` }, metadata: { command_id: id, correlation_id: id, causation_id: id, at, schema_version: 1 } };
      });
      await store.append(`bench-${s}`, batch, 'no_stream');
    }
  };
  await Promise.all(Array.from({ length: 64 }, appender));
  return streams;
}

async function measureReadAll(store: EventStore, page: number): Promise<number> {
  const started = performance.now();
  let after = 0;
  let read = 0;
  for (;;) {
    const batch = await store.readAll({ after, maxCount: page });
    const last = batch[batch.length - 1];
    if (last === undefined) break;
    read += batch.length;
    after = last.position;
  }
  return read / ((performance.now() - started) / 1000);
}

/** `commits` sequential commits of `opsPerCommit` ops (half puts, half index adds). */
export async function measureCommits(views: ViewStore, encoding: 'argv' | 'json', opsPerCommit: number, commits: number): Promise<CommitThroughput> {
  const batches: ViewOp[][] = [];
  let id = 0;
  for (let c = 0; c < commits; c++) {
    const ops: ViewOp[] = [];
    for (let i = 0; i < opsPerCommit / 2; i++, id++) {
      const doc: Doc = { id, stream: `bench-${id % 1000}`, status: 'running', note: `document ${id}`, tags: ['a', 'b'] };
      ops.push({ op: 'put', collection: 'commit-bench', id: String(id), doc }, { op: 'index', index: 'bench:commits', id: String(id), score: id });
    }
    batches.push(ops);
  }
  const started = performance.now();
  for (let c = 0; c < commits; c++) await views.commit('commit-bench', batches[c] as ViewOp[], c + 1);
  const seconds = (performance.now() - started) / 1000;
  return { encoding, opsPerCommit, commitsPerSecond: commits / seconds, opsPerSecond: (commits * opsPerCommit) / seconds };
}

async function unlinkPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}

const rate = (n: number) => Math.round(n).toLocaleString('en-US').padStart(10);

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const raw = Number(process.env.REBUILD_EVENTS);
  benchRebuild({ events: Number.isFinite(raw) && raw > 0 ? raw : 1_000_000 }).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
