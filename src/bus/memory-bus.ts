// The embedded bus: topics and job queues in this process, with the NATS adapter's semantics (the same
// contract suite runs against both). Nothing survives the process, which is fine embedded: the event
// log is the truth, and whoever enqueues jobs re-derives them from it at start.
import { createLogger } from '../log.js';
import { BusClosedError, type Bus, type BusOptions, type DeadLetter } from './bus.js';
import { closedSignal } from './closed-signal.js';
import { readLimit, resolveConsumeOptions } from './consume-options.js';
import { encodeJob } from './json.js';
import { memoryConsumer } from './memory-consumer.js';
import { memoryJobQueue, type MemoryJobQueue } from './memory-queue.js';
import { memoryTopics } from './memory-topics.js';
import { DEFAULT_PREFIX, assertJobId, assertKind, assertPrefix, assertTopic, assertTopicPattern } from './subjects.js';

/** Parked jobs kept per kind, oldest dropped first (a limits stream, in memory). */
const DEAD_LETTERS_PER_KIND = 10_000;

export function memoryBus(options: BusOptions = {}): Bus {
  assertPrefix(options.prefix ?? DEFAULT_PREFIX);
  const logger = options.logger ?? createLogger('warn');
  const duplicateWindowMs = options.duplicateWindowMs ?? 120_000;
  const topics = memoryTopics(logger);
  const queues = new Map<string, MemoryJobQueue>();
  // One window for all kinds, as one JetStream stream holds every job subject.
  const seenIds = new Map<string, number>();
  const deadLetters = new Map<string, DeadLetter[]>();
  const consumers = new Set<ReturnType<typeof memoryConsumer>>();
  const signal = closedSignal();
  // Draining refuses new consumers and subscriptions, but handlers still finishing may publish and
  // enqueue their follow-up work.
  let draining = false;

  const open = () => {
    if (signal.isClosed) throw new BusClosedError();
  };
  const openForNew = () => {
    if (draining || signal.isClosed) throw new BusClosedError();
  };
  const queueOf = (kind: string) => {
    let queue = queues.get(kind);
    if (!queue) queues.set(kind, (queue = memoryJobQueue()));
    return queue;
  };
  const isDuplicate = (id: string, now: number) => {
    // Ids are inserted in time order, so the expired ones are at the front.
    for (const [seen, expiresAt] of seenIds) {
      if (expiresAt > now) break;
      seenIds.delete(seen);
    }
    if (seenIds.has(id)) return true;
    seenIds.set(id, now + duplicateWindowMs);
    return false;
  };
  const park = async (letter: DeadLetter) => {
    let letters = deadLetters.get(letter.kind);
    if (!letters) deadLetters.set(letter.kind, (letters = []));
    letters.push(structuredClone(letter));
    if (letters.length > DEAD_LETTERS_PER_KIND) letters.shift();
  };
  const shutDown = () => {
    draining = true;
    for (const consumer of consumers) consumer.abandon();
    consumers.clear();
    for (const queue of queues.values()) queue.close();
    topics.clear();
    signal.resolve();
  };

  return {
    publish(subject, data) {
      assertTopic(subject);
      open();
      topics.publish(subject, data);
    },

    async subscribe(subject, onMessage) {
      assertTopicPattern(subject);
      openForNew();
      return topics.subscribe(subject, onMessage);
    },

    // An in-process bus never loses its "connection".
    onReconnect: () => () => {},

    async enqueue(kind, payload, enqueueOptions) {
      assertKind(kind);
      assertJobId(enqueueOptions?.id);
      const data = encodeJob(payload);
      open();
      if (isDuplicate(enqueueOptions.id, Date.now())) return { duplicate: true };
      queueOf(kind).push({ id: enqueueOptions.id, kind, data });
      return { duplicate: false };
    },

    async consume(kind, handler, consumeOptions) {
      assertKind(kind);
      if (typeof handler !== 'function') throw new TypeError('consume needs a handler function');
      const resolved = resolveConsumeOptions(consumeOptions);
      openForNew();
      const consumer = memoryConsumer(queueOf(kind), handler, { options: resolved, park, logger });
      consumers.add(consumer);
      void consumer.closed().then(() => consumers.delete(consumer));
      return consumer;
    },

    async readDeadLetters(kind, readOptions = {}) {
      assertKind(kind);
      const limit = readLimit(readOptions.limit);
      open();
      return structuredClone((deadLetters.get(kind) ?? []).slice(0, limit));
    },

    async drain() {
      if (signal.isClosed) return;
      draining = true;
      await Promise.all([...consumers].map((consumer) => consumer.stop()));
      await topics.flush();
      shutDown();
    },

    async close() {
      shutDown();
    },

    closed: signal.closed,
  };
}
