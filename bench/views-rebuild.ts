// Rebuilding the real read models (plans, sessions, approvals, history) from a log of N events
// (default 1,000,000; REBUILD_EVENTS to change) of realistic plan lifecycles, in memory and into
// Redis, next to a raw readAll of the same log measured in the same run (a rebuild cannot beat it).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { SCHEMA_VERSIONS, streams, type DomainEvent } from '../src/events/catalog.js';
import { eventIdFor } from '../src/events/ids.js';
import { openSqliteEventStore } from '../src/events/sqlite-store.js';
import type { EventStore, NewEvent } from '../src/events/store.js';
import { memoryViewStore } from '../src/projections/memory-views.js';
import { openSqliteViewStore } from '../src/projections/sqlite-views.js';
import { rebuild } from '../src/projections/projector.js';
import { redisViewStore } from '../src/projections/redis-views.js';
import { viewsProjection } from '../src/projections/views-projection.js';
import { measureReadAll } from './store-append.js';
import { envNumber, fmt } from './support.js';

/** Events per lifecycle: a session that plans, approves and runs three subtasks to completion. */
function lifecycle(n: number, at: string): Array<{ stream: string; events: DomainEvent[] }> {
  const sessionId = `bench-s${n}`;
  const planId = `bench-p${n}`;
  const subtasks = ['a', 'b', 'c'].map((id, i) => ({
    id,
    description: `step ${id} of plan ${n}`,
    agent: 'coder' as const,
    dependencies: i === 2 ? ['a', 'b'] : [],
    estimated_time: 300,
  }));
  const approval = `bench-a${n}`;
  const run = (id: string): DomainEvent[] => [
    { type: 'SubtaskDispatched', data: { subtask_id: id, attempt: 1 } },
    { type: 'SubtaskStarted', data: { subtask_id: id, attempt: 1 } },
    { type: 'SubtaskSucceeded', data: { subtask_id: id, attempt: 1 } },
  ];
  return [
    {
      stream: streams.session(sessionId),
      events: [
        { type: 'SessionStarted', data: { session_id: sessionId, name: `bench ${n}`, mode: 'plan', agent_type: 'universal' } },
        { type: 'TaskClassified', data: { kind: 'complex', plan_id: planId, source: 'client' } },
      ],
    },
    {
      stream: streams.plan(planId),
      events: [
        { type: 'PlanDrafted', data: { plan_id: planId, session_id: sessionId, revision: 1, goal: `goal ${n}`, subtasks, source: 'client' } },
        { type: 'PlanApprovalRequested', data: { approval_request_id: approval, revision: 1, deadline: at, timeout_action: 'expire' } },
        { type: 'PlanApproved', data: { approval_request_id: approval, decided_by: 'user' } },
        { type: 'PlanExecutionStarted', data: { max_parallel: 2 } },
        ...run('a'),
        ...run('b'),
        ...run('c'),
        { type: 'PlanCompleted', data: {} },
      ],
    },
  ];
}

const EVENTS_PER_LIFECYCLE = 16;

/** A log of about `events` events of plan lifecycles, 200 written concurrently (interleaved in the log). */
export async function generate(store: EventStore, events: number): Promise<number> {
  const at = new Date().toISOString();
  const lifecycles = Math.ceil(events / EVENTS_PER_LIFECYCLE);
  let written = 0;
  const CONCURRENCY = 200;
  for (let start = 0; start < lifecycles; start += CONCURRENCY) {
    const batch = Array.from({ length: Math.min(CONCURRENCY, lifecycles - start) }, (_, i) => lifecycle(start + i, at));
    await Promise.all(
      batch.map(async (appends) => {
        for (const { stream, events: domain } of appends) {
          const commandId = `bench-${stream}`;
          const batchEvents: NewEvent[] = domain.map((e, i) => ({
            id: eventIdFor(commandId, stream, i),
            type: e.type,
            data: e.data as Record<string, unknown>,
            metadata: { command_id: commandId, correlation_id: commandId, causation_id: commandId, at, schema_version: SCHEMA_VERSIONS[e.type] },
          }));
          await store.append(stream, batchEvents, 'no_stream');
          written += batchEvents.length;
        }
      }),
    );
  }
  return written;
}

export interface ViewsRebuildResult {
  events: number;
  readAllPerSecond: number;
  memoryPerSecond: number;
  /** The embedded default: read models in a SQLite file beside the log. */
  sqlitePerSecond: number;
  redisPerSecond: number | undefined;
}

export async function benchViewsRebuild(options: { events?: number; redisUrl?: string } = {}): Promise<ViewsRebuildResult> {
  const target = options.events ?? envNumber('REBUILD_EVENTS', 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'planline-rebuild-'));
  try {
    const path = join(dir, 'log.db');
    const writer = openSqliteEventStore(path, { synchronous: 'off' });
    const generatedAt = performance.now();
    const events = await generate(writer, target);
    await writer.close();
    console.error(`  (generated ${fmt(events)} events in ${fmt((performance.now() - generatedAt) / 1000, 1)} s)`);

    const store = openSqliteEventStore(path);
    const readAllPerSecond = await measureReadAll(store, 2000);
    const memory = await rebuild({ store, views: memoryViewStore(), projection: viewsProjection });
    const sqliteViews = openSqliteViewStore(join(dir, 'views.db'));
    const sqlite = await rebuild({ store, views: sqliteViews, projection: viewsProjection });
    await sqliteViews.close();
    let redisPerSecond: number | undefined;
    const redisUrl = options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
    try {
      await redis.connect();
      const views = redisViewStore(redis, { keyPrefix: `planline-bench:${Date.now()}:` });
      const run = await rebuild({ store, views, projection: viewsProjection });
      redisPerSecond = run.events / run.seconds;
      await views.reset(viewsProjection.name, viewsProjection.collections, viewsProjection.indexPrefixes);
      await views.close();
    } catch (error) {
      redis.disconnect();
      console.error(`  (Redis rebuild skipped: ${(error as Error).message})`);
    }
    await store.close();
    return { events, readAllPerSecond, memoryPerSecond: memory.events / memory.seconds, sqlitePerSecond: sqlite.events / sqlite.seconds, redisPerSecond };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printViewsRebuild(r: ViewsRebuildResult): void {
  console.log(`Rebuild of the read models (plans, sessions, approvals, history) from ${fmt(r.events)} events`);
  console.log(`  baseline: raw readAll ${fmt(r.readAllPerSecond)} events/s`);
  console.log(`  in memory: ${fmt(r.memoryPerSecond)} events/s (target ≥ 50,000: ${r.memoryPerSecond >= 50_000 ? 'met' : 'MISSED'}), ratio to readAll ${fmt(r.memoryPerSecond / r.readAllPerSecond, 3)}`);
  console.log(`  into SQLite beside the log (the embedded default): ${fmt(r.sqlitePerSecond)} events/s, ratio to readAll ${fmt(r.sqlitePerSecond / r.readAllPerSecond, 3)}`);
  if (r.redisPerSecond === undefined) console.log('  into Redis: not measured (Redis unreachable)');
  else console.log(`  into Redis: ${fmt(r.redisPerSecond)} events/s (target ≥ 30,000: ${r.redisPerSecond >= 30_000 ? 'met' : 'MISSED'}), ratio to readAll ${fmt(r.redisPerSecond / r.readAllPerSecond, 3)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printViewsRebuild(await benchViewsRebuild());
}
