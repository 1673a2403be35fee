// Ordered import into the SQLite store: chunks of events of any streams, each at its revision, written
// in the order given as one commit each; what is already there is recognised, anything else conflicts,
// and a session never writes a chunk after one that failed.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ImportAbandonedError, ImportConflictError, type ImportedStoreEvent } from '../../src/events/ordered-import.js';
import { openSqliteEventStore, workerThreadOf, type SqliteEventStore } from '../../src/events/sqlite-store.js';
import { EventStoreUnavailableError, type StoredEvent } from '../../src/events/store.js';
import { newEvents } from './event-store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'planline-sqlite-import-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const opened: SqliteEventStore[] = [];
const open = () => {
  const store = openSqliteEventStore(join(dir, `${randomUUID()}.db`));
  opened.push(store);
  return store;
};
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

/** An export's worth of events: `streams` streams of `each` events, interleaved round-robin. */
function interleaved(streams: number, each: number): ImportedStoreEvent[] {
  const perStream = Array.from({ length: streams }, (_, s) => newEvents(each).map((e, revision) => ({ ...e, stream: `stream-${s}`, revision })));
  return Array.from({ length: streams * each }, (_, i) => perStream[i % streams]![Math.floor(i / streams)]!);
}

async function wholeLog(store: SqliteEventStore): Promise<StoredEvent[]> {
  return store.readAll({ maxCount: 100_000 });
}
const shape = ({ stream, revision, id, type, data, metadata }: ImportedStoreEvent) => ({ stream, revision, id, type, data, metadata });

describe('sqlite ordered import', () => {
  it('writes interleaved streams in the order given, one commit per chunk, and a second import writes nothing', async () => {
    const store = open();
    const events = interleaved(7, 30);
    const session = store.openImport();
    const before = store.commitStats().transactions;
    const results = await Promise.all([session.write(events.slice(0, 100)), session.write(events.slice(100))]);
    expect(results).toEqual([
      { imported: 100, alreadyPresent: 0, position: 100 },
      { imported: 110, alreadyPresent: 0, position: 210 },
    ]);
    expect(store.commitStats().transactions - before).toBeLessThanOrEqual(2);
    const log = await wholeLog(store);
    expect(log.map(shape)).toEqual(events.map(shape));
    expect(log.map((e) => e.position)).toEqual(events.map((_, i) => i + 1));

    const again = await store.openImport().write(events);
    expect(again).toEqual({ imported: 0, alreadyPresent: 210, position: 0 });
    expect(await wholeLog(store)).toEqual(log);
    // Streams written by an import take ordinary appends afterwards at the right revision.
    expect((await store.append('stream-0', newEvents(1), 29)).nextRevision).toBe(30);
  });

  it('finishes an interrupted import: the events already there are counted, the rest written after them', async () => {
    const store = open();
    const events = interleaved(3, 10);
    await store.openImport().write(events.slice(0, 13));
    expect(await store.openImport().write(events)).toEqual({ imported: 17, alreadyPresent: 13, position: 30 });
    expect((await wholeLog(store)).map(shape)).toEqual(events.map(shape));
  });

  it('refuses a chunk that meets different events, naming the event, and writes none of it', async () => {
    const store = open();
    await store.append('stream-1', newEvents(2), 'no_stream'); // another history under the same name
    const events = interleaved(3, 4);
    const error = await store
      .openImport()
      .write(events)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImportConflictError);
    expect(error).toMatchObject({ stream: 'stream-1', expected: 'no_stream', actual: 1, index: 1 });
    expect(await store.headPosition()).toBe(2);
  });

  it('refuses an event whose revision would leave a gap, and an id the stream already has elsewhere', async () => {
    const store = open();
    const [a, b, c] = newEvents(3);
    await store.openImport().write([{ ...a!, stream: 's', revision: 0 }]);
    await expect(store.openImport().write([{ ...b!, stream: 's', revision: 2 }])).rejects.toMatchObject({ stream: 's', expected: 1, actual: 0, index: 0 });
    await expect(
      store.openImport().write([
        { ...c!, stream: 's', revision: 1 },
        { ...a!, stream: 's', revision: 2 },
      ]),
    ).rejects.toBeInstanceOf(ImportConflictError);
    expect((await store.readStream('s')).map((e) => e.id)).toEqual([a!.id]);
  });

  it('writes no chunk of a session after one that failed, so the log holds a prefix of the import', async () => {
    const store = open();
    const events = interleaved(2, 6);
    await store.append('stream-1', newEvents(1), 'no_stream'); // stream-1 revision 0 conflicts
    const session = store.openImport();
    const outcomes = await Promise.allSettled([session.write(events.slice(0, 1)), session.write(events.slice(1, 6)), session.write(events.slice(6))]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(ImportConflictError);
    expect((outcomes[2] as PromiseRejectedResult).reason).toBeInstanceOf(ImportAbandonedError);
    expect((await wholeLog(store)).map((e) => e.stream)).toEqual(['stream-1', 'stream-0']);
  });

  it('writes no chunk of a session after one that went down with its worker', async () => {
    const store = open();
    const events = interleaved(2, 6);
    const session = store.openImport();
    await session.write(events.slice(0, 2));
    const second = session.write(events.slice(2, 6));
    void workerThreadOf(store)!.terminate();
    await expect(second).rejects.toBeInstanceOf(EventStoreUnavailableError);
    // Whether or not chunk 1 was written, the new worker cannot know: chunk 2 of the session is refused.
    await expect(session.write(events.slice(6))).rejects.toBeInstanceOf(ImportAbandonedError);
    // A fresh session (run the import again) finishes it.
    const rerun = await store.openImport().write(events);
    expect(rerun.imported + rerun.alreadyPresent).toBe(12);
    expect((await wholeLog(store)).map(shape)).toEqual(events.map(shape));
  });

  it('refuses malformed events before sending anything', async () => {
    const store = open();
    const [event] = newEvents(1);
    await expect(store.openImport().write([])).rejects.toThrow(RangeError);
    await expect(store.openImport().write([{ ...event!, stream: '', revision: 0 }])).rejects.toThrow(/stream name/);
    await expect(store.openImport().write([{ ...event!, stream: 's', revision: -1 }])).rejects.toThrow(/revision/);
    await expect(store.openImport().write([{ ...event!, id: 'nope', stream: 's', revision: 0 }])).rejects.toThrow(/UUID/);
    expect(await store.headPosition()).toBe(0);
  });
});
