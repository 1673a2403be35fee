// Raw throughput of the event store with nothing on top: the baseline other benchmarks compare to.
// Run: npm run build && node dist/bench/store-append.js [--synchronous=full|normal]
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openSqliteEventStore, type SqliteEventStoreOptions } from '../src/events/sqlite-store.js';
import type { EventStore, NewEvent } from '../src/events/store.js';

export interface RawAppendOptions {
  /** Events to append in total. */
  events: number;
  /** Events per append call (one stream per call, sequential calls). */
  batch: number;
}

/** Appends `events` events in sequential appends of `batch` events each; returns events per second. */
export async function measureRawAppends(store: EventStore, { events, batch }: RawAppendOptions): Promise<number> {
  const streams = Math.max(1, Math.ceil(events / batch));
  const prefix = `bench-${randomUUID().slice(0, 8)}`;
  const started = performance.now();
  let appended = 0;
  for (let s = 0; s < streams && appended < events; s++) {
    const size = Math.min(batch, events - appended);
    await store.append(`${prefix}-${s}`, benchEvents(size), 'no_stream');
    appended += size;
  }
  return appended / ((performance.now() - started) / 1000);
}

/** `appenders` concurrent loops each appending single events to its own stream; appends per second. */
export async function measureConcurrentAppends(
  store: EventStore,
  { appenders, appendsEach }: { appenders: number; appendsEach: number },
): Promise<number> {
  const prefix = `bench-${randomUUID().slice(0, 8)}`;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: appenders }, async (_, a) => {
      let expected: number | 'no_stream' = 'no_stream';
      for (let i = 0; i < appendsEach; i++) {
        expected = (await store.append(`${prefix}-${a}`, benchEvents(1), expected)).nextRevision;
      }
    }),
  );
  return (appenders * appendsEach) / ((performance.now() - started) / 1000);
}

/** Reads the whole log in pages of `page`; returns events per second. */
export async function measureReadAll(store: EventStore, page = 1000): Promise<number> {
  const started = performance.now();
  let after = 0;
  let read = 0;
  for (;;) {
    const events = await store.readAll({ after, maxCount: page });
    const last = events[events.length - 1];
    if (last === undefined) break;
    read += events.length;
    after = last.position;
  }
  return read / ((performance.now() - started) / 1000);
}

function benchEvents(count: number): NewEvent[] {
  const at = new Date().toISOString();
  return Array.from({ length: count }, (_, i) => {
    const id = randomUUID();
    return {
      id,
      type: 'SubtaskSucceeded',
      data: { plan_id: 'plan-bench', subtask_id: `subtask-${i}`, output: 'done', duration_ms: 1234 },
      metadata: { command_id: id, correlation_id: id, causation_id: id, at, schema_version: 1 },
    };
  });
}

async function main(): Promise<void> {
  const synchronous = (process.argv.find((a) => a.startsWith('--synchronous='))?.split('=')[1] ?? 'full') as SqliteEventStoreOptions['synchronous'];
  const dir = mkdtempSync(join(tmpdir(), 'planline-bench-'));
  const open = (name: string) => openSqliteEventStore(join(dir, `${name}.db`), { synchronous });
  const rate = (n: number) => `${Math.round(n).toLocaleString('en-US')}`;
  try {
    console.log(`sqlite event store, synchronous=${synchronous}, ${dir}`);
    {
      const store = open('single');
      const perSecond = await measureRawAppends(store, { events: 2_000, batch: 1 });
      console.log(`raw append, 1 event per append (sequential):   ${rate(perSecond)} events/s`);
      await store.close();
    }
    for (const batch of [10, 100, 1000]) {
      const store = open(`batch-${batch}`);
      const perSecond = await measureRawAppends(store, { events: 200_000, batch });
      console.log(`raw append, ${batch} events per append:`.padEnd(48) + `${rate(perSecond)} events/s`);
      await store.close();
    }
    {
      const store = open('group');
      const perSecond = await measureConcurrentAppends(store, { appenders: 64, appendsEach: 300 });
      const stats = store.commitStats();
      console.log(
        `group commit, 64 concurrent single-event appenders: ${rate(perSecond)} appends/s, ` +
          `${stats.transactions} transactions, ${(stats.appends / stats.transactions).toFixed(1)} appends/transaction (largest ${stats.largestGroup})`,
      );
      await store.close();
    }
    {
      const store = open('batch-1000');
      const head = await store.headPosition();
      const perSecond = await measureReadAll(store, 1000);
      console.log(`readAll, pages of 1000 over ${rate(head)} events:`.padEnd(48) + `${rate(perSecond)} events/s`);
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
