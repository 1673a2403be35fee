// The `feed` projection end to end: real commands write a real SQLite log, the real projector runs the
// feed into the memory and the Redis view store, and each session's feed must be the IDE's frames of
// DESIGN §5, numbered 1, 2, 3 … without gaps, every one decodable by the IDE's MessageModel, the same in
// both stores and after a rebuild, bounded by the configured history, and published after its commit
// (republished by the next projector when the one that committed died before publishing).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommandHandler } from '../../src/commands/handle.js';
import type { PlanCommand } from '../../src/commands/plan.js';
import { createCommands, DEFAULT_POLICY } from '../../src/commands/service.js';
import { openSqliteEventStore, type SqliteEventStore } from '../../src/events/sqlite-store.js';
import { feedEpoch, feedName, type FeedFrame, type FeedMessage } from '../../src/projections/feed.js';
import { FEED_SESSIONS, feedProjection, type FeedSessionDoc } from '../../src/projections/feed-projection.js';
import { memoryViewStore } from '../../src/projections/memory-views.js';
import { rebuild, startProjector, type Projector } from '../../src/projections/projector.js';
import { redisViewStore } from '../../src/projections/redis-views.js';
import type { ViewStore } from '../../src/projections/views.js';
import { assertMessageModel } from '../support/ws-client.js';
import { REDIS_URL, flushRedisKeys, serviceAvailable, uniquePrefix } from '../support/services.js';

const redisUp = await serviceAvailable('redis', REDIS_URL);
const prefix = uniquePrefix('feed-projection');

const dir = mkdtempSync(join(tmpdir(), 'planline-feed-'));
let store: SqliteEventStore;
let time = Date.parse('2026-11-20T09:00:00.000Z');
const clock = () => new Date((time += 1_000));
const later = () => new Date(time + 3_600_000);
let commands: ReturnType<typeof createCommands>;
const meta = () => ({ command_id: randomUUID() });
let epoch: string;

interface Live {
  views: ViewStore;
  projector: Projector;
  published: FeedMessage[];
}
const live: Partial<Record<'memory' | 'redis', Live>> = {};
let redisStores = 0;
const openRedisViews = () => redisViewStore(new Redis(REDIS_URL), { keyPrefix: `${prefix}${redisStores++}:` });

function project(views: ViewStore, options: { history?: number; publish?: (m: FeedMessage) => void } = {}): Live {
  const published: FeedMessage[] = [];
  const projection = feedProjection({ epoch, history: options.history ?? 1_000, publish: options.publish ?? ((m) => published.push(m)) });
  return { views, published, projector: startProjector({ store, views, projection, log: () => {}, leaseTtlMs: 2_000 }) };
}

async function caughtUp(projector: Projector): Promise<void> {
  expect(await projector.waitFor(await store.headPosition(), 10_000)).toBe(true);
}

async function readFeed(views: ViewStore, sessionId: string): Promise<FeedFrame[]> {
  const frames: FeedFrame[] = [];
  for (let after = 0; ; ) {
    const page = await views.readFeed(feedName(sessionId), { after, limit: 100 });
    if (page.entries.length === 0) return frames;
    frames.push(...page.entries.map((e) => e.entry as FeedFrame));
    after = page.entries.at(-1)!.offset;
  }
}

const subtasks = [
  { id: 'form', description: 'Write the login form', estimated_time: 600 },
  { id: 'api', description: 'Write the login API', estimated_time: '1h 30m' },
  { id: 'e2e', description: 'Test both', agent: 'debug' as const, dependencies: ['form', 'api'], estimated_time: 90 },
];
const onPlan = (planId: string, command: PlanCommand) => commands.onPlan(planId, command, meta());

const ids = { A: '', B: '', planA: '', approvalA: '', planB1: '', planB2: '' };

/** A: a plan approved and executed (a failure retried) to completion. B: agent switch, a plan superseded by a message, a second plan rejected. */
async function scenario(): Promise<void> {
  ids.A = (await commands.startSession({ name: 'Login', mode: 'plan' }, meta())).session_id;
  const a = await commands.createPlan({ session_id: ids.A, goal: 'Add login', subtasks }, meta());
  ids.planA = a.plan_id;
  ids.approvalA = a.approval_request_id;
  await commands.decidePlan(a.plan_id, { approval_request_id: a.approval_request_id, decision: 'approve' }, meta());
  await onPlan(a.plan_id, { type: 'StartExecution', max_parallel: 2 });
  for (const id of ['form', 'api']) await onPlan(a.plan_id, { type: 'DispatchSubtask', subtask_id: id, now: later() });
  await onPlan(a.plan_id, { type: 'StartSubtask', subtask_id: 'form', attempt: 1 });
  await onPlan(a.plan_id, { type: 'StartSubtask', subtask_id: 'api', attempt: 1 });
  await onPlan(a.plan_id, { type: 'CompleteSubtask', subtask_id: 'form', attempt: 1, result: 'form written' });
  await onPlan(a.plan_id, { type: 'FailSubtask', subtask_id: 'api', attempt: 1, error: 'tests failed', now: clock(), max_attempts: 3, backoff_ms: 1_000 });
  await onPlan(a.plan_id, { type: 'DispatchSubtask', subtask_id: 'api', now: later() });
  await onPlan(a.plan_id, { type: 'StartSubtask', subtask_id: 'api', attempt: 2 });
  await onPlan(a.plan_id, { type: 'CompleteSubtask', subtask_id: 'api', attempt: 2 });
  await onPlan(a.plan_id, { type: 'DispatchSubtask', subtask_id: 'e2e', now: later() });
  await onPlan(a.plan_id, { type: 'StartSubtask', subtask_id: 'e2e', attempt: 1 });
  await onPlan(a.plan_id, { type: 'CompleteSubtask', subtask_id: 'e2e', attempt: 1 });

  ids.B = (await commands.startSession({ mode: 'copilot' }, meta())).session_id;
  await commands.switchAgent(ids.B, { agent_type: 'debug', reason: 'a bug to chase' }, meta());
  const b1 = await commands.createPlan({ session_id: ids.B, goal: 'Chase the bug', subtasks: subtasks.slice(0, 1) }, meta());
  ids.planB1 = b1.plan_id;
  await commands.sendUserMessage(ids.B, { content: 'Actually, look at the logs first' }, meta());
  const b2 = await commands.createPlan({ session_id: ids.B, goal: 'Read the logs', subtasks: subtasks.slice(0, 2) }, meta());
  ids.planB2 = b2.plan_id;
  await commands.decidePlan(b2.plan_id, { approval_request_id: b2.approval_request_id, decision: 'reject', feedback: 'not now' }, meta());
}

beforeAll(async () => {
  store = openSqliteEventStore(join(dir, 'log.db'));
  epoch = feedEpoch(await store.logId());
  commands = createCommands(createCommandHandler(store, { clock }), DEFAULT_POLICY);
  live.memory = project(memoryViewStore());
  if (redisUp) live.redis = project(openRedisViews());
  await scenario();
  for (const target of Object.values(live)) await caughtUp(target!.projector);
});

afterAll(async () => {
  for (const target of Object.values(live)) {
    await target!.projector.stop();
    await target!.views.close();
  }
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
  if (redisUp) await flushRedisKeys(REDIS_URL, prefix);
});

const targets = () => (['memory', 'redis'] as const).filter((t) => t === 'memory' || redisUp);

describe.each(targets())('feed projection into the %s view store', (target) => {
  const views = () => live[target]!.views;

  it('numbers each session’s frames 1, 2, 3 … and every frame decodes as the IDE’s MessageModel', async () => {
    for (const session of [ids.A, ids.B]) {
      const frames = await readFeed(views(), session);
      expect(frames.map((f) => f.offset)).toEqual(frames.map((_, i) => i + 1));
      for (const frame of frames) {
        assertMessageModel(frame);
        expect(frame.session_id).toBe(session);
        expect(typeof frame.content).toBe('string');
        expect(frame.content.length).toBeGreaterThan(0);
        expect(typeof frame.metadata.fsm_state).toBe('string');
      }
      const head = (await views().get(FEED_SESSIONS, session)) as FeedSessionDoc;
      expect(head.offset).toBe(frames.length);
    }
  });

  it('tells the story of an approved plan, with the fsm_state the session is in after each frame', async () => {
    const frames = await readFeed(views(), ids.A);
    expect(frames.map((f) => [f.type, f.metadata.fsm_state])).toEqual([
      ['session_info', 'idle'],
      ['status', 'architect_planning'],
      ['plan_created', 'plan_review'],
      ['plan_approval_required', 'plan_review'],
      ['plan_approved', 'plan_execution'],
      ['status', 'plan_execution'],
      ['subtask_started', 'plan_execution'],
      ['subtask_started', 'plan_execution'],
      ['subtask_completed', 'plan_execution'],
      ['subtask_failed', 'plan_execution'],
      ['status', 'plan_execution'],
      ['subtask_started', 'plan_execution'],
      ['subtask_completed', 'plan_execution'],
      ['subtask_started', 'plan_execution'],
      ['subtask_completed', 'plan_execution'],
      ['execution_completed', 'completed'],
    ]);
    expect(frames[0]).toMatchObject({ session_id: ids.A, agent_type: 'universal', metadata: { name: 'Login', mode: 'plan' } });
  });

  it('puts every field of plan_approval_required at the top level, estimates as strings, a copy in metadata', async () => {
    const frame = (await readFeed(views(), ids.A)).find((f) => f.type === 'plan_approval_required')!;
    const summary = {
      plan_id: ids.planA,
      goal: 'Add login',
      status: 'awaiting_approval',
      revision: 1,
      subtasks_count: 3,
      total_estimated_time: '1 h 41 min 30 s',
      total_estimated_seconds: 6_090,
      subtasks: [
        { id: 'form', description: 'Write the login form', agent: 'coder', dependencies: [], estimated_time: '10 min', estimated_seconds: 600, status: 'pending' },
        { id: 'api', description: 'Write the login API', agent: 'coder', dependencies: [], estimated_time: '1 h 30 min', estimated_seconds: 5_400, status: 'pending' },
        { id: 'e2e', description: 'Test both', agent: 'debug', dependencies: ['form', 'api'], estimated_time: '1 min 30 s', estimated_seconds: 90, status: 'pending' },
      ],
    };
    expect(frame).toMatchObject({
      approval_request_id: ids.approvalA,
      plan_id: ids.planA,
      plan_summary: summary,
      metadata: { approval_request_id: ids.approvalA, plan_id: ids.planA, plan_summary: summary, fsm_state: 'plan_review', timeout_action: 'expire' },
    });
    expect(Date.parse(frame.deadline as string)).toBeGreaterThan(Date.parse(frame.timestamp));
    expect(frame.metadata.deadline).toBe(frame.deadline);
    expect(frame.content).toContain('**Plan:** Add login');
    expect(frame.content).toContain('3. Test both — debug · 1 min 30 s · after 1, 2');
  });

  it('reports subtask progress and the end of execution', async () => {
    const frames = await readFeed(views(), ids.A);
    const failed = frames.find((f) => f.type === 'subtask_failed')!;
    expect(failed).toMatchObject({
      plan_id: ids.planA,
      subtask_id: 'api',
      status: 'failed',
      error: 'tests failed',
      progress: { total: 3, done: 1, failed: 1, running: 0, pending: 1, percentage: 33 },
      metadata: { will_retry: true, attempt: 1 },
    });
    expect(frames.filter((f) => f.type === 'subtask_completed').map((f) => [f.subtask_id, (f.progress as { done: number }).done])).toEqual([
      ['form', 1],
      ['api', 2],
      ['e2e', 3],
    ]);
    const done = frames.at(-1)!;
    expect(done).toMatchObject({ type: 'execution_completed', plan_id: ids.planA, status: 'completed', progress: { done: 3, percentage: 100 } });
    expect(done.duration_seconds).toBeGreaterThan(0);
  });

  it('shows agent switches, superseded and rejected plans', async () => {
    const frames = await readFeed(views(), ids.B);
    expect(frames.map((f) => f.type)).toEqual([
      'session_info',
      'agent_switched',
      'status',
      'plan_created',
      'plan_approval_required',
      'status',
      'plan_superseded',
      'status',
      'plan_created',
      'plan_approval_required',
      'plan_rejected',
    ]);
    expect(frames[1]).toMatchObject({
      from_agent: 'universal',
      to_agent: 'debug',
      reason: 'a bug to chase',
      metadata: { from_agent: 'universal', to_agent: 'debug', reason: 'a bug to chase' },
    });
    expect(frames[6]).toMatchObject({ plan_id: ids.planB1, reason: 'user_message', metadata: { fsm_state: 'classify' } });
    expect(frames[10]).toMatchObject({ plan_id: ids.planB2, decision: 'reject', feedback: 'not now', metadata: { fsm_state: 'idle' } });
  });

  it('published each commit’s frames per session, in order, stamped with the epoch', async () => {
    for (const session of [ids.A, ids.B]) {
      const published = live[target]!.published.filter((m) => m.session_id === session);
      expect(published.every((m) => m.epoch === epoch)).toBe(true);
      expect(published.flatMap((m) => m.frames)).toEqual(await readFeed(views(), session));
    }
  });
});

describe('feed projection: rebuilds and bounds', () => {
  it('numbers the same log the same way in every store and on every rebuild', async () => {
    const rebuilt = memoryViewStore();
    await rebuild({ store, views: rebuilt, projection: feedProjection({ epoch }), pageSize: 7 });
    for (const session of [ids.A, ids.B]) {
      const expected = await readFeed(live.memory!.views, session);
      expect(await readFeed(rebuilt, session)).toEqual(expected);
      if (redisUp) expect(await readFeed(live.redis!.views, session)).toEqual(expected);
    }
    expect(feedEpoch(await store.logId())).toBe(epoch);
  });

  it('keeps the newest FEED_HISTORY frames of each session', async () => {
    const bounded = memoryViewStore();
    await rebuild({ store, views: bounded, projection: feedProjection({ epoch, history: 4 }), pageSize: 3 });
    const all = await readFeed(live.memory!.views, ids.A);
    const page = await bounded.readFeed(feedName(ids.A), { after: 0, limit: 100 });
    expect(page.entries.map((e) => e.entry)).toEqual(all.slice(-4));
    expect(page).toMatchObject({ first: all.length - 3, last: all.length });
  });

  it('a projector taking over republishes the last batch a dead one committed but never published', async () => {
    const views = memoryViewStore();
    let alive = true;
    const first = project(views, { publish: (m) => alive && void first.published.push(m) });
    await caughtUp(first.projector);
    alive = false; // it commits from here on, and dies before each publish
    await commands.switchAgent(ids.B, { agent_type: 'coder', reason: 'back to coding' }, meta());
    await caughtUp(first.projector);
    await first.projector.stop();
    expect(first.published.flatMap((m) => m.frames).some((f) => f.to_agent === 'coder')).toBe(false);

    const second = project(views);
    await caughtUp(second.projector);
    await second.projector.stop();
    const last = (await readFeed(views, ids.B)).at(-1)!;
    expect(last).toMatchObject({ type: 'agent_switched', to_agent: 'coder' });
    expect(second.published).toEqual([{ epoch, session_id: ids.B, frames: [last] }]);
  });
});
