// Restarts and shutdown, end to end: the log is the truth, so a new server on the same SQLite file
// shows the same plans, sessions and approvals (embedded read models rebuilt from the log; Redis read
// models resumed from their checkpoint), deadlines still fire after a restart, and a close() during a
// burst of commands loses nothing it acknowledged.
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openSqliteEventStore } from '../../src/events/sqlite-store.js';
import { createCommandHandler } from '../../src/commands/handle.js';
import { createCommands } from '../../src/commands/service.js';
import { afterEach, describe, expect, test } from 'vitest';
import { client, flushRedisKeys, startServer, type Client, type TestServer } from '../support/server.js';
import { REDIS_URL, serviceAvailable, uniquePrefix } from '../support/services.js';
import { threeSubtasks, decide, DECISION_EVENTS, draftPlan, eventually, read, streamEvents } from './api.js';

const redisUp = await serviceAvailable('redis', REDIS_URL);
const modes = [
  { label: 'embedded', env: {} as Record<string, string>, skip: false },
  { label: 'redis', env: { REDIS_URL } as Record<string, string>, skip: !redisUp },
];

// Everything a test started, cleaned up even when it fails half-way.
const started: TestServer[] = [];
const dirs: string[] = [];
const prefixes: string[] = [];
afterEach(async () => {
  for (const server of started.splice(0)) await server.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  for (const prefix of prefixes.splice(0)) await flushRedisKeys(REDIS_URL, prefix);
});

async function start(env: Record<string, string>, options: { dir?: string; viewsKeyPrefix?: string } = {}): Promise<{ server: TestServer; c: Client }> {
  const server = await startServer(env, options);
  started.push(server);
  if (!options.dir) dirs.push(server.dir);
  return { server, c: client(server.api) };
}

for (const mode of modes) {
  describe.skipIf(mode.skip)(`${mode.label}: restart`, () => {
    test('a new server on the same log shows the same plans, sessions and approvals', async () => {
      const prefix = uniquePrefix(`e2e-restart-${randomUUID().slice(0, 8)}`);
      prefixes.push(prefix);
      const first = await start(mode.env, { viewsKeyPrefix: prefix });
      let c = first.c;

      const planKey = `restart-plan-${randomUUID()}`;
      const decisionKey = `restart-decision-${randomUUID()}`;
      const keyedBody = { goal: `Keyed ${planKey}` };
      const approvedPlan = await draftPlan(c, keyedBody, { 'Idempotency-Key': planKey });
      const approved = await decide(c, approvedPlan.plan_id, approvedPlan.approval_request_id, 'approve', {}, { 'Idempotency-Key': decisionKey });
      expect(approved.status).toBe(200);
      const pendingPlan = await draftPlan(c);
      const modifiedPlan = await draftPlan(c);
      const modified = await decide(c, modifiedPlan.plan_id, modifiedPlan.approval_request_id, 'modify', { feedback: 'smaller' });
      const head = Math.max(approved.body.position, pendingPlan.position, modified.body.position);

      const paths = [
        `/plans/${approvedPlan.plan_id}`,
        `/plans/${pendingPlan.plan_id}`,
        `/plans/${modifiedPlan.plan_id}`,
        `/sessions/${approvedPlan.session_id}`,
        `/sessions/${pendingPlan.session_id}`,
        `/sessions/${pendingPlan.session_id}/pending-approvals`,
        `/sessions/${approvedPlan.session_id}/history`,
        `/sessions/${approvedPlan.session_id}/events`,
        `/sessions/${modifiedPlan.session_id}/history`,
        '/sessions',
        '/approvals',
        '/approvals?status=pending',
      ];
      const snapshot = async (client: Client) => {
        const bodies: Record<string, { body: unknown; etag: string | null }> = {};
        for (const path of paths) {
          const reply = await read(client, path, head);
          bodies[path] = { body: reply.body, etag: reply.headers.get('etag') };
        }
        return bodies;
      };
      const before = await snapshot(c);
      expect((before[`/plans/${approvedPlan.plan_id}`]!.body as any).status).toBe('approved');
      expect((before[`/sessions/${pendingPlan.session_id}/pending-approvals`]!.body as any).count).toBe(1);

      await first.server.close();
      expect((await fetch(`${first.server.api}/health`).catch((error: unknown) => error)) instanceof Error).toBe(true);

      const second = await start(mode.env, { dir: first.server.dir, viewsKeyPrefix: prefix });
      c = second.c;
      expect(second.server.url).not.toBe(first.server.url);
      const after = await snapshot(c);
      expect(after).toEqual(before);

      // Read models persist (Redis, or the SQLite file beside an embedded log): the new projector
      // resumes from their checkpoint instead of rebuilding.
      const rebuilt = second.server.logs.some((line) => /building version/.test(String(line.msg)));
      expect(rebuilt).toBe(false);

      // The restarted server carries on: the pending plan can still be decided, and the log continues.
      const late = await decide(c, pendingPlan.plan_id, pendingPlan.approval_request_id, 'reject', { feedback: 'after restart' });
      expect(late.status, late.text).toBe(200);
      expect(late.body.position).toBeGreaterThan(head);
      expect((await read(c, `/plans/${pendingPlan.plan_id}`, late.body.position)).body).toMatchObject({ status: 'rejected', approval: { feedback: 'after restart' } });
      // Idempotency survives too: retries of the first server's keyed commands are recognised by the second.
      const headNow = late.body.position;
      const retriedPlan = await c.post('/plans', { goal: keyedBody.goal, subtasks: threeSubtasks() }, { headers: { 'Idempotency-Key': planKey } });
      expect(retriedPlan.status, retriedPlan.text).toBe(200);
      expect(retriedPlan.body).toMatchObject({ plan_id: approvedPlan.plan_id, session_id: approvedPlan.session_id, approval_request_id: approvedPlan.approval_request_id });
      const retried = await decide(c, approvedPlan.plan_id, approvedPlan.approval_request_id, 'approve', {}, { 'Idempotency-Key': decisionKey });
      expect(retried.status).toBe(200);
      expect(retried.body).toMatchObject({ changed: false, position: approved.body.position });
      expect((await c.get('/ready')).body.checks.event_store.detail).toBe(headNow);
    });

    test('right after a restart, a write acknowledged before it is never read as 404: the read waits, or says 503 not_caught_up', async () => {
      const prefix = uniquePrefix(`e2e-restart-gate-${randomUUID().slice(0, 8)}`);
      prefixes.push(prefix);
      const first = await start(mode.env, { viewsKeyPrefix: prefix });
      await Promise.all(Array.from({ length: 5 }, () => draftPlan(first.c)));
      await first.server.close();
      // Thousands more events written while the server was down (by another process, say): the new
      // server must project them (embedded: every one of them) before its reads can be trusted. The
      // plans read back are the last ones written, so the newest end of the log.
      const store = openSqliteEventStore(join(first.server.dir, 'planline.db'));
      let acknowledged: Array<{ plan_id: string }> = [];
      try {
        const commands = createCommands(createCommandHandler(store));
        for (let batch = 0; batch < 25; batch++) {
          acknowledged = await Promise.all(
            Array.from({ length: 40 }, (_, i) =>
              commands.createPlan({ goal: `offline ${batch}-${i}`, subtasks: [{ description: 'a' }, { description: 'b', dependencies: [0] }] }, { command_id: randomUUID() }),
            ),
          );
        }
      } finally {
        await store.close();
      }
      const second = await start(mode.env, { dir: first.server.dir, viewsKeyPrefix: prefix });
      const replies = await Promise.all(acknowledged.map((plan) => second.c.get(`/plans/${plan.plan_id}`)));
      for (const reply of replies) {
        if (reply.status === 503) {
          expect(reply.body.code).toBe('not_caught_up');
          expect(reply.headers.get('retry-after')).toBe('1');
        } else expect(reply.status, reply.text).toBe(200);
      }
      const again = await eventually(
        () => Promise.all(acknowledged.map((plan) => second.c.get(`/plans/${plan.plan_id}`))),
        (all) => all.every((reply) => reply.status === 200),
        10_000,
        'every plan readable',
      );
      expect(again).toHaveLength(acknowledged.length);
    });

    test('a deadline set before a restart still fires after it (from the log, not the new config)', async () => {
      const prefix = uniquePrefix(`e2e-deadline-${randomUUID().slice(0, 8)}`);
      prefixes.push(prefix);
      // The approval timer is the executor's job.
      const first = await start({ ...mode.env, PLAN_APPROVAL_TIMEOUT_S: '2', ROLES: 'edge,projector,executor' }, { viewsKeyPrefix: prefix });
      const plan = await draftPlan(first.c);
      const deadline = Date.parse(plan.approval.deadline as string);
      await first.server.close();
      expect(Date.now(), 'the restart must happen before the deadline').toBeLessThan(deadline - 500);

      // The new server's own timeout is the default 300 s: the deadline that counts is the recorded one.
      const second = await start({ ...mode.env, ROLES: 'edge,projector,executor' }, { dir: first.server.dir, viewsKeyPrefix: prefix });
      const c = second.c;
      expect((await read(c, `/plans/${plan.plan_id}`, plan.position)).body.status).toBe('awaiting_approval');
      const expired = await eventually(() => c.get(`/plans/${plan.plan_id}`), (r) => r.body?.status === 'expired', 6_000, 'the plan to expire after the restart');
      expect(expired.body.approval).toMatchObject({ approval_request_id: plan.approval_request_id, status: 'expired' });
      const decisions = (await streamEvents(c, `plan-${plan.plan_id}`)).filter((e) => DECISION_EVENTS.includes(e.type));
      expect(decisions.map((e) => e.type)).toEqual(['PlanApprovalExpired']);
      expect(Date.parse(decisions[0]!.metadata.at)).toBeGreaterThanOrEqual(deadline);
      expect((await read(c, `/sessions/${plan.session_id}/pending-approvals`, decisions[0]!.position)).body.count).toBe(0);
    });
  });
}

describe('graceful drain', () => {
  test('close() during a burst: every request is answered or refused, and nothing acknowledged is lost', async () => {
    const first = await start({});
    const c = first.c;
    // Keep-alive connections already open (as an IDE's would be), so the burst rides accepted connections.
    await Promise.all(Array.from({ length: 40 }, () => c.get('/health')));
    const burst = 120;
    let closeCalledAt = 0;
    type Outcome = { kind: 'response'; status: number; body: any; at: number } | { kind: 'refused'; error: string; at: number };
    const outcomes: Promise<Outcome>[] = [];
    for (let i = 0; i < burst; i++) {
      // A mix: plans in new sessions (three streams each) and plain sessions.
      const request =
        i % 2 === 0
          ? c.post('/plans', { goal: `burst ${i}`, subtasks: [{ description: 'a' }, { description: 'b', dependencies: [0] }] }, { headers: { 'Idempotency-Key': `burst-${i}-${randomUUID()}` } })
          : c.post('/sessions', { name: `burst ${i}` });
      outcomes.push(
        request.then(
          (reply) => ({ kind: 'response' as const, status: reply.status, body: reply.body, at: performance.now() }),
          (error: unknown) => ({ kind: 'refused' as const, error: describeFetchError(error), at: performance.now() }),
        ),
      );
    }
    // Close as soon as the first answers arrive, with most of the burst still in flight.
    await Promise.race(outcomes);
    closeCalledAt = performance.now();
    const closing = first.server.close().then(() => performance.now() - closeCalledAt);
    const results = await Promise.all(outcomes);
    // Prompt: close() waits for the requests in flight, not for idle keep-alive connections to time out.
    expect(await closing).toBeLessThan(2_000);

    const responses = results.filter((r): r is Extract<Outcome, { kind: 'response' }> => r.kind === 'response');
    const refused = results.filter((r): r is Extract<Outcome, { kind: 'refused' }> => r.kind === 'refused');
    // Every answer is a complete success: no 500 or half-written reply from a server shutting down.
    for (const reply of responses) expect(reply.status, JSON.stringify(reply.body)).toBe(201);
    for (const r of refused) expect(r.error).toMatch(/ECONNREFUSED|ECONNRESET|EPIPE|UND_ERR|other side closed|socket/i);
    expect(responses.length + refused.length).toBe(burst);
    // The close really overlapped the burst: some requests were still in flight when it was called.
    const inFlightAtClose = results.filter((r) => r.at > closeCalledAt).length;
    expect(inFlightAtClose, 'requests still in flight at close()').toBeGreaterThan(0);
    expect(first.server.logs.filter((line) => line.level === 'error')).toEqual([]);

    // Reopen the log: every acknowledged command is there, with all of its events.
    const second = await start({}, { dir: first.server.dir });
    const c2 = second.c;
    for (const reply of responses) {
      if (reply.body.plan_id) {
        expect((await streamEvents(c2, `plan-${reply.body.plan_id}`)).map((e) => e.type)).toEqual(['PlanDrafted', 'PlanApprovalRequested']);
        expect((await streamEvents(c2, `session-${reply.body.session_id}`)).map((e) => e.type)).toEqual(['SessionStarted', 'TaskClassified']);
      } else {
        expect((await streamEvents(c2, `session-${reply.body.session_id}`)).map((e) => e.type)).toEqual(['SessionStarted']);
      }
    }
    const head = (await c2.get('/ready')).body?.checks?.event_store?.detail;
    const listed = await read(c2, '/sessions?limit=500', typeof head === 'number' ? head : 0);
    const listedIds = new Set(listed.body.sessions.map((s: any) => s.session_id));
    for (const reply of responses) expect(listedIds.has(reply.body.session_id)).toBe(true);
    console.info(`[drain] ${responses.length} acknowledged, ${refused.length} refused, ${inFlightAtClose} finished after close() was called`);
  });
});

function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  return `${(error as Error)?.message ?? String(error)} ${cause?.code ?? ''} ${cause?.message ?? ''}`;
}
