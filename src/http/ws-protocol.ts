// What an IDE may send on the socket (DESIGN §5), validated with valibot. The Flutter client encodes
// every frame from its MessageModel with toJson(), which writes each field, null when unset: null
// reads as absent here. Unknown keys are ignored. Anything else that is wrong becomes one clear error
// (code, content, error) and changes nothing.
import * as v from 'valibot';
import { AGENT_TYPES, type AgentType } from '../events/catalog.js';
import type { Decision } from '../commands/plan.js';
import { MULTITASK_STRATEGIES, type MultitaskStrategy } from '../commands/session.js';
import type { ControlFrame } from './ws-snapshot.js';

/** An inbound frame, checked and normalized. */
export type Inbound =
  | { type: 'user_message'; content: string; agent_type?: AgentType | undefined; strategy?: MultitaskStrategy | undefined; command_id?: string | undefined }
  | {
      type: 'plan_decision';
      approval_request_id: string;
      decision: Decision;
      feedback?: string | undefined;
      /** The IDE's approval path edits with `modified_data`: for a tool call, the arguments to run instead. */
      modified_data?: Record<string, unknown> | undefined;
      command_id?: string | undefined;
    }
  | { type: 'tool_call_result'; call_id: string; result?: unknown; error?: string | undefined; command_id?: string | undefined }
  | {
      type: 'hitl_decision';
      call_id: string;
      decision: 'approve' | 'edit' | 'reject';
      modified_arguments?: Record<string, unknown> | undefined;
      feedback?: string | undefined;
      remember?: boolean | undefined;
      command_id?: string | undefined;
    }
  | { type: 'switch_agent'; agent_type: AgentType; reason?: string | undefined; command_id?: string | undefined }
  | { type: 'cancel'; plan_id?: string | undefined; reason?: string | undefined; command_id?: string | undefined }
  | { type: 'ping' }
  | { type: 'resume'; since: number; epoch?: string | undefined };

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const id = v.pipe(v.string(), v.trim(), v.minLength(1, 'must not be empty'), v.maxLength(200, 'is longer than 200 characters'));
const text = (max: number) => v.pipe(v.string(), v.maxLength(max, `is longer than ${max} characters`));
const commandId = v.nullish(v.pipe(v.string(), v.regex(/^[\x21-\x7e]{1,200}$/, 'must be 1-200 visible ASCII characters')));
const offset = v.pipe(
  v.union([v.number(), v.pipe(v.string(), v.regex(/^\d+$/, 'must be an offset from this feed'), v.transform(Number))], 'must be an offset from this feed'),
  v.integer('must be an offset from this feed'),
  v.minValue(0, 'must not be negative'),
  v.maxValue(Number.MAX_SAFE_INTEGER),
);

/** The IDE sends decisions in the present (approve) or, from its unified approval path, the past tense (approved). */
const DECISIONS: Record<string, Decision> = {
  approve: 'approve',
  reject: 'reject',
  modify: 'modify',
  approved: 'approve',
  rejected: 'reject',
  modified: 'modify',
  cancelled: 'reject',
  canceled: 'reject',
};
const decision = v.pipe(
  v.string(),
  v.check((value) => Object.hasOwn(DECISIONS, value), 'must be approve, reject or modify (or approved, rejected, modified, cancelled)'),
  v.transform((value) => DECISIONS[value] as Decision),
);

const schemas = {
  user_message: v.object({
    content: v.pipe(v.string(), v.minLength(1, 'must not be empty'), v.maxLength(100_000, 'is longer than 100000 characters')),
    role: v.nullish(v.literal('user', 'must be "user"')),
    agent_type: v.nullish(v.picklist(AGENT_TYPES, `must be one of ${AGENT_TYPES.join(', ')}`)),
    strategy: v.nullish(v.picklist(MULTITASK_STRATEGIES, `must be one of ${MULTITASK_STRATEGIES.join(', ')}`)),
    command_id: commandId,
  }),
  plan_decision: v.object({
    approval_request_id: id,
    decision,
    feedback: v.nullish(text(10_000)),
    modification_request: v.nullish(text(10_000)),
    command_id: commandId,
  }),
  approval_result: v.object({
    approval_request_id: id,
    decision: v.nullish(decision),
    approved: v.nullish(v.boolean()),
    feedback: v.nullish(text(10_000)),
    modified_data: v.nullish(v.record(v.string(), v.unknown())),
    command_id: commandId,
  }),
  tool_result: v.object({
    call_id: id,
    tool_name: v.nullish(v.pipe(v.string(), v.maxLength(200, 'is longer than 200 characters'))),
    // Any JSON: the IDE sends an object, other clients a string or a list.
    result: v.optional(v.unknown()),
    error: v.nullish(text(100_000)),
    command_id: commandId,
  }),
  hitl_decision: v.object({
    call_id: id,
    decision: v.picklist(['approve', 'edit', 'reject'], 'must be approve, edit or reject'),
    modified_arguments: v.nullish(v.record(v.string(), v.unknown())),
    feedback: v.nullish(text(10_000)),
    remember: v.nullish(v.boolean()),
    command_id: commandId,
  }),
  switch_agent: v.object({
    agent_type: v.picklist(AGENT_TYPES, `must be one of ${AGENT_TYPES.join(', ')}`),
    content: v.nullish(text(10_000)),
    reason: v.nullish(text(10_000)),
    command_id: commandId,
  }),
  cancel: v.object({ plan_id: v.nullish(id), reason: v.nullish(text(10_000)), command_id: commandId }),
  resume: v.object({ since: offset, epoch: v.nullish(v.pipe(v.string(), v.maxLength(200))) }),
};

export const INBOUND_TYPES = ['user_message', 'plan_decision', 'tool_result', 'hitl_decision', 'switch_agent', 'cancel', 'ping', 'resume'] as const;

function parse<S extends v.GenericSchema>(schema: S, input: unknown, type: string): v.InferOutput<S> {
  const result = v.safeParse(schema, input);
  if (result.success) return result.output;
  const errors = result.issues.map((issue) => ({ path: v.getDotPath(issue) ?? '', message: issue.message }));
  const first = errors[0];
  throw new ProtocolError('validation_failed', `invalid ${type} frame: ${first?.path ? `${first.path} ` : ''}${first?.message ?? 'is invalid'}`, { errors });
}

const objectOrEmpty = (value: unknown): Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};

/** A frame's text → a checked inbound message, or a ProtocolError saying what is wrong. */
export function parseInbound(raw: string): Inbound {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    throw new ProtocolError('malformed_json', `the frame is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ProtocolError('validation_failed', 'a frame must be a JSON object with a type');
  const frame = value as Record<string, unknown>;
  const type = frame.type;
  if (typeof type !== 'string') throw new ProtocolError('validation_failed', 'a frame must have a string type', { errors: [{ path: 'type', message: 'is required' }] });
  const metadata = objectOrEmpty(frame.metadata);
  // A known IDE build nests a decision's fields in metadata; top-level fields win when both are there.
  const flat = (keys: readonly string[]) => Object.fromEntries(keys.map((key) => [key, frame[key] ?? metadata[key]]));

  switch (type) {
    case 'user_message': {
      const m = parse(schemas.user_message, { ...frame, strategy: frame.strategy ?? metadata.strategy }, type);
      return { type, content: m.content, agent_type: m.agent_type ?? undefined, strategy: m.strategy ?? undefined, command_id: m.command_id ?? undefined };
    }
    case 'plan_decision': {
      const m = parse(schemas.plan_decision, flat(['approval_request_id', 'decision', 'feedback', 'modification_request', 'command_id']), type);
      return { type, approval_request_id: m.approval_request_id, decision: m.decision, feedback: m.feedback ?? m.modification_request ?? undefined, command_id: m.command_id ?? undefined };
    }
    case 'tool_result': {
      if (frame.call_id !== undefined && frame.call_id !== null) {
        const m = parse(schemas.tool_result, frame, type);
        // The IDE's toJson() writes `result: null` beside an error: null is no result.
        const result = m.result === null ? undefined : m.result;
        return { type: 'tool_call_result', call_id: m.call_id, result, error: m.error ?? undefined, command_id: m.command_id ?? undefined };
      }
      // The IDE's unified approval path: no call_id, the decision on an approval request in metadata.
      const m = parse(schemas.approval_result, { ...metadata, command_id: frame.command_id ?? metadata.command_id }, 'tool_result');
      const chosen = m.decision ?? (m.approved === true ? 'approve' : m.approved === false ? 'reject' : undefined);
      if (chosen === undefined) {
        throw new ProtocolError('validation_failed', 'invalid tool_result frame: metadata.decision is required (or metadata.approved), or a top-level call_id for a tool result', {
          errors: [{ path: 'metadata.decision', message: 'is required' }],
        });
      }
      const feedback = m.feedback ?? (chosen === 'modify' && m.modified_data ? JSON.stringify(m.modified_data) : undefined);
      return {
        type: 'plan_decision',
        approval_request_id: m.approval_request_id,
        decision: chosen,
        feedback,
        modified_data: m.modified_data ?? undefined,
        command_id: m.command_id ?? undefined,
      };
    }
    case 'hitl_decision': {
      const m = parse(schemas.hitl_decision, flat(['call_id', 'decision', 'modified_arguments', 'feedback', 'remember', 'command_id']), type);
      return {
        type,
        call_id: m.call_id,
        decision: m.decision,
        modified_arguments: m.modified_arguments ?? undefined,
        feedback: m.feedback ?? undefined,
        remember: m.remember ?? undefined,
        command_id: m.command_id ?? undefined,
      };
    }
    case 'switch_agent': {
      const m = parse(schemas.switch_agent, frame, type);
      return { type, agent_type: m.agent_type, reason: m.reason ?? m.content ?? undefined, command_id: m.command_id ?? undefined };
    }
    case 'cancel': {
      const m = parse(schemas.cancel, flat(['plan_id', 'reason', 'command_id']), type);
      return { type, plan_id: m.plan_id ?? undefined, reason: m.reason ?? undefined, command_id: m.command_id ?? undefined };
    }
    case 'ping':
      return { type };
    case 'resume': {
      const m = parse(schemas.resume, flat(['since', 'epoch']), type);
      return { type, since: m.since, epoch: m.epoch ?? undefined };
    }
    default:
      throw new ProtocolError('unknown_type', `unknown frame type ${JSON.stringify(type).slice(0, 100)}; expected one of ${INBOUND_TYPES.join(', ')}`, {
        known_types: [...INBOUND_TYPES],
      });
  }
}

/** The `error` frame of DESIGN §5: a stable code, readable content, the same text as `error`; details in metadata. */
export function errorFrame(code: string, message: string, details: Record<string, unknown> = {}): ControlFrame {
  return { type: 'error', code, content: message, error: message, timestamp: new Date().toISOString(), metadata: { code, ...details } };
}
