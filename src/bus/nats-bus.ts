// The production bus: topics on NATS core subjects, job queues on JetStream (nats-streams.ts for the
// resources, nats-consumer.ts for the workers). One connection per bus; it reconnects forever, since
// a worker or an edge is useless without its broker, and tells onReconnect listeners when it is back.
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createLogger } from '../log.js';
import { BusClosedError, type Bus, type BusOptions } from './bus.js';
import { closedSignal } from './closed-signal.js';
import { readLimit, resolveConsumeOptions } from './consume-options.js';
import { encodeJob } from './json.js';
import { natsConsumer } from './nats-consumer.js';
import { ensureJobConsumer, ensureJobStreams, publishDeadLetter, readDeadLetters } from './nats-streams.js';
import { DEFAULT_PREFIX, assertJobId, assertKind, assertTopic, assertTopicPattern, busNames } from './subjects.js';

export interface NatsBusOptions extends BusOptions {
  /** Pause between reconnect attempts. Default 2 s. */
  reconnectWaitMs?: number;
  /** The connection's name in the server's monitoring. */
  connectionName?: string;
  /**
   * How long an idle worker's pull waits on the server before it is renewed; server heartbeats at
   * half this tell a worker its consumer is gone. At least 1000. Default 10 s.
   */
  pullExpiresMs?: number;
}

export async function openNatsBus(url: string, options: NatsBusOptions = {}): Promise<Bus> {
  const names = busNames(options.prefix ?? DEFAULT_PREFIX);
  const pullExpiresMs = options.pullExpiresMs ?? 10_000;
  if (!Number.isSafeInteger(pullExpiresMs) || pullExpiresMs < 1_000) throw new TypeError('pullExpiresMs must be an integer >= 1000');
  const logger = options.logger ?? createLogger('warn');
  const nc = await connect({
    servers: url,
    name: options.connectionName ?? 'planline',
    maxReconnectAttempts: -1,
    reconnectTimeWait: options.reconnectWaitMs ?? 2_000,
  });
  const js = jetstream(nc);
  let manager: JetStreamManager;
  try {
    manager = await jetstreamManager(nc);
    await ensureJobStreams(manager, names, options.duplicateWindowMs ?? 120_000);
  } catch (error) {
    await nc.close();
    throw error;
  }

  const consumers = new Set<Awaited<ReturnType<typeof natsConsumer>>>();
  const reconnectListeners = new Set<() => void>();
  const signal = closedSignal();
  // Draining refuses new consumers and subscriptions; handlers still finishing may publish and enqueue.
  let draining = false;

  const open = () => {
    if (signal.isClosed || nc.isClosed()) throw new BusClosedError();
  };
  const openForNew = () => {
    if (draining) throw new BusClosedError();
    open();
  };

  void (async () => {
    for await (const status of nc.status()) {
      if (status.type !== 'reconnect') continue;
      try {
        // The client re-sent its subscriptions on reconnecting; a round trip makes sure the server has
        // them before a listener re-reads history, so nothing published after that read is missed.
        await nc.flush();
      } catch {
        continue;
      }
      for (const listener of [...reconnectListeners]) {
        try {
          listener();
        } catch (error) {
          logger.warn('reconnect listener failed', { error: String(error) });
        }
      }
    }
  })();

  void nc.closed().then((result) => {
    const cause = result instanceof Error ? result : undefined;
    for (const consumer of consumers) consumer.abandon(cause ?? new Error('the NATS connection closed'));
    consumers.clear();
    signal.resolve(cause);
  });

  return {
    publish(subject, data) {
      assertTopic(subject);
      open();
      nc.publish(names.topic(subject), data);
    },

    async subscribe(subject, onMessage) {
      assertTopicPattern(subject);
      openForNew();
      const subscription = nc.subscribe(names.topic(subject), {
        callback: (error, msg) => {
          if (error) return logger.warn('topic subscription failed', { subject, error: String(error) });
          try {
            onMessage(msg.data, names.topicOf(msg.subject));
          } catch (failure) {
            logger.warn('topic subscriber failed', { subject: msg.subject, error: String(failure) });
          }
        },
      });
      await nc.flush();
      return { unsubscribe: () => subscription.unsubscribe() };
    },

    onReconnect(listener) {
      reconnectListeners.add(listener);
      return () => void reconnectListeners.delete(listener);
    },

    async enqueue(kind, payload, enqueueOptions) {
      assertKind(kind);
      assertJobId(enqueueOptions?.id);
      const data = encodeJob(payload);
      open();
      const ack = await js.publish(names.job(kind), data, { msgID: enqueueOptions.id });
      return { duplicate: ack.duplicate };
    },

    async consume(kind, handler, consumeOptions) {
      assertKind(kind);
      if (typeof handler !== 'function') throw new TypeError('consume needs a handler function');
      const resolved = resolveConsumeOptions(consumeOptions);
      openForNew();
      const ensure = () => ensureJobConsumer(manager, names, kind, resolved.ackWaitMs);
      await ensure();
      const consumer = await natsConsumer({
        nc,
        js,
        names,
        kind,
        handler,
        ensure,
        pullExpiresMs,

        context: { options: resolved, logger, park: (letter) => publishDeadLetter(js, names, letter) },
      });
      consumers.add(consumer);
      void consumer.closed().then(() => consumers.delete(consumer));
      return consumer;
    },

    async readDeadLetters(kind, readOptions = {}) {
      assertKind(kind);
      const limit = readLimit(readOptions.limit);
      open();
      return readDeadLetters(js, manager, names, kind, limit);
    },

    async drain() {
      if (signal.isClosed) return;
      draining = true;
      await Promise.all([...consumers].map((consumer) => consumer.stop()));
      if (!nc.isClosed()) await nc.drain();
      await signal.closed();
    },

    async close() {
      draining = true;
      for (const consumer of consumers) consumer.abandon();
      if (!nc.isClosed()) await nc.close();
      await signal.closed();
    },

    closed: signal.closed,
  };
}
