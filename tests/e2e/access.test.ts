// Who may call what, end to end, on every route the server has. The table below names, for each route,
// how to call it on a session of alice's (shared with vic as viewer and carl as collaborator) and what
// kind of access it needs; the test walks the server's own route list, so a route added without an
// entry here (and without its rule in src/http/access.ts) fails it. mallory is a stranger: for her,
// alice's session and everything under it does not exist (404, the same as a missing one).
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { createCommandHandler } from '../../src/commands/handle.js';
import { createCommands } from '../../src/commands/service.js';
import { openSqliteEventStore, type SqliteEventStore } from '../../src/events/sqlite-store.js';
import { runDriver } from '../support/runs.js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ACCESS_RULES, ruleKey } from '../../src/http/access.js';
import { client, startServer, type Client, type Reply, type TestServer } from '../support/server.js';
import { hs256, validClaims } from '../support/tokens.js';
import { draftPlan, expectProblem, read, threeSubtasks } from './api.js';

const SECRET = `access-test-key-${randomUUID()}`;

interface Fixture {
  session: string;
  plan: string;
  approval: string;
  /** An agent run of the session, waiting for the IDE to answer `call`. */
  run: string;
  call: string;
  position: number;
}

interface Call {
  method: string;
  path: string;
  body?: unknown;
}

type Kind =
  /** No token needed. */
  | 'open'
  /** Any principal; the answer is its own (a new session, its metrics). */
  | 'principal'
  /** A list: each principal sees only what it may read. */
  | 'list'
  /** Reads of alice's session: viewer and collaborator too; mallory gets `notFound`. */
  | 'read'
  /** Commands: collaborator too; viewer 403; mallory `notFound`. */
  | 'command'
  /** Only the owner; collaborator and viewer 403; mallory `notFound`. */
  | 'own'
  /** The IDE socket: a plain GET needs a token (401), then answers 426; who may watch is ws-access.test.ts. */
  | 'socket';

interface Case {
  kind: Kind;
  call: (f: Fixture) => Call;
  /** The code a stranger gets (read/command/own). */
  notFound?: string;
}

const cases: Record<string, Case> = {
  'GET /health': { kind: 'open', call: () => ({ method: 'GET', path: '/health' }) },
  'GET /ready': { kind: 'open', call: () => ({ method: 'GET', path: '/ready' }) },
  'GET /metrics': { kind: 'principal', call: () => ({ method: 'GET', path: '/metrics' }) },
  'POST /sessions': { kind: 'principal', call: () => ({ method: 'POST', path: '/sessions', body: { name: 'mine' } }) },
  'GET /sessions': { kind: 'list', call: (f) => ({ method: 'GET', path: `/sessions?wait_for=${f.position}` }) },
  'GET /approvals': { kind: 'list', call: (f) => ({ method: 'GET', path: `/approvals?wait_for=${f.position}` }) },
  'GET /sessions/:id': { kind: 'read', notFound: 'session_not_found', call: (f) => ({ method: 'GET', path: `/sessions/${f.session}?wait_for=${f.position}` }) },
  'GET /sessions/:id/history': { kind: 'read', notFound: 'session_not_found', call: (f) => ({ method: 'GET', path: `/sessions/${f.session}/history?wait_for=${f.position}` }) },
  'GET /sessions/:id/events': { kind: 'read', notFound: 'session_not_found', call: (f) => ({ method: 'GET', path: `/sessions/${f.session}/events?wait_for=${f.position}` }) },
  'GET /agents': { kind: 'principal', call: () => ({ method: 'GET', path: '/agents' }) },
  'GET /ws/:session_id': { kind: 'socket', call: (f) => ({ method: 'GET', path: `/ws/${f.session}` }) },
  'GET /agents/:session_id/current': {
    kind: 'read',
    notFound: 'session_not_found',
    call: (f) => ({ method: 'GET', path: `/agents/${f.session}/current?wait_for=${f.position}` }),
  },
  'PATCH /sessions/:id': { kind: 'command', notFound: 'session_not_found', call: (f) => ({ method: 'PATCH', path: `/sessions/${f.session}`, body: { title: 'renamed' } }) },
  'DELETE /sessions/:id': { kind: 'own', notFound: 'session_not_found', call: (f) => ({ method: 'DELETE', path: `/sessions/${f.session}` }) },
  'GET /sessions/:id/pending-approvals': {
    kind: 'read',
    notFound: 'session_not_found',
    call: (f) => ({ method: 'GET', path: `/sessions/${f.session}/pending-approvals?wait_for=${f.position}` }),
  },
  'GET /sessions/:id/shares': { kind: 'read', notFound: 'session_not_found', call: (f) => ({ method: 'GET', path: `/sessions/${f.session}/shares?wait_for=${f.position}` }) },
  'GET /plans/:id': { kind: 'read', notFound: 'plan_not_found', call: (f) => ({ method: 'GET', path: `/plans/${f.plan}?wait_for=${f.position}` }) },
  'GET /plans/:id/status': { kind: 'read', notFound: 'plan_not_found', call: (f) => ({ method: 'GET', path: `/plans/${f.plan}/status?wait_for=${f.position}` }) },
  'GET /streams/:name': { kind: 'read', notFound: 'stream_not_found', call: (f) => ({ method: 'GET', path: `/streams/session-${f.session}` }) },
  'POST /sessions/:id/messages': { kind: 'command', notFound: 'session_not_found', call: (f) => ({ method: 'POST', path: `/sessions/${f.session}/messages`, body: { content: 'hello' } }) },
  'POST /sessions/:id/suspend': { kind: 'command', notFound: 'session_not_found', call: (f) => ({ method: 'POST', path: `/sessions/${f.session}/suspend` }) },
  'POST /sessions/:id/resume': { kind: 'command', notFound: 'session_not_found', call: (f) => ({ method: 'POST', path: `/sessions/${f.session}/resume` }) },
  'POST /sessions/:id/complete': { kind: 'command', notFound: 'session_not_found', call: (f) => ({ method: 'POST', path: `/sessions/${f.session}/complete` }) },
  'POST /sessions/:id/plan-decision': {
    kind: 'command',
    notFound: 'session_not_found',
    call: (f) => ({ method: 'POST', path: `/sessions/${f.session}/plan-decision`, body: { approval_request_id: f.approval, decision: 'approve' } }),
  },
  'POST /plans': {
    kind: 'command',
    notFound: 'session_not_found',
    // A plan for alice's session (without session_id a plan starts the caller's own session).
    call: (f) => ({ method: 'POST', path: '/plans', body: { session_id: f.session, goal: 'another plan', subtasks: threeSubtasks() } }),
  },
  'POST /plans/:id/revisions': { kind: 'command', notFound: 'plan_not_found', call: (f) => ({ method: 'POST', path: `/plans/${f.plan}/revisions`, body: { subtasks: threeSubtasks() } }) },
  'POST /plans/:id/decision': {
    kind: 'command',
    notFound: 'plan_not_found',
    call: (f) => ({ method: 'POST', path: `/plans/${f.plan}/decision`, body: { approval_request_id: f.approval, decision: 'approve' } }),
  },
  'POST /plans/:id/cancel': { kind: 'command', notFound: 'plan_not_found', call: (f) => ({ method: 'POST', path: `/plans/${f.plan}/cancel` }) },
  'PUT /sessions/:id/shares/:principal': {
    kind: 'own',
    notFound: 'session_not_found',
    call: (f) => ({ method: 'PUT', path: `/sessions/${f.session}/shares/erin`, body: { role: 'viewer' } }),
  },
  'DELETE /sessions/:id/shares/:principal': { kind: 'own', notFound: 'session_not_found', call: (f) => ({ method: 'DELETE', path: `/sessions/${f.session}/shares/vic` }) },
  'GET /sessions/:id/tool-policy': { kind: 'read', notFound: 'session_not_found', call: (f) => ({ method: 'GET', path: `/sessions/${f.session}/tool-policy` }) },
  'PUT /sessions/:id/tool-policy': { kind: 'command', notFound: 'session_not_found', call: (f) => ({ method: 'PUT', path: `/sessions/${f.session}/tool-policy`, body: { auto_approve: ['write_file'] } }) },
  'PATCH /sessions/:id/tool-policy': { kind: 'command', notFound: 'session_not_found', call: (f) => ({ method: 'PATCH', path: `/sessions/${f.session}/tool-policy`, body: { commands: { deny: ['rm'] } } }) },
  'POST /sessions/:id/tool-calls/:call_id/result': {
    kind: 'command',
    notFound: 'session_not_found',
    call: (f) => ({ method: 'POST', path: `/sessions/${f.session}/tool-calls/${f.call}/result`, body: { result: { content: 'x' } } }),
  },
  'POST /sessions/:id/tool-calls/:call_id/decision': {
    kind: 'command',
    notFound: 'session_not_found',
    call: (f) => ({ method: 'POST', path: `/sessions/${f.session}/tool-calls/${f.call}/decision`, body: { decision: 'reject' } }),
  },
  'GET /runs/:id': { kind: 'read', notFound: 'run_not_found', call: (f) => ({ method: 'GET', path: `/runs/${f.run}?wait_for=${f.position}` }) },
};

describe('access on every route', () => {
  let server: TestServer;
  let anonymous: Client;
  // The executor's part (no executor runs here): agent runs started on the same log through another connection.
  let side: SqliteEventStore;
  let drive: ReturnType<typeof runDriver>;
  let sideCommands: ReturnType<typeof createCommands>;
  const as: Record<'alice' | 'vic' | 'carl' | 'mallory', Client> = {} as never;

  beforeAll(async () => {
    server = await startServer({ AUTH_SECRET: SECRET, ROLES: 'edge,projector' });
    anonymous = client(server.api);
    side = openSqliteEventStore(join(server.dir, 'planline.db'));
    sideCommands = createCommands(createCommandHandler(side));
    drive = runDriver(sideCommands);
    for (const who of ['alice', 'vic', 'carl', 'mallory'] as const) {
      as[who] = client(server.api, { headers: { authorization: `Bearer ${hs256(SECRET, validClaims(who))}` } });
    }
  });
  afterAll(async () => {
    await side?.close();
    await server?.dispose();
    expect(server?.logs.filter((line) => line.level === 'error') ?? []).toEqual([]);
  });

  /** alice's session with a plan under review, shared with vic (viewer) and carl (collaborator). */
  async function fixture(): Promise<Fixture> {
    const plan = await draftPlan(as.alice);
    for (const [who, role] of [['vic', 'viewer'], ['carl', 'collaborator']]) {
      const shared = await as.alice.send('PUT', `/sessions/${plan.session_id}/shares/${who}`, { role });
      expect(shared.status, shared.text).toBe(200);
    }
    const run = `run-${randomUUID()}`;
    await sideCommands.startRun({ run_id: run, session_id: plan.session_id, kind: 'atomic', agent: 'coder', task: 'a task' }, { command_id: randomUUID() });
    const [call] = await drive.askTools(run, 1, [{ tool: 'write_file', args: { path: 'a.ts', content: '' }, approval: true }]);
    const shared = (await as.alice.send<{ position: number }>('PUT', `/sessions/${plan.session_id}/shares/carl`, { role: 'collaborator' })).body.position;
    const position = Math.max(shared, await side.headPosition());
    return { session: plan.session_id, plan: plan.plan_id, approval: plan.approval_request_id, run, call: call!, position };
  }

  const send = (c: Client, call: Call): Promise<Reply> => c.send(call.method, call.path, call.body);

  test('every route the server has is in the table here and has a rule in access.ts (and no rule is stale)', () => {
    const served = [...new Set(server.planline.routes.map((r) => ruleKey(r.method, r.path)))].sort();
    expect(served.filter((key) => !(key in cases)), 'routes without an access test: add a case here and a rule in src/http/access.ts').toEqual([]);
    expect(served.filter((key) => !(key in ACCESS_RULES)), 'routes without an access rule').toEqual([]);
    expect(Object.keys(ACCESS_RULES).filter((key) => !served.includes(key)), 'rules for routes that do not exist').toEqual([]);
    expect(Object.keys(cases).filter((key) => !served.includes(key)), 'cases for routes that do not exist').toEqual([]);
  });

  test.each(Object.keys(cases))('%s', async (key) => {
    const { kind, call, notFound } = cases[key]!;
    const f = await fixture();
    const request = call(f);

    if (kind === 'open') {
      expect((await send(anonymous, request)).status).not.toBe(401);
      return;
    }
    // Without a token: 401, whatever the route.
    const noToken = await send(anonymous, request);
    expectProblem(noToken, 401, 'unauthorized');
    expect(noToken.headers.get('www-authenticate')).toBe('Bearer realm="planline"');

    if (kind === 'socket') {
      expectProblem(await send(as.alice, request), 426, 'upgrade_required');
      return;
    }
    if (kind === 'principal') {
      const reply = await send(as.mallory, request);
      expect(reply.status, reply.text).toBeLessThan(300);
      return;
    }
    if (kind === 'list') {
      const mine = await send(as.alice, request);
      expect(mine.status, mine.text).toBe(200);
      expect(mine.text).toContain(f.session);
      expect((await send(as.vic, request)).text).toContain(f.session);
      const strangers = await send(as.mallory, request);
      expect(strangers.status, strangers.text).toBe(200);
      expect(strangers.text).not.toContain(f.session);
      return;
    }

    // A stranger: the session and everything under it does not exist. Same answer as a missing id.
    const stranger = await send(as.mallory, request);
    const problem = expectProblem(stranger, 404, notFound!);
    expect(problem.detail).not.toMatch(/alice|vic|carl|forbidden/);

    const viewer = await send(as.vic, request);
    if (kind === 'read') {
      expect(viewer.status, viewer.text).toBe(200);
      for (const who of ['carl', 'alice'] as const) expect((await send(as[who], request)).status).toBe(200);
      return;
    }
    expectProblem(viewer, 403, 'forbidden');

    const collaborator = await send(as.carl, request);
    if (kind === 'own') {
      expectProblem(collaborator, 403, 'forbidden');
    } else {
      // Allowed: whatever the state machine then says (200, 201, or a 409 for an illegal transition).
      expect([401, 403, 404], `${key} as collaborator: ${collaborator.text}`).not.toContain(collaborator.status);
      expect(collaborator.status).toBeLessThan(500);
    }
    const owner = await send(as.alice, request);
    expect([401, 403, 404], `${key} as owner: ${owner.text}`).not.toContain(owner.status);
    expect(owner.status).toBeLessThan(500);
  });
});
