// Which subtasks of an executing plan may start now: pending (or due for a retry), every dependency
// succeeded, and within the plan's parallel limit. Pure; the executor dispatches what it returns and the
// plan decider checks the same rules again (DispatchSubtask), so a stale answer is refused, never obeyed.
import type { PlanState, SubtaskState } from './plan.js';

export interface Readiness {
  /** Subtasks to dispatch now, in plan order, at most the free parallel slots. */
  ready: SubtaskState[];
  /** Earliest retry time (ms) among subtasks waiting only for it, if any. */
  wakeAt?: number | undefined;
}

export function readySubtasks(plan: PlanState, now: number): Readiness {
  if (plan.status !== 'executing') return { ready: [] };
  const byId = new Map(plan.subtasks.map((s) => [s.id, s]));
  const inFlight = plan.subtasks.filter((s) => s.status === 'dispatched' || s.status === 'running').length;
  let free = Math.max(0, plan.max_parallel - inFlight);
  const ready: SubtaskState[] = [];
  let wakeAt: number | undefined;
  for (const subtask of plan.subtasks) {
    if (subtask.status !== 'pending' && subtask.status !== 'retry_scheduled') continue;
    if (!subtask.dependencies.every((dep) => byId.get(dep)?.status === 'succeeded')) continue;
    const due = subtask.not_before ? Date.parse(subtask.not_before) : 0;
    if (subtask.status === 'retry_scheduled' && due > now) {
      wakeAt = Math.min(wakeAt ?? Number.POSITIVE_INFINITY, due);
      continue;
    }
    if (free === 0) continue;
    ready.push(subtask);
    free--;
  }
  return { ready, ...(wakeAt !== undefined ? { wakeAt } : {}) };
}
