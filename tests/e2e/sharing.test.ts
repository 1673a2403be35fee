// Sharing a session, end to end: the owner shares with a viewer (reads, cannot command) and a
// collaborator (commands too), lists show shared sessions, a revoke takes effect with its response,
// and the history says who did what.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { client, startServer, type Client, type TestServer } from '../support/server.js';
import { hs256, validClaims } from '../support/tokens.js';
import { decide, draftPlan, expectProblem, read, streamEvents } from './api.js';

const SECRET = `sharing-test-key-${randomUUID()}`;

describe('sharing and revoking', () => {
  let server: TestServer;
  const as = {} as Record<'alice' | 'vic' | 'carl' | 'mallory', Client>;
  beforeAll(async () => {
    server = await startServer({ AUTH_SECRET: SECRET });
    for (const who of ['alice', 'vic', 'carl', 'mallory'] as const) {
      as[who] = client(server.api, { headers: { authorization: `Bearer ${hs256(SECRET, validClaims(who))}` } });
    }
  });
  afterAll(async () => {
    await server?.dispose();
    expect(server?.logs.filter((line) => line.level === 'error') ?? []).toEqual([]);
  });

  test('viewer reads but cannot command; collaborator commands; revoke ends access at once; history names who', async () => {
    const plan = await draftPlan(as.alice, { goal: 'Shared parser' });
    const id = plan.session_id;

    // Before sharing, vic is a stranger.
    expectProblem(await as.vic.get(`/sessions/${id}`), 404, 'session_not_found');
    expect((await read(as.vic, '/sessions', plan.position)).body.sessions).toEqual([]);

    const toVic = await as.alice.send<any>('PUT', `/sessions/${id}/shares/vic`, { role: 'viewer' });
    expect(toVic.status, toVic.text).toBe(200);
    expect(toVic.body).toMatchObject({ session_id: id, principal: 'vic', role: 'viewer', changed: true });
    const again = await as.alice.send<any>('PUT', `/sessions/${id}/shares/vic`, { role: 'viewer' });
    expect(again.body.changed).toBe(false);
    const toCarl = await as.alice.send<any>('PUT', `/sessions/${id}/shares/carl`, { role: 'collaborator' });

    // The viewer reads everything under the session and lists it, but may not send a command.
    const seen = await read(as.vic, `/sessions/${id}`, toCarl.body.position);
    expect(seen.body).toMatchObject({ owner: 'alice', shares: [{ principal: 'vic', role: 'viewer' }, { principal: 'carl', role: 'collaborator' }] });
    expect((await read(as.vic, `/plans/${plan.plan_id}`, toCarl.body.position)).body.plan_id).toBe(plan.plan_id);
    expect((await read(as.vic, `/sessions/${id}/pending-approvals`, toCarl.body.position)).body.count).toBe(1);
    expect((await read(as.vic, '/sessions', toCarl.body.position)).body.sessions.map((s: any) => s.session_id)).toEqual([id]);
    expect((await read(as.vic, '/approvals?status=pending', toCarl.body.position)).body.approvals.map((a: any) => a.plan_id)).toEqual([plan.plan_id]);
    expect((await read(as.vic, `/sessions/${id}/shares`, toCarl.body.position)).body).toEqual({
      session_id: id,
      owner: 'alice',
      shares: [{ principal: 'vic', role: 'viewer' }, { principal: 'carl', role: 'collaborator' }],
    });
    const refused = await decide(as.vic, plan.plan_id, plan.approval_request_id, 'approve');
    expectProblem(refused, 403, 'forbidden');
    expectProblem(await as.vic.send('PUT', `/sessions/${id}/shares/mallory`, { role: 'collaborator' }), 403, 'forbidden');
    // …and mallory still sees nothing.
    expect((await read(as.mallory, '/approvals', toCarl.body.position)).body.approvals).toEqual([]);
    expect((await read(as.mallory, `/approvals?session_id=${id}`, toCarl.body.position)).body).toEqual({ approvals: [], next_cursor: null });

    // The collaborator decides; the history records that carl did, and that alice shared.
    const approved = await decide(as.carl, plan.plan_id, plan.approval_request_id, 'approve');
    expect(approved.status, approved.text).toBe(200);
    const history = await read(as.alice, `/sessions/${id}/events?limit=100`, approved.body.position);
    const who = history.body.events.map((e: any) => [e.type, e.principal]);
    expect(who).toContainEqual(['SessionStarted', 'alice']);
    expect(who).toContainEqual(['SessionShared', 'alice']);
    expect(who).toContainEqual(['PlanApproved', 'carl']);
    const planEvents = await streamEvents(as.alice, `plan-${plan.plan_id}`);
    expect(planEvents.find((e) => e.type === 'PlanApproved')!.metadata.principal).toBe('carl');

    // Revoke carl: his very next request is refused (no waiting for the read models), on reads too.
    const revoked = await as.alice.send<any>('DELETE', `/sessions/${id}/shares/carl`);
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.body).toMatchObject({ revoked: true, changed: true });
    expectProblem(await as.carl.post(`/sessions/${id}/messages`, { content: 'still here?' }), 404, 'session_not_found');
    expectProblem(await as.carl.get(`/sessions/${id}`), 404, 'session_not_found');
    expectProblem(await as.carl.get(`/plans/${plan.plan_id}`), 404, 'plan_not_found');
    expectProblem(await as.carl.get(`/streams/plan-${plan.plan_id}`), 404, 'stream_not_found');
    // Revoking again is a no-op; the session has one share left.
    expect((await as.alice.send<any>('DELETE', `/sessions/${id}/shares/carl`)).body.changed).toBe(false);
    expect((await read(as.alice, `/sessions/${id}/shares`, revoked.body.position)).body.shares).toEqual([{ principal: 'vic', role: 'viewer' }]);
    expect((await read(as.carl, '/sessions', revoked.body.position)).body.sessions).toEqual([]);

    // Promote vic to collaborator: vic may now command (the plan runs: suspending is legal).
    expectProblem(await as.vic.post(`/sessions/${id}/suspend`), 403, 'forbidden');
    await as.alice.send('PUT', `/sessions/${id}/shares/vic`, { role: 'collaborator' });
    const suspended = await as.vic.post(`/sessions/${id}/suspend`);
    expect(suspended.status, suspended.text).toBe(200);
    expect(suspended.body).toMatchObject({ status: 'suspended', changed: true });
  });

  test('bad shares are refused and change nothing', async () => {
    const plan = await draftPlan(as.alice);
    const id = plan.session_id;
    expectProblem(await as.alice.send('PUT', `/sessions/${id}/shares/alice`, { role: 'viewer' }), 400, 'invalid_share');
    expectProblem(await as.alice.send('PUT', `/sessions/${id}/shares/vic`, { role: 'admin' }), 400, 'validation_failed');
    expectProblem(await as.alice.send('PUT', `/sessions/${id}/shares/${'x'.repeat(201)}`, { role: 'viewer' }), 400, 'validation_failed');
    expectProblem(await as.mallory.send('PUT', `/sessions/${id}/shares/mallory`, { role: 'collaborator' }), 404, 'session_not_found');
    const events = await streamEvents(as.alice, `session-${id}`);
    expect(events.map((e) => e.type)).not.toContain('SessionShared');
  });

  test('Idempotency-Keys are per principal: the same key from another principal is another command', async () => {
    const key = `k-${randomUUID()}`;
    const mine = await as.alice.post('/sessions', { name: 'mine' }, { headers: { 'idempotency-key': key } });
    const theirs = await as.mallory.post('/sessions', { name: 'mine' }, { headers: { 'idempotency-key': key } });
    expect(mine.status).toBe(201);
    expect(theirs.status).toBe(201);
    expect(theirs.body.session_id).not.toBe(mine.body.session_id);
  });
});
