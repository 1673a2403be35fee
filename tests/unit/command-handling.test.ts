// Command handling against a real SQLite event store: idempotency, optimistic concurrency, metadata,
// use cases that write several streams in one commit, and intents recorded by older logs.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '../../src/events/sqlite-store.js';
import type { EventStore } from '../../src/events/store.js';
import { createCommandHandler } from '../../src/commands/handle.js';
import { createCommands, DEFAULT_POLICY } from '../../src/commands/service.js';
import { DomainError } from '../../src/commands/errors.js';
import { streams } from '../../src/events/catalog.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let store: EventStore;
beforeEach(() => {
  store = openSqliteEventStore(':memory:');
});
afterEach(async () => {
  await store.close();
});

const subtasks = [{ description: 'one' }, { description: 'two', dependencies: [0] }];
const types = async (stream: string) => (await store.readStream(stream)).map((e) => e.type);

describe('command handling', () => {
  it('records command, correlation and causation ids and the schema version on every event', async () => {
    const commands = createCommands(createCommandHandler(store));
    const plan = await commands.createPlan({ goal: 'g', subtasks }, { command_id: 'cmd-1', correlation_id: 'conv-9' });
    const [drafted] = await store.readStream(streams.plan(plan.plan_id));
    expect(drafted!.metadata).toMatchObject({ correlation_id: 'conv-9', causation_id: 'cmd-1', schema_version: 1 });
    const [attached] = (await store.readStream(streams.session(plan.session_id))).filter((e) => e.type === 'TaskClassified');
    expect(attached!.metadata).toMatchObject({ command_id: 'cmd-1', correlation_id: 'conv-9', causation_id: 'cmd-1' });
  });

  it('a repeated command id returns the original result and appends nothing', async () => {
    const commands = createCommands(createCommandHandler(store));
    const first = await commands.createPlan({ goal: 'g', subtasks }, { command_id: 'same' });
    const head = await store.headPosition();
    const again = await commands.createPlan({ goal: 'g', subtasks }, { command_id: 'same' });
    expect(again.plan_id).toBe(first.plan_id);
    expect(again.approval_request_id).toBe(first.approval_request_id);
    expect(again.changed).toBe(false);
    expect(await store.headPosition()).toBe(head);
  });

  it('a retry from a fresh process (no cache) is recognised from the log', async () => {
    const first = await createCommands(createCommandHandler(store)).createPlan({ goal: 'g', subtasks }, { command_id: 'k1' });
    const decide = { approval_request_id: first.approval_request_id, decision: 'approve' as const };
    await createCommands(createCommandHandler(store)).decidePlan(first.plan_id, decide, { command_id: 'k2' });
    const head = await store.headPosition();
    const replay = await createCommands(createCommandHandler(store)).decidePlan(first.plan_id, decide, { command_id: 'k2' });
    expect(replay.changed).toBe(false);
    expect(await store.headPosition()).toBe(head);
  });

  it('concurrent conflicting decisions from two processes: exactly one wins, the other sees it', async () => {
    const plan = await createCommands(createCommandHandler(store)).createPlan({ goal: 'g', subtasks }, { command_id: 'p' });
    // Two handlers = two processes with their own caches, racing on the same stream.
    const a = createCommands(createCommandHandler(store));
    const b = createCommands(createCommandHandler(store));
    await Promise.all([a.planState(plan.plan_id), b.planState(plan.plan_id)]);
    const results = await Promise.allSettled([
      a.decidePlan(plan.plan_id, { approval_request_id: plan.approval_request_id, decision: 'approve' }, { command_id: 'x' }),
      b.decidePlan(plan.plan_id, { approval_request_id: plan.approval_request_id, decision: 'reject' }, { command_id: 'y' }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0]!.reason as DomainError).code).toBe('already_decided');
    const decisions = (await types(streams.plan(plan.plan_id))).filter((t) => t === 'PlanApproved' || t === 'PlanRejected');
    expect(decisions).toHaveLength(1);
  });

  it('If-Match on a stale revision is refused with 412 and changes nothing', async () => {
    const commands = createCommands(createCommandHandler(store));
    const plan = await commands.createPlan({ goal: 'g', subtasks }, { command_id: 'p' });
    const error = await commands
      .decidePlan(plan.plan_id, { approval_request_id: plan.approval_request_id, decision: 'approve' }, { command_id: 'd', expected_revision: 0 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).status).toBe(412);
    expect(await types(streams.plan(plan.plan_id))).toEqual(['PlanDrafted', 'PlanApprovalRequested']);
    await commands.decidePlan(plan.plan_id, { approval_request_id: plan.approval_request_id, decision: 'approve' }, { command_id: 'd', expected_revision: 1 });
    expect(await types(streams.plan(plan.plan_id))).toContain('PlanApproved');
  });

  it('an invalid plan touches neither the session nor the log', async () => {
    const commands = createCommands(createCommandHandler(store));
    const session = await commands.startSession({}, { command_id: 's' });
    const head = await store.headPosition();
    await expect(
      commands.createPlan({ session_id: session.session_id, goal: 'g', subtasks: [{ id: 'a', description: 'x', dependencies: ['a'] }] }, { command_id: 'bad' }),
    ).rejects.toMatchObject({ code: 'invalid_plan' });
    expect(await store.headPosition()).toBe(head);
  });

  it('a message during review supersedes the plan and closes its approval (rule 3)', async () => {
    const commands = createCommands(createCommandHandler(store));
    const plan = await commands.createPlan({ goal: 'g', subtasks }, { command_id: 'p' });
    const sent = await commands.sendUserMessage(plan.session_id, { content: 'actually, do X' }, { command_id: 'm' });
    expect(sent.superseded_plan_id).toBe(plan.plan_id);
    expect(await types(streams.plan(plan.plan_id))).toEqual(['PlanDrafted', 'PlanApprovalRequested', 'PlanSuperseded']);
    await expect(
      commands.decidePlan(plan.plan_id, { approval_request_id: plan.approval_request_id, decision: 'approve' }, { command_id: 'late' }),
    ).rejects.toMatchObject({ code: 'approval_closed' });
    expect((await commands.sessionState(plan.session_id)).fsm_state).toBe('classify');
  });

  it('a second plan during review supersedes the first', async () => {
    const commands = createCommands(createCommandHandler(store));
    const first = await commands.createPlan({ goal: 'g', subtasks }, { command_id: 'p1' });
    const second = await commands.createPlan({ session_id: first.session_id, goal: 'g2', subtasks }, { command_id: 'p2' });
    expect(second.superseded_plan_id).toBe(first.plan_id);
    expect((await commands.planState(first.plan_id)).state.status).toBe('superseded');
    expect((await commands.sessionState(first.session_id)).session.current_plan_id).toBe(second.plan_id);
  });

  it('a follow-up interrupted by a crash is finished by retrying the command with the same id', async () => {
    const commands = createCommands(createCommandHandler(store));
    const plan = await commands.createPlan({ goal: 'g', subtasks }, { command_id: 'p' });
    // Simulate the crash: the session event is written (by a process that died before its follow-up).
    const crashed = createCommandHandler(store);
    await crashed.execute(streams.session(plan.session_id), (await import('../../src/commands/session.js')).sessionDecider, { command_id: 'm' }, () => [
      { type: 'UserMessageReceived', data: { message_id: 'msg', content: 'x', role: 'user', supersedes_plan_id: plan.plan_id } },
    ]);
    expect((await commands.planState(plan.plan_id)).state.status).toBe('awaiting_approval');
    // The client retries with its Idempotency-Key: the recorded intent is carried out, once.
    const retried = await createCommands(createCommandHandler(store)).sendUserMessage(plan.session_id, { content: 'x' }, { command_id: 'm' });
    expect(retried.superseded_plan_id).toBe(plan.plan_id);
    expect((await createCommands(createCommandHandler(store)).planState(plan.plan_id)).state.status).toBe('superseded');
    expect((await types(streams.session(plan.session_id))).filter((t) => t === 'UserMessageReceived')).toHaveLength(1);
  });

  it('completing a session cancels its open plan', async () => {
    const commands = createCommands(createCommandHandler(store));
    const plan = await commands.createPlan({ goal: 'g', subtasks }, { command_id: 'p' });
    await commands.completeSession(plan.session_id, { reason: 'bye' }, { command_id: 'c' });
    expect((await commands.planState(plan.plan_id)).state.status).toBe('cancelled');
  });

  it('unknown ids are 404s', async () => {
    const commands = createCommands(createCommandHandler(store), DEFAULT_POLICY);
    await expect(commands.sendUserMessage('nope', { content: 'x' }, { command_id: 'a' })).rejects.toMatchObject({ code: 'session_not_found', status: 404 });
    await expect(commands.cancelPlan('nope', {}, { command_id: 'b' })).rejects.toMatchObject({ code: 'plan_not_found', status: 404 });
    await expect(commands.createPlan({ session_id: 'nope', goal: 'g', subtasks }, { command_id: 'c' })).rejects.toMatchObject({ code: 'session_not_found' });
    expect(await store.headPosition()).toBe(0);
  });

  it('a full execution reaches completed with parallel subtasks', async () => {
    const commands = createCommands(createCommandHandler(store));
    const plan = await commands.createPlan({ goal: 'g', subtasks: [{ id: 'a', description: 'a' }, { id: 'b', description: 'b' }, { id: 'c', description: 'c', dependencies: ['a', 'b'] }] }, { command_id: 'p' });
    const id = plan.plan_id;
    let n = 0;
    const run = (command: Parameters<typeof commands.onPlan>[1]) => commands.onPlan(id, command, { command_id: `x${n++}` });
    await commands.decidePlan(id, { approval_request_id: plan.approval_request_id, decision: 'approve' }, { command_id: 'ok' });
    await run({ type: 'StartExecution', max_parallel: 2 });
    const now = new Date();
    await Promise.all(['a', 'b'].map((s) => run({ type: 'DispatchSubtask', subtask_id: s, now })));
    await Promise.all(['a', 'b'].map((s) => run({ type: 'CompleteSubtask', subtask_id: s, attempt: 1 })));
    await run({ type: 'DispatchSubtask', subtask_id: 'c', now });
    const done = await run({ type: 'CompleteSubtask', subtask_id: 'c', attempt: 1 });
    expect(done.plan.status).toBe('completed');
    expect((await commands.sessionState(plan.session_id)).fsm_state).toBe('completed');
  });

  it('a plan and its session are one commit: contiguous positions, one command id', async () => {
    const commands = createCommands(createCommandHandler(store));
    const first = await commands.createPlan({ goal: 'g', subtasks }, { command_id: 'p1' });
    const before = await store.headPosition();
    const second = await commands.createPlan({ session_id: first.session_id, goal: 'g2', subtasks }, { command_id: 'p2' });
    const commit = await store.readAll({ after: before });
    expect(commit.map((e) => `${e.stream}:${e.type}`)).toEqual([
      `session-${first.session_id}:TaskClassified`,
      `plan-${second.plan_id}:PlanDrafted`,
      `plan-${second.plan_id}:PlanApprovalRequested`,
      `plan-${first.plan_id}:PlanSuperseded`,
    ]);
    expect(new Set(commit.map((e) => e.metadata.command_id))).toEqual(new Set(['p2']));
    expect(second.position).toBe(commit.at(-1)!.position);
    expect((await store.readStream(streams.plan(first.plan_id))).at(-1)!.position).toBeLessThan(second.position + 1);
  });

  it('two edges racing plans for one session: no plan is superseded before it is drafted, one stays under review', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'planline-race-'));
    const file = join(dir, 'race.db');
    // Two stores on one file and two handlers: two edge processes with their own caches.
    const storeA = openSqliteEventStore(file);
    const storeB = openSqliteEventStore(file);
    try {
      const a = createCommands(createCommandHandler(storeA));
      const b = createCommands(createCommandHandler(storeB));
      const session = await a.startSession({}, { command_id: 'race-session' });
      await Promise.all([b.sessionState(session.session_id), a.sessionState(session.session_id)]);
      const created: string[] = [];
      for (let round = 0; round < 10; round++) {
        const results = await Promise.all(
          [a, b].map((edge, i) => edge.createPlan({ session_id: session.session_id, goal: `round ${round} edge ${i}`, subtasks }, { command_id: `race-${round}-${i}` })),
        );
        created.push(...results.map((r) => r.plan_id));
      }
      const log = await storeA.readAll({ maxCount: 10_000 });
      const drafted = new Map<string, number>();
      for (const event of log) {
        const planId = event.stream.replace(/^plan-/, '');
        if (event.type === 'PlanDrafted') drafted.set(planId, event.position);
        if (event.type === 'PlanSuperseded') {
          // The plan it closes was drafted earlier in the log, never after.
          expect(drafted.get(planId), `${planId} superseded before it was drafted`).toBeLessThan(event.position);
        }
      }
      expect(drafted.size).toBe(created.length);
      // A fresh handler reads the log itself (each edge's cache is checked only when it appends).
      const reader = createCommands(createCommandHandler(storeA));
      const states = await Promise.all(created.map(async (id) => (await reader.planState(id)).state.status));
      expect(states.filter((status) => status === 'awaiting_approval')).toHaveLength(1);
      expect(states.filter((status) => status === 'superseded')).toHaveLength(created.length - 1);
      const current = (await createCommands(createCommandHandler(storeB)).sessionState(session.session_id)).session.current_plan_id;
      expect(states[created.indexOf(current!)]).toBe('awaiting_approval');
    } finally {
      await storeA.close();
      await storeB.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on a store without atomic multi-stream appends, a use case writes its streams in turn and a retry finishes one interrupted half-way', async () => {
    // An older KurrentDB: appendMulti refuses more than one stream. The SQLite store underneath is real.
    let failFollowUp = true;
    const older: EventStore = {
      ...store,
      capabilities: { atomicMultiStream: false },
      appendMulti: (appends) => (appends.length > 1 ? Promise.reject(new Error('not atomic here')) : store.appendMulti(appends)),
      append: (stream, events, expected) => {
        if (failFollowUp && stream.startsWith('plan-') && events.some((e) => e.type === 'PlanSuperseded')) {
          failFollowUp = false;
          return Promise.reject(new Error('connection lost'));
        }
        return store.append(stream, events, expected);
      },
    };
    const commands = createCommands(createCommandHandler(older));
    const first = await commands.createPlan({ goal: 'g', subtasks }, { command_id: 'p1' });
    expect(await types(streams.plan(first.plan_id))).toEqual(['PlanDrafted', 'PlanApprovalRequested']);
    await expect(commands.sendUserMessage(first.session_id, { content: 'change of plan' }, { command_id: 'm1' })).rejects.toThrow('connection lost');
    expect((await commands.sessionState(first.session_id)).session.message_count).toBe(1);
    // The client retries with its key: the recorded supersede is carried out, once.
    const retried = await createCommands(createCommandHandler(older)).sendUserMessage(first.session_id, { content: 'change of plan' }, { command_id: 'm1' });
    expect(retried.superseded_plan_id).toBe(first.plan_id);
    expect(await types(streams.plan(first.plan_id))).toEqual(['PlanDrafted', 'PlanApprovalRequested', 'PlanSuperseded']);
    expect((await types(streams.session(first.session_id))).filter((t) => t === 'UserMessageReceived')).toHaveLength(1);
  });

  it('a no-op or a refusal is never decided on a cache another process has moved past', async () => {
    const a = createCommands(createCommandHandler(store));
    const b = createCommands(createCommandHandler(store));
    const session = await a.startSession({}, { command_id: 'stale-start' });
    await a.suspendSession(session.session_id, {}, { command_id: 'stale-suspend-1' });
    expect((await a.sessionState(session.session_id)).session.status).toBe('suspended'); // cached in a
    await b.resumeSession(session.session_id, { command_id: 'stale-resume' });
    // a's cache still says suspended: "suspend" must not be answered as already done…
    const suspended = await a.suspendSession(session.session_id, {}, { command_id: 'stale-suspend-2' });
    expect(suspended.changed).toBe(true);
    expect((await types(streams.session(session.session_id))).filter((t) => t === 'SessionSuspended')).toHaveLength(2);
    // …and a message must not be refused for a suspension b has already lifted.
    await b.resumeSession(session.session_id, { command_id: 'stale-resume-2' });
    const sent = await a.sendUserMessage(session.session_id, { content: 'still there?' }, { command_id: 'stale-message' });
    expect(sent.changed).toBe(true);
  });
});
