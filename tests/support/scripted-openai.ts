// An OpenAI-compatible chat completions server on loopback that answers from a script, so tests run
// the REAL `openai` client end to end: HTTP, retries, timeouts, aborts, tool-call JSON strings.
// Replies come from a queue (in order) or from a function of the request (answer per agent or per
// system prompt). Every request is recorded, including whether the client hung up before the answer.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedToolCall {
  id?: string;
  name: string;
  /** A string is sent as is (so a test can send broken JSON); an object is JSON-encoded. */
  arguments: string | Record<string, unknown>;
}

export type ScriptedReply =
  | {
      kind?: 'message';
      content?: string | null;
      toolCalls?: ScriptedToolCall[];
      usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number } | null;
      finishReason?: string;
      /** Wait this long before answering (the client may time out or abort meanwhile). */
      delayMs?: number;
    }
  /** An HTTP error with an OpenAI-style error body (500, 429, 400, …). */
  | { kind: 'error'; status: number; message?: string; type?: string; headers?: Record<string, string> }
  /** Anything at all, verbatim: garbage text, a half JSON body, a wrong content type. */
  | { kind: 'raw'; body: string; status?: number; contentType?: string }
  /** Never answer: the request stays open until the client disconnects or the server closes. */
  | { kind: 'hang' };

export interface RecordedRequest {
  /** 1-based, in arrival order. */
  index: number;
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** The parsed JSON body; undefined when it was not JSON. */
  body: Record<string, unknown> | undefined;
  model: string | undefined;
  messages: Array<Record<string, unknown>>;
  tools: Array<Record<string, unknown>> | undefined;
  stream: boolean;
  /** The content of the first system message, the usual way to tell agents apart. */
  system: string | undefined;
  /** True once the client closed the connection before the whole answer was written. */
  disconnected: boolean;
  /** Resolves when the client disconnects before the answer completed (never if it did not). */
  disconnectedEarly: Promise<void>;
}

export type Responder = (request: RecordedRequest) => ScriptedReply | Promise<ScriptedReply>;

export interface ScriptedOpenAi {
  /** Base URL for the openai client (ends in /v1). */
  readonly baseURL: string;
  readonly requests: readonly RecordedRequest[];
  /** Queue replies; they are used first, in order, before the responder. */
  enqueue(...replies: ScriptedReply[]): void;
  /** Answer requests the queue does not cover. */
  respondWith(responder: Responder): void;
  /** Resolves with the request once `count` requests have arrived. */
  waitForRequests(count: number): Promise<RecordedRequest>;
  close(): Promise<void>;
}

export interface ScriptedOpenAiOptions {
  replies?: ScriptedReply[];
  respond?: Responder;
}

let callCounter = 0;

export async function startScriptedOpenAi(options: ScriptedOpenAiOptions = {}): Promise<ScriptedOpenAi> {
  const queue: ScriptedReply[] = [...(options.replies ?? [])];
  let responder: Responder | undefined = options.respond;
  const requests: RecordedRequest[] = [];
  const waiters: Array<{ count: number; resolve: (r: RecordedRequest) => void }> = [];
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { message: `scripted server failed: ${String(error)}`, type: 'server_error' } });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    let body: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
    } catch {
      body = undefined;
    }
    const messages = Array.isArray(body?.messages) ? (body.messages as Array<Record<string, unknown>>) : [];
    const system = messages.find((m) => m.role === 'system')?.content;
    let markDisconnected!: () => void;
    const record: RecordedRequest = {
      index: requests.length + 1,
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      body,
      model: typeof body?.model === 'string' ? body.model : undefined,
      messages,
      tools: Array.isArray(body?.tools) ? (body.tools as Array<Record<string, unknown>>) : undefined,
      stream: body?.stream === true,
      system: typeof system === 'string' ? system : undefined,
      disconnected: false,
      disconnectedEarly: new Promise<void>((resolve) => (markDisconnected = resolve)),
    };
    // 'close' on the response before it finished means the client hung up (timeout or abort).
    res.on('close', () => {
      if (!res.writableFinished) {
        record.disconnected = true;
        markDisconnected();
      }
    });
    requests.push(record);
    for (const waiter of [...waiters]) {
      if (requests.length >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(requests[waiter.count - 1]!);
      }
    }

    if (req.method !== 'POST' || !(req.url ?? '').replace(/\?.*$/, '').endsWith('/chat/completions')) {
      sendJson(res, 404, { error: { message: `no route ${req.method} ${req.url}`, type: 'invalid_request_error' } });
      return;
    }
    const reply: ScriptedReply = queue.length > 0 ? queue.shift()! : responder ? await responder(record) : exhausted(record);
    await answer(res, record, reply);
  }

  async function answer(res: ServerResponse, record: RecordedRequest, reply: ScriptedReply): Promise<void> {
    switch (reply.kind) {
      case 'hang':
        return; // left open; close() or the client ends it
      case 'error':
        sendJson(
          res,
          reply.status,
          { error: { message: reply.message ?? `scripted ${reply.status}`, type: reply.type ?? 'server_error', code: null, param: null } },
          reply.headers,
        );
        return;
      case 'raw':
        res.writeHead(reply.status ?? 200, { 'content-type': reply.contentType ?? 'application/json' });
        res.end(reply.body);
        return;
      default: {
        if (reply.delayMs) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              timers.delete(timer);
              resolve();
            }, reply.delayMs);
            timers.add(timer);
          });
          if (record.disconnected || res.destroyed) return;
        }
        const toolCalls = (reply.toolCalls ?? []).map((call) => ({
          id: call.id ?? `call_${++callCounter}`,
          type: 'function' as const,
          function: { name: call.name, arguments: typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments) },
        }));
        const content = reply.content === undefined ? (toolCalls.length ? null : '') : reply.content;
        const finishReason = reply.finishReason ?? (toolCalls.length ? 'tool_calls' : 'stop');
        const usage =
          reply.usage === null
            ? undefined
            : {
                prompt_tokens: reply.usage?.prompt_tokens ?? 10,
                completion_tokens: reply.usage?.completion_tokens ?? 5,
                total_tokens: reply.usage?.total_tokens ?? (reply.usage?.prompt_tokens ?? 10) + (reply.usage?.completion_tokens ?? 5),
              };
        const id = `chatcmpl-scripted-${record.index}`;
        const created = Math.floor(Date.now() / 1000);
        const model = record.model ?? 'scripted';
        if (record.stream) {
          streamAnswer(res, { id, created, model, content, toolCalls, finishReason, usage });
          return;
        }
        sendJson(res, 200, {
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content, ...(toolCalls.length ? { tool_calls: toolCalls } : {}), refusal: null },
              finish_reason: finishReason,
              logprobs: null,
            },
          ],
          ...(usage ? { usage } : {}),
        });
      }
    }
  }

  function exhausted(record: RecordedRequest): ScriptedReply {
    return { kind: 'error', status: 500, message: `scripted server has no reply for request ${record.index}` };
  }

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    enqueue: (...replies) => void queue.push(...replies),
    respondWith: (next) => void (responder = next),
    waitForRequests: (count) =>
      requests.length >= count ? Promise.resolve(requests[count - 1]!) : new Promise((resolve) => waiters.push({ count, resolve })),
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** The system prompt of a request, or '' (for responders that pick a reply per agent). */
export const systemPromptOf = (request: RecordedRequest): string => request.system ?? '';

/** The last user message of a request, or ''. */
export function lastUserMessageOf(request: RecordedRequest): string {
  const content = request.messages.findLast((m) => m.role === 'user')?.content;
  return typeof content === 'string' ? content : '';
}

function streamAnswer(
  res: ServerResponse,
  answer: {
    id: string;
    created: number;
    model: string;
    content: string | null;
    toolCalls: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>;
    finishReason: string;
    usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | undefined;
  },
): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) =>
    res.write(
      `data: ${JSON.stringify({
        id: answer.id,
        object: 'chat.completion.chunk',
        created: answer.created,
        model: answer.model,
        choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
        ...extra,
      })}\n\n`,
    );
  chunk({ role: 'assistant', content: '' }, null);
  // Content in a few pieces, as a real server streams it.
  const text = answer.content ?? '';
  for (let i = 0; i < text.length; i += 16) chunk({ content: text.slice(i, i + 16) }, null);
  answer.toolCalls.forEach((call, index) => {
    chunk({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }] }, null);
    const args = call.function.arguments;
    for (let i = 0; i < args.length; i += 16) chunk({ tool_calls: [{ index, function: { arguments: args.slice(i, i + 16) } }] }, null);
  });
  chunk({}, answer.finishReason);
  if (answer.usage) {
    res.write(
      `data: ${JSON.stringify({ id: answer.id, object: 'chat.completion.chunk', created: answer.created, model: answer.model, choices: [], usage: answer.usage })}\n\n`,
    );
  }
  res.end('data: [DONE]\n\n');
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
