// Which subtasks of an executing plan may start now: pending (or due for a retry), every dependency
// succeeded, and within the plan's parallel limit. Pure; the plan decider dispatches what it returns
// (DispatchReady) and checks the same rules for a single dispatch, so a stale answer is refused, never obeyed.
// It reads only the fields it needs, so the plan decider and the executor both hand it their state.

/** A subtask as readiness sees it. */
export interface ReadinessSubtask {
  id: string;
  status: string;
  dependencies: readonly string[];
  /** The last attempt made (the next dispatch is attempt + 1). */
  attempt: number;
  not_before?: string | undefined;
}

export interface Readiness<S extends ReadinessSubtask> {
  /** Subtasks to dispatch now, in plan order, at most the free parallel slots. */
  ready: S[];
  /** Earliest retry time (ms) among subtasks waiting only for it, if any. */
  wakeAt?: number | undefined;
}

export function readySubtasks<S extends ReadinessSubtask>(plan: { status: string; max_parallel: number; subtasks: readonly S[] }, now: number): Readiness<S> {
  if (plan.status !== 'executing') return { ready: [] };
  const byId = new Map(plan.subtasks.map((s) => [s.id, s]));
  const inFlight = plan.subtasks.filter((s) => s.status === 'dispatched' || s.status === 'running').length;
  let free = Math.max(0, plan.max_parallel - inFlight);
  const ready: S[] = [];
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
