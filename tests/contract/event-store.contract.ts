// The one contract every EventStore adapter must meet. Each adapter's test file calls
// eventStoreContract() with a way to open a store. Stores may be shared (a KurrentDB server holds other
// data), so every test writes to streams with a fresh random prefix and only looks at its own events.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  WrongExpectedRevisionError,
  type AppendResult,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type Position,
  type StoredEvent,
} from '../../src/events/store.js';

export function eventStoreContract(name: string, open: () => Promise<EventStore>): void {
  describe(`EventStore contract: ${name}`, () => {
    let store: EventStore;
    let prefix: string;

    beforeEach(async () => {
      store = await open();
      prefix = `contract-${randomUUID().slice(0, 8)}`;
    });
    afterEach(async () => {
      await store.close();
    });

    const streamName = (label: string) => `${prefix}-${label}`;
    const ours = (events: StoredEvent[]) => events.filter((e) => e.stream.startsWith(prefix));

    /** All of this test's events after `after`, paging through whatever else the log holds. */
    async function readOurs(after: Position): Promise<StoredEvent[]> {
      const head = await store.headPosition();
      const found: StoredEvent[] = [];
      let cursor = after;
      while (cursor < head) {
        const page = await store.readAll({ after: cursor, maxCount: 500 });
        const last = page[page.length - 1];
        if (last === undefined) break;
        found.push(...ours(page));
        cursor = last.position;
      }
      return found;
    }

    async function expectConflict(
      attempt: Promise<unknown>,
      expected: { stream: string; expected: ExpectedRevision; actual: number | 'no_stream' },
    ): Promise<void> {
      const error = await attempt.then(
        () => {
          throw new Error('append succeeded but should have conflicted');
        },
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(WrongExpectedRevisionError);
      const conflict = error as WrongExpectedRevisionError;
      expect({ stream: conflict.stream, expected: conflict.expected, actual: conflict.actual }).toEqual(expected);
    }

    describe('append and readStream', () => {
      it('appends to a new stream and reads back exactly what was written', async () => {
        const stream = streamName('order');
        const events = newEvents(3);
        const result = await store.append(stream, events, 'no_stream');
        expect(result.nextRevision).toBe(2);
        expect(result.position).toBeGreaterThan(0);

        const read = await store.readStream(stream);
        expect(read.map((e) => e.revision)).toEqual([0, 1, 2]);
        expect(read.map(({ id, type, data, metadata }) => ({ id, type, data, metadata }))).toEqual(events);
        expect(read.every((e) => e.stream === stream)).toBe(true);
        // Positions of one append are increasing and the last is the one append() reported.
        expect(read[0]!.position).toBeLessThan(read[1]!.position);
        expect(read[1]!.position).toBeLessThan(read[2]!.position);
        expect(read[2]!.position).toBe(result.position);
      });

      it('reads a stream that does not exist as []', async () => {
        expect(await store.readStream(streamName('missing'))).toEqual([]);
        expect(await store.readStream(streamName('missing'), { direction: 'backwards' })).toEqual([]);
      });

      it('reads from the middle, forwards and backwards, with maxCount', async () => {
        const stream = streamName('middle');
        const first = await store.append(stream, newEvents(12), 'no_stream');
        await store.append(stream, newEvents(8), first.nextRevision);
        const revisions = async (options: Parameters<EventStore['readStream']>[1]) =>
          (await store.readStream(stream, options)).map((e) => e.revision);

        expect(await revisions({})).toEqual(range(0, 20));
        expect(await revisions({ fromRevision: 5, maxCount: 3 })).toEqual([5, 6, 7]);
        expect(await revisions({ fromRevision: 15 })).toEqual([15, 16, 17, 18, 19]);
        expect(await revisions({ direction: 'backwards' })).toEqual(range(0, 20).reverse());
        expect(await revisions({ direction: 'backwards', maxCount: 1 })).toEqual([19]);
        expect(await revisions({ direction: 'backwards', fromRevision: 5, maxCount: 3 })).toEqual([5, 4, 3]);
        expect(await revisions({ direction: 'backwards', fromRevision: 2 })).toEqual([2, 1, 0]);
        expect(await revisions({ fromRevision: 25 })).toEqual([]);
        expect(await revisions({ fromRevision: 19, maxCount: 10 })).toEqual([19]);
      });

      it('rejects an empty append without writing', async () => {
        const stream = streamName('empty');
        await expect(store.append(stream, [], 'any')).rejects.toThrow();
        expect(await store.readStream(stream)).toEqual([]);
      });

      it('writes and reads a 10,000-event stream appended in batches', async () => {
        const stream = streamName('long');
        const written: NewEvent[] = [];
        let expected: ExpectedRevision = 'no_stream';
        for (let batch = 0; batch < 20; batch++) {
          const events = newEvents(500);
          written.push(...events);
          const result: AppendResult = await store.append(stream, events, expected);
          expect(result.nextRevision).toBe((batch + 1) * 500 - 1);
          expected = result.nextRevision;
        }

        const forwards = await store.readStream(stream);
        expect(forwards).toHaveLength(10_000);
        expect(forwards.map((e) => e.id)).toEqual(written.map((e) => e.id));
        expect(forwards.every((e, i) => e.revision === i)).toBe(true);
        expect(isStrictlyIncreasing(forwards.map((e) => e.position))).toBe(true);

        const backwards = await store.readStream(stream, { direction: 'backwards' });
        expect(backwards.map((e) => e.id)).toEqual(written.map((e) => e.id).reverse());

        const middleForwards = await store.readStream(stream, { fromRevision: 4321, maxCount: 100 });
        expect(middleForwards.map((e) => e.revision)).toEqual(range(4321, 4421));
        expect(middleForwards.map((e) => e.id)).toEqual(written.slice(4321, 4421).map((e) => e.id));
        const middleBackwards = await store.readStream(stream, { direction: 'backwards', fromRevision: 4321, maxCount: 100 });
        expect(middleBackwards.map((e) => e.revision)).toEqual(range(4222, 4322).reverse());
      });
    });

    describe('optimistic concurrency', () => {
      it('lets exactly one of two writers with the same expected revision win', async () => {
        const stream = streamName('race');
        const created = await store.append(stream, newEvents(1), 'no_stream');
        const [a, b] = [newEvents(1), newEvents(2)];
        const outcomes = await Promise.allSettled([
          store.append(stream, a, created.nextRevision),
          store.append(stream, b, created.nextRevision),
        ]);
        const winners = outcomes.filter((o) => o.status === 'fulfilled');
        const losers = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(winners).toHaveLength(1);
        expect(losers).toHaveLength(1);

        const stored = await store.readStream(stream);
        const winner = outcomes[0]!.status === 'fulfilled' ? a : b;
        expect(stored.map((e) => e.id)).toEqual([stored[0]!.id, ...winner.map((e) => e.id)]);
        const error = losers[0]!.reason as unknown;
        expect(error).toBeInstanceOf(WrongExpectedRevisionError);
        expect((error as WrongExpectedRevisionError).actual).toBe(stored.length - 1);
        expect((error as WrongExpectedRevisionError).expected).toBe(0);
        expect((error as WrongExpectedRevisionError).stream).toBe(stream);
      });

      it('lets exactly one of ten writers creating the same stream win', async () => {
        const stream = streamName('create-race');
        const outcomes = await Promise.allSettled(range(0, 10).map(() => store.append(stream, newEvents(1), 'no_stream')));
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected') {
            expect(outcome.reason).toBeInstanceOf(WrongExpectedRevisionError);
            expect((outcome.reason as WrongExpectedRevisionError).actual).toBe(0);
          }
        }
        expect(await store.readStream(stream)).toHaveLength(1);
      });

      it('honours no_stream, stream_exists, any and exact revisions, writing nothing on conflict', async () => {
        const existing = streamName('existing');
        const missing = streamName('missing');
        await store.append(existing, newEvents(2), 'no_stream');

        await expectConflict(store.append(existing, newEvents(1), 'no_stream'), { stream: existing, expected: 'no_stream', actual: 1 });
        await expectConflict(store.append(missing, newEvents(1), 'stream_exists'), { stream: missing, expected: 'stream_exists', actual: 'no_stream' });
        await expectConflict(store.append(missing, newEvents(1), 0), { stream: missing, expected: 0, actual: 'no_stream' });
        await expectConflict(store.append(existing, newEvents(1), 0), { stream: existing, expected: 0, actual: 1 });
        await expectConflict(store.append(existing, newEvents(1), 2), { stream: existing, expected: 2, actual: 1 });
        expect(await store.readStream(existing)).toHaveLength(2);
        expect(await store.readStream(missing)).toEqual([]);

        expect((await store.append(existing, newEvents(1), 'stream_exists')).nextRevision).toBe(2);
        expect((await store.append(existing, newEvents(1), 'any')).nextRevision).toBe(3);
        expect((await store.append(existing, newEvents(1), 3)).nextRevision).toBe(4);
        expect((await store.append(missing, newEvents(2), 'any')).nextRevision).toBe(1);
      });
    });

    describe('idempotent retries', () => {
      it('answers a retried append with the original result and writes nothing twice', async () => {
        const stream = streamName('retry');
        const first = newEvents(2);
        const original = await store.append(stream, first, 'no_stream');
        expect(await store.append(stream, first, 'no_stream')).toEqual(original);

        const second = newEvents(1);
        const next = await store.append(stream, second, original.nextRevision);
        // Retries still succeed after the stream moved on, as long as they describe the same write.
        expect(await store.append(stream, first, 'no_stream')).toEqual(original);
        expect(await store.append(stream, first, 'any')).toEqual(original);
        expect(await store.append(stream, second, original.nextRevision)).toEqual(next);
        expect(await store.append(stream, second, 'stream_exists')).toEqual(next);

        const stored = await store.readStream(stream);
        expect(stored.map((e) => e.id)).toEqual([...first, ...second].map((e) => e.id));
      });

      it('answers two identical concurrent appends with one write', async () => {
        const stream = streamName('double-submit');
        const events = newEvents(3);
        const [a, b] = await Promise.all([store.append(stream, events, 'no_stream'), store.append(stream, events, 'no_stream')]);
        expect(a).toEqual(b);
        expect(await store.readStream(stream)).toHaveLength(3);
      });

      it('treats a partial overlap with different ids, or a retry at the wrong revision, as a conflict', async () => {
        const stream = streamName('overlap');
        const first = newEvents(2);
        await store.append(stream, first, 'no_stream');
        const overlapping = [first[1]!, ...newEvents(1)];
        await expectConflict(store.append(stream, overlapping, 0), { stream, expected: 0, actual: 1 });
        await expectConflict(store.append(stream, first, 5), { stream, expected: 5, actual: 1 });
        expect((await store.readStream(stream)).map((e) => e.id)).toEqual(first.map((e) => e.id));
      });
    });

    describe('multi-stream append', () => {
      it('writes several streams as one contiguous run of positions, in the order given', async () => {
        const session = streamName('multi-session');
        const plan = streamName('multi-plan');
        const before = await store.headPosition();
        const first = await store.append(session, newEvents(1), 'no_stream');
        const sessionEvents = newEvents(2);
        const planEvents = newEvents(3);
        const result = await store.appendMulti([
          { stream: session, events: sessionEvents, expected: first.nextRevision },
          { stream: plan, events: planEvents, expected: 'no_stream' },
        ]);
        expect(result.streams.map((s) => s.nextRevision)).toEqual([2, 2]);
        expect(result.position).toBe(result.streams[1]!.position);

        const all = await readOurs(before);
        const multi = all.slice(1);
        expect(multi.map((e) => e.id)).toEqual([...sessionEvents, ...planEvents].map((e) => e.id));
        expect(multi.map((e) => e.stream)).toEqual([session, session, plan, plan, plan]);
        expect(multi.map((e) => e.revision)).toEqual([1, 2, 0, 1, 2]);
        expect(isStrictlyIncreasing(multi.map((e) => e.position))).toBe(true);
        expect(multi[1]!.position).toBe(result.streams[0]!.position);
        expect(multi[4]!.position).toBe(result.position);
        // Nothing else lands inside the run: readAll from just before it returns it whole, in order.
        const run = await store.readAll({ after: multi[0]!.position - 1, maxCount: 5 });
        expect(run.map((e) => e.id)).toEqual(multi.map((e) => e.id));
      });

      it('writes nothing when any stream\'s expectation fails, and names that stream', async () => {
        const a = streamName('multi-a');
        const b = streamName('multi-b');
        await store.append(b, newEvents(2), 'no_stream');
        const before = await store.headPosition();
        await expectConflict(
          store.appendMulti([
            { stream: a, events: newEvents(1), expected: 'no_stream' },
            { stream: b, events: newEvents(1), expected: 0 },
          ]),
          { stream: b, expected: 0, actual: 1 },
        );
        expect(await store.readStream(a)).toEqual([]);
        expect(await store.readStream(b)).toHaveLength(2);
        expect(await readOurs(before)).toEqual([]);
      });

      it('answers a retried multi-stream append with the original result and writes nothing twice', async () => {
        const a = streamName('multi-retry-a');
        const b = streamName('multi-retry-b');
        const appends = [
          { stream: a, events: newEvents(2), expected: 'no_stream' as const },
          { stream: b, events: newEvents(1), expected: 'no_stream' as const },
        ];
        const original = await store.appendMulti(appends);
        expect(await store.appendMulti(appends)).toEqual(original);
        const [x, y] = await Promise.all([store.appendMulti(appends), store.appendMulti(appends)]);
        expect(x).toEqual(original);
        expect(y).toEqual(original);
        expect(await store.readStream(a)).toHaveLength(2);
        expect(await store.readStream(b)).toHaveLength(1);
      });

      it('lets exactly one of several racing multi-stream appends to a shared stream win', async () => {
        const shared = streamName('multi-shared');
        await store.append(shared, newEvents(1), 'no_stream');
        const attempts = range(0, 5).map((i) =>
          store.appendMulti([
            { stream: shared, events: newEvents(1), expected: 0 },
            { stream: streamName(`multi-own-${i}`), events: newEvents(1), expected: 'no_stream' },
          ]),
        );
        const outcomes = await Promise.allSettled(attempts);
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(WrongExpectedRevisionError);
        }
        expect(await store.readStream(shared)).toHaveLength(2);
        const owns = await Promise.all(range(0, 5).map((i) => store.readStream(streamName(`multi-own-${i}`))));
        expect(owns.filter((events) => events.length > 0)).toHaveLength(1);
      });

      it('refuses a stream named twice, or an empty list, writing nothing', async () => {
        const a = streamName('multi-twice');
        await expect(
          store.appendMulti([
            { stream: a, events: newEvents(1), expected: 'any' },
            { stream: a, events: newEvents(1), expected: 'any' },
          ]),
        ).rejects.toThrow();
        await expect(store.appendMulti([])).rejects.toThrow();
        expect(await store.readStream(a)).toEqual([]);
      });

      it('is delivered to a subscriber as one contiguous run', async () => {
        const head = await store.headPosition();
        const delivered: StoredEvent[] = [];
        const subscription = store.subscribeToAll({ after: head }, (batch) => {
          delivered.push(...ours(batch));
        });
        const result = await store.appendMulti([
          { stream: streamName('multi-live-a'), events: newEvents(2), expected: 'no_stream' },
          { stream: streamName('multi-live-b'), events: newEvents(2), expected: 'no_stream' },
        ]);
        await waitFor(() => delivered.length >= 4, 10_000);
        await subscription.close();
        expect(delivered.map((e) => e.stream)).toEqual([
          streamName('multi-live-a'),
          streamName('multi-live-a'),
          streamName('multi-live-b'),
          streamName('multi-live-b'),
        ]);
        expect(delivered.at(-1)!.position).toBe(result.position);
      });
    });

    describe('global order', () => {
      it('gives increasing positions across streams, and readAll returns append order', async () => {
        const before = await store.headPosition();
        const appended: NewEvent[] = [];
        const positions: Position[] = [];
        const revisions = new Map<string, number>();
        for (let i = 0; i < 20; i++) {
          const stream = streamName(`s${i % 5}`);
          const events = newEvents(1 + (i % 3));
          const result = await store.append(stream, events, revisions.get(stream) ?? 'no_stream');
          revisions.set(stream, result.nextRevision);
          appended.push(...events);
          positions.push(result.position);
        }
        expect(positions[0]).toBeGreaterThan(before);
        expect(isStrictlyIncreasing(positions)).toBe(true);

        const all = await readOurs(before);
        expect(all.map((e) => e.id)).toEqual(appended.map((e) => e.id));
        expect(isStrictlyIncreasing(all.map((e) => e.position))).toBe(true);
        expect(all.every((e) => e.position > before)).toBe(true);
        expect(all.some((e) => e.type.startsWith('$'))).toBe(false);
        // readAll and readStream agree on every event's position and revision.
        const s0 = await store.readStream(streamName('s0'));
        expect(s0.map(({ position, revision }) => ({ position, revision }))).toEqual(
          all.filter((e) => e.stream === streamName('s0')).map(({ position, revision }) => ({ position, revision })),
        );
      });

      it('pages readAll strictly after `after`, with no gap and no repeat between pages', async () => {
        const before = await store.headPosition();
        const stream = streamName('paged');
        const written = newEvents(50);
        const last = await store.append(stream, written, 'no_stream');

        const seen: StoredEvent[] = [];
        let after = before;
        while (after < last.position) {
          const page = await store.readAll({ after, maxCount: 7 });
          expect(page.length).toBeGreaterThan(0);
          expect(page.length).toBeLessThanOrEqual(7);
          expect(page[0]!.position).toBeGreaterThan(after);
          seen.push(...ours(page));
          after = page[page.length - 1]!.position;
        }
        expect(seen.map((e) => e.id)).toEqual(written.map((e) => e.id));

        const fromMiddle = ours(await store.readAll({ after: seen[9]!.position, maxCount: 5 }));
        expect(fromMiddle.map((e) => e.revision)).toEqual([10, 11, 12, 13, 14]);
      });

      it('returns 1000 events per readAll page by default', async () => {
        const before = await store.headPosition();
        await store.append(streamName('big'), newEvents(1200), 'no_stream');
        expect(await store.readAll({ after: before })).toHaveLength(1000);
      });

      it('reports the head position as that of the last event', async () => {
        const result = await store.append(streamName('head'), newEvents(2), 'no_stream');
        const head = await store.headPosition();
        expect(head).toBeGreaterThanOrEqual(result.position);
        expect(ours(await store.readAll({ after: head }))).toEqual([]);
      });

      it('has a stable log id', async () => {
        const id = await store.logId();
        expect(id).toMatch(/\S/);
        expect(await store.logId()).toBe(id);
      });
    });

    describe('subscribeToAll', () => {
      it('catches up from a checkpoint and goes live while others append: nothing missed, nothing repeated, in order', async () => {
        const streams = range(0, 50).map((i) => streamName(`live-${i}`));
        const revisions = new Map<string, number>();
        const appendBurst = async (events: number) => {
          // One append per stream, all in flight at once: the shape of many concurrent commands.
          await Promise.all(
            streams.map(async (stream) => {
              const result = await store.append(stream, newEvents(events), revisions.get(stream) ?? 'no_stream');
              revisions.set(stream, result.nextRevision);
            }),
          );
        };
        const start = await store.headPosition();
        for (let i = 0; i < 10; i++) await appendBurst(2); // 1,000 events before subscribing
        const history = await readOurs(start);
        expect(history).toHaveLength(1_000);
        const checkpoint = history[499]!.position;

        const delivered: StoredEvent[] = [];
        let running = false;
        let overlapped = false;
        let largestBatch = 0;
        let batches = 0;
        const subscription = store.subscribeToAll({ after: checkpoint, maxBatch: 100 }, async (batch) => {
          if (running) overlapped = true;
          running = true;
          largestBatch = Math.max(largestBatch, batch.length);
          delivered.push(...ours(batch));
          // Slow down now and then so appends pile up behind a handler that is still running.
          if (++batches % 7 === 0) await sleep(2);
          running = false;
        });

        for (let burst = 0; burst < 50; burst++) await appendBurst(2); // 5,000 events while subscribed
        const expected = (await readOurs(checkpoint)).map((e) => e.id);
        expect(expected).toHaveLength(500 + 5_000);

        await waitFor(() => delivered.length >= expected.length, 20_000);
        await sleep(300); // anything repeated late would show up now
        await subscription.close();
        await subscription.done;

        expect(delivered.map((e) => e.id)).toEqual(expected);
        expect(isStrictlyIncreasing(delivered.map((e) => e.position))).toBe(true);
        expect(delivered[0]!.position).toBeGreaterThan(checkpoint);
        expect(overlapped).toBe(false);
        expect(largestBatch).toBeLessThanOrEqual(100);
      });

      it('delivers strictly after the checkpoint it was given', async () => {
        const stream = streamName('checkpoint');
        const first = await store.append(stream, newEvents(1), 'no_stream');
        const second = await store.append(stream, newEvents(1), first.nextRevision);
        const third = await store.append(stream, newEvents(1), second.nextRevision);

        const delivered: StoredEvent[] = [];
        const subscription = store.subscribeToAll({ after: second.position }, (batch) => {
          delivered.push(...ours(batch));
        });
        await waitFor(() => delivered.length >= 1, 10_000);
        await sleep(100);
        await subscription.close();
        expect(delivered.map((e) => e.position)).toEqual([third.position]);
        expect(delivered.map((e) => e.revision)).toEqual([2]);
      });

      it('stops delivering after close()', async () => {
        const stream = streamName('closing');
        const head = await store.headPosition();
        const delivered: StoredEvent[] = [];
        const subscription = store.subscribeToAll({ after: head }, (batch) => {
          delivered.push(...ours(batch));
        });
        const first = await store.append(stream, newEvents(1), 'no_stream');
        await waitFor(() => delivered.length === 1, 10_000);

        await subscription.close();
        await expect(subscription.done).resolves.toBeUndefined();
        await store.append(stream, newEvents(5), first.nextRevision);
        await sleep(400); // longer than any poll interval
        expect(delivered).toHaveLength(1);
      });

      it('rejects `done` with the error of a handler that throws, and stops', async () => {
        const head = await store.headPosition();
        let calls = 0;
        const subscription = store.subscribeToAll({ after: head }, (batch) => {
          if (ours(batch).length === 0) return;
          calls += 1;
          throw new Error('projection exploded');
        });
        const first = await store.append(streamName('throws'), newEvents(1), 'no_stream');
        await expect(subscription.done).rejects.toThrow('projection exploded');
        await store.append(streamName('throws'), newEvents(1), first.nextRevision);
        await sleep(300);
        expect(calls).toBe(1);
        await subscription.close(); // closing a failed subscription is harmless
      });

      it('is closed by closing the store', async () => {
        const head = await store.headPosition();
        const subscription = store.subscribeToAll({ after: head }, () => undefined);
        await sleep(50);
        await store.close();
        await expect(subscription.done).resolves.toBeUndefined();
      });
    });
  });
}

/** Events with fresh UUIDs and the metadata every Planline event carries. */
export function newEvents(count: number, type = 'ThingHappened'): NewEvent[] {
  const correlation = randomUUID();
  return Array.from({ length: count }, (_, i) => ({
    id: randomUUID(),
    type,
    data: { index: i, nested: { list: [1, 'two', null], flag: true }, text: 'ünïcødé ✓' },
    metadata: {
      command_id: correlation,
      correlation_id: correlation,
      causation_id: correlation,
      at: new Date().toISOString(),
      schema_version: 1,
    },
  }));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

function isStrictlyIncreasing(values: number[]): boolean {
  return values.every((value, i) => i === 0 || value > (values[i - 1] as number));
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await sleep(10);
  }
}
