// A worker on a kind's durable pull consumer. Each of its `concurrency` slots pulls one job at a time
// (fetch of 1, the pattern nats.js recommends for work queues): the process never holds a job it is
// not running, so a job waits for a free worker anywhere instead of in this process's buffer, and
// stop() only has to cancel idle pulls (the server drops a pull nobody listens to) and wait.
import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JobConsumer, JobHandler } from './bus.js';
import { closedSignal } from './closed-signal.js';
import { runDelivery, type Delivery, type RunnerContext } from './job-runner.js';
import { decodeJob } from './json.js';
import type { BusNames } from './subjects.js';

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

export interface NatsConsumerDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  names: BusNames;
  kind: string;
  handler: JobHandler;
  context: RunnerContext;
  /** Recreate the durable consumer after it (or its stream) went missing. */
  ensure(): Promise<void>;
  /** How long an idle pull waits on the server before it is renewed (heartbeats watch it meanwhile). */
  pullExpiresMs: number;
}

export async function natsConsumer(deps: NatsConsumerDeps): Promise<JobConsumer & { abandon(cause?: Error): void }> {
  const { nc, js, names, kind, handler, context } = deps;
  const { logger } = context;
  const consumer = await js.consumers.get(names.jobStream, names.consumer(kind));
  const pulls = new Set<ConsumerMessages>();
  const signal = closedSignal();
  let stopping = false;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (wake = resolve));

  // Settling on a closed connection throws; the job is then redelivered after the ack wait, which is
  // the at-least-once outcome anyway, so the handler is not bothered with it.
  const settle = (msg: JsMsg, what: string, act: () => void) => {
    try {
      act();
    } catch (error) {
      logger.warn(`could not ${what} a job; it will be redelivered`, { kind, seq: msg.seq, error: String(error) });
    }
  };
  const deliveryOf = (msg: JsMsg): Delivery => ({
    id: msg.headers?.get('Nats-Msg-Id') || `${names.jobStream}-${msg.seq}`,
    kind,
    payload: decodeJob(msg.data),
    attempt: msg.info.deliveryCount,
    ack: () => settle(msg, 'ack', () => msg.ack()),
    nak: (delayMs) => settle(msg, 'nak', () => (delayMs >= 1 ? msg.nak(Math.round(delayMs)) : msg.nak())),
    working: () => settle(msg, 'extend', () => msg.working()),
    // Without a reason: nats-server 2.9 does not parse "+TERM <reason>" and would redeliver the job.
    remove: () => settle(msg, 'remove', () => msg.term()),
  });

  /** The next job, or undefined when the pull expired or was stopped. */
  const pullOne = async (): Promise<JsMsg | undefined> => {
    const pull = await consumer.fetch({ max_messages: 1, expires: deps.pullExpiresMs });
    pulls.add(pull);
    try {
      for await (const msg of pull) return msg;
      return undefined;
    } finally {
      // Finished with the pull before the handler runs: left open, its idle-heartbeat monitor would
      // report a job running longer than two heartbeats as a failed pull.
      pull.stop();
      pulls.delete(pull);
    }
  };

  const slot = async () => {
    let failures = 0;
    // A closed connection ends pulls quietly; there is nothing left to pull from.
    while (!stopping && !nc.isClosed()) {
      let msg: JsMsg | undefined;
      try {
        msg = await pullOne();
        failures = 0;
      } catch (error) {
        if (stopping || nc.isClosed()) break;
        failures += 1;
        logger.warn('job pull failed; retrying', { kind, error: String(error), failures });
        await Promise.race([stopped, sleep(Math.min(RETRY_MIN_MS * 2 ** failures, RETRY_MAX_MS))]);
        if (!stopping) await deps.ensure().catch(() => undefined);
        continue;
      }
      if (!msg) continue;
      // Arrived as we stopped: hand it straight back rather than sit on it until the ack wait.
      if (stopping) settle(msg, 'return', () => msg.nak());
      else await runDelivery(deliveryOf(msg), handler, context).catch((error) => logger.error('job runner failed', { kind, error: String(error) }));
    }
  };

  const slots = Array.from({ length: context.options.concurrency }, slot);
  const finished = Promise.all(slots).then(() => undefined);
  void finished.then(() => signal.resolve(stopping ? undefined : new Error('the NATS connection closed')));

  const halt = () => {
    stopping = true;
    wake();
    for (const pull of pulls) pull.stop();
  };

  return {
    async stop() {
      halt();
      await finished;
    },
    closed: signal.closed,
    abandon(cause) {
      halt();
      signal.resolve(cause);
    },
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
