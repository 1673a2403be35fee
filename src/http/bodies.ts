// Read-model documents → the API's response bodies (DESIGN §6). Internal bookkeeping (positions,
// phases) stays out; names follow the IDE protocol.
import type { ApprovalDoc } from '../projections/approval-view.js';
import { planSummary, subtaskBody, type PlanDoc } from '../projections/plan-view.js';
import type { SessionDoc } from '../projections/session-view.js';
import type { HistoryDoc } from '../projections/views-projection.js';

export function sessionBody(s: SessionDoc) {
  return {
    session_id: s.session_id,
    name: s.name,
    mode: s.mode,
    agent_type: s.agent_type,
    status: s.status,
    fsm_state: s.fsm_state,
    current_plan_id: s.current_plan_id,
    message_count: s.message_count,
    created_at: s.created_at,
    updated_at: s.updated_at,
    revision: s.stream_revision,
  };
}

export function planBody(p: PlanDoc) {
  return {
    ...planSummary(p),
    session_id: p.session_id,
    source: p.source,
    fsm_state: p.fsm_state,
    approval: p.approval,
    progress: p.progress,
    subtasks: p.subtasks.map(subtaskBody),
    created_at: p.created_at,
    updated_at: p.updated_at,
    started_at: p.started_at ?? null,
    finished_at: p.finished_at ?? null,
    duration_seconds: p.duration_seconds ?? null,
    reason: p.reason ?? null,
    stream_revision: p.stream_revision,
  };
}

export function planStatusBody(p: PlanDoc) {
  return {
    plan_id: p.plan_id,
    status: p.status,
    fsm_state: p.fsm_state,
    revision: p.revision,
    progress: p.progress,
    approval_status: p.approval?.status ?? null,
    duration_seconds: p.duration_seconds ?? null,
  };
}

/** The pending-approvals entry the IDE already parses. */
export function pendingApprovalBody(a: ApprovalDoc) {
  return {
    request_id: a.request_id,
    request_type: a.request_type,
    subject: a.subject,
    details: a.details,
    reason: a.reason,
    created_at: a.created_at,
    deadline: a.deadline,
    call_id: a.call_id,
  };
}

export function approvalBody(a: ApprovalDoc) {
  return {
    ...pendingApprovalBody(a),
    approval_request_id: a.approval_request_id,
    session_id: a.session_id,
    plan_id: a.plan_id,
    revision: a.revision,
    status: a.status,
    decision: a.decision ?? null,
    decided_by: a.decided_by ?? null,
    feedback: a.feedback ?? null,
    decided_at: a.decided_at ?? null,
    closed_reason: a.closed_reason ?? null,
  };
}

export function historyBody(h: HistoryDoc) {
  return { event_id: h.event_id, at: h.at, type: h.type, stream: h.stream, revision: h.revision, position: h.position, data: h.data };
}
