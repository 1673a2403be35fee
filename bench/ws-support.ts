// Plumbing the socket benchmarks share: a Planline server and a raw `ws` server, each in a child process
// (the clients run here, on the other core), many sockets opened with bounded concurrency, a process's
// resident memory, and cleanup of what a run put on the shared Redis and NATS.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Redis } from 'ioredis';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as connectNats } from '@nats-io/transport-node';
import { busNames } from '../src/bus/subjects.js';
import { request, startServer, type BenchServer } from './support.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

export interface Server extends BenchServer {
  pid: number;
}

/** A Planline server (bench/planline-server.ts) with `env`; limits are lifted unless `env` sets them. */
export async function startPlanline(env: Record<string, string>): Promise<Server> {
  const server = await startServer(
    { WS_MAX_FRAMES_PER_SECOND: '1000000', WS_MAX_CONNECTIONS: '50000', WS_MAX_BUFFERED_BYTES: '67108864', ...env },
    join(HERE, 'planline-server.js'),
  );
  return { ...server, pid: server.child.pid! };
}

/** The raw `ws` server (bench/raw-ws-server.ts). */
export async function startRawServer(): Promise<Server> {
  const child = spawn(process.execPath, [join(HERE, 'raw-ws-server.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once('exit', () => reject(new Error('the raw ws server exited')));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Resident memory of a process, in bytes (Linux). */
export function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? Number.NaN) * 1024;
}

export const wsUrl = (httpUrl: string, path: string) => `${httpUrl.replace(/^http/, 'ws')}${path}`;

/**
 * Open one socket per url, `concurrency` handshakes at a time; `onMessage` sees every frame's text.
 * Resolves once every socket is open (and, with `until`, has received a frame `until` accepts).
 */
export async function openSockets(
  urls: readonly string[],
  options: { concurrency?: number; onMessage?: (index: number, text: string) => void; until?: (text: string) => boolean } = {},
): Promise<WebSocket[]> {
  const sockets: WebSocket[] = new Array(urls.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < urls.length; i = next++) {
      sockets[i] = await new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(urls[i]!, { perMessageDeflate: false });
        let ready = options.until === undefined;
        ws.on('message', (data) => {
          const text = data.toString();
          options.onMessage?.(i, text);
          if (!ready && options.until!(text)) {
            ready = true;
            resolve(ws);
          }
        });
        ws.once('open', () => ready && resolve(ws));
        ws.once('error', reject);
      });
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 64 }, worker));
  return sockets;
}

export async function closeSockets(sockets: readonly WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.terminate();
        }),
    ),
  );
}

/** `count` sessions, `concurrency` requests at a time; their ids in order. */
export async function createSessions(url: string, count: number, concurrency = 32): Promise<string[]> {
  const ids: string[] = new Array(count);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const reply = await request(`${url}/api/v1/sessions`, 'POST', { name: `bench ${i}` });
      if (reply.status !== 201) throw new Error(`POST /sessions answered ${reply.status}: ${reply.body}`);
      ids[i] = (JSON.parse(reply.body) as { session_id: string }).session_id;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return ids;
}

/** Whether a TCP service answers (Redis, NATS), so a figure that needs it can be skipped, saying so. */
export function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connectTcp({ host: hostname, port: Number(port) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Remove a run's Redis keys and NATS streams. */
export async function cleanShared(viewsPrefix: string, busPrefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${viewsPrefix}*`, 'COUNT', 1_000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
  const nc = await connectNats({ servers: NATS_URL });
  try {
    const jsm = await jetstreamManager(nc);
    const names = busNames(busPrefix);
    for (const stream of [names.jobStream, names.deadStream]) await jsm.streams.delete(stream).catch(() => undefined);
  } finally {
    await nc.close();
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
