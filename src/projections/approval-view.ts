// The approvals read model: one document per approval request, in the shape the IDE's
// pending-approvals call already parses (DESIGN §6), plus its status as it is decided or closed.
import type { PlanEvent } from '../events/catalog.js';
import type { StoredEvent } from '../events/store.js';
import type { ProjectionTx } from './projection.js';
import { planSummary, type PlanDoc } from './plan-view.js';
import { SESSIONS, type SessionDoc } from './session-view.js';
import { readersOf } from '../commands/access.js';
import { contentsOf } from './session-contents.js';

import { APPROVALS } from './collections.js';
export { APPROVALS };

export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'modification_requested' | 'expired' | 'closed';

export interface ApprovalDoc {
  request_id: string;
  approval_request_id: string;
  call_id: string;
  /** A plan's approval, or a tool call's (an agent's call that needs the user's approval). */
  request_type: 'plan' | 'tool';
  session_id: string;
  /** The plan it belongs to ('' for a tool call of an atomic task). */
  plan_id: string;
  /** For tool calls: the run, the tool and its arguments. */
  run_id?: string;
  tool_name?: string;
  arguments?: Record<string, unknown>;
  revision: number;
  status: ApprovalStatus;
  subject: string;
  reason: string;
  details: { plan_id: string; plan_summary: ReturnType<typeof planSummary> } | { run_id: string; tool_name: string; arguments: Record<string, unknown> };
  created_at: string;
  /** Plans only: a tool call waits until TOOL_CALL_TIMEOUT_S, which fails its run. */
  deadline?: string;
  decided_at?: string;
  decision?: string;
  decided_by?: string;
  feedback?: string;
  /** Why a request closed without a decision (superseded, cancelled). */
  closed_reason?: string;
  created_position: number;
  /** Who may list it: its session's owner and shares (kept current as shares change). */
  readers: string[];
  [key: string]: unknown;
}

/** The approval request an event closes or decides, with the change it makes. */
function changeOf(event: PlanEvent): { id: string | undefined; change: Partial<ApprovalDoc> } | undefined {
  switch (event.type) {
    case 'PlanApproved':
      return { id: event.data.approval_request_id, change: { status: 'approved', decision: 'approve', decided_by: event.data.decided_by } };
    case 'PlanRejected':
      return {
        id: event.data.approval_request_id,
        change: { status: 'rejected', decision: 'reject', decided_by: 'user', ...(event.data.feedback ? { feedback: event.data.feedback } : {}) },
      };
    case 'PlanModificationRequested':
      return { id: event.data.approval_request_id, change: { status: 'modification_requested', decision: 'modify', decided_by: 'user', feedback: event.data.feedback } };
    case 'PlanApprovalExpired':
      return { id: event.data.approval_request_id, change: { status: 'expired' } };
    case 'PlanSuperseded':
      return { id: event.data.approval_request_id, change: { status: 'closed', closed_reason: 'superseded' } };
    default:
      return undefined;
  }
}

export async function applyToApprovalView(event: PlanEvent, stored: StoredEvent, plan: PlanDoc, tx: ProjectionTx): Promise<void> {
  if (event.type === 'PlanApprovalRequested') {
    const session = (await tx.get(SESSIONS, plan.session_id)) as SessionDoc | undefined;
    tx.put(APPROVALS, event.data.approval_request_id, {
      request_id: event.data.approval_request_id,
      approval_request_id: event.data.approval_request_id,
      call_id: event.data.approval_request_id,
      request_type: 'plan',
      session_id: plan.session_id,
      plan_id: plan.plan_id,
      revision: event.data.revision,
      status: 'pending',
      subject: plan.goal,
      reason: plan.revision > 1 ? `revision ${plan.revision} of the plan needs approval` : 'the plan needs approval before it runs',
      details: { plan_id: plan.plan_id, plan_summary: planSummary(plan) },
      created_at: stored.metadata.at,
      deadline: event.data.deadline,
      created_position: stored.position,
      readers: session ? readersOf(session) : [],
    } satisfies ApprovalDoc);
    return;
  }
  // Cancelling a plan closes whatever request of it is still pending.
  const target = event.type === 'PlanCancelled' ? { id: plan.approval?.approval_request_id, change: { status: 'closed' as const, closed_reason: 'cancelled' } } : changeOf(event);
  if (!target?.id) return;
  const doc = (await tx.get(APPROVALS, target.id)) as ApprovalDoc | undefined;
  if (!doc || doc.status !== 'pending') return;
  tx.put(APPROVALS, target.id, { ...doc, ...target.change, decided_at: stored.metadata.at });
}

/** The session's shares changed: its approval requests are listed for the new set of readers. */
export async function followSharesInApprovals(session: SessionDoc, tx: ProjectionTx): Promise<void> {
  const readers = readersOf(session);
  for (const id of (await contentsOf(session.session_id, tx)).approval_ids) {
    const doc = (await tx.get(APPROVALS, id)) as ApprovalDoc | undefined;
    if (doc) tx.put(APPROVALS, id, { ...doc, readers });
  }
}
