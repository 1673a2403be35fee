// Configuration → adapters. The one place that knows which adapter stands behind each port; the
// KurrentDB, Redis and NATS clients are loaded only when configured, so the embedded mode starts fast.
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

/** `log` receives what an adapter learns at connect (KurrentDB: server version, multi-stream support). */
export async function openEventStore(config: EventStoreConfig, log?: Logger): Promise<EventStore> {
  if (config.kind === 'sqlite') {
    if (config.path !== ':memory:') mkdirSync(dirname(config.path), { recursive: true });
    return openSqliteEventStore(config.path);
  }
  const { openKurrentEventStore } = await import('./events/kurrent-store.js');
  return openKurrentEventStore(config.connectionString, log === undefined ? {} : { log });
}

export interface OpenedViews {
  views: ViewStore;
  /** 'memory' views start empty and are rebuilt from the log; 'redis' views persist. */
  kind: 'memory' | 'redis';
}

export async function openViewStore(redisUrl: string | undefined, keyPrefix = 'planline:'): Promise<OpenedViews> {
  if (!redisUrl) return { views: memoryViewStore(), kind: 'memory' };
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

export async function openBus(natsUrl: string | undefined, options: BusOptions = {}): Promise<OpenedBus> {
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
