// Who may call which route, in one place. The access middleware authenticates every request (the
// same authenticate() the WebSocket upgrade calls), then applies the one rule its route has in
// ACCESS_RULES before the route runs. A route without a rule is refused (fail closed), and the e2e
// access test walks the app's routes so a new route cannot ship without one.
//
// Sessions are private to their owner and the principals it shares them with. A stranger gets the
// very 404 a missing session or plan gets (never 403: it must not learn what exists); a viewer that
// tries a command gets 403 `forbidden` (it can see the session, so a 404 would lie).
// Reads and commands alike check the log, caught up (commands.sessionAccess: one read of what was
// appended since the cached state), not the read models: a revoked share ends with the revoke's
// response, on every edge, even before the projector has applied it. Commands are checked again
// inside the decision (so commands arriving over the WebSocket get the same rules); this check
// decides the order of the answers: access before validation, so a stranger learns nothing.
// Lists (GET /sessions, GET /approvals) are scoped by the read models' per-principal indexes.
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { Authenticator } from '../auth/authenticator.js';
import type { Principal } from '../auth/principal.js';
import { accessRefusal, type Need } from '../commands/access.js';
import { notFound, type DomainError } from '../commands/errors.js';
import type { Commands } from '../commands/service.js';
import { parseStreamName } from '../events/catalog.js';
import type { Logger } from '../log.js';
import { problem, problemOf, problemResponse } from './problem.js';

declare module 'hono' {
  interface ContextVariableMap {
    /** Who sent the request (set by the access middleware before any route runs). */
    principal: Principal;
  }
}

export type AccessRule =
  /** No token needed: liveness and readiness probes. */
  | { kind: 'open' }
  /** Any authenticated principal; what the route shows is scoped to it (lists) or checked by its use case. */
  | { kind: 'principal' }
  /** The session named by the path parameter, as `need` says. */
  | { kind: 'session'; param: string; need: Need }
  /** The plan named by the path parameter, through its session. */
  | { kind: 'plan'; param: string; need: Need }
  /** The agent run named by the path parameter, through its session. */
  | { kind: 'run'; param: string; need: Need }
  /** A raw event stream: only a session's or plan's stream, for principals that may read that session. */
  | { kind: 'stream'; param: string };

const open = { kind: 'open' } as const;
const anyPrincipal = { kind: 'principal' } as const;
const session = (need: Need): AccessRule => ({ kind: 'session', param: 'id', need });
const plan = (need: Need): AccessRule => ({ kind: 'plan', param: 'id', need });
const run = (need: Need): AccessRule => ({ kind: 'run', param: 'id', need });

/** `METHOD /path` (as routed, without the /api/v1 prefix) → its rule. Every route has exactly one. */
export const ACCESS_RULES: Readonly<Record<string, AccessRule>> = {
  'GET /health': open,
  'GET /ready': open,
  // Aggregate counters only, but they describe the traffic: a scraper sends a token like any client.
  'GET /metrics': anyPrincipal,

  'POST /sessions': anyPrincipal, // the new session is the principal's
  'GET /sessions': anyPrincipal, // lists what the principal owns or was shared
  'GET /sessions/:id': session('read'),
  'GET /sessions/:id/history': session('read'),
  'GET /sessions/:id/events': session('read'),
  'PATCH /sessions/:id': session('command'), // renaming: collaborators too
  'DELETE /sessions/:id': session('own'),
  'GET /sessions/:id/pending-approvals': session('read'),
  'POST /sessions/:id/messages': session('command'),
  'POST /sessions/:id/suspend': session('command'),
  'POST /sessions/:id/resume': session('command'),
  'POST /sessions/:id/complete': session('command'),
  'POST /sessions/:id/plan-decision': session('command'),
  'GET /sessions/:id/tool-policy': session('read'),
  'PUT /sessions/:id/tool-policy': session('command'),
  'PATCH /sessions/:id/tool-policy': session('command'),
  // The call must be one of this session's runs' (the use case checks; another's is unknown_call).
  'POST /sessions/:id/tool-calls/:call_id/result': session('command'),
  'POST /sessions/:id/tool-calls/:call_id/decision': session('command'),
  'GET /sessions/:id/shares': session('read'),
  'PUT /sessions/:id/shares/:principal': session('own'),
  'DELETE /sessions/:id/shares/:principal': session('own'),

  'POST /plans': anyPrincipal, // a new session is the principal's; a named one is checked by the use case
  'GET /plans/:id': plan('read'),
  'GET /plans/:id/status': plan('read'),
  'POST /plans/:id/revisions': plan('command'),
  'POST /plans/:id/decision': plan('command'),
  'POST /plans/:id/cancel': plan('command'),

  'GET /runs/:id': run('read'),

  'GET /approvals': anyPrincipal, // lists what the principal may read
  'GET /agents': anyPrincipal, // the agent definitions: no session data
  'GET /agents/:session_id/current': { kind: 'session', param: 'session_id', need: 'read' },
  'GET /streams/:name': { kind: 'stream', param: 'name' },
  // The IDE socket: any principal may open one; the edge checks the session itself (sessionAccessRefusal,
  // 'read'), because new_<anything> starts a session and its refusals are error frames and close codes.
  'GET /ws/:session_id': anyPrincipal,
};

export const API_PREFIX = '/api/v1';

/** The rule's key for a route as Hono registered it (`/api/v1/sessions/:id` → `/sessions/:id`). */
export function ruleKey(method: string, path: string): string {
  return `${method} ${path.startsWith(`${API_PREFIX}/`) ? path.slice(API_PREFIX.length) : path}`;
}

/** The path parameters of `pattern` in `path` (patterns here are plain `/a/:b/c`, no wildcards). */
function paramsOf(pattern: string, path: string): Record<string, string> {
  const names = pattern.split('/');
  const values = path.split('/');
  const params: Record<string, string> = {};
  names.forEach((name, i) => {
    if (name.startsWith(':') && values[i] !== undefined) {
      try {
        params[name.slice(1)] = decodeURIComponent(values[i]!);
      } catch {
        params[name.slice(1)] = values[i]!;
      }
    }
  });
  return params;
}

export interface AccessDeps {
  auth: Authenticator;
  commands: Commands;
  log: Logger;
}

const notFoundProblem = (what: 'session' | 'plan' | 'run', id: string) => problem(404, `${what}_not_found`, `${what} ${id} does not exist`, { [`${what}_id`]: id });

export function accessMiddleware(deps: AccessDeps): MiddlewareHandler {
  async function check(c: Context, rule: AccessRule, params: Record<string, string>, principal: Principal): Promise<Response | undefined> {
    switch (rule.kind) {
      case 'open':
      case 'principal':
        return undefined;
      case 'session': {
        const id = params[rule.param] ?? '';
        const found = await deps.commands.sessionAccess(id, principal.id);
        // A deleted session is still its readers' to ask about: the route answers (deleting it again
        // is a success that changes nothing; anything else is the 404 a deleted session gets).
        if (!found.exists && !found.deleted) return problemResponse(c, notFoundProblem('session', id));
        const refusal = accessRefusal(id, principal.id, found.access, rule.need);
        return refusal ? problemResponse(c, problemOf(refusal)) : undefined;
      }
      case 'plan': {
        const id = params[rule.param] ?? '';
        const found = await deps.commands.planAccess(id, principal.id);
        if (!found.exists || found.access === 'none') return problemResponse(c, notFoundProblem('plan', id));
        const refusal = accessRefusal(found.session_id, principal.id, found.access, rule.need);
        return refusal ? problemResponse(c, problemOf(refusal)) : undefined;
      }
      case 'run': {
        const id = params[rule.param] ?? '';
        const found = await deps.commands.runAccess(id, principal.id);
        if (!found.exists || found.access === 'none') return problemResponse(c, notFoundProblem('run', id));
        const refusal = accessRefusal(found.session_id, principal.id, found.access, rule.need);
        return refusal ? problemResponse(c, problemOf(refusal)) : undefined;
      }
      case 'stream': {
        const name = params[rule.param] ?? '';
        const stream = parseStreamName(name);
        // The raw log of a session (deleted ones too: debugging what happened) or of one of its plans or runs.
        const found =
          stream === undefined
            ? undefined
            : stream.kind === 'session'
              ? await deps.commands.sessionAccess(stream.id, principal.id)
              : stream.kind === 'plan'
                ? await deps.commands.planAccess(stream.id, principal.id)
                : await deps.commands.runAccess(stream.id, principal.id);
        if (!found || !(found.exists || found.deleted) || found.access === 'none') {
          return problemResponse(c, problem(404, 'stream_not_found', `stream ${name} has no events`, { stream: name }));
        }
        return undefined;
      }
    }
  }

  return async (c, next) => {
    // The route this request will run (the last handler matched that is not a middleware).
    const route = matchedRoutes(c).findLast((r) => r.method !== 'ALL');
    const key = route ? ruleKey(route.method, route.path) : undefined;
    const rule = key !== undefined ? ACCESS_RULES[key] : anyPrincipal; // no route: authenticate, then 404
    if (rule === undefined) {
      deps.log.error('route has no access rule; refusing it', { route: key });
      return problemResponse(c, problem(500, 'internal_error', 'this route has no access rule; it has been logged'));
    }
    if (rule.kind === 'open') return next();

    const result = await deps.auth.authenticate(c.req.raw);
    if (!result.ok) {
      const { refusal } = result;
      return problemResponse(
        c,
        problem(refusal.status, refusal.code, refusal.detail),
        {
          ...(refusal.challenge ? { 'www-authenticate': refusal.challenge } : {}),
          ...(refusal.status === 503 ? { 'retry-after': '5' } : {}),
        },
      );
    }
    c.set('principal', result.principal);
    const refused = await check(c, rule, route ? paramsOf(route.path, c.req.path) : {}, result.principal);
    return refused ?? next();
  };
}

/**
 * For the WebSocket edge (and any other edge): may `principal` do what `need` says to the session?
 * Undefined when it may; otherwise the refusal to answer with: `session_not_found` for a stranger or a
 * missing session (the same answer), `forbidden` for a viewer's command. Call it on upgrade with
 * 'read' (subscribing) and pass `principal` in every command's meta (the decider checks commands).
 */
export async function sessionAccessRefusal(commands: Commands, principal: Principal, sessionId: string, need: Need): Promise<DomainError | undefined> {
  const found = await commands.sessionAccess(sessionId, principal.id);
  if (!found.exists) return notFound('session', sessionId);
  return accessRefusal(sessionId, principal.id, found.access, need);
}
