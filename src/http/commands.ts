// Command routes: validate at the edge, run the use case, answer with the ids it created and the log
// position it reached (`?wait_for=` that position on a query to read your own write). Starting,
// renaming and deleting a session are in sessions.ts (they answer with the session as read).
import { Hono } from 'hono';
import type { Commands } from '../commands/service.js';
import type { PlanState } from '../commands/plan.js';
import { planFsmState } from '../commands/plan.js';
import { commandMeta, jsonBody } from './request.js';
import {
  createPlanBody,
  decisionBody,
  flattenDecision,
  reasonBody,
  revisePlanBody,
  strategyFromMetadata,
  userMessageBody,
} from './schemas.js';
import type { Metrics } from './metrics.js';
import { commandCounter } from './counted.js';

/**
 * The decision recorded on the approval a DecidePlan addressed. Usually the one asked for; a retry
 * whose Idempotency-Key was first used with another decision gets the one actually taken.
 */
function recordedDecision(plan: PlanState, approvalRequestId: string, asked: string): string {
  return plan.approvals.find((a) => a.approval_request_id === approvalRequestId)?.decision ?? asked;
}

/** What a command knows about the plan it touched (the read model may not have it yet). */
function planOutcome(plan: PlanState) {
  const approval = plan.approvals.at(-1);
  return {
    status: plan.status,
    fsm_state: planFsmState(plan.status),
    revision: plan.revision,
    approval: approval
      ? {
          approval_request_id: approval.approval_request_id,
          status: approval.status,
          deadline: approval.deadline,
          ...(approval.decision ? { decision: approval.decision } : {}),
          ...(approval.feedback ? { feedback: approval.feedback } : {}),
        }
      : null,
  };
}

export function commandRoutes(commands: Commands, metrics: Metrics) {
  const app = new Hono();
  const counted = commandCounter(metrics);

  app.post('/sessions/:id/messages', async (c) => {
    const body = await jsonBody(c, userMessageBody, strategyFromMetadata);
    const done = await counted('ReceiveUserMessage', () => commands.sendUserMessage(c.req.param('id'), body, commandMeta(c)));
    return c.json(
      {
        session_id: done.session_id,
        message_id: done.message_id,
        superseded_plan_id: done.superseded_plan_id ?? null,
        // The session was busy and the message waits its turn (multitask strategy enqueue).
        queued: done.queued,
        position: done.position,
      },
      // A retry with the same Idempotency-Key created nothing new: 200, as for POST /plans and /sessions.
      done.changed ? 201 : 200,
    );
  });

  for (const action of ['suspend', 'resume', 'complete'] as const) {
    app.post(`/sessions/:id/${action}`, async (c) => {
      const body = await jsonBody(c, reasonBody);
      const id = c.req.param('id');
      const meta = commandMeta(c);
      const done = await counted(`${action[0]!.toUpperCase()}${action.slice(1)}Session`, () =>
        action === 'suspend'
          ? commands.suspendSession(id, body, meta)
          : action === 'resume'
            ? commands.resumeSession(id, meta)
            : commands.completeSession(id, body, meta),
      );
      const state = await commands.sessionState(id);
      return c.json({ session_id: id, status: state.session.status, fsm_state: state.fsm_state, changed: done.changed, position: done.position });
    });
  }

  app.post('/sessions/:id/plan-decision', async (c) => {
    const body = await jsonBody(c, decisionBody, flattenDecision);
    const done = await counted('DecidePlan', () => commands.decideSessionPlan(c.req.param('id'), body, commandMeta(c)));
    return c.json({ plan_id: done.plan_id, decision: recordedDecision(done.plan, body.approval_request_id, body.decision), changed: done.changed, ...planOutcome(done.plan), position: done.position });
  });

  app.post('/plans', async (c) => {
    const body = await jsonBody(c, createPlanBody);
    const done = await counted('CreatePlan', () => commands.createPlan(body, commandMeta(c)));
    return c.json(
      {
        plan_id: done.plan_id,
        session_id: done.session_id,
        approval_request_id: done.approval_request_id,
        superseded_plan_id: done.superseded_plan_id ?? null,
        ...planOutcome(done.plan),
        position: done.position,
      },
      done.changed ? 201 : 200,
    );
  });

  app.post('/plans/:id/revisions', async (c) => {
    const body = await jsonBody(c, revisePlanBody);
    const done = await counted('DraftPlan', () => commands.revisePlan(c.req.param('id'), body, commandMeta(c)));
    return c.json(
      { plan_id: done.plan_id, approval_request_id: done.approval_request_id, ...planOutcome(done.plan), position: done.position },
      done.changed ? 201 : 200,
    );
  });

  app.post('/plans/:id/decision', async (c) => {
    const body = await jsonBody(c, decisionBody, flattenDecision);
    const done = await counted('DecidePlan', () => commands.decidePlan(c.req.param('id'), body, commandMeta(c)));
    return c.json({ plan_id: done.plan_id, decision: recordedDecision(done.plan, body.approval_request_id, body.decision), changed: done.changed, ...planOutcome(done.plan), position: done.position });
  });

  app.post('/plans/:id/cancel', async (c) => {
    const body = await jsonBody(c, reasonBody);
    const done = await counted('CancelPlan', () => commands.cancelPlan(c.req.param('id'), body, commandMeta(c)));
    return c.json({ plan_id: done.plan_id, changed: done.changed, ...planOutcome(done.plan), position: done.position });
  });

  return app;
}
