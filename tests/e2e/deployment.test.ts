// The production shape under kill -9: two edges and two projectors (one active, one standby) as separate
// processes on PostgreSQL + Redis, clients driving plans through both edges with Idempotency-Keys while
// processes are killed with SIGKILL at random moments and started again. Afterwards nothing the
// clients saw acknowledged is missing from the log, nothing is in it twice, and the read models equal a
// fresh rebuild of the log. `npm test` runs a few trials; `npm run soak` runs DEPLOYMENT_TRIALS (100).
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
import { dropPostgresSchemas, flushRedisKeys, POSTGRES_URL, REDIS_URL, serviceAvailable, uniquePrefix, uniqueSchema } from '../support/services.js';

const servicesUp = (await serviceAvailable('postgres', POSTGRES_URL)) && (await serviceAvailable('redis', REDIS_URL));
const TRIALS = Number(process.env.DEPLOYMENT_TRIALS ?? 3);
const DRIVE_MS = Number(process.env.DEPLOYMENT_DRIVE_MS ?? 6_000);

interface Acknowledged {
  plan_id: string;
  session_id: string;
  approval_request_id: string;
  approved: boolean;
}

describe.skipIf(!servicesUp)('a multi-process deployment under kill -9', () => {
  let main: string | undefined;
  const schemas: string[] = [];
  const prefixes: string[] = [];

  beforeAll(() => {
    main = buildOnce();
  }, 180_000);

  afterAll(async () => {
    if (main !== undefined) removeBuild(main);
    await dropPostgresSchemas(POSTGRES_URL, schemas);
    for (const prefix of prefixes) await flushRedisKeys(REDIS_URL, prefix);
  });

  for (let trial = 1; trial <= TRIALS; trial++) {
    test(`trial ${trial}: two edges, two projectors, random SIGKILLs: nothing acknowledged lost or doubled, read models equal a rebuild`, async () => {
      const schema = uniqueSchema(`deploy${trial}`);
      const prefix = uniquePrefix(`deploy-${trial}-${randomUUID().slice(0, 6)}`);
      schemas.push(schema);
      prefixes.push(prefix);
      const env = {
        EVENTSTORE_URL: `${POSTGRES_URL}?schema=${schema}`,
        REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        PLAN_APPROVAL_TIMEOUT_S: '3600',
      };
      const processes: PlanlineProcess[] = [
        planlineProcess(main!, 'edge-1', { ...env, ROLES: 'edge' }, await freePort()),
        planlineProcess(main!, 'edge-2', { ...env, ROLES: 'edge' }, await freePort()),
        planlineProcess(main!, 'projector-1', { ...env, ROLES: 'projector' }),
        planlineProcess(main!, 'projector-2', { ...env, ROLES: 'projector' }),
      ];
      const edges = processes.filter((p) => p.url !== undefined);
      try {
        await Promise.all(processes.map((p) => p.start()));

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
            const created = await send('/plans', { goal: `client ${n} plan ${i}`, subtasks: [{ description: 'a' }, { description: 'b', dependencies: [0] }] }, `plan-${n}-${i}`);
            const plan = { plan_id: String(created.plan_id), session_id: String(created.session_id), approval_request_id: String(created.approval_request_id), approved: false };
            if (i % 2 === 0) {
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
          expect(ofType('TaskClassified', `session-${plan.session_id}`), plan.session_id).toBe(1);
          if (plan.approved) expect(ofType('PlanApproved', `plan-${plan.plan_id}`), plan.plan_id).toBe(1);
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
        await Promise.all(processes.map((p) => p.kill()));
      }
    }, 120_000);
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
