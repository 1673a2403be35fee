// The few fields of an event a person debugging a stream wants on its timeline line: which approval and
// what was decided, which subtask and attempt, the feedback, the plan named, the start of a message.
import type { StoredEvent } from '../events/store.js';

/** Longest text shown for one field; the full data is one `--json` away. */
const MAX_TEXT = 60;

/** Key fields per event type, in the order shown. Types not listed show their scalar fields. */
const KEY_FIELDS: Readonly<Record<string, readonly string[]>> = {
  SessionStarted: ['name', 'mode', 'agent_type'],
  UserMessageReceived: ['content', 'agent_type', 'supersedes_plan_id'],
  TaskClassified: ['kind', 'plan_id', 'run_id', 'agent_type', 'source', 'supersedes_plan_id'],
  TaskFinished: ['run_id', 'status', 'answer', 'error'],
  QueuedMessageStarted: ['message_id'],
  RunStarted: ['kind', 'agent', 'task', 'plan_id', 'subtask_id', 'attempt'],
  AgentReplied: ['turn', 'content', 'tool_calls', 'finish_reason'],
  ToolCallRequested: ['call_id', 'tool_name', 'arguments', 'requires_approval'],
  ToolCallRefused: ['call_id', 'tool_name', 'error'],
  ToolCallApproved: ['call_id', 'modified_arguments', 'remember'],
  ToolCallRejected: ['call_id', 'feedback'],
  ToolResultReceived: ['call_id', 'result', 'error'],
  RunSucceeded: ['result'],
  RunFailed: ['error', 'code'],
  RunCancelled: ['reason'],
  TaskClassificationFailed: ['reason'],
  SessionSuspended: ['reason'],
  SessionResumed: [],
  SessionCompleted: ['reason', 'cancels_plan_id'],
  SessionExpired: ['cancels_plan_id'],
  PlanDrafted: ['revision', 'goal', 'subtasks', 'source', 'feedback'],
  PlanApprovalRequested: ['approval_request_id', 'revision', 'deadline', 'timeout_action'],
  PlanApproved: ['approval_request_id', 'decided_by'],
  PlanRejected: ['approval_request_id', 'feedback'],
  PlanModificationRequested: ['approval_request_id', 'feedback'],
  PlanApprovalExpired: ['approval_request_id'],
  PlanSuperseded: ['reason', 'superseded_by', 'approval_request_id'],
  PlanReplanRequested: ['reason'],
  PlanExecutionStarted: ['max_parallel'],
  SubtaskDispatched: ['subtask_id', 'attempt'],
  SubtaskStarted: ['subtask_id', 'attempt', 'run_id'],
  SubtaskSucceeded: ['subtask_id', 'attempt', 'result'],
  SubtaskFailed: ['subtask_id', 'attempt', 'error', 'will_retry'],
  SubtaskRetryScheduled: ['subtask_id', 'attempt', 'not_before'],
  PlanCompleted: [],
  PlanFailed: ['reason'],
  PlanCancelled: ['reason'],
};

/** The decision an approval event records, which its type implies rather than its data states. */
const DECISIONS: Readonly<Record<string, string>> = {
  PlanApproved: 'approve',
  PlanRejected: 'reject',
  PlanModificationRequested: 'modify',
};

/** `name=value` pairs of the event's key fields, e.g. `approval_request_id=… decision=approve decided_by=user`. */
export function keyFields(event: Pick<StoredEvent, 'type' | 'data'>): string {
  const names = KEY_FIELDS[event.type] ?? scalarFieldNames(event.data);
  const pairs = names.filter((name) => event.data[name] !== undefined).map((name) => `${name}=${formatValue(event.data[name])}`);
  const decision = DECISIONS[event.type];
  if (decision !== undefined) pairs.splice(1, 0, `decision=${decision}`);
  return pairs.join(' ');
}

function scalarFieldNames(data: Record<string, unknown>): string[] {
  return Object.keys(data).filter((name) => {
    const value = data[name];
    return value === null || ['string', 'number', 'boolean'].includes(typeof value);
  });
}

/** Bare words stay bare; text with spaces, quotes or a cut is JSON-quoted; arrays show their length. */
export function formatValue(value: unknown): string {
  if (Array.isArray(value)) return `[${value.length}]`;
  if (typeof value === 'string') {
    const cut = truncate(value);
    return /^[\w.:@/+-]+$/.test(cut) ? cut : JSON.stringify(cut);
  }
  if (value !== null && typeof value === 'object') return truncate(JSON.stringify(value));
  return String(value);
}

function truncate(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ');
  return oneLine.length <= MAX_TEXT ? oneLine : `${oneLine.slice(0, MAX_TEXT - 1).trimEnd()}…`;
}
