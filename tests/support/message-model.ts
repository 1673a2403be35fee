// The IDE's MessageModel, as a schema: every frame the server sends must decode with it, or the Flutter
// client's message stream breaks on that frame. Written from pese-git/codelab_ide,
// packages/codelab_ai_assistant/lib/features/agent_chat/data/models/message_model.dart (the freezed
// factory, latest version with the planning fields) and its generated message_model.g.dart, which
// decodes with casts: `json['type'] as String` (required), `as String?`, `as bool?`,
// `as Map<String, dynamic>?` and, for `steps`, a list of maps. A cast of the wrong type throws; a null is
// accepted by the nullable casts, but the seed's gateway left nulls out and so do we (DESIGN §5), so a
// null fails here too. Keys the model does not know (offset, epoch, approval_request_id, plan_summary …)
// are ignored by the decoder: they may be anything.
//
// Also from ws_message.dart: agent_switched reads `confidence` as `String?` (top level or metadata).
import * as v from 'valibot';

const text = v.optional(v.string());
const object = v.optional(
  v.custom<Record<string, unknown>>((value) => typeof value === 'object' && value !== null && !Array.isArray(value), 'must be an object (a Dart map)'),
);
const flag = v.optional(v.boolean());

export const messageModel = v.looseObject({
    type: v.pipe(v.string(), v.minLength(1)),
    content: text,
    role: text,
    is_final: flag,
    call_id: text,
    tool_name: text,
    arguments: object,
    requires_approval: flag,
    result: object,
    error: text,
    agent_type: text,
    from_agent: text,
    to_agent: text,
    reason: text,
    plan_id: text,
    steps: v.optional(v.array(v.record(v.string(), v.unknown()))),
    current_step: text,
    step_id: text,
    status: text,
    decision: text,
    feedback: text,
    metadata: object,
    // ws_message.dart: WSAgentSwitchedMessage.confidence is String? (read top level or from metadata).
    confidence: text,
    // The plan approval dialog reads plan_summary as a map, and inside it these casts.
    plan_summary: v.optional(
      v.looseObject({
        goal: text,
        subtasks_count: v.optional(v.pipe(v.number(), v.integer())),
        total_estimated_time: text,
        subtasks: v.optional(
          v.array(
            v.looseObject({
              description: text,
              agent: text,
              estimated_time: text,
              dependencies: v.optional(v.array(v.unknown())),
            }),
          ),
        ),
      }),
    ),
});

/** Throws with every problem when `frame` would not decode as the IDE's MessageModel. */
export function assertMessageModel(frame: unknown): void {
  if (typeof frame === 'object' && frame !== null) {
    const nulls = Object.entries(frame).filter(([, value]) => value === null).map(([key]) => key);
    if (nulls.length > 0) throw new Error(`frame has null fields (${nulls.join(', ')}): the IDE expects absent fields to be left out`);
  }
  const result = v.safeParse(messageModel, frame);
  if (!result.success) {
    const problems = result.issues.map((issue) => `${v.getDotPath(issue) ?? '(frame)'}: ${issue.message}`);
    throw new Error(`frame does not decode as the IDE's MessageModel (${problems.join('; ')}): ${JSON.stringify(frame).slice(0, 500)}`);
  }
  const metadata = (frame as { metadata?: Record<string, unknown>; type?: string }).metadata;
  if ((frame as { type?: string }).type === 'agent_switched' && metadata && metadata.confidence !== undefined && typeof metadata.confidence !== 'string') {
    throw new Error('agent_switched metadata.confidence must be a string (ws_message.dart reads it as String?)');
  }
}
