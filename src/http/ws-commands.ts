// Inbound socket frames → the same use cases the HTTP API runs. A command's consequences reach the IDE
// through the feed (the frames its events project); a refusal throws the DomainError the HTTP API would
// answer with, and the socket turns it into an error frame with the same code.
import { DomainError, conflict, notFound } from '../commands/errors.js';
import type { CommandMeta } from '../commands/handle.js';
import type { Commands } from '../commands/service.js';
import { newId, uuidv5 } from '../events/ids.js';
import type { Metrics } from './metrics.js';
import { ProtocolError, type Inbound } from './ws-protocol.js';

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

  /** The plan a cancel addresses: the one named (it must be this session's) or the session's current one. */
  async function planToCancel(sessionId: string, planId: string | undefined): Promise<string> {
    if (planId !== undefined) {
      const plan = await commands.planState(planId);
      if (plan.state.session_id !== sessionId) throw notFound('plan', planId);
      return planId;
    }
    const { session } = await commands.sessionState(sessionId);
    if (!session.current_plan_id) throw conflict('nothing_to_cancel', `session ${sessionId} has no plan to cancel`, { session_id: sessionId });
    return session.current_plan_id;
  }

  /** Run a frame's command as `principal` (the deciders check that it may). */
  return async function run(sessionId: string, frame: CommandFrame, principal: string): Promise<void> {
    switch (frame.type) {
      case 'user_message':
        await counted('ReceiveUserMessage', () =>
          commands.sendUserMessage(sessionId, { content: frame.content, agent_type: frame.agent_type }, metaOf(sessionId, frame.type, frame.command_id, principal)),
        );
        return;
      case 'plan_decision':
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
        const planId = await planToCancel(sessionId, frame.plan_id);
        await counted('CancelPlan', () => commands.cancelPlan(planId, { reason: frame.reason ?? 'cancelled from the IDE' }, metaOf(sessionId, frame.type, frame.command_id, principal)));
        return;
      }
      case 'tool_call_result':
      case 'hitl_decision':
        // Tool calls come with agent runs (issue 6); until then no call can be waiting for an answer.
        throw new ProtocolError('unknown_call', `no tool call ${frame.call_id} is waiting for an answer in this session`, { call_id: frame.call_id });
    }
  };
}
