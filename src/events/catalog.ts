// Every event Planline writes, with its valibot schema and current schema version. Events are
// validated when decided (a decider bug never reaches the log) and upcast when read (old versions are
// never rewritten). Names are in the past tense; data fields use the IDE protocol's snake_case.
import * as v from 'valibot';
import type { StoredEvent } from './store.js';

export const AGENT_TYPES = ['coder', 'debug', 'ask', 'architect', 'universal'] as const;
export type AgentType = (typeof AGENT_TYPES)[number];

/** The modes Planline gives meaning to; any other mode (the seed's free-form `planning-control`, `copilot`, …) is kept as given and behaves as `auto`. */
export const SESSION_MODES = ['auto', 'plan', 'direct'] as const;
export type SteeringMode = (typeof SESSION_MODES)[number];
/** A session's mode as the client gave it: a short free-form string. */
export type SessionMode = string;
export const sessionMode = v.pipe(v.string(), v.minLength(1, 'must not be empty'), v.maxLength(64, 'is longer than 64 characters'), v.regex(/^[^\x00-\x1f\x7f]+$/, 'must not contain control characters'));

/** How a mode steers classification: `plan` always plans, `direct` never does, anything else is `auto`. */
export function steeringMode(mode: SessionMode): SteeringMode {
  return (SESSION_MODES as readonly string[]).includes(mode) ? (mode as SteeringMode) : 'auto';
}

const id = v.pipe(v.string(), v.minLength(1), v.maxLength(200));
const text = v.pipe(v.string(), v.maxLength(100_000));
const isoTime = v.pipe(v.string(), v.isoTimestamp());

const subtask = v.object({
  id,
  description: v.pipe(v.string(), v.minLength(1), v.maxLength(10_000)),
  agent: v.picklist(AGENT_TYPES),
  dependencies: v.array(id),
  /** Seconds; 0 when the planner gave no estimate. */
  estimated_time: v.pipe(v.number(), v.integer(), v.minValue(0)),
});
export type Subtask = v.InferOutput<typeof subtask>;

/** Who may see or drive a session besides its owner. */
export const SHARE_ROLES = ['viewer', 'collaborator'] as const;
export type ShareRole = (typeof SHARE_ROLES)[number];
/** A principal (a token's `sub`): 1-200 characters, no control characters. */
const principal = v.pipe(id, v.regex(/^[^\x00-\x1f\x7f]+$/));

const sessionEvents = {
  SessionStarted: v.object({
    session_id: id,
    name: v.pipe(v.string(), v.maxLength(200)),
    mode: sessionMode,
    agent_type: v.picklist(AGENT_TYPES),
    /** The principal that started it. Sessions started before owners existed have none: they belong to `local`. */
    owner: v.optional(principal),
  }),
  UserMessageReceived: v.object({
    message_id: id,
    content: text,
    role: v.literal('user'),
    agent_type: v.optional(v.picklist(AGENT_TYPES)),
    /** The plan this message supersedes (it was awaiting review); the follow-up closes it. */
    supersedes_plan_id: v.optional(id),
    /** Multitask `enqueue`: the session was busy; the message waits until the current work ends. */
    queued: v.optional(v.boolean()),
    /** Multitask `interrupt`: the running plan / atomic run this message cancels, in the same commit. */
    cancels_plan_id: v.optional(id),
    cancels_run_id: v.optional(id),
  }),
  /** A queued message's turn came: the session classifies it now. */
  QueuedMessageStarted: v.object({ message_id: id }),
  TaskClassified: v.object({
    kind: v.picklist(['atomic', 'complex']),
    /** Set for complex tasks: the plan that will carry them. */
    plan_id: v.optional(id),
    /** Set for atomic tasks: the agent run that answers them. */
    run_id: v.optional(id),
    agent_type: v.optional(v.picklist(AGENT_TYPES)),
    source: v.picklist(['llm', 'heuristic', 'client']),
    /** The plan this task's plan replaces while it was still awaiting review. */
    supersedes_plan_id: v.optional(id),
    /** The message classified. */
    message_id: v.optional(id),
  }),
  /** An atomic task's run ended; `answer` is its final text (the session's conversation keeps it). */
  TaskFinished: v.object({
    run_id: id,
    status: v.picklist(['succeeded', 'failed', 'cancelled']),
    answer: v.optional(text),
    error: v.optional(text),
  }),
  TaskClassificationFailed: v.object({ reason: text }),
  SessionSuspended: v.object({ reason: v.optional(text) }),
  SessionResumed: v.object({}),
  SessionCompleted: v.object({
    reason: v.optional(text),
    /** A plan still running when the session ended; the follow-up cancels it. */
    cancels_plan_id: v.optional(id),
  }),
  SessionExpired: v.object({ cancels_plan_id: v.optional(id) }),
  SessionRenamed: v.object({ name: v.pipe(v.string(), v.maxLength(200)) }),
  /** The session leaves every read model (the log keeps it); its open plan is cancelled in the same commit. */
  SessionDeleted: v.object({ reason: v.optional(text), cancels_plan_id: v.optional(id) }),
  AgentSwitched: v.object({
    from_agent: v.picklist(AGENT_TYPES),
    to_agent: v.picklist(AGENT_TYPES),
    reason: v.optional(text),
  }),
  /** The owner let another principal read (viewer) or also drive (collaborator) the session; replaces an earlier role. */
  SessionShared: v.object({ principal, role: v.picklist(SHARE_ROLES) }),
  SessionShareRevoked: v.object({ principal }),
  /** The session's tool-approval policy, whole (a change over HTTP, or an approval remembered). */
  ToolPolicyChanged: v.object({
    requires_approval: v.array(id),
    auto_approve: v.array(id),
    commands: v.object({ allow: v.array(text), deny: v.array(text) }),
    remembered: v.object({ tools: v.array(id), command_prefixes: v.array(text) }),
  }),
} as const;

const approvalId = v.object({ approval_request_id: id });

const planEvents = {
  PlanDrafted: v.object({
    plan_id: id,
    session_id: id,
    revision: v.pipe(v.number(), v.integer(), v.minValue(1)),
    goal: text,
    subtasks: v.pipe(v.array(subtask), v.minLength(1)),
    source: v.picklist(['llm', 'heuristic', 'client']),
    /** The feedback this revision answers (after modify or re-plan). */
    feedback: v.optional(text),
  }),
  PlanApprovalRequested: v.object({
    approval_request_id: id,
    revision: v.pipe(v.number(), v.integer(), v.minValue(1)),
    deadline: isoTime,
    timeout_action: v.picklist(['expire', 'approve']),
  }),
  PlanApproved: v.object({ ...approvalId.entries, decided_by: v.picklist(['user', 'timeout']) }),
  PlanRejected: v.object({ ...approvalId.entries, feedback: v.optional(text) }),
  PlanModificationRequested: v.object({ ...approvalId.entries, feedback: text }),
  PlanApprovalExpired: v.object({ ...approvalId.entries }),
  PlanSuperseded: v.object({
    reason: v.picklist(['user_message', 'new_plan']),
    /** The message or plan that replaced this one. */
    superseded_by: id,
    approval_request_id: v.optional(id),
  }),
  PlanReplanRequested: v.object({ reason: text }),
  PlanExecutionStarted: v.object({ max_parallel: v.pipe(v.number(), v.integer(), v.minValue(1)) }),
  SubtaskDispatched: v.object({ subtask_id: id, attempt: v.pipe(v.number(), v.integer(), v.minValue(1)) }),
  SubtaskStarted: v.object({ subtask_id: id, attempt: v.pipe(v.number(), v.integer(), v.minValue(1)), run_id: v.optional(id) }),
  SubtaskSucceeded: v.object({ subtask_id: id, attempt: v.pipe(v.number(), v.integer(), v.minValue(1)), result: v.optional(text) }),
  SubtaskFailed: v.object({
    subtask_id: id,
    attempt: v.pipe(v.number(), v.integer(), v.minValue(1)),
    error: text,
    /** False when retries are exhausted: the plan goes to error handling. */
    will_retry: v.boolean(),
  }),
  SubtaskRetryScheduled: v.object({
    subtask_id: id,
    attempt: v.pipe(v.number(), v.integer(), v.minValue(2)),
    not_before: isoTime,
  }),
  PlanCompleted: v.object({}),
  PlanFailed: v.object({ reason: text }),
  PlanCancelled: v.object({ reason: v.optional(text) }),
} as const;

const usage = v.object({
  prompt_tokens: v.pipe(v.number(), v.integer(), v.minValue(0)),
  completion_tokens: v.pipe(v.number(), v.integer(), v.minValue(0)),
  total_tokens: v.pipe(v.number(), v.integer(), v.minValue(0)),
});
const jsonObject = v.record(v.string(), v.unknown());
const callId = v.object({ call_id: id });

/** An agent run (`run-<id>`): an atomic task, or one attempt of a subtask. Every turn of it is here. */
const runEvents = {
  RunStarted: v.object({
    run_id: id,
    session_id: id,
    kind: v.picklist(['atomic', 'subtask']),
    agent: v.picklist(AGENT_TYPES),
    task: text,
    plan_id: v.optional(id),
    subtask_id: v.optional(id),
    attempt: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
    /** For a subtask: the plan's goal and its dependencies' results. */
    goal: v.optional(text),
    dependencies: v.optional(v.array(v.object({ id, description: text, result: v.optional(text) }))),
    /** For an atomic task: the session's recent conversation. */
    conversation: v.optional(v.array(v.object({ role: v.picklist(['user', 'assistant']), content: text }))),
  }),
  /** The model's answer for a turn, as it said it (raw tool-call arguments included, for the replay). */
  AgentReplied: v.object({
    turn: v.pipe(v.number(), v.integer(), v.minValue(1)),
    content: v.nullable(text),
    tool_calls: v.array(v.object({ id, name: v.pipe(v.string(), v.maxLength(200)), arguments: text })),
    finish_reason: v.pipe(v.string(), v.maxLength(100)),
    usage,
    model: v.optional(v.pipe(v.string(), v.maxLength(200))),
  }),
  /** A call sent to the IDE to run (after the user's approval when `requires_approval`). */
  ToolCallRequested: v.object({
    ...callId.entries,
    tool_name: id,
    arguments: jsonObject,
    requires_approval: v.boolean(),
    /** Why the tool policy decided so. */
    policy: v.optional(text),
  }),
  /** Not sent to the IDE: the refusal (bad arguments, a tool the agent may not use, a denied command) is the tool's answer. */
  ToolCallRefused: v.object({ ...callId.entries, tool_name: v.pipe(v.string(), v.maxLength(200)), error: text }),
  ToolCallApproved: v.object({ ...callId.entries, modified_arguments: v.optional(jsonObject), remember: v.optional(v.boolean()) }),
  ToolCallRejected: v.object({ ...callId.entries, feedback: v.optional(text) }),
  ToolResultReceived: v.object({ ...callId.entries, result: v.optional(v.unknown()), error: v.optional(text) }),
  RunSucceeded: v.object({ result: text }),
  RunFailed: v.object({ error: text, code: v.optional(id) }),
  RunCancelled: v.object({ reason: v.optional(text) }),
} as const;

export const eventSchemas = { ...sessionEvents, ...planEvents, ...runEvents } as const;
type Schemas = typeof eventSchemas;
export type EventType = keyof Schemas;
export type SessionEventType = keyof typeof sessionEvents;
export type PlanEventType = keyof typeof planEvents;
export type RunEventType = keyof typeof runEvents;

/** A domain event: a type and its data, before it gets an id, stream and metadata. */
export type EventOf<T extends EventType> = { type: T; data: v.InferOutput<Schemas[T]> };
export type DomainEvent = { [T in EventType]: EventOf<T> }[EventType];
export type SessionEvent = { [T in SessionEventType]: EventOf<T> }[SessionEventType];
export type PlanEvent = { [T in PlanEventType]: EventOf<T> }[PlanEventType];
export type RunEvent = { [T in RunEventType]: EventOf<T> }[RunEventType];

/** Current schema version per type. Bump it and add an upcaster when a type's data changes shape. */
export const SCHEMA_VERSIONS: Record<EventType, number> = Object.fromEntries(
  Object.keys(eventSchemas).map((type) => [type, 1]),
) as Record<EventType, number>;

/** Upcasters: `${type}@${fromVersion}` → data at fromVersion + 1. None are needed yet. */
export type Upcaster = (data: Record<string, unknown>) => Record<string, unknown>;
export const upcasters: Record<string, Upcaster> = {};

export function isEventType(type: string): type is EventType {
  return Object.hasOwn(eventSchemas, type);
}

export class InvalidEventError extends Error {
  override readonly name = 'InvalidEventError';
}

/** Check a decided event against its schema (a decider bug must never reach the log). */
export function validateEvent(event: DomainEvent): DomainEvent {
  const result = v.safeParse(eventSchemas[event.type], event.data);
  if (!result.success) {
    throw new InvalidEventError(`${event.type}: ${v.summarize(result.issues)}`);
  }
  return event;
}

/**
 * A stored event as a domain event: upcast from its schema version to the current one.
 * Unknown types (other applications' events, or newer ones) return undefined and are skipped.
 */
export function toDomainEvent(stored: Pick<StoredEvent, 'type' | 'data' | 'metadata'>): DomainEvent | undefined {
  if (!isEventType(stored.type)) return undefined;
  let data = stored.data;
  const current = SCHEMA_VERSIONS[stored.type];
  for (let version = stored.metadata.schema_version ?? 1; version < current; version++) {
    const upcast = upcasters[`${stored.type}@${version}`];
    if (!upcast) throw new InvalidEventError(`${stored.type}: no upcaster from schema version ${version}`);
    data = upcast(data);
  }
  return { type: stored.type, data } as DomainEvent;
}

export const streams = {
  session: (sessionId: string) => `session-${sessionId}`,
  plan: (planId: string) => `plan-${planId}`,
  run: (runId: string) => `run-${runId}`,
} as const;

/** Aggregate kind and id of a stream name, or undefined for streams that are not ours. */
export function parseStreamName(stream: string): { kind: 'session' | 'plan' | 'run'; id: string } | undefined {
  const match = /^(session|plan|run)-(.+)$/.exec(stream);
  return match ? { kind: match[1] as 'session' | 'plan' | 'run', id: match[2]! } : undefined;
}
