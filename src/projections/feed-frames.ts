// What the IDE sees of each event: the frames of DESIGN §5, rendered from the event and the feed's own
// view of its session, plan and run. Pure. This is the one place that maps event types to frames.
// Agent runs show the IDE what it must act on (assistant_message, tool_call) and little else: short
// status frames for approvals and results (never the results themselves), an error frame when an
// atomic task's run fails (a subtask's failure is the plan's subtask_failed frame).
//
// Every frame gets `content` (readable text), its data fields at the top level (the IDE reads them there)
// and, where the seed's clients looked for them, a copy in `metadata`. The projection adds offset,
// session_id, timestamp and metadata.fsm_state, and leaves nulls out.
import type { DomainEvent, EventType } from '../events/catalog.js';
import type { SessionState } from '../commands/session.js';
import { formatDuration } from '../commands/duration.js';
import { planSummary, type PlanDoc, type Progress, type SubtaskView } from './plan-view.js';
import { planMarkdown } from './plan-markdown.js';

/** A frame before the projection numbers it. */
export interface FrameBody {
  type: string;
  content: string;
  metadata?: Record<string, unknown>;
  [key: string]: unknown;
}

/** What the feed keeps of an agent run to render its frames. */
export interface FeedRunView {
  run_id: string;
  session_id: string;
  kind: 'atomic' | 'subtask';
  agent: string;
  plan_id?: string | undefined;
  subtask_id?: string | undefined;
  /** Tool name of each call sent to the IDE and not answered yet. */
  calls: Record<string, string>;
}

export interface FrameContext<E extends DomainEvent = DomainEvent> {
  event: E;
  /** The session after the event. */
  session: SessionState;
  /** The event's plan after the event (plan events only). */
  plan?: PlanDoc | undefined;
  /** The event's run before the event (run events only; it still names the call being answered). */
  run?: FeedRunView | undefined;
}

type Renderer<T extends EventType> = (context: FrameContext<Extract<DomainEvent, { type: T }>>) => FrameBody[];
type Renderers = { [T in EventType]?: Renderer<T> };

const status = (content: string, metadata: Record<string, unknown> = {}, fields: Record<string, unknown> = {}): FrameBody => ({
  type: 'status',
  content,
  ...fields,
  metadata,
});

const sessionLabel = (session: SessionState) => (session.name ? `"${session.name}"` : session.session_id);

/** The IDE's progress object (DESIGN §5). */
function progressOf(plan: PlanDoc): Progress {
  return { ...plan.progress };
}

function subtaskOf(plan: PlanDoc, id: string): { subtask: SubtaskView | undefined; label: string } {
  const index = plan.subtasks.findIndex((s) => s.id === id);
  const subtask = plan.subtasks[index];
  return { subtask, label: `${index + 1}/${plan.subtasks_count}: ${subtask?.description.replace(/\s+/g, ' ').trim() ?? id}` };
}

/** Fields every frame about a plan carries at the top level and in metadata. */
function aboutPlan(plan: PlanDoc, extra: Record<string, unknown> = {}) {
  return { plan_id: plan.plan_id, ...extra };
}

function subtaskFrame(type: string, plan: PlanDoc, subtaskId: string, content: (label: string) => string, extra: Record<string, unknown> = {}): FrameBody {
  const { subtask, label } = subtaskOf(plan, subtaskId);
  const fields = { plan_id: plan.plan_id, subtask_id: subtaskId, status: subtask?.status ?? 'pending', progress: progressOf(plan) };
  return {
    type,
    content: content(label),
    ...fields,
    ...extra,
    metadata: { ...fields, ...(subtask ? { agent: subtask.agent, attempt: subtask.attempt } : {}), ...extra },
  };
}

/** Fields every frame about a run carries (top level and metadata): the IDE tells runs and subtasks apart by them. */
function aboutRun(run: FeedRunView) {
  return {
    run_id: run.run_id,
    agent_type: run.agent,
    ...(run.plan_id !== undefined ? { plan_id: run.plan_id } : {}),
    ...(run.subtask_id !== undefined ? { subtask_id: run.subtask_id } : {}),
  };
}

const clip = (text: string, max = 200) => {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

/** What a call is about, in a few words: its path, command or query. */
function callSubject(args: Readonly<Record<string, unknown>>): string {
  for (const key of ['path', 'command', 'query', 'pattern', 'source', 'directory']) {
    const value = args[key];
    if (typeof value === 'string' && value.trim() !== '') return clip(value, 120);
  }
  return '';
}

const toolOf = (run: FeedRunView | undefined, callId: string) => run?.calls[callId] ?? 'tool';

const renderers: Renderers = {
  SessionStarted: ({ event, session }) => [
    {
      type: 'session_info',
      content: `Session ${sessionLabel(session)} started`,
      session_id: event.data.session_id,
      agent_type: event.data.agent_type,
      metadata: { session_id: event.data.session_id, name: event.data.name, mode: event.data.mode, agent_type: event.data.agent_type },
    },
  ],
  UserMessageReceived: ({ event }) => {
    const { message_id, queued, cancels_plan_id, cancels_run_id } = event.data;
    if (queued) return [status('Message queued: it will run when the current work ends', { message_id, queued: true })];
    if (cancels_plan_id !== undefined || cancels_run_id !== undefined) {
      return [
        status('Message received; stopping the current work to answer it', {
          message_id,
          interrupts: true,
          ...(cancels_plan_id !== undefined ? { cancels_plan_id } : {}),
          ...(cancels_run_id !== undefined ? { cancels_run_id } : {}),
        }),
      ];
    }
    return [status('Message received; working out what it needs', { message_id })];
  },
  QueuedMessageStarted: ({ event }) => [status('Working on the next queued message', { message_id: event.data.message_id, queued: false })],
  TaskClassified: ({ event }) => {
    const { kind, plan_id, run_id, agent_type, source, message_id } = event.data;
    if (kind === 'complex') return [status('This task needs a plan; planning', { kind, plan_id, source }, { plan_id })];
    const agent = agent_type ?? 'universal';
    const fields = { ...(run_id !== undefined ? { run_id } : {}), agent_type: agent };
    return [status(`Answering with the ${agent} agent`, { kind, source, ...fields, ...(message_id !== undefined ? { message_id } : {}) }, fields)];
  },
  TaskFinished: ({ event }) => {
    const { run_id, status: outcome, error } = event.data;
    const content =
      outcome === 'succeeded' ? 'Done; ready for the next message' : outcome === 'failed' ? `The task failed${error ? `: ${clip(error)}` : ''}` : 'The task was cancelled';
    return [status(content, { run_id, task_status: outcome }, { run_id })];
  },
  ToolPolicyChanged: ({ event }) => {
    const { remembered } = event.data;
    const allowed = [...remembered.tools, ...remembered.command_prefixes.map((p) => `"${p}"`)];
    return [
      status(allowed.length > 0 ? `Tool policy changed; approved for this session: ${clip(allowed.join(', '))}` : 'Tool policy changed', {
        tool_policy: event.data,
      }),
    ];
  },
  TaskClassificationFailed: ({ event }) => [
    { type: 'error', code: 'classification_failed', content: `Could not work out what the message needs: ${event.data.reason}`, error: event.data.reason },
  ],
  SessionSuspended: ({ event }) => [status(`Session suspended${event.data.reason ? `: ${event.data.reason}` : ''}`, { session_status: 'suspended' })],
  SessionResumed: () => [status('Session resumed', { session_status: 'active' })],
  SessionCompleted: ({ event }) => [status(`Session completed${event.data.reason ? `: ${event.data.reason}` : ''}`, { session_status: 'completed' })],
  SessionExpired: () => [status('Session expired', { session_status: 'expired' })],
  SessionRenamed: ({ event }) => [status(`Session renamed to "${event.data.name}"`, { name: event.data.name })],
  SessionDeleted: () => [status('Session deleted', { session_status: 'deleted' })],
  // Sockets re-check who may read the session after these (a revoked viewer's socket closes).
  SessionShared: ({ event }) => [
    status(`Shared with ${event.data.principal} as ${event.data.role}`, { access_changed: true, principal: event.data.principal, role: event.data.role }),
  ],
  SessionShareRevoked: ({ event }) => [
    status(`${event.data.principal} no longer has access`, { access_changed: true, principal: event.data.principal }),
  ],
  AgentSwitched: ({ event }) => {
    const { from_agent, to_agent } = event.data;
    const reason = event.data.reason ?? 'switched on request';
    return [
      {
        type: 'agent_switched',
        content: `Switched from ${from_agent} to ${to_agent}: ${reason}`,
        from_agent,
        to_agent,
        reason,
        agent_type: to_agent,
        metadata: { from_agent, to_agent, reason },
      },
    ];
  },

  PlanDrafted: ({ event, plan }) => {
    if (!plan) return [];
    const summary = planSummary(plan);
    const feedback = event.data.feedback;
    return [
      {
        type: 'plan_created',
        content: planMarkdown(summary),
        ...aboutPlan(plan),
        plan_summary: summary,
        ...(feedback ? { feedback } : {}),
        metadata: { plan_id: plan.plan_id, revision: plan.revision, source: plan.source, ...(feedback ? { feedback } : {}) },
      },
    ];
  },
  PlanApprovalRequested: ({ event, plan }) => {
    if (!plan) return [];
    const summary = planSummary(plan);
    const { approval_request_id, deadline, timeout_action } = event.data;
    const fields = { approval_request_id, plan_id: plan.plan_id, plan_summary: summary, deadline };
    const atDeadline = timeout_action === 'approve' ? 'it is approved' : 'it expires';
    return [
      {
        type: 'plan_approval_required',
        content: `${planMarkdown(summary)}\n\nApprove it, reject it or ask for changes by ${deadline} (then ${atDeadline}).`,
        ...fields,
        metadata: { ...fields, timeout_action },
      },
    ];
  },
  PlanApproved: ({ event, plan }) =>
    plan
      ? [
          {
            type: 'plan_approved',
            content: event.data.decided_by === 'timeout' ? 'Plan approved at its deadline (the timeout policy approves)' : 'Plan approved',
            ...aboutPlan(plan, { approval_request_id: event.data.approval_request_id, decision: 'approve' }),
            metadata: aboutPlan(plan, { approval_request_id: event.data.approval_request_id, decided_by: event.data.decided_by }),
          },
        ]
      : [],
  PlanRejected: ({ event, plan }) => {
    if (!plan) return [];
    const { approval_request_id, feedback } = event.data;
    const fields = aboutPlan(plan, { approval_request_id, decision: 'reject', ...(feedback ? { feedback } : {}) });
    return [{ type: 'plan_rejected', content: `Plan rejected${feedback ? `: ${feedback}` : ''}`, ...fields, metadata: fields }];
  },
  PlanModificationRequested: ({ event, plan }) => {
    if (!plan) return [];
    const { approval_request_id, feedback } = event.data;
    const fields = aboutPlan(plan, { approval_request_id, decision: 'modify', feedback });
    return [{ type: 'plan_modification_requested', content: `Changes requested: ${feedback}. The plan is being revised.`, ...fields, metadata: fields }];
  },
  PlanApprovalExpired: ({ event, plan }) => {
    if (!plan) return [];
    const fields = aboutPlan(plan, { approval_request_id: event.data.approval_request_id });
    return [{ type: 'plan_expired', content: 'The approval deadline passed without a decision; the plan expired', ...fields, metadata: fields }];
  },
  PlanSuperseded: ({ event, plan }) => {
    if (!plan) return [];
    const { reason, superseded_by, approval_request_id } = event.data;
    const fields = aboutPlan(plan, { reason, ...(approval_request_id ? { approval_request_id } : {}) });
    return [
      {
        type: 'plan_superseded',
        content: `Plan superseded by ${reason === 'user_message' ? 'a new message' : 'a new plan'}`,
        ...fields,
        metadata: { ...fields, superseded_by },
      },
    ];
  },
  PlanReplanRequested: ({ event, plan }) => (plan ? [status(`Re-planning: ${event.data.reason}`, aboutPlan(plan), aboutPlan(plan))] : []),
  PlanExecutionStarted: ({ event, plan }) =>
    plan
      ? [
          status(
            `Executing the plan: ${plan.subtasks_count} subtask${plan.subtasks_count === 1 ? '' : 's'}, up to ${event.data.max_parallel} at once`,
            aboutPlan(plan, { progress: progressOf(plan) }),
            aboutPlan(plan, { progress: progressOf(plan) }),
          ),
        ]
      : [],
  SubtaskStarted: ({ event, plan }) =>
    plan ? [subtaskFrame('subtask_started', plan, event.data.subtask_id, (label) => `Started ${label}`)] : [],
  SubtaskSucceeded: ({ event, plan }) =>
    plan ? [subtaskFrame('subtask_completed', plan, event.data.subtask_id, (label) => `Done ${label}`, event.data.result ? { summary: event.data.result } : {})] : [],
  SubtaskFailed: ({ event, plan }) =>
    plan
      ? [
          subtaskFrame(
            'subtask_failed',
            plan,
            event.data.subtask_id,
            (label) => `Failed ${label}: ${event.data.error}${event.data.will_retry ? ' (it will be retried)' : ''}`,
            { error: event.data.error, will_retry: event.data.will_retry },
          ),
        ]
      : [],
  SubtaskRetryScheduled: ({ event, plan }) => {
    if (!plan) return [];
    const { label } = subtaskOf(plan, event.data.subtask_id);
    const fields = { plan_id: plan.plan_id, subtask_id: event.data.subtask_id, progress: progressOf(plan) };
    return [status(`Retrying ${label} (attempt ${event.data.attempt}) from ${event.data.not_before}`, { ...fields, attempt: event.data.attempt }, fields)];
  },
  PlanCompleted: ({ plan }) => {
    if (!plan) return [];
    const duration = plan.duration_seconds ?? 0;
    const fields = { plan_id: plan.plan_id, status: 'completed', progress: progressOf(plan), duration_seconds: duration };
    return [
      {
        type: 'execution_completed',
        content: `Plan completed: ${plan.progress.done}/${plan.progress.total} subtasks in ${formatDuration(duration)}`,
        ...fields,
        metadata: fields,
      },
    ];
  },
  PlanFailed: ({ event, plan }) => {
    if (!plan) return [];
    const fields = { plan_id: plan.plan_id, status: 'failed', progress: progressOf(plan), duration_seconds: plan.duration_seconds ?? 0 };
    return [{ type: 'execution_completed', content: `Plan failed: ${event.data.reason}`, ...fields, error: event.data.reason, metadata: { ...fields, error: event.data.reason } }];
  },
  PlanCancelled: ({ event, plan }) => {
    if (!plan) return [];
    const fields = aboutPlan(plan, { ...(event.data.reason ? { reason: event.data.reason } : {}), progress: progressOf(plan) });
    return [{ type: 'plan_cancelled', content: `Plan cancelled${event.data.reason ? `: ${event.data.reason}` : ''}`, ...fields, metadata: fields }];
  },

  // Agent runs. RunStarted needs no frame: TaskClassified (atomic) or subtask_started already said it.
  AgentReplied: ({ event, run }) => {
    const content = event.data.content ?? '';
    if (!run || content.trim() === '') return [];
    const is_final = event.data.tool_calls.length === 0;
    const fields = aboutRun(run);
    return [{ type: 'assistant_message', content, is_final, ...fields, metadata: { ...fields, turn: event.data.turn, is_final } }];
  },
  ToolCallRequested: ({ event, run }) => {
    if (!run) return [];
    const { call_id, tool_name, arguments: args, requires_approval, policy } = event.data;
    const subject = callSubject(args);
    const fields = { call_id, tool_name, arguments: args, requires_approval, ...aboutRun(run) };
    return [
      {
        type: 'tool_call',
        content: `${tool_name}${subject ? ` ${subject}` : ''}${requires_approval ? ' (needs your approval)' : ''}`,
        ...fields,
        metadata: { call_id, tool_name, requires_approval, ...aboutRun(run), ...(policy !== undefined ? { policy } : {}) },
      },
    ];
  },
  // ToolCallRefused: nothing; the refusal is the tool's answer to the model, which says what it does next.
  ToolCallApproved: ({ event, run }) => {
    if (!run) return [];
    const { call_id, modified_arguments, remember } = event.data;
    const tool = toolOf(run, call_id);
    const content = `Approved ${tool}${modified_arguments ? ' (edited)' : ''}${remember ? '; remembered for this session' : ''}`;
    return [status(content, { call_id, tool_name: tool, decision: modified_arguments ? 'edit' : 'approve', ...aboutRun(run) }, { call_id })];
  },
  ToolCallRejected: ({ event, run }) => {
    if (!run) return [];
    const { call_id, feedback } = event.data;
    const tool = toolOf(run, call_id);
    return [
      status(`Rejected ${tool}${feedback ? `: ${clip(feedback)}` : ''}`, { call_id, tool_name: tool, decision: 'reject', ...aboutRun(run) }, { call_id }),
    ];
  },
  ToolResultReceived: ({ event, run }) => {
    if (!run) return [];
    const { call_id, error } = event.data;
    const tool = toolOf(run, call_id);
    const content = error !== undefined ? `${tool} failed: ${clip(error)}` : `${tool} done`;
    return [status(content, { call_id, tool_name: tool, ok: error === undefined, ...aboutRun(run) }, { call_id })];
  },
  // RunSucceeded: nothing; the final assistant_message went out with its turn, and TaskFinished (atomic)
  // or subtask_completed (a subtask) says the work ended.
  RunFailed: ({ event, run }) => {
    if (!run) return [];
    const { error } = event.data;
    const code = event.data.code ?? 'run_failed';
    if (run.kind === 'subtask') return [status(`The ${run.agent} agent stopped: ${clip(error)}`, { code, ...aboutRun(run) }, aboutRun(run))];
    return [{ type: 'error', code, content: `The ${run.agent} agent failed: ${error}`, error, ...aboutRun(run), metadata: { code, ...aboutRun(run) } }];
  },
  RunCancelled: ({ event, run }) => {
    if (!run) return [];
    const reason = event.data.reason;
    return [status(`The ${run.agent} agent was stopped${reason ? `: ${clip(reason)}` : ''}`, { ...aboutRun(run), ...(reason ? { reason } : {}) }, aboutRun(run))];
  },
};

/** The frames one event shows the IDE (none for events it need not see, such as SubtaskDispatched). */
export function framesOf(context: FrameContext): FrameBody[] {
  const render = renderers[context.event.type] as Renderer<EventType> | undefined;
  return render ? render(context as FrameContext<Extract<DomainEvent, { type: EventType }>>) : [];
}
