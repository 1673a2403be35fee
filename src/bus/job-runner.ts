// What happens to one delivery of a job, written once for both adapters: the handler runs with a Job
// whose first settlement wins; resolving acks, throwing naks with backoff; the last allowed attempt
// failing, term(), or a delivery past maxDeliver (its previous, last, delivery timed out) parks the
// job as a dead letter. Adapters supply only the raw queue operations of a delivery.
import type { DeadLetter, Job, JobHandler, JsonObject } from './bus.js';
import type { ResolvedConsumeOptions } from './consume-options.js';
import type { Logger } from '../log.js';

/** One delivery as the queue sees it. */
export interface Delivery {
  id: string;
  kind: string;
  /** Undefined when the stored bytes are not a JSON object: such a job is parked at once. */
  payload: JsonObject | undefined;
  attempt: number;
  ack(): void;
  nak(delayMs: number): void;
  working(): void;
  /** The job leaves the queue for good (it has been parked). */
  remove(): void;
}

export interface RunnerContext {
  options: ResolvedConsumeOptions;
  /** Store the letter where readDeadLetters finds it. Durable once resolved. */
  park(letter: DeadLetter): Promise<void>;
  logger: Logger;
}

type State = 'pending' | 'acked' | 'nakked' | 'parking';

export async function runDelivery(delivery: Delivery, handler: JobHandler, context: RunnerContext): Promise<void> {
  const { maxDeliver, backoff } = context.options;
  const fields = { kind: delivery.kind, id: delivery.id, attempt: delivery.attempt };

  if (delivery.payload === undefined) return deadLetter(delivery, {}, 'the stored payload is not a JSON object', context);
  if (delivery.attempt > maxDeliver) {
    return deadLetter(delivery, delivery.payload, `not settled within the ack wait on its last attempt (${maxDeliver})`, context);
  }

  const payload = delivery.payload;
  let state: State = 'pending';
  let parking: Promise<void> | undefined;
  const park = (reason: string) => {
    state = 'parking';
    parking = deadLetter(delivery, payload, reason, context);
  };
  const fail = (delayMs: number | undefined, reason: string) => {
    if (delivery.attempt >= maxDeliver) return park(reason);
    state = 'nakked';
    delivery.nak(delayMs ?? backoff(delivery.attempt));
  };

  const job: Job = {
    id: delivery.id,
    kind: delivery.kind,
    payload,
    attempt: delivery.attempt,
    ack() {
      if (state !== 'pending') return;
      state = 'acked';
      delivery.ack();
    },
    nak(delayMs?: number) {
      if (state !== 'pending') return;
      if (delayMs !== undefined && (!Number.isFinite(delayMs) || delayMs < 0)) delayMs = undefined;
      fail(delayMs, `nak on its last attempt (${maxDeliver})`);
    },
    working() {
      if (state === 'pending') delivery.working();
    },
    term(reason: string) {
      if (state !== 'pending') return;
      park(typeof reason === 'string' && reason.length > 0 ? reason : 'terminated');
    },
  };

  try {
    await handler(job);
    if (state === 'pending') job.ack();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    context.logger.warn('job handler failed', { ...fields, error: message });
    if (state === 'pending') fail(undefined, `failed on its last attempt (${maxDeliver}): ${message}`);
  }
  await parking;
}

/**
 * Park first, then tell the owner, then let the job leave the queue: a crash anywhere in between
 * leaves the job in the queue, so it is parked (deduplicated by id) and reported again, never lost.
 */
async function deadLetter(delivery: Delivery, payload: JsonObject, reason: string, context: RunnerContext): Promise<void> {
  const letter: DeadLetter = {
    id: delivery.id,
    kind: delivery.kind,
    payload,
    attempts: Math.min(delivery.attempt, context.options.maxDeliver),
    reason,
    at: new Date().toISOString(),
  };
  const fields = { kind: letter.kind, id: letter.id, reason };
  try {
    delivery.working();
    await context.park(letter);
  } catch (error) {
    // The job stays queued and comes back past maxDeliver, which parks it again.
    context.logger.error('could not park a dead letter; retrying later', { ...fields, error: String(error) });
    delivery.nak(context.options.backoff(context.options.maxDeliver));
    return;
  }
  context.logger.warn('job parked as a dead letter', fields);
  try {
    delivery.working();
    await context.options.onDeadLetter?.(letter);
  } catch (error) {
    context.logger.error('onDeadLetter failed; the letter stays parked', { ...fields, error: String(error) });
  }
  delivery.remove();
}
