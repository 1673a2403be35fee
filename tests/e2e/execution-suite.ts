// Plan and message execution end to end, against a running Planline and a scripted OpenAI-compatible
// model: helpers shared by the execution test files, and the key cases that run on every bus (the
// embedded one and NATS + Redis). Everything is read back over HTTP, as a user (or the IDE) would.
import { afterEach, expect, it } from 'vitest';
import { startServer, client, type Client, type StartOptions, type TestServer } from '../support/server.js';
import { lastUserMessageOf, startScriptedOpenAi, type RecordedRequest, type ScriptedOpenAi, type ScriptedReply } from '../support/scripted-openai.js';
import { subtaskRunId } from '../../src/handlers/executor.js';

export const COMPLEX = 'Build a REST API with authentication, a database schema, migrations and integration tests across several modules';

export const isClassifier = (r: RecordedRequest) => /You classify tasks/.test(r.system ?? '');
export const isArchitect = (r: RecordedRequest) => /You are the architect/.test(r.system ?? '');
export const isAgent = (r: RecordedRequest) => !isClassifier(r) && !isArchitect(r);
/** The subtask an agent request works on (its task message names it), or undefined for an atomic run. */
export const subtaskOf = (r: RecordedRequest) => /Your subtask \(([^)]+)\)/.exec(lastUserMessageOf(r))?.[1];
export const userText = (r: RecordedRequest) => r.messages.map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');

export const complexVerdict: ScriptedReply = { content: JSON.stringify({ kind: 'complex', confidence: 'high', reason: 'many steps' }) };
export const askVerdict: ScriptedReply = { content: JSON.stringify({ kind: 'atomic', agent: 'ask', confidence: 'high', reason: 'a question' }) };
/** a and b are independent; c needs both. */
export const threeSubtasks: ScriptedReply = {
  content: JSON.stringify({
    subtasks: [
      { id: 'a', description: 'write module a', agent: 'coder', dependencies: [] },
      { id: 'b', description: 'write module b', agent: 'coder', dependencies: [] },
      { id: 'c', description: 'test a and b together', agent: 'debug', dependencies: ['a', 'b'] },
    ],
  }),
};

export interface Model {
  classify?: (r: RecordedRequest) => ScriptedReply | Promise<ScriptedReply>;
  architect?: (r: RecordedRequest) => ScriptedReply | Promise<ScriptedReply>;
  agent?: (r: RecordedRequest) => ScriptedReply | Promise<ScriptedReply>;
}

/** Routes each request by its system prompt; defaults: complex, the three-subtask plan, "result of <id>". */
export function route(model: Model) {
  return (r: RecordedRequest) => {
    if (isClassifier(r)) return model.classify ? model.classify(r) : complexVerdict;
    if (isArchitect(r)) return model.architect ? model.architect(r) : threeSubtasks;
    return model.agent ? model.agent(r) : { content: `result of ${subtaskOf(r) ?? 'the question'}` };
  };
}

/** Wait until `check` returns something truthy (polling); fail with `what` after the timeout. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false | null> | T | undefined | false | null, timeoutMs = 8_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A promise with a timeout, so a request the server never sends fails the test instead of hanging it. */
export function within<T>(what: string, promise: Promise<T>, timeoutMs = 8_000): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs).unref())]);
}

/** A gate an agent reply can wait on; open() releases every waiter. */
export function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

export interface Setup {
  server: TestServer;
  api: Client;
  model: ScriptedOpenAi;
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});
export const onCleanup = (cleanup: () => Promise<unknown>) => void cleanups.push(cleanup);

/** Every role (test servers default to edge and projector only) and short retry delays. */
export const FAST = { ROLES: 'all', SUBTASK_RETRY_BACKOFF_MS: '20' };
export const FAST_JOBS: StartOptions = { jobBackoffMs: [10] };

/** A scripted model and a server using it (env and options on top of `base`). */
export async function setup(model: Model, env: Record<string, string | undefined> = {}, options: StartOptions = {}, base?: Base): Promise<Setup> {
  const scripted = await startScriptedOpenAi({ respond: route(model) });
  onCleanup(() => scripted.close());
  const server = await (base?.start ?? startServer)({ OPENAI_BASE_URL: scripted.baseURL, OPENAI_API_KEY: 'x', ...FAST, ...base?.env, ...env }, { ...FAST_JOBS, ...options });
  onCleanup(() => server.dispose());
  return { server, api: client(server.api), model: scripted };
}

/** What differs between buses: extra env and how a server starts (its bus prefix, its cleanup). */
export interface Base {
  env?: Record<string, string>;
  start?: (env: Record<string, string | undefined>, options: StartOptions) => Promise<TestServer>;
}

export async function newSession(api: Client): Promise<string> {
  const s = await api.post('/sessions', {});
  expect(s.status).toBe(201);
  return s.body.session_id as string;
}

export async function send(api: Client, sessionId: string, content: string, strategy?: 'enqueue' | 'interrupt' | 'reject') {
  return api.post(`/sessions/${sessionId}/messages`, { content, ...(strategy !== undefined ? { strategy } : {}) });
}

export const session = async (api: Client, id: string) => (await api.get(`/sessions/${id}`)).body;
export const plan = async (api: Client, id: string) => (await api.get(`/plans/${id}`)).body;

/** The raw events of a stream ([] when it has none). */
export async function events(api: Client, stream: string): Promise<Array<{ type: string; data: any; revision: number }>> {
  const all: Array<{ type: string; data: any; revision: number }> = [];
  let from = 0;
  for (;;) {
    const r = await api.get(`/streams/${stream}?from=${from}&limit=100`);
    if (r.status === 404) return all;
    all.push(...r.body.events);
    if (r.body.next_from === null) return all;
    from = r.body.next_from;
  }
}
export const types = async (api: Client, stream: string) => (await events(api, stream)).map((e) => e.type);

/** Wait for the session's current plan to reach `status`. */
export async function planOf(api: Client, sessionId: string, status: string | string[], timeoutMs?: number) {
  const wanted = Array.isArray(status) ? status : [status];
  return waitFor(`the session's plan to be ${wanted.join('|')}`, async () => {
    const s = await session(api, sessionId);
    if (!s.current_plan_id) return undefined;
    const p = await plan(api, s.current_plan_id);
    return wanted.includes(p.status) ? p : undefined;
  }, timeoutMs);
}

export async function planStatus(api: Client, planId: string, status: string | string[], timeoutMs?: number) {
  const wanted = Array.isArray(status) ? status : [status];
  return waitFor(`plan ${planId} to be ${wanted.join('|')}`, async () => {
    const p = await plan(api, planId);
    return wanted.includes(p.status) ? p : undefined;
  }, timeoutMs);
}

export async function decide(api: Client, p: any, decision: 'approve' | 'reject' | 'modify', feedback?: string) {
  const r = await api.post(`/plans/${p.plan_id}/decision`, {
    approval_request_id: p.approval.approval_request_id,
    decision,
    ...(feedback !== undefined ? { feedback } : {}),
  });
  expect(r.status, r.text).toBe(200);
  return r.body;
}

/** A new session, a complex message, its plan awaiting approval. */
export async function plannedSession(api: Client, content = COMPLEX) {
  const sessionId = await newSession(api);
  expect((await send(api, sessionId, content)).status).toBe(201);
  const p = await planOf(api, sessionId, 'awaiting_approval');
  return { sessionId, plan: p };
}

export const runStream = (planId: string, subtaskId: string, attempt: number, revision = 1) => `run-${subtaskRunId(planId, subtaskId, attempt, revision)}`;

/** How many times each event type occurs in a stream. */
export async function counts(api: Client, stream: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of await types(api, stream)) out[t] = (out[t] ?? 0) + 1;
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The key cases, on any bus.

export function keyCases(base: Base = {}) {
  it('a complex message is planned, approved, runs independent subtasks in parallel and hands results to the dependent one', async () => {
    const bothAsked = gate();
    const seen = new Set<string>();
    const { api, model } = await setup(
      {
        agent: async (r) => {
          const id = subtaskOf(r)!;
          if (id === 'a' || id === 'b') {
            seen.add(id);
            if (seen.size === 2) bothAsked.open();
            // Neither answers before the model has seen both: only parallel runs get past this.
            await within('both independent subtasks to ask the model', bothAsked.opened, 5_000);
            return { content: `result of ${id}`, delayMs: 20 };
          }
          return { content: `result of ${id}` };
        },
      },
      {},
      {},
      base,
    );
    const { sessionId, plan: drafted } = await plannedSession(api);
    expect(drafted.source).toBe('llm');
    expect(drafted.subtasks.map((s: any) => s.id)).toEqual(['a', 'b', 'c']);
    expect((await session(api, sessionId)).fsm_state).toBe('plan_review');
    await decide(api, drafted, 'approve');
    const done = await planStatus(api, drafted.plan_id, ['completed', 'failed', 'cancelled']);
    expect(done.status).toBe('completed');
    expect(done.progress).toMatchObject({ total: 3, done: 3, failed: 0, percentage: 100 });
    expect(done.subtasks.map((s: any) => [s.id, s.status, s.attempt])).toEqual([
      ['a', 'succeeded', 1],
      ['b', 'succeeded', 1],
      ['c', 'succeeded', 1],
    ]);
    const agents = model.requests.filter(isAgent);
    expect(agents.map(subtaskOf).slice(0, 2).sort()).toEqual(['a', 'b']);
    const c = agents.find((r) => subtaskOf(r) === 'c')!;
    expect(lastUserMessageOf(c)).toContain('result of a');
    expect(lastUserMessageOf(c)).toContain('result of b');
    expect(agents).toHaveLength(3);
    const s = await waitFor('the session to be free', async () => {
      const s = await session(api, sessionId);
      return ['completed', 'idle'].includes(s.fsm_state) ? s : undefined;
    });
    expect(['completed', 'idle']).toContain(s.fsm_state);
  });

  it('a subtask out of retries: re-planned with the failure when allowed; its dependents never start', async () => {
    let broken = true;
    const { api, model } = await setup(
      { agent: (r) => (subtaskOf(r) === 'a' && broken ? { kind: 'error', status: 400, message: 'bad request for a' } : { content: `result of ${subtaskOf(r)}` }) },
      { SUBTASK_MAX_ATTEMPTS: '2', PLAN_MAX_REPLANS: '1' },
      {},
      base,
    );
    const { plan: drafted } = await plannedSession(api);
    await decide(api, drafted, 'approve');
    const revised = await waitFor('a new revision awaiting approval', async () => {
      const p = await plan(api, drafted.plan_id);
      return p.status === 'awaiting_approval' && p.revision === 2 ? p : undefined;
    });
    expect(revised.revision).toBe(2);
    const architects = model.requests.filter(isArchitect);
    expect(architects).toHaveLength(2);
    expect(lastUserMessageOf(architects[1]!)).toMatch(/Failed subtask: a/);
    expect(lastUserMessageOf(architects[1]!)).toContain('bad request for a');
    // c depends on a: it was never dispatched, and no model request was made for it.
    const planEvents = await events(api, `plan-${drafted.plan_id}`);
    expect(planEvents.filter((e) => e.type === 'SubtaskDispatched' && e.data.subtask_id === 'c')).toHaveLength(0);
    expect(model.requests.filter((r) => subtaskOf(r) === 'c')).toHaveLength(0);
    // Two attempts of a, each a run that failed once its turn job ran out of deliveries.
    for (const attempt of [1, 2]) expect((await counts(api, runStream(drafted.plan_id, 'a', attempt))).RunFailed).toBe(1);
    expect(await types(api, runStream(drafted.plan_id, 'a', 3))).toEqual([]);
    // The new revision (the same subtask ids) runs once approved: its runs are new ones.
    broken = false;
    await decide(api, revised, 'approve');
    const done = await planStatus(api, drafted.plan_id, ['completed', 'failed']);
    expect(done.status).toBe('completed');
    expect(done.subtasks.map((s: any) => [s.id, s.status, s.attempt])).toEqual([
      ['a', 'succeeded', 1],
      ['b', 'succeeded', 1],
      ['c', 'succeeded', 1],
    ]);
    for (const id of ['a', 'b', 'c']) expect((await counts(api, runStream(drafted.plan_id, id, 1, 2))).RunSucceeded).toBe(1);
  });

  it('cancelling mid-run aborts the model call, cancels the plan, sends nothing more; cancelling again changes nothing', async () => {
    const { api, model } = await setup({ agent: () => ({ kind: 'hang' }) }, {}, {}, base);
    const { sessionId, plan: drafted } = await plannedSession(api);
    await decide(api, drafted, 'approve');
    await waitFor('both subtask requests', () => model.requests.filter(isAgent).length === 2);
    const cancelled = await api.post(`/plans/${drafted.plan_id}/cancel`, { reason: 'changed my mind' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.changed).toBe(true);
    for (const r of model.requests.filter(isAgent)) await within('the model call to be aborted', r.disconnectedEarly);
    const p = await planStatus(api, drafted.plan_id, 'cancelled');
    expect(p.subtasks.filter((s: any) => s.id !== 'c').map((s: any) => s.status)).toEqual(['cancelled', 'cancelled']);
    for (const id of ['a', 'b']) await waitFor(`run ${id} cancelled`, async () => (await counts(api, runStream(drafted.plan_id, id, 1))).RunCancelled === 1);
    const again = await api.post(`/plans/${drafted.plan_id}/cancel`, {});
    expect(again.status).toBe(200);
    expect(again.body.changed).toBe(false);
    await waitFor('the session to be free', async () => ['completed', 'idle'].includes((await session(api, sessionId)).fsm_state));
    const before = model.requests.length;
    // Give the executor and the workers the chance to (wrongly) do more.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(model.requests.length).toBe(before);
    expect((await counts(api, `plan-${drafted.plan_id}`)).PlanCancelled).toBe(1);
  });

  it('multitask enqueue (default): a message during execution is classified only after the plan completes', async () => {
    const release = gate();
    const { api, model } = await setup({ agent: async (r) => (await release.opened, { content: `result of ${subtaskOf(r)}` }) }, {}, {}, base);
    const { sessionId, plan: drafted } = await plannedSession(api);
    await decide(api, drafted, 'approve');
    await waitFor('the subtasks to ask the model', () => model.requests.filter(isAgent).length === 2);
    const queued = await send(api, sessionId, 'And afterwards, what does module a export?');
    expect(queued.status).toBe(201);
    const received = (await events(api, `session-${sessionId}`)).filter((e) => e.type === 'UserMessageReceived');
    expect(received.at(-1)!.data.queued).toBe(true);
    expect((await plan(api, drafted.plan_id)).status).toBe('executing');
    expect(model.requests.filter(isClassifier)).toHaveLength(1);
    release.open();
    await planStatus(api, drafted.plan_id, 'completed');
    await waitFor('the queued message to be classified', () => model.requests.filter(isClassifier).length === 2);
    const second = model.requests.filter(isClassifier)[1]!;
    expect(lastUserMessageOf(second)).toContain('what does module a export?');
    // Classified after the last subtask's answer, not before.
    const lastAgent = model.requests.filter(isAgent).at(-1)!;
    expect(second.index).toBeGreaterThan(lastAgent.index);
    await waitFor('the queued message to start', async () => (await types(api, `session-${sessionId}`)).includes('QueuedMessageStarted'));
  });

  it('multitask interrupt: a new message cancels the running plan at once and is classified', async () => {
    const { api, model } = await setup({ agent: () => ({ kind: 'hang' }) }, {}, {}, base);
    const { sessionId, plan: drafted } = await plannedSession(api);
    await decide(api, drafted, 'approve');
    await waitFor('the subtasks to ask the model', () => model.requests.filter(isAgent).length === 2);
    const r = await send(api, sessionId, 'Stop, what does module a export?', 'interrupt');
    expect(r.status).toBe(201);
    // The cancel is in the same commit as the message.
    const planEvents = await types(api, `plan-${drafted.plan_id}`);
    expect(planEvents).toContain('PlanCancelled');
    for (const req of model.requests.filter(isAgent)) await within('the model call to be aborted', req.disconnectedEarly);
    await waitFor('the new message to be classified', () => model.requests.filter(isClassifier).length === 2);
    expect(lastUserMessageOf(model.requests.filter(isClassifier)[1]!)).toContain('Stop, what does module a export?');
    expect((await plan(api, drafted.plan_id)).status).toBe('cancelled');
  });

  it('multitask reject: a message during execution gets 409 session_busy and changes nothing', async () => {
    const release = gate();
    const { api, model } = await setup({ agent: async (r) => (await release.opened, { content: `result of ${subtaskOf(r)}` }) }, {}, {}, base);
    try {
      const { sessionId, plan: drafted } = await plannedSession(api);
      await decide(api, drafted, 'approve');
      await waitFor('the subtasks to ask the model', () => model.requests.filter(isAgent).length === 2);
      const before = await events(api, `session-${sessionId}`);
      const r = await send(api, sessionId, 'What does module a export?', 'reject');
      expect(r.status).toBe(409);
      expect(r.body.code ?? r.body.error).toBe('session_busy');
      expect(await events(api, `session-${sessionId}`)).toHaveLength(before.length);
      expect((await plan(api, drafted.plan_id)).status).toBe('executing');
      release.open();
      await planStatus(api, drafted.plan_id, 'completed');
      expect(model.requests.filter(isClassifier)).toHaveLength(1);
    } finally {
      release.open();
    }
  });
}
