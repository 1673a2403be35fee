// One edge's live subscriptions to the client feed: one bus subscription per session that has at least
// one socket here, shared by all of them, decoded once per message. Sockets watch and unwatch; the last
// one out unsubscribes.
import type { Bus, TopicSubscription } from '../bus/bus.js';
import type { Logger } from '../log.js';
import { decodeFeedMessage, feedTopic, type FeedMessage } from '../projections/feed.js';

export type FeedListener = (message: FeedMessage) => void;

export interface FeedHub {
  /**
   * Deliver this session's live messages to `listener`. Resolves once the subscription is in place on
   * the broker, so a reader that watches first and then reads the feed's history misses nothing.
   * Returns the unwatch function.
   */
  watch(sessionId: string, listener: FeedListener): Promise<() => void>;
  /** After the bus reconnects: live messages may have been lost meanwhile. */
  onReconnect(listener: () => void): () => void;
  /** Sessions with a subscription here. */
  sessions(): number;
  close(): void;
}

interface Watched {
  listeners: Set<FeedListener>;
  subscription: Promise<TopicSubscription | undefined>;
}

export interface FeedHubOptions {
  /**
   * When this returns true, live frames may not reach this process through the bus (an embedded feed
   * projected by another process on the same file): every `pollMs` the hub tells its sockets to read
   * the feed's history after what they sent, as it does after a bus reconnect.
   */
  mustPoll?: () => boolean;
  pollMs?: number;
}

export function feedHub(bus: Bus, log: Logger, options: FeedHubOptions = {}): FeedHub {
  const watched = new Map<string, Watched>();
  const pollers = new Set<() => void>();
  const poll =
    options.mustPoll === undefined
      ? undefined
      : setInterval(() => {
          if (watched.size === 0 || !options.mustPoll!()) return;
          for (const listener of pollers) listener();
        }, options.pollMs ?? 200);
  poll?.unref();

  function subscribe(sessionId: string, entry: Watched): Promise<TopicSubscription | undefined> {
    return bus
      .subscribe(feedTopic(sessionId), (data) => {
        const message = decodeFeedMessage(data);
        if (!message || message.session_id !== sessionId) return log.warn('ignored a malformed feed message', { session_id: sessionId });
        for (const listener of entry.listeners) listener(message);
      })
      .catch((error: unknown) => {
        log.warn('feed subscription failed', { session_id: sessionId, error: String(error) });
        return undefined;
      });
  }

  return {
    async watch(sessionId, listener) {
      let entry = watched.get(sessionId);
      if (!entry) {
        const created: Watched = { listeners: new Set(), subscription: Promise.resolve(undefined) };
        created.subscription = subscribe(sessionId, created);
        watched.set(sessionId, (entry = created));
      }
      entry.listeners.add(listener);
      const current = entry;
      const subscription = await current.subscription;
      if (!subscription) {
        current.listeners.delete(listener);
        if (watched.get(sessionId) === current) watched.delete(sessionId); // the next watcher tries again
        throw new Error(`cannot follow session ${sessionId} live: the bus refused the subscription`);
      }
      let watching = true;
      return () => {
        if (!watching) return;
        watching = false;
        current.listeners.delete(listener);
        if (current.listeners.size > 0 || watched.get(sessionId) !== current) return;
        watched.delete(sessionId);
        void current.subscription.then((s) => s?.unsubscribe());
      };
    },

    onReconnect(listener) {
      const off = bus.onReconnect(listener);
      pollers.add(listener);
      return () => {
        off();
        pollers.delete(listener);
      };
    },

    sessions: () => watched.size,

    close() {
      clearInterval(poll);
      for (const entry of watched.values()) void entry.subscription.then((s) => s?.unsubscribe());
      watched.clear();
    },
  };
}
