// Classifying user messages with the real openai client against a scripted model server.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ModelError, unconfiguredChatModel, type ChatModel } from '../../src/agents/model.js';
import { openAiChatModel } from '../../src/agents/openai-model.js';
import { classifyMessage, CLASSIFIER_SYSTEM_PROMPT, parseClassification } from '../../src/planning/classifier.js';
import { lastUserMessageOf, startScriptedOpenAi, type ScriptedOpenAi } from '../support/scripted-openai.js';

let server: ScriptedOpenAi;
let model: ChatModel;
let seen = 0;
beforeAll(async () => {
  server = await startScriptedOpenAi();
  model = openAiChatModel({ baseURL: server.baseURL, apiKey: 'k', model: 'classifier', maxRetries: 0, timeoutMs: 5_000 });
});
afterAll(() => server.close());
beforeEach(() => {
  seen = server.requests.length;
});
const newRequests = () => server.requests.slice(seen);
const json = (value: unknown) => ({ content: JSON.stringify(value), usage: { prompt_tokens: 40, completion_tokens: 9 } });

describe('model classifier', () => {
  it("reads the seed's answer: an atomic question goes to the ask agent", async () => {
    server.enqueue(json({ is_atomic: true, agent: 'explain', confidence: 'high', reason: 'a question about a concept' }));
    const result = await classifyMessage({ message: 'What is a Dart isolate?', model });
    expect(result).toEqual({
      kind: 'atomic',
      agent: 'ask',
      confidence: 'high',
      reason: 'a question about a concept',
      source: 'llm',
      usage: { prompt_tokens: 40, completion_tokens: 9, total_tokens: 49 },
    });
    const [request] = newRequests();
    expect(request!.system).toBe(CLASSIFIER_SYSTEM_PROMPT);
    expect(request!.body?.response_format).toEqual({ type: 'json_object' });
    expect(lastUserMessageOf(request!)).toMatch(/Task to classify:\nWhat is a Dart isolate\?$/);
  });

  it('a complex task is complex, whatever agent name the model gave with it', async () => {
    server.enqueue(json({ is_atomic: false, agent: 'plan', confidence: 'medium', reason: 'several screens' }));
    expect(await classifyMessage({ message: 'Build a todo app', model })).toMatchObject({ kind: 'complex', source: 'llm', reason: 'several screens' });
    server.enqueue(json({ is_atomic: true, agent: 'plan', confidence: 'low', reason: 'needs a plan' }));
    expect(await classifyMessage({ message: 'Build a todo app', model })).toMatchObject({ kind: 'complex', source: 'llm' });
  });

  it('reads a fenced answer with prose around it, and Python booleans', async () => {
    server.enqueue({ content: 'Sure.\n```json\n{"is_atomic": True, "agent": "code", "confidence": "high", "reason": "one rename"}\n```\nHope this helps!' });
    expect(await classifyMessage({ message: 'Rename foo to bar', model })).toMatchObject({ kind: 'atomic', agent: 'coder', source: 'llm' });
  });

  it('passes the recent conversation as context', async () => {
    server.enqueue(json({ is_atomic: true, agent: 'coder', reason: 'follow-up' }));
    await classifyMessage({
      message: 'now do the same for B',
      model,
      conversation: [
        { role: 'user', content: 'rename A to A2' },
        { role: 'assistant', content: 'Renamed A to A2 in 3 files.' },
      ],
    });
    expect(lastUserMessageOf(newRequests()[0]!)).toMatch(/user: rename A to A2\nassistant: Renamed A to A2 in 3 files\./);
  });

  it.each([
    ['garbage text', { content: 'I think this is probably a coding task, yes.' }, /unusable: no JSON object or array found/],
    ['JSON without a verdict', json({ agent: 'coder' }), /unusable: it says neither is_atomic nor kind/],
    ['an unknown agent', json({ is_atomic: true, agent: 'designer' }), /unusable: unknown agent "designer"/],
  ])('%s falls back to the heuristic and says why, keeping the tokens spent', async (_, reply, why) => {
    server.enqueue(reply);
    const result = await classifyMessage({ message: 'Add a login form, an API and tests', model });
    expect(result).toMatchObject({ kind: 'complex', source: 'heuristic', confidence: 'low', fallback: expect.stringMatching(why) });
    expect(result.usage?.total_tokens).toBeGreaterThan(0);
  });

  it.each([500, 429, 400])('an HTTP %d falls back to the heuristic', async (status) => {
    server.enqueue({ kind: 'error', status, message: 'upstream trouble' });
    const result = await classifyMessage({ message: 'What does this regex match?', model });
    expect(result).toMatchObject({ kind: 'atomic', agent: 'ask', source: 'heuristic', fallback: expect.stringMatching(new RegExp(`model call failed: .*${status}`)) });
  });

  it('a hung model times out, falls back, and the request is really dropped', async () => {
    server.enqueue({ kind: 'hang' });
    const result = await classifyMessage({ message: 'Rename foo to bar', model, timeoutMs: 150 });
    expect(result).toMatchObject({ kind: 'atomic', source: 'heuristic', fallback: expect.stringMatching(/timed out after 150 ms/) });
    const request = newRequests()[0]!;
    await request.disconnectedEarly;
    expect(request.disconnected).toBe(true);
  });

  it('cancellation is not papered over: the abort reaches the caller and the server sees the disconnect', async () => {
    server.enqueue({ kind: 'hang' });
    const controller = new AbortController();
    const pending = classifyMessage({ message: 'Rename foo to bar', model, signal: controller.signal });
    const request = await server.waitForRequests(seen + 1);
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(ModelError);
    await request.disconnectedEarly;
  });
});

describe('session modes and no model', () => {
  it('plan mode always plans and direct mode never does, without asking the model', async () => {
    expect(await classifyMessage({ message: 'What is a Dart isolate?', mode: 'plan', model })).toMatchObject({ kind: 'complex', source: 'heuristic' });
    expect(await classifyMessage({ message: 'Build a whole app with login, then tests', mode: 'direct', model })).toMatchObject({
      kind: 'atomic',
      agent: 'coder',
      source: 'heuristic',
    });
    expect(newRequests()).toHaveLength(0);
  });

  it('any other mode behaves as auto: the model decides', async () => {
    server.enqueue(json({ is_atomic: true, agent: 'debug', reason: 'a crash' }));
    expect(await classifyMessage({ message: 'it crashes', mode: 'planning-control', model })).toMatchObject({ kind: 'atomic', agent: 'debug', source: 'llm' });
    expect(newRequests()).toHaveLength(1);
  });

  it('with no model configured the heuristic decides and says so', async () => {
    expect(await classifyMessage({ message: 'Why does test_login fail?', model: unconfiguredChatModel() })).toEqual({
      kind: 'atomic',
      agent: 'debug',
      confidence: 'low',
      reason: 'a single problem to investigate',
      source: 'heuristic',
      fallback: 'no model configured',
    });
    expect(await classifyMessage({ message: 'Why does test_login fail?' })).toMatchObject({ source: 'heuristic', fallback: 'no model configured' });
  });
});

describe('parseClassification', () => {
  it.each([
    ['{"kind": "atomic", "agent": "ask"}', { kind: 'atomic', agent: 'ask' }],
    ['{"type": "complex"}', { kind: 'complex' }],
    ['{"is_atomic": "false", "agent": "code"}', { kind: 'complex' }],
    ['{"is_atomic": true, "agent": "Coder", "confidence": "certain"}', { kind: 'atomic', agent: 'coder', confidence: 'medium' }],
  ])('%s', (text, expected) => {
    const parsed = parseClassification(text);
    expect(parsed.ok && parsed.value).toMatchObject(expected);
  });

  it('an atomic verdict without an agent is unusable', () => {
    expect(parseClassification('{"is_atomic": true}')).toEqual({ ok: false, error: 'an atomic task needs an agent (coder, debug or ask)' });
  });
});
