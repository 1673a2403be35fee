// Workers that think before anything runs: classify a message (answer it with one agent, or plan it)
// and draft a plan's next revision (after `modify`, or after a subtask ran out of retries). Both use the
// model when one is configured and fall back to the heuristics when it fails or is absent; the plan
// records which produced it. A job for a message or revision that something newer replaced is dropped.
import type { Job } from '../bus/bus.js';
import type { ChatModel } from '../agents/model.js';
import type { Commands } from '../commands/service.js';
import { DomainError } from '../commands/errors.js';
import { uuidv5 } from '../events/ids.js';
import type { Logger } from '../log.js';
import { classifyMessage } from '../planning/classifier.js';
import { draftPlan } from '../planning/architect.js';
import { steeringMode } from '../events/catalog.js';
import { atomicRunId } from './executor.js';
import { field, numberField } from './jobs.js';

export interface PlanningWorkerDeps {
  commands: Commands;
  model: ChatModel;
  modelTimeoutMs: number;
  log: Logger;
}

export function planningWorker(deps: PlanningWorkerDeps) {
  const { commands, model, log } = deps;

  async function classify(job: Job): Promise<void> {
    const sessionId = field(job.payload, 'session_id');
    const messageId = field(job.payload, 'message_id');
    const { session } = await commands.sessionState(sessionId).catch((error: unknown) => {
      if (error instanceof DomainError) return { session: undefined };
      throw error;
    });
    const message = session?.pending_message;
    if (!session || session.phase !== 'classify' || message?.message_id !== messageId) return; // replaced or done
    const conversation = session.recent.slice(0, -1);
    const verdict = await classifyMessage({
      message: message.content,
      mode: steeringMode(session.mode),
      conversation,
      model,
      timeoutMs: deps.modelTimeoutMs,
    });
    if (verdict.fallback) log.info('classified heuristically', { session_id: sessionId, why: verdict.fallback });
    const meta = { command_id: uuidv5(`classify:${messageId}`), causation_id: messageId, correlation_id: messageId };
    try {
      if (verdict.kind === 'atomic') {
        await commands.classifyAtomic(sessionId, { message_id: messageId, run_id: atomicRunId(messageId), agent_type: verdict.agent, source: verdict.source }, meta);
        return;
      }
      const drafted = await draftPlan({ goal: message.content, conversation }, { model, timeoutMs: deps.modelTimeoutMs });
      if (drafted.fallback) log.info('planned heuristically', { session_id: sessionId, why: drafted.fallback });
      await commands.createPlan({ session_id: sessionId, goal: drafted.goal, subtasks: drafted.subtasks, source: drafted.source, message_id: messageId }, meta);
    } catch (error) {
      // The session moved on meanwhile (a newer message, cancelled, deleted): nothing to answer.
      if (error instanceof DomainError && error.status !== 400) return log.debug('classification dropped', { session_id: sessionId, code: error.code });
      if (error instanceof DomainError) {
        await commands.failClassification(sessionId, { message_id: messageId, reason: error.message }, { ...meta, command_id: uuidv5(`classify-failed:${messageId}`) });
        return;
      }
      throw error;
    }
  }

  async function replan(job: Job): Promise<void> {
    const planId = field(job.payload, 'plan_id');
    const revision = numberField(job.payload, 'revision');
    const plan = (await commands.planState(planId).catch(() => undefined))?.state;
    if (!plan || plan.status !== 'replanning' || plan.revision !== revision) return;
    const approval = plan.approvals.at(-1);
    const feedback = approval?.decision === 'modify' && approval.revision === revision ? approval.feedback : undefined;
    const failed = plan.subtasks.find((s) => s.status === 'failed');
    const { session } = await commands.sessionState(plan.session_id).catch(() => ({ session: undefined }));
    const drafted = await draftPlan(
      {
        goal: plan.goal,
        ...(feedback !== undefined ? { feedback } : {}),
        ...(failed && feedback === undefined
          ? {
              replan: {
                previous: plan.subtasks.map((s) => ({
                  id: s.id,
                  description: s.description,
                  agent: s.agent,
                  dependencies: s.dependencies,
                  status: s.status,
                  ...(s.result !== undefined ? { result: s.result } : {}),
                  ...(s.error !== undefined ? { error: s.error } : {}),
                })),
                failure: { subtask_id: failed.id, error: failed.error ?? 'failed' },
              },
            }
          : {}),
        ...(session ? { conversation: session.recent } : {}),
      },
      { model, timeoutMs: deps.modelTimeoutMs },
    );
    try {
      await commands.revisePlan(
        planId,
        {
          subtasks: drafted.subtasks,
          source: drafted.source,
          feedback: feedback ?? (failed ? `re-planned after subtask ${failed.id} failed: ${failed.error ?? 'failed'}` : undefined),
        },
        { command_id: uuidv5(`replan:${planId}:${revision}`), causation_id: job.id },
      );
    } catch (error) {
      if (error instanceof DomainError && error.status !== 400) return;
      throw error;
    }
  }

  return { classify, replan };
}
