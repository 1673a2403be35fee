// What a planner is asked and what it answers, shared by the model architect and the heuristic
// planner (which is also the architect's fallback).
import type { Subtask } from '../events/catalog.js';
import type { Usage } from '../agents/model.js';

/** A subtask of the revision being replaced, as the executor knows it after a failure. */
export interface PreviousSubtask {
  id: string;
  description: string;
  agent: Subtask['agent'];
  dependencies: readonly string[];
  /** pending | running | succeeded | failed | cancelled | … (the plan decider's statuses). */
  status: string;
  result?: string | undefined;
  error?: string | undefined;
}

export interface PlanRequest {
  /** The user's task. */
  goal: string;
  /** The user's feedback after `modify` (or with a re-plan). */
  feedback?: string | undefined;
  /** Set for a re-plan after a failure: what finished, and what failed. */
  replan?: { previous: readonly PreviousSubtask[]; failure: { subtask_id: string; error: string } } | undefined;
  /** Recent conversation of the session, for context. */
  conversation?: ReadonlyArray<{ role: 'user' | 'assistant'; content: string }> | undefined;
}

export interface DraftedPlan {
  goal: string;
  /** Validated exactly like a client CreatePlan (normalizeSubtasks): ids, agents, a DAG, seconds. */
  subtasks: Subtask[];
  source: 'llm' | 'heuristic';
  /** How the plan was cut, in a sentence or two (the model's reasoning, or the heuristic's). */
  reasoning: string;
  /** Set when the model was not used or its plan was refused: why the heuristic planned instead. */
  fallback?: string;
  /** Tokens the model spent, also when its plan was refused. */
  usage?: Usage;
}
