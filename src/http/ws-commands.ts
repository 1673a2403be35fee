// Inbound socket frames → the same use cases the HTTP API runs. A command's consequences reach the IDE
// through the feed (the frames its events project); a refusal throws the DomainError the HTTP API would
// answer with, and the socket turns it into an error frame with the same code.
import { DomainError, conflict, notFound } from '../commands/errors.js';
import type { CommandMeta } from '../commands/handle.js';
import type { Commands } from '../commands/service.js';
import { runOfCall } from '../commands/run-commands.js';
import { accessRefusal } from '../commands/access.js';
import { newId, uuidv5 } from '../events/ids.js';
import type { Metrics } from './metrics.js';
import type { Inbound } from './ws-protocol.js';

/** A client-given command_id makes a resent frame a retry of the same command (DESIGN §1), as Idempotency-Key does over HTTP. */
function metaOf(sessionId: string, type: string, commandId: string | undefined, principal: string): CommandMeta {
  // Per principal, as Idempotency-Keys are: one principal's command_id never answers for another's.
  return { command_id: commandId === undefined ? newId() : uuidv5(`websocket ${principal} ${sessionId} ${type} ${commandId}`), principal };
}

export type CommandFrame = Exclude<Inbound, { type: 'ping' } | { type: 'resume' }>;

export function wsCommands(commands: Commands, metrics?: Metrics) {
  async function counted<T extends { changed: boolean }>(name: string, run: () => Promise<T>): Promise<T> {
    try {
      const result = await run();
      metrics?.commands.inc({ command: name, outcome: result.changed ? 'applied' : 'unchanged' });
      return result;
    } catch (error) {
      metrics?.commands.inc({ command: name, outcome: error instanceof DomainError ? 'refused' : 'failed' });
      throw error;
    }
  }

  /**
   * What a cancel addresses: the plan named (it must be this session's), else the session's current
   * plan, else its running atomic task.
   */
  async function toCancel(sessionId: string, planId: string | undefined): Promise<{ plan_id: string } | { run_id: string }> {
    if (planId !== undefined) {
      const plan = await commands.planState(planId);
      if (plan.state.session_id !== sessionId) throw notFound('plan', planId);
      return { plan_id: planId };
    }
    // Fresh: the executor that started the task may be another process.
    const { session } = await commands.sessionState(sessionId, { fresh: true });
    if (session.current_plan_id) return { plan_id: session.current_plan_id };
    if (session.current_run_id) return { run_id: session.current_run_id };
    throw conflict('nothing_to_cancel', `session ${sessionId} has no plan or task to cancel`, { session_id: sessionId });
  }

  /** Whether an approval request id names a tool call of this session's runs (the IDE's approval path answers both). */
  async function isToolCall(sessionId: string, approvalRequestId: string): Promise<boolean> {
    const runId = runOfCall(approvalRequestId);
    if (runId === undefined) return false;
    const run = await commands.runState(runId, { fresh: true });
    return run.state.exists && run.state.session_id === sessionId;
  }

  /** Run a frame's command as `principal` (the deciders check that it may). */
  return async function run(sessionId: string, frame: CommandFrame, principal: string): Promise<void> {
    switch (frame.type) {
      case 'user_message':
        await counted('ReceiveUserMessage', () =>
          commands.sendUserMessage(
            sessionId,
            { content: frame.content, agent_type: frame.agent_type, strategy: frame.strategy },
            metaOf(sessionId, frame.type, frame.command_id, principal),
          ),
        );
        return;
      case 'plan_decision':
        if (await isToolCall(sessionId, frame.approval_request_id)) {
          // The IDE's unified approval dialog decides tool calls with the plan's words.
          const edit = frame.decision === 'modify' && frame.modified_data !== undefined;
          const decision = frame.decision === 'reject' ? 'reject' : edit ? 'edit' : 'approve';
          await counted('DecideToolCall', () =>
            commands.decideToolCall(
              sessionId,
              {
                call_id: frame.approval_request_id,
                decision,
                ...(edit ? { modified_arguments: frame.modified_data } : {}),
                ...(decision === 'reject' && frame.feedback !== undefined ? { feedback: frame.feedback } : {}),
              },
              metaOf(sessionId, 'hitl_decision', frame.command_id, principal),
            ),
          );
          return;
        }
        await counted('DecidePlan', () =>
          commands.decideSessionPlan(
            sessionId,
            { approval_request_id: frame.approval_request_id, decision: frame.decision, feedback: frame.feedback },
            metaOf(sessionId, frame.type, frame.command_id, principal),
          ),
        );
        return;
      case 'switch_agent':
        await counted('SwitchAgent', () =>
          commands.switchAgent(sessionId, { agent_type: frame.agent_type, reason: frame.reason }, metaOf(sessionId, frame.type, frame.command_id, principal)),
        );
        return;
      case 'cancel': {
        const target = await toCancel(sessionId, frame.plan_id);
        const reason = frame.reason ?? 'cancelled from the IDE';
        const meta = metaOf(sessionId, frame.type, frame.command_id, principal);
        if ('plan_id' in target) await counted('CancelPlan', () => commands.cancelPlan(target.plan_id, { reason }, meta));
        else {
          // The run decider knows no principals: the session says who may stop its work.
          const refusal = accessRefusal(sessionId, principal, (await commands.sessionAccess(sessionId, principal)).access, 'command');
          if (refusal) throw refusal;
          await counted('CancelRun', () => commands.cancelRun(target.run_id, { reason }, meta));
        }
        return;
      }
      case 'tool_call_result':
        // An unknown call id is the run commands' DomainError `unknown_call` (404), an error frame.
        await counted('AnswerToolCall', () =>
          commands.answerToolCall(
            sessionId,
            { call_id: frame.call_id, result: frame.result, error: frame.error },
            metaOf(sessionId, frame.type, frame.command_id, principal),
          ),
        );
        return;
      case 'hitl_decision':
        await counted('DecideToolCall', () =>
          commands.decideToolCall(
            sessionId,
            {
              call_id: frame.call_id,
              decision: frame.decision,
              modified_arguments: frame.modified_arguments,
              feedback: frame.feedback,
              remember: frame.remember,
            },
            metaOf(sessionId, frame.type, frame.command_id, principal),
          ),
        );
        return;
    }
  };
}
