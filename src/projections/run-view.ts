// The run read model (GET /runs/:id): one document per agent run, with its status, turns and token
// usage; a run's usage is also summed into its plan's and its session's documents. Pure apart from tx.
import type { RunEvent } from '../events/catalog.js';
import type { StoredEvent } from '../events/store.js';
import { addUsage, ZERO_USAGE, type Usage } from '../agents/model.js';
import type { ProjectionTx } from './projection.js';
import { APPROVALS, PLANS, RUNS, SESSIONS } from './collections.js';
import type { ApprovalDoc } from './approval-view.js';
import type { SessionDoc } from './session-view.js';
import { readersOf } from '../commands/access.js';
import { contentsOf, withId, type SessionContentsDoc } from './session-contents.js';
import { SESSION_CONTENTS } from './collections.js';

export interface RunDoc {
  run_id: string;
  session_id: string;
  kind: 'atomic' | 'subtask';
  agent: string;
  task: string;
  plan_id?: string;
  subtask_id?: string;
  attempt?: number;
  status: 'running' | 'succeeded' | 'failed' | 'cancelled';
  turns: number;
  tool_calls: number;
  /** Calls sent to the IDE and not yet answered. */
  waiting_for: string[];
  /** The tool of each call sent to the IDE (the conversation names a result's tool). */
  call_tools?: Record<string, string>;
  usage: Usage;
  result?: string;
  error?: string;
  created_at: string;
  updated_at: string;
  stream_revision: number;
  [key: string]: unknown;
}


/**
 * Fold one run event into its document. Returns the document as it was before the event (undefined
 * when the event changed nothing: a redelivery, a run of a deleted session), so the caller can
 * record the event in the run's session.
 */
export async function applyRunEvent(event: RunEvent, stored: StoredEvent, runId: string, tx: ProjectionTx): Promise<RunDoc | undefined> {
  const at = stored.metadata.at;
  if (event.type === 'RunStarted') {
    if (await tx.get(RUNS, runId)) return undefined;
    const d = event.data;
    // A deleted session's runs stay gone, whatever arrives for them later.
    const contents = await contentsOf(d.session_id, tx);
    if (contents.deleted) return undefined;
    tx.put(SESSION_CONTENTS, d.session_id, { ...contents, run_ids: withId(contents.run_ids ?? [], runId) } satisfies SessionContentsDoc);
    const doc: RunDoc = {
      run_id: runId,
      session_id: d.session_id,
      kind: d.kind,
      agent: d.agent,
      task: d.task,
      ...(d.plan_id !== undefined ? { plan_id: d.plan_id } : {}),
      ...(d.subtask_id !== undefined ? { subtask_id: d.subtask_id } : {}),
      ...(d.attempt !== undefined ? { attempt: d.attempt } : {}),
      status: 'running',
      turns: 0,
      tool_calls: 0,
      waiting_for: [],
      usage: ZERO_USAGE,
      created_at: at,
      updated_at: at,
      stream_revision: stored.revision,
    };
    tx.put(RUNS, runId, doc);
    return doc;
  }
  const doc = (await tx.get(RUNS, runId)) as RunDoc | undefined;
  if (!doc || stored.revision <= doc.stream_revision) return undefined;
  const next: RunDoc = { ...doc, updated_at: at, stream_revision: stored.revision };
  switch (event.type) {
    case 'AgentReplied': {
      next.turns = event.data.turn;
      next.usage = addUsage(doc.usage, event.data.usage);
      // Usage is summed where people look for it: the plan and the session.
      if (doc.plan_id) await sumUsageInto(PLANS, doc.plan_id, event.data.usage, tx);
      await sumUsageInto(SESSIONS, doc.session_id, event.data.usage, tx);
      break;
    }
    case 'ToolCallRequested':
      next.tool_calls = doc.tool_calls + 1;
      next.waiting_for = [...doc.waiting_for, event.data.call_id];
      next.call_tools = { ...doc.call_tools, [event.data.call_id]: event.data.tool_name };
      if (event.data.requires_approval) await requestToolApproval(doc, event.data, stored, tx);
      break;
    case 'ToolCallRefused':
      next.tool_calls = doc.tool_calls + 1;
      break;
    case 'ToolCallApproved':
      await closeToolApproval(event.data.call_id, { status: 'approved', decision: event.data.modified_arguments ? 'edit' : 'approve', decided_by: 'user' }, at, tx);
      break;
    case 'ToolCallRejected':
    case 'ToolResultReceived':
      next.waiting_for = doc.waiting_for.filter((id) => id !== event.data.call_id);
      // The IDE that ran the call without a separate decision approved it in its own dialog.
      await closeToolApproval(
        event.data.call_id,
        event.type === 'ToolCallRejected'
          ? { status: 'rejected', decision: 'reject', decided_by: 'user', ...(event.data.feedback ? { feedback: event.data.feedback } : {}) }
          : { status: 'approved', decision: 'approve', decided_by: 'user' },
        at,
        tx,
      );
      break;
    case 'RunSucceeded':
      next.status = 'succeeded';
      next.result = event.data.result;
      next.waiting_for = [];
      break;
    case 'RunFailed':
      next.status = 'failed';
      next.error = event.data.error;
      next.waiting_for = [];
      for (const id of doc.waiting_for) await closeToolApproval(id, { status: 'closed', closed_reason: 'the run failed' }, at, tx);
      break;
    case 'RunCancelled':
      next.status = 'cancelled';
      next.error = event.data.reason ?? 'cancelled';
      next.waiting_for = [];
      for (const id of doc.waiting_for) await closeToolApproval(id, { status: 'closed', closed_reason: 'cancelled' }, at, tx);
      break;
    default:
      break;
  }
  tx.put(RUNS, runId, next);
  return doc;
}

/**
 * A call that needs the user's approval is an approval request too: the IDE restores every pending
 * approval from GET /sessions/:id/pending-approvals after a reconnect, tool calls included.
 */
async function requestToolApproval(
  run: RunDoc,
  call: Extract<RunEvent, { type: 'ToolCallRequested' }>['data'],
  stored: StoredEvent,
  tx: ProjectionTx,
): Promise<void> {
  const session = (await tx.get(SESSIONS, run.session_id)) as SessionDoc | undefined;
  tx.put(APPROVALS, call.call_id, {
    request_id: call.call_id,
    approval_request_id: call.call_id,
    call_id: call.call_id,
    request_type: 'tool',
    session_id: run.session_id,
    plan_id: run.plan_id ?? '',
    run_id: run.run_id,
    revision: 0,
    status: 'pending',
    subject: `${call.tool_name} requested by the ${run.agent} agent`,
    reason: call.policy ?? `${call.tool_name} needs your approval`,
    tool_name: call.tool_name,
    arguments: call.arguments,
    details: { run_id: run.run_id, tool_name: call.tool_name, arguments: call.arguments },
    created_at: stored.metadata.at,
    created_position: stored.position,
    readers: session ? readersOf(session) : [],
  } satisfies ApprovalDoc);
  const contents = await contentsOf(run.session_id, tx);
  tx.put(SESSION_CONTENTS, run.session_id, { ...contents, approval_ids: withId(contents.approval_ids, call.call_id) } satisfies SessionContentsDoc);
}

async function closeToolApproval(callId: string, change: Partial<ApprovalDoc>, at: string, tx: ProjectionTx): Promise<void> {
  const doc = (await tx.get(APPROVALS, callId)) as ApprovalDoc | undefined;
  if (!doc || doc.request_type !== 'tool' || doc.status !== 'pending') return;
  tx.put(APPROVALS, callId, { ...doc, ...change, decided_at: at });
}

async function sumUsageInto(collection: string, id: string, usage: Usage, tx: ProjectionTx): Promise<void> {
  const doc = await tx.get(collection, id);
  if (!doc) return;
  tx.put(collection, id, { ...doc, usage: addUsage((doc.usage as Usage | undefined) ?? ZERO_USAGE, usage) });
}
