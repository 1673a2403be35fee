// The agent worker: one model turn of a run per job. It rebuilds the run's conversation from the run's
// stream (so any worker can take any turn), asks the model, and records the answer: a final answer ends
// the run; tool calls go to the IDE (each judged by the session's tool policy first) and the job ends
// there, so no worker ever waits for a human. The run's next turn is another job, enqueued by the
// executor once the IDE has answered every call.
//
// Cancellation: the executor publishes a cancelled run's id on the abort topic; a worker running that
// run's model call aborts it (AbortSignal). A long model call keeps its job alive with working().
import type { Bus, Job, TopicSubscription } from '../bus/bus.js';
import { agentStep, type RunContext } from '../agents/agent-step.js';
import { ModelError, NoModelConfiguredError, type ChatModel } from '../agents/model.js';
import { decideToolCall, DEFAULT_TOOL_POLICY } from '../agents/tool-policy.js';
import type { Commands } from '../commands/service.js';
import { DomainError } from '../commands/errors.js';
import { readyForTurn, type RecordedCall, type RunState } from '../commands/run.js';
import { callIdFor } from '../commands/run-commands.js';
import { uuidv5 } from '../events/ids.js';
import type { Logger } from '../log.js';
import { ABORT_TOPIC, numberField, field } from './jobs.js';

export interface AgentWorkerDeps {
  commands: Commands;
  bus: Bus;
  model: ChatModel;
  maxTurns: number;
  modelTimeoutMs: number;
  log: Logger;
  /** How often a job in progress tells the queue it is alive (default 5 s). */
  heartbeatMs?: number;
}

export interface AgentWorker {
  handle(job: Job): Promise<void>;
  stop(): void;
}

export async function agentWorker(deps: AgentWorkerDeps): Promise<AgentWorker> {
  const { commands, model, log } = deps;
  const inFlight = new Map<string, AbortController>();
  let stopping = false;
  const subscription: TopicSubscription = await deps.bus.subscribe(ABORT_TOPIC, (data) => {
    const runId = new TextDecoder().decode(data);
    inFlight.get(runId)?.abort(new Error('the run was cancelled'));
  });

  const contextOf = (run: RunState): RunContext => ({
    agent: run.agent,
    task: run.task,
    ...(run.kind === 'subtask'
      ? { plan: { goal: run.goal ?? '', subtask_id: run.subtask_id, dependencies: run.dependencies ?? [] } }
      : { conversation: run.conversation }),
  });

  async function handle(job: Job): Promise<void> {
    const runId = field(job.payload, 'run_id');
    const turn = numberField(job.payload, 'turn');
    const { state: run } = await commands.runState(runId, { fresh: true });
    if (!readyForTurn(run) || run.turn + 1 !== turn) return; // done already, cancelled, or waiting for the IDE
    const meta = { command_id: uuidv5(`turn:${runId}:${turn}`), causation_id: job.id };

    if (!model.configured) {
      await settle(() => commands.failRun(runId, { error: new NoModelConfiguredError().message, code: 'no_model_configured' }, meta));
      return;
    }
    const policy = await toolPolicyOf(run.session_id);
    const controller = new AbortController();
    inFlight.set(runId, controller);
    const heartbeat = setInterval(() => job.working(), deps.heartbeatMs ?? 5_000);
    let step;
    try {
      step = await agentStep(model, contextOf(run), run.turns, { signal: controller.signal, timeoutMs: deps.modelTimeoutMs });
    } catch (error) {
      // Stopping this worker: the job goes back to the queue for another one (nak), it is not done.
      if (controller.signal.aborted && stopping) throw new Error('the worker stopped during the model call');
      if (controller.signal.aborted) return log.info('model call aborted: the run was cancelled', { run_id: runId });
      if (error instanceof NoModelConfiguredError) {
        await settle(() => commands.failRun(runId, { error: error.message, code: 'no_model_configured' }, meta));
        return;
      }
      // A model that fails is retried with the job's backoff; its last attempt fails the run (onDeadLetter).
      throw error instanceof ModelError ? new Error(`the model call failed (${error.kind}): ${error.message}`) : error;
    } finally {
      clearInterval(heartbeat);
      inFlight.delete(runId);
    }

    // Call ids the IDE sees name their run; the replay to the model uses the same ids.
    const ids = new Map<string, string>();
    const toolCalls = step.message.tool_calls.map((call, index) => {
      const id = callIdFor(runId, turn, index);
      ids.set(call.id, id);
      return { id, name: call.name, arguments: call.arguments };
    });
    const calls: RecordedCall[] =
      step.kind === 'final'
        ? []
        : step.calls.map((call): RecordedCall => {
            const id = ids.get(call.id) ?? call.id;
            if ('error' in call) return { call_id: id, tool_name: call.name, error: call.error };
            const decision = decideToolCall(policy, call.name, call.arguments);
            if (decision.action === 'refuse') return { call_id: id, tool_name: call.name, error: `Refused by the session's tool policy: ${decision.reason}.` };
            return { call_id: id, tool_name: call.name, arguments: call.arguments, requires_approval: decision.requires_approval, policy: decision.reason };
          });
    await settle(() =>
      commands.recordTurn(
        runId,
        {
          turn,
          content: step.message.content,
          tool_calls: toolCalls,
          finish_reason: step.finishReason,
          usage: step.usage,
          calls,
          ...(step.kind === 'final' ? { final: step.content } : {}),
          max_turns: deps.maxTurns,
        },
        meta,
      ),
    );
  }

  async function toolPolicyOf(sessionId: string) {
    return (await commands.toolPolicy(sessionId)) ?? DEFAULT_TOOL_POLICY;
  }

  /** A run that ended meanwhile (cancelled, timed out) refuses the record: the turn is simply dropped. */
  async function settle(run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
    } catch (error) {
      if (error instanceof DomainError && error.status === 409) return log.debug('turn dropped', { code: error.code });
      throw error;
    }
  }

  return {
    handle,
    stop: () => {
      stopping = true;
      subscription.unsubscribe();
      for (const controller of inFlight.values()) controller.abort(new Error('the worker is stopping'));
    },
  };
}
