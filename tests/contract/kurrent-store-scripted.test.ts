// The KurrentDB adapter with the real client against a scripted server (tests/support/scripted-kurrentdb.ts):
// the moments a real server produces only by chance, made to happen on cue. Dropped appends are sent
// again, identical; drops and ends of a subscription resubscribe from the last event delivered; close()
// closes the connection. The shared contract runs against a real server in kurrent-store.test.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openKurrentEventStore, type KurrentEventStore } from '../../src/events/kurrent-store.js';
import { MAX_APPEND_SENDS } from '../../src/events/kurrent-policy.js';
import { EventStoreUnavailableError, WrongExpectedRevisionError, type StoredEvent } from '../../src/events/store.js';
import { createLogger } from '../../src/log.js';
import { startScriptedKurrentDb, type ReceivedSubscription, type ScriptedEvent, type ScriptedKurrentDb } from '../support/scripted-kurrentdb.js';
import { newEvents } from './event-store.contract.js';

describe('KurrentDB adapter against a scripted server', () => {
  let server: ScriptedKurrentDb;
  let store: KurrentEventStore;
  let logLines: Record<string, unknown>[];

  beforeEach(async () => {
    server = await startScriptedKurrentDb('24.10.0.0');
    logLines = [];
    const log = createLogger('debug', { write: (line) => logLines.push(JSON.parse(line) as Record<string, unknown>) });
    store = await openKurrentEventStore(server.url, { log, connectTimeoutMs: 2_000 });
  });
  afterEach(async () => {
    await store.close();
    await server.close();
  });

  it('says at connect what the server is and that appendMulti cannot be atomic on it', async () => {
    expect(store.serverVersion).toBe('24.10.0.0');
    expect(store.capabilities.atomicMultiStream).toBe(false);
    expect(logLines).toContainEqual(expect.objectContaining({ msg: 'KurrentDB connected', server_version: '24.10.0.0', atomic_multi_stream: false }));
    await expect(
      store.appendMulti([
        { stream: 'session-1', events: newEvents(1), expected: 0 },
        { stream: 'plan-1', events: newEvents(1), expected: 'no_stream' },
      ]),
    ).rejects.toThrow(/24\.10\.0\.0.*25\.1/);
    expect(server.appends).toEqual([]);
    // One stream is atomic anywhere.
    server.answerAppend = () => ({ kind: 'success', revision: 1, position: 900 });
    expect(await store.appendMulti([{ stream: 'session-1', events: newEvents(1), expected: 0 }])).toEqual({
      streams: [{ nextRevision: 1, position: 900 }],
      position: 900,
    });
  });

  it('sends an append the server dropped again, identical, and answers with the result', async () => {
    server.answerAppend = (_append, index) => (index === 0 ? { kind: 'timeout' } : { kind: 'success', revision: 2, position: 5_000 });
    const events = newEvents(2);
    expect(await store.append('plan-7', events, 0)).toEqual({ nextRevision: 2, position: 5_000 });
    expect(server.appends).toHaveLength(2);
    expect(server.appends[1]).toEqual(server.appends[0]);
    expect(server.appends[0]).toEqual({ stream: 'plan-7', expected: '0', ids: events.map((e) => e.id) });
  });

  it('gives up after a bounded number of sends, as unavailable', async () => {
    server.answerAppend = () => ({ kind: 'timeout' });
    const error = await store.append('plan-8', newEvents(1), 'no_stream').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventStoreUnavailableError);
    expect((error as Error).message).toContain(`after ${MAX_APPEND_SENDS} attempts`);
    expect(server.appends).toHaveLength(MAX_APPEND_SENDS);
  });

  it('sends identical appends made at the same moment in one process once', async () => {
    const events = newEvents(1);
    const [a, b] = await Promise.all([store.append('plan-9', events, 'no_stream'), store.append('plan-9', events, 'no_stream')]);
    expect(a).toEqual(b);
    expect(server.appends).toHaveLength(1);
  });

  it('resubscribes from the last event delivered when the server drops the subscription', async () => {
    const subscriptions: ReceivedSubscription[] = [];
    server.onSubscribe = (s) => subscriptions.push(s);
    const delivered: StoredEvent[] = [];
    const subscription = store.subscribeToAll({}, (batch) => {
      delivered.push(...batch);
    });
    await until(() => subscriptions.length === 1);
    subscriptions[0]!.send({ stream: 's', revision: 0, position: 100 });
    subscriptions[0]!.send({ stream: 's', revision: 1, position: 200 });
    await until(() => delivered.length === 2);
    subscriptions[0]!.fail(grpc.status.UNAVAILABLE, 'node is shutting down');

    await until(() => subscriptions.length === 2);
    expect(subscriptions[1]!.after).toEqual({ commit: 200n, prepare: 200n });
    subscriptions[1]!.send({ stream: 's', revision: 1, position: 200 }); // a server may resend the checkpoint event
    subscriptions[1]!.send({ stream: 's', revision: 2, position: 300 });
    await until(() => delivered.length === 3);
    await subscription.close();
    await expect(subscription.done).resolves.toBeUndefined();
    expect(delivered.map((e) => e.position)).toEqual([100, 200, 300]);
  });

  it('resubscribes when a subscription ends without close()', async () => {
    const subscriptions: ReceivedSubscription[] = [];
    server.onSubscribe = (s) => subscriptions.push(s);
    const delivered: number[] = [];
    const subscription = store.subscribeToAll({}, (batch) => {
      delivered.push(...batch.map((e) => e.position));
    });
    await until(() => subscriptions.length === 1);
    subscriptions[0]!.send({ stream: 's', revision: 0, position: 100 });
    await until(() => delivered.length === 1);
    subscriptions[0]!.end();
    await until(() => subscriptions.length === 2);
    expect(subscriptions[1]!.after).toEqual({ commit: 100n, prepare: 100n });
    subscriptions[1]!.send({ stream: 's', revision: 1, position: 150 });
    await until(() => delivered.length === 2);
    await subscription.close();
    expect(delivered).toEqual([100, 150]);
  });

  it('ends a subscription whose handler throws, with that error, and does not resubscribe', async () => {
    const subscriptions: ReceivedSubscription[] = [];
    server.onSubscribe = (s) => subscriptions.push(s);
    const subscription = store.subscribeToAll({}, () => {
      throw new Error('projection exploded');
    });
    await until(() => subscriptions.length === 1);
    subscriptions[0]!.send({ stream: 's', revision: 0, position: 100 });
    await expect(subscription.done).rejects.toThrow('projection exploded');
    await sleep(300); // longer than the first resubscribe delay
    expect(subscriptions).toHaveLength(1);
  });

  it('skips records that are not Planline events in a subscription, and keeps delivering', async () => {
    const subscriptions: ReceivedSubscription[] = [];
    server.onSubscribe = (s) => subscriptions.push(s);
    const delivered: string[] = [];
    const subscription = store.subscribeToAll({}, (batch) => {
      delivered.push(...batch.map((e) => e.stream));
    });
    await until(() => subscriptions.length === 1);
    subscriptions[0]!.send({ stream: 'orders-1', revision: 0, position: 100, data: [1, 2, 3] });
    subscriptions[0]!.send({ stream: '$projections-x-result', revision: 0, position: 200, type: 'Result' });
    subscriptions[0]!.send({ stream: 'plan-1', revision: 0, position: 300 });
    await until(() => delivered.length === 1);
    await subscription.close();
    expect(delivered).toEqual(['plan-1']);
  });

  it('closes its connection to the server on close(), subscriptions and all', async () => {
    const subscriptions: ReceivedSubscription[] = [];
    server.onSubscribe = (s) => subscriptions.push(s);
    const subscription = store.subscribeToAll({}, () => undefined);
    await store.append('plan-10', newEvents(1), 'no_stream');
    await until(() => subscriptions.length === 1);
    expect(server.openConnections()).toBeGreaterThan(0);

    await store.close();
    await expect(subscription.done).resolves.toBeUndefined();
    await until(() => server.openConnections() === 0, 3_000);
    await expect(store.append('plan-10', newEvents(1), 0)).rejects.toBeInstanceOf(EventStoreUnavailableError);
  });
});

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await sleep(10);
  }
}

// Reads go through the client's Rust bridge, which speaks the same protocol to the scripted server.
describe('KurrentDB adapter reads against a scripted server', () => {
  let server: ScriptedKurrentDb;
  let store: KurrentEventStore;

  beforeEach(async () => {
    server = await startScriptedKurrentDb('25.1.0.0');
    store = await openKurrentEventStore(server.url, { log: createLogger('error'), connectTimeoutMs: 2_000 });
  });
  afterEach(async () => {
    await store.close();
    await server.close();
  });

  const foreign: ScriptedEvent[] = [
    { stream: '$projections-orders-result', revision: 0, position: 150, type: 'Result' },
    { stream: 'orders-1', revision: 0, position: 160, data: [1, 2, 3] },
    { stream: 'blobs-1', revision: 0, position: 170, data: new Uint8Array([0, 1, 255]) },
    { stream: 'legacy-1', revision: 0, position: 180, prepare: 175 },
    { stream: 'orders-2', revision: 0, position: 190, metadata: new Uint8Array(0) },
  ];

  it('reads past other tools\' records on a shared server, skipping or surfacing them', async () => {
    server.answerRead = () => ({ events: [{ stream: 'plan-1', revision: 0, position: 100 }, ...foreign, { stream: 'plan-1', revision: 1, position: 200 }] });
    const all = await store.readAll({ maxCount: 10 });
    // Skipped: the system stream, non-object data, binary data, the legacy transaction. Surfaced: the
    // event without metadata, with empty metadata.
    expect(all.map((e) => [e.stream, e.position])).toEqual([
      ['plan-1', 100],
      ['orders-2', 190],
      ['plan-1', 200],
    ]);
    expect(all[1]!.metadata).toEqual({});
  });

  it('reads a missing stream as []', async () => {
    server.answerRead = (read) => ({ streamNotFound: read.stream });
    expect(await store.readStream('plan-missing')).toEqual([]);
  });

  it('reads $all from a number inside a record by starting at the event before it', async () => {
    const log: ScriptedEvent[] = [100, 200, 300].map((position, revision) => ({ stream: 'plan-1', revision, position }));
    server.answerRead = (read) => {
      if (read.stream !== '$all') return { events: [] };
      if (read.from === 'end') return { events: [...log].reverse() };
      if (typeof read.from === 'object' && !log.some((e) => BigInt(e.position) === (read.from as { commit: bigint }).commit)) {
        return { fail: grpc.status.INVALID_ARGUMENT, details: 'Trying to read from an invalid position.' };
      }
      const start = typeof read.from === 'object' ? Number(read.from.commit) : 0;
      return { events: log.filter((e) => e.position >= start) };
    };
    expect((await store.readAll({ after: 299 })).map((e) => e.position)).toEqual([300]);
    expect((await store.readAll({ after: 200 })).map((e) => e.position)).toEqual([300]);
    expect((await store.readAll({ after: 99 })).map((e) => e.position)).toEqual([100, 200, 300]);
  });

  it('reports as head the newest event a reader of the store gets, not a skipped record after it', async () => {
    const newestFirst = [...foreign.slice(0, 4)].reverse().concat({ stream: 'plan-1', revision: 0, position: 100 });
    server.answerRead = (read) => (read.direction === 'backwards' ? { events: newestFirst } : { events: [] });
    expect(await store.headPosition()).toBe(100);
  });

  it('maps a read the server fails to unavailable', async () => {
    server.answerRead = () => ({ fail: grpc.status.INTERNAL, details: 'disk on fire' });
    await expect(store.readStream('plan-1')).rejects.toBeInstanceOf(EventStoreUnavailableError);
    await expect(store.headPosition()).rejects.toBeInstanceOf(EventStoreUnavailableError);
  });
});

describe('KurrentDB adapter on a server with multi-stream append (scripted)', () => {
  let server: ScriptedKurrentDb;
  let store: KurrentEventStore;

  beforeEach(async () => {
    server = await startScriptedKurrentDb('25.1.0.0', true);
    store = await openKurrentEventStore(server.url, { log: createLogger('error'), connectTimeoutMs: 2_000 });
  });
  afterEach(async () => {
    await store.close();
    await server.close();
  });

  it('writes several streams as one multi-stream append, metadata as string properties, revisions as sent', async () => {
    expect(store.capabilities.atomicMultiStream).toBe(true);
    server.answerMultiAppend = () => ({ position: 900, revisions: [3, 0] });
    // Each stream's own last position is read back (stream reads go through the Rust bridge).
    server.answerRead = (read) => ({ events: [{ stream: read.stream, revision: 3, position: 800 }] });
    const session = newEvents(1);
    const plan = newEvents(1);
    const result = await store.appendMulti([
      { stream: 'session-1', events: session, expected: 2 },
      { stream: 'plan-1', events: plan, expected: 'no_stream' },
    ]);
    expect(result).toEqual({ streams: [{ nextRevision: 3, position: 800 }, { nextRevision: 0, position: 900 }], position: 900 });

    const [sent] = server.multiAppends;
    expect(sent!.map((s) => [s.stream, s.expectedRevision])).toEqual([['session-1', '2'], ['plan-1', '-1']]);
    expect(sent![0]!.records[0]).toEqual({
      id: session[0]!.id,
      type: 'ThingHappened',
      data: session[0]!.data,
      properties: { ...session[0]!.metadata, schema_version: '1' },
    });
  });

  it('reports a conflict on any stream as WrongExpectedRevisionError naming that stream', async () => {
    server.answerMultiAppend = () => ({ conflict: { stream: 'plan-1', expectedRevision: '-1', actualRevision: '0' } });
    const error = await store
      .appendMulti([
        { stream: 'session-1', events: newEvents(1), expected: 2 },
        { stream: 'plan-1', events: newEvents(1), expected: 'no_stream' },
      ])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WrongExpectedRevisionError);
    expect(error).toMatchObject({ stream: 'plan-1', expected: 'no_stream', actual: 0 });
    expect(server.multiAppends).toHaveLength(1); // a conflict is an answer: nothing is sent again
  });
});
