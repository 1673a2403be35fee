// The executor: a process manager that reacts to the log and nothing else. It runs in the processor
// runner (one active instance per deployment, holding a lease; its checkpoint is its position), so a
// restart or a second instance neither loses nor repeats work: every command it sends has an id derived
// from the event that caused it (a repeat is answered from the log), and every job it enqueues has such
// an id too (the queue drops a repeat within its duplicate window; a worker checks the state anyway).
//
// What it does, event by event:
//   message received / queued message started → classify job
//   atomic task classified                    → the task's run starts
//   plan approved                             → execution starts
//   execution started, subtask succeeded or due for retry → dispatch what is ready
//   subtask dispatched                        → its run starts, the subtask is started
//   run started / its tool calls all answered → next model turn (agent job)
//   tool call sent to the IDE                 → its timeout (a job that waits)
//   run ended                                 → the subtask succeeds or fails; an atomic task finishes
//   subtask out of retries                    → re-plan (architect job) or fail the plan
//   modification requested                    → re-plan with the user's feedback
//   plan or run cancelled                     → runs cancelled, model calls aborted
//   work ended                                → the next queued message starts
import type { Bus } from '../bus/bus.js';
import type { CommandMeta } from '../commands/handle.js';
import type { Commands } from '../commands/service.js';
import { DomainError } from '../commands/errors.js';
import { isTerminal, type PlanState } from '../commands/plan.js';
import { readySubtasks } from '../commands/readiness.js';
import { readyForTurn } from '../commands/run.js';
import type { ExecutionConfig } from '../config.js';
import { parseStreamName, toDomainEvent, type DomainEvent } from '../events/catalog.js';
import { uuidv5 } from '../events/ids.js';
import type { EventStore, StoredEvent } from '../events/store.js';
import type { Logger } from '../log.js';
import { startRunner, type Runner } from '../processors/runner.js';
import type { ViewStore } from '../projections/views.js';
import { ABORT_TOPIC, JOB_KINDS } from './jobs.js';
import { OPEN_WORK_INDEX, openWorkOps, resumePosition } from './open-work.js';

export const EXECUTOR_NAME = 'executor';

/**
 * The run of a subtask attempt: derived, so a repeated dispatch names the same run. A re-planned
 * revision starts its subtasks' attempts again at 1 (often with the same ids), so the revision is part
 * of the name (revision 1 keeps the shorter form).
 */
export const subtaskRunId = (planId: string, subtaskId: string, attempt: number, revision = 1) =>
  uuidv5(revision === 1 ? `run:${planId}:${subtaskId}:${attempt}` : `run:${planId}:r${revision}:${subtaskId}:${attempt}`);
/** The run answering an atomic message. */
export const atomicRunId = (messageId: string) => uuidv5(`run:message:${messageId}`);

export interface ExecutorDeps {
  store: EventStore;
  views: ViewStore;
  commands: Commands;
  bus: Bus;
  execution: ExecutionConfig;
  log: Logger;
  leaseTtlMs?: number;
  now?: () => number;
  /** The bus keeps jobs across restarts (NATS JetStream); the embedded one does not. */
  durableJobs?: boolean;
}

export function startExecutor(deps: ExecutorDeps): Runner {
  const react = executorReactions(deps);
  // The streams with open work, as committed (loaded at activation, then kept up to date here).
  let open = new Set<string>();
  return startRunner({
    store: deps.store,
    views: deps.views,
    ...(deps.leaseTtlMs !== undefined ? { leaseTtlMs: deps.leaseTtlMs } : {}),
    log: (msg) => deps.log.warn(msg, { processor: EXECUTOR_NAME }),
    processor: {
      name: EXECUTOR_NAME,
      leaseName: `processor:${EXECUTOR_NAME}`,
      version: 1,
      // With no checkpoint it starts from the beginning: every reaction checks the state it acts on, so
      // old events cost a look and change nothing, and a plan approved before the executor ran still runs.
      // Jobs of an embedded bus do not survive the process: they are derived again by reading the log from
      // the oldest work still open (a job whose work is done is dropped by its worker).
      async activate(checkpoint) {
        open = new Set((await deps.views.range(OPEN_WORK_INDEX, { limit: 1_000_000 })).map((m) => m.id));
        if (checkpoint === undefined) return 0;
        return deps.durableJobs ? checkpoint.position : resumePosition(deps.views, checkpoint.position);
      },
      async handle(events: StoredEvent[]) {
        // Each stream's events in order; different streams at once (a batch spans many plans and runs,
        // and each reaction waits for commits). Reactions check the state they act on, so the order
        // across streams does not matter: a later event repeats what an earlier one could not yet do.
        const byStream = new Map<string, StoredEvent[]>();
        for (const stored of events) {
          const list = byStream.get(stored.stream);
          if (list) list.push(stored);
          else byStream.set(stored.stream, [stored]);
        }
        await Promise.all(
          [...byStream.values()].map(async (list) => {
            for (const stored of list) await react(stored);
          }),
        );
        // Open work changes commit with the checkpoint; a stream already open keeps its first position.
        const ops = openWorkOps(events, open);
        return {
          ops,
          committed() {
            for (const op of ops) {
              if (op.op === 'index') open.add(op.id);
              else if (op.op === 'unindex') open.delete(op.id);
            }
          },
        };
      },
      deactivate: () => {
        open = new Set();
      },
    },
  });
}

/** The reaction to one stored event (exported for tests that drive it event by event). */
export function executorReactions(deps: ExecutorDeps) {
  const { commands, bus, execution, log } = deps;
  const now = deps.now ?? Date.now;

  const metaOf = (stored: StoredEvent, purpose: string): CommandMeta => ({
    command_id: uuidv5(`${stored.id}#${purpose}`),
    correlation_id: stored.metadata.correlation_id ?? stored.metadata.command_id,
    causation_id: stored.id,
  });

  /** A command the state already moved past is refused or a no-op: either way there is nothing to do. */
  async function attempt(what: string, run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      log.debug('executor: nothing to do', { what, code: error.code });
    }
  }

  const enqueue = (kind: string, payload: Record<string, string | number>, id: string) => bus.enqueue(kind, payload, { id });

  async function planOf(planId: string): Promise<PlanState | undefined> {
    try {
      return (await commands.planState(planId)).state;
    } catch (error) {
      if (error instanceof DomainError) return undefined; // its session was deleted
      throw error;
    }
  }

  async function dispatchReady(planId: string, stored: StoredEvent): Promise<void> {
    const plan = await planOf(planId);
    if (!plan) return;
    const { ready, wakeAt } = readySubtasks(plan, now());
    if (ready.length > 0) {
      await attempt('dispatch', () => commands.onPlan(planId, { type: 'DispatchReady', now: new Date(now()) }, metaOf(stored, 'dispatch')));
    }
    if (wakeAt !== undefined) {
      const at = new Date(wakeAt).toISOString();
      await enqueue(JOB_KINDS.planWake, { plan_id: planId, at }, `wake:${planId}:${at}`);
    }
  }

  async function startSubtaskRun(planId: string, subtaskId: string, attemptNo: number, stored: StoredEvent): Promise<void> {
    const plan = await planOf(planId);
    if (!plan || isTerminal(plan.status)) return;
    const subtask = plan.subtasks.find((s) => s.id === subtaskId);
    // A dispatch of an earlier attempt or revision (read again after a restart) starts nothing.
    if (!subtask || subtask.attempt !== attemptNo || (subtask.status !== 'dispatched' && subtask.status !== 'running')) return;
    const runId = subtaskRunId(planId, subtaskId, attemptNo, plan.revision);
    const dependencies = subtask.dependencies.map((id) => {
      const dep = plan.subtasks.find((s) => s.id === id);
      return { id, description: dep?.description ?? id, ...(dep?.result !== undefined ? { result: dep.result } : {}) };
    });
    await commands.startRun(
      {
        run_id: runId,
        session_id: plan.session_id,
        kind: 'subtask',
        agent: subtask.agent,
        task: subtask.description,
        plan_id: planId,
        subtask_id: subtaskId,
        attempt: attemptNo,
        goal: plan.goal,
        dependencies,
      },
      metaOf(stored, 'start-run'),
    );
    await attempt('start subtask', () => commands.onPlan(planId, { type: 'StartSubtask', subtask_id: subtaskId, attempt: attemptNo, run_id: runId }, metaOf(stored, 'start-subtask')));
  }

  /** Cancel the runs of a plan's subtasks that were in flight, and abort their model calls. */
  async function cancelPlanRuns(plan: PlanState, stored: StoredEvent, reason: string): Promise<void> {
    for (const subtask of plan.subtasks) {
      if (subtask.attempt === 0) continue;
      if (subtask.status !== 'cancelled' && subtask.status !== 'dispatched' && subtask.status !== 'running') continue;
      const runId = subtaskRunId(plan.plan_id, subtask.id, subtask.attempt, plan.revision);
      await attempt('cancel run', () => commands.cancelRun(runId, { reason }, metaOf(stored, `cancel-run:${runId}`)));
    }
  }

  async function afterWorkEnded(sessionId: string, stored: StoredEvent): Promise<void> {
    await attempt('start queued message', () => commands.startQueuedMessage(sessionId, metaOf(stored, 'dequeue')));
  }

  async function onSessionEvent(sessionId: string, event: DomainEvent, stored: StoredEvent): Promise<void> {
    switch (event.type) {
      case 'UserMessageReceived':
        if (event.data.queued) return;
        await enqueue(JOB_KINDS.classify, { session_id: sessionId, message_id: event.data.message_id }, `classify:${event.data.message_id}`);
        return;
      case 'QueuedMessageStarted':
        await enqueue(JOB_KINDS.classify, { session_id: sessionId, message_id: event.data.message_id }, `classify:${event.data.message_id}`);
        return;
      case 'TaskClassified': {
        if (event.data.kind !== 'atomic' || !event.data.run_id) return;
        const { session } = await commands.sessionState(sessionId).catch(() => ({ session: undefined }));
        if (!session || session.current_run_id !== event.data.run_id || !session.current_task) return;
        const conversation = session.recent.slice(0, -1); // the last entry is the task itself
        await commands.startRun(
          {
            run_id: event.data.run_id,
            session_id: sessionId,
            kind: 'atomic',
            agent: event.data.agent_type ?? session.agent_type,
            task: session.current_task.content,
            ...(conversation.length ? { conversation: [...conversation] } : {}),
          },
          metaOf(stored, 'start-run'),
        );
        return;
      }
      case 'TaskFinished':
      case 'TaskClassificationFailed':
        await afterWorkEnded(sessionId, stored);
        return;
      default:
        return;
    }
  }

  async function onPlanEvent(planId: string, event: DomainEvent, stored: StoredEvent): Promise<void> {
    switch (event.type) {
      case 'PlanApproved':
        await attempt('start execution', () => commands.onPlan(planId, { type: 'StartExecution', max_parallel: execution.maxParallel }, metaOf(stored, 'start-execution')));
        return;
      case 'PlanExecutionStarted':
      case 'SubtaskSucceeded':
      case 'SubtaskRetryScheduled':
        await dispatchReady(planId, stored);
        return;
      case 'SubtaskDispatched':
        await startSubtaskRun(planId, event.data.subtask_id, event.data.attempt, stored);
        return;
      case 'SubtaskFailed': {
        if (event.data.will_retry) return;
        const plan = await planOf(planId);
        if (!plan || plan.status !== 'error_handling') return;
        // Its siblings still running are stopped: the plan is being replaced or failed.
        await cancelPlanRuns({ ...plan, subtasks: plan.subtasks.filter((s) => s.status === 'dispatched' || s.status === 'running') }, stored, 'the plan is in error handling');
        if (plan.revision <= execution.maxReplans) {
          await attempt('request re-plan', () =>
            commands.onPlan(planId, { type: 'RequestReplan', reason: `subtask ${event.data.subtask_id} failed: ${event.data.error}` }, metaOf(stored, 'replan')),
          );
        } else {
          const reason = `subtask ${event.data.subtask_id} failed after ${event.data.attempt} attempt(s): ${event.data.error}`;
          await attempt('fail plan', () => commands.onPlan(planId, { type: 'FailPlan', reason }, metaOf(stored, 'fail')));
        }
        return;
      }
      case 'PlanReplanRequested':
      case 'PlanModificationRequested': {
        const plan = await planOf(planId);
        if (!plan || plan.status !== 'replanning') return;
        await enqueue(JOB_KINDS.replan, { plan_id: planId, revision: plan.revision }, `replan:${planId}:${plan.revision}`);
        return;
      }
      case 'PlanCancelled':
      case 'PlanFailed': {
        const plan = await planOf(planId);
        if (plan) {
          await cancelPlanRuns(plan, stored, event.type === 'PlanCancelled' ? (event.data.reason ?? 'the plan was cancelled') : 'the plan failed');
          await afterWorkEnded(plan.session_id, stored);
        }
        return;
      }
      case 'PlanCompleted':
      case 'PlanRejected':
      case 'PlanApprovalExpired': {
        const plan = await planOf(planId);
        if (plan) await afterWorkEnded(plan.session_id, stored);
        return;
      }
      default:
        return;
    }
  }

  async function onRunEvent(runId: string, event: DomainEvent, stored: StoredEvent): Promise<void> {
    switch (event.type) {
      case 'RunStarted':
        await enqueue(JOB_KINDS.agentTurn, { run_id: runId, turn: 1 }, `turn:${runId}:1`);
        return;
      case 'AgentReplied':
      case 'ToolResultReceived':
      case 'ToolCallRejected': {
        const { state } = await commands.runState(runId, { fresh: true });
        if (!readyForTurn(state)) return;
        const turn = state.turn + 1;
        await enqueue(JOB_KINDS.agentTurn, { run_id: runId, turn }, `turn:${runId}:${turn}`);
        return;
      }
      case 'ToolCallRequested': {
        // Read again at start (an embedded bus), an old call long answered needs no timer waiting in the queue.
        const { state } = await commands.runState(runId, { fresh: true });
        if (state.status !== 'running' || !state.pending[event.data.call_id]) return;
        const at = new Date(Date.parse(stored.metadata.at) + execution.toolCallTimeoutS * 1000).toISOString();
        await enqueue(JOB_KINDS.toolTimeout, { run_id: runId, call_id: event.data.call_id, at }, `timeout:${event.data.call_id}`);
        return;
      }
      case 'RunCancelled':
        bus.publish(ABORT_TOPIC, new TextEncoder().encode(runId));
        await finishRun(runId, stored);
        return;
      case 'RunSucceeded':
      case 'RunFailed':
        await finishRun(runId, stored);
        return;
      default:
        return;
    }
  }

  /** A run ended: its subtask succeeds or fails (retried with backoff), or its atomic task finishes. */
  async function finishRun(runId: string, stored: StoredEvent): Promise<void> {
    const { state: run } = await commands.runState(runId, { fresh: true });
    if (!run.exists) return;
    if (run.kind === 'atomic') {
      await attempt('finish task', () =>
        commands.finishTask(
          run.session_id,
          {
            run_id: runId,
            status: run.status === 'succeeded' ? 'succeeded' : run.status === 'cancelled' ? 'cancelled' : 'failed',
            ...(run.result !== undefined ? { answer: run.result } : {}),
            ...(run.status !== 'succeeded' && run.error !== undefined ? { error: run.error } : {}),
          },
          metaOf(stored, 'finish-task'),
        ),
      );
      return;
    }
    if (!run.plan_id || !run.subtask_id || run.attempt === undefined) return;
    const planId = run.plan_id;
    const subtaskId = run.subtask_id;
    const attemptNo = run.attempt;
    // A run of an earlier revision (stopped by the re-plan) says nothing about this revision's subtask of the same id.
    const plan = await planOf(planId);
    if (!plan || subtaskRunId(planId, subtaskId, attemptNo, plan.revision) !== runId) return;
    if (run.status === 'succeeded') {
      await attempt('complete subtask', () =>
        commands.onPlan(planId, { type: 'CompleteSubtask', subtask_id: subtaskId, attempt: attemptNo, ...(run.result !== undefined ? { result: run.result } : {}) }, metaOf(stored, 'complete-subtask')),
      );
    } else if (run.status === 'failed') {
      // Without a model every attempt and every re-plan would fail the same way: the plan fails now.
      const hopeless = run.error_code === 'no_model_configured';
      await attempt('fail subtask', () =>
        commands.onPlan(
          planId,
          {
            type: 'FailSubtask',
            subtask_id: subtaskId,
            attempt: attemptNo,
            error: run.error ?? 'the run failed',
            now: new Date(Date.parse(stored.metadata.at)),
            max_attempts: hopeless ? attemptNo : execution.maxAttempts,
            backoff_ms: execution.retryBackoffMs,
          },
          metaOf(stored, 'fail-subtask'),
        ),
      );
      if (hopeless) {
        await attempt('fail plan', () =>
          commands.onPlan(planId, { type: 'FailPlan', reason: `subtask ${subtaskId} cannot run: ${run.error ?? 'no model configured'}` }, metaOf(stored, 'fail-plan')),
        );
      }
    }
  }

  return async function react(stored: StoredEvent): Promise<void> {
    const stream = parseStreamName(stored.stream);
    const event = stream && toDomainEvent(stored);
    if (!stream || !event) return;
    if (stream.kind === 'session') await onSessionEvent(stream.id, event, stored);
    else if (stream.kind === 'plan') await onPlanEvent(stream.id, event, stored);
    else await onRunEvent(stream.id, event, stored);
  };
}
