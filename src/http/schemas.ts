// Request bodies and query strings, validated at the edge with valibot. Unknown keys are ignored
// (the IDE protocol promises that); wrong types and missing fields get a 400 that names the field.
import * as v from 'valibot';
import { AGENT_TYPES, sessionMode } from '../events/catalog.js';
import { MAX_SUBTASKS } from '../commands/dag.js';
import { MAX_DURATION_S, parseDuration } from '../commands/duration.js';
import { DomainError } from '../commands/errors.js';
import { MULTITASK_STRATEGIES } from '../commands/session.js';

/** An estimate: seconds, or the strings people write ("5 min", "90s", "1h 30m", "2 hours", "1.5 h"). */
const estimate = v.pipe(
  v.union([v.pipe(v.number(), v.minValue(0), v.maxValue(MAX_DURATION_S)), v.string()], 'must be a number of seconds or a duration such as "5 min"'),
  v.rawTransform<number | string, number>(({ dataset, addIssue, NEVER }) => {
    try {
      return parseDuration(dataset.value);
    } catch (error) {
      addIssue({ message: error instanceof DomainError ? error.message.replace(/^estimated_time /, '') : 'is not a duration' });
      return NEVER;
    }
  }),
);

const id = v.pipe(v.string(), v.trim(), v.minLength(1, 'must not be empty'), v.maxLength(200, 'is longer than 200 characters'));
const reason = v.optional(v.pipe(v.string(), v.maxLength(10_000)));

export const startSessionBody = v.object({
  session_id: v.optional(v.pipe(id, v.regex(/^[A-Za-z0-9._:-]+$/, 'may contain only letters, digits and . _ : -'))),
  name: v.optional(v.pipe(v.string(), v.maxLength(200))),
  mode: v.optional(v.pipe(v.string(), v.trim(), sessionMode)),
  agent_type: v.optional(v.picklist(AGENT_TYPES)),
});

export const userMessageBody = v.object({
  content: v.pipe(v.string(), v.minLength(1, 'must not be empty'), v.maxLength(100_000)),
  role: v.optional(v.literal('user')),
  agent_type: v.optional(v.picklist(AGENT_TYPES)),
  /** What the message does while the session is busy (default: the server's MULTITASK_STRATEGY). */
  strategy: v.optional(v.picklist(MULTITASK_STRATEGIES, `must be one of ${MULTITASK_STRATEGIES.join(', ')}`)),
});

/** `strategy` may also sit in `metadata`, as the IDE puts its extras there; top-level wins. */
export function strategyFromMetadata(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const record = body as Record<string, unknown>;
  const nested = typeof record.metadata === 'object' && record.metadata !== null ? (record.metadata as Record<string, unknown>) : {};
  const strategy = record.strategy ?? nested.strategy;
  return strategy === undefined || strategy === null ? record : { ...record, strategy };
}

/** A tool's outcome for POST /sessions/:id/tool-calls/:call_id/result (the socket's tool_result). */
export const toolResultBody = v.object({
  tool_name: v.nullish(v.pipe(v.string(), v.maxLength(200))),
  /** Any JSON the tool produced. */
  result: v.optional(v.unknown()),
  /** The tool failed; an error starting "User rejected" is the user's refusal. */
  error: v.nullish(v.pipe(v.string(), v.maxLength(100_000))),
});

/** A decision for POST /sessions/:id/tool-calls/:call_id/decision (the socket's hitl_decision). */
export const toolDecisionBody = v.object({
  decision: v.picklist(['approve', 'edit', 'reject'], 'must be approve, edit or reject'),
  modified_arguments: v.nullish(v.record(v.string(), v.unknown(), 'must be an object of the arguments to run instead')),
  feedback: v.nullish(v.pipe(v.string(), v.maxLength(10_000))),
  remember: v.nullish(v.boolean()),
});

export const reasonBody = v.object({ reason });

const subtaskBody = v.object({
  id: v.optional(v.pipe(id, v.regex(/^[A-Za-z0-9._:-]+$/, 'may contain only letters, digits and . _ : -'))),
  description: v.pipe(v.string(), v.trim(), v.minLength(1, 'must not be empty'), v.maxLength(10_000)),
  agent: v.optional(v.picklist(AGENT_TYPES)),
  dependencies: v.optional(
    v.pipe(
      v.array(v.union([v.pipe(v.number(), v.integer(), v.minValue(0)), id], 'must be a subtask index (integer) or id (string)')),
      v.maxLength(MAX_SUBTASKS),
    ),
  ),
  estimated_time: v.optional(estimate),
});

export const createPlanBody = v.object({
  session_id: v.optional(id),
  goal: v.pipe(v.string(), v.trim(), v.minLength(1, 'must not be empty'), v.maxLength(10_000)),
  subtasks: v.pipe(v.array(subtaskBody), v.maxLength(MAX_SUBTASKS, `has more than ${MAX_SUBTASKS} subtasks`)),
  default_agent: v.optional(v.picklist(AGENT_TYPES)),
});

export const revisePlanBody = v.object({
  goal: v.optional(v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(10_000))),
  subtasks: v.pipe(v.array(subtaskBody), v.maxLength(MAX_SUBTASKS)),
  feedback: reason,
});

const decisionFields = {
  approval_request_id: id,
  decision: v.picklist(['approve', 'reject', 'modify'], 'must be approve, reject or modify'),
  feedback: v.optional(v.pipe(v.string(), v.maxLength(10_000))),
};
export const decisionBody = v.object(decisionFields);

/** A known IDE build nests the decision in `metadata`; top-level fields win when both are present. */
export function flattenDecision(body: unknown): unknown {
  if (typeof body !== 'object' || body === null) return body;
  const record = body as Record<string, unknown>;
  const nested = typeof record.metadata === 'object' && record.metadata !== null ? (record.metadata as Record<string, unknown>) : {};
  const pick = (key: string) => record[key] ?? nested[key];
  return { approval_request_id: pick('approval_request_id'), decision: pick('decision'), feedback: pick('feedback') };
}

const limit = v.optional(v.pipe(v.string(), v.toNumber(), v.integer('must be an integer'), v.minValue(1), v.maxValue(500)));
const cursor = v.optional(v.pipe(v.string(), v.toNumber(), v.integer('is not a cursor from this API'), v.minValue(0)));

export const listSessionsQuery = v.object({
  status: v.optional(v.picklist(['active', 'suspended', 'completed', 'expired'])),
  mode: v.optional(sessionMode),
  limit,
  cursor,
});

export const listApprovalsQuery = v.object({
  session_id: v.optional(id),
  status: v.optional(v.picklist(['pending', 'approved', 'rejected', 'modification_requested', 'expired', 'closed'])),
  limit,
  cursor,
});

export const historyQuery = v.object({ limit, cursor });

export const streamQuery = v.object({
  from: v.optional(v.pipe(v.string(), v.toNumber(), v.integer(), v.minValue(0))),
  limit,
  direction: v.optional(v.picklist(['forwards', 'backwards'])),
});

export const waitForQuery = v.object({
  wait_for: v.optional(v.pipe(v.string(), v.toNumber(), v.integer('must be a position from a command response'), v.minValue(0))),
});

/** PATCH /sessions/:id: the IDE renames with `{title}`; `name` (Planline's word) is accepted too. */
export const renameSessionBody = v.object({
  title: v.pipe(v.string('is required (a string)'), v.trim(), v.maxLength(200, 'is longer than 200 characters')),
});

/** `title`, or `name` when no title is given. */
export function titleOrName(body: unknown): unknown {
  if (typeof body !== 'object' || body === null) return body;
  const record = body as Record<string, unknown>;
  return { title: record.title ?? record.name };
}

export const conversationQuery = v.object({ limit, cursor });
