// Assembles a running Planline from a config: adapters → command side → projector → timer → HTTP.
// main.ts calls it for `npm start`; end-to-end tests call it to get a real server on a free port.
import { serve, type ServerType } from '@hono/node-server';
import type { Server as HttpServer, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Config } from './config.js';
import { openBus, openEventStore, openViewStore } from './adapters.js';
import { createCommandHandler } from './commands/handle.js';
import { createCommands } from './commands/service.js';
import { startProjector } from './projections/projector.js';
import { viewsProjection } from './projections/views-projection.js';
import { startApprovalTimer, type ApprovalTimer } from './handlers/approval-timer.js';
import { startExecution, type Execution } from './handlers/execution.js';
import { chatModelFor } from './agents/openai-model.js';
import { checkpointConsistency, projectorConsistency, startupGate, type ReadConsistency } from './http/consistency.js';
import { startFeedProjector } from './projections/feed-runner.js';
import { memoryViewStore } from './projections/memory-views.js';
import { createWsEdge, type WsEdge } from './http/ws-edge.js';
import { createApp } from './http/app.js';
import { createAuthenticator, type Authenticator } from './auth/authenticator.js';
import { createMetrics } from './http/metrics.js';
import type { Readiness } from './http/ops.js';
import type { Logger } from './log.js';
import type { ShutdownStep } from './lifecycle.js';

export interface Planline {
  /** Base URL of the HTTP edge (undefined when this process has no edge role). */
  url: string | undefined;
  /** authenticate(request) → principal or refusal: what the WebSocket upgrade calls too. */
  auth: Authenticator;
  /** The HTTP routes served (method and path), each with its rule in src/http/access.ts. */
  routes: ReadonlyArray<{ method: string; path: string }>;
  /** Shutdown steps in order: stop accepting, finish in-flight work, flush, close. */
  shutdownSteps: ShutdownStep[];
  /** Run every shutdown step (tests; main.ts wires the same steps to SIGTERM). */
  close(): Promise<void>;
}

export interface PlanlineOptions {
  /** Namespace of the Redis read-model keys (default: config.redisKeyPrefix); tests give each server its own. */
  viewsKeyPrefix?: string;
  /** Namespace of the bus's subjects and streams (default "planline"); tests give each deployment its own. */
  busPrefix?: string;
  /** Pause between NATS reconnect attempts (default 2 s); tests of a broker outage shorten it. */
  busReconnectWaitMs?: number;
  /** Agent jobs: ack wait and retry delays (tests of a killed worker shorten them). */
  jobAckWaitMs?: number;
  jobBackoffMs?: readonly number[];
  /** Lease time to live of the processors (default 10 s); tests of a killed executor shorten it. */
  leaseTtlMs?: number;
}

export async function startPlanline(config: Config, log: Logger, options: PlanlineOptions = {}): Promise<Planline> {
  const store = await openEventStore(config.eventStore, log);
  const { views, kind: viewsKind } = await openViewStore({
    redisUrl: config.redisUrl,
    keyPrefix: options.viewsKeyPrefix ?? config.redisKeyPrefix,
    eventStore: config.eventStore,
    logId: config.redisUrl ? undefined : await store.logId(),
  });
  // Embedded read models (memory, or SQLite beside the log) belong to this process: it must project them.
  const roles = new Set(viewsKind === 'redis' ? config.roles : [...config.roles, 'projector' as const]);
  const { bus, kind: busKind } = await openBus(config.natsUrl, {
    logger: log.child({ component: 'bus' }),
    prefix: options.busPrefix ?? config.natsPrefix,
    ...(options.busReconnectWaitMs !== undefined ? { reconnectWaitMs: options.busReconnectWaitMs } : {}),
  });
  // The client feed lives where its live frames can reach. With NATS, one feed projector serves every
  // edge through the shared read models. Embedded, it persists in the read-model file beside the log
  // (a restart projects only what is new) and the process projecting it publishes in-process; another
  // process on the same file, whose sockets the in-process bus cannot reach, follows the feed by
  // reading it. Only a log with no file beside it (`:memory:`) keeps the feed in memory, rebuilt at start.
  const feedViews = busKind === 'nats' || viewsKind !== 'memory' ? views : memoryViewStore();
  const projectsFeed = busKind === 'nats' ? roles.has('projector') : roles.has('edge') || roles.has('projector');

  const handler = createCommandHandler(store);
  const commands = createCommands(handler, {
    approvalTimeoutS: config.planApprovalTimeoutS,
    approvalTimeoutAction: config.planApprovalTimeoutAction,
    maxParallel: config.execution.maxParallel,
    maxAttempts: config.execution.maxAttempts,
    retryBackoffMs: config.execution.retryBackoffMs,
    multitask: config.execution.multitask,
  });
  const metrics = createMetrics();

  let timer: ApprovalTimer | undefined;
  const headAtStart = await store.headPosition();
  let caughtUp = headAtStart === 0;
  const startedAt = performance.now();
  if (roles.has('projector')) {
    log.info('projecting read models', { views: viewsKind, log_head: headAtStart });
  }
  const projector = roles.has('projector')
    ? startProjector({
        store,
        views,
        projection: viewsProjection,
        log: (msg) => log.warn(msg, { projection: viewsProjection.name }),
        onCommitted: (position) => {
          if (!caughtUp && position >= headAtStart) {
            caughtUp = true;
            const seconds = (performance.now() - startedAt) / 1000;
            log.info('read models caught up', { position, seconds: Number(seconds.toFixed(3)) });
          }
          timer?.poke();
        },
      })
    : undefined;

  // The client feed: its own projection (own checkpoint and lease), published on the bus after each commit.
  const feedProjector = projectsFeed
    ? await startFeedProjector({ store, views: feedViews, bus, history: config.feedHistory, log: log.child({ projection: 'feed' }), inMemory: feedViews !== views })
    : undefined;

  const consistency: ReadConsistency = projector
    ? withFallback(projectorConsistency(projector), checkpointConsistency(views, viewsProjection.name), () => projector.isActive())
    : checkpointConsistency(views, viewsProjection.name);

  if (roles.has('executor')) timer = startApprovalTimer({ views, commands, log });
  const model = chatModelFor(config.openai, { timeoutMs: config.execution.modelTimeoutMs });
  if (roles.has('worker') && !model.configured) log.warn('no model configured (OPENAI_BASE_URL / OPENAI_API_KEY): plans use the heuristic planner, agent runs fail with "no model configured"');
  const execution: Execution | undefined =
    roles.has('executor') || roles.has('worker')
      ? await startExecution({
          store,
          views,
          commands,
          bus,
          model,
          execution: config.execution,
          log,
          executor: roles.has('executor'),
          worker: roles.has('worker'),
          durableJobs: busKind === 'nats',
          ...(options.jobAckWaitMs !== undefined ? { ackWaitMs: options.jobAckWaitMs } : {}),
          ...(options.jobBackoffMs !== undefined ? { jobBackoffMs: options.jobBackoffMs } : {}),
          ...(options.leaseTtlMs !== undefined ? { leaseTtlMs: options.leaseTtlMs } : {}),
        })
      : undefined;

  // Event-loop delay: what every request waits on behind synchronous work (SQLite syncs, GC, …).
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  // Windowed: each scrape reports the delays since the previous one (max is read first, p99 resets).
  metrics.gauge('planline_event_loop_delay_max_seconds', 'Largest event-loop delay since the previous scrape.', () => loopDelay.max / 1e9);
  metrics.gauge('planline_event_loop_delay_p99_seconds', 'p99 event-loop delay since the previous scrape.', () => {
    const p99 = loopDelay.percentile(99) / 1e9;
    loopDelay.reset();
    return p99;
  });
  metrics.gauge('planline_event_log_head_position', 'Position of the last event in the log.', () => store.headPosition());
  metrics.gauge('planline_read_models_position', 'Position the read models have reached.', () => consistency.position());

  async function readiness(): Promise<Readiness> {
    const checks: Readiness['checks'] = {};
    let head = 0;
    try {
      head = await store.headPosition();
      checks.event_store = { ok: true, detail: head };
    } catch (error) {
      checks.event_store = { ok: false, detail: (error as Error).message };
    }
    checks.read_models = { ok: await views.ping().catch(() => false) };
    const position = await consistency.position().catch(() => -1);
    const behind = Math.max(0, head - position);
    const initialCatchUpDone = projector ? caughtUp || position >= headAtStart : position >= 0;
    checks.caught_up = { ok: initialCatchUpDone, detail: behind };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  }

  // Who is asking: both edges call auth.authenticate(request) (HTTP in its access middleware, the
  // WebSocket upgrade before it accepts a socket).
  const auth = await createAuthenticator(config.auth, log);
  if (auth.mode === 'off') {
    log.warn('auth is off: HOST is a loopback address and neither AUTH_SECRET nor AUTH_JWKS_URL is set; every request acts as principal "local"', {
      host: config.host,
    });
  } else {
    log.info('auth: JWT bearer tokens required', {
      mode: auth.mode,
      ...(config.auth.mode === 'jwks' ? { jwks_url: config.auth.jwksUrl } : {}),
      issuer: config.auth.mode !== 'off' ? (config.auth.issuer ?? null) : null,
      audience: config.auth.mode !== 'off' ? (config.auth.audience ?? null) : null,
    });
  }

  let server: HttpServer | undefined;
  let url: string | undefined;
  let routes: Array<{ method: string; path: string }> = [];
  // Graceful drain: once shutting down, every response closes its connection and connections that go
  // idle are closed at once, so close() waits for the requests in flight, not for keep-alive timeouts.
  let draining = false;
  const responding = new Set<ServerResponse>();
  let wsEdge: WsEdge | undefined;
  if (roles.has('edge')) {
    const startup = startupGate(consistency, headAtStart);
    wsEdge = createWsEdge({
      commands,
      views: feedViews,
      store,
      bus,
      limits: config.ws,
      log: log.child({ component: 'ws' }),
      metrics,
      // A feed this process rebuilds at start is not resumed from until it holds what the log held then.
      ...(feedProjector ? { feedReady: async () => void (await feedProjector.waitFor(headAtStart, 30_000)) } : {}),
      // Embedded, while another process holds the feed's lease, its frames never reach our bus.
      ...(busKind === 'memory' && feedProjector ? { feedNotLive: () => !feedProjector.isActive() } : {}),
    });
    const app = createApp({
      commands,
      views,
      store,
      consistency,
      startup,
      metrics,
      readiness,
      log,
      maxBodyBytes: config.maxBodyBytes,
      auth,
      websocket: wsEdge.handler,
    });
    routes = app.routes.filter((r) => r.method !== 'ALL').map((r) => ({ method: r.method, path: r.path }));
    const websocket = { server: wsEdge.server };
    server = await new Promise<HttpServer>((resolve, reject) => {
      // serve() without createServer options builds a node:http server.
      const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host, websocket }, () => resolve(s as HttpServer)) as ServerType;
      s.once('error', reject);
    });
    server.prependListener('request', (_req, res: ServerResponse) => {
      if (draining) res.shouldKeepAlive = false;
      responding.add(res);
      res.once('close', () => responding.delete(res));
    });
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    url = `http://${host}:${address.port}`;
    log.info('listening', { url, roles: [...roles], event_store: config.eventStore.kind, views: viewsKind });
  }

  const shutdownSteps: ShutdownStep[] = [
    // Sockets first: 1001 "going away" tells each IDE to reconnect (to another edge) and resume.
    { name: 'close IDE sockets (going away)', run: async () => wsEdge?.drain() },
    {
      name: 'stop accepting and finish in-flight requests',
      run: () =>
        new Promise<void>((resolve) => {
          const http = server;
          if (!http) return resolve();
          draining = true;
          for (const res of responding) if (!res.headersSent) res.shouldKeepAlive = false;
          // Idle keep-alive connections would hold close() open until they time out (seconds); a
          // connection whose response is still being written goes idle later, hence the sweep.
          const sweep = setInterval(() => http.closeIdleConnections(), 20);
          http.close(() => {
            clearInterval(sweep);
            resolve();
          });
          http.closeIdleConnections();
        }),
    },
    { name: 'stop the approval timer', run: async () => timer?.stop() },
    { name: 'stop the workers (jobs in flight finish) and the executor', run: async () => execution?.stop() },
    { name: 'stop the projector', run: async () => projector?.stop() },
    { name: 'stop the feed projector', run: async () => feedProjector?.stop() },
    { name: 'drain the bus (flushes published frames)', run: () => bus.drain() },
    { name: 'close the event store (flushes pending appends)', run: () => store.close() },
    { name: 'close the read-model store', run: () => views.close() },
    { name: 'close the feed store', run: async () => (feedViews === views ? undefined : feedViews.close()) },
  ];

  return {
    url,
    auth,
    routes,
    shutdownSteps,
    async close() {
      for (const step of shutdownSteps) await step.run();
    },
  };
}

/** Use the local projector while it is the active one; otherwise read the shared checkpoint. */
function withFallback(primary: ReadConsistency, fallback: ReadConsistency, usePrimary: () => boolean): ReadConsistency {
  return {
    waitFor: (position, timeoutMs) => (usePrimary() ? primary : fallback).waitFor(position, timeoutMs),
    position: () => (usePrimary() ? primary : fallback).position(),
  };
}
