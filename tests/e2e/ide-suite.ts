// Planline as the backend of the real IDE (codelab_ai_assistant), over REST: the IDE's own sequence of
// calls, and every body it decodes checked against its models (tests/support/ide-models.ts), from real
// requests to a running server. One parameterised suite: ide.test.ts runs it with embedded read
// models, ide-redis.test.ts with Redis ones.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as v from 'valibot';
import { client, startServer, type Client, type TestServer } from '../support/server.js';
import {
  AgentInfo,
  ChatMessage,
  CurrentAgentInfo,
  declaredNulls,
  expectIdeModel,
  MessageModel,
  PendingApprovalData,
  PendingApprovalsResponse,
  PlanSummary,
  SessionHistory,
  SessionInfo,
  SessionListResponse,
  SessionModel,
  SessionModelGenerated,
} from '../support/ide-models.js';
import { openLogWriter, type LogWriter } from '../support/log-writer.js';
import { decide, draftPlan, expectProblem, read, streamEvents, threeSubtasks } from './api.js';
import type { Mode } from './core-suite.js';

/** A session body as every IDE build decodes it (the declared model and the stored generated code). */
function expectSession(body: unknown, what: string) {
  expectIdeModel(SessionModel, body, `${what} as SessionModel`);
  expectIdeModel(SessionModelGenerated, body, `${what} as SessionModel (generated code)`);
  return body as Record<string, any>;
}

/** GET /sessions, every page: each page a SessionListResponse, each item a SessionModel and a SessionInfo. */
async function expectSessionList(c: Client, query: string, position: number): Promise<Array<Record<string, any>>> {
  const items: Array<Record<string, any>> = [];
  let cursor: string | null = null;
  do {
    const page: any = (await read(c, `/sessions?${query}${cursor ? `&cursor=${cursor}` : ''}`, position)).body;
    expectIdeModel(SessionListResponse, page, `GET /sessions?${query}`);
    for (const item of page.sessions) {
      expectSession(item, 'a GET /sessions item');
      expectIdeModel(SessionInfo, item, 'a GET /sessions item as SessionInfo');
    }
    items.push(...page.sessions);
    cursor = page.next_cursor;
    expect(items.length).toBeLessThan(1_000);
  } while (cursor);
  return items;
}

async function expectHistory(c: Client, sessionId: string, position: number, query = '') {
  const body = (await read(c, `/sessions/${sessionId}/history${query}`, position)).body;
  return expectIdeModel(SessionHistory, body, `GET /sessions/${sessionId}/history${query}`) as Record<string, any>;
}

async function expectCurrentAgent(c: Client, sessionId: string, position: number) {
  const body = (await read(c, `/agents/${sessionId}/current`, position)).body;
  return expectIdeModel(CurrentAgentInfo, body, `GET /agents/${sessionId}/current`) as Record<string, any>;
}

async function expectPendingApprovals(c: Client, sessionId: string, position: number) {
  const body = (await read(c, `/sessions/${sessionId}/pending-approvals`, position)).body;
  expectIdeModel(PendingApprovalsResponse, body, `GET /sessions/${sessionId}/pending-approvals`);
  for (const entry of body.pending_approvals) expectIdeModel(PlanSummary, entry.arguments, 'a plan approval entry\'s arguments');
  return body as Record<string, any>;
}

/** One server for the describe it is called in; fails the describe if the server logged an error. */
function useServer(mode: Mode) {
  const ctx = {} as { server: TestServer; c: Client; log: LogWriter };
  beforeAll(async () => {
    ctx.server = await startServer(mode.env);
    ctx.c = client(ctx.server.api);
    ctx.log = await openLogWriter(ctx.server.dir);
  });
  afterAll(async () => {
    await ctx.log?.close();
    await ctx.server?.dispose();
    expect(ctx.server?.logs.filter((line) => line.level === 'error') ?? []).toEqual([]);
  });
  return ctx;
}

export function ideSuite(mode: Mode) {
  describe(`${mode.label}: the IDE's own REST sequence`, () => {
    const ctx = useServer(mode);

    test('create with an empty POST, list, rename, message, plan, restore the approval, approve, read the chat, delete; then 404 everywhere', async () => {
      const { c } = ctx;
      // SessionRemoteDataSource.createSession: `_dio.post('$base/api/v1/sessions')`, no body, no content-type.
      const created = await c.post('/sessions');
      expect(created.status, created.text).toBe(201);
      const session = expectSession(created.body, 'POST /sessions');
      const id: string = session.id;
      expect(session).toMatchObject({ session_id: id, message_count: 0, current_agent: 'universal', is_active: true, created: true });
      expect(session).not.toHaveProperty('title'); // unnamed: the IDE shows its own title
      expect(created.headers.get('etag')).toBe('"0"');

      // listSessions: the new session is on the list, counted in `total`.
      const listed = (await read(c, '/sessions', created.body.position)).body;
      expectIdeModel(SessionListResponse, listed, 'GET /sessions');
      expect(listed.sessions.map((s: any) => s.id)).toContain(id);
      expect(listed.total).toBe(listed.sessions.length);

      // updateSessionTitle: PATCH {title}.
      const renamed = await c.send<any>('PATCH', `/sessions/${id}`, { title: 'Login page' });
      expect(renamed.status, renamed.text).toBe(200);
      expect(expectSession(renamed.body, 'PATCH /sessions/:id')).toMatchObject({ id, title: 'Login page', name: 'Login page', changed: true });
      expect((await streamEvents(c, `session-${id}`)).map((e) => e.type)).toEqual(['SessionStarted', 'SessionRenamed']);
      expect(expectSession((await read(c, `/sessions/${id}`, renamed.body.position)).body, 'GET /sessions/:id').title).toBe('Login page');

      // A message, then a plan for it.
      const message = await c.post(`/sessions/${id}/messages`, { content: 'Add a login page', role: 'user' });
      expect(message.status, message.text).toBe(201);
      const plan = await draftPlan(c, { session_id: id, goal: 'Add a login page' });

      // On connect the IDE restores pending approvals, each as a tool approval keyed by call_id.
      const pending = await expectPendingApprovals(c, id, plan.position);
      expect(pending).toMatchObject({ session_id: id, count: 1 });
      const restored = pending.pending_approvals[0];
      expect(restored).toMatchObject({
        call_id: plan.approval_request_id,
        request_id: plan.approval_request_id,
        request_type: 'plan',
        tool_name: 'create_plan',
        arguments: { plan_id: plan.plan_id, goal: 'Add a login page', subtasks_count: 3, total_estimated_time: '1 min 45 s' },
      });
      expect(Number.isNaN(Date.parse(restored.created_at))).toBe(false);

      // Approve through the HTTP decision route, by the restored call_id.
      const approved = await c.post(`/sessions/${id}/plan-decision`, { approval_request_id: restored.call_id, decision: 'approve' });
      expect(approved.status, approved.text).toBe(200);
      expect(approved.body).toMatchObject({ plan_id: plan.plan_id, changed: true, status: 'approved' });
      expect((await expectPendingApprovals(c, id, approved.body.position)).count).toBe(0);

      // The chat history: the message, the plan, its approval.
      const history = await expectHistory(c, id, approved.body.position);
      expect(history).toMatchObject({ session_id: id, message_count: 3, current_agent: 'universal', agent_history: [], next_cursor: null });
      expect(history.messages.map((m: any) => [m.role, m.content.split('\n')[0]])).toEqual([
        ['user', 'Add a login page'],
        ['assistant', '**Plan:** Add a login page'],
        ['assistant', 'Plan approved.'],
      ]);
      const sessionNow = expectSession((await read(c, `/sessions/${id}`, approved.body.position)).body, 'GET /sessions/:id');
      expect(sessionNow).toMatchObject({ message_count: 1, description: 'Add a login page', fsm_state: 'plan_execution' });
      expect(history.last_activity).toBe(sessionNow.last_activity);

      // The agents the IDE can pick, and the session's current one (GatewayApi.listAgents, getCurrentAgent).
      const agents = await c.get('/agents');
      expect(agents.status, agents.text).toBe(200);
      expect(Array.isArray(agents.body)).toBe(true);
      for (const agent of agents.body) expectIdeModel(AgentInfo, agent, 'a GET /agents item');
      expect(agents.body.map((a: any) => a.type)).toEqual(['coder', 'debug', 'ask', 'architect', 'universal']);
      expect(agents.body.find((a: any) => a.type === 'architect')).toMatchObject({ has_file_restrictions: true, allowed_tools: expect.arrayContaining(['write_file']) });
      expect(await expectCurrentAgent(c, id, approved.body.position)).toEqual({ session_id: id, current_agent: 'universal', agent_history: [], switch_count: 0 });

      // Delete; deleting again is a success that changes nothing.
      const deleted = await c.send<any>('DELETE', `/sessions/${id}`);
      expect(deleted.status, deleted.text).toBe(200);
      expect(deleted.body).toMatchObject({ session_id: id, deleted: true, changed: true });
      const again = await c.send<any>('DELETE', `/sessions/${id}`);
      expect(again.status, again.text).toBe(200);
      expect(again.body).toMatchObject({ session_id: id, deleted: true, changed: false });

      // 404 on every route, for the session, its plan and its approval; it is on no list.
      const at = deleted.body.position;
      for (const path of [`/sessions/${id}`, `/sessions/${id}/history`, `/sessions/${id}/events`, `/sessions/${id}/pending-approvals`, `/agents/${id}/current`]) {
        expectProblem(await c.get(`${path}?wait_for=${at}`), 404, 'session_not_found');
      }
      for (const path of [`/plans/${plan.plan_id}`, `/plans/${plan.plan_id}/status`]) expectProblem(await c.get(`${path}?wait_for=${at}`), 404, 'plan_not_found');
      expectProblem(await c.send<any>('PATCH', `/sessions/${id}`, { title: 'again' }), 404, 'session_not_found');
      expectProblem(await c.post(`/sessions/${id}/messages`, { content: 'hello?' }), 404, 'session_not_found');
      expectProblem(await c.post(`/sessions/${id}/plan-decision`, { approval_request_id: plan.approval_request_id, decision: 'approve' }), 404, 'session_not_found');
      for (const action of ['suspend', 'resume', 'complete']) expectProblem(await c.post(`/sessions/${id}/${action}`), 404, 'session_not_found');
      expectProblem(await c.post('/plans', { session_id: id, goal: 'more', subtasks: threeSubtasks() }), 404, 'session_not_found');
      expectProblem(await decide(c, plan.plan_id, plan.approval_request_id, 'approve'), 404, 'plan_not_found');
      expectProblem(await c.post(`/plans/${plan.plan_id}/cancel`), 404, 'plan_not_found');
      expectProblem(await c.post(`/plans/${plan.plan_id}/revisions`, { subtasks: [{ description: 'x' }] }), 404, 'plan_not_found');
      expect((await expectSessionList(c, 'limit=500', at)).map((s) => s.id)).not.toContain(id);
      expect((await read(c, `/approvals?session_id=${id}`, at)).body.approvals).toEqual([]);
      expect((await read(c, '/approvals?limit=500', at)).body.approvals.map((a: any) => a.approval_request_id)).not.toContain(plan.approval_request_id);
      // A session id stays taken: the log still holds it.
      expectProblem(await c.post('/sessions', { session_id: id }), 409, 'session_exists');

      // The log keeps everything: the deletion cancelled the approved plan in the same commit.
      const sessionEvents = await streamEvents(c, `session-${id}`);
      expect(sessionEvents.map((e) => e.type)).toEqual(['SessionStarted', 'SessionRenamed', 'UserMessageReceived', 'TaskClassified', 'SessionDeleted']);
      expect(sessionEvents.at(-1)!.data).toEqual({ cancels_plan_id: plan.plan_id });
      const planEvents = await streamEvents(c, `plan-${plan.plan_id}`);
      expect(planEvents.map((e) => e.type)).toEqual(['PlanDrafted', 'PlanApprovalRequested', 'PlanApproved', 'PlanCancelled']);
      expect(planEvents.at(-1)!.data).toEqual({ reason: 'session deleted' });
      expect(planEvents.at(-1)!.metadata.command_id).toBe(sessionEvents.at(-1)!.metadata.command_id);
    });
  });

  describe(`${mode.label}: every REST body decodes as the IDE's models`, () => {
    const ctx = useServer(mode);

    test("POST /sessions: with no body, an empty JSON body or Planline's fields; PATCH and GET answer the same shape", async () => {
      const { c } = ctx;
      const bare = await c.post('/sessions');
      const empty = await c.post('/sessions', undefined, { raw: '', headers: { 'content-type': 'application/json' } });
      const named = await c.post('/sessions', { name: 'Named', mode: 'planning-control', agent_type: 'coder' });
      for (const reply of [bare, empty, named]) {
        expect(reply.status, reply.text).toBe(201);
        expectSession(reply.body, 'POST /sessions');
        expect(reply.body.id).toBe(reply.body.session_id);
        expect(reply.body.created_at).toBe(reply.body.updated_at);
        expect(reply.body.last_activity).toBe(reply.body.updated_at);
      }
      expect(named.body).toMatchObject({ title: 'Named', name: 'Named', mode: 'planning-control', current_agent: 'coder', agent_type: 'coder' });

      // A retried start with its Idempotency-Key: 200, the same session, the same shape.
      const key = `ide-${randomUUID()}`;
      const first = await c.post('/sessions', undefined, { headers: { 'Idempotency-Key': key } });
      const retried = await c.post('/sessions', undefined, { headers: { 'Idempotency-Key': key } });
      expect([first.status, retried.status]).toEqual([201, 200]);
      expect(expectSession(retried.body, 'a retried POST /sessions')).toMatchObject({ id: first.body.id, created: false });

      // Renaming to the same title changes nothing; `name` is accepted too; a title is a string.
      const same = await c.send<any>('PATCH', `/sessions/${named.body.id}`, { title: 'Named' });
      expect(same.status, same.text).toBe(200);
      expect(expectSession(same.body, 'PATCH /sessions/:id')).toMatchObject({ title: 'Named', changed: false, position: named.body.position });
      const byName = await c.send<any>('PATCH', `/sessions/${named.body.id}`, { name: '  Renamed  ' });
      expect(expectSession(byName.body, 'PATCH /sessions/:id')).toMatchObject({ title: 'Renamed', changed: true });
      // An empty title clears it: the IDE falls back to its own.
      const cleared = await c.send<any>('PATCH', `/sessions/${named.body.id}`, { title: '' });
      expect(expectSession(cleared.body, 'PATCH /sessions/:id')).toMatchObject({ name: '' });
      expect(cleared.body).not.toHaveProperty('title');
      const head = cleared.body.position;
      for (const bad of [{}, { title: 42 }, { title: null }, { title: 'x'.repeat(201) }]) {
        const refused = expectProblem(await c.send<any>('PATCH', `/sessions/${named.body.id}`, bad), 400, 'validation_failed');
        expect(refused.detail).toContain('title');
      }
      expect((await streamEvents(c, `session-${named.body.id}`)).at(-1)!.position).toBe(head);
      expectSession((await read(c, `/sessions/${named.body.id}`, head)).body, 'GET /sessions/:id');
    });

    test('sessions down every road: each read, list page, chat history and pending-approvals body decodes', async () => {
      const { c, log } = ctx;
      const positions: number[] = [];
      const mark = (position: number) => (positions.push(position), position);
      const subtasks = threeSubtasks();
      const subtaskIds = ['design', 'st-2', 'verify'];
      const newSession = async (name?: string) => (await c.post('/sessions', name ? { name } : undefined)).body.id as string;
      const sessions: Record<string, string> = {};

      sessions.empty = await newSession();

      // Message, plan, modify, revision, approve, run to completion; two agent switches.
      sessions.completed = await newSession('completed');
      await c.post(`/sessions/${sessions.completed}/messages`, { content: 'Build the parser' });
      const p1 = await draftPlan(c, { session_id: sessions.completed, goal: 'Build the parser' });
      await decide(c, p1.plan_id, p1.approval_request_id, 'modify', { feedback: 'test first' });
      const revised = await c.post(`/plans/${p1.plan_id}/revisions`, { subtasks, feedback: 'test first' });
      await decide(c, p1.plan_id, revised.body.approval_request_id, 'approve');
      await log.commands.switchAgent(sessions.completed, { agent_type: 'coder', reason: 'time to write code' }, log.meta());
      mark(await log.runToCompletion(p1.plan_id, subtaskIds));
      mark((await log.commands.switchAgent(sessions.completed, { agent_type: 'debug' }, log.meta())).position);

      // Rejected with feedback.
      sessions.rejected = await newSession();
      const p2 = await draftPlan(c, { session_id: sessions.rejected });
      mark((await decide(c, p2.plan_id, p2.approval_request_id, 'reject', { feedback: 'too risky' })).body.position);

      // Superseded by a message, then by a plan: the second plan is still pending.
      sessions.superseded = await newSession();
      const p3 = await draftPlan(c, { session_id: sessions.superseded });
      await c.post(`/sessions/${sessions.superseded}/messages`, { content: 'no, smaller' });
      await draftPlan(c, { session_id: sessions.superseded });
      mark((await draftPlan(c, { session_id: sessions.superseded })).position);
      expect(p3.plan_id).toBeTruthy();

      // Cancelled; failed; expired (a writer whose clock is past the deadline); a plan without a session.
      sessions.cancelled = await newSession();
      const p4 = await draftPlan(c, { session_id: sessions.cancelled });
      mark((await c.post(`/plans/${p4.plan_id}/cancel`, { reason: 'not now' })).body.position);
      sessions.failed = await newSession();
      const p5 = await draftPlan(c, { session_id: sessions.failed });
      await decide(c, p5.plan_id, p5.approval_request_id, 'approve');
      mark(await log.runToFailure(p5.plan_id, 'design', 'the compiler crashed'));
      sessions.expired = await newSession();
      const p6 = await draftPlan(c, { session_id: sessions.expired });
      const late = await openLogWriter(ctx.server.dir, { clockOffsetMs: 3_600_000 });
      try {
        mark((await late.commands.expireApproval(p6.plan_id, p6.approval_request_id, late.meta())).position);
      } finally {
        await late.close();
      }
      const p7 = await draftPlan(c);
      sessions.planned = p7.session_id;
      mark(p7.position);

      // Suspended; completed while a plan awaited review.
      sessions.suspended = await newSession();
      mark((await c.post(`/sessions/${sessions.suspended}/suspend`, { reason: 'lunch' })).body.position);
      sessions.ended = await newSession();
      await draftPlan(c, { session_id: sessions.ended });
      mark((await c.post(`/sessions/${sessions.ended}/complete`)).body.position);

      const at = Math.max(...positions);
      const roles = new Set<string>();
      const histories: Record<string, Record<string, any>> = {};
      for (const [road, id] of Object.entries(sessions)) {
        const session = expectSession((await read(c, `/sessions/${id}`, at)).body, `GET /sessions/:id (${road})`);
        const history = await expectHistory(c, id, at);
        histories[road] = history;
        expect(history.messages.length, road).toBe(history.message_count);
        expect(history.current_agent, road).toBe(session.current_agent);
        const current = await expectCurrentAgent(c, id, at);
        expect(current, road).toEqual({ session_id: id, current_agent: session.current_agent, agent_history: history.agent_history, switch_count: history.agent_history.length });
        for (const m of history.messages) {
          roles.add(m.name ? `${m.role}/${m.name}` : m.role);
          expect(typeof m.content === 'string' && m.content.length > 0, `${road}: ${JSON.stringify(m)}`).toBe(true);
        }
        await expectPendingApprovals(c, id, at);
      }
      // Every kind of message the conversation holds today was checked.
      expect([...roles].sort()).toEqual(['assistant', 'system', 'system/agent_switched', 'user']);

      expect(histories.completed).toMatchObject({
        current_agent: 'debug',
        agent_history: [
          { from: 'universal', to: 'coder', reason: 'time to write code' },
          { from: 'coder', to: 'debug' },
        ],
      });
      expect(histories.completed!.messages.map((m: any) => m.content.split('\n')[0])).toEqual([
        'Build the parser',
        '**Plan:** Build the parser',
        'Changes requested: test first',
        '**Plan:** Build the parser (revision 2)',
        'Plan approved.',
        'Switched from the universal agent to the coder agent: time to write code',
        'Plan completed.',
        'Switched from the coder agent to the debug agent.',
      ]);
      expect(histories.failed!.messages.at(-1)).toMatchObject({ role: 'system', content: 'Plan failed with an error: the compiler crashed' });
      expect(histories.expired!.messages.at(-1)!.content).toBe('The plan expired: no decision came before the deadline.');
      // In log order: a new plan is drafted in the commit that supersedes the one before it.
      expect(histories.superseded!.messages.map((m: any) => m.content.split('\n')[0])).toEqual([
        expect.stringMatching(/^\*\*Plan:\*\*/),
        'no, smaller',
        'Plan superseded by a new message.',
        expect.stringMatching(/^\*\*Plan:\*\*/),
        expect.stringMatching(/^\*\*Plan:\*\*/),
        'Plan superseded by a new plan.',
      ]);
      expect((await expectPendingApprovals(c, sessions.superseded!, at)).count).toBe(1);
      expect(histories.empty).toMatchObject({ messages: [], message_count: 0, agent_history: [] });

      // Lists: every page and filter decodes; `total` counts the whole list.
      const all = await expectSessionList(c, 'limit=3', at);
      expect(all.map((s) => s.id)).toEqual(expect.arrayContaining(Object.values(sessions)));
      const whole = (await read(c, '/sessions?limit=3', at)).body;
      expect(whole.total).toBe(all.length);
      const suspended = await expectSessionList(c, 'status=suspended', at);
      expect(suspended.map((s) => [s.id, s.is_active])).toEqual([[sessions.suspended, false]]);
      expect((await expectSessionList(c, 'status=completed', at)).map((s) => s.id)).toEqual([sessions.ended]);
    });

    test('history pages: the latest 200 messages by default, older ones by cursor, none lost', async () => {
      const { c, log } = ctx;
      const id = (await c.post('/sessions')).body.id as string;
      let position = 0;
      for (let i = 1; i <= 205; i++) position = (await log.commands.sendUserMessage(id, { content: `message ${i}` }, log.meta())).position;
      const latest = await expectHistory(c, id, position);
      expect(latest.message_count).toBe(205);
      expect(latest.messages).toHaveLength(200);
      expect(latest.messages[0].content).toBe('message 6');
      expect(latest.messages.at(-1).content).toBe('message 205');
      expect(latest.next_cursor).not.toBeNull();
      const older = await expectHistory(c, id, position, `?cursor=${latest.next_cursor}`);
      expect(older.messages.map((m: any) => m.content)).toEqual(['message 1', 'message 2', 'message 3', 'message 4', 'message 5']);
      expect(older.next_cursor).toBeNull();
      const small = await expectHistory(c, id, position, '?limit=2');
      expect(small.messages.map((m: any) => m.content)).toEqual(['message 204', 'message 205']);
      expectProblem(await c.get(`/sessions/${id}/history?limit=0`), 400, 'validation_failed');
      expect(expectSession((await read(c, `/sessions/${id}`, position)).body, 'GET /sessions/:id')).toMatchObject({ message_count: 205, description: 'message 1' });
    });

    test('refusals the IDE meets are the statuses it branches on (it reads no error body)', async () => {
      // session_remote_datasource.dart maps a refused call by status alone (404 NotFound, 400 Validation,
      // 401/403 Unauthorized, 5xx Server); agent_repository_impl.dart reads a 404 on history as an empty
      // history, approval_api_datasource_impl.dart a 404 on pending approvals as none.
      const { c } = ctx;
      const nope = `missing-${randomUUID()}`;
      for (const path of [`/sessions/${nope}`, `/sessions/${nope}/history`, `/sessions/${nope}/pending-approvals`, `/agents/${nope}/current`]) {
        expectProblem(await c.get(path), 404, 'session_not_found');
      }
      expectProblem(await c.send<any>('PATCH', `/sessions/${nope}`, { title: 'x' }), 404, 'session_not_found');
      expectProblem(await c.send<any>('DELETE', `/sessions/${nope}`), 404, 'session_not_found');
      // Who may touch a session is settled before its body is read: a missing session is a 404 whatever
      // the body (a stranger's request for someone else's session gets the same, so bodies reveal nothing).
      expectProblem(await c.send<any>('PATCH', `/sessions/${nope}`, { title: 7 }), 404, 'session_not_found');
    });
  });

}

/** The schemas themselves: they must refuse what the IDE would fail to decode (run once, by ide.test.ts). */
export function ideModelChecks() {
  describe('the IDE models refuse what the IDE would fail to decode', () => {
    const decodes = (schema: v.GenericSchema, value: unknown) => v.safeParse(schema, value).success;

    test("today's seed bodies and wrong types fail; nulls in declared fields are found", () => {
      // The body POST /sessions answered before: no id, no message_count.
      expect(decodes(SessionModel, { session_id: 's', position: 3, created: true })).toBe(false);
      const good = { id: 's', session_id: 's', message_count: 0, current_agent: 'coder', created_at: '2026-01-01T00:00:00.000Z', updated_at: '2026-01-01T00:00:00.000Z' };
      expect(decodes(SessionModel, good) && decodes(SessionModelGenerated, good)).toBe(true);
      expect(decodes(SessionModel, { ...good, message_count: 1.5 })).toBe(false);
      expect(decodes(SessionModel, { ...good, message_count: '1' })).toBe(false);
      expect(decodes(SessionModel, { ...good, created_at: 'yesterday' })).toBe(false);
      expect(decodes(SessionModelGenerated, { ...good, current_agent: undefined })).toBe(false);
      expect(decodes(SessionInfo, { session_id: 's', message_count: 0 })).toBe(false); // last_activity is required
      expect(declaredNulls(SessionModel, { ...good, title: null, mode: null })).toEqual(['title']);

      const entry = { call_id: 'c', tool_name: 'create_plan', arguments: { goal: 'g' }, created_at: '2026-01-01T00:00:00.000Z' };
      expect(decodes(PendingApprovalData, entry)).toBe(true);
      expect(decodes(PendingApprovalData, { ...entry, arguments: '{"goal":"g"}' })).toBe(false);
      expect(decodes(PendingApprovalData, { ...entry, arguments: [] })).toBe(false);
      expect(decodes(PendingApprovalData, { ...entry, tool_name: null })).toBe(false);
      expect(decodes(PlanSummary, { goal: 'g', total_estimated_time: 600 })).toBe(false);

      expect(decodes(ChatMessage, { role: 'assistant', tool_calls: [{ id: 'call-1', type: 'function', function: { name: 'read_file', arguments: '{"path":"a"}' } }] })).toBe(true);
      expect(decodes(ChatMessage, { role: 'assistant', tool_calls: [{ id: 'call-1', function: { name: 3 } }] })).toBe(false);
      expect(decodes(ChatMessage, { content: 'no role' })).toBe(false);
      expect(declaredNulls(SessionHistory, { session_id: 's', messages: [{ role: 'user', content: null }], message_count: 1 })).toEqual(['messages.0.content']);

      expect(decodes(MessageModel, { type: 'tool_call', call_id: 'c', tool_name: 'read_file', arguments: { path: 'a' }, requires_approval: true })).toBe(true);
      expect(decodes(MessageModel, { type: 'tool_call', arguments: '{"path":"a"}' })).toBe(false);
      expect(decodes(MessageModel, { type: 'assistant_message', is_final: 'yes' })).toBe(false);
      expect(decodes(MessageModel, { content: 'no type' })).toBe(false);

      expect(decodes(AgentInfo, { type: 'coder', name: 'Coder', description: 'd', allowed_tools: ['read_file'], has_file_restrictions: 'no' })).toBe(false);
      expect(decodes(CurrentAgentInfo, { session_id: 's', current_agent: 'coder', switch_count: 0 })).toBe(false); // agent_history is required
    });
  });
}
