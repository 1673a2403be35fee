// A sensible plan from a task's text alone, for when no model is configured or the model's plan is
// unusable. It cuts the task where people cut it (list items, sentences, "then", "A, B and C"),
// orders what the text orders, makes tests/verification wait for the work they check, assigns each
// piece an agent and an estimate, and on a re-plan keeps what finished and investigates the failure.
import { normalizeSubtasks, type SubtaskInput } from '../commands/dag.js';
import type { Subtask } from '../events/catalog.js';
import { pickAgent, type AtomicAgent } from './heuristic-classifier.js';
import { cleanPiece, enumerate, splitTask, STARTS_WITH_VERB, type Piece } from './task-splitter.js';
import type { DraftedPlan, PlanRequest, PreviousSubtask } from './plan-request.js';

/** More pieces than this read as a spec, not a plan: the rest is folded into the last subtask. */
export const MAX_HEURISTIC_SUBTASKS = 30;

const ESTIMATE_S: Record<AtomicAgent, number> = { coder: 600, debug: 600, ask: 300 };
const LONG_TASK_WORDS = 25;
const LONG_TASK_ESTIMATE_S = 900;

export function planHeuristically(request: PlanRequest): DraftedPlan & { source: 'heuristic' } {
  if (request.replan) {
    const replanned = replanFromFailure(request);
    if (replanned) return replanned;
  }
  const pieces = splitTask(request.goal);
  let note = '';
  if (request.feedback?.trim()) {
    const { tasks, remarks } = splitFeedback(request.feedback);
    pieces.push(...tasks.map((text) => ({ text, afterPrevious: false })));
    note = remarks.join(' ');
  }
  const inputs = toSubtaskInputs(capPieces(pieces), note);
  const subtasks = normalizeSubtasks(inputs);
  return {
    goal: request.goal,
    subtasks,
    source: 'heuristic',
    reasoning: describe(subtasks, request.feedback),
  };
}

function capPieces(pieces: Piece[]): Piece[] {
  if (pieces.length <= MAX_HEURISTIC_SUBTASKS) return pieces;
  const kept = pieces.slice(0, MAX_HEURISTIC_SUBTASKS - 1);
  const rest = pieces.slice(MAX_HEURISTIC_SUBTASKS - 1);
  kept.push({ text: rest.map((p) => p.text).join('; '), afterPrevious: rest[0]!.afterPrevious });
  return kept;
}

/** Work that checks other work waits for all of it. */
const FINISHING = /^(?:test|verify|check|validate|review|document|deploy|release|run\b.*\btests?\b|(?:write|add|create|update)\b.*\b(?:tests?|specs?|docs|documentation|readme)\b)/i;
const VERIFYING = /^(?:verify|check|validate|run\b.*\btests?\b|test\b)/i;

function toSubtaskInputs(pieces: readonly Piece[], note: string): SubtaskInput[] {
  return pieces.map((piece, index) => {
    const dependencies = new Set<number>();
    if (piece.afterPrevious && index > 0) dependencies.add(index - 1);
    if (FINISHING.test(piece.text)) {
      pieces.forEach((other, j) => {
        if (j < index && !FINISHING.test(other.text)) dependencies.add(j);
      });
    }
    const agent: AtomicAgent = VERIFYING.test(piece.text) ? 'debug' : pickAgent(piece.text);
    const words = piece.text.split(/\s+/).length;
    return {
      id: `st-${index + 1}`,
      description: note ? `${piece.text} (review note: ${note})` : piece.text,
      agent,
      dependencies: [...dependencies].sort((a, b) => a - b),
      estimated_time: words > LONG_TASK_WORDS ? LONG_TASK_ESTIMATE_S : ESTIMATE_S[agent],
    };
  });
}

/** Feedback sentences that ask for work become subtasks; the rest is a note every subtask carries. */
function splitFeedback(feedback: string): { tasks: string[]; remarks: string[] } {
  const tasks: string[] = [];
  const remarks: string[] = [];
  for (const sentence of feedback.split(/(?<=[.!?;])\s+|\r?\n+/).map((s) => s.trim()).filter(Boolean)) {
    if (STARTS_WITH_VERB.test(sentence.toLowerCase())) tasks.push(...enumerate(sentence).map(cleanPiece).filter(Boolean));
    else remarks.push(sentence);
  }
  return { tasks, remarks };
}

/**
 * A re-plan after a failure: what succeeded stays done (its results reach the agents as context),
 * the failure is investigated first, the failed subtask is retried after it, and what waited on
 * it keeps waiting. Undefined when the failure names no subtask of the previous revision.
 */
function replanFromFailure(request: PlanRequest): (DraftedPlan & { source: 'heuristic' }) | undefined {
  const { previous, failure } = request.replan!;
  const failed = previous.find((s) => s.id === failure.subtask_id);
  if (!failed) return undefined;
  const done = new Set(previous.filter((s) => s.status === 'succeeded').map((s) => s.id));
  const remaining = previous.filter((s) => !done.has(s.id));
  const taken = new Set(previous.map((s) => s.id));
  let investigateId = `${failed.id}-investigate`;
  for (let n = 2; taken.has(investigateId); n++) investigateId = `${failed.id}-investigate-${n}`;

  const inputs: SubtaskInput[] = [
    {
      id: investigateId,
      description: `Investigate why "${clip(failed.description, 300)}" failed (${clip(failure.error, 500)}) and report the cause and a fix`,
      agent: 'debug',
      dependencies: failed.dependencies.filter((d) => !done.has(d) && taken.has(d)),
      estimated_time: ESTIMATE_S.debug,
    },
    ...remaining.map((s: PreviousSubtask): SubtaskInput => ({
      id: s.id,
      description:
        s.id === failed.id ? `${s.description} (retry: the last attempt failed with "${clip(failure.error, 300)}"; use the investigation's findings)` : s.description,
      agent: s.agent,
      dependencies: [...s.dependencies.filter((d) => !done.has(d)), ...(s.id === failed.id ? [investigateId] : [])],
      estimated_time: s.agent === 'ask' ? ESTIMATE_S.ask : ESTIMATE_S.coder,
    })),
  ];
  const subtasks = normalizeSubtasks(inputs);
  const kept = previous.length - remaining.length;
  return {
    goal: request.goal,
    subtasks,
    source: 'heuristic',
    reasoning: `Re-planned after ${failed.id} failed: ${kept} finished subtask${kept === 1 ? '' : 's'} kept as done, the failure is investigated first, then ${remaining.length} remaining subtask${remaining.length === 1 ? '' : 's'} run again.`,
  };
}

function describe(subtasks: readonly Subtask[], feedback: string | undefined): string {
  const parallel = subtasks.filter((s) => s.dependencies.length === 0).length;
  return (
    `Split the task into ${subtasks.length} subtask${subtasks.length === 1 ? '' : 's'} from its wording` +
    (subtasks.length > 1 ? ` (${parallel} can start at once)` : '') +
    (feedback?.trim() ? '; the review feedback was added' : '') +
    '.'
  );
}

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);
