// Sharing a session: its owner lets another principal read it (viewer) or also drive it (collaborator),
// and takes that back. Who may call these is in access.ts (reading the list: anyone who may read the
// session; changing it: the owner); the session decider enforces the same rules on the log.
import { Hono } from 'hono';
import * as v from 'valibot';
import { isPrincipalId } from '../auth/principal.js';
import { DomainError } from '../commands/errors.js';
import type { Commands } from '../commands/service.js';
import { SHARE_ROLES } from '../events/catalog.js';
import { SESSIONS, type SessionDoc } from '../projections/session-view.js';
import type { ViewStore } from '../projections/views.js';
import { sharesBody } from './bodies.js';
import type { ReadConsistency } from './consistency.js';
import type { Metrics } from './metrics.js';
import { fail } from './problem.js';
import { commandMeta, jsonBody, query } from './request.js';
import { waitForQuery } from './schemas.js';

const shareBody = v.object({ role: v.picklist(SHARE_ROLES, `must be one of ${SHARE_ROLES.join(', ')}`) });
const emptyBody = v.object({});

function principalParam(raw: string | undefined): string {
  if (!isPrincipalId(raw)) return fail(400, 'validation_failed', 'invalid path: principal must be 1-200 characters without control characters');
  return raw;
}

export function shareRoutes(commands: Commands, views: ViewStore, consistency: ReadConsistency, metrics: Metrics) {
  const app = new Hono();

  async function counted<T extends { changed: boolean }>(name: string, run: () => Promise<T>): Promise<T> {
    try {
      const result = await run();
      metrics.commands.inc({ command: name, outcome: result.changed ? 'applied' : 'unchanged' });
      return result;
    } catch (error) {
      metrics.commands.inc({ command: name, outcome: error instanceof DomainError ? 'refused' : 'failed' });
      throw error;
    }
  }

  app.get('/sessions/:id/shares', async (c) => {
    const { wait_for } = query(c, waitForQuery);
    // access.ts already waited for `wait_for` (and checked the position); this only covers a slow edge.
    if (wait_for !== undefined) await consistency.waitFor(wait_for, 5_000);
    const id = c.req.param('id');
    const doc = (await views.get(SESSIONS, id)) as SessionDoc | undefined;
    if (!doc) return fail(404, 'session_not_found', `session ${id} does not exist`, { session_id: id });
    return c.json({ session_id: id, owner: doc.owner, shares: sharesBody(doc) });
  });

  app.put('/sessions/:id/shares/:principal', async (c) => {
    const body = await jsonBody(c, shareBody);
    const principal = principalParam(c.req.param('principal'));
    const done = await counted('ShareSession', () => commands.shareSession(c.req.param('id'), { principal, role: body.role }, commandMeta(c)));
    return c.json({ session_id: done.session_id, principal, role: body.role, changed: done.changed, position: done.position });
  });

  app.delete('/sessions/:id/shares/:principal', async (c) => {
    await jsonBody(c, emptyBody);
    const principal = principalParam(c.req.param('principal'));
    const done = await counted('RevokeShare', () => commands.revokeShare(c.req.param('id'), { principal }, commandMeta(c)));
    return c.json({ session_id: done.session_id, principal, revoked: true, changed: done.changed, position: done.position });
  });

  return app;
}
