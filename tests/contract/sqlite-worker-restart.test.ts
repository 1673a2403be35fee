// The SQLite store's worker thread dies (crash, terminate): the appends in flight fail as unavailable,
// everything acknowledged is in the log once, later appends and reads work on a new worker, and
// subscriptions carry on without gap or repeat. A worker that cannot start fails clearly and is retried
// with backoff, not in a loop.
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openSqliteEventStore, workerThreadOf, type SqliteEventStore, type SqliteEventStoreOptions } from '../../src/events/sqlite-store.js';
import { EventStoreUnavailableError, type AppendResult, type ExpectedRevision, type NewEvent, type StoredEvent, type Subscription } from '../../src/events/store.js';
import { newEvents } from './event-store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'planline-worker-restart-'));
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

function record(store: SqliteEventStore) {
  const delivered: StoredEvent[] = [];
  const subscription = store.subscribeToAll({ maxBatch: 100 }, (batch) => {
    delivered.push(...batch);
  });
  subscriptions.push(subscription);
  return { delivered, subscription };
}

async function wholeLog(store: SqliteEventStore): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for (let after = 0; ; ) {
    const page = await store.readAll({ after, maxCount: 500 });
    if (page.length === 0) return all;
    all.push(...page);
    after = page.at(-1)!.position;
  }
}

/** Resolves when the store's current worker thread has exited. */
function exitOf(store: SqliteEventStore): Promise<void> {
  return new Promise((resolve) => workerThreadOf(store)!.once('exit', () => resolve()));
}

describe('sqlite worker restart', () => {
  it('fails exactly the appends in flight when the worker dies mid-burst; retried, everything is in the log once', async () => {
    const store = open(freshPath(), { pollIntervalMs: 50 });
    const { delivered } = record(store);
    interface Attempt {
      stream: string;
      events: NewEvent[];
      startedAfterExit: boolean;
      result?: AppendResult;
      error?: unknown;
    }
    const attempts: Attempt[] = [];
    let acknowledged = 0;
    let exited = false;
    let killed: Promise<void> | null = null;

    const appender = async (writer: number) => {
      const stream = `writer-${writer}`;
      let expected: ExpectedRevision = 'no_stream';
      for (let i = 0; i < 30; i++) {
        const events = newEvents(1 + (i % 2));
        // An unavailable append may or may not have been written: retry it as it was (same ids, same
        // expected revision) until the store answers; a write that did happen is answered, not repeated.
        for (;;) {
          const attempt: Attempt = { stream, events, startedAfterExit: exited };
          attempts.push(attempt);
          try {
            attempt.result = await store.append(stream, events, expected);
            expected = attempt.result.nextRevision;
            acknowledged += 1;
            break;
          } catch (error) {
            attempt.error = error;
            if (!(error instanceof EventStoreUnavailableError)) throw error;
          }
        }
        if (killed === null && acknowledged >= 60) {
          killed = exitOf(store).then(() => {
            exited = true;
          });
          void workerThreadOf(store)!.terminate();
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, writer) => appender(writer)));
    await killed;

    const failed = attempts.filter((a) => a.error !== undefined);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeLessThanOrEqual(8); // one in flight per writer at most
    for (const attempt of failed) {
      expect(attempt.error).toBeInstanceOf(EventStoreUnavailableError);
      expect((attempt.error as Error).message).toMatch(/worker exited/);
      expect(attempt.startedAfterExit).toBe(false); // only what was in flight when it died
    }
    expect(attempts.filter((a) => a.startedAfterExit && a.error !== undefined)).toEqual([]);
    expect(store.workerStats()).toMatchObject({ workerStarts: 2, workerDeaths: 1 });

    // Everything is in the log exactly once, where its acknowledgement said.
    const log = await wholeLog(store);
    const written = attempts.filter((a) => a.result !== undefined);
    expect(written).toHaveLength(8 * 30);
    expect(log.map((e) => e.id).sort()).toEqual(written.flatMap((a) => a.events.map((e) => e.id)).sort());
    expect(log.map((e) => e.position)).toEqual(log.map((_, i) => i + 1));
    const byId = new Map(log.map((e) => [e.id, e]));
    for (const { stream, events, result } of written) {
      const last = byId.get(events.at(-1)!.id)!;
      expect({ stream: last.stream, revision: last.revision, position: last.position }).toEqual({ stream, revision: result!.nextRevision, position: result!.position });
    }
    // The subscription lived through it: every event once, in order.
    await waitFor(() => delivered.length >= log.length);
    await sleep(100);
    expect(delivered).toEqual(log);
  });

  it('fails the appends made as it is terminated, and takes the next ones on a new worker', async () => {
    const store = open(freshPath(), { pollIntervalMs: 50 });
    const { delivered } = record(store);
    const before = await store.append('before', newEvents(2), 'no_stream');
    const lost = Array.from({ length: 5 }, (_, i) => ({ stream: `lost-${i}`, events: newEvents(1) }));
    const inFlight = lost.map(({ stream, events }) => store.append(stream, events, 'no_stream'));
    void workerThreadOf(store)!.terminate();
    for (const outcome of await Promise.allSettled(inFlight)) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(EventStoreUnavailableError);
    }

    expect((await store.append('after', newEvents(1), 'no_stream')).nextRevision).toBe(0);
    expect(await store.readStream('before')).toHaveLength(2);
    // Retried, the lost appends land once each.
    for (const { stream, events } of lost) expect((await store.append(stream, events, 'no_stream')).nextRevision).toBe(0);
    const log = await wholeLog(store);
    expect(log.map((e) => e.stream).sort()).toEqual(['after', 'before', 'before', ...lost.map((l) => l.stream)].sort());
    expect(log[1]!.position).toBe(before.position);
    await waitFor(() => delivered.length >= log.length);
    expect(delivered).toEqual(log);
    expect(store.commitStats().events).toBe(log.length); // counted across both workers
  });

  it('replaces a worker that crashes on a message it cannot handle', async () => {
    const store = open();
    await store.append('before', newEvents(1), 'no_stream');
    const inFlight = store.append('in-flight', newEvents(1), 'no_stream');
    const exited = exitOf(store);
    workerThreadOf(store)!.postMessage({ type: 'requests', requests: null }); // throws inside the worker
    await expect(inFlight).rejects.toBeInstanceOf(EventStoreUnavailableError);
    await exited;
    expect((await store.append('after', newEvents(1), 'no_stream')).position).toBeGreaterThan(1);
    expect(store.workerStats()).toMatchObject({ workerStarts: 2, workerDeaths: 1 });
  });

  it('keeps failing clearly, with backoff, while its file is gone, and works again once it is back', async () => {
    const path = freshPath();
    const store = open(path, { pollIntervalMs: 50, restartBackoff: { initialMs: 40, maxMs: 160 } });
    const { delivered } = record(store);
    await store.append('before', newEvents(2), 'no_stream');
    renameSync(path, `${path}.away`);
    const exited = exitOf(store);
    void workerThreadOf(store)!.terminate();
    await exited;

    // The next append starts a worker, which cannot open the file: never a new empty log in its place.
    const refused = await store.append('during', newEvents(1), 'no_stream').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(EventStoreUnavailableError);
    expect((refused as Error).message).toContain(path);
    expect((refused as Error).message).toMatch(/unable to open database file/);

    const startsBefore = store.workerStats().workerStarts;
    const startedAt = Date.now();
    const messages: string[] = [];
    for (let attempt = 0; attempt < 40; attempt++) {
      const error = await store.append('during', newEvents(1), 'no_stream').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EventStoreUnavailableError);
      messages.push((error as Error).message);
      await sleep(5);
    }
    const elapsed = Date.now() - startedAt;
    const starts = store.workerStats().workerStarts - startsBefore;
    expect(messages.every((m) => /unable to open database file/.test(m))).toBe(true);
    expect(messages.some((m) => /next start attempt in \d+ ms/.test(m))).toBe(true);
    // Starts 40, 80, 160, 160 … ms apart, however many appends ask: not one per append.
    expect(starts).toBeGreaterThan(0);
    expect(starts).toBeLessThanOrEqual(3 + elapsed / 160);
    expect(starts).toBeLessThan(20);
    expect(await store.readStream('before')).toHaveLength(2); // reads use the connection already open

    renameSync(`${path}.away`, path);
    let after: AppendResult | undefined;
    for (const deadline = Date.now() + 2_000; after === undefined && Date.now() < deadline; await sleep(20)) {
      after = await store.append('after', newEvents(1), 'no_stream').catch(() => undefined);
    }
    expect(after).toEqual({ nextRevision: 0, position: 3 });
    const log = await wholeLog(store);
    expect(log.map((e) => e.stream)).toEqual(['before', 'before', 'after']);
    await waitFor(() => delivered.length === 3);
    expect(delivered).toEqual(log);
  });

  it('refuses to write a file that holds another log in its place', async () => {
    const home = join(dir, randomUUID());
    mkdirSync(home);
    const path = join(home, 'log.db');
    const store = open(path, { restartBackoff: { initialMs: 20, maxMs: 20 } });
    await store.append('mine', newEvents(1), 'no_stream');
    // Behind the store's back, its directory moves away and another log takes its place.
    renameSync(home, `${home}.away`);
    mkdirSync(home);
    const other = openSqliteEventStore(path);
    await other.append('theirs', newEvents(1), 'no_stream');
    await other.close();
    const exited = exitOf(store);
    void workerThreadOf(store)!.terminate();
    await exited;

    const refused = await store.append('mine', newEvents(1), 0).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(EventStoreUnavailableError);
    expect((refused as Error).message).toMatch(/the file was replaced/);
    const theirs = openSqliteEventStore(path);
    expect((await theirs.readAll()).map((e) => e.stream)).toEqual(['theirs']);
    await theirs.close();

    // Once its own file is back, the store carries on where it was.
    rmSync(home, { recursive: true });
    renameSync(`${home}.away`, home);
    let next: AppendResult | undefined;
    for (const deadline = Date.now() + 2_000; next === undefined && Date.now() < deadline; await sleep(20)) {
      next = await store.append('mine', newEvents(1), 0).catch(() => undefined);
    }
    expect(next).toEqual({ nextRevision: 1, position: 2 });
  });

  it('in memory, the log dies with its worker: the store says so and stays unavailable', async () => {
    const store = open(':memory:');
    await store.append('before', newEvents(1), 'no_stream');
    const pending = store.append('lost', newEvents(1), 'no_stream');
    void workerThreadOf(store)!.terminate();
    await expect(pending).rejects.toBeInstanceOf(EventStoreUnavailableError);
    await expect(store.append('after', newEvents(1), 'no_stream')).rejects.toThrow(/worker exited/);
    await expect(store.readAll()).rejects.toBeInstanceOf(EventStoreUnavailableError);
    await expect(store.headPosition()).rejects.toBeInstanceOf(EventStoreUnavailableError);
    expect(store.workerStats().workerStarts).toBe(1);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await sleep(5);
  }
}
