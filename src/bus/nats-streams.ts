// The JetStream resources behind the job queues, created idempotently: another process sharing the
// prefix may be creating the same ones at the same moment. One work-queue stream holds every job
// subject (a job leaves it when acked); one durable pull consumer per kind, filtered to that kind's
// subject (nats-server 2.9 allows one filter per consumer), is shared by all workers of the kind;
// a limits stream keeps dead letters for reading later.
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { DeadLetter } from './bus.js';
import type { BusNames } from './subjects.js';

/** Dead letters are kept this long; they are for a person or a repair job to look at. */
const DEAD_LETTER_MAX_AGE_MS = 30 * 24 * 3_600_000;

/** JetStream's "stream name already in use with a different configuration". */
const STREAM_NAME_IN_USE = 10058;
/** JetStream's "consumer already exists" (servers from 2.10 on, for a create with other settings). */
const CONSUMER_ALREADY_EXISTS = 10148;

export async function ensureJobStreams(jsm: JetStreamManager, names: BusNames, duplicateWindowMs: number): Promise<void> {
  await ensureStream(jsm, {
    name: names.jobStream,
    subjects: [names.allJobs],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    duplicate_window: nanos(duplicateWindowMs),
  });
  await ensureStream(jsm, {
    name: names.deadStream,
    subjects: [names.allDead],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(DEAD_LETTER_MAX_AGE_MS),
    duplicate_window: nanos(duplicateWindowMs),
  });
}

async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.add(config);
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === STREAM_NAME_IN_USE)) throw error;
    // It exists with other settings (another deployment's duplicate window, say): use it if it can
    // do the job, and say clearly when it cannot instead of failing later in a worker.
    const { config: existing } = await jsm.streams.info(config.name);
    if (existing.retention !== config.retention || !sameSubjects(existing.subjects, config.subjects)) {
      throw new Error(
        `JetStream stream ${config.name} exists with retention ${existing.retention} on ${JSON.stringify(existing.subjects)}; ` +
          `the bus needs ${config.retention} on ${JSON.stringify(config.subjects)} (use another prefix or delete it)`,
      );
    }
  }
}

const sameSubjects = (a: readonly string[] | undefined, b: readonly string[] | undefined) =>
  JSON.stringify([...(a ?? [])].sort()) === JSON.stringify([...(b ?? [])].sort());

/**
 * Create the kind's durable consumer, or bring its ack wait to ours. nats-server 2.9 treats adding an
 * existing durable as create-or-update; newer servers refuse a "create" whose settings differ
 * ("consumer already exists"), and then an update does it. No server-side max_deliver: the runner
 * counts attempts, so a job whose dead-lettering failed still comes back instead of being stranded.
 */
export async function ensureJobConsumer(jsm: JetStreamManager, names: BusNames, kind: string, ackWaitMs: number): Promise<void> {
  const durable = names.consumer(kind);
  try {
    await jsm.consumers.add(names.jobStream, {
      durable_name: durable,
      filter_subject: names.job(kind),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(ackWaitMs),
      max_deliver: -1,
    });
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === CONSUMER_ALREADY_EXISTS)) throw error;
    await jsm.consumers.update(names.jobStream, durable, { ack_wait: nanos(ackWaitMs) });
  }
}

export async function publishDeadLetter(js: JetStreamClient, names: BusNames, letter: DeadLetter): Promise<void> {
  // The job id dedupes: a worker that dies after parking and before removing the job parks it again.
  await js.publish(names.dead(letter.kind), JSON.stringify(letter), { msgID: letter.id });
}

/** Read a kind's dead letters oldest first, through a short-lived consumer that acks nothing. */
export async function readDeadLetters(js: JetStreamClient, jsm: JetStreamManager, names: BusNames, kind: string, limit: number): Promise<DeadLetter[]> {
  if (limit === 0) return [];
  const info = await jsm.consumers.add(names.deadStream, {
    filter_subject: names.dead(kind),
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.All,
    mem_storage: true,
    inactive_threshold: nanos(60_000),
  });
  try {
    const wanted = Math.min(info.num_pending, limit);
    const letters: DeadLetter[] = [];
    if (wanted === 0) return letters;
    const consumer = await js.consumers.get(names.deadStream, info.name);
    const batch = await consumer.fetch({ max_messages: wanted, expires: 5_000 });
    for await (const msg of batch) {
      letters.push(msg.json<DeadLetter>());
      if (letters.length === wanted) break;
    }
    return letters;
  } finally {
    await jsm.consumers.delete(names.deadStream, info.name).catch(() => undefined);
  }
}
