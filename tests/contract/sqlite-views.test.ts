// The SQLite read-model store (embedded read models that survive restarts) against the shared contract,
// plus what only it promises: data and checkpoints outlive the process, a file built from another log
// starts empty, and two processes sharing the file see each other's commits.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteViewStore } from '../../src/projections/sqlite-views.js';
import { viewStoreContract } from './view-store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'planline-sqlite-views-'));
let files = 0;
const freshFile = () => join(dir, `views-${files++}.db`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

viewStoreContract('sqlite', async () => openSqliteViewStore(freshFile()));

describe('sqlite view store: persistence', () => {
  it('keeps documents, indexes and checkpoints across a reopen', async () => {
    const file = freshFile();
    const first = openSqliteViewStore(file, { logId: 'log-1' });
    await first.setVersion('views', 3);
    await first.commit('views', [{ op: 'put', collection: 'plans', id: 'p1', doc: { goal: 'kept' } }, { op: 'index', index: 'plans:all', id: 'p1', score: 7 }], 42);
    await first.close();
    const second = openSqliteViewStore(file, { logId: 'log-1' });
    expect(await second.get('plans', 'p1')).toEqual({ goal: 'kept' });
    expect(await second.range('plans:all', { limit: 10 })).toEqual([{ id: 'p1', score: 7 }]);
    expect(await second.checkpoint('views')).toEqual({ position: 42, version: 3 });
    await second.close();
  });

  it('starts empty when opened for another log, so it never shows read models of a different history', async () => {
    const file = freshFile();
    const first = openSqliteViewStore(file, { logId: 'log-1' });
    await first.commit('views', [{ op: 'put', collection: 'plans', id: 'p1', doc: { goal: 'old' } }], 9);
    await first.close();
    const other = openSqliteViewStore(file, { logId: 'log-2' });
    expect(await other.get('plans', 'p1')).toBeUndefined();
    expect(await other.checkpoint('views')).toBeUndefined();
    await other.close();
  });

  it('two processes on one file: a commit by one is read by the other, and leases fence across them', async () => {
    const file = freshFile();
    const a = openSqliteViewStore(file);
    const b = openSqliteViewStore(file);
    await a.commit('views', [{ op: 'put', collection: 'plans', id: 'p1', doc: { v: 1 } }], 1);
    expect(await b.get('plans', 'p1')).toEqual({ v: 1 });
    await a.commit('views', [{ op: 'put', collection: 'plans', id: 'p1', doc: { v: 2 } }], 2);
    expect(await b.get('plans', 'p1')).toEqual({ v: 2 }); // b's cached copy was dropped
    expect(await a.acquireLease({ name: 'projection:views', owner: 'a' }, 10_000)).toBe(true);
    expect(await b.acquireLease({ name: 'projection:views', owner: 'b' }, 10_000)).toBe(false);
    await expect(b.commit('views', [], 3, { name: 'projection:views', owner: 'b' })).rejects.toThrow(/lease/);
    await a.close();
    await b.close();
  });
});
