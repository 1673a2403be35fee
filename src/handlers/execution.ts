// The execution roles of a process: the executor (one active per deployment, by lease) and the workers
// (any number, competing for jobs). A job that exhausts its deliveries is parked as a dead letter and
// recorded as an event (the run, the classification or the plan fails with the reason), so nothing
// waits forever for a job that will never succeed.
import type { Bus, DeadLetter, Job, JobConsumer } from '../bus/bus.js';
import type { ChatModel } from '../agents/model.js';
import type { Commands } from '../commands/service.js';
import { DomainError } from '../commands/errors.js';
import type { ExecutionConfig } from '../config.js';
import { uuidv5 } from '../events/ids.js';
import type { EventStore } from '../events/store.js';
import type { Logger } from '../log.js';
import type { Runner } from '../processors/runner.js';
import type { ViewStore } from '../projections/views.js';
import { agentWorker, type AgentWorker } from './agent-worker.js';
import { startExecutor } from './executor.js';
import { JOB_KINDS } from './jobs.js';
import { planningWorker } from './planning-worker.js';
import { timerWorker } from './timer-worker.js';

export interface ExecutionDeps {
  store: EventStore;
  views: ViewStore;
  commands: Commands;
  bus: Bus;
  model: ChatModel;
  execution: ExecutionConfig;
  log: Logger;
  executor: boolean;
  worker: boolean;
  /** Ack wait of agent and planning jobs (default 30 s; working() heartbeats keep long model calls). */
  ackWaitMs?: number;
  /** Delay before a failed job's retries (default 1 s, 2 s, 5 s). */
  jobBackoffMs?: readonly number[];
  leaseTtlMs?: number;
  /** Jobs survive a restart of every process (NATS JetStream); the embedded bus loses them. */
  durableJobs?: boolean;
}

export interface Execution {
  executor: Runner | undefined;
  /** Stop taking jobs and wait for the ones in flight; then stop the executor. */
  stop(): Promise<void>;
}

/** Deliveries of a timer job: it naks itself once a minute until due. */
const TIMER_MAX_DELIVER = 100_000;

export async function startExecution(deps: ExecutionDeps): Promise<Execution> {
  const { commands, bus, log } = deps;
  const executor = deps.executor
    ? startExecutor({ store: deps.store, views: deps.views, commands, bus, execution: deps.execution, log: log.child({ component: 'executor' }), durableJobs: deps.durableJobs ?? false, ...(deps.leaseTtlMs !== undefined ? { leaseTtlMs: deps.leaseTtlMs } : {}) })
    : undefined;

  const consumers: JobConsumer[] = [];
  let agents: AgentWorker | undefined;
  if (deps.worker) {
    const workerLog = log.child({ component: 'worker' });
    const ackWaitMs = deps.ackWaitMs ?? 30_000;
    // A job in progress says it is alive well within its ack wait, or a model call longer than the ack
    // wait is handed to a second worker while the first still waits for the model (two calls, two answers).
    const heartbeatMs = Math.max(10, Math.min(5_000, Math.floor(ackWaitMs / 3)));
    agents = await agentWorker({ commands, bus, model: deps.model, maxTurns: deps.execution.maxTurns, modelTimeoutMs: deps.execution.modelTimeoutMs, log: workerLog, heartbeatMs });
    const planning = planningWorker({ commands, model: deps.model, modelTimeoutMs: deps.execution.modelTimeoutMs, log: workerLog });
    const timers = timerWorker({ commands, toolCallTimeoutS: deps.execution.toolCallTimeoutS });
    const jobOptions = {
      ackWaitMs,
      maxDeliver: 4,
      backoffMs: deps.jobBackoffMs ?? [1_000, 2_000, 5_000],
    };
    const concurrency = deps.execution.workerConcurrency;
    const recorded = (what: string, run: () => Promise<unknown>) => async (letter: DeadLetter) => {
      log.warn(`${what} gave up`, { job: letter.id, reason: letter.reason });
      try {
        await run();
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
      }
    };
    consumers.push(
      await bus.consume(JOB_KINDS.agentTurn, agents.handle, {
        ...jobOptions,
        concurrency,
        onDeadLetter: (letter) =>
          recorded('agent turn', () =>
            commands.failRun(
              String(letter.payload.run_id),
              { error: `the agent's turn failed ${letter.attempts} time(s): ${letter.reason}`, code: 'agent_failed' },
              { command_id: uuidv5(`dead:${letter.id}`) },
            ),
          )(letter),
      }),
      await bus.consume(JOB_KINDS.classify, alive(planning.classify, heartbeatMs), {
        ...jobOptions,
        concurrency,
        onDeadLetter: (letter) =>
          recorded('classification', () =>
            commands.failClassification(
              String(letter.payload.session_id),
              { message_id: String(letter.payload.message_id), reason: `classification failed: ${letter.reason}` },
              { command_id: uuidv5(`dead:${letter.id}`) },
            ),
          )(letter),
      }),
      await bus.consume(JOB_KINDS.replan, alive(planning.replan, heartbeatMs), {
        ...jobOptions,
        concurrency,
        onDeadLetter: (letter) =>
          recorded('re-plan', () =>
            commands.onPlan(String(letter.payload.plan_id), { type: 'FailPlan', reason: `re-planning failed: ${letter.reason}` }, { command_id: uuidv5(`dead:${letter.id}`) }),
          )(letter),
      }),
      await bus.consume(JOB_KINDS.planWake, timers.planWake, { concurrency, maxDeliver: TIMER_MAX_DELIVER, ackWaitMs: 30_000, backoffMs: [1_000] }),
      await bus.consume(JOB_KINDS.toolTimeout, timers.toolTimeout, { concurrency, maxDeliver: TIMER_MAX_DELIVER, ackWaitMs: 30_000, backoffMs: [1_000] }),
    );
  }

  return {
    executor,
    async stop() {
      agents?.stop();
      await Promise.all(consumers.map((c) => c.stop()));
      await executor?.stop();
    },
  };
}

/** A handler whose job says it is alive while it runs (classifying and planning wait for the model too). */
function alive(handler: (job: Job) => Promise<void>, heartbeatMs: number): (job: Job) => Promise<void> {
  return async (job) => {
    const heartbeat = setInterval(() => job.working(), heartbeatMs);
    try {
      await handler(job);
    } finally {
      clearInterval(heartbeat);
    }
  };
}
