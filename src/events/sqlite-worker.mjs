// The SQLite event store's worker thread: it owns the better-sqlite3 connection, so inserts, reads and
// above all the synchronous fsync of each group commit block this thread instead of the event loop that
// serves HTTP. Plain JavaScript on purpose: a worker_threads Worker needs a JS file, and this one runs
// as-is both from src/ (vitest runs the TypeScript sources) and from dist/ (`npm run build` copies it).
//
// Protocol (sqlite-protocol.ts declares the same shapes as types):
//   workerData:  { path, synchronous, busyTimeoutMs, headCacheSize, schema, logIdCandidate, fileMustExist }
//   → main:      { type: 'ready', logId, journalMode, synchronous }   once, after the connection opened
//   → main:      { type: 'startFailed', message, code? }              instead, when it cannot open; it ends
//   main →:      { type: 'requests', requests: [...] }                appends, imports, reads, head
//   → main:      { type: 'results', results: [...], stats?, committed?, head? }
//   main →:      { type: 'close' }    → main: { type: 'closed' }, then the thread ends
//
// Reads are answered as soon as their message arrives. Appends (and import chunks) wait for the next
// group commit: every one received since the last commit is written in ONE transaction (one sync), in
// the order received, each still checked exactly against its streams' revisions, including earlier
// appends of the same group. A result is posted only after that transaction committed, so the main
// thread acknowledges only durable appends; `wrote` marks results that wrote events and `head` is the
// last position the group wrote: the main thread hands those events to its subscribers directly.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/** Revision of a stream that has no events, internally; the port calls it 'no_stream'. */
const NO_EVENTS = -1;
const SYNCHRONOUS_LEVELS = ['off', 'normal', 'full', 'extra'];

const { path, synchronous, busyTimeoutMs, headCacheSize, schema, logIdCandidate, fileMustExist } = workerData;
const port = parentPort;
if (port === null) throw new Error('sqlite-worker.mjs must run as a worker thread');

const db = openDatabase();

function openDatabase() {
  let opened;
  try {
    // fileMustExist: a restarted worker whose file vanished must fail, not start an empty log in its place.
    opened = new Database(path, { fileMustExist: Boolean(fileMustExist) });
    opened.pragma('journal_mode = WAL');
    opened.pragma(`synchronous = ${String(synchronous).toUpperCase()}`);
    opened.pragma(`busy_timeout = ${Number(busyTimeoutMs)}`);
    // The main thread already created the schema in a file; a ':memory:' database exists only here.
    opened.exec(schema);
    opened.prepare(`INSERT OR IGNORE INTO meta (key, value) VALUES ('log_id', ?)`).run(logIdCandidate);
    return opened;
  } catch (error) {
    // Said in words: an error object thrown out of a worker reaches the main thread without its message.
    opened?.close();
    port.postMessage({ type: 'startFailed', ...unavailable(`cannot open ${path}`, error) });
    process.exit(1);
  }
}

const selectColumns = 'SELECT position, stream, revision, id, type, data, metadata FROM events';
const statements = {
  insert: db.prepare('INSERT INTO events (stream, revision, id, type, data, metadata) VALUES (?, ?, ?, ?, ?, ?)'),
  headRevision: db.prepare('SELECT max(revision) FROM events WHERE stream = ?').pluck(),
  revisionOfId: db.prepare('SELECT revision FROM events WHERE stream = ? AND id = ?').pluck(),
  idAtRevision: db.prepare('SELECT id FROM events WHERE stream = ? AND revision = ?').pluck(),
  runFrom: db.prepare('SELECT id, position FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?').raw(),
  forwards: db.prepare(`${selectColumns} WHERE stream = ? AND revision >= ? ORDER BY revision ASC LIMIT ?`).raw(),
  backwards: db.prepare(`${selectColumns} WHERE stream = ? AND revision <= ? ORDER BY revision DESC LIMIT ?`).raw(),
  allAfter: db.prepare(`${selectColumns} WHERE position > ? ORDER BY position LIMIT ?`).raw(),
  headPosition: db.prepare('SELECT max(position) FROM events').pluck(),
  // Changes whenever ANOTHER connection commits: the signal that our cached stream heads may be stale.
  dataVersion: db.prepare('PRAGMA data_version').pluck(),
};

port.postMessage({
  type: 'ready',
  logId: String(db.prepare(`SELECT value FROM meta WHERE key = 'log_id'`).pluck().get()),
  journalMode: String(db.pragma('journal_mode', { simple: true })),
  synchronous: SYNCHRONOUS_LEVELS[Number(db.pragma('synchronous', { simple: true }))] ?? 'unknown',
});

// Heads (last revision) of recently appended streams, as committed. Never holds a value from a group
// that has not committed: in-group heads live in a per-group overlay until the commit succeeds.
const headCache = new Map();
/** Per import session, the sequence number of the chunk it may write next (as committed). */
const importSessions = new Map();
let seenDataVersion = statements.dataVersion.get();
/** Appends received since the last group commit. */
let queue = [];
let flushScheduled = false;
const stats = { transactions: 0, appends: 0, events: 0, largestGroup: 0 };

function committedHead(stream) {
  const cached = headCache.get(stream);
  if (cached !== undefined) {
    // Re-insert so the Map's insertion order approximates recency for eviction.
    headCache.delete(stream);
    headCache.set(stream, cached);
    return cached;
  }
  const head = statements.headRevision.get(stream) ?? NO_EVENTS;
  rememberHead(stream, head);
  return head;
}

function rememberHead(stream, head) {
  headCache.delete(stream);
  headCache.set(stream, head);
  if (headCache.size > headCacheSize) {
    const oldest = headCache.keys().next();
    if (!oldest.done) headCache.delete(oldest.value);
  }
}

// Nested inside the group transaction this runs as a SAVEPOINT: if an insert fails, only this append's
// rows are rolled back, and because positions are INTEGER PRIMARY KEY (max + 1) the positions it would
// have taken are reused by the next append: no gaps. A multi-stream append is one savepoint too, so its
// parts are written all together, in one contiguous run of positions, or not at all.
const insertParts = db.transaction((parts, firstRevisions) => {
  const positions = new Array(parts.length);
  for (let p = 0; p < parts.length; p++) {
    const part = parts[p];
    let position = 0;
    for (let i = 0; i < part.ids.length; i++) {
      const info = statements.insert.run(part.stream, firstRevisions[p] + i, part.ids[i], part.types[i], part.data[i], part.metadata[i]);
      position = Number(info.lastInsertRowid);
    }
    positions[p] = position;
  }
  return positions;
});

/** Where a part was written before (a retry), or undefined; null when it overlaps another write. */
function earlierWrite(part) {
  const writtenAt = statements.revisionOfId.get(part.stream, part.ids[0]);
  if (writtenAt === undefined) return undefined;
  const run = statements.runFrom.all(part.stream, writtenAt, part.ids.length);
  const sameRun = run.length === part.ids.length && run.every(([runId], i) => runId === part.ids[i]);
  if (!sameRun || !expectationMet(part.expected, writtenAt - 1)) return null;
  return { nextRevision: writtenAt + part.ids.length - 1, position: run[run.length - 1][1] };
}

/**
 * The result of one append (one or more streams) within the group: `{ id, ok }` or `{ id, error }`;
 * `written` counts events. `ok` is `{ streams: [{ nextRevision, position }], position }`.
 */
function appendOne(append, groupHeads) {
  const { id, parts } = append;
  const headOf = (stream) => groupHeads.get(stream) ?? committedHead(stream);
  const conflict = (part) => {
    const actual = headOf(part.stream);
    return {
      result: { id, error: { kind: 'conflict', stream: part.stream, expected: part.expected, actual: actual === NO_EVENTS ? 'no_stream' : actual } },
      written: 0,
    };
  };

  // A retry of an append that was already written: same ids, same order, same place, in every part.
  // Answer with the original result and write nothing (EventStoreDB's idempotent write).
  const first = earlierWrite(parts[0]);
  if (first !== undefined) {
    if (first === null) return conflict(parts[0]);
    const streams = [first];
    for (let p = 1; p < parts.length; p++) {
      const earlier = earlierWrite(parts[p]);
      if (earlier === undefined || earlier === null) return conflict(parts[p]);
      streams.push(earlier);
    }
    return { result: { id, ok: { streams, position: Math.max(...streams.map((s) => s.position)) } }, written: 0 };
  }

  const firstRevisions = new Array(parts.length);
  for (let p = 0; p < parts.length; p++) {
    const current = headOf(parts[p].stream);
    if (!expectationMet(parts[p].expected, current)) return conflict(parts[p]);
    firstRevisions[p] = current + 1;
  }
  let positions;
  try {
    positions = insertParts(parts, firstRevisions);
  } catch (error) {
    // A later id of this append already exists in its stream (a partial overlap with an earlier
    // append): a conflict for this caller, not a failure of the group.
    if (error instanceof Database.SqliteError && error.code === 'SQLITE_CONSTRAINT_UNIQUE') {
      const overlapping = parts.find((part) => part.ids.some((eventId) => statements.revisionOfId.get(part.stream, eventId) !== undefined));
      return conflict(overlapping ?? parts[0]);
    }
    throw error;
  }
  let written = 0;
  const streams = parts.map((part, p) => {
    const nextRevision = firstRevisions[p] + part.ids.length - 1;
    groupHeads.set(part.stream, nextRevision);
    written += part.ids.length;
    return { nextRevision, position: positions[p] };
  });
  const position = positions[positions.length - 1];
  return { result: { id, ok: { streams, position }, wrote: true }, written, position };
}

/** Thrown inside an import chunk's savepoint to roll it back; carries the conflict to report. */
class ImportConflict extends Error {
  constructor(failure) {
    super('import conflict');
    this.failure = failure;
  }
}

// An import chunk: events of any streams in the order given, each at the revision it names. A new event
// must come right after its stream's head; one at or below the head must be the very event already
// there (same id at that revision: an earlier import), and is skipped. One savepoint, all or nothing.
const importEvents = db.transaction((request, groupHeads) => {
  const { streams, revisions, ids, types, data, metadata } = request;
  const chunkHeads = new Map(); // only reach groupHeads once the whole chunk is written
  let imported = 0;
  let present = 0;
  let position = 0;
  for (let i = 0; i < ids.length; i++) {
    const stream = streams[i];
    const revision = revisions[i];
    const head = chunkHeads.get(stream) ?? groupHeads.get(stream) ?? committedHead(stream);
    const conflict = () =>
      new ImportConflict({
        kind: 'conflict',
        stream,
        expected: revision === 0 ? 'no_stream' : revision - 1,
        actual: head === NO_EVENTS ? 'no_stream' : head,
        index: i,
      });
    if (revision === head + 1) {
      try {
        position = Number(statements.insert.run(stream, revision, ids[i], types[i], data[i], metadata[i]).lastInsertRowid);
      } catch (error) {
        // The id is already in the stream at another revision.
        if (error instanceof Database.SqliteError && error.code === 'SQLITE_CONSTRAINT_UNIQUE') throw conflict();
        throw error;
      }
      chunkHeads.set(stream, revision);
      imported += 1;
    } else if (revision <= head && statements.idAtRevision.get(stream, revision) === ids[i]) {
      present += 1;
    } else {
      throw conflict();
    }
  }
  for (const [stream, head] of chunkHeads) groupHeads.set(stream, head);
  return { imported, present, position };
});

// Chunks of one import session are written in sequence: a chunk whose predecessor was not written (it
// failed, or went down with an earlier worker) is refused, so the log holds a prefix of the import.
function importOne(request, groupHeads, groupSessions) {
  const { id, session, seq } = request;
  const next = groupSessions.get(session) ?? importSessions.get(session) ?? 0;
  if (seq !== next) {
    const message = `import chunk ${seq} not written: chunk ${next} of the import was not written before it`;
    return { result: { id, error: { kind: 'abandoned', message } }, written: 0 };
  }
  try {
    const ok = importEvents(request, groupHeads);
    groupSessions.set(session, seq + 1);
    return { result: { id, ok, wrote: ok.imported > 0 }, written: ok.imported, position: ok.position };
  } catch (error) {
    if (error instanceof ImportConflict) return { result: { id, error: error.failure }, written: 0 };
    throw error;
  }
}

const writeGroup = db.transaction((group, groupHeads, groupSessions) => {
  const version = statements.dataVersion.get();
  if (version !== seenDataVersion) {
    // Another process appended since our last look; its streams' heads may have moved.
    headCache.clear();
    seenDataVersion = version;
  }
  return group.map((request) => (request.op === 'import' ? importOne(request, groupHeads, groupSessions) : appendOne(request, groupHeads)));
});

function flush() {
  const group = queue;
  queue = [];
  flushScheduled = false;
  if (group.length === 0) return;
  const groupHeads = new Map();
  const groupSessions = new Map();
  let outcomes;
  try {
    // IMMEDIATE: take the write lock up front so a second process cannot slip in between our revision
    // checks and our inserts. Returns once committed, i.e. synced with synchronous=FULL.
    outcomes = writeGroup.immediate(group, groupHeads, groupSessions);
  } catch (error) {
    // Nothing of this group was written. A cold head cache is always correct; failures here are rare
    // (disk full, I/O, lock timeout).
    headCache.clear();
    const failure = unavailable('append failed', error);
    port.postMessage({ type: 'results', results: group.map(({ id }) => ({ id, error: failure })) });
    return;
  }
  for (const [stream, head] of groupHeads) rememberHead(stream, head);
  for (const [session, next] of groupSessions) importSessions.set(session, next);

  stats.transactions += 1;
  stats.appends += group.length;
  stats.largestGroup = Math.max(stats.largestGroup, group.length);
  const results = new Array(outcomes.length);
  let head = 0;
  for (let i = 0; i < outcomes.length; i++) {
    const outcome = outcomes[i];
    stats.events += outcome.written;
    if (outcome.written > 0 && outcome.position > head) head = outcome.position;
    results[i] = outcome.result;
  }
  // Idempotent replays and conflicts wrote nothing: a group of only those commits nothing to announce.
  if (head > 0) port.postMessage({ type: 'results', results, stats, committed: true, head });
  else port.postMessage({ type: 'results', results, stats });
}

function read(request) {
  try {
    switch (request.op) {
      case 'readStream': {
        const statement = request.forwards ? statements.forwards : statements.backwards;
        return { id: request.id, ok: toJson(statement.all(request.stream, request.from, request.limit)) };
      }
      case 'readAll':
        return { id: request.id, ok: toJson(statements.allAfter.all(request.after, request.limit)) };
      case 'head':
        return { id: request.id, ok: statements.headPosition.get() ?? 0 };
      default:
        return { id: request.id, error: { kind: 'unavailable', message: `unknown request ${String(request.op)}` } };
    }
  } catch (error) {
    return { id: request.id, error: unavailable('read failed', error) };
  }
}

/**
 * Rows as the JSON text of a StoredEvent[]: data and metadata are stored as JSON already, so they are
 * spliced in as they are. The main thread then pays for one string copy and one JSON.parse per batch.
 */
function toJson(rows) {
  let json = '[';
  for (let i = 0; i < rows.length; i++) {
    const [position, stream, revision, id, type, data, metadata] = rows[i];
    if (i > 0) json += ',';
    json += `{"position":${position},"stream":${JSON.stringify(stream)},"revision":${revision},"id":${JSON.stringify(id)},"type":${JSON.stringify(type)},"data":${data},"metadata":${metadata}}`;
  }
  return json + ']';
}

function expectationMet(expected, current) {
  switch (expected) {
    case 'any':
      return true;
    case 'no_stream':
      return current === NO_EVENTS;
    case 'stream_exists':
      return current !== NO_EVENTS;
    default:
      return expected === current;
  }
}

function unavailable(what, error) {
  return {
    kind: 'unavailable',
    message: `${what}: ${error instanceof Error ? error.message : String(error)}`,
    code: typeof error?.code === 'string' ? error.code : undefined,
  };
}

port.on('message', (message) => {
  if (message.type === 'close') {
    flush(); // the main thread waits for its appends before closing; this is only a safety net
    db.close();
    port.postMessage({ type: 'closed' });
    port.close(); // nothing else keeps this thread alive: it ends
    return;
  }
  const replies = [];
  for (const request of message.requests) {
    if (request.op === 'append' || request.op === 'import') queue.push(request);
    else replies.push(read(request));
  }
  if (replies.length > 0) port.postMessage({ type: 'results', results: replies });
  if (queue.length > 0 && !flushScheduled) {
    // After every message already waiting has been received: that is what makes the group.
    flushScheduled = true;
    setImmediate(flush);
  }
});
