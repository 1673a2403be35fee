// Command → socket delivery: 1,000 sessions with one IDE socket each; 1,000 commands a second
// (switch_agent, sent on the socket, each session once a second); the time from sending the command to
// receiving its agent_switched frame on the same socket. Embedded, and on Redis + NATS (the frame goes
// through Redis and NATS even in one process). Baseline, same run: a bare `ws` echo of a frame of the
// same size at the same rate over as many sockets.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type WebSocket from 'ws';
import { envNumber, fmt, summarize } from './support.js';
import { cleanShared, closeSockets, createSessions, NATS_URL, openSockets, reachable, REDIS_URL, sleep, startPlanline, startRawServer, wsUrl } from './ws-support.js';

export interface Latency {
  p50Ms: number;
  p99Ms: number;
  count: number;
  lost: number;
}

export interface WsDeliveryResult {
  rate: number;
  sessions: number;
  embedded: Latency;
  redisNats: Latency | undefined;
  raw: Latency;
}

/** Send `rate` commands a second round-robin over the sockets for `seconds`; latencies of the replies. */
async function drive(sockets: readonly WebSocket[], sent: number[], latencies: number[], rate: number, seconds: number, frame: (i: number) => string) {
  const tick = 10;
  const perTick = Math.max(1, Math.round((rate * tick) / 1000));
  let next = 0;
  const end = performance.now() + seconds * 1000;
  latencies.length = 0;
  let issued = 0;
  while (performance.now() < end) {
    const started = performance.now();
    for (let k = 0; k < perTick; k++) {
      const i = next++ % sockets.length;
      sent[i] = performance.now();
      sockets[i]!.send(frame(i));
      issued++;
    }
    await sleep(Math.max(0, tick - (performance.now() - started)));
  }
  await sleep(1_000); // the last replies
  return issued;
}

async function planline(env: Record<string, string>, sessions: number, rate: number, seconds: number): Promise<Latency> {
  const server = await startPlanline(env);
  try {
    const ids = await createSessions(server.url, sessions);
    const sent = new Array<number>(sessions).fill(0);
    const toggled = new Array<boolean>(sessions).fill(false);
    const latencies: number[] = [];
    const sockets = await openSockets(
      ids.map((id) => wsUrl(server.url, `/api/v1/ws/${id}`)),
      {
        until: (text) => text.includes('"snapshot"'),
        onMessage(i, text) {
          if (sent[i] && text.includes('"agent_switched"')) {
            latencies.push(performance.now() - sent[i]!);
            sent[i] = 0;
          }
        },
      },
    );
    const command = (i: number) => JSON.stringify({ type: 'switch_agent', agent_type: (toggled[i] = !toggled[i]) ? 'debug' : 'coder', reason: 'bench' });
    await drive(sockets, sent, latencies, rate, 2, command); // warm-up
    const issued = await drive(sockets, sent, latencies, rate, seconds, command);
    await closeSockets(sockets);
    const { p50, p99 } = summarize(latencies);
    return { p50Ms: p50, p99Ms: p99, count: latencies.length, lost: issued - latencies.length };
  } finally {
    await server.stop();
  }
}

async function raw(sessions: number, rate: number, seconds: number): Promise<Latency> {
  const server = await startRawServer();
  try {
    const sent = new Array<number>(sessions).fill(0);
    const latencies: number[] = [];
    const sockets = await openSockets(Array.from({ length: sessions }, () => wsUrl(server.url, '/')), {
      onMessage(i) {
        if (!sent[i]) return;
        latencies.push(performance.now() - sent[i]!);
        sent[i] = 0;
      },
    });
    const payload = `E${'x'.repeat(380)}`; // an agent_switched frame's size
    await drive(sockets, sent, latencies, rate, 2, () => payload);
    const issued = await drive(sockets, sent, latencies, rate, seconds, () => payload);
    await closeSockets(sockets);
    const { p50, p99 } = summarize(latencies);
    return { p50Ms: p50, p99Ms: p99, count: latencies.length, lost: issued - latencies.length };
  } finally {
    await server.stop();
  }
}

export async function benchWsDelivery(options: { sessions?: number; rate?: number; seconds?: number } = {}): Promise<WsDeliveryResult> {
  const sessions = options.sessions ?? 1_000;
  const rate = options.rate ?? 1_000;
  const seconds = options.seconds ?? envNumber('BENCH_SECONDS', 10);
  const dir = mkdtempSync(join(tmpdir(), 'planline-bench-ws-'));
  try {
    const embedded = await planline({ EVENTSTORE_URL: `sqlite:${join(dir, 'embedded.db')}` }, sessions, rate, seconds);
    let redisNats: Latency | undefined;
    if ((await reachable(REDIS_URL)) && (await reachable(NATS_URL))) {
      const suffix = `${process.pid}_${Date.now().toString(36)}`;
      const viewsPrefix = `planline-bench:${suffix}:`;
      const busPrefix = `planline_bench_${suffix}`;
      try {
        redisNats = await planline(
          { EVENTSTORE_URL: `sqlite:${join(dir, 'shared.db')}`, REDIS_URL, NATS_URL, BENCH_VIEWS_PREFIX: viewsPrefix, BENCH_BUS_PREFIX: busPrefix },
          sessions,
          rate,
          seconds,
        );
      } finally {
        await cleanShared(viewsPrefix, busPrefix);
      }
    }
    return { rate, sessions, embedded, redisNats, raw: await raw(sessions, rate, seconds) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printWsDelivery(r: WsDeliveryResult): void {
  const line = (label: string, l: Latency) =>
    `  ${label}: p50 ${fmt(l.p50Ms, 2)} ms   p99 ${fmt(l.p99Ms, 2)} ms   (${fmt(l.count)} delivered, ${fmt(l.lost)} not)`;
  console.log(`Command → socket delivery (${fmt(r.rate)} commands/s over ${fmt(r.sessions)} sessions, switch_agent → agent_switched)`);
  console.log(line('embedded', r.embedded));
  console.log(`  target p99 < 20 ms embedded: ${r.embedded.p99Ms < 20 ? 'met' : 'MISSED'}`);
  if (r.redisNats) {
    console.log(line('redis + nats', r.redisNats));
    console.log(`  target p99 < 50 ms with Redis and NATS: ${r.redisNats.p99Ms < 50 ? 'met' : 'MISSED'}`);
  } else console.log('  redis + nats: skipped (Redis or NATS unreachable)');
  console.log(line('baseline: bare ws echo', r.raw));
  console.log(`  ratio p99 embedded ÷ raw = ${fmt(r.embedded.p99Ms / r.raw.p99Ms, 1)}${r.redisNats ? `   redis + nats ÷ raw = ${fmt(r.redisNats.p99Ms / r.raw.p99Ms, 1)}` : ''}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printWsDelivery(await benchWsDelivery());
}
