// The `views` projection: plan, session, approval and history read models, folded together so one
// commit carries everything an event changes (a plan event moves the plan, its approval and its
// session's fsm_state at once; no reader sees one without the others).
import { parseStreamName, toDomainEvent, type DomainEvent, type PlanEvent, type SessionEvent } from '../events/catalog.js';
import type { StoredEvent } from '../events/store.js';
import type { Projection, ProjectionTx } from './projector.js';
import type { Doc, IndexEntry } from './views.js';
import { applyToPlanView, PLANS, type PlanDoc } from './plan-view.js';
import { applyToSessionView, followPlanInSession, SESSIONS, type SessionDoc } from './session-view.js';
import { applyToApprovalView, APPROVALS, type ApprovalDoc } from './approval-view.js';

export const HISTORY = 'history';

/** Bump when a read model's shape or meaning changes: the projector rebuilds from the log. */
export const VIEWS_VERSION = 5;

export interface HistoryDoc {
  event_id: string;
  session_id: string;
  stream: string;
  revision: number;
  position: number;
  type: string;
  at: string;
  data: Record<string, unknown>;
  [key: string]: unknown;
}

export const indexNames = {
  sessions: (filter: { status?: string | undefined; mode?: string | undefined }) =>
    filter.status && filter.mode
      ? `sessions:status:${filter.status}:mode:${filter.mode}`
      : filter.status
        ? `sessions:status:${filter.status}`
        : filter.mode
          ? `sessions:mode:${filter.mode}`
          : 'sessions:all',
  approvals: (filter: { session_id?: string | undefined; status?: string | undefined }) =>
    filter.session_id && filter.status
      ? `approvals:session:${filter.session_id}:status:${filter.status}`
      : filter.session_id
        ? `approvals:session:${filter.session_id}`
        : filter.status
          ? `approvals:status:${filter.status}`
          : 'approvals:all',
  /**
   * Pending approvals by deadline, soonest first: the score is the negated deadline (ms), because
   * ranges run highest score first. Deadlines may tie; only the first page is ever read.
   */
  approvalsDue: 'approvals:due',
  plansOfSession: (sessionId: string) => `plans:session:${sessionId}`,
  history: (sessionId: string) => `history:${sessionId}`,
} as const;

function indexesOf(collection: string, _id: string, doc: Doc): IndexEntry[] {
  switch (collection) {
    case SESSIONS: {
      const s = doc as SessionDoc;
      const score = s.created_position;
      return [
        { index: indexNames.sessions({}), score },
        { index: indexNames.sessions({ status: s.status }), score },
        { index: indexNames.sessions({ mode: s.mode }), score },
        { index: indexNames.sessions({ status: s.status, mode: s.mode }), score },
      ];
    }
    case APPROVALS: {
      const a = doc as ApprovalDoc;
      const score = a.created_position;
      return [
        { index: indexNames.approvals({}), score },
        { index: indexNames.approvals({ status: a.status }), score },
        { index: indexNames.approvals({ session_id: a.session_id }), score },
        { index: indexNames.approvals({ session_id: a.session_id, status: a.status }), score },
        ...(a.status === 'pending' ? [{ index: indexNames.approvalsDue, score: -Date.parse(a.deadline) }] : []),
      ];
    }
    case PLANS: {
      const p = doc as PlanDoc;
      return [{ index: indexNames.plansOfSession(p.session_id), score: p.created_position }];
    }
    case HISTORY: {
      const h = doc as HistoryDoc;
      return [{ index: indexNames.history(h.session_id), score: h.position }];
    }
    default:
      return [];
  }
}

function recordHistory(sessionId: string, stored: StoredEvent, event: DomainEvent, tx: ProjectionTx): void {
  tx.put(HISTORY, stored.id, {
    event_id: stored.id,
    session_id: sessionId,
    stream: stored.stream,
    revision: stored.revision,
    position: stored.position,
    type: stored.type,
    at: stored.metadata.at,
    // The tx freezes what it is given: data the store already froze is shared as it is; anything
    // else belongs to the caller and is copied first.
    data: (Object.isFrozen(event.data) ? event.data : structuredClone(event.data)) as Record<string, unknown>,
  } satisfies HistoryDoc);
}

async function apply(stored: StoredEvent, tx: ProjectionTx): Promise<void> {
  const stream = parseStreamName(stored.stream);
  const event = stream && toDomainEvent(stored);
  if (!stream || !event) return;
  if (stream.kind === 'session') {
    const session = await applyToSessionView(event as SessionEvent, stored, stream.id, tx);
    if (session) recordHistory(session.session_id, stored, event, tx);
    return;
  }
  const plan = await applyToPlanView(event as PlanEvent, stored, stream.id, tx);
  if (!plan) return;
  await applyToApprovalView(event as PlanEvent, stored, plan, tx);
  await followPlanInSession(plan, stored, tx);
  recordHistory(plan.session_id, stored, event, tx);
}

export const viewsProjection: Projection = {
  name: 'views',
  version: VIEWS_VERSION,
  collections: [PLANS, SESSIONS, APPROVALS, HISTORY],
  indexPrefixes: ['sessions:', 'approvals:', 'plans:', 'history:'],
  writeOnce: [HISTORY],
  indexesOf,
  apply,
};
