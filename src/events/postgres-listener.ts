// LISTEN for commits of any process, on a connection of its own. A notification only says "look
// again": subscribers always re-read the log after their last position, so a lost or late notification
// costs latency, never an event (they also poll). When the connection drops (server restart,
// pg_terminate_backend, network), the listener reconnects with backoff, and wakes everyone once it is
// back, since commits made while it was away were not announced.
import pg from 'pg';

export interface CommitListener {
  /** Stop listening and end the connection. */
  close(): Promise<void>;
}

export interface CommitListenerOptions {
  connectionString: string;
  /** pg client settings shared with the store's pools (application_name, timeouts). */
  clientConfig: pg.ClientConfig;
  /** LISTEN takes an identifier (quoted). */
  channelIdentifier: string;
  /** A commit was announced, or the listener (re)connected and anything may have been missed. */
  onWake(): void;
}

const MAX_BACKOFF_MS = 2_000;

export function listenForCommits(options: CommitListenerOptions): CommitListener {
  let client: pg.Client | null = null;
  let stopped = false;
  let failures = 0;
  let retryTimer: NodeJS.Timeout | null = null;
  let connecting: Promise<void> | null = null;

  function connect(): void {
    connecting = (async () => {
      const next = new pg.Client({ ...options.clientConfig, connectionString: options.connectionString });
      // Until this is set, a failing connection would be an unhandled 'error' event (a crash).
      next.on('error', () => lost(next));
      next.on('end', () => lost(next));
      next.on('notification', () => options.onWake());
      try {
        await next.connect();
        if (stopped) {
          await next.end();
          return;
        }
        await next.query(`LISTEN ${options.channelIdentifier}`);
        client = next;
        failures = 0;
        options.onWake();
      } catch {
        await next.end().catch(() => undefined);
        lost(next);
      }
    })().finally(() => {
      connecting = null;
    });
  }

  function lost(which: pg.Client): void {
    if (client !== null && client !== which) return; // an older connection's late event
    client = null;
    if (stopped || retryTimer !== null) return;
    const delay = Math.min(100 * 2 ** failures, MAX_BACKOFF_MS);
    failures += 1;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      if (!stopped && client === null && connecting === null) connect();
    }, delay);
  }

  connect();

  return {
    async close() {
      stopped = true;
      if (retryTimer !== null) clearTimeout(retryTimer);
      retryTimer = null;
      await connecting;
      const last = client;
      client = null;
      await last?.end().catch(() => undefined);
    },
  };
}
