// The feed projection as a running role: its epoch from the log's identity, its frames published on the
// bus after each commit. What runtime.ts starts when this process projects.
import type { Bus } from '../bus/bus.js';
import type { EventStore } from '../events/store.js';
import type { Logger } from '../log.js';
import { startProjector, type Projector } from './projector.js';
import { encodeFeedMessage, feedEpoch, feedTopic } from './feed.js';
import { feedProjection } from './feed-projection.js';
import type { ViewStore } from './views.js';

export interface FeedProjectorDeps {
  store: EventStore;
  views: ViewStore;
  bus: Bus;
  /** Frames kept per session (FEED_HISTORY). */
  history: number;
  log: Logger;
  /** The feed lives in memory and is rebuilt at every start: that rebuild is news, not a warning. */
  inMemory?: boolean;
  leaseTtlMs?: number;
}

export async function startFeedProjector(deps: FeedProjectorDeps): Promise<Projector> {
  const { bus, log } = deps;
  const epoch = feedEpoch(await deps.store.logId());
  const projection = feedProjection({
    epoch,
    history: deps.history,
    publish(message) {
      try {
        bus.publish(feedTopic(message.session_id), encodeFeedMessage(message));
      } catch (error) {
        // A bus closing under a shutting-down projector: the frames are committed, edges read them from
        // the feed when they resume, and the next projector republishes its last batch.
        log.warn('feed frames not published', { session_id: message.session_id, error: String(error) });
      }
    },
  });
  return startProjector({
    store: deps.store,
    views: deps.views,
    projection,
    log: (msg) => (deps.inMemory && /^no checkpoint; building/.test(msg) ? log.info(msg, { projection: projection.name }) : log.warn(msg, { projection: projection.name })),
    ...(deps.leaseTtlMs !== undefined ? { leaseTtlMs: deps.leaseTtlMs } : {}),
  });
}
