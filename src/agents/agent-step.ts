// One agent turn. The run's conversation (rebuilt from its stream by whichever worker takes the turn)
// becomes the model's messages; the model answers with a final answer or tool calls. Each tool call
// comes back canonical (IDE tool names), with its parsed arguments, or with the error to report to
// the model instead (arguments that are not JSON or do not fit the tool, a tool the agent may not
// use, a file the agent may not write). No I/O but the model call; deciding approval is the tool
// policy's job and sending calls to the IDE the worker's.
import type { AgentType } from '../events/catalog.js';
import { agentDefinition, type AgentDefinition } from './agents.js';
import type { AssistantToolCall, ChatMessage, ChatModel, Usage } from './model.js';
import { canonicalToolName, checkToolArguments, toolsFor, type ToolName } from './tools.js';

/** What the agent is working on, besides its own turns. */
export interface RunContext {
  agent: AgentType;
  /** The task: the user's message, or the subtask's description. */
  task: string;
  /** For a subtask: the plan's goal and what its dependencies produced. */
  plan?: {
    goal: string;
    subtask_id?: string | undefined;
    dependencies: ReadonlyArray<{ id: string; description: string; result?: string | undefined }>;
  } | undefined;
  /** For an atomic task: the session's recent conversation, so a follow-up continues it. */
  conversation?: ReadonlyArray<{ role: 'user' | 'assistant'; content: string }> | undefined;
}

/** What happened in this run so far, in order (each is an event in the run's stream). */
export type RunTurn =
  | { type: 'assistant'; content: string | null; tool_calls: readonly AssistantToolCall[] }
  | { type: 'tool_result'; call_id: string; result: unknown }
  | { type: 'tool_error'; call_id: string; error: string }
  | { type: 'tool_rejected'; call_id: string; feedback?: string | undefined };

export type StepToolCall =
  | { id: string; name: ToolName; arguments: Record<string, unknown> }
  /** Not sent to the IDE: `error` is the tool's answer to the model (record it as a tool_error turn). */
  | { id: string; name: string; error: string };

export type StepResult =
  | { kind: 'final'; content: string; finishReason: string; usage: Usage; message: AssistantMessageTurn }
  | { kind: 'tool_calls'; content: string | null; calls: StepToolCall[]; finishReason: string; usage: Usage; message: AssistantMessageTurn };

/** The assistant turn to record as it was said (raw arguments included), for the next turn's replay. */
export type AssistantMessageTurn = Extract<RunTurn, { type: 'assistant' }>;

export interface AgentStepOptions {
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
}

/** Longest tool result replayed to the model; more is cut with a note (models have finite context). */
export const MAX_TOOL_RESULT_CHARS = 30_000;

export async function agentStep(
  model: ChatModel,
  context: RunContext,
  turns: readonly RunTurn[],
  options: AgentStepOptions = {},
): Promise<StepResult> {
  const agent = agentDefinition(context.agent);
  const completion = await model.complete({
    messages: buildRunMessages(context, turns),
    tools: toolsFor(agent.allowed_tools),
    signal: options.signal,
    timeoutMs: options.timeoutMs,
  });
  const message: AssistantMessageTurn = {
    type: 'assistant',
    content: completion.content,
    tool_calls: completion.toolCalls.map((call) => ({ id: call.id, name: call.name, arguments: call.rawArguments })),
  };
  if (completion.toolCalls.length === 0) {
    return { kind: 'final', content: completion.content ?? '', finishReason: completion.finishReason, usage: completion.usage, message };
  }
  const calls = completion.toolCalls.map((call): StepToolCall => {
    if ('argumentsError' in call) return { id: call.id, name: call.name, error: `Invalid tool call: ${call.argumentsError}. Call ${call.name} again with a JSON object of arguments.` };
    return checkCall(agent, call.id, call.name, call.arguments);
  });
  return { kind: 'tool_calls', content: completion.content, calls, finishReason: completion.finishReason, usage: completion.usage, message };
}

function checkCall(agent: AgentDefinition, id: string, requested: string, args: Record<string, unknown>): StepToolCall {
  const name = canonicalToolName(requested);
  if (!name || !agent.allowed_tools.includes(name)) {
    return {
      id,
      name: requested,
      error: `Tool "${requested}" is not available to the ${agent.name}. Available tools: ${agent.allowed_tools.join(', ')}.`,
    };
  }
  const problem = checkToolArguments(name, args);
  if (problem) return { id, name, error: `Invalid arguments for ${name}: ${problem}.` };
  if (name === 'write_file' && agent.writable_files && !agent.writable_files.test(String(args.path))) {
    return { id, name, error: `The ${agent.name} may only write files matching ${agent.writable_files}; "${String(args.path)}" is refused.` };
  }
  return { id, name, arguments: args };
}

/** The model's view of the run: system prompt, context, task, then every turn in order. */
export function buildRunMessages(context: RunContext, turns: readonly RunTurn[]): ChatMessage[] {
  const agent = agentDefinition(context.agent);
  const messages: ChatMessage[] = [{ role: 'system', content: agent.system_prompt }];
  for (const m of context.conversation ?? []) messages.push({ role: m.role, content: m.content });
  messages.push({ role: 'user', content: taskMessage(context) });

  // Each tool call is answered right after the assistant message that made it, whatever order the
  // outcomes were recorded in; a call left without one (a crash between steps) gets a placeholder
  // rather than making the model server refuse the conversation.
  const outcomes = new Map<string, Exclude<RunTurn, { type: 'assistant' }>>();
  for (const turn of turns) if (turn.type !== 'assistant') outcomes.set(turn.call_id, turn);
  for (const turn of turns) {
    if (turn.type !== 'assistant') continue;
    messages.push({ role: 'assistant', content: turn.content, ...(turn.tool_calls.length ? { tool_calls: turn.tool_calls } : {}) });
    for (const call of turn.tool_calls) {
      messages.push({ role: 'tool', tool_call_id: call.id, content: toolMessage(outcomes.get(call.id)) });
    }
  }
  return messages;
}

function toolMessage(outcome: Exclude<RunTurn, { type: 'assistant' }> | undefined): string {
  switch (outcome?.type) {
    case undefined:
      return 'No result: this tool call was not answered.';
    case 'tool_result':
      return clipResult(typeof outcome.result === 'string' ? outcome.result : (JSON.stringify(outcome.result) ?? 'null'));
    case 'tool_error':
      return `Error: ${clipResult(outcome.error)}`;
    case 'tool_rejected':
      return `The user rejected this tool call${outcome.feedback?.trim() ? ` with this feedback: "${outcome.feedback.trim()}"` : ''}. Do not repeat it; adapt or explain what you need.`;
  }
}

function taskMessage(context: RunContext): string {
  if (!context.plan) return context.task;
  const parts = [`You are executing one subtask of a plan.`, `Plan goal: ${context.plan.goal}`];
  if (context.plan.dependencies.length) {
    parts.push(
      `Results of the subtasks this one depends on:\n${context.plan.dependencies
        .map((d) => `- ${d.id}: ${d.description}\n  result: ${clipResult(d.result?.trim() || '(no result text)', 4_000)}`)
        .join('\n')}`,
    );
  }
  parts.push(`Your subtask${context.plan.subtask_id ? ` (${context.plan.subtask_id})` : ''}: ${context.task}`);
  return parts.join('\n\n');
}

function clipResult(text: string, max = MAX_TOOL_RESULT_CHARS): string {
  return text.length > max ? `${text.slice(0, max)}\n… (${text.length - max} more characters cut)` : text;
}
