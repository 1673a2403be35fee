// Plan reads by id at a fixed rate (open loop: a request is sent on schedule whether or not earlier
// ones have answered, and latency counts from the scheduled time, so a stall is not hidden).
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
}

export async function benchPlanReads(options: { rate?: number; seconds?: number; plans?: number } = {}): Promise<PlanReadsResult> {
  const rate = options.rate ?? 2_000;
  const seconds = options.seconds ?? envNumber('BENCH_SECONDS', 10);
  const plans = options.plans ?? 1_000;
  const dir = mkdtempSync(join(tmpdir(), 'planline-bench-'));
  const server = await startServer({ EVENTSTORE_URL: `sqlite:${join(dir, 'planline.db')}` });
  try {
    const ids: string[] = [];
    const body = { goal: 'read me', subtasks: [{ description: 'a' }, { description: 'b', dependencies: [0] }] };
    for (let i = 0; i < plans; i += 50) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, plans - i) }, () => request(`${server.url}/api/v1/plans`, 'POST', body)));
      for (const r of batch) ids.push((JSON.parse(r.body) as { plan_id: string }).plan_id);
    }
    // Let the read models catch up with the last write before reading.
    await request(`${server.url}/api/v1/plans/${ids.at(-1)}?wait_for=${await headOf(server.url)}`, 'GET');

    const latencies: number[] = [];
    let errors = 0;
    const total = rate * seconds;
    const interval = 1000 / rate;
    const started = performance.now();
    const inflight: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const due = started + i * interval;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      const id = ids[i % ids.length]!;
      inflight.push(
        request(`${server.url}/api/v1/plans/${id}`, 'GET').then(
          (r) => {
            latencies.push(performance.now() - due);
            if (r.status !== 200) errors++;
          },
          () => {
            errors++;
          },
        ),
      );
    }
    await Promise.all(inflight);
    const achieved = latencies.length / ((performance.now() - started) / 1000);

    // Baseline: the same documents fetched from an in-process memory view store.
    const views = memoryViewStore();
    await views.commit('bench', ids.map((id) => ({ op: 'put' as const, collection: 'plans', id, doc: { plan_id: id } })), 1);
    const rawStarted = performance.now();
    const rawCount = 200_000;
    for (let i = 0; i < rawCount; i++) await views.get('plans', ids[i % ids.length]!);
    const rawReadsPerSecond = rawCount / ((performance.now() - rawStarted) / 1000);

    const { p50, p99 } = summarize(latencies);
    return { rate, achieved, p50Ms: p50, p99Ms: p99, errors, rawReadsPerSecond };
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
  console.log(`  target p99 < 5 ms at 2,000 req/s: ${r.p99Ms < 5 && r.achieved >= r.rate * 0.98 ? 'met' : 'MISSED'}`);
  console.log(`  baseline: in-process read-model gets ${fmt(r.rawReadsPerSecond)} reads/s`);
  console.log(`  ratio (HTTP capacity used) = ${fmt(r.achieved / r.rawReadsPerSecond, 4)} of raw read throughput`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printPlanReads(await benchPlanReads());
}
