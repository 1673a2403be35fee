// The HTTP edge: one Hono app with the API under /api/v1. Cross-cutting concerns live here and only
// here: auth and access (access.ts), body limits, problem+json errors, metrics. Routes are in
// sessions.ts / commands.ts / tools.ts / shares.ts / queries.ts / agents.ts / ops.ts; the socket in ws-edge.ts.
import { Hono, type MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { DomainError } from '../commands/errors.js';
import type { Commands } from '../commands/service.js';
import type { EventStore } from '../events/store.js';
import type { ViewStore } from '../projections/views.js';
import type { Logger } from '../log.js';
import type { ReadConsistency, StartupGate } from './consistency.js';
import type { Metrics } from './metrics.js';
import type { Authenticator } from '../auth/authenticator.js';
import { accessMiddleware } from './access.js';
import { shareRoutes } from './shares.js';
import { problem, problemOf, problemResponse, ProblemError } from './problem.js';
import { commandRoutes } from './commands.js';
import { queryRoutes } from './queries.js';
import { sessionRoutes } from './sessions.js';
import { agentRoutes } from './agents.js';
import { toolRoutes } from './tools.js';
import { opsRoutes, type ReadinessCheck } from './ops.js';

export interface ApiDeps {
  commands: Commands;
  views: ViewStore;
  store: EventStore;
  consistency: ReadConsistency;
  /** Reads wait for the read models to reach the log head as of start-up (never 404 an acknowledged write). */
  startup?: StartupGate;
  metrics: Metrics;
  readiness: ReadinessCheck;
  log: Logger;
  maxBodyBytes: number;
  /** Who is asking (JWTs, or one `local` principal with auth off); access.ts decides what it may do. */
  auth: Authenticator;
  /** The socket upgrade for GET /api/v1/ws/:session_id (ws-edge.ts); absent: no socket route. */
  websocket?: MiddlewareHandler | undefined;
}

/** Longer URLs are refused (414) before anything reads them: no route needs more. */
export const MAX_URL_CHARS = 8_192;

export function createApp(deps: ApiDeps) {
  const app = new Hono();

  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    // The route the request was for, not the middleware that answered it: `c.req.routePath` after
    // next() names the last handler run, which is '/*' for a 404 or for a 401 from the auth middleware.
    const route = matchedRoutes(c).findLast((r) => r.method !== 'ALL')?.path ?? 'unmatched';
    deps.metrics.http.requests.inc({ method: c.req.method, route, status: String(c.res.status) });
    deps.metrics.http.duration.observe((performance.now() - started) / 1000, { method: c.req.method, route });
  });

  app.use('*', async (c, next) => {
    if (c.req.url.length > MAX_URL_CHARS) {
      return problemResponse(c, problem(414, 'uri_too_long', `the URL is longer than ${MAX_URL_CHARS} characters`, { max_chars: MAX_URL_CHARS }));
    }
    return next();
  });

  app.use('*', accessMiddleware({ auth: deps.auth, commands: deps.commands, log: deps.log }));

  // Bodies are read, within this limit, only by routes that take one (request.ts jsonBody).
  app.use('*', async (c, next) => {
    c.set('maxBodyBytes', deps.maxBodyBytes);
    await next();
  });

  const api = new Hono();
  if (deps.websocket) {
    api.get('/ws/:session_id', deps.websocket, (c) =>
      problemResponse(c, problem(426, 'upgrade_required', 'this is the IDE socket: connect with a WebSocket client (Upgrade: websocket)'), { upgrade: 'websocket' }),
    );
  }
  api.route('/', sessionRoutes(deps.commands, deps.views, deps.consistency, deps.metrics));
  api.route('/', commandRoutes(deps.commands, deps.metrics));
  api.route('/', toolRoutes(deps.commands, deps.metrics));
  api.route('/', shareRoutes(deps.commands, deps.views, deps.consistency, deps.metrics));
  api.route('/', queryRoutes(deps.views, deps.store, deps.consistency, deps.startup));
  api.route('/', agentRoutes(deps.views, deps.store, deps.consistency, deps.startup));
  const ops = opsRoutes(deps.metrics, deps.readiness);
  api.route('/', ops);
  app.route('/api/v1', api);
  app.route('/', ops);

  app.notFound((c) => problemResponse(c, problem(404, 'route_not_found', `no route for ${c.req.method} ${c.req.path}`)));

  app.onError((error, c) => {
    if (error instanceof ProblemError) return problemResponse(c, error.problem, error.headers);
    if (error instanceof DomainError) return problemResponse(c, problemOf(error));
    deps.log.error('request failed', { method: c.req.method, path: c.req.path, error });
    return problemResponse(c, problem(500, 'internal_error', 'the server failed to handle this request; it has been logged'));
  });

  return app;
}
