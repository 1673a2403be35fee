// The snapshot frame (DESIGN §5): where a session stands, for a socket that starts without history (a
// first connect) or cannot have it (a resync). Built from the feed projection's own documents, so its
// `offset` is exactly the feed head it describes: the frames after it continue the story.
import type { ViewStore } from '../projections/views.js';
import { planSummary } from '../projections/plan-view.js';
import { FEED_PLANS, FEED_SESSIONS, type FeedPlanDoc, type FeedSessionDoc } from '../projections/feed-projection.js';
import { withoutNulls } from '../projections/feed.js';

/** A frame outside the numbered feed: snapshot, resync, pong, error. */
export type ControlFrame = { type: string; content: string; [key: string]: unknown };

export interface Snapshot {
  /** The feed head the snapshot describes: resume after it. */
  offset: number;
  frame: ControlFrame;
}

/** The pending approval as the IDE's pending-approvals call returns it (DESIGN §6). */
function pendingApproval(plan: FeedPlanDoc) {
  const approval = plan.approval;
  if (!approval || approval.status !== 'pending') return [];
  const summary = planSummary(plan);
  return [
    {
      request_id: approval.approval_request_id,
      approval_request_id: approval.approval_request_id,
      request_type: 'plan',
      subject: plan.goal,
      details: { plan_id: plan.plan_id, plan_summary: summary },
      reason: plan.revision > 1 ? `revision ${plan.revision} of the plan needs approval` : 'the plan needs approval before it runs',
      created_at: plan.approval_requested_at ?? plan.updated_at,
      deadline: approval.deadline,
      call_id: approval.approval_request_id,
      tool_name: 'create_plan',
      arguments: summary,
    },
  ];
}

function describe(doc: FeedSessionDoc | undefined, plan: FeedPlanDoc | undefined, pending: number): string {
  if (!doc) return 'Connected; the session has no activity yet';
  const name = doc.session.name ? `"${doc.session.name}"` : doc.session_id;
  const parts = [`Session ${name} is ${doc.session.status}, in ${doc.fsm_state}`];
  if (plan) parts.push(`plan "${plan.goal}" is ${plan.status.replace(/_/g, ' ')} (${plan.progress.done}/${plan.progress.total} done)`);
  if (pending > 0) parts.push('it awaits your approval');
  return `${parts.join('; ')}.`;
}

export async function snapshotOf(views: ViewStore, sessionId: string, epoch: string): Promise<Snapshot> {
  const doc = (await views.get(FEED_SESSIONS, sessionId)) as FeedSessionDoc | undefined;
  const planId = doc?.session.current_plan_id;
  const plan = planId ? ((await views.get(FEED_PLANS, planId)) as FeedPlanDoc | undefined) : undefined;
  const offset = doc?.offset ?? 0;
  const pending = plan ? pendingApproval(plan) : [];
  const fsm_state = doc?.fsm_state ?? 'idle';
  const summary = plan ? planSummary(plan) : undefined;
  const frame: ControlFrame = withoutNulls({
    type: 'snapshot',
    content: describe(doc, plan, pending.length),
    session_id: sessionId,
    offset,
    epoch,
    timestamp: new Date().toISOString(),
    ...(plan ? { plan_id: plan.plan_id, plan_summary: summary } : {}),
    ...(doc ? { agent_type: doc.session.agent_type } : {}),
    metadata: {
      fsm_state,
      session: doc
        ? {
            session_id: sessionId,
            name: doc.session.name,
            mode: doc.session.mode,
            status: doc.session.deleted ? 'deleted' : doc.session.status,
            agent_type: doc.session.agent_type,
            fsm_state,
            current_plan_id: planId,
            current_run_id: doc.session.current_run_id,
            message_count: doc.session.message_count,
          }
        : { session_id: sessionId, fsm_state },
      ...(plan && summary
        ? { plan: { ...summary, approval: plan.approval, progress: plan.progress, fsm_state: plan.fsm_state } }
        : {}),
      pending_approvals: pending,
      // Tool calls waiting for this IDE to run them (as their tool_call frames).
      ...(doc?.open_calls && Object.keys(doc.open_calls).length ? { pending_tool_calls: Object.values(doc.open_calls) } : {}),
    },
  });
  return { offset, frame };
}
