// The model architect with the real openai client against a scripted model server: the seed's plan
// shapes, estimates as strings, validation exactly like CreatePlan, and the heuristic fallback.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ModelError, unconfiguredChatModel, type ChatModel } from '../../src/agents/model.js';
import { openAiChatModel } from '../../src/agents/openai-model.js';
import { ARCHITECT_SYSTEM_PROMPT, draftPlan, readPlanShape } from '../../src/planning/architect.js';
import { DomainError } from '../../src/commands/errors.js';
import { lastUserMessageOf, startScriptedOpenAi, type ScriptedOpenAi } from '../support/scripted-openai.js';

let server: ScriptedOpenAi;
let model: ChatModel;
let seen = 0;
beforeAll(async () => {
  server = await startScriptedOpenAi();
  model = openAiChatModel({ baseURL: server.baseURL, apiKey: 'k', model: 'architect', maxRetries: 0, timeoutMs: 5_000 });
});
afterAll(() => server.close());
beforeEach(() => {
  seen = server.requests.length;
});
const newRequests = () => server.requests.slice(seen);
const answer = (value: unknown) => ({ content: typeof value === 'string' ? value : JSON.stringify(value), usage: { prompt_tokens: 300, completion_tokens: 120 } });
const GOAL = 'Add a login screen with validation';

describe('model architect', () => {
  it("accepts the seed architect's JSON: index dependencies, estimates as strings", async () => {
    server.enqueue(
      answer({
        reasoning: 'UI first, then validation, then tests',
        subtasks: [
          { description: 'Create the login form widget', agent: 'coder', dependencies: [], estimated_time: '10 min' },
          { description: 'Add input validation', agent: 'coder', dependencies: [0], estimated_time: '1h 30m' },
          { description: 'Explain the validation rules', agent: 'ask', dependencies: [], estimated_time: 90 },
          { description: 'Run the widget tests', agent: 'debug', dependencies: [0, 1], estimated_time: '1.5 h' },
        ],
      }),
    );
    const plan = await draftPlan({ goal: GOAL }, { model });
    expect(plan).toEqual({
      goal: GOAL,
      source: 'llm',
      reasoning: 'UI first, then validation, then tests',
      usage: { prompt_tokens: 300, completion_tokens: 120, total_tokens: 420 },
      subtasks: [
        { id: 'st-1', description: 'Create the login form widget', agent: 'coder', dependencies: [], estimated_time: 600 },
        { id: 'st-2', description: 'Add input validation', agent: 'coder', dependencies: ['st-1'], estimated_time: 5400 },
        { id: 'st-3', description: 'Explain the validation rules', agent: 'ask', dependencies: [], estimated_time: 90 },
        { id: 'st-4', description: 'Run the widget tests', agent: 'debug', dependencies: ['st-1', 'st-2'], estimated_time: 5400 },
      ],
    });
    const [request] = newRequests();
    expect(request!.system).toBe(ARCHITECT_SYSTEM_PROMPT);
    expect(request!.body?.response_format).toEqual({ type: 'json_object' });
    expect(lastUserMessageOf(request!)).toBe(`Task:\n${GOAL}`);
  });

  it("accepts the seed's create_plan tool shape (title, estimated_time_minutes) and its prompt's id shape", async () => {
    server.enqueue(
      answer({
        title: 'Login',
        description: 'Login screen',
        subtasks: [
          { title: 'Form', description: 'Create the form', agent: 'code', estimated_time_minutes: 15, dependencies: [] },
          { title: 'Tests', description: 'Test the form', agent: 'debug', estimated_time_minutes: 5, dependencies: [0] },
        ],
      }),
    );
    const fromTool = await draftPlan({ goal: GOAL }, { model });
    expect(fromTool.subtasks.map((s) => [s.description, s.agent, s.dependencies, s.estimated_time])).toEqual([
      ['Form: Create the form', 'coder', [], 900],
      ['Tests: Test the form', 'debug', ['st-1'], 300],
    ]);

    server.enqueue(
      answer({
        subtasks: [
          { id: 'subtask_1', description: 'Add riverpod to pubspec.yaml', agent: 'coder', estimated_time: '2 min' },
          { id: 'subtask_2', description: 'Create providers', agent: 'coder', estimated_time: '5 min', dependencies: ['subtask_1'] },
        ],
      }),
    );
    const fromIds = await draftPlan({ goal: GOAL }, { model });
    expect(fromIds.subtasks.map((s) => [s.id, s.dependencies, s.estimated_time])).toEqual([
      ['subtask_1', [], 120],
      ['subtask_2', ['subtask_1'], 300],
    ]);
    expect(fromIds.source).toBe('llm');
  });

  it('numeric ids are ids: a dependency on 1 means the subtask with id 1, not index 1', async () => {
    server.enqueue(
      answer({
        subtasks: [
          { id: 1, description: 'First', agent: 'coder' },
          { id: 2, description: 'Second', agent: 'coder', dependencies: [1] },
        ],
      }),
    );
    const plan = await draftPlan({ goal: GOAL }, { model });
    expect(plan.subtasks.map((s) => [s.id, s.dependencies])).toEqual([
      ['1', []],
      ['2', ['1']],
    ]);
  });

  it('reads a fenced plan with prose before and after it', async () => {
    server.enqueue({
      content:
        'Here is my plan:\n```json\n{"subtasks": [{"id": "a", "description": "Do A", "agent": "coder", "estimated_time": "5 mins"}, {"id": "b", "description": "Do B", "agent": "coder", "dependencies": ["a"]}]}\n```\nThe second step waits for the first {as it must}.',
    });
    const plan = await draftPlan({ goal: GOAL }, { model });
    expect(plan.source).toBe('llm');
    expect(plan.subtasks.map((s) => [s.id, s.dependencies, s.estimated_time])).toEqual([
      ['a', [], 300],
      ['b', ['a'], 0],
    ]);
  });

  it.each([
    [
      'a dependency cycle',
      { subtasks: [{ id: 'a', description: 'A', agent: 'coder', dependencies: ['b'] }, { id: 'b', description: 'B', agent: 'coder', dependencies: ['a'] }] },
      /refused: dependencies form a cycle: a -> b -> a/,
    ],
    ['an unknown agent', { subtasks: [{ description: 'Design it', agent: 'designer' }] }, /refused: subtask st-1 names unknown agent type "designer"/],
    ['an unknown dependency', { subtasks: [{ id: 'a', description: 'A', agent: 'coder', dependencies: ['zzz'] }] }, /refused: subtask a depends on unknown subtask "zzz"/],
    ['an unreadable estimate', { subtasks: [{ description: 'A', agent: 'coder', estimated_time: 'soon' }] }, /refused: subtasks\.0\.estimated_time "soon" is not a duration/],
    ['an empty plan', { subtasks: [] }, /refused: a plan needs at least one subtask/],
    ['no subtasks at all', { plan: 'do it' }, /refused: the plan has no subtasks array/],
    ['a subtask without a description', { subtasks: [{ agent: 'coder' }] }, /refused: subtask 0 has no description/],
    ['garbage', 'I would start by looking at the code.', /unreadable: no JSON object or array found/],
  ])('%s is refused exactly like CreatePlan refuses it, and the heuristic plans instead', async (_, reply, why) => {
    server.enqueue(answer(reply));
    const plan = await draftPlan({ goal: 'Add a login form, an auth endpoint and tests' }, { model });
    expect(plan.source).toBe('heuristic');
    expect(plan.fallback).toMatch(why);
    expect(plan.usage?.total_tokens).toBe(420);
    expect(plan.subtasks.map((s) => s.description)).toEqual(['Add a login form', 'Add an auth endpoint', 'Add tests']);
  });

  it.each([500, 429])('an HTTP %d falls back to the heuristic planner', async (status) => {
    server.enqueue({ kind: 'error', status });
    const plan = await draftPlan({ goal: GOAL }, { model });
    expect(plan).toMatchObject({ source: 'heuristic', fallback: expect.stringMatching(new RegExp(`the model call failed: .*${status}`)) });
    expect(plan.subtasks.length).toBeGreaterThan(0);
  });

  it('a hung model times out and the heuristic plans; the server saw the client go', async () => {
    server.enqueue({ kind: 'hang' });
    const plan = await draftPlan({ goal: GOAL }, { model, timeoutMs: 150 });
    expect(plan).toMatchObject({ source: 'heuristic', fallback: expect.stringMatching(/timed out after 150 ms/) });
    await newRequests()[0]!.disconnectedEarly;
  });

  it('a cancelled plan aborts the call and does not fall back', async () => {
    server.enqueue({ kind: 'hang' });
    const controller = new AbortController();
    const pending = draftPlan({ goal: GOAL }, { model, signal: controller.signal });
    const request = await server.waitForRequests(seen + 1);
    controller.abort(new Error('plan cancelled'));
    await expect(pending).rejects.toSatisfy((e: unknown) => e instanceof ModelError && e.kind === 'aborted');
    await request.disconnectedEarly;
  });

  it('with no model configured the heuristic plans and says so', async () => {
    const plan = await draftPlan({ goal: GOAL }, { model: unconfiguredChatModel() });
    expect(plan).toMatchObject({ source: 'heuristic', fallback: 'no model configured' });
    expect(newRequests()).toHaveLength(0);
  });
});

describe('what the architect is told', () => {
  it("a modify decision's feedback", async () => {
    server.enqueue(answer({ subtasks: [{ description: 'Form with OAuth', agent: 'coder' }] }));
    await draftPlan({ goal: GOAL, feedback: 'Use OAuth instead of passwords' }, { model });
    expect(lastUserMessageOf(newRequests()[0]!)).toMatch(/asked for changes:\nUse OAuth instead of passwords\nPlan again/);
  });

  it("a re-plan: the finished results, the failure and what had not run", async () => {
    server.enqueue(answer({ subtasks: [{ description: 'Fix the endpoint', agent: 'coder' }] }));
    await draftPlan(
      {
        goal: GOAL,
        replan: {
          previous: [
            { id: 'model', description: 'Add the user model', agent: 'coder', dependencies: [], status: 'succeeded', result: 'Created lib/user.dart' },
            { id: 'api', description: 'Add the auth endpoint', agent: 'coder', dependencies: ['model'], status: 'failed', error: 'HTTP 401 in tests' },
            { id: 'ui', description: 'Add the form', agent: 'coder', dependencies: ['api'], status: 'pending' },
          ],
          failure: { subtask_id: 'api', error: 'HTTP 401 in tests' },
        },
      },
      { model },
    );
    const prompt = lastUserMessageOf(newRequests()[0]!);
    expect(prompt).toMatch(/re-plan/);
    expect(prompt).toMatch(/- model \[coder\] Add the user model\n  result: Created lib\/user\.dart/);
    expect(prompt).toMatch(/Failed subtask: api \[coder\] Add the auth endpoint\n  error: HTTP 401 in tests/);
    expect(prompt).toMatch(/had not run yet:\n- ui \[coder\] Add the form/);
    expect(prompt).toMatch(/Plan only the remaining work/);
  });
});

describe('readPlanShape', () => {
  it('accepts a bare array and {plan: {...}}', () => {
    expect(readPlanShape([{ task: 'Do it' }]).subtasks).toEqual([{ description: 'Do it', dependencies: [], estimated_time: undefined }]);
    expect(readPlanShape({ plan: { steps: [{ description: 'Do it', agent: 'explain' }] } }).subtasks[0]!.agent).toBe('ask');
  });

  it('refuses dependencies that are not a list, naming the subtask', () => {
    expect(() => readPlanShape({ subtasks: [{ id: 'a', description: 'A', dependencies: 'b' }] })).toThrow(DomainError);
    expect(() => readPlanShape({ subtasks: [{ id: 'a', description: 'A', dependencies: 'b' }] })).toThrow(/subtask a has dependencies that are not a list/);
  });
});
