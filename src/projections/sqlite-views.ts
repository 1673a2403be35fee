// Embedded read models that survive a restart: the ViewStore port on a SQLite file beside the event
// log. The read models and their checkpoints commit in one transaction, so after a restart (or a kill)
// the projector resumes from the checkpoint and projects only what is new: start-up time grows with
// what happened while the process was down, not with the whole log. Documents read are kept in memory
// as deep-frozen objects, so hot reads cost what the in-memory store's do.
//
// The file is derived data: it runs with synchronous=NORMAL (a power cut may lose the last commits, and
// their checkpoint with them, so the projector simply projects those events again), and it records the
// id of the log it was built from: pointed at another log it starts empty instead of lying.
//
// Several processes may share the file (like Redis): leases live in it, and a write by another
// connection (seen through PRAGMA data_version) drops this process's cached documents.
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { Position } from '../events/store.js';
import { deepFreeze } from './freeze.js';
import { LeaseLostError, validateViewOp, type Doc, type FeedEntry, type IndexMember, type Lease, type RangeOptions, type ViewOp, type ViewStore } from './views.js';

export interface SqliteViewStoreOptions {
  /** Id of the event log these read models are built from; a file built from another log is emptied. */
  logId?: string;
  /** Documents kept in memory (default 100,000). */
  maxCachedDocs?: number;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS docs (
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (collection, id)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS members (
    idx   TEXT NOT NULL,
    id    TEXT NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (idx, id)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS members_by_score ON members (idx, score, id);
  CREATE TABLE IF NOT EXISTS checkpoints (
    projection TEXT PRIMARY KEY,
    position   INTEGER,
    version    INTEGER
  );
  CREATE TABLE IF NOT EXISTS leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS feeds (
    feed  TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (feed, seq)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS feed_heads (
    feed TEXT PRIMARY KEY,
    last INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
`;

/** Upper bound of every string starting with a prefix, for range scans (`idx >= p AND idx < p + MAX`). */
const AFTER_PREFIX = '\u{10FFFF}';

export function openSqliteViewStore(path: string, options: SqliteViewStoreOptions = {}): ViewStore {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  // Commits only append to the WAL; copying it back into the file (a checkpoint: many page writes and
  // an fsync) runs on a thread of its own, so the event loop that serves requests never waits for it.
  db.pragma('wal_autocheckpoint = 0');
  const checkpointer = startCheckpointer(path);
  if (options.logId !== undefined) adoptLog(db, options.logId);

  const statements = {
    get: db.prepare<[string, string], string>('SELECT doc FROM docs WHERE collection = ? AND id = ?').pluck(),
    put: db.prepare<[string, string, string]>('INSERT INTO docs (collection, id, doc) VALUES (?, ?, ?) ON CONFLICT (collection, id) DO UPDATE SET doc = excluded.doc'),
    delete: db.prepare<[string, string]>('DELETE FROM docs WHERE collection = ? AND id = ?'),
    index: db.prepare<[string, string, number]>('INSERT INTO members (idx, id, score) VALUES (?, ?, ?) ON CONFLICT (idx, id) DO UPDATE SET score = excluded.score'),
    unindex: db.prepare<[string, string]>('DELETE FROM members WHERE idx = ? AND id = ?'),
    rangeAll: db.prepare<[string, number], [string, number]>('SELECT id, score FROM members WHERE idx = ? ORDER BY score DESC, id DESC LIMIT ?').raw(),
    rangeBelow: db.prepare<[string, number, number], [string, number]>('SELECT id, score FROM members WHERE idx = ? AND score < ? ORDER BY score DESC, id DESC LIMIT ?').raw(),
    count: db.prepare<[string], number>('SELECT count(*) FROM members WHERE idx = ?').pluck(),
    checkpoint: db.prepare<[string], { position: number | null; version: number | null }>('SELECT position, version FROM checkpoints WHERE projection = ?'),
    setPosition: db.prepare<[string, number]>('INSERT INTO checkpoints (projection, position) VALUES (?, ?) ON CONFLICT (projection) DO UPDATE SET position = excluded.position'),
    setVersion: db.prepare<[string, number]>('INSERT INTO checkpoints (projection, version) VALUES (?, ?) ON CONFLICT (projection) DO UPDATE SET version = excluded.version'),
    deleteCheckpoint: db.prepare<[string]>('DELETE FROM checkpoints WHERE projection = ?'),
    deleteCollection: db.prepare<[string]>('DELETE FROM docs WHERE collection = ?'),
    deleteIndexes: db.prepare<[string, string]>('DELETE FROM members WHERE idx >= ? AND idx < ?'),
    lease: db.prepare<[string], { owner: string; expires_at: number }>('SELECT owner, expires_at FROM leases WHERE name = ?'),
    takeLease: db.prepare<[{ name: string; owner: string; expires: number; now: number }]>(
      // Taking a free (or lapsed) lease and extending one's own are one statement: no race between them.
      'INSERT INTO leases (name, owner, expires_at) VALUES (@name, @owner, @expires) ON CONFLICT (name) DO UPDATE SET owner = @owner, expires_at = @expires WHERE leases.owner = @owner OR leases.expires_at <= @now',
    ),
    releaseLease: db.prepare<[string, string]>('DELETE FROM leases WHERE name = ? AND owner = ?'),
    dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(),
    append: db.prepare<[string, number, string]>('INSERT INTO feeds (feed, seq, entry) VALUES (?, ?, ?)'),
    // The newest offset ever appended, trimmed or not (what a Redis stream remembers as its last id).
    feedHead: db.prepare<[string], number>('SELECT last FROM feed_heads WHERE feed = ?').pluck(),
    setFeedHead: db.prepare<[string, number]>('INSERT INTO feed_heads (feed, last) VALUES (?, ?) ON CONFLICT (feed) DO UPDATE SET last = excluded.last'),
    trim: db.prepare<[string, number]>('DELETE FROM feeds WHERE feed = ? AND seq < ?'),
    readFeed: db.prepare<[string, number, number], [number, string]>('SELECT seq, entry FROM feeds WHERE feed = ? AND seq > ? ORDER BY seq LIMIT ?').raw(),
    feedBounds: db.prepare<[string], { first: number | null; last: number | null }>('SELECT min(seq) AS first, max(seq) AS last FROM feeds WHERE feed = ?'),
    deleteFeeds: db.prepare<[string, string]>('DELETE FROM feeds WHERE feed >= ? AND feed < ?'),
    deleteFeedHeads: db.prepare<[string, string]>('DELETE FROM feed_heads WHERE feed >= ? AND feed < ?'),
  };

  const cache = frozenDocCache(options.maxCachedDocs ?? 100_000);
  let seenDataVersion = statements.dataVersion.get() ?? 0;
  let closed = false;

  function assertOpen(): void {
    if (closed) throw new Error('sqlite view store is closed');
  }

  /** Another process committed since we last looked: what we cached may be stale. */
  function revalidate(): void {
    const version = statements.dataVersion.get() ?? 0;
    if (version !== seenDataVersion) {
      cache.clear();
      seenDataVersion = version;
    }
  }

  function read(collection: string, id: string): Doc | undefined {
    const key = keyOf(collection, id);
    const cached = cache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const text = statements.get.get(collection, id);
    const doc = text === undefined ? null : deepFreeze(JSON.parse(text) as Doc);
    cache.set(key, doc);
    return doc ?? undefined;
  }

  const commitTx = db.transaction((projection: string, ops: readonly ViewOp[], serialized: (string | undefined)[], checkpoint: Position, lease: Lease | undefined): boolean => {
    if (lease !== undefined) {
      const held = statements.lease.get(lease.name);
      if (held === undefined || held.owner !== lease.owner || held.expires_at <= Date.now()) throw new LeaseLostError(lease);
    }
    const current = statements.checkpoint.get(projection);
    // Equal counts as older: a commit replayed verbatim must not apply its ops a second time.
    if (current?.position != null && checkpoint <= current.position) return false;
    // Feed offsets must move each feed forward; checked before the first write (a throw rolls back anyway).
    const lastOf = new Map<string, number>();
    for (const op of ops) {
      if (op.op !== 'append') continue;
      const last = lastOf.get(op.feed) ?? statements.feedHead.get(op.feed) ?? 0;
      if (op.offset <= last) throw new RangeError(`feed ${op.feed}: offset ${op.offset} does not move the feed forward (its last offset is ${last})`);
      lastOf.set(op.feed, op.offset);
    }
    ops.forEach((op, i) => {
      switch (op.op) {
        case 'put':
          statements.put.run(op.collection, op.id, serialized[i] as string);
          return;
        case 'delete':
          statements.delete.run(op.collection, op.id);
          return;
        case 'index':
          statements.index.run(op.index, op.id, op.score);
          return;
        case 'unindex':
          statements.unindex.run(op.index, op.id);
          return;
        case 'append':
          statements.append.run(op.feed, op.offset, serialized[i] as string);
          return;
        case 'trim':
          statements.trim.run(op.feed, op.below);
          return;
      }
    });
    for (const [feed, last] of lastOf) statements.setFeedHead.run(feed, last);
    statements.setPosition.run(projection, checkpoint);
    return true;
  });

  return {
    async get(collection, id) {
      assertOpen();
      revalidate();
      return read(collection, id);
    },

    async getMany(collection, ids) {
      assertOpen();
      revalidate();
      return ids.map((id) => read(collection, id));
    },

    async range(index, options: RangeOptions) {
      assertOpen();
      if (options.limit <= 0) return [];
      const rows = options.below === undefined ? statements.rangeAll.all(index, options.limit) : statements.rangeBelow.all(index, options.below, options.limit);
      return rows.map(([id, score]): IndexMember => ({ id, score }));
    },

    async count(index) {
      assertOpen();
      return statements.count.get(index) ?? 0;
    },

    async readFeed(feed, options) {
      assertOpen();
      // One read transaction: the page and the bounds describe the same moment.
      return db.transaction(() => {
        const rows = options.limit > 0 ? statements.readFeed.all(feed, Math.max(0, options.after), options.limit) : [];
        const bounds = statements.feedBounds.get(feed);
        const entries = rows.map(([offset, entry]): FeedEntry => ({ offset, entry: deepFreeze(JSON.parse(entry) as Doc) }));
        return { entries, first: bounds?.first ?? undefined, last: bounds?.last ?? undefined };
      })();
    },

    async commit(projection, ops, checkpoint, lease) {
      assertOpen();
      revalidate();
      // Everything that can fail is checked before the transaction, so a refused commit changes nothing.
      const serialized = ops.map((op) => {
        validateViewOp(op);
        return op.op === 'put' ? JSON.stringify(op.doc) : op.op === 'append' ? JSON.stringify(op.entry) : undefined;
      });
      const applied = commitTx.immediate(projection, ops, serialized, checkpoint, lease);
      // Our own write moved data_version only for other connections; keep the cache in step with it.
      if (applied) {
        ops.forEach((op, i) => {
          if (op.op === 'put') cache.set(keyOf(op.collection, op.id), Object.isFrozen(op.doc) ? op.doc : deepFreeze(JSON.parse(serialized[i] as string) as Doc));
          else if (op.op === 'delete') cache.set(keyOf(op.collection, op.id), null);
        });
      }
    },

    async checkpoint(projection) {
      assertOpen();
      const row = statements.checkpoint.get(projection);
      return row === undefined ? undefined : { position: row.position ?? 0, version: row.version ?? 0 };
    },

    async setVersion(projection, version) {
      assertOpen();
      statements.setVersion.run(projection, version);
    },

    async reset(projection, collections, indexPrefixes, feedPrefixes = []) {
      assertOpen();
      db.transaction(() => {
        statements.deleteCheckpoint.run(projection);
        for (const collection of collections) statements.deleteCollection.run(collection);
        for (const prefix of indexPrefixes) statements.deleteIndexes.run(prefix, prefix + AFTER_PREFIX);
        for (const prefix of feedPrefixes) {
          statements.deleteFeeds.run(prefix, prefix + AFTER_PREFIX);
          statements.deleteFeedHeads.run(prefix, prefix + AFTER_PREFIX);
        }
      }).immediate();
      cache.clear();
    },

    async acquireLease(lease, ttlMs) {
      assertOpen();
      const now = Date.now();
      statements.takeLease.run({ name: lease.name, owner: lease.owner, expires: now + ttlMs, now });
      return statements.lease.get(lease.name)?.owner === lease.owner;
    },

    async releaseLease(lease) {
      assertOpen();
      statements.releaseLease.run(lease.name, lease.owner);
    },

    async ping() {
      return !closed && db.open;
    },

    async close() {
      if (closed) return;
      closed = true;
      cache.clear();
      await checkpointer.stop();
      db.close();
    },
  };
}

const CHECKPOINTER_FILE = new URL('./sqlite-views-checkpointer.mjs', import.meta.url);
const CHECKPOINT_INTERVAL_MS = 500;

/** The WAL checkpointer thread; stop() checkpoints once more and waits for it to end. */
function startCheckpointer(path: string): { stop(): Promise<void> } {
  // An in-memory database has no WAL to copy back; a test store on a missing worker file still works.
  if (path === ':memory:' || path === '' || !existsSync(CHECKPOINTER_FILE)) return { stop: async () => {} };
  const worker = new Worker(CHECKPOINTER_FILE, { workerData: { path, intervalMs: CHECKPOINT_INTERVAL_MS } });
  worker.unref(); // an idle store must not keep the process alive
  worker.on('error', () => {}); // a failed checkpoint leaves the WAL longer; the next open checkpoints it
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.postMessage('stop');
      }),
  };
}

/** Read models built from another log are worthless here: empty the file and remember the new log. */
function adoptLog(db: Database.Database, logId: string): void {
  db.transaction(() => {
    const recorded = db.prepare<[], string>(`SELECT value FROM meta WHERE key = 'log_id'`).pluck().get();
    if (recorded === logId) return;
    if (recorded !== undefined) {
      for (const table of ['docs', 'members', 'checkpoints', 'leases', 'feeds', 'feed_heads']) db.exec(`DELETE FROM ${table}`);
    }
    db.prepare(`INSERT INTO meta (key, value) VALUES ('log_id', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(logId);
  }).immediate();
}

const keyOf = (collection: string, id: string) => `${collection}\u0000${id}`;

/** Cached documents: frozen doc, or null for "known to be absent"; two generations, bounded. */
function frozenDocCache(maxDocs: number) {
  const generation = Math.max(1, Math.floor(maxDocs / 2));
  let young = new Map<string, Doc | null>();
  let old = new Map<string, Doc | null>();
  function set(key: string, doc: Doc | null): void {
    young.set(key, doc);
    if (young.size >= generation) {
      old = young;
      young = new Map();
    }
  }
  return {
    get(key: string): Doc | null | undefined {
      const doc = young.get(key);
      if (doc !== undefined) return doc;
      const older = old.get(key);
      if (older !== undefined) set(key, older);
      return older;
    },
    set,
    clear(): void {
      young = new Map();
      old = new Map();
    },
  };
}


