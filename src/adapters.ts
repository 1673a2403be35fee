// Configuration → adapters. The one place that knows which adapter stands behind each port; the
// KurrentDB, PostgreSQL, Redis and NATS clients are loaded only when configured, so the embedded
// mode starts fast.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { EventStoreConfig } from './config.js';
import type { EventStore } from './events/store.js';
import type { Logger } from './log.js';
import { openSqliteEventStore } from './events/sqlite-store.js';
import type { ViewStore } from './projections/views.js';
import type { Bus, BusOptions } from './bus/bus.js';
import { memoryBus } from './bus/memory-bus.js';
import { memoryViewStore } from './projections/memory-views.js';
import { openSqliteViewStore } from './projections/sqlite-views.js';

/** `log` receives what an adapter learns at connect (KurrentDB: server version, multi-stream support). */
export async function openEventStore(config: EventStoreConfig, log?: Logger): Promise<EventStore> {
  if (config.kind === 'sqlite') {
    if (config.path !== ':memory:') mkdirSync(dirname(config.path), { recursive: true });
    return openSqliteEventStore(config.path);
  }
  if (config.kind === 'postgres') {
    const { openPostgresEventStore } = await import('./events/postgres-store.js');
    return openPostgresEventStore(config.connectionString, { schema: config.schema });
  }
  const { openKurrentEventStore } = await import('./events/kurrent-store.js');
  return openKurrentEventStore(config.connectionString, log === undefined ? {} : { log });
}

export interface OpenedViews {
  views: ViewStore;
  /**
   * 'memory' views start empty and are rebuilt from the log at every start; 'sqlite' views persist in a
   * file beside the embedded log (a restart projects only what is new); 'redis' views are shared.
   * Memory and SQLite views belong to this process: it must project them itself.
   */
  kind: 'memory' | 'sqlite' | 'redis';
}

export interface ViewStoreChoice {
  redisUrl: string | undefined;
  /** Redis key prefix (default "planline:"). */
  keyPrefix?: string | undefined;
  /** Without Redis, the embedded event log this process uses: a file gets persisted read models beside it. */
  eventStore?: EventStoreConfig | undefined;
  /** Id of the event log (persisted read models built from another log start empty). */
  logId?: string | undefined;
}

/** `data/planline.db` → `data/planline.views.db`: the embedded read models live beside the log. */
export function viewsFileBeside(logPath: string): string {
  return logPath.replace(/(\.db)?$/, '.views.db');
}

export async function openViewStore(choice: ViewStoreChoice): Promise<OpenedViews> {
  const { redisUrl, keyPrefix = 'planline:', eventStore } = choice;
  if (!redisUrl) {
    if (eventStore?.kind === 'sqlite' && eventStore.path !== ':memory:' && eventStore.path !== '') {
      const views = openSqliteViewStore(viewsFileBeside(eventStore.path), choice.logId !== undefined ? { logId: choice.logId } : {});
      return { views, kind: 'sqlite' };
    }
    return { views: memoryViewStore(), kind: 'memory' };
  }
  const [{ Redis }, { redisViewStore }] = await Promise.all([import('ioredis'), import('./projections/redis-views.js')]);
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  try {
    await redis.connect();
  } catch (error) {
    // Otherwise the client keeps reconnecting in the background and holds the process open.
    redis.disconnect();
    throw new Error(`cannot reach Redis at ${redacted(redisUrl)}: ${(error as Error).message}`);
  }
  return { views: redisViewStore(redis, { keyPrefix }), kind: 'redis' };
}

export interface OpenedBus {
  bus: Bus;
  /** 'memory' lives and dies with this process; 'nats' is shared by every process on the broker. */
  kind: 'memory' | 'nats';
}

export async function openBus(natsUrl: string | undefined, options: BusOptions & { reconnectWaitMs?: number } = {}): Promise<OpenedBus> {
  if (!natsUrl) return { bus: memoryBus(options), kind: 'memory' };
  const { openNatsBus } = await import('./bus/nats-bus.js');
  try {
    return { bus: await openNatsBus(natsUrl, options), kind: 'nats' };
  } catch (error) {
    if (error instanceof TypeError) throw error; // a bad option, not an unreachable broker
    throw new Error(`cannot open the NATS bus at ${redacted(natsUrl)}: ${(error as Error).message}`);
  }
}

/** The URL without credentials, for messages. */
function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password || parsed.username) parsed.username = parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the configured URL';
  }
}
