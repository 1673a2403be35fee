// The plan read model: what GET /plans/:id returns, kept as one document per plan. Pure: it folds one
// event into the document and nothing else.
import type { PlanEvent } from '../events/catalog.js';
import type { StoredEvent } from '../events/store.js';
import { planFsmState, stopsWithPlan, type PlanStatus, type SubtaskStatus } from '../commands/plan.js';
import type { FsmState } from '../commands/fsm.js';
import type { ProjectionTx } from './projection.js';
import { formatDuration } from '../commands/duration.js';

import { PLANS } from './collections.js';
export { PLANS };

export interface SubtaskView {
  id: string;
  description: string;
  agent: string;
  dependencies: string[];
  /** Seconds (the IDE-facing shapes add the seed's human string beside them). */
  estimated_seconds: number;
  status: SubtaskStatus;
  attempt: number;
  started_at?: string;
  finished_at?: string;
  error?: string;
  not_before?: string;
}

export interface Progress {
  total: number;
  done: number;
  failed: number;
  running: number;
  pending: number;
  /** Stopped because the plan ended (cancelled or failed) while they were in flight. */
  cancelled: number;
  percentage: number;
}

export interface ApprovalSummary {
  approval_request_id: string;
  status: string;
  deadline: string;
  decision?: string;
  decided_by?: string;
  feedback?: string;
}

export interface PlanDoc {
  plan_id: string;
  session_id: string;
  goal: string;
  status: PlanStatus;
  revision: number;
  source: string;
  subtasks: SubtaskView[];
  subtasks_count: number;
  total_estimated_seconds: number;
  approval: ApprovalSummary | null;
  progress: Progress;
  fsm_state: FsmState;
  created_at: string;
  updated_at: string;
  started_at?: string;
  finished_at?: string;
  duration_seconds?: number;
  /** Why it ended, when it ended badly (failed, cancelled, superseded, rejected). */
  reason?: string;
  /** Revision of the plan stream's last event: the ETag. */
  stream_revision: number;
  /** Position of the plan's first event: its place in lists. */
  created_position: number;
  [key: string]: unknown;
}

export function progressOf(subtasks: readonly Pick<SubtaskView, 'status'>[]): Progress {
  const count = (...statuses: SubtaskStatus[]) => subtasks.filter((s) => statuses.includes(s.status)).length;
  const total = subtasks.length;
  const done = count('succeeded');
  return {
    total,
    done,
    failed: count('failed'),
    running: count('dispatched', 'running'),
    pending: count('pending', 'retry_scheduled'),
    cancelled: count('cancelled'),
    percentage: total === 0 ? 0 : Math.round((done / total) * 100),
  };
}

/**
 * The IDE's `plan_summary` (DESIGN §5). Estimates are the seed's human strings ("10 min"): the IDE's
 * plan dialog reads them `as String?` and would throw on a number; the seconds travel beside them.
 */
export function planSummary(plan: PlanDoc) {
  return {
    plan_id: plan.plan_id,
    goal: plan.goal,
    status: plan.status,
    revision: plan.revision,
    subtasks_count: plan.subtasks_count,
    total_estimated_time: formatDuration(plan.total_estimated_seconds),
    total_estimated_seconds: plan.total_estimated_seconds,
    subtasks: plan.subtasks.map((s) => ({
      id: s.id,
      description: s.description,
      agent: s.agent,
      dependencies: s.dependencies,
      estimated_time: formatDuration(s.estimated_seconds),
      estimated_seconds: s.estimated_seconds,
      status: s.status,
    })),
  };
}

export type PlanSummary = ReturnType<typeof planSummary>;

/** A subtask as the IDE reads it: the read model's fields with the estimate as a string beside the seconds. */
export function subtaskBody(s: SubtaskView) {
  return { ...s, estimated_time: formatDuration(s.estimated_seconds) };
}

function withoutAttemptDetails(subtask: SubtaskView): SubtaskView {
  const { started_at: _started, finished_at: _finished, error: _error, not_before: _notBefore, ...rest } = subtask;
  return rest;
}

function withSubtask(plan: PlanDoc, id: string, change: Partial<SubtaskView>): SubtaskView[] {
  return plan.subtasks.map((s) => (s.id === id ? { ...s, ...change } : s));
}

function finished(plan: PlanDoc, at: string): Pick<PlanDoc, 'finished_at' | 'duration_seconds'> {
  const from = plan.started_at ?? plan.created_at;
  return { finished_at: at, duration_seconds: Math.max(0, (Date.parse(at) - Date.parse(from)) / 1000) };
}

/** Fold one plan event into its document; returns the new document (undefined: nothing to write). */
export function nextPlanDoc(plan: PlanDoc | undefined, event: PlanEvent, stored: StoredEvent): PlanDoc | undefined {
  // A redelivered event (the document already includes its revision) changes nothing (DESIGN §1).
  if (plan && stored.revision <= plan.stream_revision) return undefined;
  const at = stored.metadata.at;
  if (event.type === 'PlanDrafted') {
    const d = event.data;
    const subtasks: SubtaskView[] = d.subtasks.map(({ estimated_time, ...s }) => ({
      ...s,
      dependencies: [...s.dependencies],
      estimated_seconds: estimated_time,
      status: 'pending',
      attempt: 0,
    }));
    return withStatus(
      {
        plan_id: d.plan_id,
        session_id: d.session_id,
        goal: d.goal,
        status: 'awaiting_approval',
        revision: d.revision,
        source: d.source,
        subtasks,
        subtasks_count: subtasks.length,
        total_estimated_seconds: subtasks.reduce((sum, s) => sum + s.estimated_seconds, 0),
        approval: plan?.approval ?? null,
        progress: progressOf(subtasks),
        fsm_state: 'plan_review',
        created_at: plan?.created_at ?? at,
        updated_at: at,
        stream_revision: stored.revision,
        created_position: plan?.created_position ?? stored.position,
      },
      'awaiting_approval',
    );
  }
  if (!plan) return undefined;
  const base: PlanDoc = { ...plan, updated_at: at, stream_revision: stored.revision };
  const approval = (change: Partial<ApprovalSummary>): ApprovalSummary | null =>
    base.approval ? { ...base.approval, ...change } : null;

  switch (event.type) {
    case 'PlanApprovalRequested':
      return {
        ...base,
        approval: {
          approval_request_id: event.data.approval_request_id,
          status: 'pending',
          deadline: event.data.deadline,
        },
      };
    case 'PlanApproved':
      return withStatus({ ...base, approval: approval({ status: 'approved', decision: 'approve', decided_by: event.data.decided_by }) }, 'approved');
    case 'PlanRejected':
      return withStatus(
        {
          ...base,
          approval: approval({ status: 'rejected', decision: 'reject', decided_by: 'user', ...(event.data.feedback ? { feedback: event.data.feedback } : {}) }),
          ...(event.data.feedback ? { reason: event.data.feedback } : {}),
          ...finished(base, at),
        },
        'rejected',
      );
    case 'PlanModificationRequested':
      return withStatus(
        { ...base, approval: approval({ status: 'modification_requested', decision: 'modify', decided_by: 'user', feedback: event.data.feedback }) },
        'replanning',
      );
    case 'PlanApprovalExpired':
      return withStatus({ ...base, approval: approval({ status: 'expired' }), ...finished(base, at) }, 'expired');
    case 'PlanSuperseded':
      return withStatus(
        {
          ...base,
          approval: base.approval?.status === 'pending' ? approval({ status: 'closed' }) : base.approval,
          reason: `superseded by ${event.data.reason === 'user_message' ? 'a new message' : 'a new plan'}`,
          ...finished(base, at),
        },
        'superseded',
      );
    case 'PlanReplanRequested':
      return withStatus({ ...base, reason: event.data.reason }, 'replanning');
    case 'PlanExecutionStarted':
      return withStatus({ ...base, started_at: at }, 'executing');
    case 'SubtaskDispatched': {
      // A new attempt: the times, error and retry time of the previous one no longer describe it.
      const { subtask_id, attempt } = event.data;
      return withSubtasks(
        base,
        base.subtasks.map((s) => (s.id === subtask_id ? { ...withoutAttemptDetails(s), status: 'dispatched', attempt } : s)),
      );
    }
    case 'SubtaskStarted':
      return withSubtasks(base, withSubtask(base, event.data.subtask_id, { status: 'running', started_at: at }));
    case 'SubtaskSucceeded':
      return withSubtasks(base, withSubtask(base, event.data.subtask_id, { status: 'succeeded', finished_at: at }));
    case 'SubtaskFailed': {
      const next = withSubtasks(base, withSubtask(base, event.data.subtask_id, { status: 'failed', finished_at: at, error: event.data.error }));
      return event.data.will_retry ? next : withStatus(next, 'error_handling');
    }
    case 'SubtaskRetryScheduled':
      return withStatus(
        withSubtasks(base, withSubtask(base, event.data.subtask_id, { status: 'retry_scheduled', not_before: event.data.not_before })),
        'executing',
      );
    case 'PlanCompleted':
      return withStatus({ ...base, ...finished(base, at) }, 'completed');
    case 'PlanFailed':
      return withStatus(withSubtasks({ ...base, reason: event.data.reason, ...finished(base, at) }, stopInFlight(base)), 'failed');
    case 'PlanCancelled':
      return withStatus(
        {
          ...withSubtasks(base, stopInFlight(base)),
          approval: base.approval?.status === 'pending' ? approval({ status: 'closed' }) : base.approval,
          ...(event.data.reason ? { reason: event.data.reason } : {}),
          ...finished(base, at),
        },
        'cancelled',
      );
  }
}

function stopInFlight(plan: PlanDoc): SubtaskView[] {
  return plan.subtasks.map((s) => (stopsWithPlan(s.status) ? { ...s, status: 'cancelled' } : s));
}

function withStatus(plan: PlanDoc, status: PlanStatus): PlanDoc {
  return { ...plan, status, fsm_state: planFsmState(status) };
}

function withSubtasks(plan: PlanDoc, subtasks: SubtaskView[]): PlanDoc {
  return { ...plan, subtasks, progress: progressOf(subtasks) };
}

export async function applyToPlanView(event: PlanEvent, stored: StoredEvent, planId: string, tx: ProjectionTx): Promise<PlanDoc | undefined> {
  const current = (await tx.get(PLANS, planId)) as PlanDoc | undefined;
  const next = nextPlanDoc(current, event, stored);
  if (next) tx.put(PLANS, planId, next);
  return next;
}
