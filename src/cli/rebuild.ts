// `planline rebuild [--key-prefix <prefix>]`: reset the read models and fold them again from the whole
// log, for after a projection bug is fixed or a Redis was lost. With REDIS_URL unset there is nothing
// persistent to rebuild (the server rebuilds its in-memory views at every start), but folding the log
// into a throwaway copy is still a useful check that every event projects, so it runs anyway.
import { createConnection } from 'node:net';
import { openViewStore, type OpenedViews } from '../adapters.js';
import { loadConfig } from '../config.js';
import { rebuild } from '../projections/projector.js';
import { feedEpoch } from '../projections/feed.js';
import { feedProjection } from '../projections/feed-projection.js';
import { indexNames, viewsProjection } from '../projections/views-projection.js';
import type { ViewStore } from '../projections/views.js';
import { expectPositionals, parseCommandArgs } from './args.js';
import { CliFailure, UsageError } from './errors.js';
import { EXIT, type CliCommand } from './io.js';
import { progressReporter, ratePerSecond } from './progress.js';
import { withEventStore } from './store.js';

const NAME = 'rebuild';
/** The server's key prefix; override only to rebuild a copy beside the live one (tests do). */
const DEFAULT_KEY_PREFIX = 'planline:';
const COUNT_PAGE = 1_000;

export const rebuildCommand: CliCommand = {
  name: NAME,
  synopsis: 'rebuild [--key-prefix <prefix>]',
  summary: 'rebuild the read models (plans, sessions, approvals, history, the client feed) from the log, beside it or in Redis (REDIS_URL)',
  details: [
    '--key-prefix <prefix>  Redis key prefix of the views (default planline:, the server\'s)',
    'A running projector holds the views\' lease: stop it first. Progress and a summary go to stderr.',
  ],
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(NAME, args, { 'key-prefix': { type: 'string' } });
    expectPositionals(NAME, positionals, []);
    const keyPrefix = values['key-prefix'] ?? DEFAULT_KEY_PREFIX;
    if (keyPrefix === '') throw new UsageError('--key-prefix must not be empty', NAME);

    const config = loadConfig(io.env);
    if (config.redisUrl !== undefined) await assertRedisReachable(config.redisUrl);
    return withEventStore(io, async (store) => {
      const opened = await openViewStore({ redisUrl: config.redisUrl, keyPrefix, eventStore: config.eventStore, logId: await store.logId() });
      try {
        io.err(describeTarget(opened, keyPrefix));
        const progress = progressReporter(io.err, 'rebuild');
        const result = await rebuild({
          store,
          views: opened.views,
          projection: viewsProjection,
          onProgress: (events, position) => progress.update(events, `position ${position}`),
        });
        const counts = await countViews(opened.views);
        io.err(
          `rebuilt ${viewsProjection.name} v${viewsProjection.version} in ${opened.kind}: ${result.events} events up to position ${result.position} ` +
            `in ${result.seconds.toFixed(1)} s (${ratePerSecond(result.events, result.seconds * 1_000)} events/s); ` +
            Object.entries(counts).map(([name, count]) => `${name}=${count}`).join(' '),
        );
        // The client feed lives beside the read models: rebuilt the same way (same log, same offsets and
        // epoch, so sockets resume where they were). Nothing is published: no socket is waiting on a rebuild.
        const feed = feedProjection({ epoch: feedEpoch(await store.logId()), history: config.feedHistory, publish: () => {} });
        const feedProgress = progressReporter(io.err, 'rebuild feed');
        const fed = await rebuild({ store, views: opened.views, projection: feed, onProgress: (events, position) => feedProgress.update(events, `position ${position}`) });
        io.err(`rebuilt ${feed.name} v${feed.version} in ${opened.kind}: ${fed.events} events in ${fed.seconds.toFixed(1)} s`);
        return EXIT.ok;
      } finally {
        // The Redis view store owns its client and quits it on close (closeClient defaults to true).
        await opened.views.close();
      }
    });
  },
};

/**
 * Fail fast and clearly when Redis is down. openViewStore's client keeps reconnecting after a failed
 * connect() (and logs every attempt), so without this check a down Redis reads as a hang, not an error.
 */
async function assertRedisReachable(redisUrl: string, timeoutMs = 2_000): Promise<void> {
  const url = new URL(redisUrl);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || 6379);
  const problem = await new Promise<string | undefined>((resolve) => {
    const socket = createConnection({ host, port });
    const done = (outcome: string | undefined) => {
      socket.destroy();
      resolve(outcome);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs} ms`));
    socket.once('connect', () => done(undefined));
    socket.once('error', (error) => done(error.message));
  });
  if (problem !== undefined) throw new CliFailure(`cannot reach Redis at ${host}:${port} (REDIS_URL): ${problem}`);
}

function describeTarget(opened: OpenedViews, keyPrefix: string): string {
  switch (opened.kind) {
    case 'memory':
      return 'REDIS_URL is unset and the log is not a file: the read models live in the server process and are rebuilt at every start; ' +
        'rebuilding a throwaway in-memory copy as a check that the whole log projects';
    case 'sqlite':
      return `rebuilding ${viewsProjection.name} v${viewsProjection.version} in the embedded read models beside the log (a running server must be stopped first)`;
    case 'redis':
      return `rebuilding ${viewsProjection.name} v${viewsProjection.version} in Redis under ${keyPrefix}* (a running projector must be stopped first)`;
  }
}

export interface ViewCounts {
  sessions: number;
  plans: number;
  approvals: number;
  history: number;
}

/**
 * What the rebuild produced, read back from the view store: sessions and approvals from their global
 * indexes, plans and history entries from each session's indexes (they have no global one).
 */
export async function countViews(views: ViewStore): Promise<ViewCounts> {
  const counts: ViewCounts = {
    sessions: await views.count(indexNames.sessions({})),
    plans: 0,
    approvals: await views.count(indexNames.approvals({})),
    history: 0,
  };
  for (let below: number | undefined; ; ) {
    const page = await views.range(indexNames.sessions({}), { limit: COUNT_PAGE, ...(below === undefined ? {} : { below }) });
    const last = page.at(-1);
    if (last === undefined) break;
    const [plans, history] = await Promise.all([
      Promise.all(page.map(({ id }) => views.count(indexNames.plansOfSession(id)))),
      Promise.all(page.map(({ id }) => views.count(indexNames.history(id)))),
    ]);
    counts.plans += sum(plans);
    counts.history += sum(history);
    below = last.score;
  }
  return counts;
}

const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0);
