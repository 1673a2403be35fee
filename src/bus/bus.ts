// The bus port: at-most-once topics (live frames of the client feed) and at-least-once job queues
// (agent runs, subtask attempts). Two adapters, memory-bus.ts (one process, no servers) and
// nats-bus.ts (NATS core + JetStream), proven by one contract suite (tests/contract/bus.contract.ts).
// The job shape follows JetStream's messages (ack, nak with a delay, working, term, a dedupe id),
// because that is what a production queue gives and what an embedded one can honour exactly.
import type { Logger } from '../log.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export interface BusOptions {
  /**
   * Namespace of everything this bus touches: subjects (`<prefix>.topics.…`, `<prefix>.jobs.<kind>`,
   * `<prefix>.dead.<kind>`), stream and consumer names. Tests and deployments sharing a broker use
   * different prefixes. Letters, digits, `_` and `-`. Default `planline`.
   */
  prefix?: string;
  /** A repeated enqueue id within this window is dropped (JetStream's duplicate window). Default 2 min. */
  duplicateWindowMs?: number;
  /** Handler failures, subscriber errors and broker trouble are reported here. Default: warn on stderr. */
  logger?: Logger;
}

/** A live topic subscription. */
export interface TopicSubscription {
  /** Stop delivery; a message already on its way may still arrive before this returns, none after. */
  unsubscribe(): void;
}

/** The subject as published (without the prefix), so one wildcard handler can tell sessions apart. */
export type TopicHandler = (data: Uint8Array, subject: string) => void;

/** One delivery of a job. Settle it once: ack, nak or term; later calls are ignored. */
export interface Job {
  /** The dedupe id given to enqueue (derived from a command id). */
  readonly id: string;
  readonly kind: string;
  readonly payload: JsonObject;
  /** Delivery count, 1-based: 2 means a previous delivery was nak'ed, failed or timed out. */
  readonly attempt: number;
  /** Done: the job leaves the queue. */
  ack(): void;
  /**
   * Failed, try again after `delayMs` (default: the consumer's backoff for this attempt). On the last
   * allowed attempt this parks the job as a dead letter instead.
   */
  nak(delayMs?: number): void;
  /** Still working: restarts the ack-wait timer so a long job is not handed to another worker. */
  working(): void;
  /** Never retry: the job is parked as a dead letter with this reason. */
  term(reason: string): void;
}

/**
 * Resolving without settling acks the job; throwing naks it with backoff (or parks it on the last
 * attempt). Handlers must tolerate redelivery: a worker that dies mid-job has its job run again.
 */
export type JobHandler = (job: Job) => Promise<void> | void;

/** A job that will not be retried, kept on `<prefix>.dead.<kind>` for its owner to inspect. */
export interface DeadLetter {
  id: string;
  kind: string;
  payload: JsonObject;
  /** Deliveries that reached a handler (at most maxDeliver). */
  attempts: number;
  reason: string;
  /** ISO time it was parked. */
  at: string;
}

export interface ConsumeOptions {
  /** Jobs this consumer runs at once. Default 1. */
  concurrency?: number;
  /**
   * A delivery neither settled nor marked working() within this time goes to another worker (a worker
   * killed mid-job). Default 30 s. With NATS this is the durable consumer's setting, shared by every
   * worker of the kind: the last consumer started sets it.
   */
  ackWaitMs?: number;
  /** Deliveries a job gets before it is parked as a dead letter. Default 5. */
  maxDeliver?: number;
  /** Delay before retrying after attempt n fails: by index (the last repeats) or a function of n. */
  backoffMs?: readonly number[] | ((attempt: number) => number);
  /**
   * Called once a job is parked (failed its last attempt, term(), or its last delivery timed out), so
   * its owner can record an event. Awaited; called again only if this process dies before the job
   * left the queue, so make it idempotent (derive event ids from the job id).
   */
  onDeadLetter?: (letter: DeadLetter) => Promise<void> | void;
}

export interface JobConsumer {
  /** Stop taking jobs and wait for the handlers in flight to finish and settle. */
  stop(): Promise<void>;
  /** Resolves once stopped: undefined when asked to, the error when the broker connection ended. */
  closed(): Promise<Error | undefined>;
}

export interface EnqueueResult {
  /** True when the id was seen within the duplicate window and nothing was enqueued. */
  duplicate: boolean;
}

export interface Bus {
  /** Fire-and-forget to whoever is subscribed now. Never delivers inside this call. */
  publish(subject: string, data: Uint8Array): void;
  /**
   * Exact subject, or a prefix ending in `.>` (`feed.>`). Resolves once the broker has the
   * subscription, so a reader can subscribe first and then read history without a gap.
   */
  subscribe(subject: string, onMessage: TopicHandler): Promise<TopicSubscription>;
  /**
   * Called after the broker connection came back. Topic messages published meanwhile may be lost,
   * so live readers re-read what they missed. Returns a function that removes the listener.
   */
  onReconnect(listener: () => void): () => void;

  /** Durable once resolved. `id` dedupes within the duplicate window. */
  enqueue(kind: string, payload: JsonObject, options: { id: string }): Promise<EnqueueResult>;
  /** Competing consumers: every consumer of a kind, in any process, shares its queue. */
  consume(kind: string, handler: JobHandler, options?: ConsumeOptions): Promise<JobConsumer>;
  /** Parked jobs of a kind, oldest first. */
  readDeadLetters(kind: string, options?: { limit?: number }): Promise<DeadLetter[]>;

  /** Stop consumers (waiting for their handlers), flush what was published, close. */
  drain(): Promise<void>;
  /** Close now: consumers stop, handlers still running cannot settle (their jobs are redelivered). */
  close(): Promise<void>;
  /** Resolves once closed: undefined when asked to, the error when the connection was lost for good. */
  closed(): Promise<Error | undefined>;
}

/** Using a bus after drain() or close(). */
export class BusClosedError extends Error {
  override readonly name = 'BusClosedError';
  constructor() {
    super('the bus is closed');
  }
}
