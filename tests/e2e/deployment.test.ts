// The production shape under kill -9: two edges, two projectors (one active, one standby), an executor
// and two workers as separate processes on PostgreSQL + Redis + NATS, with a scripted model; clients
// drive plans through both edges with Idempotency-Keys, and IDE sockets on both edges watch two
// sessions, while processes are killed with SIGKILL at random moments and started again. Afterwards
// nothing the clients saw acknowledged is missing from the log, nothing is in it twice, every approved
// plan ran to completion with each subtask succeeding once, every socket saw every offset once, and the
// read models equal a fresh rebuild of the log. `npm test` runs a few trials; `npm run soak` runs
// DEPLOYMENT_TRIALS (100).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openEventStore } from '../../src/adapters.js';
import { loadConfig } from '../../src/config.js';
import type { EventStore, StoredEvent } from '../../src/events/store.js';
import { memoryViewStore } from '../../src/projections/memory-views.js';
import { rebuild } from '../../src/projections/projector.js';
import { redisViewStore } from '../../src/projections/redis-views.js';
import { APPROVALS } from '../../src/projections/approval-view.js';
import { PLANS } from '../../src/projections/plan-view.js';
import { SESSIONS } from '../../src/projections/session-view.js';
import { indexNames, viewsProjection } from '../../src/projections/views-projection.js';
import type { ViewStore } from '../../src/projections/views.js';
import { Redis } from 'ioredis';
import { buildOnce, freePort, planlineProcess, removeBuild, type PlanlineProcess } from '../support/deployment.js';
import {
  deleteBusStreams,
  dropPostgresSchemas,
  flushRedisKeys,
  NATS_URL,
  POSTGRES_URL,
  REDIS_URL,
  serviceAvailable,
  uniqueBusPrefix,
  uniquePrefix,
  uniqueSchema,
} from '../support/services.js';
import { startScriptedOpenAi, type ScriptedOpenAi } from '../support/scripted-openai.js';
import { connect, type FeedClient, type Frame } from '../support/ws-client.js';

const servicesUp =
  (await serviceAvailable('postgres', POSTGRES_URL)) && (await serviceAvailable('redis', REDIS_URL)) && (await serviceAvailable('nats', NATS_URL));
const TRIALS = Number(process.env.DEPLOYMENT_TRIALS ?? 2);
const DRIVE_MS = Number(process.env.DEPLOYMENT_DRIVE_MS ?? 6_000);

interface Acknowledged {
  plan_id: string;
  session_id: string;
  approval_request_id: string;
  approved: boolean;
}

describe.skipIf(!servicesUp)('a multi-process deployment under kill -9', () => {
  let main: string | undefined;
  let model: ScriptedOpenAi | undefined;
  const schemas: string[] = [];
  const prefixes: string[] = [];
  const busPrefixes: string[] = [];

  beforeAll(async () => {
    main = buildOnce();
    // Agents answer at once; the architect and classifier are never asked (plans come from clients).
    model = await startScriptedOpenAi({ respond: () => ({ content: 'done' }) });
  }, 180_000);

  afterAll(async () => {
    if (main !== undefined) removeBuild(main);
    await model?.close();
    await dropPostgresSchemas(POSTGRES_URL, schemas);
    for (const prefix of prefixes) await flushRedisKeys(REDIS_URL, prefix);
    for (const prefix of busPrefixes) await deleteBusStreams(NATS_URL, prefix);
  }, 600_000); // a soak leaves a hundred schemas, key spaces and streams to clean up

  for (let trial = 1; trial <= TRIALS; trial++) {
    test(`trial ${trial}: edges, projectors, executor, workers, random SIGKILLs: nothing lost or doubled, plans complete, sockets see every offset once`, async () => {
      const schema = uniqueSchema(`deploy${trial}`);
      const prefix = uniquePrefix(`deploy-${trial}-${randomUUID().slice(0, 6)}`);
      const busPrefix = uniqueBusPrefix(`deploy${trial}`);
      schemas.push(schema);
      prefixes.push(prefix);
      busPrefixes.push(busPrefix);
      const env = {
        EVENTSTORE_URL: `${POSTGRES_URL}?schema=${schema}`,
        REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        NATS_URL,
        NATS_PREFIX: busPrefix,
        OPENAI_BASE_URL: model!.baseURL,
        OPENAI_API_KEY: 'test',
        PLAN_APPROVAL_TIMEOUT_S: '3600',
        MODEL_TIMEOUT_MS: '5000',
      };
      const processes: PlanlineProcess[] = [
        planlineProcess(main!, 'edge-1', { ...env, ROLES: 'edge' }, await freePort()),
        planlineProcess(main!, 'edge-2', { ...env, ROLES: 'edge' }, await freePort()),
        planlineProcess(main!, 'projector-1', { ...env, ROLES: 'projector' }),
        planlineProcess(main!, 'projector-2', { ...env, ROLES: 'projector' }),
        planlineProcess(main!, 'executor-1', { ...env, ROLES: 'executor' }),
        planlineProcess(main!, 'worker-1', { ...env, ROLES: 'worker' }),
        planlineProcess(main!, 'worker-2', { ...env, ROLES: 'worker' }),
      ];
      const edges = processes.filter((p) => p.url !== undefined);
      const watchers: Watcher[] = [];
      try {
        await Promise.all(processes.map((p) => p.start()));
        // Two sessions whose plans IDE sockets watch, one socket on each edge, reconnecting across kills.
        const watched = ['watched-a', 'watched-b'].map((name) => `${name}-${trial}-${randomUUID().slice(0, 6)}`);
        for (const id of watched) {
          const created = await fetch(`${edges[0]!.url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session_id: id }) });
          expect(created.status).toBe(201);
          for (const edge of edges) watchers.push(watch(edges.map((e) => e.url!), edges.indexOf(edge), id));
        }

        // Clients: create a plan and approve it, each with its own Idempotency-Key, retried (on the
        // other edge, too) until answered; only what a client saw answered counts as acknowledged.
        const acknowledged: Acknowledged[] = [];
        let driving = true;
        const send = async (path: string, body: unknown, key: string) => {
          for (let attempt = 0; ; attempt++) {
            const edge = edges[(attempt + Math.floor(Math.random() * 2)) % edges.length]!;
            const reply = await fetch(`${edge.url}/api/v1${path}`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'idempotency-key': key },
              body: JSON.stringify(body),
            }).then(
              async (r) => ({ status: r.status, body: (await r.json().catch(() => undefined)) as Record<string, unknown> | undefined }),
              () => undefined,
            );
            if (reply !== undefined && reply.status < 300) return reply.body!;
            if (reply !== undefined && reply.status < 500 && reply.status !== 409) {
              throw new Error(`${path} refused: ${reply.status} ${JSON.stringify(reply.body)}`);
            }
            await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 50));
          }
        };
        const client = async (n: number) => {
          for (let i = 0; driving; i++) {
            // Clients 0 and 1 plan in the watched sessions (a plan waits there until the previous one ended).
            const session = n < watched.length ? { session_id: watched[n] } : {};
            const created = await send('/plans', { ...session, goal: `client ${n} plan ${i}`, subtasks: [{ description: 'a' }, { description: 'b', dependencies: [0] }, { description: 'c', dependencies: [0] }] }, `plan-${n}-${i}`);
            const plan = { plan_id: String(created.plan_id), session_id: String(created.session_id), approval_request_id: String(created.approval_request_id), approved: false };
            if (i % 2 === 0 || n < watched.length) {
              await send(`/plans/${plan.plan_id}/decision`, { approval_request_id: plan.approval_request_id, decision: 'approve' }, `approve-${n}-${i}`);
              plan.approved = true;
            }
            acknowledged.push(plan);
          }
        };
        // The chaos: kill a random process now and then, bring it back a little later.
        const chaos = async () => {
          let kills = 0;
          while (driving) {
            await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 700));
            if (!driving) break;
            const victim = processes[Math.floor(Math.random() * processes.length)]!;
            await victim.kill();
            kills++;
            await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 400));
            await victim.start();
          }
          return kills;
        };
        const clients = Array.from({ length: 8 }, (_, n) => client(n));
        const killing = chaos();
        await new Promise((resolve) => setTimeout(resolve, DRIVE_MS));
        driving = false;
        await Promise.all(clients);
        const kills = await killing;
        expect(kills).toBeGreaterThan(0);
        expect(acknowledged.length).toBeGreaterThan(10);

        // Every approved plan runs to completion once the killed processes are back (a killed executor's
        // lease lapses after 10 s; a killed worker's job is redelivered after the ack wait).
        const approved = acknowledged.filter((p) => p.approved);
        for (const deadline = Date.now() + 60_000; ; ) {
          const statuses = await Promise.all(approved.map((p) => fetch(`${edges[0]!.url}/api/v1/plans/${p.plan_id}`).then((r) => r.json() as Promise<{ status?: string }>, (): { status?: string } => ({}))));
          const open = statuses.filter((s) => s.status !== 'completed');
          if (open.length === 0) break;
          if (Date.now() > deadline) throw new Error(`${open.length} of ${approved.length} approved plans did not complete: ${JSON.stringify(open.slice(0, 3))}`);
          await new Promise((resolve) => setTimeout(resolve, 250));
        }

        // The log: every acknowledged write is there, exactly once.
        const store = await openEventStore(loadConfig(env).eventStore);
        let log: StoredEvent[];
        try {
          log = await readWholeLog(store);
        } finally {
          await store.close();
        }
        const ids = new Set(log.map((e) => e.id));
        expect(ids.size).toBe(log.length);
        expect(log.map((e) => e.position)).toEqual(log.map((_, i) => i + 1));
        const ofType = (type: string, stream: string) => log.filter((e) => e.type === type && e.stream === stream).length;
        for (const plan of acknowledged) {
          expect(ofType('PlanDrafted', `plan-${plan.plan_id}`), plan.plan_id).toBe(1);
          if (plan.approved) expect(ofType('PlanApproved', `plan-${plan.plan_id}`), plan.plan_id).toBe(1);
          if (!plan.approved) continue;
          // Executed exactly once: each subtask succeeded once, the plan completed once.
          expect(ofType('PlanCompleted', `plan-${plan.plan_id}`), plan.plan_id).toBe(1);
          const successes = log.filter((e) => e.type === 'SubtaskSucceeded' && e.stream === `plan-${plan.plan_id}`).map((e) => String(e.data.subtask_id));
          expect(successes.length, plan.plan_id).toBe(3);
          expect(new Set(successes).size, plan.plan_id).toBe(3);
        }
        const classified = log.filter((e) => e.type === 'TaskClassified');
        expect(new Set(classified.map((e) => e.stream + String(e.data.plan_id))).size).toBe(classified.length);
        // No run answered twice.
        const runEnds = log.filter((e) => e.type === 'RunSucceeded').map((e) => e.stream);
        expect(new Set(runEnds).size).toBe(runEnds.length);

        // Every socket saw every offset of its session once, in order, across edge kills and resumes.
        const finalHead = log.at(-1)!.position;
        for (const watcher of watchers) {
          const expected = await feedLength(edges[0]!.url!, watcher.sessionId, finalHead);
          await watcher.caughtUp(expected);
          expect(watcher.problems, watcher.sessionId).toEqual([]);
          expect(watcher.offsets, watcher.sessionId).toEqual(Array.from({ length: expected }, (_, i) => i + 1));
        }

        // The read models, as the surviving projector left them, equal a fresh rebuild of the log.
        const head = log.at(-1)!.position;
        // A projector killed holding the lease hands over once it lapses (10 s): wait for that too.
        let caughtUp = 503;
        for (const deadline = Date.now() + 40_000; caughtUp === 503 && Date.now() < deadline; ) {
          caughtUp = (await fetch(`${edges[0]!.url}/api/v1/sessions?limit=1&wait_for=${head}`)).status;
        }
        expect(caughtUp).toBe(200);
        const live = redisViewStore(new Redis(REDIS_URL), { keyPrefix: prefix });
        const fresh = memoryViewStore();
        const rebuilt = await openEventStore(loadConfig(env).eventStore);
        try {
          await rebuild({ store: rebuilt, views: fresh, projection: viewsProjection });
          expect(await snapshot(live, acknowledged)).toEqual(await snapshot(fresh, acknowledged));
        } finally {
          await rebuilt.close();
          await live.close();
        }
      } catch (error) {
        const outputs = processes.map((p) => `--- ${p.name}\n${p.output()}`).join('\n');
        throw new Error(`${(error as Error).message}\n${outputs}`, { cause: error });
      } finally {
        for (const watcher of watchers) await watcher.stop();
        await Promise.all(processes.map((p) => p.kill()));
      }
    }, 180_000);
  }
});

async function readWholeLog(store: EventStore): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for (let after = 0; ; ) {
    const page = await store.readAll({ after, maxCount: 1_000 });
    if (page.length === 0) return all;
    all.push(...page);
    after = page.at(-1)!.position;
  }
}

/** What the clients can read: their plans and sessions, the approvals, and the lists, in order. */
async function snapshot(views: ViewStore, plans: readonly Acknowledged[]) {
  const sessionIds = [...new Set(plans.map((p) => p.session_id))];
  const approvals = await views.range(indexNames.approvals({}), { limit: 100_000 });
  return {
    sessionsList: await views.range(indexNames.sessions({}), { limit: 100_000 }),
    sessions: await views.getMany(SESSIONS, sessionIds),
    plans: await views.getMany(PLANS, plans.map((p) => p.plan_id)),
    approvals: await views.getMany(APPROVALS, approvals.map((a) => a.id)),
    approvalsList: approvals,
  };
}

interface Watcher {
  sessionId: string;
  /** Offsets seen, across connections, in arrival order. */
  offsets: number[];
  /** Duplicates, gaps and frames the IDE could not decode. */
  problems: string[];
  caughtUp(offset: number): Promise<void>;
  stop(): Promise<void>;
}

/** An IDE socket that follows one session, reconnecting (to the other edge) with since/epoch when it drops. */
function watch(urls: readonly string[], first: number, sessionId: string): Watcher {
  const offsets: number[] = [];
  const problems: string[] = [];
  let last = 0;
  let epoch: string | undefined;
  let stopped = false;
  let current: FeedClient | undefined;
  const onFrame = (frame: Frame) => {
    if (typeof frame.epoch === 'string') epoch = frame.epoch;
    if (typeof frame.offset !== 'number') return;
    if (frame.type === 'snapshot' || frame.type === 'resync') {
      problems.push(`${frame.type} at ${frame.offset}`);
      last = frame.offset;
      return;
    }
    if (frame.offset !== last + 1) problems.push(`offset ${frame.offset} after ${last}`);
    offsets.push(frame.offset);
    last = Math.max(last, frame.offset);
  };
  const loop = (async () => {
    for (let attempt = first; !stopped; attempt++) {
      const url = urls[attempt % urls.length]!;
      try {
        current = await connect(url, sessionId, { since: last, ...(epoch ? { epoch } : {}) });
        let seen = 0;
        const pump = setInterval(() => {
          while (seen < current!.frames.length) onFrame(current!.frames[seen++]!);
        }, 10);
        await current.closed;
        clearInterval(pump);
        while (seen < current.frames.length) onFrame(current.frames[seen++]!);
        if (current.invalid.length) problems.push(...current.invalid);
      } catch {
        // The edge is down: try the other one shortly.
      }
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    sessionId,
    offsets,
    problems,
    async caughtUp(offset) {
      for (const deadline = Date.now() + 30_000; last < offset; ) {
        if (Date.now() > deadline) throw new Error(`socket on ${sessionId} reached ${last} of ${offset}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async stop() {
      stopped = true;
      await current?.close();
      await loop;
    },
  };
}

/** The number of frames a session's feed holds once the feed has projected the log up to `head`. */
async function feedLength(url: string, sessionId: string, head: number): Promise<number> {
  const client = await connect(url, sessionId, { since: 0, wait_for: head });
  try {
    // Everything up to the log head arrives first; the last frame's offset is the feed's length.
    await new Promise((resolve) => setTimeout(resolve, 500));
    return client.lastOffset() ?? 0;
  } finally {
    await client.close();
  }
}
