// What the executor may still owe a job to: sessions classifying a message, plans executing or
// re-planning, runs not ended. Kept as an index beside the executor's checkpoint (committed with it), so
// an executor whose bus lost its queued jobs with the process (the embedded one) reads the log again
// only from the oldest open work, not from the beginning: the jobs those events enqueue are derived
// again, and workers drop the ones whose work is already done.
import { parseStreamName, toDomainEvent } from '../events/catalog.js';
import type { Position, StoredEvent } from '../events/store.js';
import type { ViewOp, ViewStore } from '../projections/views.js';

/** Streams with open work, scored by minus the position their work opened at (the oldest ranks first). */
export const OPEN_WORK_INDEX = 'executor:open';

type Change = 'open' | 'close' | undefined;

const PLAN_OPENS = new Set(['PlanExecutionStarted', 'PlanReplanRequested', 'PlanModificationRequested']);
const PLAN_CLOSES = new Set(['PlanDrafted', 'PlanCompleted', 'PlanFailed', 'PlanCancelled', 'PlanRejected', 'PlanApprovalExpired', 'PlanSuperseded']);
const RUN_CLOSES = new Set(['RunSucceeded', 'RunFailed', 'RunCancelled']);
const SESSION_CLOSES = new Set(['TaskClassified', 'TaskClassificationFailed', 'SessionDeleted']);

function changeOf(stored: StoredEvent): Change {
  const stream = parseStreamName(stored.stream);
  const event = stream && toDomainEvent(stored);
  if (!stream || !event) return undefined;
  switch (stream.kind) {
    case 'run':
      return event.type === 'RunStarted' ? 'open' : RUN_CLOSES.has(event.type) ? 'close' : undefined;
    case 'plan':
      // A new revision waits for the user: no job is owed to it until it is approved again.
      return PLAN_OPENS.has(event.type) ? 'open' : PLAN_CLOSES.has(event.type) ? 'close' : undefined;
    case 'session':
      if (event.type === 'UserMessageReceived') return event.data.queued ? undefined : 'open';
      return event.type === 'QueuedMessageStarted' ? 'open' : SESSION_CLOSES.has(event.type) ? 'close' : undefined;
  }
}

/** The index operations for a batch: a stream opened keeps the position it first opened at. */
export function openWorkOps(events: readonly StoredEvent[], alreadyOpen: ReadonlySet<string>): ViewOp[] {
  const opened = new Map<string, number>();
  const closed = new Set<string>();
  for (const stored of events) {
    const change = changeOf(stored);
    if (change === 'open' && !opened.has(stored.stream) && (closed.has(stored.stream) || !alreadyOpen.has(stored.stream))) {
      closed.delete(stored.stream);
      opened.set(stored.stream, stored.position);
    } else if (change === 'close') {
      opened.delete(stored.stream);
      closed.add(stored.stream);
    }
  }
  return [
    ...[...closed].map((id): ViewOp => ({ op: 'unindex', index: OPEN_WORK_INDEX, id })),
    ...[...opened].map(([id, position]): ViewOp => ({ op: 'index', index: OPEN_WORK_INDEX, id, score: -position })),
  ];
}

/** Where an executor without durable jobs resumes: before the oldest open work, or after its checkpoint. */
export async function resumePosition(views: ViewStore, checkpoint: Position): Promise<Position> {
  const [oldest] = await views.range(OPEN_WORK_INDEX, { limit: 1 });
  return oldest === undefined ? checkpoint : Math.min(checkpoint, -oldest.score - 1);
}
