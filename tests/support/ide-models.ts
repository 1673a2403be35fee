// The IDE's models, as valibot schemas: what the Flutter client `codelab_ai_assistant`
// (github.com/pese-git/codelab_ide, packages/codelab_ai_assistant/lib/…) decodes from Planline's REST
// bodies and WebSocket frames. Written from its Dart files, each schema citing the file (and the
// commit read) it mirrors. The generated `fromJson` code throws on a missing required key and on a
// value of another type (`as String` on null or a number, `as Map` on a string, `as List` on an
// object), so each field here is exactly as the Dart declares it:
//   - `String x` → required string; `String? x` → string, null or absent (v.nullish);
//   - `int x` read as `(json['x'] as num).toInt()` → a number; Planline must send an integer, so the
//     schemas ask for one;
//   - `DateTime` read with `DateTime.parse(json['x'] as String)` → an ISO 8601 string;
//   - `Map<String, dynamic>` → a JSON object (not an array, not null); `List<…>` → an array.
// Unknown keys are ignored by the IDE, so the object schemas ignore them too. The IDE reads a declared
// null fine where the field is nullable, but Planline leaves nulls out (as the seed's gateway did):
// `declaredNulls` finds any, and `expectIdeModel` fails on them.
import { expect } from 'vitest';
import * as v from 'valibot';

/** `String?`, `int?`, … : null or absent reads as null. */
const nullable = <S extends v.GenericSchema>(schema: S) => v.nullish(schema);

/** `int`, read as `(json[k] as num).toInt()`. */
const int = v.pipe(v.number(), v.integer('an int field: send an integer'));

/** `DateTime`, read as `DateTime.parse(json[k] as String)`. */
const dateTime = v.pipe(v.string(), v.isoTimestamp('DateTime.parse needs an ISO 8601 timestamp'));

/** `Map<String, dynamic>`: `json[k] as Map<String, dynamic>` throws on an array, a string or null. */
const dartMap = v.custom<Record<string, unknown>>(
  (value) => typeof value === 'object' && value !== null && !Array.isArray(value),
  'a Map<String, dynamic>: send a JSON object (not an array, a string or null)',
);

const stringList = v.array(v.string());

// ---------------------------------------------------------------------------------------------------
// Sessions: features/session_management/data/models/

/**
 * SessionModel as declared in session_model.dart (commit 2207ca92): `@JsonKey(name: 'id') required
 * String id`, `DateTime? createdAt / updatedAt / lastActivity`, `String? currentAgent`, `required int
 * messageCount`, `String? title / description`, `bool? isActive`. The session datasource
 * (session_remote_datasource.dart) decodes POST /sessions, GET /sessions/:id, every GET /sessions
 * item and PATCH /sessions/:id with it.
 */
export const SessionModel = v.object({
  id: v.string(),
  created_at: nullable(dateTime),
  updated_at: nullable(dateTime),
  last_activity: nullable(dateTime),
  current_agent: nullable(v.string()),
  message_count: int,
  title: nullable(v.string()),
  description: nullable(v.string()),
  is_active: nullable(v.boolean()),
});

/**
 * SessionModel as the stored generated code reads it (session_model.g.dart, commits 81ef1175 and
 * 48dfc50c): `id: json['session_id'] as String`, `currentAgent: json['current_agent'] as String`
 * (required), `messageCount: (json['message_count'] as num).toInt()`; 81ef1175 also parses
 * `created_at` and `updated_at` unconditionally. A build from that code must decode Planline's
 * sessions too.
 */
export const SessionModelGenerated = v.object({
  session_id: v.string(),
  created_at: dateTime,
  updated_at: dateTime,
  last_activity: nullable(dateTime),
  current_agent: v.string(),
  message_count: int,
  title: nullable(v.string()),
  description: nullable(v.string()),
});

/**
 * SessionInfo (session_models.dart 88ff6f34, session_models.g.dart ce3d2fd8): `session_id` String,
 * `message_count` int, `last_activity` String (required), `current_agent` String?.
 */
export const SessionInfo = v.object({
  session_id: v.string(),
  message_count: int,
  last_activity: v.string(),
  current_agent: nullable(v.string()),
});

/** SessionListResponse (session_models.dart): `required List<SessionInfo> sessions`, `required int total`. GatewayApi.listSessions decodes GET /sessions with it. */
export const SessionListResponse = v.object({
  sessions: v.array(SessionInfo),
  total: int,
});

/**
 * The IDE's history loader (agent_chat/data/repositories/agent_repository_impl.dart,
 * `_chatMessageToWSMessage`) reads the first of `tool_calls` as a Map: `id` as String?, `function`
 * as Map?, its `name` as String? and its `arguments` as a JSON string or a Map.
 */
export const HistoryToolCall = v.object({
  id: nullable(v.string()),
  function: nullable(
    v.object({
      name: nullable(v.string()),
      arguments: nullable(v.union([v.string(), dartMap])),
    }),
  ),
});

/**
 * ChatMessage (session_models.dart, .g.dart ce3d2fd8): `required String role`, `String? content`,
 * `String? name`, `String? tool_call_id`, `List<Map<String, dynamic>>? tool_calls` (each entry as the
 * history loader reads it, HistoryToolCall).
 */
export const ChatMessage = v.object({
  role: v.string(),
  content: nullable(v.string()),
  name: nullable(v.string()),
  tool_call_id: nullable(v.string()),
  tool_calls: nullable(v.array(v.intersect([dartMap, HistoryToolCall]))),
});

/** AgentSwitch (session_models.dart): `String? from / to / reason / timestamp`. */
export const AgentSwitch = v.object({
  from: nullable(v.string()),
  to: nullable(v.string()),
  reason: nullable(v.string()),
  timestamp: nullable(v.string()),
});

/**
 * SessionHistory (session_models.dart, .g.dart ce3d2fd8): `session_id` String, `messages`
 * List<ChatMessage>, `message_count` int, `last_activity` String?, `current_agent` String?,
 * `agent_history` List<AgentSwitch>? (default []). GatewayApi.getSessionHistory decodes GET
 * /sessions/:id/history with it.
 */
export const SessionHistory = v.object({
  session_id: v.string(),
  messages: v.array(ChatMessage),
  message_count: int,
  last_activity: nullable(v.string()),
  current_agent: nullable(v.string()),
  agent_history: nullable(v.array(AgentSwitch)),
});

/** AgentInfo (session_models.dart): `type`, `name`, `description` String, `allowed_tools` List<String>, `has_file_restrictions` bool; GET /agents is a list of them. */
export const AgentInfo = v.object({
  type: v.string(),
  name: v.string(),
  description: v.string(),
  allowed_tools: stringList,
  has_file_restrictions: v.boolean(),
});

/** CurrentAgentInfo (session_models.dart): `session_id`, `current_agent` String, `agent_history` List<AgentSwitch>, `switch_count` int (all required). */
export const CurrentAgentInfo = v.object({
  session_id: v.string(),
  current_agent: v.string(),
  agent_history: v.array(AgentSwitch),
  switch_count: int,
});

// ---------------------------------------------------------------------------------------------------
// Approvals: features/tool_execution/data/models/pending_approvals_response.dart (73d88afe, .g.dart
// 096bfa86) and features/approval/data/datasources/approval_api_datasource_impl.dart (15f6043c)

/**
 * PendingApprovalData: `call_id` String, `tool_name` String, `arguments` Map<String, dynamic>,
 * `reason` String?, `created_at` String, which ApprovalApiDataSourceImpl then reads with
 * `DateTime.parse` (an ISO timestamp).
 */
export const PendingApprovalData = v.object({
  call_id: v.string(),
  tool_name: v.string(),
  arguments: dartMap,
  reason: nullable(v.string()),
  created_at: dateTime,
});

/** PendingApprovalsResponse: `session_id` String, `pending_approvals` List<PendingApprovalData>, `count` int. GatewayApi.getPendingApprovals decodes GET /sessions/:id/pending-approvals with it. */
export const PendingApprovalsResponse = v.object({
  session_id: v.string(),
  pending_approvals: v.array(PendingApprovalData),
  count: int,
});

/**
 * A plan summary as the plan approval dialog reads it (agent_chat/presentation/widgets/
 * plan_approval_dialog.dart, 15f6043c): `goal` as String?, `subtasks_count` as int?,
 * `total_estimated_time` as String?, `subtasks` cast to List<Map>, each with `description`, `agent`,
 * `estimated_time` as String? and `dependencies` as List?.
 */
export const PlanSummary = v.object({
  goal: nullable(v.string()),
  subtasks_count: nullable(int),
  total_estimated_time: nullable(v.string()),
  subtasks: nullable(
    v.array(
      v.intersect([
        dartMap,
        v.object({
          description: nullable(v.string()),
          agent: nullable(v.string()),
          estimated_time: nullable(v.string()),
          dependencies: nullable(v.array(v.unknown())),
        }),
      ]),
    ),
  ),
});

// ---------------------------------------------------------------------------------------------------
// Frames: features/agent_chat/data/models/message_model.dart

/**
 * MessageModel, the model every WebSocket frame is decoded with (AgentRemoteDataSource →
 * MessageModel.fromJson). Fields of two generations of message_model.dart: 096bfa86 (with its
 * .g.dart) — `type` String (required); `content`, `role`, `call_id`, `tool_name`, `error`,
 * `agent_type`, `from_agent`, `to_agent`, `reason` String?; `is_final`, `requires_approval` bool?;
 * `arguments`, `result`, `metadata` Map<String, dynamic>? — and a058a7cf, which adds `plan_id`,
 * `current_step`, `step_id`, `status`, `decision`, `feedback` String? and `steps`
 * List<Map<String, dynamic>>?. `plan_summary` is a Map<String, dynamic>?: the plan approval dialog
 * (plan_approval_dialog.dart) takes it as one. A frame must decode under both generations.
 */
export const MessageModel = v.object({
  type: v.string(),
  content: nullable(v.string()),
  role: nullable(v.string()),
  is_final: nullable(v.boolean()),
  call_id: nullable(v.string()),
  tool_name: nullable(v.string()),
  arguments: nullable(dartMap),
  requires_approval: nullable(v.boolean()),
  result: nullable(dartMap),
  error: nullable(v.string()),
  agent_type: nullable(v.string()),
  from_agent: nullable(v.string()),
  to_agent: nullable(v.string()),
  reason: nullable(v.string()),
  plan_id: nullable(v.string()),
  steps: nullable(v.array(dartMap)),
  current_step: nullable(v.string()),
  step_id: nullable(v.string()),
  status: nullable(v.string()),
  decision: nullable(v.string()),
  feedback: nullable(v.string()),
  metadata: nullable(dartMap),
  plan_summary: nullable(dartMap),
});

// ---------------------------------------------------------------------------------------------------

type AnySchema = v.GenericSchema & { type: string; wrapped?: AnySchema; entries?: Record<string, AnySchema>; item?: AnySchema; options?: AnySchema[] };

/** The schema under optional/nullish/nullable wrappers. */
function unwrapped(schema: AnySchema): AnySchema {
  let s = schema;
  while (s.wrapped && ['optional', 'nullish', 'nullable', 'exact_optional'].includes(s.type)) s = s.wrapped;
  return s;
}

/** Paths of the fields a model declares that `value` sends as null (Planline leaves them out instead). */
export function declaredNulls(schema: v.GenericSchema, value: unknown, path = ''): string[] {
  const s = unwrapped(schema as AnySchema);
  if (s.type === 'intersect' && s.options) return [...new Set(s.options.flatMap((option) => declaredNulls(option, value, path)))];
  if (s.type === 'object' && s.entries && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    return Object.entries(s.entries).flatMap(([key, field]) =>
      record[key] === null ? [`${path}${key}`] : key in record ? declaredNulls(field, record[key], `${path}${key}.`) : [],
    );
  }
  if (s.type === 'array' && s.item && Array.isArray(value)) return value.flatMap((item, i) => declaredNulls(s.item!, item, `${path}${i}.`));
  return [];
}

/**
 * Asserts that `value` decodes as the model (every required field there, every field of its type) and
 * that no declared field is null. Returns the value for further checks.
 */
export function expectIdeModel<T>(schema: v.GenericSchema, value: T, what: string): T {
  const result = v.safeParse(schema, value);
  const problems = result.success ? [] : result.issues.map((issue) => `${v.getDotPath(issue) ?? '(root)'}: ${issue.message}`);
  expect(problems, `${what} must decode as the IDE model: ${JSON.stringify(value)}`).toEqual([]);
  expect(declaredNulls(schema, value), `${what}: nulls in fields the IDE declares (leave them out)`).toEqual([]);
  return value;
}
