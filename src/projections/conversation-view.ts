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
import type { DomainEvent, RunEvent } from '../events/catalog.js';
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

/** What the conversation needs to know of a run: atomic runs speak in it, a plan's subtasks do not. */
export interface ConversationRun {
  kind: 'atomic' | 'subtask';
  /** The tool of each call sent to the IDE. */
  call_tools?: Readonly<Record<string, string>> | undefined;
}

/** The longest tool result kept in the conversation (the run's stream keeps all of it). */
export const MAX_TOOL_CONTENT = 20_000;

function toolContent(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? null);
  return text.length > MAX_TOOL_CONTENT ? `${text.slice(0, MAX_TOOL_CONTENT)} …(truncated)` : text;
}

/**
 * The chat messages one event of an atomic task's run adds: the agent's words, each tool call as an
 * assistant message with `tool_calls` (one per message: the IDE's history loader reads the first), and
 * each answer as a `tool` message. `run` is the run's document before the event.
 */
export function runChatMessagesOf(event: RunEvent, run: ConversationRun): ChatMessage[] {
  if (run.kind !== 'atomic') return [];
  const tool = (callId: string) => run.call_tools?.[callId];
  const answer = (callId: string, content: string): ChatMessage => {
    const name = tool(callId);
    return { role: 'tool', tool_call_id: callId, ...(name !== undefined ? { name } : {}), content };
  };
  switch (event.type) {
    case 'AgentReplied': {
      const content = event.data.content ?? '';
      return content.trim() === '' ? [] : [assistant(content)];
    }
    case 'ToolCallRequested': {
      const { call_id, tool_name, arguments: args } = event.data;
      return [{ role: 'assistant', tool_calls: [{ id: call_id, type: 'function', function: { name: tool_name, arguments: JSON.stringify(args) } }] }];
    }
    case 'ToolResultReceived':
      return [answer(event.data.call_id, event.data.error !== undefined ? toolContent({ error: event.data.error }) : toolContent(event.data.result))];
    case 'ToolCallRejected':
      return [answer(event.data.call_id, toolContent({ error: `User rejected the call${event.data.feedback ? `: ${event.data.feedback}` : ''}` }))];
    case 'RunFailed':
      return [{ role: 'system', content: `The task failed with an error: ${event.data.error}` }];
    case 'RunCancelled':
      return [assistant(event.data.reason ? `Stopped: ${event.data.reason}` : 'Stopped.')];
    default:
      return [];
  }
}
