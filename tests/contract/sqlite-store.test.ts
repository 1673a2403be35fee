// The SQLite adapter: the shared contract, then what only the embedded store promises (durability
// settings, group commit, gap-free positions, reopening, a second process on the same file). The direct
// path to subscribers, worker restarts and ordered import have files of their own.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openSqliteEventStore, workerThreadOf, type SqliteEventStore, type SqliteEventStoreOptions } from '../../src/events/sqlite-store.js';
import { EventStoreUnavailableError, WrongExpectedRevisionError, type StoredEvent } from '../../src/events/store.js';
import { eventStoreContract, newEvents } from './event-store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'planline-sqlite-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const freshPath = () => join(dir, `${randomUUID()}.db`);

eventStoreContract('sqlite (file)', async () => openSqliteEventStore(freshPath()));
// A ':memory:' database lives only in the worker thread, which then serves reads too.
eventStoreContract('sqlite (memory)', async () => openSqliteEventStore(':memory:'));

describe('sqlite event store', () => {
  const opened: SqliteEventStore[] = [];
  const open = (path = freshPath(), options?: SqliteEventStoreOptions) => {
    const store = openSqliteEventStore(path, options);
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });

  describe('durability', () => {
    it('uses WAL with synchronous=FULL unless told otherwise', () => {
      expect(open().durability).toEqual({ journalMode: 'wal', synchronous: 'full' });
      expect(open(freshPath(), { synchronous: 'normal' }).durability).toEqual({ journalMode: 'wal', synchronous: 'normal' });
    });

    it('works in memory for tests that do not care about durability', async () => {
      const store = open(':memory:');
      expect(store.durability.journalMode).toBe('memory');
      const result = await store.append('s', newEvents(2), 'no_stream');
      expect(result).toEqual({ nextRevision: 1, position: 2 });
      expect(await store.readStream('s')).toHaveLength(2);
    });

    it('keeps its events and its log id when reopened', async () => {
      const path = freshPath();
      const first = openSqliteEventStore(path);
      const logId = await first.logId();
      const events = newEvents(3);
      await first.append('kept', events, 'no_stream');
      await first.close();

      const reopened = open(path);
      expect(await reopened.logId()).toBe(logId);
      expect((await reopened.readStream('kept')).map((e) => e.id)).toEqual(events.map((e) => e.id));
      expect(await reopened.headPosition()).toBe(3);
      // The reopened store knows the stream's head without being told.
      await expect(reopened.append('kept', newEvents(1), 'no_stream')).rejects.toBeInstanceOf(WrongExpectedRevisionError);
      expect((await reopened.append('kept', newEvents(1), 2)).nextRevision).toBe(3);
    });

    it('gives different files different log ids', async () => {
      expect(await open().logId()).not.toBe(await open().logId());
    });

    it('flushes a pending group commit before close() resolves', async () => {
      const path = freshPath();
      const store = openSqliteEventStore(path);
      const pending = store.append('late', newEvents(1), 'no_stream');
      await store.close();
      await expect(pending).resolves.toEqual({ nextRevision: 0, position: 1 });
      expect(await open(path).readStream('late')).toHaveLength(1);
    });

    it('refuses appends and reads once closed', async () => {
      const store = openSqliteEventStore(freshPath());
      await store.close();
      await expect(store.append('s', newEvents(1), 'any')).rejects.toBeInstanceOf(EventStoreUnavailableError);
      await expect(store.readAll()).rejects.toBeInstanceOf(EventStoreUnavailableError);
      await store.close(); // twice is fine
    });
  });

  describe('group commit', () => {
    it('writes appends that arrive together in one transaction', async () => {
      const store = open();
      const results = await Promise.all(
        Array.from({ length: 64 }, (_, i) => store.append(`writer-${i}`, newEvents(1), 'no_stream')),
      );
      expect(store.commitStats()).toEqual({ transactions: 1, appends: 64, events: 64, largestGroup: 64 });
      expect(results.map((r) => r.position).sort((a, b) => a - b)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
    });

    it('keeps batching under sustained concurrent load', async () => {
      const store = open();
      await Promise.all(
        Array.from({ length: 64 }, async (_, writer) => {
          let expected: number | 'no_stream' = 'no_stream';
          for (let i = 0; i < 20; i++) expected = (await store.append(`w-${writer}`, newEvents(1), expected)).nextRevision;
        }),
      );
      const stats = store.commitStats();
      expect(stats.events).toBe(64 * 20);
      // Each round of 64 appends shares a transaction; allow some slack for the first and last rounds.
      expect(stats.appends / stats.transactions).toBeGreaterThan(32);
    });

    it('checks each append against earlier appends of the same group, and a conflict costs the others nothing', async () => {
      const store = open();
      await store.append('before', newEvents(1), 'no_stream');
      const before = store.commitStats().transactions;
      const outcomes = await Promise.allSettled([
        store.append('shared', newEvents(1), 'no_stream'), // creates the stream: revision 0
        store.append('shared', newEvents(1), 'no_stream'), // sees the first one: conflict
        store.append('shared', newEvents(2), 0), // after the first one: revisions 1, 2
        store.append('other', newEvents(1), 'stream_exists'), // conflict
        store.append('other', newEvents(3), 'any'),
        store.append('shared', newEvents(1), 0), // stale: conflict, actual 2
      ]);
      expect(store.commitStats().transactions).toBe(before + 1);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled', 'rejected']);
      const actuals = outcomes.map((o) => (o.status === 'rejected' ? (o.reason as WrongExpectedRevisionError).actual : null));
      expect(actuals).toEqual([null, 0, null, 'no_stream', null, 2]);

      // Rejected appends took no positions: the log is 1..n without gaps.
      const all = await store.readAll();
      expect(all.map((e) => e.position)).toEqual(Array.from({ length: 7 }, (_, i) => i + 1));
      expect((await store.readStream('shared')).map((e) => e.revision)).toEqual([0, 1, 2]);
    });

    it('rejects an append whose later events reuse ids of the stream, without consuming positions', async () => {
      const store = open();
      const first = newEvents(2);
      await store.append('s', first, 'no_stream');
      const [fresh] = newEvents(1);
      const reused = [fresh!, first[0]!];
      const [conflict, next] = await Promise.allSettled([store.append('s', reused, 1), store.append('t', newEvents(1), 'no_stream')]);
      expect(conflict.status).toBe('rejected');
      expect((conflict as PromiseRejectedResult).reason).toBeInstanceOf(WrongExpectedRevisionError);
      expect(next).toEqual({ status: 'fulfilled', value: { nextRevision: 0, position: 3 } });
      expect(await store.readStream('s')).toHaveLength(2);
    });

    it('rejects malformed appends alone', async () => {
      const store = open();
      const [event] = newEvents(1);
      const outcomes = await Promise.allSettled([
        store.append('s', [{ ...event!, id: 'not-a-uuid' }], 'any'),
        store.append('s', [event!, event!], 'any'),
        store.append('s', newEvents(1), -1),
        store.append('', newEvents(1), 'any'),
        store.append('s', newEvents(1), 'any'),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected', 'fulfilled']);
      expect(await store.headPosition()).toBe(1);
    });
  });

  describe('the worker thread', () => {
    it('lands every append made before close(), in one group, and then ends', async () => {
      const path = freshPath();
      const store = openSqliteEventStore(path);
      await store.headPosition();
      const pending = Array.from({ length: 100 }, (_, i) => store.append(`closing-${i}`, newEvents(2), 'no_stream'));
      const worker = workerThreadOf(store)!;
      const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
      await store.close();
      const results = await Promise.all(pending);
      expect(results.map((r) => r.position).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => 2 * i + 2));
      expect(store.commitStats()).toMatchObject({ transactions: 1, appends: 100, events: 200 });
      expect(await exited).toBe(0);
      expect(await open(path).headPosition()).toBe(200);
    });

    it('waits for an append a subscription handler is still making while it closes', async () => {
      const path = freshPath();
      const store = openSqliteEventStore(path);
      let started = false;
      store.subscribeToAll({}, async (batch) => {
        if (!batch.some((e) => e.stream === 'cause')) return;
        started = true;
        await sleep(50); // close() is called meanwhile
        await store.append('effect', newEvents(1), 'no_stream');
      });
      await store.append('cause', newEvents(1), 'no_stream');
      await waitFor(() => started);
      await store.close();
      expect(await open(path).readStream('effect')).toHaveLength(1);
    });

    it('reconstructs conflicts with their stream, expected and actual revision', async () => {
      const store = open(':memory:');
      await store.append('s', newEvents(2), 'no_stream');
      const conflict = await store.append('s', newEvents(1), 0).catch((e: unknown) => e);
      expect(conflict).toBeInstanceOf(WrongExpectedRevisionError);
      expect(conflict).toMatchObject({ stream: 's', expected: 0, actual: 1 });
      expect((conflict as Error).message).toBe('stream s: expected revision 0, actual 1');
    });

    it('reads its own commits right away from the main thread connection', async () => {
      const store = open();
      for (let i = 0; i < 20; i++) {
        const result = await store.append('mine', newEvents(1), i === 0 ? 'no_stream' : i - 1);
        const [last] = await store.readStream('mine', { direction: 'backwards', maxCount: 1 });
        expect(last?.position).toBe(result.position);
        expect(await store.headPosition()).toBe(result.position);
      }
    });
  });

  describe('a second process on the same file', () => {
    it('sees its appends in subscriptions and its revisions in concurrency checks', async () => {
      const path = freshPath();
      const mine = open(path, { pollIntervalMs: 50 });
      const theirs = open(path);
      expect(await theirs.logId()).toBe(await mine.logId());

      const delivered: StoredEvent[] = [];
      const subscription = mine.subscribeToAll({}, (batch) => {
        delivered.push(...batch);
      });
      const created = await mine.append('shared', newEvents(1), 'no_stream'); // caches head 0
      await theirs.append('shared', newEvents(2), created.nextRevision); // head is now 2, behind our back
      await theirs.append('elsewhere', newEvents(1), 'no_stream');

      // Our cached head must not be trusted: this is a conflict (not a crash on the unique index).
      const stale = mine.append('shared', newEvents(1), created.nextRevision);
      await expect(stale).rejects.toBeInstanceOf(WrongExpectedRevisionError);
      await expect(stale).rejects.toMatchObject({ actual: 2 });
      expect((await mine.append('shared', newEvents(1), 2)).nextRevision).toBe(3);

      // Their appends produce no in-process notification; the slow poll finds them.
      await waitFor(() => delivered.length === 5);
      expect(delivered.map((e) => e.position)).toEqual([1, 2, 3, 4, 5]);
      await subscription.close();
    });
  });

  describe('subscriptions', () => {
    it('delivers appends promptly without waiting for the poll', async () => {
      const store = open(freshPath(), { pollIntervalMs: 10_000 });
      const delivered: StoredEvent[] = [];
      const subscription = store.subscribeToAll({}, (batch) => {
        delivered.push(...batch);
      });
      await sleep(20);
      const started = Date.now();
      await store.append('prompt', newEvents(1), 'no_stream');
      await waitFor(() => delivered.length === 1);
      expect(Date.now() - started).toBeLessThan(1_000);
      await subscription.close();
    });

    it('lets a handler append, and lands those appends when the store closes', async () => {
      const path = freshPath();
      const store = openSqliteEventStore(path);
      let reactions = 0;
      store.subscribeToAll({}, async (batch) => {
        for (const event of batch) {
          if (event.stream !== 'cause') continue;
          reactions += 1;
          await store.append('effect', newEvents(1), 'any');
        }
      });
      await store.append('cause', newEvents(3), 'no_stream');
      await waitFor(() => reactions === 3);
      await store.close();
      expect(await open(path).readStream('effect')).toHaveLength(3);
    });
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await sleep(5);
  }
}
