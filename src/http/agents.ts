// The agents, as the IDE lists them (`AgentInfo`), and a session's current agent with its switches
// (`CurrentAgentInfo`), read from the session's read model.
import { Hono } from 'hono';
import { listAgentInfo } from '../agents/agents.js';
import type { EventStore } from '../events/store.js';
import { SESSIONS, type SessionDoc } from '../projections/session-view.js';
import type { ViewStore } from '../projections/views.js';
import { currentAgentBody } from './bodies.js';
import { waitForRequested, type ReadConsistency, type StartupGate } from './consistency.js';
import { fail } from './problem.js';

export function agentRoutes(views: ViewStore, store: EventStore, consistency: ReadConsistency, startup?: StartupGate) {
  const app = new Hono();
  const caughtUp = waitForRequested(store, consistency, startup);

  app.get('/agents', (c) => c.json(listAgentInfo()));

  app.get('/agents/:session_id/current', async (c) => {
    await caughtUp(c);
    const id = c.req.param('session_id');
    const session = (await views.get(SESSIONS, id)) as SessionDoc | undefined;
    if (!session) return fail(404, 'session_not_found', `session ${id} does not exist`, { session_id: id });
    return c.json(currentAgentBody(session));
  });

  return app;
}
