// The WebSocket edge: `GET /api/v1/ws/:session_id` upgrades (Hono's upgradeWebSocket for
// @hono/node-server, over a `ws` server the HTTP server hands upgrades to). It owns what is per process
// and holds nothing that matters: the sockets, one feed hub, the heartbeat, the connection limit and the
// going-away drain. Each socket's stream and commands are in ws-connection.ts.
//
// Refusals (unknown session, connection limit, shutting down) complete the handshake, send an `error`
// frame and close with a code: every client, browsers included, can read a close code and a frame, while
// a refused handshake reaches a browser only as an anonymous 1006.
import { upgradeWebSocket } from '@hono/node-server';
import type { MiddlewareHandler } from 'hono';
import { WebSocketServer, type WebSocket } from 'ws';
import * as v from 'valibot';
import type { Bus } from '../bus/bus.js';
import type { WsLimits } from '../config.js';
import { localPrincipal, type Principal } from '../auth/principal.js';
import { sessionAccessRefusal } from './access.js';
import type { Commands } from '../commands/service.js';
import { newId } from '../events/ids.js';
import type { EventStore } from '../events/store.js';
import type { Logger } from '../log.js';
import { FEED_VERSION, feedEpoch } from '../projections/feed.js';
import type { ViewStore } from '../projections/views.js';
import type { Metrics } from './metrics.js';
import { wsCommands } from './ws-commands.js';
import { CLOSE, openConnection, type Connection } from './ws-connection.js';
import { feedHub } from './ws-hub.js';
import { errorFrame } from './ws-protocol.js';
import type { ControlFrame } from './ws-snapshot.js';

export interface WsEdgeDeps {
  commands: Commands;
  views: ViewStore;
  store: EventStore;
  bus: Bus;
  limits: WsLimits;
  log: Logger;
  metrics?: Metrics;
  /** Resolves once the feed is caught up enough to serve (a feed rebuilt at start); absent: at once. */
  feedReady?: () => Promise<void>;
  /** True while live frames cannot reach this process through the bus: sockets then poll the feed. */
  feedNotLive?: () => boolean;
}

export interface WsEdge {
  /** Give it to serve({ websocket: { server } }): the HTTP server hands it the upgrades. */
  server: WebSocketServer;
  /** The route handler for GET /api/v1/ws/:session_id. */
  handler: MiddlewareHandler;
  connections(): number;
  /** Refuse new sockets, close the open ones with 1001 "going away", wait for them (terminate stragglers). */
  drain(timeoutMs?: number): Promise<void>;
}

/** The new_ prefix of the seed's temporary sessions: such a socket starts a fresh one. */
const TEMPORARY = 'new_';

const connectQuery = v.object({
  since: v.optional(v.pipe(v.string(), v.regex(/^\d{1,15}$/, 'must be an offset from this feed'), v.transform(Number))),
  epoch: v.optional(v.pipe(v.string(), v.maxLength(200, 'is longer than 200 characters'))),
  wait_for: v.optional(v.pipe(v.string(), v.regex(/^\d{1,15}$/, 'must be a position from a command response'), v.transform(Number))),
});

const WAIT_FOR_TIMEOUT_MS = 5_000;

interface Plan {
  sessionId: string;
  refusal?: { frame: ControlFrame; code: number; reason: string };
  since?: number;
  epoch?: string;
  /** A log position (a command's response): the feed must include it before the socket starts. */
  waitFor?: number;
  /** A bad query: said in an error frame, then the socket starts as a first connect. */
  warning?: ControlFrame;
}

export function createWsEdge(deps: WsEdgeDeps): WsEdge {
  const { commands, views, limits, log } = deps;
  // Frames past the limit get an error frame and the socket stays open; far past it (the memory a
  // frame may take) the ws server closes the socket with 1009.
  const server = new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false, maxPayload: 2 * limits.maxFrameBytes + 65_536 });
  const hub = feedHub(deps.bus, log.child({ component: 'feed-hub' }), deps.feedNotLive ? { mustPoll: deps.feedNotLive } : {});
  const run = wsCommands(commands, deps.metrics);
  const open = new Map<Connection, WebSocket>();
  let draining = false;

  const logId = deps.store.logId();
  logId.catch(() => {}); // surfaced by the first connect that needs it
  /** Read your own writes on the socket, as `?wait_for=` does over HTTP: the feed reaches a log position. */
  async function feedReaches(position: number): Promise<void> {
    const deadline = Date.now() + WAIT_FOR_TIMEOUT_MS;
    while (((await views.checkpoint('feed'))?.position ?? 0) < position && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async function epoch(): Promise<string> {
    const checkpoint = await views.checkpoint('feed');
    return feedEpoch(await logId, checkpoint?.version ?? FEED_VERSION);
  }

  deps.metrics?.gauge('planline_ws_connections', 'Open IDE sockets on this edge.', () => open.size);
  deps.metrics?.gauge('planline_ws_watched_sessions', 'Sessions this edge follows live on the bus.', () => hub.sessions());

  // A dead peer answers no ping: it is terminated at the second tick without a sign of life.
  const heartbeat = setInterval(() => {
    for (const connection of open.keys()) connection.beat();
  }, limits.heartbeatMs);
  heartbeat.unref();

  async function planConnection(requested: string, query: Record<string, string>, principal: Principal): Promise<Plan> {
    if (draining) return { sessionId: requested, refusal: { frame: errorFrame('going_away', 'the server is shutting down; reconnect'), code: CLOSE.goingAway, reason: 'going away' } };
    if (open.size >= limits.maxConnections) {
      return {
        sessionId: requested,
        refusal: {
          frame: errorFrame('too_many_connections', `this server holds its limit of ${limits.maxConnections} sockets; try again later or another server`, {
            max_connections: limits.maxConnections,
          }),
          code: CLOSE.tryAgainLater,
          reason: 'too many connections',
        },
      };
    }
    if (requested.startsWith(TEMPORARY)) {
      const started = await commands.startSession({}, { command_id: newId(), principal: principal.id });
      return { sessionId: started.session_id, since: 0 };
    }
    // The one place the socket decides who may watch a session: it exists, is not deleted, and is the
    // principal's or shared with it (a stranger gets the very answer a missing session gets).
    const refusal = await sessionAccessRefusal(commands, principal, requested, 'read');
    if (refusal) {
      const notFound = refusal.status === 404;
      return {
        sessionId: requested,
        refusal: {
          frame: errorFrame(refusal.code, refusal.message, { http_status: refusal.status, ...refusal.details }),
          code: notFound ? CLOSE.sessionNotFound : CLOSE.forbidden,
          reason: notFound ? 'session not found' : 'forbidden',
        },
      };
    }
    const parsed = v.safeParse(connectQuery, { since: query.since, epoch: query.epoch, wait_for: query.wait_for });
    if (!parsed.success) {
      const issue = parsed.issues[0];
      const message = `invalid connect query: ${v.getDotPath(issue) ?? ''} ${issue.message}; starting from the current state`;
      return { sessionId: requested, warning: errorFrame('validation_failed', message.replace(/ {2}/g, ' ')) };
    }
    const { since, epoch: clientEpoch, wait_for } = parsed.output;
    return {
      sessionId: requested,
      ...(since !== undefined ? { since } : {}),
      ...(clientEpoch !== undefined ? { epoch: clientEpoch } : {}),
      ...(wait_for !== undefined ? { waitFor: wait_for } : {}),
    };
  }

  const handler = upgradeWebSocket(
    async (c) => {
      const principal = c.get('principal') ?? localPrincipal;
      const plan = await planConnection(c.req.param('session_id') ?? '', c.req.query(), principal);
      let connection: Connection | undefined;
      return {
        onOpen(_event, ws) {
          const raw = ws.raw as unknown as WebSocket;
          if (plan.refusal) {
            raw.send(JSON.stringify(plan.refusal.frame));
            raw.close(plan.refusal.code, plan.refusal.reason);
            return;
          }
          const opened = openConnection({
            sessionId: plan.sessionId,
            principal: principal.id,
            socket: raw,
            hub,
            views,
            epoch,
            run,
            limits,
            log,
            ...(deps.feedReady || plan.waitFor !== undefined
              ? {
                  ready: async () => {
                    await deps.feedReady?.();
                    if (plan.waitFor !== undefined) await feedReaches(plan.waitFor);
                  },
                }
              : {}),
            onClosed: () => open.delete(opened),
            recheckAccess: () => sessionAccessRefusal(deps.commands, principal, plan.sessionId, 'read'),
          });
          connection = opened;
          open.set(opened, raw);
          raw.on('pong', () => opened.touch());
          if (principal.expiresAt !== undefined) {
            // A socket outlives no token: at its expiry the IDE reconnects with a fresh one and resumes.
            const expiry = setTimeout(() => opened.refuse(errorFrame('token_expired', 'the token this socket was opened with has expired; reconnect with a fresh one'), CLOSE.tokenExpired, 'token expired'), Math.max(0, principal.expiresAt - Date.now()));
            expiry.unref();
            raw.once('close', () => clearTimeout(expiry));
          }
          if (plan.warning) raw.send(JSON.stringify(plan.warning));
          opened.start(plan.since, plan.epoch);
        },
        onMessage(event) {
          const data = event.data;
          connection?.receive(typeof data === 'string' ? data : (data as ArrayBuffer), typeof data !== 'string');
        },
        onClose() {
          connection?.closed();
        },
        onError(event) {
          log.debug('socket error', { session_id: plan.sessionId, error: String((event as Event & { error?: unknown }).error ?? event.type) });
        },
      };
    },
    { onError: (error: unknown) => log.error('socket handler failed', { error: String(error) }) },
  );

  return {
    server,
    handler,
    connections: () => open.size,

    async drain(timeoutMs = 2_000) {
      draining = true;
      clearInterval(heartbeat);
      const sockets = [...open.values()];
      for (const raw of sockets) raw.close(CLOSE.goingAway, 'going away: the server is shutting down; reconnect and resume');
      const deadline = Date.now() + timeoutMs;
      while (open.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      for (const raw of open.values()) raw.terminate();
      hub.close();
      server.close();
    },
  };
}
