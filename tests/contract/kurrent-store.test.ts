// The KurrentDB adapter. Against a real server (KURRENTDB_URL, e.g. kurrentdb://127.0.0.1:2113?tls=false,
// see infra/compose.yaml): the shared contract, and what other tools' records on a shared server must
// not break. Without a server those suites are skipped, loudly; what can be checked without one (the
// client this adapter is written against, opening with nothing listening) always runs.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { KurrentDBClient, binaryEvent, jsonEvent } from '@kurrent/kurrentdb-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openKurrentEventStore, type KurrentEventStore } from '../../src/events/kurrent-store.js';
import { EventStoreUnavailableError, type StoredEvent } from '../../src/events/store.js';
import { createLogger } from '../../src/log.js';
import { KURRENTDB_URL } from '../support/services.js';
import { eventStoreContract, newEvents } from './event-store.contract.js';

const quiet = createLogger('error');

describe('KurrentDB adapter without a server', () => {
  it('is written against client internals that still exist: capabilities, getChannel, resolveUri', async () => {
    // The adapter reads the server's features the way the client does before multiStreamAppend, and
    // closes the gRPC channel the client's dispose() leaves open. Pinned here so an upgrade that
    // renames them fails this test instead of leaking connections.
    const client = KurrentDBClient.connectionString('kurrentdb://127.0.0.1:1?tls=false');
    const getter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(client), 'capabilities')?.get;
    const internals = client as unknown as Record<string, unknown>;
    expect(typeof getter).toBe('function');
    expect(typeof internals.getChannel).toBe('function');
    expect(typeof internals.resolveUri).toBe('function');
    expect(typeof client.multiStreamAppend).toBe('function');
    await client.dispose();
  });

  it('fails to open, clearly and without the password, when nothing answers', async () => {
    const port = await closedPort();
    const url = `kurrentdb://admin:secret@127.0.0.1:${port}?tls=false`;
    const error = await openKurrentEventStore(url, { log: quiet, connectTimeoutMs: 300 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EventStoreUnavailableError);
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
    expect((error as Error).message).not.toContain('secret');
  });
});

if (KURRENTDB_URL !== undefined && KURRENTDB_URL !== '') {
  const url = KURRENTDB_URL;
  eventStoreContract('kurrentdb', async () => openKurrentEventStore(url, { log: quiet }));

  describe('KurrentDB adapter on a shared server', () => {
    let store: KurrentEventStore;
    let raw: KurrentDBClient;
    beforeAll(async () => {
      store = await openKurrentEventStore(url, { log: quiet });
      raw = KurrentDBClient.connectionString(url);
    });
    afterAll(async () => {
      await store.close();
      await raw.dispose();
    });

    it('reads past records other tools wrote, surfacing or skipping them, never throwing', async () => {
      const prefix = `foreign-${randomUUID().slice(0, 8)}`;
      const before = await store.headPosition();
      const delivered: StoredEvent[] = [];
      const subscription = store.subscribeToAll({ after: before }, (batch) => {
        delivered.push(...batch.filter((e) => e.stream.startsWith(prefix) || e.stream.startsWith(`$${prefix}`)));
      });
      await raw.appendToStream(`${prefix}-no-metadata`, jsonEvent({ type: 'OrderPlaced', data: { order: 1 } }));
      await raw.appendToStream(`${prefix}-array`, jsonEvent({ type: 'OrderPlaced', data: [1, 2, 3] as never }));
      await raw.appendToStream(`${prefix}-binary`, binaryEvent({ type: 'Blob', data: new Uint8Array([0, 1, 2, 255]) }));
      await raw.appendToStream(`$${prefix}-system`, jsonEvent({ type: 'Ordinary', data: { a: 1 } }));
      const ours = await store.append(`${prefix}-ours`, newEvents(1), 'no_stream');

      const all = (await store.readAll({ after: before, maxCount: 100 })).filter((e) => e.stream.includes(prefix));
      expect(all.map((e) => e.stream)).toEqual([`${prefix}-no-metadata`, `${prefix}-ours`]);
      expect(all[0]!.metadata).toEqual({});
      expect(await store.readStream(`${prefix}-binary`)).toEqual([]);
      expect(await store.headPosition()).toBeGreaterThanOrEqual(ours.position);

      while (!delivered.some((e) => e.stream === `${prefix}-ours`)) await sleep(20);
      await subscription.close();
      expect(delivered.map((e) => e.stream)).toEqual([`${prefix}-no-metadata`, `${prefix}-ours`]);
    });

    it('says at connect whether appendMulti is atomic, and refuses several streams when it is not', async () => {
      if (store.capabilities.atomicMultiStream) return;
      await expect(
        store.appendMulti([
          { stream: `x-${randomUUID()}`, events: newEvents(1), expected: 'no_stream' },
          { stream: `y-${randomUUID()}`, events: newEvents(1), expected: 'no_stream' },
        ]),
      ).rejects.toThrow(store.serverVersion);
    });
  });
} else {
  console.warn('[skipped] KurrentDB event store contract: set KURRENTDB_URL to run it against a server');
  describe.skip('EventStore contract: kurrentdb (KURRENTDB_URL not set)', () => {
    it('runs the shared contract against a KurrentDB server', () => undefined);
  });
}

/** A local port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
