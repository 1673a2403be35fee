// HTTP commands end to end: 64 concurrent clients alternating CreatePlan and DecidePlan (approve)
// against a server in a child process, every command durable before its response: embedded (SQLite
// log, read models beside it) and on PostgreSQL + Redis. Baselines, same run: raw durable single-event
// appends from 64 concurrent appenders on the same store (the least a command could make it do), and
// the same server answering GET /health (the least a request could make it do).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { openSqliteEventStore } from '../src/events/sqlite-store.js';
import { openPostgresEventStore } from '../src/events/postgres-store.js';
import type { EventStore } from '../src/events/store.js';
import { measureConcurrentAppends } from './store-append.js';
import { envNumber, fmt, request, startServer, summarize } from './support.js';

export type CommandsTarget = 'embedded' | 'postgres';

export interface HttpCommandsResult {
  target: CommandsTarget;
  commandsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  rawAppendsPerSecond: number;
  healthPerSecond: number;
}

const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** 64 clients asking GET /health for a second: what the server's HTTP path alone can do. */
async function healthRate(url: string, clients: number): Promise<number> {
  let done = 0;
  const deadline = performance.now() + 2_000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) {
        await request(`${url}/api/v1/health`, 'GET');
        done++;
      }
    }),
  );
  return done / 2;
}

export async function benchHttpCommands(options: { clients?: number; seconds?: number; target?: CommandsTarget } = {}): Promise<HttpCommandsResult> {
  const clients = options.clients ?? 64;
  const seconds = options.seconds ?? envNumber('BENCH_SECONDS', 10);
  const target = options.target ?? 'embedded';
  const dir = mkdtempSync(join(tmpdir(), 'planline-bench-'));
  const schema = `bench_${randomUUID().slice(0, 8)}`;
  try {
    const raw: EventStore =
      target === 'embedded' ? openSqliteEventStore(join(dir, 'raw.db')) : await openPostgresEventStore(POSTGRES_URL, { schema: `${schema}_raw` });
    const rawAppendsPerSecond = await measureConcurrentAppends(raw, { appenders: clients, appendsEach: 300 });
    await raw.close();

    // BENCH_URL: measure a server started by hand (e.g. under --cpu-prof) instead of a child.
    const server = process.env.BENCH_URL
      ? { url: process.env.BENCH_URL, stop: async () => {} }
      : await startServer(
          // The command path only: approved plans are not executed here (bench/execution.ts measures that).
          target === 'embedded'
            ? { EVENTSTORE_URL: `sqlite:${join(dir, 'planline.db')}`, ROLES: 'edge,projector' }
            : { EVENTSTORE_URL: `${POSTGRES_URL}?schema=${schema}`, REDIS_URL, REDIS_KEY_PREFIX: `planline-bench:${schema}:`, ROLES: 'edge,projector' },
        );
    const healthPerSecond = await healthRate(server.url, clients);
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
    return { target, commandsPerSecond: latencies.length / elapsed, p50Ms: p50, p99Ms: p99, errors, rawAppendsPerSecond, healthPerSecond };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (target === 'postgres') await dropSchemas([schema, `${schema}_raw`]);
  }
}

async function dropSchemas(schemas: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    for (const name of schemas) await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
  } finally {
    await client.end();
  }
}

const TARGETS = {
  embedded: { label: 'embedded SQLite', commands: 5_000, p99: 25 },
  postgres: { label: 'PostgreSQL + Redis', commands: 2_000, p99: 50 },
} as const;

export function printHttpCommands(r: HttpCommandsResult): void {
  const goal = TARGETS[r.target];
  console.log(`HTTP commands (CreatePlan + DecidePlan, 64 clients, ${goal.label}, durable)`);
  console.log(`  ${fmt(r.commandsPerSecond)} commands/s   p50 ${fmt(r.p50Ms, 2)} ms   p99 ${fmt(r.p99Ms, 2)} ms   errors ${r.errors}`);
  console.log(
    `  target ≥ ${fmt(goal.commands)} commands/s with p99 < ${goal.p99} ms: ${r.commandsPerSecond >= goal.commands && r.p99Ms < goal.p99 ? 'met' : 'MISSED'}`,
  );
  console.log(`  baseline: raw durable appends (64 concurrent, group commit) ${fmt(r.rawAppendsPerSecond)} appends/s; ratio ${fmt(r.commandsPerSecond / r.rawAppendsPerSecond, 3)}`);
  console.log(`  baseline: the same server's GET /health ${fmt(r.healthPerSecond)} requests/s; ratio ${fmt(r.commandsPerSecond / r.healthPerSecond, 3)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const only = process.env.BENCH_TARGET as CommandsTarget | undefined;
  for (const target of only ? [only] : (['embedded', 'postgres'] as const)) printHttpCommands(await benchHttpCommands({ target }));
}
