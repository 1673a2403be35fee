// Which real services a suite can use. Under CI=true a missing service is a failure (the suite's
// beforeAll throws); elsewhere the suite is skipped and says so once, so a red run is never hidden.
import { randomUUID } from 'node:crypto';
import { createConnection } from 'node:net';
import { Redis } from 'ioredis';
import pg from 'pg';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as connectNats } from '@nats-io/transport-node';
import { busNames } from '../../src/bus/subjects.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
export const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const KURRENTDB_URL = process.env.KURRENTDB_URL;
export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

/** Ports of URLs that name none. */
const DEFAULT_PORTS: Record<string, number> = { 'redis:': 6379, 'nats:': 4222, 'postgres:': 5432, 'postgresql:': 5432 };

/** Resolves true when a TCP connection to the URL's host:port succeeds within the timeout. */
export function reachable(url: string, timeoutMs = 1_000): Promise<boolean> {
  const { hostname, port, protocol } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: port === '' ? (DEFAULT_PORTS[protocol] ?? 0) : Number(port) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Decide, at collection time, whether a suite that needs `name` at `url` runs.
 * Returns true to run. In CI an unreachable service throws, failing the file loudly.
 */
export async function serviceAvailable(name: string, url: string): Promise<boolean> {
  if (await reachable(url)) return true;
  if (IN_CI) throw new Error(`${name} is required under CI=true but ${url} is unreachable`);
  console.warn(`[skipped] ${name} suites: ${url} is unreachable (set ${name.toUpperCase()}_URL or start it)`);
  return false;
}

/** A key prefix unique to one test file run, so suites sharing a Redis never see each other's keys. */
export function uniquePrefix(label: string): string {
  return `pltest:${label}:${process.pid}:${Date.now().toString(36)}:`;
}

/** Delete every key under `prefix`. */
export async function flushRedisKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
}

/** A PostgreSQL schema name unique to one test (or file) run; drop it afterwards with dropPostgresSchemas. */
export function uniqueSchema(label: string): string {
  const name = `pltest_${label}_${process.pid}_${randomUUID().slice(0, 8)}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  // Keep the random end: a long label is what gets cut.
  return name.length <= 48 ? name : `${name.slice(0, 30)}${name.slice(-18)}`;
}

/** Drop these schemas and everything in them. */
export async function dropPostgresSchemas(url: string, schemas: Iterable<string>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** A bus prefix unique to one test (letters, digits, _ and -). */
export function uniqueBusPrefix(label: string): string {
  return `pltest_${label}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`;
}

/** Delete the JetStream streams (and with them the consumers) a bus prefix created. */
export async function deleteBusStreams(natsUrl: string, prefix: string): Promise<void> {
  const nc = await connectNats({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const names = busNames(prefix);
    for (const stream of [names.jobStream, names.deadStream]) await jsm.streams.delete(stream).catch(() => undefined);
  } finally {
    await nc.close();
  }
}
