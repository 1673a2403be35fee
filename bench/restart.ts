// Restart to ready with a big log: the embedded read models persist beside the log, so a restart
// projects only what is new. Generates a log of N events (default 1,000,000; RESTART_EVENTS to change),
// builds its read models once, then times `node dist/src/main.js` from spawn until /ready answers 200,
// next to the same start on an empty log measured in the same run (the floor: process start-up).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { viewsFileBeside } from '../src/adapters.js';
import { openSqliteEventStore } from '../src/events/sqlite-store.js';
import { rebuild } from '../src/projections/projector.js';
import { openSqliteViewStore } from '../src/projections/sqlite-views.js';
import { viewsProjection } from '../src/projections/views-projection.js';
import { feedProjection } from '../src/projections/feed-projection.js';
import { feedEpoch } from '../src/projections/feed.js';
import { EXECUTOR_NAME } from '../src/handlers/executor.js';
import { envNumber, fmt, startServer } from './support.js';
import { generate } from './views-rebuild.js';

export interface RestartResult {
  events: number;
  /** Spawn → ready on the big log whose read models are up to date. */
  restartMs: number;
  /** Spawn → ready on an empty log. */
  emptyMs: number;
  /** Building the read models once (what every start cost when they lived only in memory). */
  fullBuildMs: number;
}

async function timeToReady(path: string): Promise<number> {
  const started = performance.now();
  const server = await startServer({ EVENTSTORE_URL: `sqlite:${path}` });
  const ms = performance.now() - started;
  await server.stop();
  return ms;
}

export async function benchRestart(options: { events?: number } = {}): Promise<RestartResult> {
  const target = options.events ?? envNumber('RESTART_EVENTS', 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'planline-restart-'));
  try {
    const emptyMs = await timeToReady(join(dir, 'empty.db'));
    const path = join(dir, 'log.db');
    const writer = openSqliteEventStore(path, { synchronous: 'off' });
    const events = await generate(writer, target);
    await writer.close();

    // What a server that ran through all of this would have left beside the log: the read models, the
    // client feed, and the executor's checkpoint at the head (it reacted to every event already).
    const store = openSqliteEventStore(path);
    const views = openSqliteViewStore(viewsFileBeside(path), { logId: await store.logId() });
    const built = await rebuild({ store, views, projection: viewsProjection });
    await rebuild({ store, views, projection: feedProjection({ epoch: feedEpoch(await store.logId()), history: 1_000, publish: () => {} }) });
    const lease = { name: `processor:${EXECUTOR_NAME}`, owner: 'bench' };
    await views.acquireLease(lease, 10_000);
    await views.commit(EXECUTOR_NAME, [], await store.headPosition(), lease);
    await views.releaseLease(lease);
    await views.close();
    await store.close();

    const restartMs = await timeToReady(path);
    // The empty start again, now that module files are as warm as they were for the restart.
    const warmEmptyMs = await timeToReady(join(dir, 'empty-again.db'));
    return { events, restartMs, emptyMs: Math.min(emptyMs, warmEmptyMs), fullBuildMs: built.seconds * 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printRestart(r: RestartResult): void {
  console.log(`Restart to ready with ${fmt(r.events)} events in the log (embedded: SQLite log, read models beside it)`);
  console.log(`  baseline: start to ready on an empty log ${fmt(r.emptyMs)} ms`);
  console.log(`  restart to ready: ${fmt(r.restartMs)} ms (target < 1,000 ms: ${r.restartMs < 1_000 ? 'met' : 'MISSED'}), ratio to the empty start ${fmt(r.restartMs / r.emptyMs, 2)}`);
  console.log(`  (building the read models from scratch, what every start cost before: ${fmt(r.fullBuildMs / 1000, 1)} s)`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printRestart(await benchRestart());
}
