// The jobs the executor hands to workers over the bus, one kind per subject. Each job's id is derived
// from the event that caused it, so a reactor that handles an event twice (a restart before its
// checkpoint landed) enqueues nothing twice: the queue drops the repeated id.
import type { JsonObject } from '../bus/bus.js';

export const JOB_KINDS = {
  /** Classify a message: answer it with one agent (an atomic run) or plan it. */
  classify: 'classify',
  /** Draft a plan's next revision: after `modify`, or after a subtask exhausted its retries. */
  replan: 'replan',
  /** One model turn of an agent run. */
  agentTurn: 'agent_turn',
  /** Dispatch a plan's subtasks whose retry time has come (naks itself until then). */
  planWake: 'plan_wake',
  /** Fail a run whose tool call the IDE has not answered in time (naks itself until then). */
  toolTimeout: 'tool_timeout',
} as const;

/** Live topic: a run was cancelled, workers abort its model call. */
export const ABORT_TOPIC = 'runs.abort';

export interface ClassifyJob extends JsonObject {
  session_id: string;
  message_id: string;
}
export interface ReplanJob extends JsonObject {
  plan_id: string;
  /** The revision whose replacement is wanted (a job for an older one is stale). */
  revision: number;
}
export interface AgentTurnJob extends JsonObject {
  run_id: string;
  turn: number;
}
export interface PlanWakeJob extends JsonObject {
  plan_id: string;
  /** ISO time from which the retry may be dispatched. */
  at: string;
}
export interface ToolTimeoutJob extends JsonObject {
  run_id: string;
  call_id: string;
  /** ISO time at which the call is overdue. */
  at: string;
}

/** Milliseconds until `iso`, at least 0. */
export const msUntil = (iso: string, now: number = Date.now()) => Math.max(0, Date.parse(iso) - now);

/** Read a job's payload field as a string (a malformed job is parked, not retried). */
export function field(payload: JsonObject, name: string): string {
  const value = payload[name];
  if (typeof value !== 'string' || value.length === 0) throw new MalformedJobError(`job payload lacks ${name}`);
  return value;
}
export function numberField(payload: JsonObject, name: string): number {
  const value = payload[name];
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new MalformedJobError(`job payload lacks ${name}`);
  return value;
}

export class MalformedJobError extends Error {
  override readonly name = 'MalformedJobError';
}
