// A real Planline on a free port for end-to-end tests: the same startPlanline() that `npm start` runs,
// configured through the same environment variables, with its own SQLite file in a temp directory
// (and its own Redis key prefix when REDIS_URL is given). Tests talk to it over HTTP with fetch.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startPlanline, type Planline } from '../../src/runtime.js';
import { flushRedisKeys, uniquePrefix } from './services.js';

export { flushRedisKeys };

export interface TestServer {
  /** Base URL, e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  /** The API base: `${url}/api/v1`. */
  api: string;
  /** The temp directory holding the SQLite file (reuse it to restart on the same log). */
  dir: string;
  /** Every log line the server wrote (JSON), for asserting that nothing failed unexpectedly. */
  logs: Array<Record<string, unknown>>;
  planline: Planline;
  /** Graceful close (idempotent). Keeps the temp directory; see `dispose`. */
  close(): Promise<void>;
  /** Close, then delete the temp directory and this server's Redis keys. */
  dispose(): Promise<void>;
}

export interface StartOptions {
  /** Reuse a directory (and so the SQLite log) from an earlier server: a restart. */
  dir?: string;
  /** Redis key prefix for the read models; default a fresh unique one (when REDIS_URL is set). */
  viewsKeyPrefix?: string;
  /** Bus prefix (NATS subjects and streams); servers of one deployment share it. The caller deletes its streams. */
  busPrefix?: string;
  busReconnectWaitMs?: number;
  /** Agent jobs' ack wait and retry delays; the processors' lease TTL (tests of failures shorten them). */
  jobAckWaitMs?: number;
  jobBackoffMs?: readonly number[];
  leaseTtlMs?: number;
}

/**
 * Start a server with `env` (the variables of DESIGN §7). EVENTSTORE_URL defaults to a SQLite file in
 * a new temp directory; PORT is always 0 (an ephemeral port); LOG_LEVEL defaults to warn. ROLES defaults
 * to `edge,projector`: the lifecycle suites drive plans by hand and must not have an executor running
 * them; tests of execution (and of the approval timer, an executor's job) ask for the roles they need.
 */
export async function startServer(env: Record<string, string | undefined> = {}, options: StartOptions = {}): Promise<TestServer> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'planline-e2e-'));
  const config = {
    ...loadConfig({ HOST: '127.0.0.1', EVENTSTORE_URL: `sqlite:${join(dir, 'planline.db')}`, LOG_LEVEL: 'warn', ROLES: 'edge,projector', ...env }),
    // PORT must be 1-65535 in the environment; the tests want the OS to pick a free one.
    port: 0,
  };
  const logs: Array<Record<string, unknown>> = [];
  const log = createLogger(config.logLevel, { write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const viewsKeyPrefix = config.redisUrl ? (options.viewsKeyPrefix ?? uniquePrefix(`e2e-${Math.random().toString(36).slice(2, 8)}`)) : undefined;
  const planline = await startPlanline(config, log, {
    ...(viewsKeyPrefix !== undefined ? { viewsKeyPrefix } : {}),
    ...(options.busPrefix !== undefined ? { busPrefix: options.busPrefix } : {}),
    ...(options.busReconnectWaitMs !== undefined ? { busReconnectWaitMs: options.busReconnectWaitMs } : {}),
    ...(options.jobAckWaitMs !== undefined ? { jobAckWaitMs: options.jobAckWaitMs } : {}),
    ...(options.jobBackoffMs !== undefined ? { jobBackoffMs: options.jobBackoffMs } : {}),
    ...(options.leaseTtlMs !== undefined ? { leaseTtlMs: options.leaseTtlMs } : {}),
  });
  if (!planline.url) throw new Error('the server has no HTTP edge (ROLES without edge?)');

  let closing: Promise<void> | undefined;
  const close = () => (closing ??= planline.close());
  return {
    url: planline.url,
    api: `${planline.url}/api/v1`,
    dir,
    logs,
    planline,
    close,
    async dispose() {
      await close();
      if (config.redisUrl && viewsKeyPrefix !== undefined) await flushRedisKeys(config.redisUrl, viewsKeyPrefix);
      if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}


export interface Reply<T = any> {
  status: number;
  headers: Headers;
  /** Parsed JSON when the response is JSON (including problem+json), else undefined. */
  body: T;
  text: string;
  contentType: string;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** A raw body (sent as is, with the given content-type header or none). */
  raw?: string;
}

/** A tiny fetch wrapper: JSON in, parsed JSON (or text) out, status and headers kept. */
export function client(api: string, defaults: { headers?: Record<string, string> } = {}) {
  async function send<T>(method: string, path: string, json?: unknown, options: RequestOptions = {}): Promise<Reply<T>> {
    const headers: Record<string, string> = { ...defaults.headers, ...options.headers };
    let body: string | undefined;
    if (options.raw !== undefined) body = options.raw;
    else if (json !== undefined) {
      body = JSON.stringify(json);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${api}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await response.text();
    const contentType = response.headers.get('content-type') ?? '';
    let parsed: unknown;
    if (/json/.test(contentType) && text !== '') parsed = JSON.parse(text);
    return { status: response.status, headers: response.headers, body: parsed as T, text, contentType };
  }
  return {
    get: <T = any>(path: string, options?: RequestOptions) => send<T>('GET', path, undefined, options),
    post: <T = any>(path: string, json?: unknown, options?: RequestOptions) => send<T>('POST', path, json, options),
    send,
  };
}

export type Client = ReturnType<typeof client>;
