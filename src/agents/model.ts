// The model port: one chat completion, in the OpenAI wire shape that every model server we target
// speaks, with what callers need and nothing they must unpick. Tool-call arguments arrive from the
// model as JSON strings; here they are parsed once, and a call whose arguments are not a JSON object
// carries an `argumentsError` instead (the agent tells the model, the IDE never sees it).

/** A JSON Schema object as OpenAI function tools take it (kept loose: it is passed through). */
export type JsonSchema = { [key: string]: unknown };

export interface FunctionTool {
  type: 'function';
  function: { name: string; description: string; parameters: JsonSchema };
}

/** A tool call as it sits in an assistant message: arguments exactly as the model wrote them. */
export interface AssistantToolCall {
  id: string;
  name: string;
  arguments: string;
}

export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls?: readonly AssistantToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string };

export interface CompletionRequest {
  messages: readonly ChatMessage[];
  tools?: readonly FunctionTool[] | undefined;
  /** Ask for a JSON object answer (response_format json_object). */
  json?: boolean | undefined;
  /** Aborts the request in flight (plan cancelled, run superseded). */
  signal?: AbortSignal | undefined;
  /** Deadline for the whole call, body included; the model's default when absent. */
  timeoutMs?: number | undefined;
  temperature?: number | undefined;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export const ZERO_USAGE: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };

export const addUsage = (a: Usage, b: Usage): Usage => ({
  prompt_tokens: a.prompt_tokens + b.prompt_tokens,
  completion_tokens: a.completion_tokens + b.completion_tokens,
  total_tokens: a.total_tokens + b.total_tokens,
});

/** A tool call the model asked for: parsed arguments, or why they could not be used. */
export type ToolCall =
  | { id: string; name: string; arguments: Record<string, unknown>; rawArguments: string }
  | { id: string; name: string; argumentsError: string; rawArguments: string };

export interface Completion {
  /** The assistant's text; null when it only called tools. */
  content: string | null;
  toolCalls: ToolCall[];
  usage: Usage;
  /** stop | length | tool_calls | content_filter | … as the server said; 'unknown' when it did not. */
  finishReason: string;
  model: string;
}

export interface ChatModel {
  /** False for the stand-in used when no model is configured: callers skip straight to heuristics. */
  readonly configured: boolean;
  readonly model: string;
  complete(request: CompletionRequest): Promise<Completion>;
}

export type ModelErrorKind = 'timeout' | 'aborted' | 'http' | 'connection' | 'invalid_response';

/** Every way a model call fails, as one typed error with a message fit for the IDE and the log. */
export class ModelError extends Error {
  override readonly name = 'ModelError';
  constructor(
    readonly kind: ModelErrorKind,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class NoModelConfiguredError extends Error {
  override readonly name = 'NoModelConfiguredError';
  readonly code = 'no_model_configured';
  constructor() {
    super('no model configured: set OPENAI_BASE_URL or OPENAI_API_KEY');
  }
}

/** The model used when config.openai is undefined: every call fails at once with a clear error. */
export function unconfiguredChatModel(): ChatModel {
  return {
    configured: false,
    model: 'none',
    complete: () => Promise.reject(new NoModelConfiguredError()),
  };
}

/** Parse a tool call's JSON-string arguments; anything but a JSON object is an error to report. */
export function parseToolArguments(raw: string): { arguments: Record<string, unknown> } | { argumentsError: string } {
  // Some servers send "" for a call without arguments; that is an empty object, not an error.
  if (raw.trim() === '') return { arguments: {} };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    return { argumentsError: `arguments are not valid JSON (${(error as Error).message}): ${preview(raw)}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { argumentsError: `arguments must be a JSON object, got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}` };
  }
  return { arguments: value as Record<string, unknown> };
}

export function toolCallOf(id: string, name: string, rawArguments: string): ToolCall {
  const parsed = parseToolArguments(rawArguments);
  return 'arguments' in parsed
    ? { id, name, arguments: parsed.arguments, rawArguments }
    : { id, name, argumentsError: parsed.argumentsError, rawArguments };
}

function preview(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
