// The plan decider: a plan's whole life, from draft through approval and execution to one of its
// terminal states. Pure: decide(command, state) → events, evolve(state, event) → state. Time arrives in
// the command (`now`), retry policy too, so the same history and command always decide the same.
import type { AgentType, PlanEvent, Subtask } from '../events/catalog.js';
import type { Decider } from './decider.js';
import { conflict, DomainError, invalid, notFound } from './errors.js';
import { illegalTransition, type FsmState } from './fsm.js';
import { normalizeSubtasks, type SubtaskInput } from './dag.js';
import { readySubtasks } from './readiness.js';

export type PlanStatus =
  | 'awaiting_approval'
  | 'replanning'
  | 'approved'
  | 'executing'
  | 'error_handling'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | 'rejected'
  | 'expired'
  | 'superseded';

export const TERMINAL_PLAN_STATUSES: readonly PlanStatus[] = [
  'completed',
  'failed',
  'cancelled',
  'rejected',
  'expired',
  'superseded',
];

export type SubtaskStatus = 'pending' | 'dispatched' | 'running' | 'succeeded' | 'failed' | 'retry_scheduled' | 'cancelled';

/** Subtasks still in flight or waiting for a retry when the plan ends are cancelled with it. */
export const stopsWithPlan = (status: SubtaskStatus) => status === 'dispatched' || status === 'running' || status === 'retry_scheduled';

export interface SubtaskState extends Subtask {
  status: SubtaskStatus;
  attempt: number;
  not_before?: string;
  error?: string;
  /** What the subtask's run answered (its dependents' agents get it). */
  result?: string;
}

export type Decision = 'approve' | 'reject' | 'modify';
export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'modification_requested' | 'expired' | 'closed';

export interface ApprovalState {
  approval_request_id: string;
  revision: number;
  deadline: string;
  timeout_action: 'expire' | 'approve';
  status: ApprovalStatus;
  decision?: Decision;
  decided_by?: 'user' | 'timeout';
  feedback?: string;
}

export interface PlanState {
  exists: boolean;
  plan_id: string;
  session_id: string;
  revision: number;
  goal: string;
  source: 'llm' | 'heuristic' | 'client';
  status: PlanStatus;
  subtasks: SubtaskState[];
  /** Every approval request of every revision, newest last: late decisions on old ones get answers. */
  approvals: ApprovalState[];
  max_parallel: number;
}

export const initialPlanState = (): PlanState => ({
  exists: false,
  plan_id: '',
  session_id: '',
  revision: 0,
  goal: '',
  source: 'client',
  status: 'awaiting_approval',
  subtasks: [],
  approvals: [],
  max_parallel: 1,
});

export const isTerminal = (status: PlanStatus) => TERMINAL_PLAN_STATUSES.includes(status);

/** The seed FSM state a plan in this status puts its session in. */
export function planFsmState(status: PlanStatus): FsmState {
  switch (status) {
    case 'awaiting_approval':
      return 'plan_review';
    case 'replanning':
      return 'architect_planning';
    case 'approved':
    case 'executing':
      return 'plan_execution';
    case 'error_handling':
      return 'error_handling';
    case 'completed':
    case 'failed':
    case 'cancelled':
      return 'completed';
    case 'rejected':
    case 'expired':
    case 'superseded':
      return 'idle';
  }
}

export type PlanCommand =
  | {
      type: 'DraftPlan';
      plan_id: string;
      session_id: string;
      goal: string;
      subtasks: readonly SubtaskInput[];
      source: 'llm' | 'heuristic' | 'client';
      feedback?: string;
      approval_request_id: string;
      now: Date;
      approval_timeout_s: number;
      timeout_action: 'expire' | 'approve';
      default_agent?: AgentType;
    }
  | { type: 'DecidePlan'; approval_request_id: string; decision: Decision; feedback?: string }
  | { type: 'ExpireApproval'; approval_request_id: string; now: Date }
  | { type: 'SupersedePlan'; reason: 'user_message' | 'new_plan'; superseded_by: string }
  | { type: 'RequestReplan'; reason: string }
  | { type: 'StartExecution'; max_parallel: number }
  | { type: 'DispatchSubtask'; subtask_id: string; now: Date }
  /** Dispatch every subtask that is ready now (readiness.ts), within the parallel limit, in one commit. */
  | { type: 'DispatchReady'; now: Date }
  | { type: 'StartSubtask'; subtask_id: string; attempt: number; run_id?: string }
  | { type: 'CompleteSubtask'; subtask_id: string; attempt: number; result?: string }
  | {
      type: 'FailSubtask';
      subtask_id: string;
      attempt: number;
      error: string;
      now: Date;
      max_attempts: number;
      backoff_ms: number;
    }
  | { type: 'RetrySubtask'; subtask_id: string; now: Date }
  | { type: 'FailPlan'; reason: string }
  | { type: 'CancelPlan'; reason?: string };

/** Which commands each status accepts: the source of the 409s' "legal here" list. */
const LEGAL: Record<PlanStatus, readonly PlanCommand['type'][]> = {
  awaiting_approval: ['DecidePlan', 'ExpireApproval', 'SupersedePlan', 'CancelPlan'],
  replanning: ['DraftPlan', 'SupersedePlan', 'FailPlan', 'CancelPlan'],
  approved: ['StartExecution', 'FailPlan', 'CancelPlan'],
  executing: ['DispatchSubtask', 'DispatchReady', 'StartSubtask', 'CompleteSubtask', 'FailSubtask', 'FailPlan', 'CancelPlan'],
  error_handling: ['RequestReplan', 'RetrySubtask', 'FailPlan', 'CancelPlan'],
  completed: [],
  failed: [],
  cancelled: [],
  rejected: [],
  expired: [],
  superseded: [],
};

function refuse(command: PlanCommand['type'], state: PlanState, details: Record<string, unknown> = {}): DomainError {
  return illegalTransition(command, planFsmState(state.status), LEGAL[state.status], {
    plan_id: state.plan_id,
    plan_status: state.status,
    ...details,
  });
}

function requireStatus(command: PlanCommand, state: PlanState): void {
  if (!state.exists) throw notFound('plan', state.plan_id || '(new)');
  if (!LEGAL[state.status].includes(command.type)) throw refuse(command.type, state);
}

function subtaskOf(state: PlanState, subtaskId: string): SubtaskState {
  const subtask = state.subtasks.find((s) => s.id === subtaskId);
  if (!subtask) throw notFound('subtask', subtaskId);
  return subtask;
}

const currentApproval = (state: PlanState): ApprovalState | undefined => state.approvals.at(-1);

function decisionOf(approval: ApprovalState): Decision | undefined {
  return approval.decision;
}

export function decidePlan(command: PlanCommand, state: PlanState): PlanEvent[] {
  switch (command.type) {
    case 'DraftPlan': {
      if (state.exists && state.status !== 'replanning') {
        throw refuse('DraftPlan', state, { reason: 'a new revision is drafted only while the plan is re-planning' });
      }
      const subtasks = normalizeSubtasks(command.subtasks, command.default_agent);
      const revision = state.revision + 1;
      const deadline = new Date(command.now.getTime() + command.approval_timeout_s * 1000).toISOString();
      return [
        {
          type: 'PlanDrafted',
          data: {
            plan_id: command.plan_id,
            session_id: command.session_id,
            revision,
            goal: command.goal,
            subtasks,
            source: command.source,
            ...(command.feedback !== undefined ? { feedback: command.feedback } : {}),
          },
        },
        {
          type: 'PlanApprovalRequested',
          data: {
            approval_request_id: command.approval_request_id,
            revision,
            deadline,
            timeout_action: command.timeout_action,
          },
        },
      ];
    }

    case 'DecidePlan': {
      if (!state.exists) throw notFound('plan', state.plan_id);
      const approval = state.approvals.find((a) => a.approval_request_id === command.approval_request_id);
      if (!approval) throw notFound('approval', command.approval_request_id);
      if (command.decision === 'modify' && !command.feedback?.trim()) {
        throw invalid('a modify decision needs feedback saying what to change', { field: 'feedback' });
      }
      if (approval.status !== 'pending') {
        // Seed rule 2: the same decision again is a no-op success; a different one is a conflict that
        // shows what was decided. A request closed without a decision (expired, superseded, cancelled)
        // accepts nothing.
        if (decisionOf(approval) === command.decision) return [];
        throw conflict(
          approval.decision ? 'already_decided' : 'approval_closed',
          approval.decision
            ? `approval ${approval.approval_request_id} was already decided: ${approval.decision}`
            : `approval ${approval.approval_request_id} is ${approval.status}; it accepts no decision`,
          { approval: approval, plan_status: state.status, fsm_state: planFsmState(state.status) },
        );
      }
      const id = { approval_request_id: approval.approval_request_id };
      switch (command.decision) {
        case 'approve':
          return [{ type: 'PlanApproved', data: { ...id, decided_by: 'user' } }];
        case 'reject':
          return [
            {
              type: 'PlanRejected',
              data: { ...id, ...(command.feedback !== undefined ? { feedback: command.feedback } : {}) },
            },
          ];
        case 'modify':
          return [{ type: 'PlanModificationRequested', data: { ...id, feedback: command.feedback! } }];
      }
      break;
    }

    case 'ExpireApproval': {
      if (!state.exists) throw notFound('plan', state.plan_id);
      const approval = state.approvals.find((a) => a.approval_request_id === command.approval_request_id);
      if (!approval) throw notFound('approval', command.approval_request_id);
      // Timers are redelivered after restarts: expiring what is already closed is a no-op.
      if (approval.status !== 'pending') return [];
      if (command.now.getTime() < Date.parse(approval.deadline)) {
        throw conflict('not_yet_due', `approval ${approval.approval_request_id} is due at ${approval.deadline}`, {
          deadline: approval.deadline,
        });
      }
      const id = { approval_request_id: approval.approval_request_id };
      return approval.timeout_action === 'approve'
        ? [{ type: 'PlanApproved', data: { ...id, decided_by: 'timeout' } }]
        : [{ type: 'PlanApprovalExpired', data: id }];
    }

    case 'SupersedePlan': {
      if (!state.exists) throw notFound('plan', state.plan_id);
      // A follow-up that arrives after the plan moved on (approved first, say) changes nothing.
      if (state.status !== 'awaiting_approval' && state.status !== 'replanning') return [];
      const approval = currentApproval(state);
      return [
        {
          type: 'PlanSuperseded',
          data: {
            reason: command.reason,
            superseded_by: command.superseded_by,
            ...(approval?.status === 'pending' ? { approval_request_id: approval.approval_request_id } : {}),
          },
        },
      ];
    }

    case 'RequestReplan':
      requireStatus(command, state);
      return [{ type: 'PlanReplanRequested', data: { reason: command.reason } }];

    case 'StartExecution':
      requireStatus(command, state);
      return [{ type: 'PlanExecutionStarted', data: { max_parallel: command.max_parallel } }];

    case 'DispatchSubtask': {
      requireStatus(command, state);
      const subtask = subtaskOf(state, command.subtask_id);
      if (subtask.status !== 'pending' && subtask.status !== 'retry_scheduled') {
        throw conflict('subtask_not_ready', `subtask ${subtask.id} is ${subtask.status}`, { subtask });
      }
      if (subtask.not_before && command.now.getTime() < Date.parse(subtask.not_before)) {
        throw conflict('subtask_not_ready', `subtask ${subtask.id} may be retried from ${subtask.not_before}`, {
          subtask,
        });
      }
      const waitingFor = subtask.dependencies.filter((dep) => subtaskOf(state, dep).status !== 'succeeded');
      if (waitingFor.length) {
        throw conflict('dependencies_pending', `subtask ${subtask.id} waits for ${waitingFor.join(', ')}`, {
          subtask_id: subtask.id,
          waiting_for: waitingFor,
        });
      }
      const inFlight = state.subtasks.filter((s) => s.status === 'dispatched' || s.status === 'running').length;
      if (inFlight >= state.max_parallel) {
        throw conflict('parallel_limit', `plan already runs ${inFlight} of at most ${state.max_parallel} subtasks`, {
          max_parallel: state.max_parallel,
        });
      }
      return [{ type: 'SubtaskDispatched', data: { subtask_id: subtask.id, attempt: subtask.attempt + 1 } }];
    }

    case 'DispatchReady':
      // Nothing to dispatch in a plan that is not executing (any more): not an error for the executor.
      if (state.exists && state.status !== 'executing') return [];
      requireStatus(command, state);
      return readySubtasks(state, command.now.getTime()).ready.map((subtask) => ({
        type: 'SubtaskDispatched',
        data: { subtask_id: subtask.id, attempt: subtask.attempt + 1 },
      }));

    case 'StartSubtask': {
      requireStatus(command, state);
      const subtask = subtaskOf(state, command.subtask_id);
      if (subtask.attempt === command.attempt && subtask.status === 'running') return [];
      requireAttempt(subtask, command.attempt, ['dispatched']);
      return [
        {
          type: 'SubtaskStarted',
          data: {
            subtask_id: subtask.id,
            attempt: command.attempt,
            ...(command.run_id !== undefined ? { run_id: command.run_id } : {}),
          },
        },
      ];
    }

    case 'CompleteSubtask': {
      if (state.status === 'completed' && state.subtasks.some((s) => s.id === command.subtask_id)) {
        const done = subtaskOf(state, command.subtask_id);
        if (done.status === 'succeeded' && done.attempt === command.attempt) return [];
      }
      requireStatus(command, state);
      const subtask = subtaskOf(state, command.subtask_id);
      if (subtask.attempt === command.attempt && subtask.status === 'succeeded') return [];
      requireAttempt(subtask, command.attempt, ['dispatched', 'running']);
      const events: PlanEvent[] = [
        {
          type: 'SubtaskSucceeded',
          data: {
            subtask_id: subtask.id,
            attempt: command.attempt,
            ...(command.result !== undefined ? { result: command.result } : {}),
          },
        },
      ];
      const allDone = state.subtasks.every((s) => s.id === subtask.id || s.status === 'succeeded');
      if (allDone) events.push({ type: 'PlanCompleted', data: {} });
      return events;
    }

    case 'FailSubtask': {
      requireStatus(command, state);
      const subtask = subtaskOf(state, command.subtask_id);
      if (subtask.attempt === command.attempt && (subtask.status === 'failed' || subtask.status === 'retry_scheduled')) {
        return [];
      }
      requireAttempt(subtask, command.attempt, ['dispatched', 'running']);
      const willRetry = command.attempt < command.max_attempts;
      const events: PlanEvent[] = [
        {
          type: 'SubtaskFailed',
          data: { subtask_id: subtask.id, attempt: command.attempt, error: command.error, will_retry: willRetry },
        },
      ];
      if (willRetry) {
        // Exponential backoff: backoff_ms, 2×, 4×, … from the failure.
        const delay = command.backoff_ms * 2 ** (command.attempt - 1);
        events.push({
          type: 'SubtaskRetryScheduled',
          data: {
            subtask_id: subtask.id,
            attempt: command.attempt + 1,
            not_before: new Date(command.now.getTime() + delay).toISOString(),
          },
        });
      }
      return events;
    }

    case 'RetrySubtask': {
      requireStatus(command, state);
      const subtask = subtaskOf(state, command.subtask_id);
      if (subtask.status !== 'failed') {
        throw conflict('subtask_not_failed', `subtask ${subtask.id} is ${subtask.status}; only a failed one is retried`, {
          subtask,
        });
      }
      return [
        {
          type: 'SubtaskRetryScheduled',
          data: { subtask_id: subtask.id, attempt: subtask.attempt + 1, not_before: command.now.toISOString() },
        },
      ];
    }

    case 'FailPlan':
      requireStatus(command, state);
      return [{ type: 'PlanFailed', data: { reason: command.reason } }];

    case 'CancelPlan': {
      if (!state.exists) throw notFound('plan', state.plan_id);
      if (state.status === 'cancelled') return [];
      requireStatus(command, state);
      return [{ type: 'PlanCancelled', data: command.reason !== undefined ? { reason: command.reason } : {} }];
    }
  }
  return [];
}

function requireAttempt(subtask: SubtaskState, attempt: number, statuses: readonly SubtaskStatus[]): void {
  if (subtask.attempt !== attempt || !statuses.includes(subtask.status)) {
    throw conflict(
      'stale_attempt',
      `subtask ${subtask.id} is at attempt ${subtask.attempt} (${subtask.status}), not attempt ${attempt}`,
      { subtask },
    );
  }
}

function closePendingApproval(approvals: ApprovalState[], status: ApprovalStatus): ApprovalState[] {
  return approvals.map((a) => (a.status === 'pending' ? { ...a, status } : a));
}

function updateApproval(
  approvals: ApprovalState[],
  id: string,
  change: Partial<ApprovalState>,
): ApprovalState[] {
  return approvals.map((a) => (a.approval_request_id === id ? { ...a, ...change } : a));
}

function updateSubtask(state: PlanState, id: string, change: Partial<SubtaskState>): SubtaskState[] {
  return state.subtasks.map((s) => (s.id === id ? { ...s, ...change } : s));
}

export function evolvePlan(state: PlanState, event: PlanEvent): PlanState {
  switch (event.type) {
    case 'PlanDrafted': {
      const d = event.data;
      return {
        ...state,
        exists: true,
        plan_id: d.plan_id,
        session_id: d.session_id,
        revision: d.revision,
        goal: d.goal,
        source: d.source,
        status: 'awaiting_approval',
        subtasks: d.subtasks.map((s) => ({ ...s, status: 'pending', attempt: 0 })),
      };
    }
    case 'PlanApprovalRequested': {
      const d = event.data;
      return {
        ...state,
        approvals: [
          ...state.approvals,
          {
            approval_request_id: d.approval_request_id,
            revision: d.revision,
            deadline: d.deadline,
            timeout_action: d.timeout_action,
            status: 'pending',
          },
        ],
      };
    }
    case 'PlanApproved':
      return {
        ...state,
        status: 'approved',
        approvals: updateApproval(state.approvals, event.data.approval_request_id, {
          status: 'approved',
          decision: 'approve',
          decided_by: event.data.decided_by,
        }),
      };
    case 'PlanRejected':
      return {
        ...state,
        status: 'rejected',
        approvals: updateApproval(state.approvals, event.data.approval_request_id, {
          status: 'rejected',
          decision: 'reject',
          decided_by: 'user',
          ...(event.data.feedback !== undefined ? { feedback: event.data.feedback } : {}),
        }),
      };
    case 'PlanModificationRequested':
      return {
        ...state,
        status: 'replanning',
        approvals: updateApproval(state.approvals, event.data.approval_request_id, {
          status: 'modification_requested',
          decision: 'modify',
          decided_by: 'user',
          feedback: event.data.feedback,
        }),
      };
    case 'PlanApprovalExpired':
      return {
        ...state,
        status: 'expired',
        approvals: updateApproval(state.approvals, event.data.approval_request_id, { status: 'expired' }),
      };
    case 'PlanSuperseded':
      return { ...state, status: 'superseded', approvals: closePendingApproval(state.approvals, 'closed') };
    case 'PlanReplanRequested':
      return { ...state, status: 'replanning' };
    case 'PlanExecutionStarted':
      return { ...state, status: 'executing', max_parallel: event.data.max_parallel };
    case 'SubtaskDispatched':
      return {
        ...state,
        subtasks: updateSubtask(state, event.data.subtask_id, { status: 'dispatched', attempt: event.data.attempt }),
      };
    case 'SubtaskStarted':
      return { ...state, subtasks: updateSubtask(state, event.data.subtask_id, { status: 'running' }) };
    case 'SubtaskSucceeded':
      return {
        ...state,
        subtasks: updateSubtask(state, event.data.subtask_id, {
          status: 'succeeded',
          ...(event.data.result !== undefined ? { result: event.data.result } : {}),
        }),
      };
    case 'SubtaskFailed':
      return {
        ...state,
        status: event.data.will_retry ? state.status : 'error_handling',
        subtasks: updateSubtask(state, event.data.subtask_id, { status: 'failed', error: event.data.error }),
      };
    case 'SubtaskRetryScheduled':
      return {
        ...state,
        status: 'executing',
        subtasks: updateSubtask(state, event.data.subtask_id, {
          status: 'retry_scheduled',
          // The dispatch that follows takes attempt + 1; keep `attempt` as the last one made.
          attempt: event.data.attempt - 1,
          not_before: event.data.not_before,
        }),
      };
    case 'PlanCompleted':
      return { ...state, status: 'completed' };
    case 'PlanFailed':
      return { ...state, status: 'failed', subtasks: cancelInFlight(state.subtasks) };
    case 'PlanCancelled':
      return {
        ...state,
        status: 'cancelled',
        subtasks: cancelInFlight(state.subtasks),
        approvals: closePendingApproval(state.approvals, 'closed'),
      };
    default:
      // An event of another aggregate in this stream (an import gone wrong) changes nothing here.
      return state;
  }
}

function cancelInFlight(subtasks: SubtaskState[]): SubtaskState[] {
  return subtasks.map((s) => (stopsWithPlan(s.status) ? { ...s, status: 'cancelled' } : s));
}

export const planDecider = {
  initialState: initialPlanState,
  decide: decidePlan,
  evolve: evolvePlan,
} as const satisfies Decider<PlanState, PlanCommand, PlanEvent>;
