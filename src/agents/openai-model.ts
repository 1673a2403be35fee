// The model port over the `openai` package: any OpenAI-compatible chat completions server (OpenAI,
// a local model server, a scripted one in tests). Our own deadline covers the whole call, body
// included, and is combined with the caller's AbortSignal, so a cancelled plan or a hung server
// never holds a worker; every failure comes back as one typed ModelError.
import OpenAI, { APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type {
  ChatCompletion,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import type { OpenAiConfig } from '../config.js';
import {
  ModelError,
  toolCallOf,
  unconfiguredChatModel,
  ZERO_USAGE,
  type ChatMessage,
  type ChatModel,
  type Completion,
  type CompletionRequest,
  type ToolCall,
} from './model.js';

export interface OpenAiModelOptions {
  model: string;
  /** Undefined means the OpenAI endpoint. */
  baseURL?: string | undefined;
  /** Undefined for servers that need no key (a local model): a placeholder is sent. */
  apiKey?: string | undefined;
  /** Default deadline per call when the request names none (ms). */
  timeoutMs?: number | undefined;
  /** Retries of connection errors, 408/409/429 and 5xx inside one call (the openai client's own). */
  maxRetries?: number | undefined;
}

export const DEFAULT_MODEL_TIMEOUT_MS = 120_000;
export const DEFAULT_MODEL_MAX_RETRIES = 2;

export function openAiChatModel(options: OpenAiModelOptions): ChatModel {
  const defaultTimeoutMs = options.timeoutMs ?? DEFAULT_MODEL_TIMEOUT_MS;
  const client = new OpenAI({
    apiKey: options.apiKey ?? 'no-key',
    baseURL: options.baseURL ?? null,
    timeout: defaultTimeoutMs,
    maxRetries: options.maxRetries ?? DEFAULT_MODEL_MAX_RETRIES,
  });

  async function complete(request: CompletionRequest): Promise<Completion> {
    const timeoutMs = Math.max(1, Math.round(request.timeoutMs ?? defaultTimeoutMs));
    if (request.signal?.aborted) throw abortedError(request.signal);

    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new ModelError('timeout', `model call timed out after ${timeoutMs} ms`)), timeoutMs);
    const signal = request.signal ? AbortSignal.any([request.signal, deadline.signal]) : deadline.signal;

    const body: ChatCompletionCreateParamsNonStreaming = {
      model: options.model,
      messages: request.messages.map(toOpenAiMessage),
      ...(request.tools?.length ? { tools: request.tools.map((t) => ({ type: 'function' as const, function: t.function })) } : {}),
      ...(request.json ? { response_format: { type: 'json_object' as const } } : {}),
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    };

    try {
      // Our deadline governs; the client's own timer sits just behind it so it never fires first
      // and turns a deadline into a retry.
      const response: unknown = await client.chat.completions.create(body, { signal, timeout: timeoutMs + 1_000 });
      return toCompletion(response, options.model);
    } catch (error) {
      if (deadline.signal.aborted && !request.signal?.aborted) {
        throw new ModelError('timeout', `model call timed out after ${timeoutMs} ms`, undefined, { cause: error });
      }
      if (request.signal?.aborted) throw abortedError(request.signal, error);
      throw toModelError(error);
    } finally {
      clearTimeout(timer);
    }
  }

  return { configured: true, model: options.model, complete };
}

/** The model for a configuration: the real one, or the stand-in that fails with "no model configured". */
export function chatModelFor(
  config: OpenAiConfig | undefined,
  options: Pick<OpenAiModelOptions, 'timeoutMs' | 'maxRetries'> = {},
): ChatModel {
  if (!config) return unconfiguredChatModel();
  return openAiChatModel({ model: config.model, baseURL: config.baseUrl, apiKey: config.apiKey, ...options });
}

function toOpenAiMessage(message: ChatMessage): ChatCompletionMessageParam {
  switch (message.role) {
    case 'system':
    case 'user':
      return { role: message.role, content: message.content };
    case 'tool':
      return { role: 'tool', tool_call_id: message.tool_call_id, content: message.content };
    case 'assistant':
      return {
        role: 'assistant',
        content: message.content,
        ...(message.tool_calls?.length
          ? {
              tool_calls: message.tool_calls.map((call) => ({
                id: call.id,
                type: 'function' as const,
                function: { name: call.name, arguments: call.arguments },
              })),
            }
          : {}),
      };
  }
}

/** Read the server's answer defensively: a compatible server may omit or mangle any part of it. */
function toCompletion(response: unknown, model: string): Completion {
  if (typeof response !== 'object' || response === null) {
    throw new ModelError('invalid_response', `model server answered with something that is not a chat completion: ${preview(response)}`);
  }
  const completion = response as Partial<ChatCompletion>;
  const choice = Array.isArray(completion.choices) ? completion.choices[0] : undefined;
  if (!choice || typeof choice.message !== 'object' || choice.message === null) {
    throw new ModelError('invalid_response', `model server answered without a choice: ${preview(response)}`);
  }
  const message = choice.message;
  const toolCalls: ToolCall[] = (Array.isArray(message.tool_calls) ? message.tool_calls : []).map((call, index) => {
    const id = typeof call.id === 'string' && call.id ? call.id : `call_${index}`;
    if (call.type === 'custom') return toolCallOf(id, call.custom.name, JSON.stringify({ input: call.custom.input }));
    const fn = (call as { function?: { name?: unknown; arguments?: unknown } }).function;
    const name = typeof fn?.name === 'string' ? fn.name : '';
    const raw = typeof fn?.arguments === 'string' ? fn.arguments : JSON.stringify(fn?.arguments ?? {});
    return toolCallOf(id, name, raw);
  });
  const usage = completion.usage;
  return {
    content: typeof message.content === 'string' ? message.content : null,
    toolCalls,
    usage: usage
      ? {
          prompt_tokens: usage.prompt_tokens ?? 0,
          completion_tokens: usage.completion_tokens ?? 0,
          total_tokens: usage.total_tokens ?? (usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0),
        }
      : { ...ZERO_USAGE },
    finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : 'unknown',
    model: typeof completion.model === 'string' ? completion.model : model,
  };
}

function abortedError(signal: AbortSignal, cause?: unknown): ModelError {
  const reason = signal.reason instanceof Error ? signal.reason.message : signal.reason !== undefined ? String(signal.reason) : '';
  return new ModelError('aborted', `model call aborted${reason ? `: ${reason}` : ''}`, undefined, { cause: cause ?? signal.reason });
}

function toModelError(error: unknown): ModelError {
  if (error instanceof ModelError) return error;
  if (error instanceof APIConnectionTimeoutError) return new ModelError('timeout', 'model call timed out', undefined, { cause: error });
  if (error instanceof APIUserAbortError) return new ModelError('aborted', 'model call aborted', undefined, { cause: error });
  if (error instanceof APIError && error.status !== undefined) {
    return new ModelError('http', `model server answered ${error.status}: ${error.message}`, error.status, { cause: error });
  }
  if (error instanceof APIError) return new ModelError('connection', `model server unreachable: ${error.message}`, undefined, { cause: error });
  // A 200 whose body is not JSON surfaces as a SyntaxError from the client's parser.
  const message = error instanceof Error ? error.message : String(error);
  return new ModelError('invalid_response', `model server answered something unreadable: ${message}`, undefined, { cause: error });
}

function preview(value: unknown, max = 200): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
