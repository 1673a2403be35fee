// Read-model documents → the API's response bodies (DESIGN §6). Internal bookkeeping (positions,
// phases) stays out; names follow the IDE protocol. The IDE decodes its fields with generated Dart
// code that throws on a missing required key or a value of another type, so an IDE field is never
// null: a value the IDE may go without is left out (tests/support/ide-models.ts holds its models).
import type { ApprovalDoc } from '../projections/approval-view.js';
import type { ConversationMessageDoc } from '../projections/conversation-view.js';
import { planSummary, subtaskBody, type PlanDoc } from '../projections/plan-view.js';
import type { AgentSwitchView, SessionDoc } from '../projections/session-view.js';
import type { HistoryDoc } from '../projections/history-view.js';
import type { RunDoc } from '../projections/run-view.js';
import { ZERO_USAGE, type Usage } from '../agents/model.js';

/** Tokens spent so far (summed by the run read model; zero before any model turn). */
const usageOf = (doc: Record<string, unknown>): Usage => (doc.usage as Usage | undefined) ?? ZERO_USAGE;

/**
 * A session: Planline's fields and, beside them, the IDE's `SessionModel` / `SessionInfo` (`id`,
 * `title`, `description`, `current_agent`, `last_activity`, `is_active`). Without a name the title is
 * left out, and the IDE shows its own ("Session <id>").
 */
export function sessionBody(s: SessionDoc) {
  return {
    id: s.session_id,
    session_id: s.session_id,
    name: s.name,
    ...(s.name !== '' ? { title: s.name } : {}),
    ...(s.description !== undefined ? { description: s.description } : {}),
    mode: s.mode,
    agent_type: s.agent_type,
    current_agent: s.agent_type,
    status: s.status,
    is_active: s.status === 'active',
    fsm_state: s.fsm_state,
    current_plan_id: s.current_plan_id,
    message_count: s.message_count,
    created_at: s.created_at,
    updated_at: s.updated_at,
    last_activity: s.updated_at,
    revision: s.stream_revision,
    owner: s.owner,
    shares: sharesBody(s),
    usage: usageOf(s),
  };
}

export function agentSwitchBody(a: AgentSwitchView) {
  return { from: a.from, to: a.to, ...(a.reason !== undefined ? { reason: a.reason } : {}), timestamp: a.timestamp };
}

/** The IDE's `ChatMessage`, with the time it was said beside it. */
export function chatMessageBody(m: ConversationMessageDoc) {
  return {
    role: m.role,
    ...(m.content !== undefined ? { content: m.content } : {}),
    ...(m.name !== undefined ? { name: m.name } : {}),
    ...(m.tool_call_id !== undefined ? { tool_call_id: m.tool_call_id } : {}),
    ...(m.tool_calls !== undefined ? { tool_calls: m.tool_calls } : {}),
    created_at: m.at,
  };
}

/** The IDE's `CurrentAgentInfo`. */
export function currentAgentBody(s: SessionDoc) {
  return {
    session_id: s.session_id,
    current_agent: s.agent_type,
    agent_history: s.agent_history.map(agentSwitchBody),
    switch_count: s.agent_history.length,
  };
}

/** A session's shares as a list, in the order they were given. */
export function sharesBody(s: SessionDoc) {
  return Object.entries(s.shares).map(([principal, role]) => ({ principal, role }));
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
    usage: usageOf(p),
    stream_revision: p.stream_revision,
  };
}

/** GET /runs/:id: an agent run, its turns, calls and token usage. */
export function runBody(r: RunDoc) {
  return {
    run_id: r.run_id,
    session_id: r.session_id,
    kind: r.kind,
    agent_type: r.agent,
    task: r.task,
    plan_id: r.plan_id ?? null,
    subtask_id: r.subtask_id ?? null,
    attempt: r.attempt ?? null,
    status: r.status,
    turns: r.turns,
    tool_calls: r.tool_calls,
    waiting_for: r.waiting_for,
    usage: usageOf(r),
    result: r.result ?? null,
    error: r.error ?? null,
    created_at: r.created_at,
    updated_at: r.updated_at,
    stream_revision: r.stream_revision,
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

/** The tool name a plan approval carries where the IDE expects a tool approval's. */
export const PLAN_TOOL_NAME = 'create_plan';

/**
 * A pending-approvals entry. The IDE restores each as a tool approval (`PendingApprovalData`: call_id,
 * tool_name, arguments as an object, created_at); for a plan the tool is `create_plan` and its
 * arguments are the plan summary.
 */
export function pendingApprovalBody(a: ApprovalDoc) {
  return {
    request_id: a.request_id,
    request_type: a.request_type,
    call_id: a.call_id,
    tool_name: a.request_type === 'tool' ? (a.tool_name ?? 'unknown') : PLAN_TOOL_NAME,
    arguments: a.request_type === 'tool' ? (a.arguments ?? {}) : (a.details as { plan_summary: Record<string, unknown> }).plan_summary,
    subject: a.subject,
    details: a.details,
    reason: a.reason,
    created_at: a.created_at,
    deadline: a.deadline,
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
  return { event_id: h.event_id, at: h.at, type: h.type, stream: h.stream, revision: h.revision, position: h.position, principal: h.principal ?? null, data: h.data };
}
