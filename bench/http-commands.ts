// HTTP commands end to end: 64 concurrent clients alternating CreatePlan and DecidePlan (approve)
// against an embedded server (SQLite, every command durable before its response), in a child process.
// Baseline, same run: raw durable single-event appends from 64 concurrent appenders (group commit),
// i.e. the store doing the least a command could make it do.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openSqliteEventStore } from '../src/events/sqlite-store.js';
import { measureConcurrentAppends } from './store-append.js';
import { envNumber, fmt, request, startServer, summarize } from './support.js';

export interface HttpCommandsResult {
  commandsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  rawAppendsPerSecond: number;
}

export async function benchHttpCommands(options: { clients?: number; seconds?: number } = {}): Promise<HttpCommandsResult> {
  const clients = options.clients ?? 64;
  const seconds = options.seconds ?? envNumber('BENCH_SECONDS', 10);
  const dir = mkdtempSync(join(tmpdir(), 'planline-bench-'));
  try {
    const raw = openSqliteEventStore(join(dir, 'raw.db'));
    const rawAppendsPerSecond = await measureConcurrentAppends(raw, { appenders: clients, appendsEach: 300 });
    await raw.close();

    // BENCH_URL: measure a server started by hand (e.g. under --cpu-prof) instead of a child.
    const server = process.env.BENCH_URL
      ? { url: process.env.BENCH_URL, stop: async () => {} }
      : await startServer({ EVENTSTORE_URL: `sqlite:${join(dir, 'planline.db')}` });
    const plan = {
      goal: 'Benchmark plan',
      subtasks: [
        { id: 'a', description: 'first' },
        { id: 'b', description: 'second', dependencies: ['a'] },
        { id: 'c', description: 'third', dependencies: [0, 'b'] },
      ],
    };
    const latencies: number[] = [];
    let errors = 0;
    const client = async (deadline: number) => {
      while (performance.now() < deadline) {
        let t = performance.now();
        const created = await request(`${server.url}/api/v1/plans`, 'POST', plan);
        latencies.push(performance.now() - t);
        if (created.status !== 201) {
          errors++;
          continue;
        }
        const { plan_id, approval_request_id } = JSON.parse(created.body) as { plan_id: string; approval_request_id: string };
        t = performance.now();
        const decided = await request(`${server.url}/api/v1/plans/${plan_id}/decision`, 'POST', { approval_request_id, decision: 'approve' });
        latencies.push(performance.now() - t);
        if (decided.status !== 200) errors++;
      }
    };
    // Warm up (JIT, connections), then measure.
    await Promise.all(Array.from({ length: clients }, () => client(performance.now() + 1_000)));
    latencies.length = 0;
    errors = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: clients }, () => client(started + seconds * 1000)));
    const elapsed = (performance.now() - started) / 1000;
    await server.stop();
    const { p50, p99 } = summarize(latencies);
    return { commandsPerSecond: latencies.length / elapsed, p50Ms: p50, p99Ms: p99, errors, rawAppendsPerSecond };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printHttpCommands(r: HttpCommandsResult): void {
  console.log('HTTP commands (CreatePlan + DecidePlan, 64 clients, embedded SQLite, durable)');
  console.log(`  ${fmt(r.commandsPerSecond)} commands/s   p50 ${fmt(r.p50Ms, 2)} ms   p99 ${fmt(r.p99Ms, 2)} ms   errors ${r.errors}`);
  console.log(`  target ≥ 5,000 commands/s with p99 < 25 ms: ${r.commandsPerSecond >= 5000 && r.p99Ms < 25 ? 'met' : 'MISSED'}`);
  console.log(`  baseline: raw durable appends (64 concurrent, group commit) ${fmt(r.rawAppendsPerSecond)} appends/s`);
  console.log(`  ratio commands/s ÷ raw appends/s = ${fmt(r.commandsPerSecond / r.rawAppendsPerSecond, 3)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printHttpCommands(await benchHttpCommands());
}
