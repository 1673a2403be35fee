// Appends to the PostgreSQL event store: GROUP COMMIT. Appends made while a commit is under way are
// written together in the next transaction (one WAL flush), like the SQLite adapter. One transaction:
//
//   BEGIN; SELECT position FROM head FOR UPDATE; look up the group's stream heads and event ids
//   (decide every append in memory: postgres-group.ts)
//   INSERT every accepted event at head+1, head+2, …; UPDATE head; pg_notify(head); COMMIT
//
// Why positions are gap-free and in commit order, with any number of processes: a position is taken
// only while holding the head row's lock, and that lock is held until COMMIT. The next transaction
// (of any process) can take positions only after this one has committed or rolled back, so positions
// become visible in order and a reader that saw position N will never later find a smaller one
// appear. A rollback leaves the head row as it was, so its positions are taken by the next append.
// (A sequence would hand out numbers before commit, visible out of order and lost on rollback.)
//
// The statements of each half run pipelined on one connection: two round trips per group, whatever
// its size, and the lock is held for about one of them.
import type { Pool, PoolClient } from 'pg';
import type { PreparedPart } from './postgres-parts.js';
import { isConnectionFailure, unavailable } from './postgres-connection.js';
import { decideAppend, emptyRows, eventKey, NO_EVENTS, type AppendOutcome, type GroupState } from './postgres-group.js';
import type { Tables } from './postgres-schema.js';
import type { MultiAppendResult, Position } from './store.js';

/** What group commit has done so far: how many transactions carried how many appends. */
export interface CommitStats {
  transactions: number;
  /** Appends handled in those transactions (written, idempotent replays and rejected ones). */
  appends: number;
  /** Events written. */
  events: number;
  /** Most appends handled by one transaction. */
  largestGroup: number;
}

export interface GroupCommitter {
  append(parts: PreparedPart[]): Promise<MultiAppendResult>;
  /** Resolves once every append handed in so far has committed or failed. */
  whenIdle(): Promise<void>;
  stats(): CommitStats;
}

export interface GroupCommitterOptions {
  /** A pool of its own (one connection, pipelined): nothing else queues behind a commit. */
  pool: Pool;
  tables: Tables;
  /** Where the server is, for messages. */
  target: string;
  /** How long an append waits for another process's transaction to release the head row. */
  lockTimeoutMs: number;
  /** Called after each commit that wrote events, with the new head position. */
  onCommitted(head: Position): void;
}

// A group stays well inside what one statement parameter can carry (1 GB), and one huge append does
// not hold the lock for the appends queued behind it longer than it must.
const MAX_GROUP_APPENDS = 1_000;
const MAX_GROUP_BYTES = 16 * 1024 * 1024;

interface QueuedAppend {
  parts: PreparedPart[];
  bytes: number;
  resolve(result: MultiAppendResult): void;
  reject(error: Error): void;
}

/** Lookup rows: [kind 0, stream, null, head revision, null] or [kind 1, stream, id, revision, position]. */
type LookupRow = [kind: number, stream: string, id: string | null, revision: string | null, position: string | null];

export function groupCommitter(options: GroupCommitterOptions): GroupCommitter {
  const { pool, tables: t, target } = options;
  const sql = {
    // synchronous_commit is forced on: an acknowledged append is flushed to the WAL, whatever the
    // server's or role's default. idle_in_transaction_session_timeout: a process that stops in the
    // middle (SIGSTOP, a hung event loop) cannot hold every writer's lock for long.
    begin:
      `BEGIN; SET LOCAL synchronous_commit TO on; SET LOCAL lock_timeout TO ${Math.trunc(options.lockTimeoutMs)}; ` +
      `SET LOCAL idle_in_transaction_session_timeout TO ${Math.max(Math.trunc(options.lockTimeoutMs), 1_000)}`,
    lockHead: `SELECT position FROM ${t.head} FOR UPDATE`,
    // After the lock: this statement's snapshot sees every commit of every writer before ours.
    lookup: `
      SELECT 0, s.stream, NULL::text,
             (SELECT e.revision FROM ${t.events} e WHERE e.stream = s.stream ORDER BY e.revision DESC LIMIT 1), NULL::bigint
        FROM unnest($1::text[]) AS s(stream)
      UNION ALL
      SELECT 1, e.stream, e.id::text, e.revision, e.position
        FROM unnest($2::text[], $3::uuid[]) AS k(stream, id)
        JOIN ${t.events} e ON e.stream = k.stream AND e.id = k.id`,
    insert: `
      INSERT INTO ${t.events} (position, stream, revision, id, type, data, metadata)
      SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], $5::text[], $6::json[], $7::json[])`,
    advance: `UPDATE ${t.head} SET position = $1`,
    notify: 'SELECT pg_notify($1, $2)',
  };

  let queue: QueuedAppend[] = [];
  let running = false;
  const idleWaiters: (() => void)[] = [];
  const stats: CommitStats = { transactions: 0, appends: 0, events: 0, largestGroup: 0 };

  function append(parts: PreparedPart[]): Promise<MultiAppendResult> {
    let bytes = 0;
    for (const part of parts) for (let i = 0; i < part.ids.length; i++) bytes += part.data[i]!.length + part.metadata[i]!.length + 100;
    return new Promise<MultiAppendResult>((resolve, reject) => {
      queue.push({ parts, bytes, resolve, reject });
      if (!running) {
        running = true;
        // After the rest of this turn: every append made meanwhile joins the first group.
        setImmediate(() => void run());
      }
    });
  }

  async function run(): Promise<void> {
    while (queue.length > 0) await writeGroup(takeGroup());
    running = false;
    for (const wake of idleWaiters.splice(0)) wake();
  }

  function takeGroup(): QueuedAppend[] {
    let bytes = 0;
    let count = 0;
    while (count < queue.length && count < MAX_GROUP_APPENDS) {
      bytes += queue[count]!.bytes;
      if (count > 0 && bytes > MAX_GROUP_BYTES) break;
      count += 1;
    }
    const group = queue.slice(0, count);
    queue = queue.slice(count);
    return group;
  }

  /** Settles every append of the group; never throws. */
  async function writeGroup(group: QueuedAppend[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let client: PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        const failure = unavailable(target, error, 'connecting');
        for (const append of group) append.reject(failure);
        return;
      }
      const progress = { commitSent: false };
      // A checked-out client has no 'error' listener of the pool's: a connection lost now would be an
      // unhandled 'error' event. The query in flight fails with it too, and that is handled below.
      client.on('error', ignore);
      try {
        const { outcomes, head } = await commitGroup(client, group, progress);
        client.off('error', ignore);
        client.release();
        record(outcomes);
        group.forEach((append, i) => {
          const outcome = outcomes[i]!;
          if ('error' in outcome) append.reject(outcome.error);
          else append.resolve(outcome.ok);
        });
        if (head !== undefined) options.onCommitted(head);
        return;
      } catch (error) {
        // The connection may be broken or inside a failed transaction: drop it, the server rolls back.
        client.off('error', ignore);
        client.release(true);
        // A pooled connection the server had already closed fails on first use. Nothing was committed
        // before COMMIT was sent, so that case is safe to try once more on a fresh connection.
        if (attempt === 1 && !progress.commitSent && isConnectionFailure(error)) continue;
        // After COMMIT was sent the outcome is unknown; a retry with the same ids is answered with the
        // original result if it did commit, which is what the idempotent-retry contract is for.
        const failure = unavailable(target, error, 'appending');
        for (const append of group) append.reject(failure);
        return;
      }
    }
  }

  async function commitGroup(
    client: PoolClient,
    group: QueuedAppend[],
    progress: { commitSent: boolean },
  ): Promise<{ outcomes: AppendOutcome[]; head: Position | undefined }> {
    const streams = new Set<string>();
    const keyStreams: string[] = [];
    const keyIds: string[] = [];
    for (const { parts } of group) {
      for (const part of parts) {
        streams.add(part.stream);
        for (const id of part.ids) {
          keyStreams.push(part.stream);
          keyIds.push(id);
        }
      }
    }
    const [, locked, found] = await Promise.all([
      client.query(sql.begin),
      client.query<[string]>({ name: 'planline_lock_head', text: sql.lockHead, rowMode: 'array' }),
      client.query<LookupRow>({ name: 'planline_lookup', text: sql.lookup, values: [[...streams], keyStreams, keyIds], rowMode: 'array' }),
    ]);
    const headRow = locked.rows[0];
    if (headRow === undefined) throw new Error(`${t.head} has no row`);
    const state: GroupState = { heads: new Map(), written: new Map(), next: Number(headRow[0]) + 1 };
    for (const [kind, stream, id, revision, position] of found.rows) {
      if (kind === 0) state.heads.set(stream, revision === null ? NO_EVENTS : Number(revision));
      else state.written.set(eventKey(stream, id!), { revision: Number(revision), position: Number(position) });
    }

    const rows = emptyRows();
    const outcomes = group.map(({ parts }) => decideAppend(parts, state, rows));
    if (rows.positions.length === 0) {
      await client.query('ROLLBACK'); // conflicts and replays only: nothing to write, release the lock
      return { outcomes, head: undefined };
    }
    const head = state.next - 1;
    progress.commitSent = true;
    const [, , , committed] = await Promise.all([
      client.query({
        name: 'planline_insert',
        text: sql.insert,
        values: [rows.positions, rows.streams, rows.revisions, rows.ids, rows.types, rows.data, rows.metadata],
      }),
      client.query({ name: 'planline_advance', text: sql.advance, values: [head] }),
      // Delivered to listeners only if the transaction commits, and after it has.
      client.query({ name: 'planline_notify', text: sql.notify, values: [t.channel, String(head)] }),
      client.query('COMMIT'),
    ]);
    // COMMIT of a transaction that failed answers ROLLBACK, not an error: never take that as success.
    if (committed.command !== 'COMMIT') throw new Error(`COMMIT answered ${committed.command}`);
    return { outcomes, head };
  }

  function record(outcomes: AppendOutcome[]): void {
    stats.transactions += 1;
    stats.appends += outcomes.length;
    stats.largestGroup = Math.max(stats.largestGroup, outcomes.length);
    for (const outcome of outcomes) if ('ok' in outcome) stats.events += outcome.written;
  }

  return {
    append,
    whenIdle: () => (running ? new Promise<void>((resolve) => idleWaiters.push(resolve)) : Promise.resolve()),
    stats: () => ({ ...stats }),
  };
}

function ignore(): void {}
