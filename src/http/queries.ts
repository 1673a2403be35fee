// Query routes: read the read models only (plus the raw log for the debug stream route). `?wait_for=`
// waits until the read models include a command's position, so a client reads its own writes.
import { Hono } from 'hono';
import type { EventStore } from '../events/store.js';
import type { ViewStore } from '../projections/views.js';
import { APPROVALS, type ApprovalDoc } from '../projections/approval-view.js';
import { PLANS, type PlanDoc } from '../projections/plan-view.js';
import { SESSIONS, type SessionDoc } from '../projections/session-view.js';
import { HISTORY, indexNames, type HistoryDoc } from '../projections/views-projection.js';
import { CONVERSATION, type ConversationMessageDoc } from '../projections/conversation-view.js';
import { SESSION_CONTENTS, type SessionContentsDoc } from '../projections/session-contents.js';
import { RUNS } from '../projections/collections.js';
import type { RunDoc } from '../projections/run-view.js';
import { waitForRequested, type ReadConsistency, type StartupGate } from './consistency.js';
import { accessOf } from '../commands/access.js';
import { fail } from './problem.js';
import { etag, query } from './request.js';
import { conversationQuery, historyQuery, listApprovalsQuery, listSessionsQuery, streamQuery } from './schemas.js';
import { agentSwitchBody, approvalBody, chatMessageBody, historyBody, pendingApprovalBody, planBody, planStatusBody, runBody, sessionBody } from './bodies.js';

const DEFAULT_PAGE = 50;
/** Chat messages in one history page: the IDE asks once, without a limit, and shows what it gets. */
const DEFAULT_CONVERSATION_PAGE = 200;

export function queryRoutes(views: ViewStore, store: EventStore, consistency: ReadConsistency, startup?: StartupGate) {
  const app = new Hono();

  const caughtUp = waitForRequested(store, consistency, startup);

  async function page<T>(collection: string, index: string, limit = DEFAULT_PAGE, cursor?: number) {
    const members = await views.range(index, { limit, ...(cursor !== undefined ? { below: cursor } : {}) });
    const docs = (await views.getMany(collection, members.map((m) => m.id))).filter((d): d is NonNullable<typeof d> => d !== undefined);
    const last = members.at(-1);
    return { docs: docs as unknown as T[], next_cursor: members.length === limit && last ? String(last.score) : null };
  }

  async function requireDoc<T>(collection: string, id: string, what: 'session' | 'plan' | 'run'): Promise<T> {
    const doc = await views.get(collection, id);
    if (!doc) fail(404, `${what}_not_found`, `${what} ${id} does not exist`, { [`${what}_id`]: id });
    return doc as unknown as T;
  }

  app.get('/sessions', async (c) => {
    const q = query(c, listSessionsQuery);
    await caughtUp(c);
    // Only what the principal owns or was shared.
    const index = indexNames.sessions({ ...q, member: c.get('principal').id });
    const [{ docs, next_cursor }, total] = await Promise.all([page<SessionDoc>(SESSIONS, index, q.limit, q.cursor), views.count(index)]);
    // `total` counts the whole list (every page), as the IDE's SessionListResponse expects.
    return c.json({ sessions: docs.map(sessionBody), total, next_cursor });
  });

  app.get('/sessions/:id', async (c) => {
    await caughtUp(c);
    const session = await requireDoc<SessionDoc>(SESSIONS, c.req.param('id'), 'session');
    c.header('ETag', etag(session.stream_revision));
    return c.json(sessionBody(session));
  });

  // The conversation as the IDE's SessionHistory: the latest page of chat messages, oldest first;
  // `next_cursor` pages back in time. `message_count` counts every message of the conversation.
  app.get('/sessions/:id/history', async (c) => {
    const q = query(c, conversationQuery);
    await caughtUp(c);
    const id = c.req.param('id');
    const session = await requireDoc<SessionDoc>(SESSIONS, id, 'session');
    const [{ docs, next_cursor }, contents] = await Promise.all([
      page<ConversationMessageDoc>(CONVERSATION, indexNames.conversation(id), q.limit ?? DEFAULT_CONVERSATION_PAGE, q.cursor),
      views.get(SESSION_CONTENTS, id) as Promise<SessionContentsDoc | undefined>,
    ]);
    return c.json({
      session_id: id,
      messages: docs.map(chatMessageBody).reverse(),
      message_count: contents?.message_count ?? 0,
      last_activity: session.updated_at,
      current_agent: session.agent_type,
      agent_history: session.agent_history.map(agentSwitchBody),
      next_cursor,
    });
  });

  // The session's and its plans' events as recorded (the event-level history).
  app.get('/sessions/:id/events', async (c) => {
    const q = query(c, historyQuery);
    await caughtUp(c);
    const id = c.req.param('id');
    await requireDoc<SessionDoc>(SESSIONS, id, 'session');
    const { docs, next_cursor } = await page<HistoryDoc>(HISTORY, indexNames.history(id), q.limit, q.cursor);
    // Pages run newest first (the cursor walks back in time); each page reads oldest first.
    return c.json({ session_id: id, events: docs.map(historyBody).reverse(), next_cursor });
  });

  app.get('/sessions/:id/pending-approvals', async (c) => {
    await caughtUp(c);
    const id = c.req.param('id');
    await requireDoc<SessionDoc>(SESSIONS, id, 'session');
    const { docs } = await page<ApprovalDoc>(APPROVALS, indexNames.approvals({ session_id: id, status: 'pending' }), 500);
    const pending = docs.map(pendingApprovalBody);
    return c.json({ session_id: id, pending_approvals: pending, count: pending.length });
  });

  app.get('/plans/:id', async (c) => {
    await caughtUp(c);
    const plan = await requireDoc<PlanDoc>(PLANS, c.req.param('id'), 'plan');
    c.header('ETag', etag(plan.stream_revision));
    return c.json(planBody(plan));
  });

  app.get('/plans/:id/status', async (c) => {
    await caughtUp(c);
    const plan = await requireDoc<PlanDoc>(PLANS, c.req.param('id'), 'plan');
    c.header('ETag', etag(plan.stream_revision));
    return c.json(planStatusBody(plan));
  });

  app.get('/runs/:id', async (c) => {
    await caughtUp(c);
    const run = await requireDoc<RunDoc>(RUNS, c.req.param('id'), 'run');
    c.header('ETag', etag(run.stream_revision));
    return c.json(runBody(run));
  });

  app.get('/approvals', async (c) => {
    const q = query(c, listApprovalsQuery);
    await caughtUp(c);
    const principal = c.get('principal').id;
    let index: string;
    if (q.session_id !== undefined) {
      // One session's approvals: none for a principal that may not read it (the same answer as for a
      // session that does not exist, so the list reveals nothing).
      const session = (await views.get(SESSIONS, q.session_id)) as SessionDoc | undefined;
      if (!session || accessOf(session, principal) === 'none') return c.json({ approvals: [], next_cursor: null });
      index = indexNames.approvals(q);
    } else {
      index = indexNames.memberApprovals(principal, q.status);
    }
    const { docs, next_cursor } = await page<ApprovalDoc>(APPROVALS, index, q.limit, q.cursor);
    return c.json({ approvals: docs.map(approvalBody), next_cursor });
  });

  // Debugging: the raw events of one stream, straight from the log.
  app.get('/streams/:name', async (c) => {
    const q = query(c, streamQuery);
    const name = c.req.param('name');
    const limit = q.limit ?? 100;
    const events = await store.readStream(name, {
      direction: q.direction ?? 'forwards',
      maxCount: limit,
      ...(q.from !== undefined ? { fromRevision: q.from } : {}),
    });
    // An empty page of an existing stream (paging past its end) is a 200; a stream with no events is 404.
    if (events.length === 0 && (await store.readStream(name, { direction: 'backwards', maxCount: 1 })).length === 0) {
      fail(404, 'stream_not_found', `stream ${name} has no events`, { stream: name });
    }
    const last = events.at(-1);
    const next = last && events.length === limit ? (q.direction === 'backwards' ? last.revision - 1 : last.revision + 1) : null;
    return c.json({ stream: name, events, next_from: next !== null && next >= 0 ? next : null });
  });

  return app;
}
