// Plan reads by id at a fixed rate (open loop: requests go out on schedule whether or not earlier
// ones have answered; the largest lag behind schedule is reported next to the latencies).
// Baseline, same run: the same reads straight from the in-process read-model store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { memoryViewStore } from '../src/projections/memory-views.js';
import { envNumber, fmt, request, startServer, summarize } from './support.js';

export interface PlanReadsResult {
  rate: number;
  achieved: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  rawReadsPerSecond: number;
  /** The server's own event-loop delay during the reads: separates server stalls from client ones. */
  serverLoopDelayP99Ms: number;
  serverLoopDelayMaxMs: number;
  /** Largest lag of a send behind its schedule. */
  maxLagMs: number;
}

export async function benchPlanReads(options: { rate?: number; seconds?: number; plans?: number } = {}): Promise<PlanReadsResult> {
  const rate = options.rate ?? 2_000;
  const seconds = options.seconds ?? envNumber('BENCH_SECONDS', 10);
  const plans = options.plans ?? 1_000;
  const dir = mkdtempSync(join(tmpdir(), 'planline-bench-'));
  // BENCH_URL: measure a server started by hand (e.g. under --cpu-prof) instead of a child.
  const server = process.env.BENCH_URL
    ? { url: process.env.BENCH_URL, stop: async () => {} }
    : await startServer({ EVENTSTORE_URL: `sqlite:${join(dir, 'planline.db')}` });
  try {
    const ids: string[] = [];
    const body = { goal: 'read me', subtasks: [{ description: 'a' }, { description: 'b', dependencies: [0] }] };
    for (let i = 0; i < plans; i += 50) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, plans - i) }, () => request(`${server.url}/api/v1/plans`, 'POST', body)));
      for (const r of batch) ids.push((JSON.parse(r.body) as { plan_id: string }).plan_id);
    }
    // Let the read models catch up with the last write before reading.
    await request(`${server.url}/api/v1/plans/${ids.at(-1)}?wait_for=${await headOf(server.url)}`, 'GET');

    await request(`${server.url}/api/v1/metrics`, 'GET'); // starts a fresh event-loop delay window
    const latencies: number[] = [];
    let errors = 0;
    const total = rate * seconds;
    const interval = 1000 / rate;
    const started = performance.now();
    const inflight: Promise<void>[] = [];
    // Open loop: every ~1 ms tick, send whatever is due, whether or not earlier requests have
    // answered. Latency is measured from the send; how late sends ran behind schedule is reported
    // separately (a sender that falls behind would otherwise hide server stalls).
    let maxLagMs = 0;
    for (let i = 0; i < total; ) {
      const now = performance.now();
      for (; i < total && started + i * interval <= now; i++) {
        maxLagMs = Math.max(maxLagMs, now - (started + i * interval));
        const id = ids[i % ids.length]!;
        const sent = performance.now();
        inflight.push(
          request(`${server.url}/api/v1/plans/${id}`, 'GET').then(
            (r) => {
              latencies.push(performance.now() - sent);
              if (r.status !== 200) errors++;
            },
            () => {
              errors++;
            },
          ),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(inflight);
    const metrics = (await request(`${server.url}/api/v1/metrics`, 'GET')).body;
    const loopP99 = Number(/^planline_event_loop_delay_p99_seconds (\S+)/m.exec(metrics)?.[1]) * 1000;
    const loopMax = Number(/^planline_event_loop_delay_max_seconds (\S+)/m.exec(metrics)?.[1]) * 1000;
    const achieved = latencies.length / ((performance.now() - started) / 1000);

    // Baseline: the same documents fetched from an in-process memory view store.
    const views = memoryViewStore();
    await views.commit('bench', ids.map((id) => ({ op: 'put' as const, collection: 'plans', id, doc: { plan_id: id } })), 1);
    const rawStarted = performance.now();
    const rawCount = 200_000;
    for (let i = 0; i < rawCount; i++) await views.get('plans', ids[i % ids.length]!);
    const rawReadsPerSecond = rawCount / ((performance.now() - rawStarted) / 1000);

    const { p50, p99 } = summarize(latencies);
    return { rate, achieved, p50Ms: p50, p99Ms: p99, errors, rawReadsPerSecond, serverLoopDelayP99Ms: loopP99, serverLoopDelayMaxMs: loopMax, maxLagMs };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function headOf(url: string): Promise<number> {
  const metrics = (await request(`${url}/api/v1/metrics`, 'GET')).body;
  return Number(/^planline_event_log_head_position (\d+)/m.exec(metrics)?.[1] ?? 0);
}

export function printPlanReads(r: PlanReadsResult): void {
  console.log(`Plan reads by id (GET /api/v1/plans/:id, open loop at ${fmt(r.rate)} req/s, embedded)`);
  console.log(`  achieved ${fmt(r.achieved)} req/s   p50 ${fmt(r.p50Ms, 2)} ms   p99 ${fmt(r.p99Ms, 2)} ms   errors ${r.errors}`);
  console.log(`  sender's largest lag behind schedule ${fmt(r.maxLagMs, 2)} ms`);
  console.log(`  server event-loop delay p99 ${fmt(r.serverLoopDelayP99Ms, 2)} ms, max ${fmt(r.serverLoopDelayMaxMs, 2)} ms`);
  console.log(`  target p99 < 5 ms at 2,000 req/s: ${r.p99Ms < 5 && r.achieved >= r.rate * 0.98 ? 'met' : 'MISSED'}`);
  console.log(`  baseline: in-process read-model gets ${fmt(r.rawReadsPerSecond)} reads/s`);
  console.log(`  ratio (HTTP capacity used) = ${fmt(r.achieved / r.rawReadsPerSecond, 4)} of raw read throughput`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printPlanReads(await benchPlanReads());
}
