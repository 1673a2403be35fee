// Plan execution on NATS + Redis with instant scripted agents (an in-process model that answers at
// once, so the figure is the executor's and the workers' machinery, not a model's speed):
//  - throughput: 100 plans of 10 subtasks (chains and fans), approved together, run to completion:
//    subtasks per second end to end (from approval to the last PlanCompleted), beside raw JetStream
//    publish + consume of as many messages (the transport's own ceiling, same run);
//  - overhead: one plan of 200 subtasks where 199 depend on a root: from the root's success to each
//    dependent's dispatch, per subtask.
// The event log is SQLite (the embedded store), read models (checkpoints, leases) Redis, the bus NATS.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect as connectNats } from '@nats-io/transport-node';
import { openBus, openViewStore } from '../src/adapters.js';
import type { ChatModel } from '../src/agents/model.js';
import { createCommandHandler } from '../src/commands/handle.js';
import { createCommands } from '../src/commands/service.js';
import type { ExecutionConfig } from '../src/config.js';
import { openSqliteEventStore } from '../src/events/sqlite-store.js';
import type { StoredEvent } from '../src/events/store.js';
import { startExecution } from '../src/handlers/execution.js';
import { createLogger } from '../src/log.js';
import { cleanShared, NATS_URL, REDIS_URL } from './ws-support.js';
import { fmt } from './support.js';

export interface ExecutionResult {
  plans: number;
  subtasks: number;
  seconds: number;
  subtasksPerSecond: number;
  rawJetStreamPerSecond: number;
  wideSubtasks: number;
  wideOverheadMsPerSubtask: number;
}

/** A model that answers every request at once with a final answer. */
const instantModel: ChatModel = {
  configured: true,
  model: 'instant',
  complete: async () => ({
    content: 'done',
    toolCalls: [],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    finishReason: 'stop',
    model: 'instant',
  }),
};

/** Ten subtasks: a root, a fan of three, a join, a chain, a fan of two, a join, a tail. */
const MIXED = [
  { id: 's1', description: 'root' },
  { id: 's2', description: 'fan a', dependencies: ['s1'] },
  { id: 's3', description: 'fan b', dependencies: ['s1'] },
  { id: 's4', description: 'fan c', dependencies: ['s1'] },
  { id: 's5', description: 'join', dependencies: ['s2', 's3', 's4'] },
  { id: 's6', description: 'chain', dependencies: ['s5'] },
  { id: 's7', description: 'fan d', dependencies: ['s6'] },
  { id: 's8', description: 'fan e', dependencies: ['s6'] },
  { id: 's9', description: 'join 2', dependencies: ['s7', 's8'] },
  { id: 's10', description: 'tail', dependencies: ['s9'] },
];

async function rawJetStream(messages: number): Promise<number> {
  const nc = await connectNats({ servers: NATS_URL });
  const name = `bench_raw_${randomUUID().slice(0, 8)}`;
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name, subjects: [`${name}.jobs`], retention: RetentionPolicy.Workqueue, storage: StorageType.File });
    await jsm.consumers.add(name, { durable_name: 'w', ack_policy: AckPolicy.Explicit, filter_subject: `${name}.jobs` });
    const js = jetstream(nc);
    const payload = new TextEncoder().encode(JSON.stringify({ run_id: randomUUID(), turn: 1 }));
    const started = performance.now();
    const consumer = await js.consumers.get(name, 'w');
    let received = 0;
    const consumed = (async () => {
      const messages$ = await consumer.consume({ max_messages: 256 });
      for await (const m of messages$) {
        m.ack();
        if (++received === messages) break;
      }
    })();
    // Publish with 64 in flight, each awaited (durable), as the executor's enqueues are.
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < messages) {
          const i = next++;
          await js.publish(`${name}.jobs`, payload, { msgID: `m${i}` });
        }
      }),
    );
    await consumed;
    const seconds = (performance.now() - started) / 1000;
    await jsm.streams.delete(name);
    return messages / seconds;
  } finally {
    await nc.close();
  }
}

async function deployment(execution: ExecutionConfig) {
  const dir = mkdtempSync(join(tmpdir(), 'planline-bench-exec-'));
  const prefix = `bench_exec_${randomUUID().slice(0, 8)}`;
  const store = openSqliteEventStore(join(dir, 'planline.db'));
  const { views } = await openViewStore({ redisUrl: REDIS_URL, keyPrefix: `${prefix}:` });
  const { bus } = await openBus(NATS_URL, { prefix });
  const log = createLogger('warn');
  const commands = createCommands(createCommandHandler(store), {
    approvalTimeoutS: 3_600,
    approvalTimeoutAction: 'expire',
    maxParallel: execution.maxParallel,
    maxAttempts: 3,
    retryBackoffMs: 1_000,
  });
  const running = await startExecution({ store, views, commands, bus, model: instantModel, execution, log, executor: true, worker: true });
  return {
    store,
    commands,
    async close() {
      await running.stop();
      await bus.drain();
      await store.close();
      await views.close();
      await cleanShared(`${prefix}:`, prefix);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const EXECUTION: ExecutionConfig = {
  maxParallel: 10,
  maxAttempts: 3,
  retryBackoffMs: 1_000,
  maxReplans: 0,
  multitask: 'enqueue',
  toolCallTimeoutS: 600,
  maxTurns: 5,
  workerConcurrency: 64,
  modelTimeoutMs: 10_000,
};

/** Resolves with every event of the given types once `until` says the run is over. */
function watch(store: ReturnType<typeof openSqliteEventStore>, after: number, until: (events: StoredEvent[]) => boolean) {
  const seen: StoredEvent[] = [];
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const subscription = store.subscribeToAll({ after }, async (events) => {
    seen.push(...events);
    if (until(seen)) resolve();
  });
  return { seen, done: done.then(() => subscription.close()) };
}

async function throughput(plans: number): Promise<{ seconds: number; subtasks: number }> {
  const d = await deployment(EXECUTION);
  try {
    const created = await Promise.all(
      Array.from({ length: plans }, (_, i) => d.commands.createPlan({ goal: `bench plan ${i}`, subtasks: MIXED, default_agent: 'coder' }, { command_id: randomUUID() })),
    );
    const head = await d.store.headPosition();
    let completed = 0;
    const watcher = watch(d.store, head, (events) => {
      completed = events.filter((e) => e.type === 'PlanCompleted').length;
      return completed >= plans;
    });
    const started = performance.now();
    await Promise.all(
      created.map((p) => d.commands.decidePlan(p.plan_id, { approval_request_id: p.approval_request_id, decision: 'approve' }, { command_id: randomUUID() })),
    );
    await watcher.done;
    const seconds = (performance.now() - started) / 1000;
    return { seconds, subtasks: watcher.seen.filter((e) => e.type === 'SubtaskSucceeded').length };
  } finally {
    await d.close();
  }
}

async function wideOverhead(width: number): Promise<number> {
  const d = await deployment({ ...EXECUTION, maxParallel: width });
  try {
    const subtasks = [{ id: 'root', description: 'root' }, ...Array.from({ length: width - 1 }, (_, i) => ({ id: `w${i}`, description: `leaf ${i}`, dependencies: ['root'] }))];
    const plan = await d.commands.createPlan({ goal: 'wide', subtasks, default_agent: 'coder' }, { command_id: randomUUID() });
    const head = await d.store.headPosition();
    // Wall-clock time each event is seen here (its commit), not its recorded `at` (millisecond resolution).
    const seenAt = new Map<string, number>();
    const watcher = watch(d.store, head, (events) => {
      const now = performance.now();
      for (const e of events) if (!seenAt.has(e.id)) seenAt.set(e.id, now);
      return events.some((e) => e.type === 'PlanCompleted');
    });
    await d.commands.decidePlan(plan.plan_id, { approval_request_id: plan.approval_request_id, decision: 'approve' }, { command_id: randomUUID() });
    await watcher.done;
    const rootDone = watcher.seen.find((e) => e.type === 'SubtaskSucceeded' && e.data.subtask_id === 'root')!;
    const dispatches = watcher.seen.filter((e) => e.type === 'SubtaskDispatched' && e.data.subtask_id !== 'root');
    const lastDispatch = Math.max(...dispatches.map((e) => seenAt.get(e.id)!));
    return (lastDispatch - seenAt.get(rootDone.id)!) / dispatches.length;
  } finally {
    await d.close();
  }
}

export async function benchExecution(options: { plans?: number; width?: number } = {}): Promise<ExecutionResult> {
  const plans = options.plans ?? 100;
  const width = options.width ?? 200;
  const { seconds, subtasks } = await throughput(plans);
  const rawJetStreamPerSecond = await rawJetStream(subtasks);
  const wideOverheadMsPerSubtask = await wideOverhead(width);
  return { plans, subtasks, seconds, subtasksPerSecond: subtasks / seconds, rawJetStreamPerSecond, wideSubtasks: width, wideOverheadMsPerSubtask };
}

export function printExecution(r: ExecutionResult): void {
  console.log('Plan execution (NATS + Redis, SQLite log, instant scripted agents)');
  console.log(`  ${r.plans} plans × 10 subtasks: ${r.subtasks} subtasks in ${fmt(r.seconds, 2)} s = ${fmt(r.subtasksPerSecond, 0)} subtasks/s (target ≥ 500)`);
  console.log(`  raw JetStream publish+consume, same count: ${fmt(r.rawJetStreamPerSecond, 0)} msg/s; ratio ${fmt(r.subtasksPerSecond / r.rawJetStreamPerSecond, 3)}`);
  console.log(`  wide DAG (${r.wideSubtasks} subtasks): ${fmt(r.wideOverheadMsPerSubtask, 3)} ms per subtask from the root's success to dispatch (target < 2 ms)`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) printExecution(await benchExecution());
