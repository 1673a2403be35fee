// A stream folded event by event: the state after each event, as the command side saw it then. This is
// what `planline replay` prints; it uses the deciders' own evolve functions, so what it shows is what
// the deciders decided on, not a re-implementation that could drift from them.
import { planDecider, planFsmState, type PlanState, type PlanStatus } from '../commands/plan.js';
import { sessionDecider, sessionFsmState, type SessionState } from '../commands/session.js';
import { runDecider, type RunState } from '../commands/run.js';
import type { FsmState } from '../commands/fsm.js';
import { parseStreamName, streams, toDomainEvent, type DomainEvent } from '../events/catalog.js';
import type { EventStore, Position, StoredEvent } from '../events/store.js';
import { progressOf, type Progress } from '../projections/plan-view.js';

export type PlanSnapshot = PlanState & { fsm_state: FsmState; progress: Progress };

/** The session's current plan at the time of a session event. */
export interface CurrentPlanSnapshot {
  plan_id: string;
  /** Null while the plan is named but not yet drafted (the session records a plan before it is written). */
  status: PlanStatus | null;
  revision: number;
  fsm_state: FsmState | null;
  progress: Progress;
}

export type SessionSnapshot = SessionState & { fsm_state: FsmState; current_plan: CurrentPlanSnapshot | null };

export interface TimelineEntry<S> {
  event: StoredEvent;
  /** The stream's state after this event. */
  state: S;
  /** Why this event left the state unchanged, when it could not be folded. */
  skipped?: string;
}

export type Timeline =
  | { kind: 'plan'; stream: string; entries: TimelineEntry<PlanSnapshot>[] }
  | { kind: 'session'; stream: string; entries: TimelineEntry<SessionSnapshot>[] }
  | { kind: 'run'; stream: string; entries: TimelineEntry<RunState>[] }
  /** Not a plan or session stream (another application's, or a kind we do not fold yet): events only. */
  | { kind: 'other'; stream: string; entries: TimelineEntry<null>[] };

/** Fold `events` (one stream, in revision order) into a timeline. Reads the plan streams a session names. */
export async function buildTimeline(store: EventStore, stream: string, events: readonly StoredEvent[]): Promise<Timeline> {
  switch (parseStreamName(stream)?.kind) {
    case 'plan':
      return { kind: 'plan', stream, entries: planTimeline(events) };
    case 'session':
      return { kind: 'session', stream, entries: await sessionTimeline(events, planAsOf(store)) };
    case 'run': {
      let run = runDecider.initialState();
      const entries = events.map((event) => {
        const folded = foldOne(runDecider.evolve, run, event);
        run = folded.state;
        return entry(event, run, folded.skipped);
      });
      return { kind: 'run', stream, entries };
    }
    default:
      return { kind: 'other', stream, entries: events.map((event) => ({ event, state: null })) };
  }
}

function planTimeline(events: readonly StoredEvent[]): TimelineEntry<PlanSnapshot>[] {
  let plan = planDecider.initialState();
  return events.map((event) => {
    const folded = foldOne(planDecider.evolve, plan, event);
    plan = folded.state;
    return entry(event, planSnapshot(plan), folded.skipped);
  });
}

async function sessionTimeline(
  events: readonly StoredEvent[],
  planAt: (planId: string, position: Position) => Promise<PlanState>,
): Promise<TimelineEntry<SessionSnapshot>[]> {
  let session = sessionDecider.initialState();
  const entries: TimelineEntry<SessionSnapshot>[] = [];
  for (const event of events) {
    const folded = foldOne(sessionDecider.evolve, session, event);
    session = folded.state;
    // The session's fsm_state depends on its current plan as it was when this event was written, not as
    // it is now: fold the plan only up to this event's place in the global order.
    const planId = session.current_plan_id;
    const plan = planId === undefined ? undefined : await planAt(planId, event.position);
    entries.push(entry(event, sessionSnapshot(session, plan), folded.skipped));
  }
  return entries;
}

function entry<S>(event: StoredEvent, state: S, skipped: string | undefined): TimelineEntry<S> {
  return skipped === undefined ? { event, state } : { event, state, skipped };
}

/**
 * A plan's state as of a global position. Each plan stream is read once and folded forward; a session's
 * events arrive in position order, so the fold only moves forward (a position behind it starts over).
 */
function planAsOf(store: EventStore): (planId: string, position: Position) => Promise<PlanState> {
  const plans = new Map<string, { events: StoredEvent[]; folded: number; state: PlanState }>();
  return async (planId, position) => {
    let plan = plans.get(planId);
    if (plan === undefined) {
      plan = { events: await store.readStream(streams.plan(planId)), folded: 0, state: planDecider.initialState() };
      plans.set(planId, plan);
    }
    const lastFolded = plan.events[plan.folded - 1];
    if (lastFolded !== undefined && lastFolded.position > position) {
      plan.folded = 0;
      plan.state = planDecider.initialState();
    }
    for (let next = plan.events[plan.folded]; next !== undefined && next.position <= position; next = plan.events[plan.folded]) {
      plan.state = foldOne(planDecider.evolve, plan.state, next).state;
      plan.folded += 1;
    }
    return plan.state;
  };
}

/**
 * One event into a state with the decider's evolve. A debugging tool must show a damaged stream rather
 * than refuse it, so an event that cannot be folded leaves the state as it was and says why.
 */
function foldOne<S, E extends DomainEvent>(
  evolve: (state: S, event: E) => S,
  state: S,
  stored: StoredEvent,
): { state: S; skipped?: string } {
  let event: DomainEvent | undefined;
  try {
    event = toDomainEvent(stored);
  } catch (error) {
    return { state, skipped: error instanceof Error ? error.message : String(error) };
  }
  if (event === undefined) return { state, skipped: `${stored.type} is not a Planline event type` };
  try {
    // A session event in a plan stream (or the reverse) matches no case of evolve: it returns undefined
    // at run time whatever its signature says.
    const next = evolve(state, event as E) as S | undefined;
    return next === undefined ? { state, skipped: `${stored.type} does not belong in a ${describeKind(stored.stream)} stream` } : { state: next };
  } catch (error) {
    return { state, skipped: `cannot fold ${stored.type}: ${error instanceof Error ? error.message : String(error)}` };
  }
}

function describeKind(stream: string): string {
  return parseStreamName(stream)?.kind ?? 'foreign';
}

export function planSnapshot(plan: PlanState): PlanSnapshot {
  return { ...plan, fsm_state: planFsmState(plan.status), progress: progressOf(plan.subtasks) };
}

function sessionSnapshot(session: SessionState, plan: PlanState | undefined): SessionSnapshot {
  return {
    ...session,
    fsm_state: sessionFsmState({ session, plan }),
    current_plan:
      session.current_plan_id === undefined || plan === undefined
        ? null
        : {
            plan_id: session.current_plan_id,
            status: plan.exists ? plan.status : null,
            revision: plan.revision,
            fsm_state: plan.exists ? planFsmState(plan.status) : null,
            progress: progressOf(plan.subtasks),
          },
  };
}
