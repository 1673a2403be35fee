// Plan and message execution end to end on the embedded event store and bus: the key cases (shared
// with the NATS + Redis file) and the rest of the matrix. The multitask strategy comes with the message
// in the key cases, and from the server's default (MULTITASK_STRATEGY) for an atomic run interrupted.
import { describe, expect, it } from 'vitest';
import { startServer, client } from '../support/server.js';
import { lastUserMessageOf } from '../support/scripted-openai.js';
import { atomicRunId } from '../../src/handlers/executor.js';
import {
  COMPLEX,
  askVerdict,
  counts,
  decide,
  events,
  FAST,
  FAST_JOBS,
  isAgent,
  isArchitect,
  isClassifier,
  keyCases,
  newSession,
  onCleanup,
  plan,
  plannedSession,
  planOf,
  planStatus,
  runStream,
  send,
  session,
  setup,
  subtaskOf,
  types,
  waitFor,
  within,
} from './execution-suite.js';

describe('execution (embedded)', () => {
  keyCases();

  it('an atomic question is answered by one run without a plan; the follow-up carries the conversation', async () => {
    const { api, model } = await setup({
      classify: () => askVerdict,
      agent: (r) => ({ content: /blue/.test(lastUserMessageOf(r)) ? 'Because of Rayleigh scattering.' : 'It scatters short wavelengths more.' }),
    });
    const sessionId = await newSession(api);
    const q1 = 'Why is the sky blue?';
    expect((await send(api, sessionId, q1)).status).toBe(201);
    const finished = await waitFor('the task to finish', async () => (await events(api, `session-${sessionId}`)).find((e) => e.type === 'TaskFinished'));
    expect(finished.data).toMatchObject({ status: 'succeeded', answer: 'Because of Rayleigh scattering.' });
    const s = await waitFor('the session to be free', async () => {
      const s = await session(api, sessionId);
      return ['idle', 'completed'].includes(s.fsm_state) ? s : undefined;
    });
    expect(s.current_plan_id ?? null).toBeNull();
    expect(model.requests.filter(isArchitect)).toHaveLength(0);
    expect(model.requests.filter(isAgent)).toHaveLength(1);

    const q2 = 'And why is that?';
    expect((await send(api, sessionId, q2)).status).toBe(201);
    await waitFor('the follow-up to finish', async () => (await events(api, `session-${sessionId}`)).filter((e) => e.type === 'TaskFinished').length === 2);
    const followUp = model.requests.filter(isAgent)[1]!;
    expect(followUp.messages).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ role: 'user', content: q1 }),
        expect.objectContaining({ role: 'assistant', content: 'Because of Rayleigh scattering.' }),
      ]),
    );
    expect(lastUserMessageOf(followUp)).toBe(q2);
    expect((await counts(api, `run-${atomicRunId((await events(api, `session-${sessionId}`)).find((e) => e.type === 'TaskClassified')!.data.message_id)}`)).RunSucceeded).toBe(1);
  });

  it('MULTITASK_STRATEGY=interrupt during an atomic run: the run is cancelled and its model call aborted; the new message is answered', async () => {
    const { api, model } = await setup(
      { classify: () => askVerdict, agent: (r) => (/first/.test(lastUserMessageOf(r)) ? { kind: 'hang' } : { content: 'the second answer' }) },
      { MULTITASK_STRATEGY: 'interrupt' },
    );
    const sessionId = await newSession(api);
    await send(api, sessionId, 'the first question?');
    const hanging = await waitFor('the first run to ask the model', () => model.requests.find(isAgent));
    expect((await send(api, sessionId, 'the second question?')).status).toBe(201);
    await within('the first model call to be aborted', hanging.disconnectedEarly);
    const finished = await waitFor('the second question to finish', async () => (await events(api, `session-${sessionId}`)).find((e) => e.type === 'TaskFinished'));
    expect(finished.data).toMatchObject({ status: 'succeeded', answer: 'the second answer' });
    const classified = (await events(api, `session-${sessionId}`)).filter((e) => e.type === 'TaskClassified');
    expect(classified).toHaveLength(2);
    expect(await counts(api, `run-${classified[0]!.data.run_id}`)).toMatchObject({ RunStarted: 1, RunCancelled: 1 });
    await waitFor('the session to be free', async () => ['idle', 'completed'].includes((await session(api, sessionId)).fsm_state));
    expect(model.requests.filter(isAgent)).toHaveLength(2);
  });

  it('reject: nothing runs; modify: the architect gets the feedback, the new revision is approved and completes', async () => {
    const { api, model } = await setup({});
    const rejected = await plannedSession(api);
    await decide(api, rejected.plan, 'reject');
    await planStatus(api, rejected.plan.plan_id, 'rejected');
    await waitFor('the session to be free', async () => ['idle', 'completed'].includes((await session(api, rejected.sessionId)).fsm_state));
    expect(model.requests.filter(isAgent)).toHaveLength(0);

    const modified = await plannedSession(api);
    await decide(api, modified.plan, 'modify', 'Use SQLite instead of PostgreSQL, please');
    const revised = await waitFor('revision 2 awaiting approval', async () => {
      const p = await plan(api, modified.plan.plan_id);
      return p.status === 'awaiting_approval' && p.revision === 2 ? p : undefined;
    });
    const architects = model.requests.filter(isArchitect);
    expect(lastUserMessageOf(architects.at(-1)!)).toContain('Use SQLite instead of PostgreSQL, please');
    expect(model.requests.filter(isAgent)).toHaveLength(0);
    await decide(api, revised, 'approve');
    const done = await planStatus(api, revised.plan_id, ['completed', 'failed']);
    expect(done.status).toBe('completed');
    expect(model.requests.filter(isAgent)).toHaveLength(3);
  });

  it('approval expiry: expire leaves the plan expired and unrun; approve approves and executes it', async () => {
    const expiring = await setup({}, { PLAN_APPROVAL_TIMEOUT_S: '1', PLAN_APPROVAL_TIMEOUT_ACTION: 'expire' });
    const approving = await setup({}, { PLAN_APPROVAL_TIMEOUT_S: '1', PLAN_APPROVAL_TIMEOUT_ACTION: 'approve' });
    const [a, b] = await Promise.all([plannedSession(expiring.api), plannedSession(approving.api)]);
    const expired = await planStatus(expiring.api, a.plan.plan_id, ['expired', 'approved', 'executing', 'completed'], 5_000);
    expect(expired.status).toBe('expired');
    const executed = await planStatus(approving.api, b.plan.plan_id, ['expired', 'completed', 'failed'], 5_000);
    expect(executed.status).toBe('completed');
    expect(approving.model.requests.filter(isAgent)).toHaveLength(3);
    await waitFor('the expired plan\'s session to be free', async () => ['idle', 'completed'].includes((await session(expiring.api, a.sessionId)).fsm_state));
    expect(expiring.model.requests.filter(isAgent)).toHaveLength(0);
  });

  it('a subtask whose model call fails on its first two attempts succeeds on the third; its dependent waits for it', async () => {
    // Each attempt is a run whose turn job is delivered 4 times before the run fails: 8 failures.
    let failures = 0;
    const { api, model } = await setup(
      {
        agent: (r) => {
          if (subtaskOf(r) !== 'a' || failures >= 8) return { content: `result of ${subtaskOf(r)}` };
          failures++;
          return failures % 2 ? { kind: 'error', status: 400, message: 'scripted bad request' } : { kind: 'raw', body: 'this is not json' };
        },
      },
      { SUBTASK_MAX_ATTEMPTS: '3' },
    );
    const { plan: drafted } = await plannedSession(api);
    await decide(api, drafted, 'approve');
    const done = await planStatus(api, drafted.plan_id, ['completed', 'failed', 'awaiting_approval'], 10_000);
    expect(done.status).toBe('completed');
    expect(done.subtasks.map((s: any) => [s.id, s.status, s.attempt])).toEqual([
      ['a', 'succeeded', 3],
      ['b', 'succeeded', 1],
      ['c', 'succeeded', 1],
    ]);
    for (const attempt of [1, 2]) expect(await counts(api, runStream(drafted.plan_id, 'a', attempt))).toMatchObject({ RunFailed: 1 });
    expect((await counts(api, runStream(drafted.plan_id, 'a', 3))).RunSucceeded).toBe(1);
    // c asked the model only after a's third attempt answered.
    const lastA = model.requests.filter((r) => subtaskOf(r) === 'a').at(-1)!;
    const cs = model.requests.filter((r) => subtaskOf(r) === 'c');
    expect(cs).toHaveLength(1);
    expect(cs[0]!.index).toBeGreaterThan(lastA.index);
    expect(lastUserMessageOf(cs[0]!)).toContain('result of a');
  });

  it('a subtask out of retries with no re-plans left fails the plan; its dependents never start', async () => {
    const { api, model } = await setup(
      { agent: (r) => (subtaskOf(r) === 'a' ? { kind: 'error', status: 400, message: 'bad request for a' } : { content: `result of ${subtaskOf(r)}` }) },
      { SUBTASK_MAX_ATTEMPTS: '2', PLAN_MAX_REPLANS: '0' },
    );
    const { sessionId, plan: drafted } = await plannedSession(api);
    await decide(api, drafted, 'approve');
    const failed = await planStatus(api, drafted.plan_id, ['failed', 'awaiting_approval', 'completed'], 10_000);
    expect(failed.status).toBe('failed');
    expect(failed.reason).toMatch(/subtask a failed/);
    expect(model.requests.filter(isArchitect)).toHaveLength(1);
    expect(model.requests.filter((r) => subtaskOf(r) === 'c')).toHaveLength(0);
    expect((await events(api, `plan-${drafted.plan_id}`)).filter((e) => e.type === 'SubtaskDispatched' && e.data.subtask_id === 'c')).toHaveLength(0);
    await waitFor('the session to be free', async () => ['idle', 'completed'].includes((await session(api, sessionId)).fsm_state));
  });

  it('no model configured: a heuristic plan whose subtasks fail with "no model configured"; an atomic question fails and frees the session', async () => {
    const server = await startServer({ ...FAST }, FAST_JOBS);
    onCleanup(() => server.dispose());
    const api = client(server.api);
    const { sessionId, plan: drafted } = await plannedSession(api);
    expect(drafted.source).toBe('heuristic');
    await decide(api, drafted, 'approve');
    const ended = await planStatus(api, drafted.plan_id, ['failed', 'completed', 'cancelled', 'awaiting_approval'], 10_000);
    expect(ended.status).toBe('failed');
    expect(ended.reason).toMatch(/no model configured/i);
    const runId = ended.subtasks.find((s: any) => s.attempt > 0);
    expect(runId).toBeDefined();
    const failedRun = (await events(api, runStream(drafted.plan_id, runId.id, 1))).find((e) => e.type === 'RunFailed');
    expect(failedRun?.data.error).toMatch(/no model configured/i);
    await waitFor('the session to be free', async () => ['idle', 'completed'].includes((await session(api, sessionId)).fsm_state));

    const asking = await newSession(api);
    expect((await send(api, asking, 'What does this function return?')).status).toBe(201);
    const finished = await waitFor('the question to finish', async () => (await events(api, `session-${asking}`)).find((e) => e.type === 'TaskFinished'));
    expect(finished.data.status).toBe('failed');
    expect(finished.data.error).toMatch(/no model configured/i);
    await waitFor('the session to be free', async () => ['idle', 'completed'].includes((await session(api, asking)).fsm_state));
    // Free again: the next message is not queued.
    expect((await send(api, asking, 'And this one?')).status).toBe(201);
    const received = (await events(api, `session-${asking}`)).filter((e) => e.type === 'UserMessageReceived');
    expect(received.at(-1)!.data.queued).toBeUndefined();
  });

  it('a model answering garbage to the classifier and the architect: heuristic fallback, the plan says so', async () => {
    const { api, model } = await setup({
      classify: () => ({ content: 'I would rather not say.' }),
      architect: () => ({ kind: 'raw', body: '<html>oops</html>', contentType: 'text/html' }),
    });
    const { plan: drafted } = await plannedSession(api);
    expect(drafted.source).toBe('heuristic');
    expect(drafted.subtasks.length).toBeGreaterThan(0);
    expect(model.requests.filter(isClassifier).length).toBeGreaterThanOrEqual(1);
    expect(model.requests.filter(isArchitect).length).toBeGreaterThanOrEqual(1);
  });

  it('an executor restart mid-plan: the plan completes and every subtask run finishes exactly once', async () => {
    const first = await setup({ agent: (r) => (subtaskOf(r) === 'a' ? { kind: 'hang' } : { content: `result of ${subtaskOf(r)}` }) });
    const { plan: drafted } = await plannedSession(first.api);
    await decide(first.api, drafted, 'approve');
    const hanging = await waitFor('a to ask the model', () => first.model.requests.find((r) => subtaskOf(r) === 'a'));
    await first.server.close();
    await within('the in-flight call to be dropped', hanging.disconnectedEarly);
    first.model.respondWith((r) => (isAgent(r) ? { content: `result of ${subtaskOf(r)}` } : { kind: 'error', status: 500 }));
    const second = await startServer({ OPENAI_BASE_URL: first.model.baseURL, OPENAI_API_KEY: 'x', ...FAST }, { ...FAST_JOBS, dir: first.server.dir });
    onCleanup(() => second.close());
    const api = client(second.api);
    const done = await planStatus(api, drafted.plan_id, ['completed', 'failed'], 10_000);
    expect(done.status).toBe('completed');
    for (const s of done.subtasks) {
      expect(s.attempt).toBe(1);
      expect((await counts(api, runStream(drafted.plan_id, s.id, 1))).RunSucceeded).toBe(1);
    }
    expect(first.model.requests.filter((r) => subtaskOf(r) === 'c')).toHaveLength(1);

    // Once more, with everything done: reading the log again at start asks the model nothing and changes nothing.
    const requests = first.model.requests.length;
    const planEvents = (await events(api, `plan-${drafted.plan_id}`)).length;
    await second.close();
    const third = await startServer({ OPENAI_BASE_URL: first.model.baseURL, OPENAI_API_KEY: 'x', ...FAST }, { ...FAST_JOBS, dir: first.server.dir });
    onCleanup(() => third.close());
    const again = client(third.api);
    expect((await plan(again, drafted.plan_id)).status).toBe('completed');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(first.model.requests.length).toBe(requests);
    expect(await events(again, `plan-${drafted.plan_id}`)).toHaveLength(planEvents);
    for (const s of done.subtasks) expect((await counts(again, runStream(drafted.plan_id, s.id, 1))).RunSucceeded).toBe(1);
  });

  it('an approval deadline across a restart fires once', async () => {
    const first = await setup({}, { PLAN_APPROVAL_TIMEOUT_S: '1' });
    const { plan: drafted } = await plannedSession(first.api);
    await first.server.close();
    const second = await startServer({ OPENAI_BASE_URL: first.model.baseURL, OPENAI_API_KEY: 'x', PLAN_APPROVAL_TIMEOUT_S: '1', ...FAST }, { ...FAST_JOBS, dir: first.server.dir });
    onCleanup(() => second.close());
    const api = client(second.api);
    await planStatus(api, drafted.plan_id, 'expired', 5_000);
    await waitFor('the session to be free', async () => ['idle', 'completed'].includes((await session(api, drafted.session_id)).fsm_state));
    expect((await counts(api, `plan-${drafted.plan_id}`)).PlanApprovalExpired).toBe(1);
    expect(await types(api, `plan-${drafted.plan_id}`)).not.toContain('PlanApproved');
  });
});

void planOf;
void COMPLEX;
