// The `views` projection: plan, session, approval, history and conversation read models, folded
// together so one commit carries everything an event changes (a plan event moves the plan, its
// approval, its session's fsm_state and its conversation at once; no reader sees one without the
// others), and deleting a session removes all of it in the same commit.
import { parseStreamName, toDomainEvent, type DomainEvent, type PlanEvent, type RunEvent, type SessionEvent } from '../events/catalog.js';
import { applyRunEvent } from './run-view.js';
import { RUNS } from './collections.js';
import type { StoredEvent } from '../events/store.js';
import type { Projection, ProjectionTx } from './projector.js';
import type { Doc, IndexEntry } from './views.js';
import { applyToPlanView, PLANS, type PlanDoc } from './plan-view.js';
import { applyToSessionView, followPlanInSession, SESSIONS, type SessionDoc } from './session-view.js';
import { applyToApprovalView, APPROVALS, followSharesInApprovals, type ApprovalDoc } from './approval-view.js';
import { HISTORY, historyDoc, type HistoryDoc } from './history-view.js';
import { chatMessagesOf, CONVERSATION, runChatMessagesOf, type ChatMessage, type ConversationMessageDoc } from './conversation-view.js';
import { contentsOf, deleteSessionViews, entryId, SESSION_CONTENTS, withId, type SessionContentsDoc } from './session-contents.js';
import { readersOf } from '../commands/access.js';

export { HISTORY, type HistoryDoc } from './history-view.js';

/** Bump when a read model's shape or meaning changes: the projector rebuilds from the log. */
export const VIEWS_VERSION = 10;

/** Lists scoped to what one principal may read: `<kind>:member:<principal, URI-encoded>` (a `:` in a sub cannot collide). */
const scoped = (kind: string, member: string | undefined) => (member === undefined ? kind : `${kind}:member:${encodeURIComponent(member)}`);

export const indexNames = {
  sessions: (filter: { status?: string | undefined; mode?: string | undefined; member?: string | undefined }) => {
    const scope = scoped('sessions', filter.member);
    return filter.status && filter.mode
      ? `${scope}:status:${filter.status}:mode:${filter.mode}`
      : filter.status
        ? `${scope}:status:${filter.status}`
        : filter.mode
          ? `${scope}:mode:${filter.mode}`
          : `${scope}:all`;
  },
  /** Approvals one principal may read (`member`), optionally by status; session-wide lists need no member. */
  memberApprovals: (member: string, status?: string | undefined) => `${scoped('approvals', member)}:${status ? `status:${status}` : 'all'}`,
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
  /** A session's chat messages by their number in the conversation. */
  conversation: (sessionId: string) => `conversation:${sessionId}`,
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
        ...readersOf(s).flatMap((member) => [
          { index: indexNames.sessions({ member }), score },
          { index: indexNames.sessions({ member, status: s.status }), score },
          { index: indexNames.sessions({ member, mode: s.mode }), score },
          { index: indexNames.sessions({ member, status: s.status, mode: s.mode }), score },
        ]),
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
        // Only plans' approvals expire by the approval timer; a tool call's run has its own timeout.
        ...(a.status === 'pending' && a.deadline !== undefined ? [{ index: indexNames.approvalsDue, score: -Date.parse(a.deadline) }] : []),
        ...a.readers.flatMap((member) => [
          { index: indexNames.memberApprovals(member), score },
          { index: indexNames.memberApprovals(member, a.status), score },
        ]),
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
    case CONVERSATION: {
      const m = doc as ConversationMessageDoc;
      return [{ index: indexNames.conversation(m.session_id), score: m.seq }];
    }
    default:
      return [];
  }
}

/** Record an event in its session: a history entry, the chat messages it adds, what the session owns. */
async function recordInSession(sessionId: string, stored: StoredEvent, event: DomainEvent, messages: readonly ChatMessage[], tx: ProjectionTx): Promise<void> {
  const contents = await contentsOf(sessionId, tx);
  const history_count = contents.history_count + 1;
  tx.put(HISTORY, entryId(sessionId, history_count), historyDoc(sessionId, stored, event));
  let message_count = contents.message_count;
  for (const message of messages) {
    message_count++;
    tx.put(CONVERSATION, entryId(sessionId, message_count), {
      ...message,
      session_id: sessionId,
      seq: message_count,
      at: stored.metadata.at,
      position: stored.position,
    } satisfies ConversationMessageDoc);
  }
  tx.put(SESSION_CONTENTS, sessionId, {
    ...contents,
    plan_ids: withId(contents.plan_ids, event.type === 'PlanDrafted' ? event.data.plan_id : undefined),
    approval_ids: withId(contents.approval_ids, event.type === 'PlanApprovalRequested' ? event.data.approval_request_id : undefined),
    history_count,
    message_count,
  } satisfies SessionContentsDoc);
}

async function apply(stored: StoredEvent, tx: ProjectionTx): Promise<void> {
  const stream = parseStreamName(stored.stream);
  const event = stream && toDomainEvent(stored);
  if (!stream || !event) return;
  if (stream.kind === 'session') {
    if (event.type === 'SessionDeleted') {
      await deleteSessionViews(stream.id, tx);
      return;
    }
    // Only events that changed the session are recorded: a redelivered one changes nothing.
    const session = await applyToSessionView(event as SessionEvent, stored, stream.id, tx);
    if (session) await recordInSession(session.session_id, stored, event, chatMessagesOf(event), tx);
    if (session && (event.type === 'SessionShared' || event.type === 'SessionShareRevoked')) await followSharesInApprovals(session, tx);
    return;
  }
  if (stream.kind === 'run') {
    // An atomic task's run speaks in its session's conversation; every run's events are in its history.
    const run = await applyRunEvent(event as RunEvent, stored, stream.id, tx);
    if (run) await recordInSession(run.session_id, stored, event, runChatMessagesOf(event as RunEvent, run), tx);
    return;
  }
  // A deleted session's plan stays gone, whatever arrives for it later.
  if (event.type === 'PlanDrafted' && (await contentsOf(event.data.session_id, tx)).deleted) return;
  const plan = await applyToPlanView(event as PlanEvent, stored, stream.id, tx);
  if (!plan) return;
  await applyToApprovalView(event as PlanEvent, stored, plan, tx);
  await followPlanInSession(plan, stored, tx);
  await recordInSession(plan.session_id, stored, event, chatMessagesOf(event, plan), tx);
}

export const viewsProjection: Projection = {
  name: 'views',
  version: VIEWS_VERSION,
  collections: [PLANS, SESSIONS, APPROVALS, HISTORY, CONVERSATION, SESSION_CONTENTS, RUNS],
  indexPrefixes: ['sessions:', 'approvals:', 'plans:', 'history:', 'conversation:'],
  // Written once, never read back (deleting a session deletes them by id without reading them).
  writeOnce: [HISTORY, CONVERSATION],
  indexesOf,
  apply,
};
