// In-process topics with NATS core semantics: fan-out to whoever is subscribed when a message is
// published, at most once, in publish order. Delivery is deferred to a microtask so a subscriber never
// runs inside publish() (a projection publishing while it commits must not re-enter itself).
import type { TopicHandler, TopicSubscription } from './bus.js';
import type { Logger } from '../log.js';

interface Subscriber {
  handler: TopicHandler;
  active: boolean;
}

export interface MemoryTopics {
  publish(subject: string, data: Uint8Array): void;
  subscribe(pattern: string, handler: TopicHandler): TopicSubscription;
  /** Deliver what is already queued; resolves once subscribers have seen it. */
  flush(): Promise<void>;
  clear(): void;
}

export function memoryTopics(logger: Logger): MemoryTopics {
  // Exact subjects by map lookup: the feed publishes to one subject per session, thousands of them.
  const exact = new Map<string, Set<Subscriber>>();
  // `feed.>` is stored as `feed.`; `>` alone as the empty prefix.
  const wildcards = new Map<string, Set<Subscriber>>();
  const queue: { subject: string; data: Uint8Array; subscribers: Subscriber[] }[] = [];
  let scheduled = false;

  const deliverQueued = () => {
    scheduled = false;
    // Take the batch first: a subscriber publishing schedules its own, later, delivery.
    for (const { subject, data, subscribers } of queue.splice(0)) {
      for (const subscriber of subscribers) {
        if (!subscriber.active) continue;
        try {
          subscriber.handler(data, subject);
        } catch (error) {
          logger.warn('topic subscriber failed', { subject, error: String(error) });
        }
      }
    }
  };

  const matching = (subject: string): Subscriber[] => {
    const found = [...(exact.get(subject) ?? [])];
    for (const [prefix, subscribers] of wildcards) {
      if (subject.startsWith(prefix) && subject.length > prefix.length) found.push(...subscribers);
    }
    return found;
  };

  return {
    publish(subject, data) {
      const subscribers = matching(subject);
      if (subscribers.length === 0) return;
      // A copy, as a network hop would make: the publisher may reuse its buffer.
      queue.push({ subject, data: Uint8Array.from(data), subscribers });
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(deliverQueued);
      }
    },

    subscribe(pattern, handler) {
      const isWildcard = pattern === '>' || pattern.endsWith('.>');
      const index = isWildcard ? wildcards : exact;
      const key = isWildcard ? pattern.slice(0, -1) : pattern;
      const subscriber: Subscriber = { handler, active: true };
      let set = index.get(key);
      if (!set) index.set(key, (set = new Set()));
      set.add(subscriber);
      return {
        unsubscribe() {
          if (!subscriber.active) return;
          subscriber.active = false;
          const current = index.get(key);
          current?.delete(subscriber);
          if (current?.size === 0) index.delete(key);
        },
      };
    },

    async flush() {
      await new Promise<void>((resolve) => queueMicrotask(resolve));
    },

    clear() {
      for (const set of [...exact.values(), ...wildcards.values()]) for (const subscriber of set) subscriber.active = false;
      exact.clear();
      wildcards.clear();
      queue.length = 0;
    },
  };
}
