// The PostgreSQL adapter against the real server on this machine: the shared contract, then what only
// a shared store must prove. Several store instances stand in for several processes (each has its own
// pools and listener, so the server sees separate sessions). Every test works in a schema of its own,
// dropped at the end.
import { randomUUID } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresEventStore, type PostgresEventStore, type PostgresEventStoreOptions } from '../../src/events/postgres-store.js';
import { EventStoreUnavailableError, WrongExpectedRevisionError, type NewEvent, type StoredEvent } from '../../src/events/store.js';
import { dropPostgresSchemas, POSTGRES_URL, serviceAvailable, uniqueSchema } from '../support/services.js';
import { eventStoreContract, newEvents } from './event-store.contract.js';

const postgresUp = await serviceAvailable('postgres', POSTGRES_URL);

describe.skipIf(!postgresUp)('postgres event store', () => {
  const schemas = new Set<string>();
  const freshSchema = (label = 'pg') => {
    const schema = uniqueSchema(label);
    schemas.add(schema);
    return schema;
  };
  afterAll(async () => {
    await dropPostgresSchemas(POSTGRES_URL, schemas);
  });

  // One schema for the whole contract: its tests share a log, as they would on a shared server.
  const contractSchema = freshSchema('contract');
  eventStoreContract('postgres', () => openPostgresEventStore(POSTGRES_URL, { schema: contractSchema }));

  /** Observes the server: who is connected, who waits on a lock; terminates backends. */
  let admin: pg.Client;
  beforeAll(async () => {
    admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
  });

  const opened: PostgresEventStore[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  /** A store standing in for one process; `name` is its application_name, to find its sessions. */
  async function open(options: PostgresEventStoreOptions & { url?: string } = {}): Promise<PostgresEventStore> {
    const { url = POSTGRES_URL, ...rest } = options;
    const store = await openPostgresEventStore(url, { schema: freshSchema(), ...rest });
    opened.push(store);
    return store;
  }
  const appName = () => `pltest-${randomUUID().slice(0, 8)}`;

  interface Backend {
    pid: number;
    application_name: string;
    wait_event_type: string | null;
    query: string;
  }
  /** Sessions whose application_name starts with `name` (the listener's is `<name> listener`). */
  async function backendsOf(name: string): Promise<Backend[]> {
    const result = await admin.query<Backend>(
      `SELECT pid, application_name, wait_event_type, query FROM pg_stat_activity WHERE starts_with(application_name, $1)`,
      [name],
    );
    return result.rows;
  }
  const waitingOnLock = async (name: string) => (await backendsOf(name)).filter((b) => b.wait_event_type === 'Lock');

  /** A session that holds the events table so inserts wait (reads go on): an append stuck mid-transaction. */
  async function holdInserts(schema: string): Promise<{ release(): Promise<void> }> {
    const locker = new pg.Client({ connectionString: POSTGRES_URL });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE "${schema}".events IN SHARE ROW EXCLUSIVE MODE`);
    return {
      async release() {
        await locker.query('ROLLBACK');
        await locker.end();
      },
    };
  }

  function collect(store: PostgresEventStore, options: { after?: number } = {}) {
    const delivered: StoredEvent[] = [];
    const subscription = store.subscribeToAll(options, (batch) => {
      delivered.push(...batch);
    });
    return { delivered, subscription };
  }

  describe('schema and identity', () => {
    it('creates its tables on start, also when several processes start at once, and they agree on the log id', async () => {
      const schema = freshSchema();
      const stores = await Promise.all(Array.from({ length: 4 }, () => open({ schema })));
      const ids = await Promise.all(stores.map((s) => s.logId()));
      expect(new Set(ids).size).toBe(1);
      expect(ids[0]).toMatch(/^[0-9a-f-]{36}$/);
      const tables = await admin.query(`SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename`, [schema]);
      expect(tables.rows.map((r: { tablename: string }) => r.tablename)).toEqual(['events', 'head', 'meta']);
    });

    it('keeps its events, its head and its log id when reopened', async () => {
      const schema = freshSchema();
      const first = await openPostgresEventStore(POSTGRES_URL, { schema });
      const logId = await first.logId();
      const events = newEvents(3);
      await first.append('kept', events, 'no_stream');
      await first.close();

      const reopened = await open({ schema });
      expect(await reopened.logId()).toBe(logId);
      expect((await reopened.readStream('kept')).map((e) => e.id)).toEqual(events.map((e) => e.id));
      expect(await reopened.headPosition()).toBe(3);
      await expect(reopened.append('kept', newEvents(1), 'no_stream')).rejects.toBeInstanceOf(WrongExpectedRevisionError);
      expect(await reopened.append('kept', newEvents(1), 2)).toEqual({ nextRevision: 3, position: 4 });
    });

    it('gives different schemas different log ids', async () => {
      const [a, b] = await Promise.all([open(), open()]);
      expect(await a.logId()).not.toBe(await b.logId());
    });

    it('refuses a schema name that is not a plain identifier, before connecting', async () => {
      await expect(openPostgresEventStore(POSTGRES_URL, { schema: 'x"; DROP TABLE y; --' })).rejects.toThrow(/schema must match/);
    });
  });

  describe('group commit', () => {
    it('writes appends that arrive together in one transaction', async () => {
      const store = await open();
      const results = await Promise.all(Array.from({ length: 64 }, (_, i) => store.append(`writer-${i}`, newEvents(1), 'no_stream')));
      expect(store.commitStats()).toEqual({ transactions: 1, appends: 64, events: 64, largestGroup: 64 });
      expect(results.map((r) => r.position).sort((a, b) => a - b)).toEqual(range(1, 65));
    });

    it('checks each append against earlier appends of the same group, and a conflict costs the others nothing', async () => {
      const store = await open();
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
      expect((await store.readAll()).map((e) => e.position)).toEqual(range(1, 8));
      expect(await store.headPosition()).toBe(7);
      expect((await store.readStream('shared')).map((e) => e.revision)).toEqual([0, 1, 2]);
    });

    it('answers a group that only replays or conflicts without writing, and the next append takes the next position', async () => {
      const store = await open();
      const events = newEvents(2);
      const original = await store.append('s', events, 'no_stream');
      const [replay, conflict] = await Promise.allSettled([store.append('s', events, 'no_stream'), store.append('s', newEvents(1), 0)]);
      expect(replay).toEqual({ status: 'fulfilled', value: original });
      expect(conflict.status).toBe('rejected');
      expect(await store.append('t', newEvents(1), 'no_stream')).toEqual({ nextRevision: 0, position: 3 });
    });

    it('rejects malformed appends alone, writing nothing for them', async () => {
      const store = await open();
      const [event] = newEvents(1);
      const outcomes = await Promise.allSettled([
        store.append('s', [{ ...event!, id: 'not-a-uuid' }], 'any'),
        store.append('s', [event!, { ...event!, id: event!.id.toUpperCase() }], 'any'), // the same id twice
        store.append('s', newEvents(1), -1),
        store.append('s', newEvents(1), 1.5),
        store.append('s', newEvents(1), 'latest' as never),
        store.append('', newEvents(1), 'any'),
        store.append('nul\u0000name', newEvents(1), 'any'),
        store.append('s', [{ ...event!, data: undefined as never }], 'any'),
        store.append('s', [{ ...event!, type: '' }], 'any'),
        store.append('s', newEvents(1), 'any'),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual([...Array(9).fill('rejected'), 'fulfilled']);
      for (const outcome of outcomes.slice(0, 9)) {
        expect((outcome as PromiseRejectedResult).reason).toSatisfy((e: unknown) => e instanceof TypeError || e instanceof RangeError);
      }
      expect(await store.headPosition()).toBe(1);
    });

    it('stores ids in lowercase and knows a retry spelled in uppercase', async () => {
      const store = await open();
      const upper: NewEvent[] = newEvents(2).map((e) => ({ ...e, id: e.id.toUpperCase() }));
      const original = await store.append('s', upper, 'no_stream');
      expect((await store.readStream('s')).map((e) => e.id)).toEqual(upper.map((e) => e.id.toLowerCase()));
      const lower = upper.map((e) => ({ ...e, id: e.id.toLowerCase() }));
      expect(await store.append('s', lower, 'no_stream')).toEqual(original);
      expect(await store.headPosition()).toBe(2);
    });

    it('stores what JSON can hold, exactly as given', async () => {
      const store = await open();
      const [event] = newEvents(1);
      const data = { z: 1, a: [null, 'x\u0000y', '\ud800 lone surrogate', { deep: { deeper: [1.5, -0, 1e300] } }], '': 'empty key' };
      await store.append('odd', [{ ...event!, data }], 'no_stream');
      const [read] = await store.readStream('odd');
      expect(read!.data).toEqual(JSON.parse(JSON.stringify(data)));
      // json keeps the text as written: key order survives (jsonb would sort the keys).
      expect(Object.keys(read!.data)).toEqual(['z', 'a', '']);
    });
  });

  describe('several processes on one log', () => {
    it('two writers on shared and own streams, a subscriber on a third: every event once, in order, positions gap-free', async () => {
      const schema = freshSchema();
      const [first, second, reader] = await Promise.all([open({ schema }), open({ schema }), open({ schema })]);
      const { delivered, subscription } = collect(reader);

      const acknowledged: { stream: string; ids: string[]; position: number }[] = [];
      /** Append to the shared stream at its exact revision, re-reading it after every conflict. */
      async function appendShared(store: PostgresEventStore, events: NewEvent[], own?: { stream: string; expected: number | 'no_stream' }) {
        for (;;) {
          const [head] = await store.readStream('shared', { direction: 'backwards', maxCount: 1 });
          const expected = head === undefined ? ('no_stream' as const) : head.revision;
          try {
            if (own === undefined) return { shared: await store.append('shared', events, expected), own: undefined };
            const ownEvents = newEvents(1);
            const result = await store.appendMulti([
              { stream: 'shared', events, expected },
              { stream: own.stream, events: ownEvents, expected: own.expected },
            ]);
            acknowledged.push({ stream: own.stream, ids: ownEvents.map((e) => e.id), position: result.streams[1]!.position });
            return { shared: result.streams[0]!, own: result.streams[1]! };
          } catch (error) {
            if (!(error instanceof WrongExpectedRevisionError) || error.stream !== 'shared') throw error;
          }
        }
      }
      async function client(store: PostgresEventStore, name: string): Promise<void> {
        let ownRevision: number | 'no_stream' = 'no_stream';
        for (let i = 0; i < 25; i++) {
          const events = newEvents(1 + (i % 2));
          if (i % 5 === 4) {
            const shared = newEvents(1);
            const result = await appendShared(store, shared, { stream: name, expected: ownRevision });
            acknowledged.push({ stream: 'shared', ids: shared.map((e) => e.id), position: result.shared.position });
            ownRevision = result.own!.nextRevision;
          } else if (i % 3 === 0) {
            const result = await appendShared(store, events);
            acknowledged.push({ stream: 'shared', ids: events.map((e) => e.id), position: result.shared.position });
          } else {
            const result = await store.append(name, events, ownRevision);
            acknowledged.push({ stream: name, ids: events.map((e) => e.id), position: result.position });
            ownRevision = result.nextRevision;
          }
        }
      }
      await Promise.all([
        ...range(0, 6).map((i) => client(first, `first-${i}`)),
        ...range(0, 6).map((i) => client(second, `second-${i}`)),
      ]);

      const head = await reader.headPosition();
      await waitFor(() => delivered.length >= head, 20_000);
      await sleep(200); // anything delivered twice would show up now
      await subscription.close();

      // Gap-free and in order, each event once, the same as the log itself.
      expect(delivered.map((e) => e.position)).toEqual(range(1, head + 1));
      expect(new Set(delivered.map((e) => e.id)).size).toBe(head);
      const log: StoredEvent[] = [];
      for (let page = await reader.readAll({ maxCount: 100 }); page.length > 0; page = await reader.readAll({ after: log.at(-1)!.position, maxCount: 100 })) {
        log.push(...page);
      }
      expect(delivered.map((e) => e.id)).toEqual(log.map((e) => e.id));
      // Every acknowledged append is there, ending at the position it was told, its events in a row.
      const byId = new Map(delivered.map((e) => [e.id, e]));
      for (const { stream, ids, position } of acknowledged) {
        const events = ids.map((id) => byId.get(id));
        expect(events.every((e) => e?.stream === stream)).toBe(true);
        expect(events.at(-1)!.position).toBe(position);
        expect(events.map((e) => e!.position)).toEqual(range(position - ids.length + 1, position + 1));
      }
      expect(delivered.length).toBe(acknowledged.reduce((sum, a) => sum + a.ids.length, 0));
      // Both writers' appends to the shared stream interleave in one gap-free revision sequence.
      const shared = await reader.readStream('shared');
      expect(shared.map((e) => e.revision)).toEqual(range(0, shared.length));
      expect(shared.length).toBe(acknowledged.filter((a) => a.stream === 'shared').reduce((sum, a) => sum + a.ids.length, 0));
    });

    it('an append that holds its positions and commits late is neither overtaken nor skipped', async () => {
      const schema = freshSchema();
      const [slowName, laterName] = [appName(), appName()];
      const [slow, later, reader] = await Promise.all([
        open({ schema, applicationName: slowName }),
        open({ schema, applicationName: laterName }),
        open({ schema }),
      ]);
      await slow.append('first', newEvents(1), 'no_stream');
      const { delivered, subscription } = collect(reader);
      await waitFor(() => delivered.length === 1);

      // The slow process takes positions 2 and 3, then stalls before its commit.
      const held = await holdInserts(schema);
      const slowAppend = slow.append('slow', newEvents(2), 'no_stream');
      await eventually(async () => (await waitingOnLock(slowName)).length === 1);
      // Another process appends meanwhile. With positions from a sequence it would take 4, commit, and a
      // reader past 4 would never go back for 2 and 3. Here it waits for the slow transaction to end.
      let laterSettled = false;
      const laterAppend = later.append('later', newEvents(1), 'no_stream').finally(() => {
        laterSettled = true;
      });
      await eventually(async () => (await waitingOnLock(laterName)).length === 1);
      await sleep(100);
      expect(laterSettled).toBe(false);
      expect(await reader.headPosition()).toBe(1);
      expect(delivered).toHaveLength(1);

      await held.release();
      const [slowResult, laterResult] = await Promise.all([slowAppend, laterAppend]);
      expect(slowResult.position).toBe(3);
      expect(laterResult.position).toBe(4);
      await waitFor(() => delivered.length === 4);
      await subscription.close();
      expect(delivered.map((e) => [e.stream, e.position])).toEqual([
        ['first', 1],
        ['slow', 2],
        ['slow', 3],
        ['later', 4],
      ]);
    });

    it('an append whose transaction is rolled back gives its positions back, and can be retried', async () => {
      const schema = freshSchema();
      const name = appName();
      const store = await open({ schema, applicationName: name });
      await store.append('first', newEvents(1), 'no_stream');

      const held = await holdInserts(schema);
      const doomedEvents = newEvents(2);
      // Its outcome is taken now: it fails while the test is still arranging the failure.
      const doomed = store.append('doomed', doomedEvents, 'no_stream').catch((error: unknown) => error);
      const [stuck] = await eventuallyValue(async () => {
        const waiting = await waitingOnLock(name);
        return waiting.length === 1 ? waiting : undefined;
      });
      // Its process dies mid-transaction (as far as the server can tell): the server rolls it back.
      await admin.query('SELECT pg_terminate_backend($1)', [stuck!.pid]);
      expect(await doomed).toBeInstanceOf(EventStoreUnavailableError);
      await held.release();

      // The positions it had taken (2 and 3) go to the next append: no gap.
      expect(await store.append('next', newEvents(1), 'no_stream')).toEqual({ nextRevision: 0, position: 2 });
      // The caller could not know whether it committed; retrying the same append is always safe.
      expect(await store.append('doomed', doomedEvents, 'no_stream')).toEqual({ nextRevision: 1, position: 4 });
      expect(await store.append('doomed', doomedEvents, 'no_stream')).toEqual({ nextRevision: 1, position: 4 });
      expect((await store.readAll()).map((e) => [e.stream, e.position])).toEqual([
        ['first', 1],
        ['next', 2],
        ['doomed', 3],
        ['doomed', 4],
      ]);
    });
  });

  describe('subscriptions', () => {
    it('hears another process\'s commit through LISTEN, without waiting for the poll', async () => {
      const schema = freshSchema();
      const [writer, reader] = await Promise.all([open({ schema }), open({ schema, pollIntervalMs: 60_000 })]);
      const { delivered, subscription } = collect(reader);
      await sleep(200); // caught up (nothing) and asleep until woken
      await writer.append('announced', newEvents(1), 'no_stream');
      await waitFor(() => delivered.length === 1, 10_000); // far sooner than the 60 s poll
      await subscription.close();
    });

    it('still delivers a commit whose notification never came, by polling', async () => {
      const schema = freshSchema();
      const reader = await open({ schema, pollIntervalMs: 100 });
      const { delivered, subscription } = collect(reader);
      await sleep(200);
      // Another writer that follows the protocol (head row lock, next position) but never notifies.
      const [event] = newEvents(1);
      await admin.query('BEGIN');
      const { rows } = await admin.query<{ position: string }>(`SELECT position FROM "${schema}".head FOR UPDATE`);
      const position = Number(rows[0]!.position) + 1;
      await admin.query(`INSERT INTO "${schema}".events VALUES ($1, 'quiet', 0, $2, $3, $4, $5)`, [
        position,
        event!.id,
        event!.type,
        JSON.stringify(event!.data),
        JSON.stringify(event!.metadata),
      ]);
      await admin.query(`UPDATE "${schema}".head SET position = $1`, [position]);
      await admin.query('COMMIT');
      await waitFor(() => delivered.length === 1, 10_000);
      expect(delivered[0]).toMatchObject({ stream: 'quiet', position: 1, id: event!.id, data: event!.data });
      await subscription.close();
    });

    it('reconnects a listener whose connection was killed, catches up on what it missed, and is live again', async () => {
      const schema = freshSchema();
      const name = appName();
      // A poll this slow never fires during the test: delivery has to come from the listener.
      const [writer, reader] = await Promise.all([open({ schema }), open({ schema, applicationName: name, pollIntervalMs: 60_000 })]);
      const { delivered, subscription } = collect(reader);
      const listenerOf = async () => (await backendsOf(`${name} listener`)).find((b) => b.query.startsWith('LISTEN'));
      const killed = await eventuallyValue(listenerOf);

      await admin.query('SELECT pg_terminate_backend($1)', [killed.pid]);
      await writer.append('while-away', newEvents(1), 'no_stream'); // announced to nobody of the reader's
      const back = await eventuallyValue(async () => {
        const listener = await listenerOf();
        return listener !== undefined && listener.pid !== killed.pid ? listener : undefined;
      });
      expect(back.pid).not.toBe(killed.pid);
      await waitFor(() => delivered.length === 1, 10_000);

      await writer.append('after', newEvents(1), 'no_stream');
      await waitFor(() => delivered.length === 2, 10_000);
      expect(delivered.map((e) => [e.stream, e.position])).toEqual([
        ['while-away', 1],
        ['after', 2],
      ]);
      await subscription.close();
    });

    it('lets a handler append, and lands those appends when the store closes', async () => {
      const schema = freshSchema();
      const store = await openPostgresEventStore(POSTGRES_URL, { schema });
      let reactions = 0;
      store.subscribeToAll({}, async (batch) => {
        for (const event of batch) {
          if (event.stream !== 'cause') continue;
          reactions += 1;
          await sleep(20);
          await store.append('effect', newEvents(1), 'any');
        }
      });
      await store.append('cause', newEvents(3), 'no_stream');
      await waitFor(() => reactions >= 1);
      await store.close();
      const reopened = await open({ schema });
      expect(await reopened.readStream('effect')).toHaveLength(3);
    });
  });

  describe('availability and lifecycle', () => {
    it('refuses to open when the server cannot be reached, naming the host but never the password', async () => {
      const port = await unusedPort();
      const error = await openPostgresEventStore(`postgres://planline:s3cret-pw@127.0.0.1:${port}/events`, { schema: freshSchema() }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(EventStoreUnavailableError);
      expect((error as Error).message).toContain(`127.0.0.1:${port}/events`);
      expect((error as Error).message).toMatch(/ECONNREFUSED/);
      expect((error as Error).message).not.toContain('s3cret-pw');
    });

    it('fails appends, reads and subscriptions as unavailable while the server is unreachable, and recovers when it is back', async () => {
      const proxy = await startProxy(new URL(POSTGRES_URL));
      try {
        const url = `postgres://postgres:s3cret-pw@127.0.0.1:${proxy.port}${new URL(POSTGRES_URL).pathname}`;
        const store = await open({ url, pollIntervalMs: 50, connectTimeoutMs: 1_000 });
        await store.append('before', newEvents(1), 'no_stream');
        const { subscription } = collect(store);

        await proxy.stop(); // every connection cut, and new ones refused
        const failures = await Promise.allSettled([
          store.append('during', newEvents(1), 'no_stream'),
          store.readAll(),
          store.readStream('before'),
          store.headPosition(),
          subscription.done,
        ]);
        for (const failure of failures) {
          expect(failure.status).toBe('rejected');
          const reason = (failure as PromiseRejectedResult).reason as Error;
          expect(reason).toBeInstanceOf(EventStoreUnavailableError);
          expect(reason.message).toContain(`127.0.0.1:${proxy.port}`);
          expect(reason.message).not.toContain('s3cret-pw');
        }

        await proxy.start();
        expect(await store.append('after', newEvents(1), 'no_stream')).toEqual({ nextRevision: 0, position: 2 });
        const { delivered, subscription: again } = collect(store);
        await waitFor(() => delivered.length === 2, 10_000);
        expect(delivered.map((e) => e.stream)).toEqual(['before', 'after']);
        await again.close();
      } finally {
        await proxy.stop();
      }
    });

    it('carries on when the server ends all of its sessions', async () => {
      const name = appName();
      const store = await open({ applicationName: name, pollIntervalMs: 50 });
      const { delivered, subscription } = collect(store);
      await store.append('before', newEvents(1), 'no_stream');
      await waitFor(() => delivered.length === 1);
      await eventually(async () => (await backendsOf(name)).length >= 3); // reads, appends, listener

      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE starts_with(application_name, $1)', [name]);
      expect(await store.append('after', newEvents(1), 'no_stream')).toEqual({ nextRevision: 0, position: 2 });
      expect((await store.readAll()).map((e) => e.stream)).toEqual(['before', 'after']);
      await waitFor(() => delivered.length === 2, 10_000);
      await subscription.close();
    });

    it('lands the appends in flight before close() resolves, then ends every connection and refuses more', async () => {
      const name = appName();
      const schema = freshSchema();
      const store = await openPostgresEventStore(POSTGRES_URL, { schema, applicationName: name });
      store.subscribeToAll({}, () => undefined);
      await store.readAll();
      await eventually(async () => (await backendsOf(name)).length >= 2);
      const pending = Array.from({ length: 50 }, (_, i) => store.append(`closing-${i}`, newEvents(2), 'no_stream'));

      await store.close();
      const results = await Promise.all(pending);
      expect(results.map((r) => r.position).sort((a, b) => a - b)).toEqual(range(1, 51).map((i) => 2 * i));
      await eventually(async () => (await backendsOf(name)).length === 0);
      await expect(store.append('s', newEvents(1), 'any')).rejects.toBeInstanceOf(EventStoreUnavailableError);
      await expect(store.readAll()).rejects.toBeInstanceOf(EventStoreUnavailableError);
      await expect(store.headPosition()).rejects.toBeInstanceOf(EventStoreUnavailableError);
      await store.close(); // twice is fine
      expect(await (await open({ schema })).headPosition()).toBe(100);
    });
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await sleep(5);
  }
}

async function eventually(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  await eventuallyValue(async () => ((await condition()) ? true : undefined), timeoutMs);
}

async function eventuallyValue<T>(probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await sleep(20);
  }
}

async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A TCP relay to the server that can be stopped (cutting every connection) and started again on the same port. */
async function startProxy(upstream: URL): Promise<{ port: number; stop(): Promise<void>; start(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let port = 0;
  const listen = async () => {
    const next = createServer((client) => {
      const target = createConnection({ host: upstream.hostname, port: Number(upstream.port || 5432) });
      for (const socket of [client, target]) {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          target.destroy();
        });
      }
      client.pipe(target).pipe(client);
    });
    await new Promise<void>((resolve) => next.listen(port, '127.0.0.1', resolve));
    port = (next.address() as { port: number }).port;
    server = next;
  };
  await listen();
  return {
    get port() {
      return port;
    },
    async stop() {
      const closing = server;
      server = null;
      for (const socket of sockets) socket.destroy();
      if (closing !== null) await new Promise<void>((resolve) => closing.close(() => resolve()));
    },
    start: listen,
  };
}
