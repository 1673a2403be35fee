// The `views` projection end to end: real commands write a real SQLite log, the real projector runs it
// into the memory and the Redis view store, and the documents and lists must say what the command side
// says (fsm_state, status, ETag revisions), be the same in both stores, and be what a rebuild from
// scratch produces.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommandHandler } from '../../src/commands/handle.js';
import type { PlanCommand } from '../../src/commands/plan.js';
import { createCommands, DEFAULT_POLICY } from '../../src/commands/service.js';
import { streams } from '../../src/events/catalog.js';
import { openSqliteEventStore, type SqliteEventStore } from '../../src/events/sqlite-store.js';
import type { Position, StoredEvent } from '../../src/events/store.js';
import { APPROVALS, type ApprovalDoc } from '../../src/projections/approval-view.js';
import { memoryViewStore } from '../../src/projections/memory-views.js';
import { openSqliteViewStore } from '../../src/projections/sqlite-views.js';
import { PLANS, type PlanDoc } from '../../src/projections/plan-view.js';
import { rebuild, startProjector, type Projector } from '../../src/projections/projector.js';
import { redisViewStore } from '../../src/projections/redis-views.js';
import { SESSIONS, type SessionDoc } from '../../src/projections/session-view.js';
import { HISTORY, indexNames, viewsProjection, type HistoryDoc } from '../../src/projections/views-projection.js';
import { CONVERSATION } from '../../src/projections/conversation-view.js';
import { entryId, SESSION_CONTENTS, type SessionContentsDoc } from '../../src/projections/session-contents.js';
import type { Doc, ViewStore } from '../../src/projections/views.js';
import { REDIS_URL, serviceAvailable, uniquePrefix, flushRedisKeys } from '../support/services.js';

const redisUp = await serviceAvailable('redis', REDIS_URL);
const prefix = uniquePrefix('views-projection');

// ---------------------------------------------------------------------------------------------------
// The world: one log, commands on it, a projector per view store.

const dir = mkdtempSync(join(tmpdir(), 'planline-views-'));
let store: SqliteEventStore;
let time = Date.parse('2026-11-20T09:00:00.000Z');
/** Every command reads the clock; each reading is a second later, so durations are real. */
const clock = () => new Date((time += 1_000));
const later = () => new Date(time + 3_600_000);
let commands: ReturnType<typeof createCommands>;
const meta = () => ({ command_id: randomUUID() });

interface Live {
  views: ViewStore;
  projector: Projector;
}
const live: Partial<Record<'memory' | 'redis' | 'sqlite', Live>> = {};
const projectorLog: string[] = [];
let redisStores = 0;
const openRedisViews = () => redisViewStore(new Redis(REDIS_URL), { keyPrefix: `${prefix}${redisStores++}:` });

function project(views: ViewStore): Live {
  return { views, projector: startProjector({ store, views, projection: viewsProjection, log: (msg) => projectorLog.push(msg) }) };
}

async function caughtUp(): Promise<Position> {
  const head = await store.headPosition();
  for (const [name, target] of Object.entries(live)) {
    expect(await target!.projector.waitFor(head, 10_000), `${name} projector reached ${head}`).toBe(true);
  }
  return head;
}

const subtasks = [
  { id: 'st-1', description: 'Write the login form', estimated_time: 60 },
  { id: 'st-2', description: 'Write the login API', dependencies: [0], estimated_time: 120 },
  { id: 'st-3', description: 'Test both', agent: 'debug' as const, dependencies: [0, 1], estimated_time: 30 },
];

const onPlan = (planId: string, command: PlanCommand) => commands.onPlan(planId, command, meta());
const dispatch = (planId: string, subtask: string) => onPlan(planId, { type: 'DispatchSubtask', subtask_id: subtask, now: later() });
const start = (planId: string, subtask: string, attempt = 1) => onPlan(planId, { type: 'StartSubtask', subtask_id: subtask, attempt });
const succeed = (planId: string, subtask: string, attempt = 1) => onPlan(planId, { type: 'CompleteSubtask', subtask_id: subtask, attempt });
const fail = (planId: string, subtask: string, attempt: number, maxAttempts: number) =>
  onPlan(planId, { type: 'FailSubtask', subtask_id: subtask, attempt, error: `attempt ${attempt} broke`, now: clock(), max_attempts: maxAttempts, backoff_ms: 1_000 });
const approve = (planId: string, approvalRequestId: string) =>
  commands.decidePlan(planId, { approval_request_id: approvalRequestId, decision: 'approve' }, meta());

/** What the scenario created, by the letter of its session. */
const ids = {} as Record<'A' | 'B' | 'C' | 'D' | 'E' | 'F' | 'G' | 'H' | 'I' | 'J', string> & {
  plans: Record<string, string>;
  approvals: Record<string, string>;
};
ids.plans = {};
ids.approvals = {};

async function newSession(key: keyof typeof ids, mode: 'auto' | 'plan' | 'direct') {
  ids[key as 'A'] = (await commands.startSession({ name: `session ${String(key)}`, mode }, meta())).session_id;
  return ids[key as 'A'];
}

async function newPlan(key: string, sessionId: string | undefined, goal = `goal of ${key}`) {
  const created = await commands.createPlan({ session_id: sessionId, goal, subtasks }, meta());
  ids.plans[key] = created.plan_id;
  ids.approvals[key] = created.approval_request_id;
  return created;
}

/** Several sessions through every road a plan can take. Sessions are created in the order A … I. */
async function scenario(): Promise<void> {
  // A: approve, execute with a retried failure, complete; then the session completes.
  const A = await newSession('A', 'plan');
  await commands.sendUserMessage(A, { content: 'Add a login page' }, meta());
  const a = await newPlan('A', A);
  await approve(a.plan_id, a.approval_request_id);
  await onPlan(a.plan_id, { type: 'StartExecution', max_parallel: 2 });
  await dispatch(a.plan_id, 'st-1');
  await start(a.plan_id, 'st-1');
  await succeed(a.plan_id, 'st-1');
  await dispatch(a.plan_id, 'st-2');
  await start(a.plan_id, 'st-2');
  await fail(a.plan_id, 'st-2', 1, 3);
  await dispatch(a.plan_id, 'st-2');
  await start(a.plan_id, 'st-2', 2);
  await succeed(a.plan_id, 'st-2', 2);
  await dispatch(a.plan_id, 'st-3');
  await succeed(a.plan_id, 'st-3');
  await commands.completeSession(A, { reason: 'done' }, meta());

  // B: rejected.
  const B = await newSession('B', 'auto');
  await commands.sendUserMessage(B, { content: 'Rewrite everything' }, meta());
  const b = await newPlan('B', B);
  await commands.decidePlan(b.plan_id, { approval_request_id: b.approval_request_id, decision: 'reject', feedback: 'too risky' }, meta());

  // C: modify, then revision 2 awaits approval.
  const C = await newSession('C', 'plan');
  const c = await newPlan('C', C);
  await commands.decidePlan(c.plan_id, { approval_request_id: c.approval_request_id, decision: 'modify', feedback: 'split the API' }, meta());
  const c2 = await commands.revisePlan(
    c.plan_id,
    {
      subtasks: [
        { id: 'form', description: 'Write the login form', estimated_time: 60 },
        { id: 'endpoint', description: 'Write the endpoint', estimated_time: 40 },
        { id: 'store', description: 'Write the session store', dependencies: ['endpoint'], estimated_time: 50 },
      ],
      feedback: 'split the API',
    },
    meta(),
  );
  ids.approvals.C2 = c2.approval_request_id;

  // D: a new message during review supersedes the plan.
  const D = await newSession('D', 'direct');
  await newPlan('D', D);
  await commands.sendUserMessage(D, { content: 'Never mind, just fix the typo' }, meta());

  // E: a second plan supersedes the first; then the second is cancelled.
  const E = await newSession('E', 'plan');
  await newPlan('E1', E);
  const e2 = await newPlan('E2', E);
  await commands.cancelPlan(e2.plan_id, { reason: 'changed my mind' }, meta());

  // F: nobody answers; the approval expires.
  const F = await newSession('F', 'auto');
  const f = await newPlan('F', F);
  time += 301_000;
  await commands.expireApproval(f.plan_id, f.approval_request_id, meta());

  // G: suspended.
  const G = await newSession('G', 'auto');
  await commands.suspendSession(G, { reason: 'lunch' }, meta());

  // H: CreatePlan without a session starts one; retries exhausted → re-plan → revision 2 approved, running.
  const h = await newPlan('H', undefined, 'Harden the login');
  ids.H = h.session_id;
  await approve(h.plan_id, h.approval_request_id);
  await onPlan(h.plan_id, { type: 'StartExecution', max_parallel: 2 });
  await dispatch(h.plan_id, 'st-1');
  await start(h.plan_id, 'st-1');
  await fail(h.plan_id, 'st-1', 1, 1);
  await onPlan(h.plan_id, { type: 'RequestReplan', reason: 'st-1 keeps failing' });
  const h2 = await commands.revisePlan(h.plan_id, { subtasks: subtasks.slice(0, 2), feedback: 'st-1 keeps failing' }, meta());
  ids.approvals.H2 = h2.approval_request_id;
  await approve(h.plan_id, h2.approval_request_id);
  await onPlan(h.plan_id, { type: 'StartExecution', max_parallel: 2 });
  await dispatch(h.plan_id, 'st-1');
  await start(h.plan_id, 'st-1');

  // I: the session completes while its plan runs: the plan is cancelled.
  const I = await newSession('I', 'direct');
  const i = await newPlan('I', I);
  await approve(i.plan_id, i.approval_request_id);
  await onPlan(i.plan_id, { type: 'StartExecution', max_parallel: 1 });
  await dispatch(i.plan_id, 'st-1');
  await start(i.plan_id, 'st-1');
  await commands.completeSession(I, {}, meta());

  // J: a message, a plan modified and revised, an agent switch; then the session is deleted (its open
  // plan is cancelled in the same commit) and deleted again.
  const J = await newSession('J', 'plan');
  await commands.sendUserMessage(J, { content: 'Add dark mode' }, meta());
  const j = await newPlan('J', J);
  await commands.decidePlan(j.plan_id, { approval_request_id: j.approval_request_id, decision: 'modify', feedback: 'fewer steps' }, meta());
  const j2 = await commands.revisePlan(j.plan_id, { subtasks: subtasks.slice(0, 1) }, meta());
  ids.approvals.J2 = j2.approval_request_id;
  await commands.switchAgent(J, { agent_type: 'coder' }, meta());
  await commands.deleteSession(J, {}, meta());
  await commands.deleteSession(J, {}, meta());
}

beforeAll(async () => {
  store = openSqliteEventStore(join(dir, 'log.db'));
  commands = createCommands(createCommandHandler(store, { clock }), DEFAULT_POLICY);
  // The projectors run while the commands are written: they catch up and go live at some point in
  // between, which is exactly what production does.
  live.memory = project(memoryViewStore());
  live.sqlite = project(openSqliteViewStore(join(dir, 'views.db')));
  if (redisUp) live.redis = project(openRedisViews());
  await scenario();
  await caughtUp();
});

afterAll(async () => {
  for (const target of Object.values(live)) {
    await target!.projector.stop();
    await target!.views.close();
  }
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
  if (redisUp) {
    await flushRedisKeys(REDIS_URL, prefix);
  }
});

// ---------------------------------------------------------------------------------------------------
// Reading the views back.

const STATUSES = ['active', 'suspended', 'completed', 'expired'];
const MODES = ['auto', 'plan', 'direct'];
const APPROVAL_STATUSES = ['pending', 'approved', 'rejected', 'modification_requested', 'expired', 'closed'];

const idsOf = async (views: ViewStore, index: string, limit = 1_000) => (await views.range(index, { limit })).map((m) => m.id);

/** Everything the projection wrote that the lists reach, with every list's members in order. */
async function snapshot(views: ViewStore) {
  const sessionIds = await idsOf(views, indexNames.sessions({}));
  const approvalIds = await idsOf(views, indexNames.approvals({}));
  const docs: Record<string, Record<string, Doc | undefined>> = { sessions: {}, plans: {}, approvals: {}, history: {}, conversation: {}, session_contents: {} };
  const indexes: Record<string, { id: string; score: number }[]> = {};
  const read = async (collection: string, keys: string[]) => {
    const found = await views.getMany(collection, keys);
    keys.forEach((key, i) => (docs[collection]![key] = found[i]));
  };
  const index = async (name: string) => {
    indexes[name] = await views.range(name, { limit: 10_000 });
  };

  await read(SESSIONS, sessionIds);
  await read(APPROVALS, approvalIds);
  for (const filter of [{}, ...STATUSES.map((status) => ({ status }))]) {
    await index(indexNames.sessions(filter));
    for (const mode of MODES) await index(indexNames.sessions({ ...filter, mode }));
  }
  for (const status of [undefined, ...APPROVAL_STATUSES]) await index(indexNames.approvals({ status }));
  for (const sessionId of sessionIds) {
    await read(PLANS, await idsOf(views, indexNames.plansOfSession(sessionId)));
    await read(HISTORY, await idsOf(views, indexNames.history(sessionId), 10_000));
    await read(CONVERSATION, await idsOf(views, indexNames.conversation(sessionId), 10_000));
    await index(indexNames.plansOfSession(sessionId));
    await index(indexNames.history(sessionId));
    await index(indexNames.conversation(sessionId));
    for (const status of [undefined, ...APPROVAL_STATUSES]) await index(indexNames.approvals({ session_id: sessionId, status }));
  }
  // A deleted session is on no list: its tombstone is read by id.
  await read(SESSION_CONTENTS, [...sessionIds, ids.J]);
  return { docs, indexes, checkpoint: await views.checkpoint(viewsProjection.name) };
}

async function readAll(): Promise<StoredEvent[]> {
  return store.readAll({ maxCount: 1_000_000 });
}

/** Session J was deleted: nothing of it, its plan or its approvals is in `v` but its tombstone. */
async function expectDeletedSessionGone(v: ViewStore): Promise<void> {
  const J = ids.J;
  expect(await v.get(SESSIONS, J)).toBeUndefined();
  expect(await v.get(PLANS, ids.plans.J!)).toBeUndefined();
  expect(await v.getMany(APPROVALS, [ids.approvals.J!, ids.approvals.J2!])).toEqual([undefined, undefined]);
  const events = (await readAll()).filter((e) => e.stream === streams.session(J) || e.stream === streams.plan(ids.plans.J!));
  expect(events.map((e) => e.type)).toContain('SessionDeleted');
  const numbered = Array.from({ length: events.length }, (_, i) => entryId(J, i + 1));
  expect((await v.getMany(HISTORY, numbered)).filter(Boolean)).toEqual([]);
  expect((await v.getMany(CONVERSATION, numbered)).filter(Boolean)).toEqual([]);
  for (const index of [indexNames.plansOfSession(J), indexNames.history(J), indexNames.conversation(J), indexNames.approvals({ session_id: J })]) {
    expect(await v.count(index), index).toBe(0);
  }
  for (const status of [undefined, ...APPROVAL_STATUSES]) {
    const members = await idsOf(v, indexNames.approvals({ status }));
    expect(members).not.toContain(ids.approvals.J);
    expect(members).not.toContain(ids.approvals.J2);
  }
  expect(await idsOf(v, indexNames.approvalsDue)).not.toContain(ids.approvals.J2);
  expect(await idsOf(v, indexNames.sessions({}))).not.toContain(J);
  expect(await v.get(SESSION_CONTENTS, J)).toEqual({ session_id: J, plan_ids: [], approval_ids: [], history_count: 0, message_count: 0, deleted: true });
}

// ---------------------------------------------------------------------------------------------------

function projectedViews(target: 'memory' | 'redis' | 'sqlite') {
  const views = () => live[target]!.views;
  const sessionDoc = async (key: keyof typeof ids) => (await views().get(SESSIONS, ids[key as 'A'])) as SessionDoc;
  const planDoc = async (key: string) => (await views().get(PLANS, ids.plans[key]!)) as PlanDoc;
  const approvalDoc = async (key: string) => (await views().get(APPROVALS, ids.approvals[key]!)) as ApprovalDoc;
  const sessionIds = (...keys: Array<keyof typeof ids>) => keys.map((key) => ids[key as 'A']);

  it('every session reads as the command side decides it: fsm_state, status, current plan, ETag', async () => {
    for (const key of ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I'] as const) {
      const truth = await commands.sessionState(ids[key]);
      const doc = await sessionDoc(key);
      expect(doc, key).toMatchObject({
        session_id: ids[key],
        fsm_state: truth.fsm_state,
        status: truth.session.status,
        mode: truth.session.mode,
        message_count: truth.session.message_count,
        current_plan_id: truth.session.current_plan_id ?? null,
        stream_revision: truth.revision,
      });
    }
  });

  it('every plan reads as the command side decides it: status, revision, approval, ETag', async () => {
    for (const [key, planId] of Object.entries(ids.plans)) {
      if (key === 'J') continue; // deleted
      const truth = await commands.planState(planId);
      const doc = await planDoc(key);
      const approval = truth.state.approvals.at(-1)!;
      expect(doc, key).toMatchObject({
        plan_id: planId,
        session_id: truth.state.session_id,
        status: truth.state.status,
        revision: truth.state.revision,
        stream_revision: truth.revision,
        approval: { approval_request_id: approval.approval_request_id, status: approval.status, deadline: approval.deadline },
        subtasks: truth.state.subtasks.map((s) => expect.objectContaining({ id: s.id, status: s.status, attempt: s.attempt })),
      });
      const [first] = await store.readStream(streams.plan(planId), { maxCount: 1 });
      expect(doc.created_position, key).toBe(first!.position);
    }
  });

  it('sessions and plans at the end of each road', async () => {
    expect(await sessionDoc('A')).toMatchObject({ status: 'completed', fsm_state: 'completed', message_count: 1 });
    const a = await planDoc('A');
    expect(a).toMatchObject({
      status: 'completed',
      fsm_state: 'completed',
      progress: { total: 3, done: 3, failed: 0, running: 0, pending: 0, percentage: 100 },
      approval: { status: 'approved', decision: 'approve', decided_by: 'user' },
    });
    expect(a.subtasks.find((s) => s.id === 'st-2')).toMatchObject({ status: 'succeeded', attempt: 2 });
    expect(a.duration_seconds).toBe((Date.parse(a.finished_at!) - Date.parse(a.started_at!)) / 1000);
    expect(a.duration_seconds).toBeGreaterThan(0);

    expect(await sessionDoc('B')).toMatchObject({ fsm_state: 'idle', message_count: 1 });
    expect(await planDoc('B')).toMatchObject({ status: 'rejected', reason: 'too risky', approval: { status: 'rejected', feedback: 'too risky' } });

    expect(await sessionDoc('C')).toMatchObject({ fsm_state: 'plan_review', current_plan_id: ids.plans.C });
    const c = await planDoc('C');
    expect(c).toMatchObject({
      status: 'awaiting_approval',
      revision: 2,
      stream_revision: 4,
      total_estimated_seconds: 150,
      approval: { approval_request_id: ids.approvals.C2, status: 'pending' },
    });
    const cDrafted = (await store.readStream(streams.plan(ids.plans.C!)))[0]!;
    expect(c.created_at).toBe(cDrafted.metadata.at);

    expect(await sessionDoc('D')).toMatchObject({ fsm_state: 'classify', message_count: 1, current_plan_id: ids.plans.D });
    expect(await planDoc('D')).toMatchObject({ status: 'superseded', fsm_state: 'idle', approval: { status: 'closed' } });

    expect(await sessionDoc('E')).toMatchObject({ fsm_state: 'completed', status: 'active', current_plan_id: ids.plans.E2 });
    expect(await planDoc('E1')).toMatchObject({ status: 'superseded', reason: 'superseded by a new plan' });
    expect(await planDoc('E2')).toMatchObject({ status: 'cancelled', reason: 'changed my mind', approval: { status: 'closed' } });

    expect(await sessionDoc('F')).toMatchObject({ fsm_state: 'idle' });
    expect(await planDoc('F')).toMatchObject({ status: 'expired', approval: { status: 'expired' } });

    expect(await sessionDoc('G')).toMatchObject({ status: 'suspended', fsm_state: 'idle' });

    expect(await sessionDoc('H')).toMatchObject({ mode: 'plan', fsm_state: 'plan_execution', name: 'Harden the login' });
    expect(await planDoc('H')).toMatchObject({
      status: 'executing',
      revision: 2,
      progress: { total: 2, done: 0, failed: 0, running: 1, pending: 1, percentage: 0 },
      approval: { approval_request_id: ids.approvals.H2, status: 'approved' },
    });
    expect((await planDoc('H')).subtasks[0]).toMatchObject({ id: 'st-1', status: 'running', attempt: 1 });

    expect(await sessionDoc('I')).toMatchObject({ status: 'completed', fsm_state: 'completed' });
    expect(await planDoc('I')).toMatchObject({ status: 'cancelled', reason: 'session completed', approval: { status: 'approved' } });
  });

  it('approval documents: every request, in the IDE shape, with its outcome', async () => {
    const c2 = await approvalDoc('C2');
    expect(c2).toMatchObject({
      request_id: ids.approvals.C2,
      call_id: ids.approvals.C2,
      approval_request_id: ids.approvals.C2,
      request_type: 'plan',
      session_id: ids.C,
      plan_id: ids.plans.C,
      revision: 2,
      status: 'pending',
      subject: 'goal of C',
      details: { plan_id: ids.plans.C, plan_summary: { plan_id: ids.plans.C, revision: 2, status: 'awaiting_approval', subtasks_count: 3 } },
    });
    // The deadline is taken from the clock reading the command made just before it was stamped.
    const timeout = Date.parse(c2.deadline!) - Date.parse(c2.created_at);
    expect(timeout).toBeLessThanOrEqual(DEFAULT_POLICY.approvalTimeoutS * 1000);
    expect(timeout).toBeGreaterThan(DEFAULT_POLICY.approvalTimeoutS * 1000 - 5_000);

    const outcomes: Record<string, Partial<ApprovalDoc>> = {
      A: { status: 'approved', decision: 'approve' },
      B: { status: 'rejected', decision: 'reject', feedback: 'too risky' },
      C: { status: 'modification_requested', decision: 'modify', feedback: 'split the API' },
      D: { status: 'closed' },
      E1: { status: 'closed' },
      E2: { status: 'closed' },
      F: { status: 'expired' },
      H: { status: 'approved' },
      H2: { status: 'approved' },
      I: { status: 'approved' },
    };
    for (const [key, outcome] of Object.entries(outcomes)) expect(await approvalDoc(key), key).toMatchObject(outcome);
  });

  it('sessions list newest first, filtered by status and mode, paged by cursor', async () => {
    const v = views();
    expect(await idsOf(v, indexNames.sessions({}))).toEqual(sessionIds('I', 'H', 'G', 'F', 'E', 'D', 'C', 'B', 'A'));
    expect(await idsOf(v, indexNames.sessions({ status: 'completed' }))).toEqual(sessionIds('I', 'A'));
    expect(await idsOf(v, indexNames.sessions({ status: 'suspended' }))).toEqual(sessionIds('G'));
    expect(await idsOf(v, indexNames.sessions({ mode: 'direct' }))).toEqual(sessionIds('I', 'D'));
    expect(await idsOf(v, indexNames.sessions({ status: 'active', mode: 'plan' }))).toEqual(sessionIds('H', 'E', 'C'));
    expect(await idsOf(v, indexNames.sessions({ status: 'active', mode: 'auto' }))).toEqual(sessionIds('F', 'B'));
    expect(await idsOf(v, indexNames.sessions({ status: 'completed', mode: 'plan' }))).toEqual(sessionIds('A'));
    expect(await v.count(indexNames.sessions({ status: 'expired' }))).toBe(0);

    const first = await v.range(indexNames.sessions({}), { limit: 4 });
    const second = await v.range(indexNames.sessions({}), { limit: 4, below: first.at(-1)!.score });
    const third = await v.range(indexNames.sessions({}), { limit: 4, below: second.at(-1)!.score });
    expect([...first, ...second, ...third].map((m) => m.id)).toEqual(sessionIds('I', 'H', 'G', 'F', 'E', 'D', 'C', 'B', 'A'));
    expect(third).toHaveLength(1);
  });

  it('pending approvals per session; decided and closed ones are not pending', async () => {
    const v = views();
    expect(await idsOf(v, indexNames.approvals({ status: 'pending' }))).toEqual([ids.approvals.C2]);
    expect(await idsOf(v, indexNames.approvals({ session_id: ids.C, status: 'pending' }))).toEqual([ids.approvals.C2]);
    expect(await idsOf(v, indexNames.approvals({ session_id: ids.C }))).toEqual([ids.approvals.C2, ids.approvals.C]);
    expect(await idsOf(v, indexNames.approvals({ session_id: ids.C, status: 'modification_requested' }))).toEqual([ids.approvals.C]);
    for (const key of ['A', 'B', 'D', 'E', 'F', 'G', 'H', 'I'] as const) {
      expect(await v.count(indexNames.approvals({ session_id: ids[key], status: 'pending' })), key).toBe(0);
    }
    expect(await idsOf(v, indexNames.approvals({ session_id: ids.E, status: 'closed' }))).toEqual([ids.approvals.E2, ids.approvals.E1]);
    expect(await idsOf(v, indexNames.approvals({ session_id: ids.H }))).toEqual([ids.approvals.H2, ids.approvals.H]);
    expect(await v.count(indexNames.approvals({}))).toBe(Object.keys(ids.approvals).filter((key) => !key.startsWith('J')).length);
  });

  it('plans per session, newest first', async () => {
    expect(await idsOf(views(), indexNames.plansOfSession(ids.E))).toEqual([ids.plans.E2, ids.plans.E1]);
    expect(await idsOf(views(), indexNames.plansOfSession(ids.G))).toEqual([]);
  });

  it("conversation: a session's chat messages in order, numbered from 1", async () => {
    const v = views();
    const members = await v.range(indexNames.conversation(ids.A), { limit: 100 });
    expect(members.map((m) => [m.id, m.score])).toEqual([4, 3, 2, 1].map((n) => [entryId(ids.A, n), n]));
    const messages = (await v.getMany(CONVERSATION, members.map((m) => m.id).reverse())) as Doc[];
    expect(messages.map((m) => [m.role, m.content])).toEqual([
      ['user', 'Add a login page'],
      ['assistant', expect.stringMatching(/^\*\*Plan:\*\* goal of A\n3 subtasks/)],
      ['assistant', 'Plan approved.'],
      ['assistant', 'Plan completed.'],
    ]);
    const contents = (await v.get(SESSION_CONTENTS, ids.A)) as SessionContentsDoc;
    expect(contents).toMatchObject({ plan_ids: [ids.plans.A], approval_ids: [ids.approvals.A], message_count: 4 });
    expect(contents.history_count).toBe(await v.count(indexNames.history(ids.A)));
  });

  it('a deleted session leaves nothing in any document or list but its tombstone', () => expectDeletedSessionGone(views()));

  it("history: every event of a session and of its plans, in log order", async () => {
    const all = await readAll();
    for (const key of ['A', 'D', 'E', 'H'] as const) {
      const sessionId = ids[key];
      const planStreams = Object.entries(ids.plans)
        .filter(([planKey]) => planKey.startsWith(key))
        .map(([, planId]) => streams.plan(planId));
      const mine = all.filter((e) => e.stream === streams.session(sessionId) || planStreams.includes(e.stream));
      const members = await views().range(indexNames.history(sessionId), { limit: 10_000 });
      const docs = (await views().getMany(HISTORY, members.map((m) => m.id).reverse())) as HistoryDoc[];
      expect(docs.map((h) => [h.position, h.type, h.stream, h.revision, h.at, h.data]), key).toEqual(
        mine.map((e) => [e.position, e.type, e.stream, e.revision, e.metadata.at, e.data]),
      );
    }
  });
}

describe('views projection, memory view store', () => projectedViews('memory'));
describe('views projection, sqlite view store', () => projectedViews('sqlite'));

describe('views projection, memory and sqlite agree', () => {
  it('the same documents and lists in both stores', async () => {
    await caughtUp();
    expect(await snapshot(live.sqlite!.views)).toEqual(await snapshot(live.memory!.views));
  });
});
describe.skipIf(!redisUp)('views projection, redis view store', () => projectedViews('redis'));

describe.skipIf(!redisUp)('views projection, memory and redis agree', () => {
  it('the same documents and lists in both stores', async () => {
    await caughtUp();
    const memory = await snapshot(live.memory!.views);
    expect(await snapshot(live.redis!.views)).toEqual(memory);
    expect(Object.keys(memory.docs.sessions!)).toHaveLength(9);
    // One history entry per event, except the deleted session's.
    const deleted = [streams.session(ids.J), streams.plan(ids.plans.J!)];
    expect(Object.keys(memory.docs.history!).length).toBe((await readAll()).filter((e) => !deleted.includes(e.stream)).length);
  });

  it('no Redis key, document or index member names the deleted session or what it owned, but its tombstone', async () => {
    await caughtUp();
    const redis = new Redis(REDIS_URL);
    try {
      const base = `${prefix}0:`; // the live Redis store, the first one opened
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, found] = await redis.scan(cursor, 'MATCH', `${base}*`, 'COUNT', 1_000);
        cursor = next;
        keys.push(...found);
      } while (cursor !== '0');
      expect(keys.length).toBeGreaterThan(50);
      const owned = [ids.J, ids.plans.J!, ids.approvals.J!, ids.approvals.J2!];
      const mentions = (text: string) => owned.some((id) => text.includes(id));
      const tombstone = `${base}doc:${SESSION_CONTENTS}:${ids.J}`;
      const found: string[] = [];
      for (const key of keys) {
        if (mentions(key)) found.push(key);
        else if (key.startsWith(`${base}doc:`) && mentions((await redis.get(key)) ?? '')) found.push(key);
        else if (key.startsWith(`${base}idx:`) && (await redis.zrange(key, 0, -1)).some(mentions)) found.push(key);
      }
      expect(found).toEqual([tombstone]);
    } finally {
      await redis.quit();
    }
  });
});

describe('views projection, live decisions', () => {
  it('after a decision the approval leaves the pending lists, and the session moves on', async () => {
    const decided = await approve(ids.plans.C!, ids.approvals.C2!);
    for (const [name, target] of Object.entries(live)) {
      expect(await target!.projector.waitFor(decided.position, 10_000), name).toBe(true);
      const v = target!.views;
      expect(await v.count(indexNames.approvals({ session_id: ids.C, status: 'pending' })), name).toBe(0);
      expect(await v.count(indexNames.approvals({ status: 'pending' })), name).toBe(0);
      expect(await idsOf(v, indexNames.approvals({ session_id: ids.C, status: 'approved' })), name).toEqual([ids.approvals.C2]);
      expect(await v.get(APPROVALS, ids.approvals.C2!), name).toMatchObject({ status: 'approved', decision: 'approve' });
      expect(await v.get(SESSIONS, ids.C), name).toMatchObject({ fsm_state: 'plan_execution' });
    }
  });

  it('a session that completes leaves the active lists for the completed ones', async () => {
    const done = await commands.completeSession(ids.G, {}, meta());
    for (const [name, target] of Object.entries(live)) {
      expect(await target!.projector.waitFor(done.position, 10_000), name).toBe(true);
      const v = target!.views;
      expect(await v.count(indexNames.sessions({ status: 'suspended' })), name).toBe(0);
      expect(await v.count(indexNames.sessions({ status: 'suspended', mode: 'auto' })), name).toBe(0);
      expect(await idsOf(v, indexNames.sessions({ status: 'completed' })), name).toEqual([ids.I, ids.G, ids.A]);
      expect(await idsOf(v, indexNames.sessions({ status: 'completed', mode: 'auto' })), name).toEqual([ids.G]);
    }
  });
});

describe('views projection, rebuild', () => {
  it('rebuild from scratch into a memory store yields what the live projector built', async () => {
    const head = await caughtUp();
    const fresh = memoryViewStore();
    const result = await rebuild({ store, views: fresh, projection: viewsProjection, pageSize: 7 });
    expect(result.position).toBe(head);
    expect(await snapshot(fresh)).toEqual(await snapshot(live.memory!.views));
    // Deleting during a rebuild reads what it deletes from the store, not from a cache that never held it.
    await expectDeletedSessionGone(fresh);
    await fresh.close();
  });

  it.skipIf(!redisUp)('rebuild from scratch into redis yields what the live projector built', async () => {
    await caughtUp();
    const fresh = openRedisViews();
    try {
      await rebuild({ store, views: fresh, projection: viewsProjection });
      expect(await snapshot(fresh)).toEqual(await snapshot(live.redis!.views));
      await expectDeletedSessionGone(fresh);
    } finally {
      await fresh.close();
    }
  });

  it('the projector logged no failure', () => {
    expect(projectorLog.filter((msg) => /fail|refused|lost/i.test(msg))).toEqual([]);
  });
});
