// How the PostgreSQL event store talks about its server: which server (for messages, never with the
// password), and how any failure to reach or use it becomes the port's EventStoreUnavailableError.
import pg from 'pg';
import { EventStoreUnavailableError } from './store.js';

/** `host:port/database` of a postgres:// URL; the credentials are left out on purpose. */
export function describeTarget(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    // libpq-style `?host=/var/run/postgresql` (a socket directory) wins over the URL's host, as in pg.
    const host = url.searchParams.get('host') ?? (url.hostname || 'localhost');
    const port = url.searchParams.get('port') ?? (url.port || '5432');
    const database = decodeURIComponent(url.pathname.slice(1));
    return `${host}:${port}${database === '' ? '' : `/${database}`}`;
  } catch {
    return 'the configured server';
  }
}

/** The failure as the port names it, saying which server and what went wrong. */
export function unavailable(target: string, error: unknown, doing?: string): EventStoreUnavailableError {
  if (error instanceof EventStoreUnavailableError) return error;
  const what = doing === undefined ? '' : ` (${doing})`;
  return new EventStoreUnavailableError(`PostgreSQL event store at ${target} is unavailable${what}: ${describe(error)}`, { cause: error });
}

export function describe(error: unknown): string {
  // Connecting to a name with several addresses (localhost: ::1 and 127.0.0.1) fails with an
  // AggregateError whose own message is empty: the reasons are in its parts.
  if (error instanceof AggregateError && error.message === '') {
    return error.errors.map(describe).join('; ') || 'connection failed';
  }
  if (error instanceof Error) return error.message || (error as { code?: string }).code || error.name;
  return String(error);
}

/**
 * The connection, not the statement, failed: refused, reset, or closed by the server (class 08,
 * 57P0x). A pooled connection the server closed while it sat idle fails this way on first use.
 */
export function isConnectionFailure(error: unknown): boolean {
  if (!(error instanceof pg.DatabaseError)) return true;
  const code = error.code ?? '';
  return code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03';
}
