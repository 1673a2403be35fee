// Approval deadlines (seed rule 1), end to end: a server started with PLAN_APPROVAL_TIMEOUT_S=1 expires
// (or, with PLAN_APPROVAL_TIMEOUT_ACTION=approve, approves) a plan nobody decided, on its own, shortly
// after the deadline and not before. Run with embedded and with Redis read models (the timer reads them).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { client, startServer, type Client, type TestServer } from '../support/server.js';
import { REDIS_URL, serviceAvailable } from '../support/services.js';
import { decide, DECISION_EVENTS, draftPlan, eventually, expectProblem, read, streamEvents } from './api.js';

const redisUp = await serviceAvailable('redis', REDIS_URL);
const modes = [
  { label: 'embedded', env: {}, skip: false },
  { label: 'redis', env: { REDIS_URL }, skip: !redisUp },
];

/** GET /plans/:id until its status is `status` (bounded), returning the plan. */
async function planBecomes(c: Client, planId: string, status: string, timeoutMs = 5_000) {
  return (await eventually(() => c.get(`/plans/${planId}`), (r) => r.status === 200 && r.body.status === status, timeoutMs, `plan ${planId} to be ${status}`)).body;
}

for (const mode of modes) {
  describe.skipIf(mode.skip)(`${mode.label}: approval deadlines`, () => {
    describe('PLAN_APPROVAL_TIMEOUT_S=1 (expire)', () => {
      let server: TestServer;
      let c: Client;
      beforeAll(async () => {
        // The approval timer is the executor's; without workers an approved plan's execution starts and waits.
        server = await startServer({ ...mode.env, PLAN_APPROVAL_TIMEOUT_S: '1', ROLES: 'edge,projector,executor' });
        c = client(server.api);
      });
      afterAll(() => server.dispose());

      test('an undecided plan expires after its deadline and its approval closes; a decided one is left alone', async () => {
        const created = Date.now();
        const open = await draftPlan(c);
        const decided = await draftPlan(c);
        const approved = await decide(c, decided.plan_id, decided.approval_request_id, 'approve');
        expect(approved.status).toBe(200);

        const early = await read(c, `/plans/${open.plan_id}`, open.position);
        const deadline = Date.parse(early.body.approval.deadline);
        expect(deadline - created).toBeGreaterThanOrEqual(900);
        expect(deadline - created).toBeLessThanOrEqual(3_000);
        // Not before its time.
        if (Date.now() < deadline - 200) expect(early.body.status).toBe('awaiting_approval');

        const expired = await planBecomes(c, open.plan_id, 'expired');
        expect(Date.now()).toBeGreaterThanOrEqual(deadline);
        expect(expired).toMatchObject({ fsm_state: 'idle', approval: { approval_request_id: open.approval_request_id, status: 'expired' } });
        const events = await streamEvents(c, `plan-${open.plan_id}`);
        const expiry = events.filter((e) => DECISION_EVENTS.includes(e.type));
        expect(expiry.map((e) => e.type)).toEqual(['PlanApprovalExpired']);
        expect(Date.parse(expiry[0]!.metadata.at)).toBeGreaterThanOrEqual(deadline);

        const position = expiry[0]!.position;
        expect((await read(c, `/sessions/${open.session_id}/pending-approvals`, position)).body.count).toBe(0);
        expect((await read(c, `/sessions/${open.session_id}`, position)).body.fsm_state).toBe('idle');
        const closed = await read(c, `/approvals?session_id=${open.session_id}&status=expired`, position);
        expect(closed.body.approvals.map((a: any) => a.approval_request_id)).toEqual([open.approval_request_id]);
        // Too late to decide.
        expectProblem(await decide(c, open.plan_id, open.approval_request_id, 'approve'), 409, 'approval_closed');

        // The plan approved in time stays approved by its user (and executing), with one decision, after its deadline too.
        const decidedDeadline = Date.parse(approved.body.approval.deadline);
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, decidedDeadline + 300 - Date.now())));
        expect((await c.get(`/plans/${decided.plan_id}`)).body).toMatchObject({ status: 'executing', approval: { decided_by: 'user' } });
        expect((await streamEvents(c, `plan-${decided.plan_id}`)).filter((e) => DECISION_EVENTS.includes(e.type)).map((e) => e.type)).toEqual(['PlanApproved']);
      });
    });

    describe('PLAN_APPROVAL_TIMEOUT_ACTION=approve', () => {
      let server: TestServer;
      let c: Client;
      beforeAll(async () => {
        server = await startServer({ ...mode.env, PLAN_APPROVAL_TIMEOUT_S: '1', PLAN_APPROVAL_TIMEOUT_ACTION: 'approve', ROLES: 'edge,projector,executor' });
        c = client(server.api);
      });
      afterAll(() => server.dispose());

      test('an undecided plan is approved by the timeout, and its execution starts', async () => {
        const plan = await draftPlan(c);
        const approved = await planBecomes(c, plan.plan_id, 'executing');
        expect(approved).toMatchObject({ fsm_state: 'plan_execution', approval: { status: 'approved', decision: 'approve', decided_by: 'timeout' } });
        const events = await streamEvents(c, `plan-${plan.plan_id}`);
        const decisions = events.filter((e) => DECISION_EVENTS.includes(e.type));
        expect(decisions.map((e) => [e.type, e.data.decided_by])).toEqual([['PlanApproved', 'timeout']]);
        const position = decisions[0]!.position;
        const approvals = await read(c, `/approvals?session_id=${plan.session_id}`, position);
        expect(approvals.body.approvals[0]).toMatchObject({ status: 'approved', decision: 'approve', decided_by: 'timeout' });
        expect((await read(c, `/sessions/${plan.session_id}`, position)).body.fsm_state).toBe('plan_execution');
        expect((await read(c, `/sessions/${plan.session_id}/pending-approvals`, position)).body.count).toBe(0);
        // The user's same decision afterwards is a no-op, a different one a conflict.
        expect((await decide(c, plan.plan_id, plan.approval_request_id, 'approve')).body.changed).toBe(false);
        expectProblem(await decide(c, plan.plan_id, plan.approval_request_id, 'reject'), 409, 'already_decided');
      });
    });
  });
}
