// The conversation read model: a session as chat messages, in the shape the IDE's `SessionHistory`
// decodes (`ChatMessage`: role, content, name?, tool_call_id?, tool_calls?). The user's messages, each
// plan as an assistant message in markdown, and what became of the plan as a short message after it;
// agent switches are system messages named `agent_switched`, which the IDE's history loader turns into
// its agent-switch bubble. Tool calls and their results (agent runs) take the OpenAI form, so a run's
// messages fit without a new shape: an assistant message with `tool_calls` whose `function.arguments`
// is a JSON string, then a `tool` message with the same `tool_call_id`.
//
// Pure: `chatMessagesOf` turns one event into the messages it adds; the views projection numbers and
// stores them (one document per message, indexed per session by that number).
import type { DomainEvent } from '../events/catalog.js';
import { planMarkdown } from './plan-markdown.js';
import { planSummary, type PlanDoc } from './plan-view.js';

import { CONVERSATION } from './collections.js';
export { CONVERSATION };

export type ChatRole = 'user' | 'assistant' | 'system' | 'tool';

/** An OpenAI-style tool call; `arguments` is the JSON text of an object, as models write it. */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** One chat message. Absent fields are left out (the IDE reads them as null). */
export interface ChatMessage {
  role: ChatRole;
  content?: string;
  /** For `tool`: the tool's name; for `system`: what kind of notice (`agent_switched`). */
  name?: string;
  /** For `tool`: the call it answers. */
  tool_call_id?: string;
  /** For `assistant`: the calls it makes. */
  tool_calls?: ToolCall[];
}

export interface ConversationMessageDoc extends ChatMessage {
  session_id: string;
  /** 1, 2, 3 … per session: the message's place in the conversation (its index score). */
  seq: number;
  /** Time of the event that added it. */
  at: string;
  position: number;
  [key: string]: unknown;
}

/** The name the IDE's history loader recognises as an agent switch (`agent_repository_impl.dart`). */
export const AGENT_SWITCHED = 'agent_switched';

const assistant = (content: string): ChatMessage => ({ role: 'assistant', content });

/**
 * The chat messages one event adds to its session's conversation. `plan` is the plan's document after
 * the event (plan events only).
 */
export function chatMessagesOf(event: DomainEvent, plan?: PlanDoc): ChatMessage[] {
  switch (event.type) {
    case 'UserMessageReceived':
      return [{ role: 'user', content: event.data.content }];
    case 'AgentSwitched': {
      const { from_agent, to_agent, reason } = event.data;
      return [{ role: 'system', name: AGENT_SWITCHED, content: `Switched from the ${from_agent} agent to the ${to_agent} agent${reason ? `: ${reason}` : '.'}` }];
    }
    case 'PlanDrafted':
      return plan ? [assistant(planMarkdown(planSummary(plan)))] : [];
    case 'PlanApproved':
      return [assistant(event.data.decided_by === 'timeout' ? 'No decision came before the deadline: the plan was approved automatically.' : 'Plan approved.')];
    case 'PlanRejected':
      return [assistant(event.data.feedback ? `Plan rejected: ${event.data.feedback}` : 'Plan rejected.')];
    case 'PlanModificationRequested':
      return [assistant(`Changes requested: ${event.data.feedback}`)];
    case 'PlanApprovalExpired':
      return [assistant('The plan expired: no decision came before the deadline.')];
    case 'PlanSuperseded':
      return [assistant(`Plan superseded by ${event.data.reason === 'user_message' ? 'a new message' : 'a new plan'}.`)];
    case 'PlanCompleted':
      return [assistant('Plan completed.')];
    case 'PlanFailed':
      // A system message that says "error": the IDE's history loader shows it as an error.
      return [{ role: 'system', content: `Plan failed with an error: ${event.data.reason}` }];
    case 'PlanCancelled':
      return [assistant(event.data.reason ? `Plan cancelled: ${event.data.reason}` : 'Plan cancelled.')];
    default:
      return [];
  }
}
