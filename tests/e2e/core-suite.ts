// The core HTTP behaviours, run against a real server over fetch. One parameterised suite: http.test.ts
// runs it with embedded read models (memory), http-redis.test.ts with Redis read models. Each describe
// starts its own server (its own SQLite log in a temp dir, its own Redis key prefix).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { client, startServer, type Client, type TestServer } from '../support/server.js';
import { decide, DECISION_EVENTS, draftPlan, eventually, expectProblem, logHead, read, streamEvents, threeSubtasks } from './api.js';

export interface Mode {
  label: string;
  env: Record<string, string | undefined>;
}

/** One server for the describe it is called in; fails the describe if the server logged an error. */
function useServer(mode: Mode, env: Record<string, string> = {}) {
  const ctx = {} as { server: TestServer; c: Client };
  beforeAll(async () => {
    ctx.server = await startServer({ ...mode.env, ...env });
    ctx.c = client(ctx.server.api);
  });
  afterAll(async () => {
    await ctx.server?.dispose();
    // A 500 is logged at error level: no test here expects one.
    expect(ctx.server?.logs.filter((line) => line.level === 'error') ?? []).toEqual([]);
  });
  return ctx;
}

export function coreSuite(mode: Mode) {
  describe(`${mode.label}: the plan approval happy path`, () => {
    const ctx = useServer(mode);

    test('create a session and a plan, review it, approve it; every read model agrees', async () => {
      const { c } = ctx;
      const session = await c.post('/sessions', { name: 'happy path', mode: 'plan' });
      expect(session.status, session.text).toBe(201);
      expect(session.body).toMatchObject({ created: true });
      const sessionId: string = session.body.session_id;
      expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
      expect(session.body.position).toBeGreaterThan(0);

      const before = Date.now();
      const created = await c.post('/plans', { session_id: sessionId, goal: 'Write a parser', subtasks: threeSubtasks() });
      expect(created.status, created.text).toBe(201);
      const plan = created.body;
      expect(plan).toMatchObject({ session_id: sessionId, status: 'awaiting_approval', fsm_state: 'plan_review', revision: 1, superseded_plan_id: null });
      expect(plan.plan_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(plan.approval_request_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(plan.approval).toMatchObject({ approval_request_id: plan.approval_request_id, status: 'pending' });
      expect(plan.position).toBeGreaterThan(session.body.position);

      // The plan as the IDE sees it: dependencies by index and by id resolved to ids.
      const view = await read(c, `/plans/${plan.plan_id}`, plan.position);
      expect(view.body).toMatchObject({
        plan_id: plan.plan_id,
        session_id: sessionId,
        goal: 'Write a parser',
        status: 'awaiting_approval',
        fsm_state: 'plan_review',
        revision: 1,
        source: 'client',
        subtasks_count: 3,
        total_estimated_time: '1 min 45 s',
        total_estimated_seconds: 105,
        progress: { total: 3, done: 0, failed: 0, running: 0, pending: 3, percentage: 0 },
        approval: { approval_request_id: plan.approval_request_id, status: 'pending' },
      });
      expect(view.body.subtasks.map((s: any) => [s.id, s.agent, s.dependencies, s.status])).toEqual([
        ['design', 'architect', [], 'pending'],
        ['st-2', 'coder', ['design'], 'pending'],
        ['verify', 'debug', ['design', 'st-2'], 'pending'],
      ]);
      // The default deadline is PLAN_APPROVAL_TIMEOUT_S (300 s) after the draft.
      const deadline = Date.parse(view.body.approval.deadline);
      expect(deadline).toBeGreaterThanOrEqual(before + 299_000);
      expect(deadline).toBeLessThanOrEqual(Date.now() + 301_000);

      // ETag = revision of the plan stream's last event.
      const events = await streamEvents(c, `plan-${plan.plan_id}`);
      expect(events.map((e) => e.type)).toEqual(['PlanDrafted', 'PlanApprovalRequested']);
      expect(view.headers.get('etag')).toBe(`"${events.at(-1)!.revision}"`);
      expect((await c.get(`/plans/${plan.plan_id}/status`)).headers.get('etag')).toBe(`"${events.at(-1)!.revision}"`);

      const sessionView = await read(c, `/sessions/${sessionId}`, plan.position);
      expect(sessionView.body).toMatchObject({
        session_id: sessionId,
        name: 'happy path',
        mode: 'plan',
        status: 'active',
        fsm_state: 'plan_review',
        current_plan_id: plan.plan_id,
        message_count: 0,
      });
      const sessionEvents = await streamEvents(c, `session-${sessionId}`);
      expect(sessionView.headers.get('etag')).toBe(`"${sessionEvents.at(-1)!.revision}"`);

      // What the IDE calls on connect: its existing shape.
      const pending = await read(c, `/sessions/${sessionId}/pending-approvals`, plan.position);
      expect(pending.body.session_id).toBe(sessionId);
      expect(pending.body.count).toBe(1);
      expect(pending.body.pending_approvals).toHaveLength(1);
      const request = pending.body.pending_approvals[0];
      expect(request).toMatchObject({
        request_id: plan.approval_request_id,
        call_id: plan.approval_request_id,
        request_type: 'plan',
        deadline: view.body.approval.deadline,
        details: {
          plan_id: plan.plan_id,
          plan_summary: {
            plan_id: plan.plan_id,
            goal: 'Write a parser',
            status: 'awaiting_approval',
            revision: 1,
            subtasks_count: 3,
            total_estimated_time: '1 min 45 s',
            total_estimated_seconds: 105,
          },
        },
      });
      expect(request.details.plan_summary.subtasks.map((s: any) => [s.id, s.estimated_time, s.estimated_seconds])).toEqual([
        ['design', '30 s', 30],
        ['st-2', '1 min', 60],
        ['verify', '15 s', 15],
      ]);
      expect(typeof request.subject).toBe('string');
      expect(typeof request.reason).toBe('string');
      expect(Number.isNaN(Date.parse(request.created_at))).toBe(false);

      // Approve.
      const approved = await decide(c, plan.plan_id, plan.approval_request_id, 'approve');
      expect(approved.status, approved.text).toBe(200);
      expect(approved.body).toMatchObject({ plan_id: plan.plan_id, decision: 'approve', changed: true, status: 'approved', fsm_state: 'plan_execution' });
      expect(approved.body.approval).toMatchObject({ status: 'approved', decision: 'approve' });

      const after = await read(c, `/plans/${plan.plan_id}`, approved.body.position);
      expect(after.body).toMatchObject({
        status: 'approved',
        fsm_state: 'plan_execution',
        approval: { approval_request_id: plan.approval_request_id, status: 'approved', decision: 'approve', decided_by: 'user' },
      });
      expect(after.headers.get('etag')).toBe('"2"');
      expect((await read(c, `/sessions/${sessionId}`, approved.body.position)).body.fsm_state).toBe('plan_execution');
      expect((await read(c, `/sessions/${sessionId}/pending-approvals`, approved.body.position)).body).toEqual({
        session_id: sessionId,
        pending_approvals: [],
        count: 0,
      });
      const status = await read(c, `/plans/${plan.plan_id}/status`, approved.body.position);
      expect(status.body).toMatchObject({ plan_id: plan.plan_id, status: 'approved', fsm_state: 'plan_execution', approval_status: 'approved' });
    });

    test('GET /approvals filters by session and by status', async () => {
      const { c } = ctx;
      const a = await draftPlan(c);
      const b = await draftPlan(c);
      const approved = await decide(c, a.plan_id, a.approval_request_id, 'approve');
      expect(approved.status).toBe(200);
      const position = approved.body.position;

      const ofA = await read(c, `/approvals?session_id=${a.session_id}`, position);
      expect(ofA.body.approvals.map((x: any) => [x.approval_request_id, x.status])).toEqual([[a.approval_request_id, 'approved']]);
      expect(ofA.body.approvals[0]).toMatchObject({ plan_id: a.plan_id, session_id: a.session_id, decision: 'approve', decided_by: 'user', request_type: 'plan' });

      expect((await read(c, `/approvals?session_id=${a.session_id}&status=pending`, position)).body.approvals).toEqual([]);
      expect((await read(c, `/approvals?session_id=${b.session_id}&status=pending`, position)).body.approvals.map((x: any) => x.approval_request_id)).toEqual([
        b.approval_request_id,
      ]);

      const pending = (await read(c, '/approvals?status=pending', position)).body.approvals.map((x: any) => x.approval_request_id);
      expect(pending).toContain(b.approval_request_id);
      expect(pending).not.toContain(a.approval_request_id);
      const decided = (await read(c, '/approvals?status=approved', position)).body.approvals.map((x: any) => x.approval_request_id);
      expect(decided).toContain(a.approval_request_id);
      expect(decided).not.toContain(b.approval_request_id);

      expectProblem(await c.get('/approvals?status=maybe'), 400, 'validation_failed');
    });
  });

  describe(`${mode.label}: the seed's approval rules, over HTTP`, () => {
    const ctx = useServer(mode);

    test('the same decision twice is a 200 no-op; a different one is 409 already_decided with the approval', async () => {
      const { c } = ctx;
      const plan = await draftPlan(c);
      const first = await decide(c, plan.plan_id, plan.approval_request_id, 'approve');
      expect(first.status).toBe(200);
      expect(first.body.changed).toBe(true);
      const head = await logHead(c);

      const again = await decide(c, plan.plan_id, plan.approval_request_id, 'approve');
      expect(again.status, again.text).toBe(200);
      expect(again.body).toMatchObject({ changed: false, status: 'approved', fsm_state: 'plan_execution', approval: { status: 'approved', decision: 'approve' } });

      const other = expectProblem(await decide(c, plan.plan_id, plan.approval_request_id, 'reject', { feedback: 'no' }), 409, 'already_decided');
      expect(other.approval).toMatchObject({ approval_request_id: plan.approval_request_id, status: 'approved', decision: 'approve' });
      expect(other.plan_status).toBe('approved');

      expect(await logHead(c)).toBe(head);
      const events = await streamEvents(c, `plan-${plan.plan_id}`);
      expect(events.filter((e) => DECISION_EVENTS.includes(e.type)).map((e) => e.type)).toEqual(['PlanApproved']);
    });

    test('modify needs feedback (400, nothing changes); with feedback it re-plans, and revision 2 needs approval again', async () => {
      const { c } = ctx;
      const plan = await draftPlan(c);
      const head = await logHead(c);
      const missing = expectProblem(await decide(c, plan.plan_id, plan.approval_request_id, 'modify'), 400, 'validation_failed');
      expect(missing.detail).toMatch(/feedback/);
      expectProblem(await decide(c, plan.plan_id, plan.approval_request_id, 'modify', { feedback: '   ' }), 400, 'validation_failed');
      expect(await logHead(c)).toBe(head);
      expect((await read(c, `/plans/${plan.plan_id}`, head)).body.status).toBe('awaiting_approval');

      const modified = await decide(c, plan.plan_id, plan.approval_request_id, 'modify', { feedback: 'split the parser into lexer and parser' });
      expect(modified.status, modified.text).toBe(200);
      expect(modified.body).toMatchObject({ changed: true, status: 'replanning', fsm_state: 'architect_planning' });
      const replanning = await read(c, `/plans/${plan.plan_id}`, modified.body.position);
      expect(replanning.body).toMatchObject({
        status: 'replanning',
        fsm_state: 'architect_planning',
        approval: { status: 'modification_requested', decision: 'modify', feedback: 'split the parser into lexer and parser' },
      });
      expect((await read(c, `/sessions/${plan.session_id}`, modified.body.position)).body.fsm_state).toBe('architect_planning');
      expect((await read(c, `/sessions/${plan.session_id}/pending-approvals`, modified.body.position)).body.count).toBe(0);

      const revised = await c.post(`/plans/${plan.plan_id}/revisions`, {
        subtasks: [{ id: 'lex', description: 'Write the lexer' }, { id: 'parse', description: 'Write the parser', dependencies: ['lex'] }],
        feedback: 'split the parser into lexer and parser',
      });
      expect(revised.status, revised.text).toBe(201);
      expect(revised.body).toMatchObject({ plan_id: plan.plan_id, revision: 2, status: 'awaiting_approval', fsm_state: 'plan_review' });
      const secondRequest: string = revised.body.approval_request_id;
      expect(secondRequest).not.toBe(plan.approval_request_id);

      const rev2 = await read(c, `/plans/${plan.plan_id}`, revised.body.position);
      expect(rev2.body).toMatchObject({ revision: 2, status: 'awaiting_approval', fsm_state: 'plan_review', subtasks_count: 2, approval: { approval_request_id: secondRequest, status: 'pending' } });
      expect(rev2.body.subtasks.map((s: any) => [s.id, s.dependencies])).toEqual([
        ['lex', []],
        ['parse', ['lex']],
      ]);
      const pending = await read(c, `/sessions/${plan.session_id}/pending-approvals`, revised.body.position);
      expect(pending.body.count).toBe(1);
      expect(pending.body.pending_approvals[0]).toMatchObject({ request_id: secondRequest, details: { plan_id: plan.plan_id, plan_summary: { revision: 2, subtasks_count: 2 } } });
      expect((await read(c, `/sessions/${plan.session_id}`, revised.body.position)).body.fsm_state).toBe('plan_review');

      // The first request stays decided: approving it now is a conflict, not an approval of revision 2.
      expectProblem(await decide(c, plan.plan_id, plan.approval_request_id, 'approve'), 409, 'already_decided');
      const approved = await decide(c, plan.plan_id, secondRequest, 'approve');
      expect(approved.status, approved.text).toBe(200);
      expect(approved.body).toMatchObject({ changed: true, status: 'approved', revision: 2 });
      const final = await read(c, `/plans/${plan.plan_id}`, approved.body.position);
      expect(final.body).toMatchObject({ status: 'approved', revision: 2, approval: { approval_request_id: secondRequest, status: 'approved' } });
      const approvals = await read(c, `/approvals?session_id=${plan.session_id}`, approved.body.position);
      expect(approvals.body.approvals.map((a: any) => [a.approval_request_id, a.status])).toEqual([
        [secondRequest, 'approved'],
        [plan.approval_request_id, 'modification_requested'],
      ]);
    });

    test('a revision is refused unless the plan is re-planning', async () => {
      const { c } = ctx;
      const plan = await draftPlan(c);
      const refused = expectProblem(await c.post(`/plans/${plan.plan_id}/revisions`, { subtasks: [{ description: 'x' }] }), 409, 'illegal_transition');
      expect(refused.fsm_state).toBe('plan_review');
    });

    test('a user message during review supersedes the plan and closes its approval', async () => {
      const { c } = ctx;
      const plan = await draftPlan(c);
      const message = await c.post(`/sessions/${plan.session_id}/messages`, { content: 'actually, do something else', role: 'user' });
      expect(message.status, message.text).toBe(201);
      expect(message.body).toMatchObject({ session_id: plan.session_id, superseded_plan_id: plan.plan_id });
      const position = message.body.position;

      const superseded = await read(c, `/plans/${plan.plan_id}`, position);
      expect(superseded.body).toMatchObject({ status: 'superseded', fsm_state: 'idle', approval: { status: 'closed' } });
      expect((await read(c, `/sessions/${plan.session_id}/pending-approvals`, position)).body).toMatchObject({ pending_approvals: [], count: 0 });
      const approvals = await read(c, `/approvals?session_id=${plan.session_id}`, position);
      expect(approvals.body.approvals.map((a: any) => a.status)).toEqual(['closed']);
      const session = await read(c, `/sessions/${plan.session_id}`, position);
      expect(session.body).toMatchObject({ message_count: 1, fsm_state: 'classify' });

      // The closed request accepts no decision.
      expectProblem(await decide(c, plan.plan_id, plan.approval_request_id, 'approve'), 409, 'approval_closed');
    });

    test('a new plan for the session supersedes the one under review', async () => {
      const { c } = ctx;
      const first = await draftPlan(c);
      const second = await draftPlan(c, { session_id: first.session_id });
      expect(second.superseded_plan_id).toBe(first.plan_id);
      expect((await read(c, `/plans/${first.plan_id}`, second.position)).body).toMatchObject({ status: 'superseded', approval: { status: 'closed' } });
      const pending = await read(c, `/sessions/${first.session_id}/pending-approvals`, second.position);
      expect(pending.body.pending_approvals.map((a: any) => a.request_id)).toEqual([second.approval_request_id]);
      expect((await read(c, `/sessions/${first.session_id}`, second.position)).body.current_plan_id).toBe(second.plan_id);
    });

    test('POST /sessions/:id/plan-decision decides the current plan, with fields top-level or nested in metadata', async () => {
      const { c } = ctx;
      const a = await draftPlan(c);
      const approved = await c.post(`/sessions/${a.session_id}/plan-decision`, { approval_request_id: a.approval_request_id, decision: 'approve' });
      expect(approved.status, approved.text).toBe(200);
      expect(approved.body).toMatchObject({ plan_id: a.plan_id, decision: 'approve', changed: true, status: 'approved' });
      expect((await read(c, `/plans/${a.plan_id}`, approved.body.position)).body.status).toBe('approved');

      // A known IDE build nests the fields in `metadata`.
      const b = await draftPlan(c);
      const rejected = await c.post(`/sessions/${b.session_id}/plan-decision`, {
        type: 'plan_decision',
        metadata: { approval_request_id: b.approval_request_id, decision: 'reject', feedback: 'too risky' },
      });
      expect(rejected.status, rejected.text).toBe(200);
      expect(rejected.body).toMatchObject({ plan_id: b.plan_id, decision: 'reject', changed: true, status: 'rejected', fsm_state: 'idle' });
      const view = await read(c, `/plans/${b.plan_id}`, rejected.body.position);
      expect(view.body).toMatchObject({ status: 'rejected', approval: { status: 'rejected', decision: 'reject', feedback: 'too risky' } });
      expect((await read(c, `/sessions/${b.session_id}`, rejected.body.position)).body.fsm_state).toBe('idle');

      // Modify through the alias, nested, with its feedback nested too.
      const m = await draftPlan(c);
      const modified = await c.post(`/sessions/${m.session_id}/plan-decision`, { metadata: { approval_request_id: m.approval_request_id, decision: 'modify', feedback: 'smaller steps' } });
      expect(modified.status, modified.text).toBe(200);
      expect(modified.body).toMatchObject({ status: 'replanning', fsm_state: 'architect_planning' });

      // An approval that is not the session's is not found; a missing decision names the field.
      expectProblem(await c.post(`/sessions/${a.session_id}/plan-decision`, { approval_request_id: b.approval_request_id, decision: 'approve' }), 404, 'approval_not_found');
      const invalid = expectProblem(await c.post(`/sessions/${a.session_id}/plan-decision`, { metadata: { approval_request_id: a.approval_request_id } }), 400, 'validation_failed');
      expect(invalid.detail).toMatch(/decision/);
    });

    test('cancel from review and from approved; cancelling twice changes nothing', async () => {
      const { c } = ctx;
      const review = await draftPlan(c);
      const cancelled = await c.post(`/plans/${review.plan_id}/cancel`, { reason: 'not needed' });
      expect(cancelled.status, cancelled.text).toBe(200);
      expect(cancelled.body).toMatchObject({ plan_id: review.plan_id, changed: true, status: 'cancelled', fsm_state: 'completed' });
      const view = await read(c, `/plans/${review.plan_id}`, cancelled.body.position);
      expect(view.body).toMatchObject({ status: 'cancelled', reason: 'not needed', approval: { status: 'closed' } });
      expect((await read(c, `/sessions/${review.session_id}/pending-approvals`, cancelled.body.position)).body.count).toBe(0);
      expect((await read(c, `/approvals?session_id=${review.session_id}`, cancelled.body.position)).body.approvals[0].status).toBe('closed');

      const head = await logHead(c);
      const twice = await c.post(`/plans/${review.plan_id}/cancel`, {});
      expect(twice.status, twice.text).toBe(200);
      expect(twice.body).toMatchObject({ changed: false, status: 'cancelled' });
      expect(await logHead(c)).toBe(head);
      // A decision on a cancelled plan's request is refused.
      expectProblem(await decide(c, review.plan_id, review.approval_request_id, 'approve'), 409, 'approval_closed');

      const approvedPlan = await draftPlan(c);
      expect((await decide(c, approvedPlan.plan_id, approvedPlan.approval_request_id, 'approve')).status).toBe(200);
      const stop = await c.post(`/plans/${approvedPlan.plan_id}/cancel`);
      expect(stop.status, stop.text).toBe(200);
      expect(stop.body).toMatchObject({ changed: true, status: 'cancelled' });
      const stopped = await read(c, `/plans/${approvedPlan.plan_id}`, stop.body.position);
      expect(stopped.body).toMatchObject({ status: 'cancelled', approval: { status: 'approved' } });
      expect((await read(c, `/sessions/${approvedPlan.session_id}`, stop.body.position)).body.fsm_state).toBe('completed');

      // A rejected plan is terminal: cancel is refused, naming the state.
      const rejected = await draftPlan(c);
      expect((await decide(c, rejected.plan_id, rejected.approval_request_id, 'reject')).status).toBe(200);
      expectProblem(await c.post(`/plans/${rejected.plan_id}/cancel`), 409, 'illegal_transition');
    });

    test('a message while the plan is approved follows the multitask strategy: queued by default, 409 session_busy with reject', async () => {
      const { c } = ctx;
      const plan = await draftPlan(c);
      expect((await decide(c, plan.plan_id, plan.approval_request_id, 'approve')).status).toBe(200);
      const head = await logHead(c);
      const refused = expectProblem(await c.post(`/sessions/${plan.session_id}/messages`, { content: 'change of plan', strategy: 'reject' }), 409, 'session_busy');
      expect(refused.fsm_state).toBe('plan_execution');
      expect(refused.detail).toMatch(/plan_execution/);
      expect(refused.current_plan_id).toBe(plan.plan_id);
      expect(await logHead(c)).toBe(head);
      // Without a strategy the message waits for the plan (MULTITASK_STRATEGY defaults to enqueue).
      const queued = await c.post(`/sessions/${plan.session_id}/messages`, { content: 'and then this' });
      expect(queued.status).toBe(201);
      const events = await streamEvents(c, `session-${plan.session_id}`);
      expect(events.at(-1)).toMatchObject({ type: 'UserMessageReceived', data: { content: 'and then this', queued: true } });
      expect((await read(c, `/plans/${plan.plan_id}`, queued.body.position)).body.status).toBe('approved');
      expect((await read(c, `/sessions/${plan.session_id}`, queued.body.position)).body.fsm_state).toBe('plan_execution');
    });

    test('suspend, resume and complete a session; completing cancels the plan under review', async () => {
      const { c } = ctx;
      const plan = await draftPlan(c);
      const suspended = await c.post(`/sessions/${plan.session_id}/suspend`, { reason: 'lunch' });
      expect(suspended.status, suspended.text).toBe(200);
      expect(suspended.body).toMatchObject({ status: 'suspended', changed: true });
      expect((await c.post(`/sessions/${plan.session_id}/suspend`)).body.changed).toBe(false);
      expect((await read(c, `/sessions/${plan.session_id}`, suspended.body.position)).body.status).toBe('suspended');
      const resumed = await c.post(`/sessions/${plan.session_id}/resume`);
      expect(resumed.body).toMatchObject({ status: 'active', changed: true, fsm_state: 'plan_review' });
      const completed = await c.post(`/sessions/${plan.session_id}/complete`, { reason: 'done' });
      expect(completed.status, completed.text).toBe(200);
      expect(completed.body).toMatchObject({ status: 'completed', fsm_state: 'completed', changed: true });
      const view = await read(c, `/plans/${plan.plan_id}`, completed.body.position);
      expect(view.body).toMatchObject({ status: 'cancelled', approval: { status: 'closed' } });
      expect((await read(c, `/sessions/${plan.session_id}/pending-approvals`, completed.body.position)).body.count).toBe(0);
    });
  });

  describe(`${mode.label}: Idempotency-Key, concurrency and If-Match`, () => {
    const ctx = useServer(mode);

    async function sessionCount(c: Client, position: number): Promise<string[]> {
      const ids: string[] = [];
      let cursor: string | null = null;
      do {
        const page: any = (await read(c, `/sessions?limit=500${cursor ? `&cursor=${cursor}` : ''}`, position)).body;
        ids.push(...page.sessions.map((s: any) => s.session_id));
        cursor = page.next_cursor;
      } while (cursor);
      return ids;
    }

    test('the same POST /plans twice with one key: same plan, 200 the second time, events written once', async () => {
      const { c } = ctx;
      const sessionsBefore = await sessionCount(c, await logHead(c));
      const key = `create-${randomUUID()}`;
      const body = { goal: 'Idempotent plan', subtasks: threeSubtasks() };
      const first = await c.post('/plans', body, { headers: { 'Idempotency-Key': key } });
      expect(first.status, first.text).toBe(201);
      const head = await logHead(c);
      const second = await c.post('/plans', body, { headers: { 'Idempotency-Key': key } });
      expect(second.status, second.text).toBe(200);
      expect(second.body).toMatchObject({ plan_id: first.body.plan_id, session_id: first.body.session_id, approval_request_id: first.body.approval_request_id, status: 'awaiting_approval' });
      expect(second.body.position).toBe(first.body.position);
      expect(await logHead(c)).toBe(head);

      const sessions = await sessionCount(c, head);
      expect(sessions.length).toBe(sessionsBefore.length + 1);
      expect(sessions.filter((id) => id === first.body.session_id)).toHaveLength(1);
      expect((await streamEvents(c, `plan-${first.body.plan_id}`)).map((e) => e.type)).toEqual(['PlanDrafted', 'PlanApprovalRequested']);
      expect((await streamEvents(c, `session-${first.body.session_id}`)).map((e) => e.type)).toEqual(['SessionStarted', 'TaskClassified']);
      expect((await read(c, `/sessions/${first.body.session_id}/pending-approvals`, head)).body.count).toBe(1);
    });

    test('a key reused for a different request is refused with 422 and changes nothing', async () => {
      const { c } = ctx;
      const key = `reuse-${randomUUID()}`;
      const first = await c.post('/plans', { goal: 'First', subtasks: threeSubtasks() }, { headers: { 'Idempotency-Key': key } });
      expect(first.status, first.text).toBe(201);
      const head = await logHead(c);
      const reused = await c.post('/plans', { goal: 'Something else', subtasks: threeSubtasks() }, { headers: { 'Idempotency-Key': key } });
      expectProblem(reused, 422, 'idempotency_key_reused');
      expect(await logHead(c)).toBe(head);
      // The original request, retried as sent, is still recognised.
      const retried = await c.post('/plans', { goal: 'First', subtasks: threeSubtasks() }, { headers: { 'Idempotency-Key': key } });
      expect(retried.status).toBe(200);
      expect(retried.body.plan_id).toBe(first.body.plan_id);
    });

    test('a retried decision with its key answers as before and appends nothing', async () => {
      const { c } = ctx;
      const plan = await draftPlan(c);
      const key = `decide-${randomUUID()}`;
      const first = await decide(c, plan.plan_id, plan.approval_request_id, 'approve', {}, { 'Idempotency-Key': key });
      expect(first.body.changed).toBe(true);
      const again = await decide(c, plan.plan_id, plan.approval_request_id, 'approve', {}, { 'Idempotency-Key': key });
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ changed: false, status: 'approved', position: first.body.position });
      const session = await c.post('/sessions', { name: 'keyed' }, { headers: { 'Idempotency-Key': key } });
      expect(session.status).toBe(201);
      const sessionAgain = await c.post('/sessions', { name: 'keyed' }, { headers: { 'Idempotency-Key': key } });
      expect(sessionAgain.status).toBe(200);
      expect(sessionAgain.body).toMatchObject({ session_id: session.body.session_id, created: false });
    });

    test('a retried message or revision with its key is 200 with the same ids and appends nothing', async () => {
      const { c } = ctx;
      const plan = await draftPlan(c);
      const modified = await decide(c, plan.plan_id, plan.approval_request_id, 'modify', { feedback: 'shorter' });
      expect(modified.status).toBe(200);
      const revisionKey = `revise-${randomUUID()}`;
      const revision = { subtasks: [{ description: 'one step' }] };
      const revised = await c.post(`/plans/${plan.plan_id}/revisions`, revision, { headers: { 'Idempotency-Key': revisionKey } });
      expect(revised.status, revised.text).toBe(201);
      const head = await logHead(c);
      const revisedAgain = await c.post(`/plans/${plan.plan_id}/revisions`, revision, { headers: { 'Idempotency-Key': revisionKey } });
      expect(revisedAgain.status, revisedAgain.text).toBe(200);
      expect(revisedAgain.body).toMatchObject({ plan_id: plan.plan_id, approval_request_id: revised.body.approval_request_id, revision: 2, position: revised.body.position });
      expect(await logHead(c)).toBe(head);

      const messageKey = `message-${randomUUID()}`;
      // Unknown keys are ignored (the IDE protocol promises that).
      const message = { content: 'start over', role: 'user', metadata: { client: 'ide' }, extra: true };
      const sent = await c.post(`/sessions/${plan.session_id}/messages`, message, { headers: { 'Idempotency-Key': messageKey } });
      expect(sent.status, sent.text).toBe(201);
      expect(sent.body.superseded_plan_id).toBe(plan.plan_id);
      const afterMessage = await logHead(c);
      const sentAgain = await c.post(`/sessions/${plan.session_id}/messages`, message, { headers: { 'Idempotency-Key': messageKey } });
      expect(sentAgain.status, sentAgain.text).toBe(200);
      expect(sentAgain.body).toMatchObject({ message_id: sent.body.message_id, superseded_plan_id: plan.plan_id, position: sent.body.position });
      expect(await logHead(c)).toBe(afterMessage);
      const session = await read(c, `/sessions/${plan.session_id}`, afterMessage);
      expect(session.body.message_count).toBe(1);
    });

    test('a key reused for another command is another command: nothing is silently dropped', async () => {
      const { c } = ctx;
      const key = `reused-${randomUUID()}`;
      const plan = await draftPlan(c, {}, { 'Idempotency-Key': key });
      // The same key for a message to the plan's session: a new message, recorded, superseding the plan.
      const message = await c.post(`/sessions/${plan.session_id}/messages`, { content: 'something else' }, { headers: { 'Idempotency-Key': key } });
      expect(message.status, message.text).toBe(201);
      expect(message.body.superseded_plan_id).toBe(plan.plan_id);
      const session = await read(c, `/sessions/${plan.session_id}`, message.body.position);
      expect(session.body).toMatchObject({ message_count: 1, fsm_state: 'classify' });
      expect((await streamEvents(c, `session-${plan.session_id}`)).map((e) => e.type)).toEqual(['SessionStarted', 'TaskClassified', 'UserMessageReceived']);

      // The same key on the same route with a changed body is refused: it is not a retry.
      const other = await draftPlan(c);
      const decisionKey = `decision-${randomUUID()}`;
      expect((await decide(c, other.plan_id, other.approval_request_id, 'approve', {}, { 'Idempotency-Key': decisionKey })).body.changed).toBe(true);
      const changedBody = await decide(c, other.plan_id, other.approval_request_id, 'reject', {}, { 'Idempotency-Key': decisionKey });
      expectProblem(changedBody, 422, 'idempotency_key_reused');
      expect((await read(c, `/plans/${other.plan_id}`, changedBody.body.position ?? 0)).body.status).toBe('approved');
    });

    test('ten concurrent identical POST /plans with one key create one plan', async () => {
      const { c } = ctx;
      const sessionsBefore = await sessionCount(c, await logHead(c));
      const key = `burst-${randomUUID()}`;
      const body = { goal: 'Concurrent idempotent plan', subtasks: threeSubtasks() };
      const replies = await Promise.all(Array.from({ length: 10 }, () => c.post('/plans', body, { headers: { 'Idempotency-Key': key } })));
      const statuses = replies.map((r) => r.status).sort();
      expect(statuses, replies.map((r) => r.text).join('\n')).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
      expect(new Set(replies.map((r) => r.body.plan_id)).size).toBe(1);
      expect(new Set(replies.map((r) => r.body.session_id)).size).toBe(1);
      expect(new Set(replies.map((r) => r.body.approval_request_id)).size).toBe(1);
      const planId = replies[0]!.body.plan_id;
      const sessionId = replies[0]!.body.session_id;
      expect((await streamEvents(c, `plan-${planId}`)).map((e) => e.type)).toEqual(['PlanDrafted', 'PlanApprovalRequested']);
      expect((await streamEvents(c, `session-${sessionId}`)).map((e) => e.type)).toEqual(['SessionStarted', 'TaskClassified']);
      const sessions = await sessionCount(c, Math.max(...replies.map((r) => r.body.position)));
      expect(sessions.length).toBe(sessionsBefore.length + 1);
    });

    test('20 concurrent conflicting decisions: exactly one wins, the rest are 200-unchanged or 409', async () => {
      const { c } = ctx;
      const plan = await draftPlan(c);
      const decisions = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 'approve' : 'reject'));
      const replies = await Promise.all(decisions.map((d) => decide(c, plan.plan_id, plan.approval_request_id, d)));
      const winners = replies.filter((r) => r.status === 200 && r.body.changed === true);
      expect(winners, replies.map((r) => `${r.status} ${r.text}`).join('\n')).toHaveLength(1);
      const won: string = winners[0]!.body.decision;
      for (const [i, reply] of replies.entries()) {
        if (reply === winners[0]) continue;
        if (decisions[i] === won) {
          expect(reply.status, reply.text).toBe(200);
          expect(reply.body).toMatchObject({ changed: false, decision: won });
        } else {
          expectProblem(reply, 409, 'already_decided');
          expect(reply.body.approval.decision).toBe(won);
        }
      }
      const events = await streamEvents(c, `plan-${plan.plan_id}`);
      expect(events.filter((e) => DECISION_EVENTS.includes(e.type))).toHaveLength(1);
      const view = await read(c, `/plans/${plan.plan_id}`, winners[0]!.body.position);
      expect(view.body.approval.decision).toBe(won);
    });

    test('If-Match: a stale ETag is 412 stale_revision and changes nothing; the current one applies', async () => {
      const { c } = ctx;
      const plan = await draftPlan(c);
      const view = await read(c, `/plans/${plan.plan_id}`, plan.position);
      const etag = view.headers.get('etag')!;
      expect(etag).toBe('"1"');
      const head = await logHead(c);

      const stale = expectProblem(await decide(c, plan.plan_id, plan.approval_request_id, 'approve', {}, { 'If-Match': '"0"' }), 412, 'stale_revision');
      expect(stale).toMatchObject({ expected_revision: 0, current_revision: 1 });
      expect(await logHead(c)).toBe(head);
      expect((await read(c, `/plans/${plan.plan_id}`, head)).body.status).toBe('awaiting_approval');

      const applied = await decide(c, plan.plan_id, plan.approval_request_id, 'reject', { feedback: 'no' }, { 'If-Match': etag });
      expect(applied.status, applied.text).toBe(200);
      expect(applied.body).toMatchObject({ changed: true, status: 'rejected' });
      const after = await read(c, `/plans/${plan.plan_id}`, applied.body.position);
      expect(after.headers.get('etag')).toBe('"2"');

      // The old ETag is now stale for the next writer too: a lost update is refused, not applied.
      expectProblem(await c.post(`/plans/${plan.plan_id}/cancel`, {}, { headers: { 'If-Match': etag } }), 412, 'stale_revision');
      expectProblem(await decide(c, plan.plan_id, plan.approval_request_id, 'approve', {}, { 'If-Match': 'garbage' }), 400, 'validation_failed');
    });
  });

  describe(`${mode.label}: lists, history and raw streams`, () => {
    const ctx = useServer(mode);

    test('GET /sessions: newest first, filtered by status and mode, cursor pages without duplicates or gaps', async () => {
      const { c } = ctx;
      const created: Array<{ id: string; mode: string }> = [];
      for (let i = 0; i < 7; i++) {
        // Modes are free-form, as in the seed: a mode Planline does not steer by is kept and filterable.
        const m = i % 3 === 0 ? 'direct' : i === 5 ? 'planning-control' : 'auto';
        const reply = await c.post('/sessions', { name: `session ${i}`, mode: m });
        expect(reply.status).toBe(201);
        created.push({ id: reply.body.session_id, mode: m });
      }
      const suspendedIds = [created[1]!.id, created[4]!.id];
      let position = 0;
      for (const id of suspendedIds) position = (await c.post(`/sessions/${id}/suspend`)).body.position;

      const newestFirst = created.map((s) => s.id).reverse();
      const all = await read(c, '/sessions', position);
      expect(all.body.sessions.map((s: any) => s.session_id)).toEqual(newestFirst);
      expect(all.body.next_cursor).toBeNull();
      expect(Object.keys(all.body.sessions[0]).sort()).toEqual(
        expect.arrayContaining(['session_id', 'name', 'mode', 'status', 'fsm_state', 'current_plan_id', 'message_count', 'created_at', 'updated_at']),
      );

      const pages: string[][] = [];
      let cursor: string | null = null;
      do {
        const page: any = await read(c, `/sessions?limit=3${cursor ? `&cursor=${cursor}` : ''}`, position);
        pages.push(page.body.sessions.map((s: any) => s.session_id));
        cursor = page.body.next_cursor;
        expect(pages.length).toBeLessThan(10);
      } while (cursor);
      expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
      expect(pages.flat()).toEqual(newestFirst);

      const suspended = await read(c, '/sessions?status=suspended', position);
      expect(suspended.body.sessions.map((s: any) => s.session_id)).toEqual([...suspendedIds].reverse());
      const active = await read(c, '/sessions?status=active', position);
      expect(active.body.sessions.map((s: any) => s.session_id)).toEqual(newestFirst.filter((id) => !suspendedIds.includes(id)));
      const direct = await read(c, '/sessions?mode=direct', position);
      expect(direct.body.sessions.map((s: any) => s.session_id)).toEqual(created.filter((s) => s.mode === 'direct').map((s) => s.id).reverse());
      const suspendedAuto = await read(c, '/sessions?status=suspended&mode=auto', position);
      expect(suspendedAuto.body.sessions.map((s: any) => s.session_id)).toEqual([...suspendedIds].reverse());
      expect((await read(c, '/sessions?status=suspended&mode=direct', position)).body.sessions).toEqual([]);
      const seedMode = await read(c, '/sessions?mode=planning-control', position);
      expect(seedMode.body.sessions.map((s: any) => [s.session_id, s.mode])).toEqual([[created[5]!.id, 'planning-control']]);

      expectProblem(await c.get('/sessions?limit=0'), 400, 'validation_failed');
      expectProblem(await c.get('/sessions?limit=abc'), 400, 'validation_failed');
      expectProblem(await c.get(`/sessions?mode=${'x'.repeat(65)}`), 400, 'validation_failed');
    });

    test("GET /sessions/:id/events: the session's and its plans' events, in log order, paged without gaps", async () => {
      const { c } = ctx;
      const plan = await draftPlan(c);
      const approved = await decide(c, plan.plan_id, plan.approval_request_id, 'approve');
      const other = await draftPlan(c); // another session's events must not appear
      const position = Math.max(approved.body.position, other.position);

      const history = await read(c, `/sessions/${plan.session_id}/events`, position);
      expect(history.body.session_id).toBe(plan.session_id);
      const events = history.body.events;
      expect(events.map((e: any) => [e.stream, e.type])).toEqual([
        [`session-${plan.session_id}`, 'SessionStarted'],
        [`session-${plan.session_id}`, 'TaskClassified'],
        [`plan-${plan.plan_id}`, 'PlanDrafted'],
        [`plan-${plan.plan_id}`, 'PlanApprovalRequested'],
        [`plan-${plan.plan_id}`, 'PlanApproved'],
      ]);
      const positions = events.map((e: any) => e.position);
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
      expect(events[2].data).toMatchObject({ plan_id: plan.plan_id, revision: 1 });
      expect(history.body.next_cursor).toBeNull();

      // Pages of 2 walk back in time; each page reads oldest first; together they are the whole history.
      const pages: any[][] = [];
      let cursor: string | null = null;
      do {
        const page: any = await read(c, `/sessions/${plan.session_id}/events?limit=2${cursor ? `&cursor=${cursor}` : ''}`, position);
        pages.push(page.body.events);
        cursor = page.body.next_cursor;
        expect(pages.length).toBeLessThan(10);
      } while (cursor);
      expect(pages.reverse().flat().map((e) => e.event_id)).toEqual(events.map((e: any) => e.event_id));
    });

    test('GET /streams/:name pages raw events with from, limit and next_from; an unknown stream is 404', async () => {
      const { c } = ctx;
      const plan = await draftPlan(c);
      await decide(c, plan.plan_id, plan.approval_request_id, 'modify', { feedback: 'more tests' });
      const stream = `plan-${plan.plan_id}`;
      const whole = await c.get(`/streams/${stream}`);
      expect(whole.status).toBe(200);
      expect(whole.body.stream).toBe(stream);
      expect(whole.body.events.map((e: any) => [e.revision, e.type])).toEqual([
        [0, 'PlanDrafted'],
        [1, 'PlanApprovalRequested'],
        [2, 'PlanModificationRequested'],
      ]);
      expect(whole.body.next_from).toBeNull();
      for (const event of whole.body.events) {
        expect(event.metadata).toMatchObject({ schema_version: expect.any(Number) });
        expect(typeof event.metadata.command_id).toBe('string');
        expect(typeof event.id).toBe('string');
        expect(typeof event.position).toBe('number');
      }

      const seen: number[] = [];
      let from: number | null = 0;
      while (from !== null) {
        const page: any = await c.get(`/streams/${stream}?from=${from}&limit=2`);
        expect(page.status, page.text).toBe(200);
        seen.push(...page.body.events.map((e: any) => e.revision));
        from = page.body.next_from;
        expect(seen.length).toBeLessThan(10);
      }
      expect(seen).toEqual([0, 1, 2]);
      const backwards = await c.get(`/streams/${stream}?direction=backwards&limit=2`);
      expect(backwards.body.events.map((e: any) => e.revision)).toEqual([2, 1]);
      expect(backwards.body.next_from).toBe(0);

      const pastTheEnd = await c.get(`/streams/${stream}?from=10`);
      expect(pastTheEnd.status).toBe(200);
      expect(pastTheEnd.body).toMatchObject({ events: [], next_from: null });
      expectProblem(await c.get(`/streams/plan-${randomUUID()}`), 404, 'stream_not_found');
      expectProblem(await c.get(`/streams/plan-${randomUUID()}?from=0`), 404, 'stream_not_found');
      expectProblem(await c.get(`/streams/${stream}?from=-1`), 400, 'validation_failed');
    });
  });

  describe(`${mode.label}: operations`, () => {
    const ctx = useServer(mode);

    test('health, readiness with its checks once caught up, and Prometheus metrics', async () => {
      const { c } = ctx;
      const plan = await draftPlan(c);
      const health = await c.get('/health');
      expect(health.status).toBe(200);
      expect(health.body).toEqual({ status: 'ok' });

      const ready = await eventually(() => c.get('/ready'), (r) => r.status === 200, 5_000, 'ready');
      expect(ready.body).toMatchObject({
        status: 'ready',
        checks: { event_store: { ok: true, detail: plan.position }, read_models: { ok: true }, caught_up: { ok: true } },
      });

      const metrics = await c.get('/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.contentType).toMatch(/^text\/plain/);
      expect(metrics.text).toMatch(/^# TYPE planline_http_requests_total counter$/m);
      expect(metrics.text).toMatch(/^planline_http_requests_total\{method="POST",route="\/api\/v1\/plans",status="201"\} 1$/m);
      expect(metrics.text).toMatch(/^# TYPE planline_event_log_head_position gauge$/m);
      expect(metrics.text).toMatch(new RegExp(`^planline_event_log_head_position ${plan.position}$`, 'm'));
      expect(metrics.text).toMatch(/^planline_read_models_position \d+$/m);
      expect(metrics.text).toMatch(/^planline_commands_total\{command="CreatePlan",outcome="applied"\} 1$/m);
      expect(metrics.text).toMatch(/^planline_http_request_duration_seconds_count\{method="POST",route="\/api\/v1\/plans"\} 1$/m);
      // Refusals are counted by outcome too.
      expectProblem(await decide(c, plan.plan_id, plan.approval_request_id, 'modify'), 400, 'validation_failed');
      expect((await decide(c, plan.plan_id, plan.approval_request_id, 'approve')).status).toBe(200);
      expectProblem(await decide(c, plan.plan_id, plan.approval_request_id, 'reject'), 409, 'already_decided');
      const counted = (await c.get('/metrics')).text;
      expect(counted).toMatch(/^planline_commands_total\{command="DecidePlan",outcome="applied"\} 1$/m);
      expect(counted).toMatch(/^planline_commands_total\{command="DecidePlan",outcome="refused"\} 2$/m);
      // Unmatched routes are counted under one label, not one series per path.
      await c.get(`/no-such-route/${randomUUID()}`);
      expect((await c.get('/metrics')).text).toMatch(/^planline_http_requests_total\{method="GET",route="unmatched",status="404"\} 1$/m);
    });
  });
}
