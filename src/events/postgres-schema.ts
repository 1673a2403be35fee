// The PostgreSQL event store's tables, created on start. Several processes may start at once against a
// new database: concurrent CREATE ... IF NOT EXISTS can still fail on the catalog's unique indexes, so
// the DDL runs in one transaction under an advisory lock named after the schema.
import { createHash } from 'node:crypto';
import type { PoolClient } from 'pg';

export const DEFAULT_SCHEMA = 'planline';
/** The on-disk format this code reads and writes; a store written by another format is refused. */
const SCHEMA_VERSION = '1';

/**
 * Lowercase, unquoted-identifier safe, short enough that `<schema>_appended` stays within PostgreSQL's
 * 63-byte identifier limit (it names the NOTIFY channel).
 */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,47}$/;

export function isValidSchemaName(name: string): boolean {
  return SCHEMA_NAME.test(name);
}

/** Qualified, quoted names of one store's tables, and its NOTIFY channel. */
export interface Tables {
  schema: string;
  events: string;
  head: string;
  meta: string;
  /** Channel name as pg_notify() takes it (a plain string). */
  channel: string;
  /** The same channel as LISTEN takes it (an identifier). */
  channelIdentifier: string;
}

export function tablesOf(schema: string): Tables {
  if (!isValidSchemaName(schema)) {
    throw new TypeError(`schema must match ${SCHEMA_NAME.source} (lowercase letters, digits, _), got '${schema}'`);
  }
  const q = `"${schema}"`;
  const channel = `${schema}_appended`;
  return { schema, events: `${q}.events`, head: `${q}.head`, meta: `${q}.meta`, channel, channelIdentifier: `"${channel}"` };
}

function ddl(t: Tables): string {
  return `
    CREATE SCHEMA IF NOT EXISTS "${t.schema}";
    CREATE TABLE IF NOT EXISTS ${t.events} (
      position bigint PRIMARY KEY,
      stream   text   NOT NULL,
      revision bigint NOT NULL,
      id       uuid   NOT NULL,
      type     text   NOT NULL,
      -- json, not jsonb: the text is kept exactly as written (key order included), and anything
      -- JSON.stringify produces is accepted.
      data     json   NOT NULL,
      metadata json   NOT NULL,
      UNIQUE (stream, revision),
      UNIQUE (stream, id)
    );
    -- One row: the last position handed out. An appending transaction locks it first, so appends from
    -- every process take positions one transaction at a time and commit in position order, and a
    -- transaction that rolls back never moved it: positions stay gap-free.
    CREATE TABLE IF NOT EXISTS ${t.head} (
      only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
      position bigint  NOT NULL
    );
    INSERT INTO ${t.head} (position) SELECT coalesce(max(position), 0) FROM ${t.events} ON CONFLICT DO NOTHING;
    CREATE TABLE IF NOT EXISTS ${t.meta} (
      key   text PRIMARY KEY,
      value text NOT NULL
    );
  `;
}

/** Create the tables unless they exist, and return the log id (the first process to start picks it). */
export async function ensureSchema(client: PoolClient, t: Tables, logIdCandidate: string): Promise<string> {
  const present = await client.query<{ present: boolean }>(
    'SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL AS present',
    [t.events, t.head, t.meta],
  );
  // Existing tables need no DDL at all, so a role without CREATE rights can run against them.
  if (present.rows[0]?.present !== true) {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1)', [advisoryLockKey(t.schema)]);
      await client.query(ddl(t));
      await client.query(`INSERT INTO ${t.meta} (key, value) VALUES ('log_id', $1), ('schema_version', $2) ON CONFLICT (key) DO NOTHING`, [
        logIdCandidate,
        SCHEMA_VERSION,
      ]);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }
  const meta = await client.query<{ key: string; value: string }>(`SELECT key, value FROM ${t.meta} WHERE key IN ('log_id', 'schema_version')`);
  const value = (key: string) => meta.rows.find((row) => row.key === key)?.value;
  const version = value('schema_version');
  if (version !== SCHEMA_VERSION) {
    throw new Error(`schema "${t.schema}" holds event store format ${version ?? 'unknown'}; this version reads format ${SCHEMA_VERSION}`);
  }
  const logId = value('log_id');
  if (logId === undefined) throw new Error(`schema "${t.schema}" has no log id`);
  return logId;
}

/** A 64-bit advisory lock key for this schema's DDL (pg_advisory_xact_lock takes a bigint). */
function advisoryLockKey(schema: string): string {
  const digest = createHash('sha256').update(`planline event store schema ${schema}`).digest();
  return digest.readBigInt64BE(0).toString();
}
