// Which real services a suite can use. Under CI=true a missing service is a failure (the suite's
// beforeAll throws); elsewhere the suite is skipped and says so once, so a red run is never hidden.
import { createConnection } from 'node:net';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
export const KURRENTDB_URL = process.env.KURRENTDB_URL;
export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

/** Resolves true when a TCP connection to the URL's host:port succeeds within the timeout. */
export function reachable(url: string, timeoutMs = 1_000): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port) });
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
