// Session routes the IDE drives: start (an empty POST will do), rename (`PATCH {title}`) and delete.
// Start and rename answer with the session as the read models show it, after waiting for them to include
// the write (the IDE decodes that body as its SessionModel); delete answers with what it did.
import { Hono, type Context } from 'hono';
import type { Commands } from '../commands/service.js';
import { SESSIONS, type SessionDoc } from '../projections/session-view.js';
import type { ViewStore } from '../projections/views.js';
import { sessionBody } from './bodies.js';
import { awaitReadModels, type ReadConsistency } from './consistency.js';
import { commandCounter } from './counted.js';
import type { Metrics } from './metrics.js';
import { fail } from './problem.js';
import { commandMeta, etag, jsonBody } from './request.js';
import { reasonBody, renameSessionBody, startSessionBody, titleOrName } from './schemas.js';

export function sessionRoutes(commands: Commands, views: ViewStore, consistency: ReadConsistency, metrics: Metrics) {
  const app = new Hono();
  const counted = commandCounter(metrics);

  /** The session as read once the read models include `position` (the ETag set from it). */
  async function sessionAsOf(c: Context, sessionId: string, position: number): Promise<SessionDoc> {
    await awaitReadModels(consistency, position);
    const doc = (await views.get(SESSIONS, sessionId)) as SessionDoc | undefined;
    // Deleted in the meantime (a retried start of a session deleted since).
    if (!doc) return fail(404, 'session_not_found', `session ${sessionId} does not exist`, { session_id: sessionId });
    c.header('ETag', etag(doc.stream_revision));
    return doc;
  }

  app.post('/sessions', async (c) => {
    // The IDE sends no body at all (and maybe no content-type): every field is optional.
    const body = await jsonBody(c, startSessionBody);
    const done = await counted('StartSession', () => commands.startSession(body, commandMeta(c)));
    const session = await sessionAsOf(c, done.session_id, done.position);
    return c.json({ ...sessionBody(session), position: done.position, created: done.changed }, done.changed ? 201 : 200);
  });

  app.patch('/sessions/:id', async (c) => {
    const body = await jsonBody(c, renameSessionBody, titleOrName);
    const id = c.req.param('id');
    const done = await counted('RenameSession', () => commands.renameSession(id, { name: body.title }, commandMeta(c)));
    const session = await sessionAsOf(c, id, done.position);
    return c.json({ ...sessionBody(session), changed: done.changed, position: done.position });
  });

  // 200 with a body rather than 204: the IDE ignores the body either way, and the position lets any
  // client read its own write (`?wait_for=`). Deleting again is a 200 that changed nothing.
  app.delete('/sessions/:id', async (c) => {
    const body = await jsonBody(c, reasonBody);
    const id = c.req.param('id');
    const done = await counted('DeleteSession', () => commands.deleteSession(id, body, commandMeta(c)));
    return c.json({ session_id: id, deleted: true, changed: done.changed, position: done.position });
  });

  return app;
}
