// The model port over the real `openai` client, against a scripted OpenAI-compatible server on loopback.
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ModelError, NoModelConfiguredError, type ChatModel } from '../../src/agents/model.js';
import { chatModelFor, openAiChatModel } from '../../src/agents/openai-model.js';
import { startScriptedOpenAi, type ScriptedOpenAi } from '../support/scripted-openai.js';

let server: ScriptedOpenAi;
let model: ChatModel;
let seen = 0;

beforeAll(async () => {
  server = await startScriptedOpenAi();
  model = openAiChatModel({ baseURL: server.baseURL, apiKey: 'test-key', model: 'scripted-model', maxRetries: 0, timeoutMs: 5_000 });
});
afterAll(() => server.close());
beforeEach(() => {
  seen = server.requests.length;
});
const lastRequest = () => server.requests.at(-1)!;
const newRequests = () => server.requests.slice(seen);

async function failure(promise: Promise<unknown>): Promise<ModelError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ModelError);
  return error as ModelError;
}

const ask = (content = 'hello') => [{ role: 'user' as const, content }];

describe('openai chat model', () => {
  it('returns the answer, usage and finish reason, and sends the model, messages and key', async () => {
    server.enqueue({ content: 'Hi there', usage: { prompt_tokens: 12, completion_tokens: 3 } });
    const completion = await model.complete({ messages: [{ role: 'system', content: 'You are terse.' }, ...ask()] });
    expect(completion).toMatchObject({
      content: 'Hi there',
      toolCalls: [],
      usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
      finishReason: 'stop',
      model: 'scripted-model',
    });
    const request = lastRequest();
    expect(request.model).toBe('scripted-model');
    expect(request.headers.authorization).toBe('Bearer test-key');
    expect(request.messages).toEqual([
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'hello' },
    ]);
    expect(request.tools).toBeUndefined();
    expect(request.body?.response_format).toBeUndefined();
  });

  it('asks for a JSON object when json is set, and passes tools in the OpenAI shape', async () => {
    server.enqueue({ content: '{"ok":true}' });
    const tool = { type: 'function' as const, function: { name: 'read_file', description: 'Read', parameters: { type: 'object', properties: {} } } };
    await model.complete({ messages: ask(), json: true, tools: [tool] });
    expect(lastRequest().body?.response_format).toEqual({ type: 'json_object' });
    expect(lastRequest().tools).toEqual([tool]);
  });

  it('parses tool-call arguments, and reports arguments that are not a JSON object as errors of that call', async () => {
    server.enqueue({
      toolCalls: [
        { id: 'c1', name: 'read_file', arguments: { path: 'lib/main.dart' } },
        { id: 'c2', name: 'write_file', arguments: '{"path": "a.txt", "content": "unterminated' },
        { id: 'c3', name: 'list_files', arguments: '[1, 2]' },
        { id: 'c4', name: 'list_files', arguments: '' },
      ],
    });
    const completion = await model.complete({ messages: ask() });
    expect(completion.content).toBeNull();
    expect(completion.finishReason).toBe('tool_calls');
    const [read, write, list, empty] = completion.toolCalls;
    expect(read).toEqual({ id: 'c1', name: 'read_file', arguments: { path: 'lib/main.dart' }, rawArguments: '{"path":"lib/main.dart"}' });
    expect(write).toMatchObject({ id: 'c2', name: 'write_file', argumentsError: expect.stringMatching(/not valid JSON/) });
    expect(write).not.toHaveProperty('arguments');
    expect(list).toMatchObject({ id: 'c3', argumentsError: expect.stringMatching(/must be a JSON object, got an array/) });
    expect(empty).toMatchObject({ id: 'c4', arguments: {} });
  });

  it('sends an assistant turn with tool calls and the tool results back in the OpenAI shape', async () => {
    server.enqueue({ content: 'done' });
    await model.complete({
      messages: [
        ...ask('read it'),
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', name: 'read_file', arguments: '{"path":"a"}' }] },
        { role: 'tool', tool_call_id: 'c1', content: 'file text' },
      ],
    });
    expect(lastRequest().messages.slice(1)).toEqual([
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'read_file', arguments: '{"path":"a"}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'file text' },
    ]);
  });

  it.each([500, 429, 400])('an HTTP %d is a ModelError with that status', async (status) => {
    server.enqueue({ kind: 'error', status, message: 'scripted failure' });
    const error = await failure(model.complete({ messages: ask() }));
    expect(error.kind).toBe('http');
    expect(error.status).toBe(status);
    expect(error.message).toMatch(new RegExp(`answered ${status}`));
  });

  it('retries a 500 inside one call when retries are allowed', async () => {
    const retrying = openAiChatModel({ baseURL: server.baseURL, apiKey: 'k', model: 'm', maxRetries: 1 });
    server.enqueue({ kind: 'error', status: 500, headers: { 'retry-after-ms': '5' } }, { content: 'second time lucky' });
    const completion = await retrying.complete({ messages: ask() });
    expect(completion.content).toBe('second time lucky');
    expect(newRequests()).toHaveLength(2);
  });

  it('garbage instead of a completion is an invalid_response error', async () => {
    server.enqueue({ kind: 'raw', body: '<html>Bad gateway</html>', contentType: 'text/html' });
    expect((await failure(model.complete({ messages: ask() }))).kind).toBe('invalid_response');
    server.enqueue({ kind: 'raw', body: '{"choices": [', contentType: 'application/json' });
    expect((await failure(model.complete({ messages: ask() }))).kind).toBe('invalid_response');
    server.enqueue({ kind: 'raw', body: '{"object":"chat.completion","choices":[]}' });
    expect((await failure(model.complete({ messages: ask() }))).message).toMatch(/without a choice/);
  });

  it('a hung server times out at timeoutMs, and the server sees the client hang up', async () => {
    server.enqueue({ kind: 'hang' });
    const error = await failure(model.complete({ messages: ask(), timeoutMs: 150 }));
    expect(error.kind).toBe('timeout');
    expect(error.message).toMatch(/timed out after 150 ms/);
    const request = lastRequest();
    await request.disconnectedEarly;
    expect(request.disconnected).toBe(true);
  });

  it('an answer slower than the deadline times out too (the deadline covers the whole call)', async () => {
    server.enqueue({ content: 'too late', delayMs: 2_000 });
    expect((await failure(model.complete({ messages: ask(), timeoutMs: 100 }))).kind).toBe('timeout');
    await lastRequest().disconnectedEarly;
  });

  it('aborting the signal aborts the request in flight, and the server sees the disconnect', async () => {
    server.enqueue({ kind: 'hang' });
    const controller = new AbortController();
    const pending = model.complete({ messages: ask(), signal: controller.signal, timeoutMs: 10_000 });
    const request = await server.waitForRequests(seen + 1);
    controller.abort(new Error('plan cancelled'));
    const error = await failure(pending);
    expect(error.kind).toBe('aborted');
    expect(error.message).toMatch(/plan cancelled/);
    await request.disconnectedEarly;
    expect(request.disconnected).toBe(true);
  });

  it('an already aborted signal sends nothing', async () => {
    const error = await failure(model.complete({ messages: ask(), signal: AbortSignal.abort() }));
    expect(error.kind).toBe('aborted');
    expect(newRequests()).toHaveLength(0);
  });

  it('an unreachable server is a connection error', async () => {
    const closed = await startScriptedOpenAi();
    const baseURL = closed.baseURL;
    await closed.close();
    const unreachable = openAiChatModel({ baseURL, apiKey: 'k', model: 'm', maxRetries: 0 });
    expect((await failure(unreachable.complete({ messages: ask() }))).kind).toBe('connection');
  });
});

describe('no model configured', () => {
  it('fails every call at once with a clear error', async () => {
    const none = chatModelFor(undefined);
    expect(none.configured).toBe(false);
    const error = await none.complete({ messages: ask() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoModelConfiguredError);
    expect((error as Error).message).toBe('no model configured: set OPENAI_BASE_URL or OPENAI_API_KEY');
  });

  it('a configuration builds a real model', () => {
    const configured = chatModelFor({ apiKey: undefined, baseUrl: server.baseURL, model: 'local' });
    expect(configured).toMatchObject({ configured: true, model: 'local' });
  });
});

describe('scripted server', () => {
  it('streams content and tool calls that the real client reassembles', async () => {
    const client = new OpenAI({ baseURL: server.baseURL, apiKey: 'k', maxRetries: 0 });
    server.enqueue({ content: 'Streaming is optional but works.', toolCalls: [{ id: 's1', name: 'read_file', arguments: { path: 'a/very/long/path/to/a/file.dart' } }] });
    const stream = await client.chat.completions.create({ model: 'm', messages: ask(), stream: true, stream_options: { include_usage: true } });
    let content = '';
    let args = '';
    let usage: unknown;
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta.content ?? '';
      args += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(content).toBe('Streaming is optional but works.');
    expect(JSON.parse(args)).toEqual({ path: 'a/very/long/path/to/a/file.dart' });
    expect(usage).toMatchObject({ total_tokens: 15 });
  });

  it('answers per request from a responder once the queue is empty', async () => {
    const local = await startScriptedOpenAi({ respond: (r) => ({ content: `you said ${r.messages.length} things` }) });
    try {
      const m = openAiChatModel({ baseURL: local.baseURL, apiKey: 'k', model: 'm', maxRetries: 0 });
      expect((await m.complete({ messages: [...ask('a'), ...ask('b')] })).content).toBe('you said 2 things');
    } finally {
      await local.close();
    }
  });
});
