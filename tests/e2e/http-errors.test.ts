// Refusals, end to end: every bad request is an application/problem+json with a stable code, and it
// changes nothing (the log head does not move, no session or plan appears). Plus the body size limit
// and bearer tokens (HS256), each on a server started with the setting.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { client, startServer, type Client, type TestServer } from '../support/server.js';
import { decide, draftPlan, expectProblem, logHead, read, streamEvents } from './api.js';
import { hs256, validClaims } from '../support/tokens.js';

describe('bad input changes nothing', () => {
  let server: TestServer;
  let c: Client;
  beforeAll(async () => {
    server = await startServer();
    c = client(server.api);
  });
  afterAll(async () => {
    await server.dispose();
    expect(server.logs.filter((line) => line.level === 'error')).toEqual([]);
  });

  /** Run `attempt`; the log head and the session list must be what they were. */
  async function changesNothing(attempt: () => Promise<void>): Promise<void> {
    const head = await logHead(c);
    const sessions = (await read(c, '/sessions', head)).body.sessions;
    await attempt();
    expect(await logHead(c)).toBe(head);
    expect((await read(c, '/sessions', head)).body.sessions).toEqual(sessions);
  }

  test('malformed JSON is 400 malformed_json', async () => {
    await changesNothing(async () => {
      const reply = await c.post('/plans', undefined, { raw: '{"goal": "x", "subtasks": [', headers: { 'content-type': 'application/json' } });
      expectProblem(reply, 400, 'malformed_json');
      expectProblem(await c.post('/sessions', undefined, { raw: '{name: bare}', headers: { 'content-type': 'application/json' } }), 400, 'malformed_json');
    });
  });

  test('wrong types are 400 validation_failed naming the field', async () => {
    await changesNothing(async () => {
      const wrongType = expectProblem(await c.post('/plans', { goal: 'x', subtasks: [{ description: 42 }] }), 400, 'validation_failed');
      expect(wrongType.detail).toContain('subtasks.0.description');
      expect(wrongType.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'subtasks.0.description' })]));

      const missingGoal = expectProblem(await c.post('/plans', { subtasks: [{ description: 'x' }] }), 400, 'validation_failed');
      expect(missingGoal.detail).toContain('goal');

      const badEstimate = expectProblem(
        await c.post('/plans', { goal: 'x', subtasks: [{ description: 'a', estimated_time: '5 min' }, { description: 'b', estimated_time: 'soonish' }] }),
        400,
        'validation_failed',
      );
      expect(badEstimate.detail).toContain('subtasks.1.estimated_time');
      expect(badEstimate.detail).toContain('soonish');
      expectProblem(await c.post('/plans', { goal: 'x', subtasks: [{ description: 'a', estimated_time: -5 }] }), 400, 'validation_failed');
      expectProblem(await c.post('/plans', { goal: 'x', subtasks: [{ description: 'a', estimated_time: true }] }), 400, 'validation_failed');

      const badDep = expectProblem(await c.post('/plans', { goal: 'x', subtasks: [{ description: 'a' }, { description: 'b', dependencies: [0.5] }] }), 400, 'validation_failed');
      expect(badDep.detail).toContain('subtasks.1.dependencies.0');

      const badAgent = expectProblem(await c.post('/plans', { goal: 'x', subtasks: [{ description: 'a', agent: 'wizard' }] }), 400, 'validation_failed');
      expect(badAgent.detail).toContain('subtasks.0.agent');

      expectProblem(await c.post('/sessions', { mode: 42 }), 400, 'validation_failed');
      expectProblem(await c.post('/sessions', { mode: 'x'.repeat(65) }), 400, 'validation_failed');
      expectProblem(await c.post('/sessions', { mode: '' }), 400, 'validation_failed');
      expectProblem(await c.post('/sessions', { session_id: 'has spaces' }), 400, 'validation_failed');
      expectProblem(await c.post('/sessions', [1, 2]), 400, 'validation_failed');
      expectProblem(await c.post('/sessions', 'a string'), 400, 'validation_failed');
      expectProblem(await c.post('/sessions', { name: 'ok' }, { headers: { 'Idempotency-Key': 'x'.repeat(201) } }), 400, 'validation_failed');
    });
  });

  test('a body that is not JSON is 415', async () => {
    await changesNothing(async () => {
      const reply = await c.post('/plans', undefined, { raw: 'goal=x', headers: { 'content-type': 'text/plain' } });
      const p = expectProblem(reply, 415, 'unsupported_media_type');
      expect(p.detail).toContain('text/plain');
      expectProblem(await c.post('/sessions', undefined, { raw: '{"name":"x"}', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
    });
  });

  test('plans that cannot run are 400 and create no session or plan', async () => {
    const bad: Array<[string, unknown, string]> = [
      ['a cycle', [{ description: 'a', dependencies: [1] }, { description: 'b', dependencies: [0] }], 'invalid_plan'],
      ['a longer cycle by id', [{ id: 'a', description: 'a', dependencies: ['c'] }, { id: 'b', description: 'b', dependencies: ['a'] }, { id: 'c', description: 'c', dependencies: ['b'] }], 'invalid_plan'],
      ['an unknown dependency id', [{ description: 'a', dependencies: ['nope'] }], 'invalid_plan'],
      ['a dependency index past the end', [{ description: 'a' }, { description: 'b', dependencies: [5] }], 'invalid_plan'],
      ['a self-dependency by index', [{ description: 'a', dependencies: [0] }], 'invalid_plan'],
      ['a self-dependency by id', [{ id: 'x', description: 'a', dependencies: ['x'] }], 'invalid_plan'],
      ['a duplicate subtask id', [{ id: 'x', description: 'a' }, { id: 'x', description: 'b' }], 'invalid_plan'],
      ['no subtasks', [], 'invalid_plan'],
      ['an unknown agent type', [{ description: 'a', agent: 'wizard' }], 'validation_failed'],
      ['an empty description', [{ description: '   ' }], 'validation_failed'],
    ];
    const existing = await draftPlan(c);
    await changesNothing(async () => {
      for (const [what, subtasks, code] of bad) {
        // Both with a new session (none may be started) and for an existing one (its plan stays current).
        const alone = await c.post('/plans', { goal: `bad: ${what}`, subtasks });
        expect(alone.body?.code, `${what}: ${alone.text}`).toBe(code);
        expectProblem(alone, 400, code);
        expectProblem(await c.post('/plans', { session_id: existing.session_id, goal: `bad: ${what}`, subtasks }), 400, code);
      }
    });
    const cycle = expectProblem(await c.post('/plans', { goal: 'cycle', subtasks: bad[1]![1] }), 400, 'invalid_plan');
    expect(cycle.detail).toMatch(/cycle/);
    expect(cycle.cycle).toEqual(expect.arrayContaining(['a', 'b', 'c']));
    const session = await read(c, `/sessions/${existing.session_id}`, existing.position);
    expect(session.body).toMatchObject({ current_plan_id: existing.plan_id, fsm_state: 'plan_review' });
    expect((await read(c, `/plans/${existing.plan_id}`, existing.position)).body.status).toBe('awaiting_approval');
  });

  test('a plan for a session that cannot take one is 409 and creates nothing', async () => {
    const busy = await draftPlan(c);
    expect((await decide(c, busy.plan_id, busy.approval_request_id, 'approve')).status).toBe(200);
    const suspended = await draftPlan(c);
    expect((await c.post(`/sessions/${suspended.session_id}/suspend`)).status).toBe(200);
    await changesNothing(async () => {
      const refused = expectProblem(await c.post('/plans', { session_id: busy.session_id, goal: 'another', subtasks: [{ description: 'a' }] }), 409, 'illegal_transition');
      expect(refused.fsm_state).toBe('plan_execution');
      expect(refused.legal_commands).not.toContain('AttachPlan');
      expectProblem(await c.post('/plans', { session_id: suspended.session_id, goal: 'another', subtasks: [{ description: 'a' }] }), 409, 'illegal_transition');
    });
    expect((await read(c, `/sessions/${busy.session_id}`, await logHead(c))).body.current_plan_id).toBe(busy.plan_id);
  });

  test('a bad revision is refused and the plan stays re-planning', async () => {
    const plan = await draftPlan(c);
    const modified = await decide(c, plan.plan_id, plan.approval_request_id, 'modify', { feedback: 'again' });
    expect(modified.status).toBe(200);
    await changesNothing(async () => {
      expectProblem(await c.post(`/plans/${plan.plan_id}/revisions`, { subtasks: [{ description: 'a', dependencies: [0] }] }), 400, 'invalid_plan');
      expectProblem(await c.post(`/plans/${plan.plan_id}/revisions`, { subtasks: [] }), 400, 'invalid_plan');
      expectProblem(await c.post(`/plans/${plan.plan_id}/revisions`, { subtasks: 'none' }), 400, 'validation_failed');
    });
    expect((await read(c, `/plans/${plan.plan_id}`, modified.body.position)).body).toMatchObject({ status: 'replanning', revision: 1 });
  });

  test('unknown ids are 404 plan_not_found / session_not_found / approval_not_found', async () => {
    const plan = await draftPlan(c);
    const nope = randomUUID();
    await changesNothing(async () => {
      for (const path of [`/plans/${nope}`, `/plans/${nope}/status`]) {
        const p = expectProblem(await c.get(path), 404, 'plan_not_found');
        expect(p.plan_id).toBe(nope);
      }
      expectProblem(await decide(c, nope, randomUUID(), 'approve'), 404, 'plan_not_found');
      expectProblem(await c.post(`/plans/${nope}/cancel`), 404, 'plan_not_found');
      expectProblem(await c.post(`/plans/${nope}/revisions`, { subtasks: [{ description: 'a' }] }), 404, 'plan_not_found');
      for (const path of [`/sessions/${nope}`, `/sessions/${nope}/history`, `/sessions/${nope}/events`, `/sessions/${nope}/pending-approvals`]) {
        const p = expectProblem(await c.get(path), 404, 'session_not_found');
        expect(p.session_id).toBe(nope);
      }
      expectProblem(await c.post(`/sessions/${nope}/messages`, { content: 'hello' }), 404, 'session_not_found');
      expectProblem(await c.post(`/sessions/${nope}/plan-decision`, { approval_request_id: plan.approval_request_id, decision: 'approve' }), 404, 'session_not_found');
      for (const action of ['suspend', 'resume', 'complete']) expectProblem(await c.post(`/sessions/${nope}/${action}`), 404, 'session_not_found');
      expectProblem(await c.send('PATCH', `/sessions/${nope}`, { title: 'renamed' }), 404, 'session_not_found');
      expectProblem(await c.send('DELETE', `/sessions/${nope}`), 404, 'session_not_found');
      // A plan for a session that does not exist creates neither.
      expectProblem(await c.post('/plans', { session_id: nope, goal: 'orphan', subtasks: [{ description: 'a' }] }), 404, 'session_not_found');
      expectProblem(await decide(c, plan.plan_id, randomUUID(), 'approve'), 404, 'approval_not_found');
    });
    expect((await read(c, `/plans/${plan.plan_id}`, plan.position)).body.status).toBe('awaiting_approval');
  });

  test('a session id that exists already is 409; an unknown route is 404 route_not_found', async () => {
    const id = `fixed-${randomUUID()}`;
    expect((await c.post('/sessions', { session_id: id })).status).toBe(201);
    await changesNothing(async () => {
      expectProblem(await c.post('/sessions', { session_id: id }), 409, 'session_exists');
      expectProblem(await c.get('/nothing-here'), 404, 'route_not_found');
      expectProblem(await c.post('/plans/x/approve', {}), 404, 'route_not_found');
      expectProblem(await c.send('PUT', `/sessions/${id}`), 404, 'route_not_found');
      const outside = await fetch(`${server.url}/api/v2/plans`);
      expect(outside.status).toBe(404);
      expect(outside.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await outside.json()).toMatchObject({ code: 'route_not_found', status: 404 });
    });
  });

  test('wait_for beyond the end of the log is 400 position_ahead_of_log; a bad wait_for is 400', async () => {
    const plan = await draftPlan(c);
    const head = await logHead(c);
    const ahead = expectProblem(await c.get(`/plans/${plan.plan_id}?wait_for=${head + 1_000}`), 400, 'position_ahead_of_log');
    expect(ahead.log_head).toBe(head);
    expectProblem(await c.get(`/sessions?wait_for=${head + 1}`), 400, 'position_ahead_of_log');
    expectProblem(await c.get(`/plans/${plan.plan_id}?wait_for=soon`), 400, 'validation_failed');
    expectProblem(await c.get(`/plans/${plan.plan_id}?wait_for=-1`), 400, 'validation_failed');
    // The head itself is fine.
    expect((await c.get(`/plans/${plan.plan_id}?wait_for=${head}`)).status).toBe(200);
  });

  test('a decision that is not approve, reject or modify names the field', async () => {
    const plan = await draftPlan(c);
    await changesNothing(async () => {
      const p = expectProblem(await decide(c, plan.plan_id, plan.approval_request_id, 'maybe'), 400, 'validation_failed');
      expect(p.detail).toContain('decision');
      const missing = expectProblem(await c.post(`/plans/${plan.plan_id}/decision`, { decision: 'approve' }), 400, 'validation_failed');
      expect(missing.detail).toContain('approval_request_id');
    });
    expect((await streamEvents(c, `plan-${plan.plan_id}`)).map((e) => e.type)).toEqual(['PlanDrafted', 'PlanApprovalRequested']);
  });
});

describe('MAX_BODY_BYTES', () => {
  let server: TestServer;
  let c: Client;
  beforeAll(async () => {
    server = await startServer({ MAX_BODY_BYTES: '600' });
    c = client(server.api);
  });
  afterAll(() => server.dispose());

  test('a body over the limit is 413 and changes nothing; one under it is accepted', async () => {
    const head = await logHead(c);
    const big = { goal: 'big', subtasks: [{ description: 'x'.repeat(700) }] };
    const refused = expectProblem(await c.post('/plans', big), 413, 'payload_too_large');
    expect(refused.max_bytes).toBe(600);
    expect(await logHead(c)).toBe(head);

    // Without a Content-Length (chunked): the limit still holds while the body streams in.
    const chunks = [JSON.stringify(big).slice(0, 300), JSON.stringify(big).slice(300)];
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
        controller.close();
      },
    });
    const chunked = await fetch(`${server.api}/plans`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(chunked.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await logHead(c)).toBe(head);
    expect((await read(c, '/sessions', head)).body.sessions).toEqual([]);

    const small = await c.post('/plans', { goal: 'small', subtasks: [{ description: 'fits' }] });
    expect(small.status, small.text).toBe(201);
  });
});

describe('AUTH_SECRET (HS256 bearer tokens)', () => {
  const secret = `hs256-key-${randomUUID()}`;
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ HOST: '127.0.0.1', AUTH_SECRET: secret });
  });
  afterAll(() => server.dispose());

  test('requests without a valid token are 401 problem+json; health and ready stay open; with one they pass', async () => {
    const token = hs256(secret, validClaims('alice'));
    const anonymous = client(server.api);
    const forged = client(server.api, { headers: { authorization: `Bearer ${hs256(`${secret}x`, validClaims('alice'))}` } });
    const authed = client(server.api, { headers: { authorization: `Bearer ${token}` } });

    for (const reply of [
      await anonymous.post('/sessions', { name: 'x' }),
      await anonymous.get('/sessions'),
      await anonymous.get('/metrics'),
      await anonymous.get(`/streams/session-${randomUUID()}`),
      await anonymous.post('/sessions', { name: 'x' }, { headers: { authorization: token } }),
      await anonymous.post('/sessions', { name: 'x' }, { headers: { authorization: `Basic ${Buffer.from(`u:${secret}`).toString('base64')}` } }),
    ]) {
      expectProblem(reply, 401, 'unauthorized');
      expect(reply.headers.get('www-authenticate')).toBe('Bearer realm="planline"');
    }
    for (const reply of [
      await forged.post('/sessions', { name: 'x' }),
      // AUTH_SECRET is the key tokens are signed with, no longer a token to send.
      await anonymous.post('/sessions', { name: 'x' }, { headers: { authorization: `Bearer ${secret}` } }),
    ]) {
      expect(reply.status).toBe(401);
      expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer realm="planline", error="invalid_token"/);
    }
    expect((await anonymous.get('/health')).status).toBe(200);
    expect((await eventuallyReady(anonymous)).status).toBe(200);

    const created = await authed.post('/sessions', { name: 'with a token' });
    expect(created.status, created.text).toBe(201);
    const view = await authed.get(`/sessions/${created.body.session_id}?wait_for=${created.body.position}`);
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ name: 'with a token', owner: 'alice', shares: [] });
    const metrics = await authed.get('/metrics');
    expect(metrics.status).toBe(200);
    // Refused requests are counted under the route they were for, not under the auth middleware.
    expect(metrics.text).toMatch(/^planline_http_requests_total\{method="POST",route="\/api\/v1\/sessions",status="401"\} 5$/m);
    // Nothing the refused requests sent was applied.
    expect((await authed.get(`/sessions?wait_for=${created.body.position}`)).body.sessions.map((s: any) => s.session_id)).toEqual([created.body.session_id]);
  });
});

async function eventuallyReady(c: Client) {
  for (let i = 0; i < 100; i++) {
    const reply = await c.get('/ready');
    if (reply.status === 200) return reply;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return c.get('/ready');
}

describe('estimates as people write them', () => {
  let server: TestServer;
  let c: Client;
  beforeAll(async () => {
    server = await startServer();
    c = client(server.api);
  });
  afterAll(async () => {
    await server.dispose();
  });

  test('POST /plans takes seconds or written durations; every read shows the seed\'s strings with the seconds beside them', async () => {
    const created = await c.post('/plans', {
      goal: 'Estimates',
      subtasks: [
        { id: 'a', description: 'five minutes', estimated_time: '5 min' },
        { id: 'b', description: 'ninety seconds', estimated_time: '90s' },
        { id: 'c', description: 'an hour and a half', estimated_time: '1h 30m' },
        { id: 'd', description: 'two hours', estimated_time: '2 hours' },
        { id: 'e', description: 'one and a half hours', estimated_time: '1.5 h' },
        { id: 'f', description: 'ten minutes in seconds', estimated_time: 600 },
      ],
    });
    expect(created.status, created.text).toBe(201);
    const plan = await read(c, `/plans/${created.body.plan_id}`, created.body.position);
    expect(plan.body.subtasks.map((s: any) => [s.id, s.estimated_time, s.estimated_seconds])).toEqual([
      ['a', '5 min', 300],
      ['b', '1 min 30 s', 90],
      ['c', '1 h 30 min', 5400],
      ['d', '2 h', 7200],
      ['e', '1 h 30 min', 5400],
      ['f', '10 min', 600],
    ]);
    expect(plan.body.total_estimated_time).toBe('5 h 16 min 30 s');
    expect(plan.body.total_estimated_seconds).toBe(300 + 90 + 5400 + 7200 + 5400 + 600);
    const pending = await read(c, `/sessions/${created.body.session_id}/pending-approvals`, created.body.position);
    const summary = pending.body.pending_approvals[0].details.plan_summary;
    expect(typeof summary.total_estimated_time).toBe('string');
    expect(summary.subtasks.every((s: any) => typeof s.estimated_time === 'string' && typeof s.estimated_seconds === 'number')).toBe(true);
  });
});

