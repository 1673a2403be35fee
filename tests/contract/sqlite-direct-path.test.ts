// The SQLite store's direct path: what this process commits reaches its subscribers without a read of
// the file, and stays exact (position order, no gap, nothing twice) when another process writes to the
// same file, when a subscriber is slow, and when the caller changes its objects after appending.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openSqliteEventStore, type SqliteEventStore, type SqliteEventStoreOptions } from '../../src/events/sqlite-store.js';
import type { NewEvent, StoredEvent, Subscription } from '../../src/events/store.js';
import { newEvents } from './event-store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'planline-direct-path-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const freshPath = () => join(dir, `${randomUUID()}.db`);

const opened: SqliteEventStore[] = [];
const subscriptions: Subscription[] = [];
const open = (path = freshPath(), options?: SqliteEventStoreOptions) => {
  const store = openSqliteEventStore(path, options);
  opened.push(store);
  return store;
};
afterEach(async () => {
  await Promise.all(subscriptions.splice(0).map((s) => s.close()));
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

/** A subscription from the start that records what it is handed; `ready` once its first read found the log's end. */
function record(store: SqliteEventStore, options: { maxBatch?: number; slowMs?: number } = {}) {
  const delivered: StoredEvent[] = [];
  const subscription = store.subscribeToAll({ maxBatch: options.maxBatch ?? 1000 }, async (batch) => {
    delivered.push(...batch);
    if (options.slowMs !== undefined) await sleep(options.slowMs);
  });
  subscriptions.push(subscription);
  return { delivered, subscription };
}

/** What a reader of the file gets, in log order. */
async function wholeLog(store: SqliteEventStore): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for (let after = 0; ; ) {
    const page = await store.readAll({ after, maxCount: 500 });
    if (page.length === 0) return all;
    all.push(...page);
    after = page.at(-1)!.position;
  }
}

const positions = (events: readonly StoredEvent[]) => events.map((e) => e.position);
const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('sqlite direct path', () => {
  it("hands this process's appends to a subscriber without reading the log, exactly as the log holds them", async () => {
    const store = open(freshPath(), { pollIntervalMs: 60_000 });
    await store.append('before', newEvents(3), 'no_stream');
    const { delivered } = record(store);
    await waitFor(() => delivered.length === 3); // caught up from the file
    const before = store.deliveryStats();

    let expected = 0;
    for (let i = 0; i < 10; i++) expected = (await store.append('one-by-one', newEvents(2), i === 0 ? 'no_stream' : expected)).nextRevision;
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.append(`burst-${i}`, newEvents(1), 'no_stream')));
    await store.appendMulti([
      { stream: 'multi-a', events: newEvents(2), expected: 'no_stream' },
      { stream: 'multi-b', events: newEvents(3), expected: 'no_stream' },
    ]);
    await waitFor(() => delivered.length === 3 + 20 + 20 + 5);

    const after = store.deliveryStats();
    expect(after.reads).toBe(before.reads); // not one read of the log
    expect(after.directEvents - before.directEvents).toBe(45);
    expect(delivered).toEqual(await wholeLog(store));
    expect(positions(delivered)).toEqual(oneTo(48));
  });

  it('hands every subscriber the same frozen events, untouched by what the caller does to its objects afterwards', async () => {
    const store = open(freshPath(), { pollIntervalMs: 60_000 });
    const first = record(store);
    const second = record(store);
    await sleep(20);
    const event: NewEvent = {
      id: randomUUID(),
      type: 'PlanDrafted',
      data: { goal: 'ship it', subtasks: [{ id: 'a', dependencies: [] }], estimate: 1.5 },
      metadata: { command_id: 'c', correlation_id: 'c', causation_id: 'c', at: '2025-01-01T00:00:00.000Z', schema_version: 1 },
    };
    const appended = store.append('plan-1', [event], 'no_stream');
    // The caller reuses its objects at once, and again once the append is acknowledged.
    (event.data.subtasks as { id: string }[])[0]!.id = 'changed before commit';
    event.metadata.command_id = 'changed';
    await appended;
    event.data.goal = 'changed after commit';
    await waitFor(() => first.delivered.length === 1 && second.delivered.length === 1);

    const [seen] = first.delivered;
    expect(second.delivered[0]).toBe(seen); // one copy, shared
    expect(seen!.data).toEqual({ goal: 'ship it', subtasks: [{ id: 'a', dependencies: [] }], estimate: 1.5 });
    expect(seen!.metadata.command_id).toBe('c');
    expect(await store.readStream('plan-1')).toEqual([seen]);
    expect(Object.isFrozen(seen) && Object.isFrozen(seen!.data) && Object.isFrozen(seen!.metadata)).toBe(true);
    expect(() => {
      ((seen!.data.subtasks as { id: string }[])[0] as { id: string }).id = 'by a subscriber';
    }).toThrow(TypeError);
    expect(() => (seen!.data.subtasks as unknown[]).push('more')).toThrow(TypeError);
    expect(store.deliveryStats().reads).toBe(2); // each subscriber's first look at the (empty) log
  });

  it('hands over data JSON would change (undefined, Date, -0) as the log holds it', async () => {
    const store = open(freshPath(), { pollIntervalMs: 60_000 });
    const { delivered } = record(store);
    await sleep(20);
    const when = new Date('2025-02-03T04:05:06.000Z');
    const data = { when, gone: undefined, zero: -0, list: [1, undefined], nested: { at: when } } as unknown as Record<string, unknown>;
    await store.append('odd', [{ ...newEvents(1)[0]!, data }], 'no_stream');
    await waitFor(() => delivered.length === 1);
    expect(delivered[0]!.data).toEqual({ when: '2025-02-03T04:05:06.000Z', zero: 0, list: [1, null], nested: { at: '2025-02-03T04:05:06.000Z' } });
    expect(Object.is(delivered[0]!.data.zero, 0)).toBe(true);
    expect(delivered).toEqual(await store.readStream('odd'));
    expect(store.deliveryStats().directEvents).toBe(1);
  });

  it('reads what another process wrote in between from the file before handing over its own next commit', async () => {
    const path = freshPath();
    const mine = open(path, { pollIntervalMs: 60_000 }); // no poll: only our own commit can reveal theirs
    const theirs = open(path, { pollIntervalMs: 60_000 });
    const { delivered } = record(mine);
    await mine.append('mine', newEvents(1), 'no_stream');
    await waitFor(() => delivered.length === 1);
    await theirs.append('theirs', newEvents(2), 'no_stream');
    await mine.append('mine', newEvents(1), 0);

    await waitFor(() => delivered.length === 4);
    expect(delivered.map((e) => e.stream)).toEqual(['mine', 'theirs', 'theirs', 'mine']);
    expect(delivered).toEqual(await wholeLog(mine));
    const stats = mine.deliveryStats();
    expect(stats.directEvents).toBe(2);
    expect(stats.readEvents).toBe(2);
  });

  it('keeps two processes on one file exact: subscribers on both see every event once, in order', async () => {
    const path = freshPath();
    const a = open(path, { pollIntervalMs: 20 });
    const b = open(path, { pollIntervalMs: 20 });
    const onA = record(a, { maxBatch: 50 });
    const onB = record(b, { maxBatch: 50 });
    const writer = async (store: SqliteEventStore, name: string) => {
      for (let round = 0; round < 40; round++) {
        await Promise.all(Array.from({ length: 4 }, (_, i) => store.append(`${name}-${round}-${i}`, newEvents(1 + (i % 3)), 'no_stream')));
        if (round % 5 === 0) {
          await store.appendMulti([
            { stream: `${name}-multi-${round}-x`, events: newEvents(2), expected: 'no_stream' },
            { stream: `${name}-multi-${round}-y`, events: newEvents(1), expected: 'no_stream' },
          ]);
        }
        if (round % 7 === 3) await sleep(5);
      }
    };
    await Promise.all([writer(a, 'a'), writer(b, 'b')]);
    const log = await wholeLog(a);
    expect(positions(log)).toEqual(oneTo(log.length));
    await waitFor(() => onA.delivered.length >= log.length && onB.delivered.length >= log.length);
    await sleep(100); // anything delivered twice would show up now

    for (const [store, seen] of [
      [a, onA.delivered],
      [b, onB.delivered],
    ] as const) {
      expect(seen.map((e) => e.id)).toEqual(log.map((e) => e.id));
      expect(positions(seen)).toEqual(oneTo(log.length));
      expect(seen).toEqual(log);
      // Both paths carried events: its own commits directly, the other's from the file.
      const stats = store.deliveryStats();
      expect(stats.directEvents).toBeGreaterThan(0);
      expect(stats.readEvents).toBeGreaterThan(0);
      expect(stats.directEvents + stats.readEvents).toBe(log.length);
    }
  });

  it('lets a slow subscriber fall behind what memory holds and catch up from the file, exact, while a fast one stays direct', async () => {
    const store = open(freshPath(), { pollIntervalMs: 60_000, tail: { maxEvents: 40 } });
    const slow = record(store, { maxBatch: 10, slowMs: 15 });
    const fast = record(store);
    await sleep(20);
    let mostHeld = 0;
    for (let round = 0; round < 30; round++) {
      await Promise.all(Array.from({ length: 5 }, (_, i) => store.append(`s-${round}-${i}`, newEvents(2), 'no_stream')));
      mostHeld = Math.max(mostHeld, store.deliveryStats().heldEvents);
    }
    await waitFor(() => slow.delivered.length === 300 && fast.delivered.length === 300, 20_000);
    const log = await wholeLog(store);
    expect(slow.delivered).toEqual(log);
    expect(fast.delivered).toEqual(log);
    expect(mostHeld).toBeLessThanOrEqual(40);
    const stats = store.deliveryStats();
    expect(stats.readEvents).toBeGreaterThan(0); // the slow one read what memory had dropped
    expect(stats.directEvents).toBeGreaterThanOrEqual(300); // the fast one never had to
    expect(stats.directEvents + stats.readEvents).toBe(600);
  });

  it('bounds what memory holds by bytes too, and holds nothing once nobody subscribes', async () => {
    const store = open(freshPath(), { pollIntervalMs: 60_000, tail: { maxBytes: 20_000 } });
    const { delivered, subscription } = record(store, { slowMs: 50 });
    await sleep(20);
    const big = (n: number) => newEvents(n).map((e) => ({ ...e, data: { text: 'x'.repeat(2_000) } }));
    let mostBytes = 0;
    for (let i = 0; i < 20; i++) {
      await store.append(`big-${i}`, big(2), 'no_stream');
      mostBytes = Math.max(mostBytes, store.deliveryStats().heldBytes);
    }
    expect(mostBytes).toBeLessThanOrEqual(20_000);
    await waitFor(() => delivered.length === 40, 10_000);
    expect(delivered).toEqual(await wholeLog(store));
    await subscription.close();
    await store.append('after', newEvents(3), 'no_stream');
    expect(store.deliveryStats()).toMatchObject({ heldEvents: 0, heldBytes: 0 });
  });

  it('delivers events an import wrote from the file, in order with direct ones', async () => {
    const store = open(freshPath(), { pollIntervalMs: 60_000 });
    const { delivered } = record(store);
    await store.append('direct', newEvents(1), 'no_stream');
    const imported = newEvents(3).map((e, i) => ({ ...e, stream: 'imported', revision: i }));
    await store.openImport().write(imported);
    await store.append('direct', newEvents(1), 0);
    await waitFor(() => delivered.length === 5);
    expect(delivered.map((e) => e.stream)).toEqual(['direct', 'imported', 'imported', 'imported', 'direct']);
    expect(delivered).toEqual(await wholeLog(store));
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await sleep(5);
  }
}
