// The `views` projection (plan, session, approval, history and conversation read models, and deleting a
// session from all of them), folded without any server:
// given events already in the log, when one more command's events arrive, then the documents read so.
// The tx below is the ProjectionTx the runner hands a projection, over plain maps (documents frozen on
// put, as the runner freezes them, so a projection that mutates what it read fails here too).
import { describe, expect, it } from 'vitest';
import { validateEvent, type AgentType, type DomainEvent, type EventOf, type EventType, type Subtask } from '../../src/events/catalog.js';
import { eventIdFor } from '../../src/events/ids.js';
import type { StoredEvent } from '../../src/events/store.js';
import type { ProjectionTx } from '../../src/projections/projector.js';
import type { Doc } from '../../src/projections/views.js';
import { APPROVALS, type ApprovalDoc } from '../../src/projections/approval-view.js';
import { PLANS, planSummary, progressOf, type PlanDoc } from '../../src/projections/plan-view.js';
import { SESSIONS, type SessionDoc } from '../../src/projections/session-view.js';
import { HISTORY, indexNames, viewsProjection, type HistoryDoc } from '../../src/projections/views-projection.js';
import { CONVERSATION, type ConversationMessageDoc } from '../../src/projections/conversation-view.js';
import { SESSION_CONTENTS } from '../../src/projections/session-contents.js';
import { planMarkdown } from '../../src/projections/plan-markdown.js';

// ---------------------------------------------------------------------------------------------------
// The log and the tx.

/** One event on its way to the log. */
interface Step {
  stream: string;
  event: DomainEvent;
}

/** Seconds between two commands unless a test says otherwise. */
const STEP_S = 10;
const START = Date.parse('2026-11-20T10:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function views() {
  const collections = new Map<string, Map<string, Doc>>();
  const heads = new Map<string, number>();
  const log: StoredEvent[] = [];
  let clock = START;
  let commands = 0;

  const docs = (collection: string) => {
    if (!viewsProjection.collections.includes(collection)) throw new Error(`touched unowned collection ${collection}`);
    let map = collections.get(collection);
    if (!map) collections.set(collection, (map = new Map()));
    return map;
  };
  const tx: ProjectionTx = {
    async get(collection, id) {
      return docs(collection).get(id);
    },
    put(collection, id, doc) {
      docs(collection).set(id, deepFreeze(doc));
    },
    delete(collection, id) {
      docs(collection).delete(id);
    },
    append() {
      throw new Error('the views projection writes no feed');
    },
    trim() {
      throw new Error('the views projection writes no feed');
    },
  };

  /** One command's events: same command id and time, consecutive revisions of their stream. */
  function stored(steps: readonly Step[]): StoredEvent[] {
    const commandId = `cmd-${++commands}`;
    const at = iso(clock);
    clock += STEP_S * 1000;
    return steps.map(({ stream, event }) => {
      validateEvent(event);
      const revision = (heads.get(stream) ?? -1) + 1;
      heads.set(stream, revision);
      const e: StoredEvent = {
        id: eventIdFor(commandId, stream, revision),
        type: event.type,
        data: event.data as Record<string, unknown>,
        metadata: { command_id: commandId, correlation_id: 'corr-1', causation_id: commandId, at, schema_version: 1 },
        stream,
        revision,
        position: log.length + 1,
      };
      log.push(e);
      return e;
    });
  }

  async function append(...commands: Array<Step | Step[]>): Promise<StoredEvent[]> {
    const written: StoredEvent[] = [];
    for (const command of commands) {
      for (const event of stored(Array.isArray(command) ? command : [command])) {
        await viewsProjection.apply(event, tx);
        written.push(event);
      }
    }
    return written;
  }

  const get = <T>(collection: string, id: string) => docs(collection).get(id) as T | undefined;
  return {
    given: append,
    when: append,
    log,
    /** Time of the next command. */
    get now() {
      return iso(clock);
    },
    /** Let time pass before the next command. */
    wait(seconds: number) {
      clock += seconds * 1000;
    },
    /** Apply events that were applied before (an at-least-once delivery). */
    async redeliver(events: readonly StoredEvent[]) {
      for (const event of events) await viewsProjection.apply(event, tx);
    },
    /** Every document, by collection and id. */
    all: () => Object.fromEntries([...collections].map(([name, map]) => [name, Object.fromEntries(map)])),
    plan: (id: string) => get<PlanDoc>(PLANS, id),
    session: (id: string) => get<SessionDoc>(SESSIONS, id),
    approval: (id: string) => get<ApprovalDoc>(APPROVALS, id),
    count: (collection: string) => docs(collection).size,
    history: (sessionId: string) =>
      [...docs(HISTORY).values()]
        .map((doc) => doc as HistoryDoc)
        .filter((h) => h.session_id === sessionId)
        .sort((a, b) => a.position - b.position),
    /** The session's chat messages in conversation order, without their bookkeeping. */
    conversation: (sessionId: string) =>
      [...docs(CONVERSATION).values()]
        .map((doc) => doc as ConversationMessageDoc)
        .filter((m) => m.session_id === sessionId)
        .sort((a, b) => a.seq - b.seq)
        .map(({ session_id: _s, seq: _n, at: _at, position: _p, ...message }) => message),
  };
}

// ---------------------------------------------------------------------------------------------------
// Events, as the deciders write them.

const step = <T extends EventType>(stream: string, type: T, data: EventOf<T>['data']): Step => ({
  stream,
  event: { type, data } as DomainEvent,
});

const SUBTASKS: Subtask[] = [
  { id: 'a', description: 'Write the login form', agent: 'coder', dependencies: [], estimated_time: 60 },
  { id: 'b', description: 'Write the login API', agent: 'coder', dependencies: ['a'], estimated_time: 120 },
  { id: 'c', description: 'Test both', agent: 'debug', dependencies: ['a', 'b'], estimated_time: 30 },
];

function session(id: string) {
  const stream = `session-${id}`;
  return {
    started: (mode: 'auto' | 'plan' | 'direct' = 'plan', name = `Session ${id}`, owner?: string) =>
      step(stream, 'SessionStarted', { session_id: id, name, mode, agent_type: 'universal', ...(owner !== undefined ? { owner } : {}) }),
    shared: (principal: string, role: 'viewer' | 'collaborator') => step(stream, 'SessionShared', { principal, role }),
    revoked: (principal: string) => step(stream, 'SessionShareRevoked', { principal }),
    message: (content: string, supersedes?: string) =>
      step(stream, 'UserMessageReceived', {
        message_id: `msg-${content.length}-${id}`,
        content,
        role: 'user',
        ...(supersedes ? { supersedes_plan_id: supersedes } : {}),
      }),
    classified: (planId: string, supersedes?: string) =>
      step(stream, 'TaskClassified', {
        kind: 'complex',
        plan_id: planId,
        source: 'client',
        ...(supersedes ? { supersedes_plan_id: supersedes } : {}),
      }),
    atomic: () => step(stream, 'TaskClassified', { kind: 'atomic', source: 'heuristic' }),
    classificationFailed: () => step(stream, 'TaskClassificationFailed', { reason: 'model unavailable' }),
    suspended: () => step(stream, 'SessionSuspended', { reason: 'lunch' }),
    resumed: () => step(stream, 'SessionResumed', {}),
    completed: (cancels?: string) => step(stream, 'SessionCompleted', cancels ? { cancels_plan_id: cancels } : {}),
    expired: (cancels?: string) => step(stream, 'SessionExpired', cancels ? { cancels_plan_id: cancels } : {}),
    renamed: (name: string) => step(stream, 'SessionRenamed', { name }),
    switched: (from: AgentType, to: AgentType, reason?: string) =>
      step(stream, 'AgentSwitched', { from_agent: from, to_agent: to, ...(reason ? { reason } : {}) }),
    deleted: (cancels?: string) => step(stream, 'SessionDeleted', cancels ? { cancels_plan_id: cancels } : {}),
  };
}

function plan(id: string, sessionId: string) {
  const stream = `plan-${id}`;
  const approvalId = (revision: number) => `${id}-approval-${revision}`;
  return {
    approvalId,
    /** DraftPlan writes both events in one command. */
    drafted: (revision = 1, options: { subtasks?: Subtask[]; deadline?: string; feedback?: string; goal?: string } = {}) => [
      step(stream, 'PlanDrafted', {
        plan_id: id,
        session_id: sessionId,
        revision,
        goal: options.goal ?? 'Add login',
        subtasks: options.subtasks ?? SUBTASKS,
        source: 'client',
        ...(options.feedback ? { feedback: options.feedback } : {}),
      }),
      step(stream, 'PlanApprovalRequested', {
        approval_request_id: approvalId(revision),
        revision,
        deadline: options.deadline ?? '2026-11-20T11:00:00.000Z',
        timeout_action: 'expire',
      }),
    ],
    approved: (revision = 1, by: 'user' | 'timeout' = 'user') =>
      step(stream, 'PlanApproved', { approval_request_id: approvalId(revision), decided_by: by }),
    rejected: (feedback?: string, revision = 1) =>
      step(stream, 'PlanRejected', { approval_request_id: approvalId(revision), ...(feedback ? { feedback } : {}) }),
    modify: (feedback: string, revision = 1) =>
      step(stream, 'PlanModificationRequested', { approval_request_id: approvalId(revision), feedback }),
    expired: (revision = 1) => step(stream, 'PlanApprovalExpired', { approval_request_id: approvalId(revision) }),
    superseded: (reason: 'user_message' | 'new_plan', by: string, pendingRevision?: number) =>
      step(stream, 'PlanSuperseded', {
        reason,
        superseded_by: by,
        ...(pendingRevision ? { approval_request_id: approvalId(pendingRevision) } : {}),
      }),
    replan: (reason: string) => step(stream, 'PlanReplanRequested', { reason }),
    executing: (maxParallel = 2) => step(stream, 'PlanExecutionStarted', { max_parallel: maxParallel }),
    dispatched: (subtask: string, attempt = 1) => step(stream, 'SubtaskDispatched', { subtask_id: subtask, attempt }),
    started: (subtask: string, attempt = 1) =>
      step(stream, 'SubtaskStarted', { subtask_id: subtask, attempt, run_id: `run-${subtask}-${attempt}` }),
    succeeded: (subtask: string, attempt = 1) => step(stream, 'SubtaskSucceeded', { subtask_id: subtask, attempt, result: 'ok' }),
    failed: (subtask: string, attempt: number, willRetry: boolean) =>
      step(stream, 'SubtaskFailed', { subtask_id: subtask, attempt, error: `attempt ${attempt} broke`, will_retry: willRetry }),
    retryScheduled: (subtask: string, attempt: number, notBefore: string) =>
      step(stream, 'SubtaskRetryScheduled', { subtask_id: subtask, attempt, not_before: notBefore }),
    completed: () => step(stream, 'PlanCompleted', {}),
    failedPlan: (reason: string) => step(stream, 'PlanFailed', { reason }),
    cancelled: (reason?: string) => step(stream, 'PlanCancelled', reason ? { reason } : {}),
  };
}

const S = 's1';
const P = 'p1';
const s1 = session(S);
const p1 = plan(P, S);
const AP1 = p1.approvalId(1);
const AP2 = p1.approvalId(2);

/** A session with a drafted plan awaiting review: the common starting point. */
async function inReview() {
  const w = views();
  await w.given(s1.started(), s1.message('Add a login page'), s1.classified(P), p1.drafted());
  return w;
}

/** …approved and executing (max 2 in parallel). */
async function executing() {
  const w = await inReview();
  await w.given(p1.approved(), p1.executing());
  return w;
}

const after = (from: string, seconds: number) => iso(Date.parse(from) + seconds * 1000);

// ---------------------------------------------------------------------------------------------------

describe('plan view', () => {
  it('a drafted plan awaits approval with every subtask pending', async () => {
    const w = views();
    await w.given(s1.started(), s1.classified(P));
    const draftedAt = w.now;
    const [drafted, requested] = await w.when(p1.drafted());

    expect(w.plan(P)).toEqual({
      plan_id: P,
      session_id: S,
      goal: 'Add login',
      status: 'awaiting_approval',
      revision: 1,
      source: 'client',
      subtasks: SUBTASKS.map(({ estimated_time, ...s }) => ({ ...s, estimated_seconds: estimated_time, status: 'pending', attempt: 0 })),
      subtasks_count: 3,
      total_estimated_seconds: 210,
      approval: { approval_request_id: AP1, status: 'pending', deadline: '2026-11-20T11:00:00.000Z' },
      progress: { total: 3, done: 0, failed: 0, running: 0, pending: 3, cancelled: 0, percentage: 0 },
      fsm_state: 'plan_review',
      created_at: draftedAt,
      updated_at: draftedAt,
      stream_revision: requested!.revision,
      created_position: drafted!.position,
    });
    expect(w.plan(P)!.stream_revision).toBe(1);
  });

  it('the plan summary is the IDE shape', async () => {
    const w = await inReview();
    expect(planSummary(w.plan(P)!)).toEqual({
      plan_id: P,
      goal: 'Add login',
      status: 'awaiting_approval',
      revision: 1,
      subtasks_count: 3,
      // Strings for the IDE's dialog (it casts them `as String?`), seconds beside them.
      total_estimated_time: '3 min 30 s',
      total_estimated_seconds: 210,
      subtasks: [
        { id: 'a', description: 'Write the login form', agent: 'coder', dependencies: [], estimated_time: '1 min', estimated_seconds: 60, status: 'pending' },
        { id: 'b', description: 'Write the login API', agent: 'coder', dependencies: ['a'], estimated_time: '2 min', estimated_seconds: 120, status: 'pending' },
        { id: 'c', description: 'Test both', agent: 'debug', dependencies: ['a', 'b'], estimated_time: '30 s', estimated_seconds: 30, status: 'pending' },
      ],
    });
  });

  it('approve: approved, the approval summary records the decision, nothing has finished', async () => {
    const w = await inReview();
    await w.when(p1.approved());
    const doc = w.plan(P)!;
    expect(doc).toMatchObject({
      status: 'approved',
      fsm_state: 'plan_execution',
      stream_revision: 2,
      approval: { approval_request_id: AP1, status: 'approved', decision: 'approve', decided_by: 'user', deadline: '2026-11-20T11:00:00.000Z' },
    });
    expect(doc.finished_at).toBeUndefined();
    expect(doc.duration_seconds).toBeUndefined();
  });

  it('approve by timeout says who decided', async () => {
    const w = await inReview();
    await w.when(p1.approved(1, 'timeout'));
    expect(w.plan(P)!.approval).toMatchObject({ status: 'approved', decision: 'approve', decided_by: 'timeout' });
  });

  it('reject: terminal with the feedback as the reason, finished and timed from its creation', async () => {
    const w = await inReview();
    const created = w.plan(P)!.created_at;
    w.wait(20);
    const rejectedAt = w.now;
    await w.when(p1.rejected('too broad'));
    expect(w.plan(P)).toMatchObject({
      status: 'rejected',
      fsm_state: 'idle',
      reason: 'too broad',
      approval: { status: 'rejected', decision: 'reject', decided_by: 'user', feedback: 'too broad' },
      finished_at: rejectedAt,
      duration_seconds: (Date.parse(rejectedAt) - Date.parse(created)) / 1000,
    });
  });

  it('expiry: terminal, the approval expired without a decision', async () => {
    const w = await inReview();
    await w.when(p1.expired());
    const doc = w.plan(P)!;
    expect(doc).toMatchObject({ status: 'expired', fsm_state: 'idle', approval: { status: 'expired' } });
    expect(doc.approval?.decision).toBeUndefined();
    expect(doc.finished_at).toBe(w.log.at(-1)!.metadata.at);
  });

  it('modify then a new revision: awaiting approval again, revision 2, same creation time and list position', async () => {
    const w = await inReview();
    const first = w.plan(P)!;
    await w.when(p1.modify('split the API work'));
    expect(w.plan(P)).toMatchObject({
      status: 'replanning',
      fsm_state: 'architect_planning',
      revision: 1,
      approval: { approval_request_id: AP1, status: 'modification_requested', decision: 'modify', feedback: 'split the API work' },
    });

    const subtasks: Subtask[] = [
      { id: 'a', description: 'Write the login form', agent: 'coder', dependencies: [], estimated_time: 60 },
      { id: 'b1', description: 'Write the login endpoint', agent: 'coder', dependencies: [], estimated_time: 40 },
      { id: 'b2', description: 'Write the session store', agent: 'coder', dependencies: ['b1'], estimated_time: 50 },
    ];
    await w.when(p1.drafted(2, { subtasks, feedback: 'split the API work', deadline: '2026-11-20T12:00:00.000Z' }));
    const doc = w.plan(P)!;
    expect(doc).toMatchObject({
      status: 'awaiting_approval',
      fsm_state: 'plan_review',
      revision: 2,
      stream_revision: 4,
      subtasks_count: 3,
      total_estimated_seconds: 150,
      approval: { approval_request_id: AP2, status: 'pending', deadline: '2026-11-20T12:00:00.000Z' },
      progress: { total: 3, done: 0, failed: 0, running: 0, pending: 3, cancelled: 0, percentage: 0 },
      created_at: first.created_at,
      created_position: first.created_position,
    });
    expect(doc.approval?.decision).toBeUndefined();
    expect(doc.subtasks.map((s) => s.id)).toEqual(['a', 'b1', 'b2']);
    expect(doc.updated_at).not.toBe(first.updated_at);
  });

  it('superseded while in review: terminal, the pending approval closed', async () => {
    const w = await inReview();
    await w.when(p1.superseded('user_message', 'msg-2', 1));
    expect(w.plan(P)).toMatchObject({
      status: 'superseded',
      fsm_state: 'idle',
      approval: { approval_request_id: AP1, status: 'closed' },
      reason: 'superseded by a new message',
      finished_at: w.log.at(-1)!.metadata.at,
    });
  });

  it('superseded while re-planning keeps the modify decision on the approval', async () => {
    const w = await inReview();
    await w.given(p1.modify('smaller'));
    await w.when(p1.superseded('new_plan', 'p2'));
    expect(w.plan(P)).toMatchObject({
      status: 'superseded',
      approval: { status: 'modification_requested', decision: 'modify' },
      reason: 'superseded by a new plan',
    });
  });

  it('cancel in review closes the approval; cancel while executing leaves the approval approved', async () => {
    const inReviewPlan = await inReview();
    await inReviewPlan.when(p1.cancelled('user cancelled'));
    expect(inReviewPlan.plan(P)).toMatchObject({
      status: 'cancelled',
      fsm_state: 'completed',
      reason: 'user cancelled',
      approval: { status: 'closed' },
    });
    expect(inReviewPlan.plan(P)!.finished_at).toBeDefined();

    const running = await executing();
    await running.when(p1.cancelled());
    expect(running.plan(P)).toMatchObject({ status: 'cancelled', approval: { status: 'approved', decision: 'approve' } });
    expect(running.plan(P)!.reason).toBeUndefined();
  });

  it('cancelling mid-execution stops in-flight subtasks: nothing shows as running any more', async () => {
    const running = await executing();
    await running.when(p1.dispatched('a'), p1.started('a'));
    expect(running.plan(P)!.progress.running).toBe(1);
    await running.when(p1.cancelled('stop'));
    expect(running.plan(P)!.subtasks.map((s) => s.status)).toEqual(['cancelled', 'pending', 'pending']);
    expect(running.plan(P)!.progress).toEqual({ total: 3, done: 0, failed: 0, running: 0, pending: 2, cancelled: 1, percentage: 0 });
  });

  it('execution: subtask statuses and progress follow every step, duration counts from the start of execution', async () => {
    const w = await inReview();
    await w.given(p1.approved());
    const executionStartedAt = w.now;
    await w.when(p1.executing());
    expect(w.plan(P)).toMatchObject({ status: 'executing', fsm_state: 'plan_execution', started_at: executionStartedAt });

    await w.when(p1.dispatched('a'));
    expect(w.plan(P)!.subtasks[0]).toMatchObject({ id: 'a', status: 'dispatched', attempt: 1 });
    expect(w.plan(P)!.progress).toEqual({ total: 3, done: 0, failed: 0, running: 1, pending: 2, cancelled: 0, percentage: 0 });

    const startedAt = w.now;
    await w.when(p1.started('a'));
    expect(w.plan(P)!.subtasks[0]).toMatchObject({ status: 'running', started_at: startedAt });

    const succeededAt = w.now;
    await w.when(p1.succeeded('a'));
    expect(w.plan(P)!.subtasks[0]).toMatchObject({ status: 'succeeded', finished_at: succeededAt });
    expect(w.plan(P)!.progress).toEqual({ total: 3, done: 1, failed: 0, running: 0, pending: 2, cancelled: 0, percentage: 33 });

    await w.when(p1.dispatched('b'), p1.started('b'), p1.succeeded('b'), p1.dispatched('c'), p1.started('c'));
    expect(w.plan(P)!.progress).toEqual({ total: 3, done: 2, failed: 0, running: 1, pending: 0, cancelled: 0, percentage: 67 });
    expect(w.plan(P)!.status).toBe('executing');
    expect(w.plan(P)!.finished_at).toBeUndefined();

    const completedAt = w.now;
    await w.when([p1.succeeded('c'), p1.completed()]);
    const doc = w.plan(P)!;
    expect(doc).toMatchObject({
      status: 'completed',
      fsm_state: 'completed',
      progress: { total: 3, done: 3, failed: 0, running: 0, pending: 0, cancelled: 0, percentage: 100 },
      finished_at: completedAt,
      duration_seconds: (Date.parse(completedAt) - Date.parse(executionStartedAt)) / 1000,
      stream_revision: w.log.at(-1)!.revision,
    });
    expect(doc.subtasks.map((s) => s.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
  });

  it('a failure that will be retried schedules the retry; the next attempt starts clean', async () => {
    const w = await executing();
    await w.given(p1.dispatched('a'), p1.started('a'));
    const notBefore = after(w.now, 1);
    await w.when([p1.failed('a', 1, true), p1.retryScheduled('a', 2, notBefore)]);
    expect(w.plan(P)).toMatchObject({ status: 'executing', fsm_state: 'plan_execution' });
    expect(w.plan(P)!.subtasks[0]).toMatchObject({
      status: 'retry_scheduled',
      attempt: 1,
      not_before: notBefore,
      error: 'attempt 1 broke',
    });
    expect(w.plan(P)!.progress).toEqual({ total: 3, done: 0, failed: 0, running: 0, pending: 3, cancelled: 0, percentage: 0 });

    await w.when(p1.dispatched('a', 2));
    const retried = w.plan(P)!.subtasks[0]!;
    expect(retried).toMatchObject({ status: 'dispatched', attempt: 2 });
    // What described attempt 1 does not describe attempt 2.
    expect(retried.error).toBeUndefined();
    expect(retried.finished_at).toBeUndefined();
    expect(retried.started_at).toBeUndefined();
    expect(retried.not_before).toBeUndefined();

    await w.when(p1.started('a', 2), p1.succeeded('a', 2));
    const done = w.plan(P)!.subtasks[0]!;
    expect(done).toMatchObject({ status: 'succeeded', attempt: 2 });
    expect(done.error).toBeUndefined();
  });

  it('retries exhausted: error handling, then a failed plan with its reason', async () => {
    const w = await executing();
    await w.given(p1.dispatched('a'), p1.started('a'));
    await w.when(p1.failed('a', 1, false));
    expect(w.plan(P)).toMatchObject({
      status: 'error_handling',
      fsm_state: 'error_handling',
      progress: { total: 3, done: 0, failed: 1, running: 0, pending: 2, cancelled: 0, percentage: 0 },
    });
    expect(w.plan(P)!.subtasks[0]).toMatchObject({ status: 'failed', error: 'attempt 1 broke' });
    expect(w.plan(P)!.finished_at).toBeUndefined();

    const startedAt = w.plan(P)!.started_at!;
    const failedAt = w.now;
    await w.when(p1.failedPlan('gave up on a'));
    expect(w.plan(P)).toMatchObject({
      status: 'failed',
      fsm_state: 'completed',
      reason: 'gave up on a',
      finished_at: failedAt,
      duration_seconds: (Date.parse(failedAt) - Date.parse(startedAt)) / 1000,
    });
  });

  it('error handling → retry a subtask → executing again', async () => {
    const w = await executing();
    await w.given(p1.dispatched('a'), p1.started('a'), p1.failed('a', 1, false));
    await w.when(p1.retryScheduled('a', 2, w.now));
    expect(w.plan(P)).toMatchObject({ status: 'executing', fsm_state: 'plan_execution' });
    expect(w.plan(P)!.progress).toMatchObject({ failed: 0, pending: 3 });
  });

  it('error handling → re-plan → revision 2 awaits approval, the first execution forgotten', async () => {
    const w = await executing();
    const first = w.plan(P)!;
    await w.given(p1.dispatched('a'), p1.started('a'), p1.failed('a', 1, false));
    await w.when(p1.replan('a keeps failing'));
    expect(w.plan(P)).toMatchObject({ status: 'replanning', fsm_state: 'architect_planning', reason: 'a keeps failing' });

    await w.when(p1.drafted(2));
    const doc = w.plan(P)!;
    expect(doc).toMatchObject({
      status: 'awaiting_approval',
      revision: 2,
      created_at: first.created_at,
      created_position: first.created_position,
      approval: { approval_request_id: AP2, status: 'pending' },
      progress: { total: 3, done: 0, failed: 0, running: 0, pending: 3, cancelled: 0, percentage: 0 },
    });
    expect(doc.started_at).toBeUndefined();
    expect(doc.reason).toBeUndefined();
  });

  it('events of a plan that was never drafted write nothing', async () => {
    const w = views();
    await w.when(p1.approved(), p1.cancelled());
    expect(w.plan(P)).toBeUndefined();
    expect(w.count(HISTORY)).toBe(0);
    expect(w.count(APPROVALS)).toBe(0);
  });

  it('progressOf counts dispatched as running and retry-scheduled as pending', () => {
    expect(
      progressOf([
        { status: 'pending' },
        { status: 'dispatched' },
        { status: 'running' },
        { status: 'succeeded' },
        { status: 'failed' },
        { status: 'retry_scheduled' },
      ]),
    ).toEqual({ total: 6, done: 1, failed: 1, running: 2, pending: 2, cancelled: 0, percentage: 17 });
    expect(progressOf([])).toEqual({ total: 0, done: 0, failed: 0, running: 0, pending: 0, cancelled: 0, percentage: 0 });
  });
});

// ---------------------------------------------------------------------------------------------------

describe('session view', () => {
  it('a started session is idle and active', async () => {
    const w = views();
    const startedAt = w.now;
    const [started] = await w.when(s1.started('auto', 'Login work'));
    expect(w.session(S)).toEqual({
      session_id: S,
      name: 'Login work',
      mode: 'auto',
      agent_type: 'universal',
      status: 'active',
      fsm_state: 'idle',
      phase: 'idle',
      current_plan_id: null,
      current_plan_status: null,
      message_count: 0,
      agent_history: [],
      created_at: startedAt,
      updated_at: startedAt,
      stream_revision: 0,
      created_position: started!.position,
      // Started before owners existed: it belongs to `local`, the principal of a server without auth.
      owner: 'local',
      shares: {},
    });
  });

  it('fsm_state follows the current plan: architect_planning → plan_review → plan_execution → completed', async () => {
    const w = views();
    await w.given(s1.started());
    await w.when(s1.message('Add a login page'));
    expect(w.session(S)).toMatchObject({ fsm_state: 'classify', message_count: 1, stream_revision: 1 });

    await w.when(s1.classified(P));
    expect(w.session(S)).toMatchObject({ fsm_state: 'architect_planning', current_plan_id: P, stream_revision: 2 });

    await w.when(p1.drafted());
    expect(w.session(S)).toMatchObject({ fsm_state: 'plan_review', current_plan_status: 'awaiting_approval' });

    await w.when(p1.approved());
    expect(w.session(S)!.fsm_state).toBe('plan_execution');
    await w.when(p1.executing(), p1.dispatched('a'), p1.started('a'), p1.succeeded('a'));
    expect(w.session(S)!.fsm_state).toBe('plan_execution');

    await w.when(p1.dispatched('b'), p1.succeeded('b'), p1.dispatched('c'));
    const lastAt = w.now;
    await w.when([p1.succeeded('c'), p1.completed()]);
    expect(w.session(S)).toMatchObject({
      fsm_state: 'completed',
      status: 'active', // the plan finished, not the conversation
      current_plan_status: 'completed',
      // Plan events move the session's fsm_state and updated_at, never its stream revision (its ETag).
      stream_revision: 2,
      updated_at: lastAt,
    });
  });

  it('error handling, reject and modify each show in fsm_state', async () => {
    const failing = await executing();
    await failing.when(p1.dispatched('a'), p1.failed('a', 1, false));
    expect(failing.session(S)!.fsm_state).toBe('error_handling');
    await failing.when(p1.replan('again'));
    expect(failing.session(S)!.fsm_state).toBe('architect_planning');

    const rejected = await inReview();
    await rejected.when(p1.rejected());
    expect(rejected.session(S)!.fsm_state).toBe('idle');

    const modified = await inReview();
    await modified.when(p1.modify('smaller'));
    expect(modified.session(S)!.fsm_state).toBe('architect_planning');
    await modified.when(p1.drafted(2));
    expect(modified.session(S)!.fsm_state).toBe('plan_review');
  });

  it('a new message during review: classify, and the superseded plan does not pull it back', async () => {
    const w = await inReview();
    await w.when(s1.message('Actually, add signup too', P));
    expect(w.session(S)).toMatchObject({ fsm_state: 'classify', message_count: 2, current_plan_id: P });
    await w.when(p1.superseded('user_message', 'msg-x', 1));
    expect(w.session(S)).toMatchObject({ fsm_state: 'classify', current_plan_status: 'superseded' });

    const p2 = plan('p2', S);
    await w.when(s1.classified('p2'), p2.drafted());
    expect(w.session(S)).toMatchObject({ fsm_state: 'plan_review', current_plan_id: 'p2', current_plan_status: 'awaiting_approval' });
  });

  it('a new plan supersedes the one in review: the session follows the new plan only', async () => {
    const w = await inReview();
    const p2 = plan('p2', S);
    await w.when(s1.classified('p2', P));
    expect(w.session(S)).toMatchObject({ fsm_state: 'architect_planning', current_plan_id: 'p2', current_plan_status: null });
    await w.when(p2.drafted(), p1.superseded('new_plan', 'p2', 1));
    expect(w.session(S)).toMatchObject({ fsm_state: 'plan_review', current_plan_id: 'p2', current_plan_status: 'awaiting_approval' });
    expect(w.plan(P)!.status).toBe('superseded');
  });

  it('atomic tasks execute; a failed classification goes back to idle', async () => {
    const w = views();
    await w.given(s1.started(), s1.message('What time is it?'));
    await w.when(s1.atomic());
    expect(w.session(S)).toMatchObject({ fsm_state: 'execution', current_plan_id: null });
    await w.when(s1.message('And now?'), s1.classificationFailed());
    expect(w.session(S)).toMatchObject({ fsm_state: 'idle', message_count: 2 });
  });

  it('suspend, resume, complete: status changes, a completed session is completed whatever its plan does', async () => {
    const w = await inReview();
    await w.when(s1.suspended());
    expect(w.session(S)).toMatchObject({ status: 'suspended', fsm_state: 'plan_review' });
    await w.when(s1.resumed());
    expect(w.session(S)!.status).toBe('active');

    await w.when(s1.completed(P));
    expect(w.session(S)).toMatchObject({ status: 'completed', fsm_state: 'completed', stream_revision: 5 });
    await w.when(p1.cancelled('session completed'));
    expect(w.session(S)).toMatchObject({ status: 'completed', fsm_state: 'completed', current_plan_status: 'cancelled' });
  });

  it('expired sessions read as completed', async () => {
    const w = views();
    await w.given(s1.started());
    await w.when(s1.expired());
    expect(w.session(S)).toMatchObject({ status: 'expired', fsm_state: 'completed' });
  });

  it('session events before the session started write nothing', async () => {
    const w = views();
    await w.when(s1.message('hello?'));
    expect(w.session(S)).toBeUndefined();
    expect(w.count(HISTORY)).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('approval view', () => {
  it('a requested approval is pending, in the shape the IDE parses', async () => {
    const w = views();
    await w.given(s1.started(), s1.classified(P));
    const requestedAt = w.now;
    const [, requested] = await w.when(p1.drafted());
    expect(w.approval(AP1)).toEqual({
      request_id: AP1,
      approval_request_id: AP1,
      call_id: AP1,
      request_type: 'plan',
      session_id: S,
      plan_id: P,
      revision: 1,
      status: 'pending',
      subject: 'Add login',
      reason: 'the plan needs approval before it runs',
      details: { plan_id: P, plan_summary: planSummary(w.plan(P)!) },
      created_at: requestedAt,
      deadline: '2026-11-20T11:00:00.000Z',
      created_position: requested!.position,
      readers: ['local'],
    });
    expect((w.approval(AP1)!.details as { plan_summary: unknown }).plan_summary).toMatchObject({ plan_id: P, status: 'awaiting_approval', subtasks_count: 3 });
  });

  it.each([
    ['approved', p1.approved(), { status: 'approved', decision: 'approve', decided_by: 'user' }],
    ['approved by timeout', p1.approved(1, 'timeout'), { status: 'approved', decision: 'approve', decided_by: 'timeout' }],
    ['rejected', p1.rejected('no'), { status: 'rejected', decision: 'reject', decided_by: 'user', feedback: 'no' }],
    ['modification_requested', p1.modify('smaller'), { status: 'modification_requested', decision: 'modify', decided_by: 'user', feedback: 'smaller' }],
    ['expired', p1.expired(), { status: 'expired' }],
    ['closed by supersede', p1.superseded('user_message', 'm2', 1), { status: 'closed' }],
    ['closed by cancel', p1.cancelled('stop'), { status: 'closed' }],
  ] as const)('%s', async (_name, event, expected) => {
    const w = await inReview();
    const decidedAt = w.now;
    await w.when(event);
    expect(w.approval(AP1)).toMatchObject({ ...expected, decided_at: decidedAt, request_id: AP1, plan_id: P, session_id: S });
  });

  it('a closed or decided approval is not changed again', async () => {
    const w = await executing();
    const approved = w.approval(AP1);
    await w.when(p1.cancelled());
    expect(w.approval(AP1)).toEqual(approved);
  });

  it('modify then a new revision: a new pending request, the old one keeps its decision', async () => {
    const w = await inReview();
    await w.given(p1.modify('smaller'));
    const [, requested] = await w.when(p1.drafted(2));
    expect(w.approval(AP1)).toMatchObject({ status: 'modification_requested', feedback: 'smaller' });
    expect(w.approval(AP2)).toMatchObject({
      status: 'pending',
      revision: 2,
      reason: 'revision 2 of the plan needs approval',
      created_position: requested!.position,
      details: { plan_id: P, plan_summary: { revision: 2, status: 'awaiting_approval' } },
    });
  });
});

// ---------------------------------------------------------------------------------------------------

describe('history view', () => {
  it("a session's history holds its own and its plans' events in log order, and nothing of other sessions", async () => {
    const w = await inReview();
    const s2 = session('s2');
    const p2 = plan('p2', 's2');
    await w.given(s2.started(), s2.classified('p2'), p2.drafted());
    await w.given(p1.approved(), p2.rejected());

    const mine = w.log.filter((e) => e.stream === `session-${S}` || e.stream === `plan-${P}`);
    expect(w.history(S)).toEqual(
      mine.map((e) => ({
        event_id: e.id,
        session_id: S,
        stream: e.stream,
        revision: e.revision,
        position: e.position,
        type: e.type,
        at: e.metadata.at,
        data: e.data,
      })),
    );
    expect(w.history(S).map((h) => h.type)).toEqual([
      'SessionStarted',
      'UserMessageReceived',
      'TaskClassified',
      'PlanDrafted',
      'PlanApprovalRequested',
      'PlanApproved',
    ]);
    expect(w.history('s2').map((h) => h.type)).toEqual(['SessionStarted', 'TaskClassified', 'PlanDrafted', 'PlanApprovalRequested', 'PlanRejected']);
  });

  it('leaves the events it was given untouched', async () => {
    const w = await inReview();
    const [approved] = await w.when(p1.approved());
    // The history document must not share (and freeze) the event's data: the event is the caller's.
    expect(Object.isFrozen(approved!.data)).toBe(false);
    expect(Object.isFrozen(w.log[0]!.data)).toBe(false);
  });
});

describe('views projection', () => {
  it('a redelivered event changes nothing: no message counted twice, no time going backwards', async () => {
    const w = await inReview();
    await w.given(s1.message('one more thing', P), p1.superseded('user_message', 'msg-2', 1));
    const before = w.all();
    expect(w.session(S)!.message_count).toBe(2);
    await w.redeliver(w.log);
    await w.redeliver(w.log.slice(-3));
    expect(w.all()).toEqual(before);
  });

  it('ignores streams and event types that are not its own', async () => {
    const w = await inReview();
    const before = w.count(HISTORY);
    const foreign: StoredEvent[] = [
      { ...w.log[0]!, id: 'x1', stream: 'audit-r1', type: 'AuditRecorded', position: 100, revision: 0 },
      { ...w.log[0]!, id: 'x2', stream: `session-${S}`, type: 'SomethingNewer', position: 101, revision: 9 },
      { ...w.log[0]!, id: 'x3', stream: '$ce-plan', type: 'PlanDrafted', position: 102, revision: 0 },
    ];
    for (const event of foreign) await viewsProjection.apply(event, {
      get: async () => {
        throw new Error('should not read');
      },
      put: () => {
        throw new Error('should not write');
      },
      delete: () => {
        throw new Error('should not delete');
      },
      append: () => {
        throw new Error('should not append');
      },
      trim: () => {
        throw new Error('should not trim');
      },
    });
    expect(w.count(HISTORY)).toBe(before);
  });

  it('indexes sessions in every list they belong to, scored by their first position', async () => {
    const w = await inReview();
    const doc = w.session(S)!;
    expect(viewsProjection.indexesOf(SESSIONS, S, doc)).toEqual(
      [
        'sessions:all', 'sessions:status:active', 'sessions:mode:plan', 'sessions:status:active:mode:plan',
        // …and the same lists of each principal that may read it (its owner, here `local`).
        'sessions:member:local:all', 'sessions:member:local:status:active', 'sessions:member:local:mode:plan', 'sessions:member:local:status:active:mode:plan',
      ].map((index) => ({
        index,
        score: doc.created_position,
      })),
    );
    expect(indexNames.sessions({})).toBe('sessions:all');
    // A principal's name is URI-encoded, so `a:status:active` cannot pass for principal `a`'s list of active sessions.
    expect(indexNames.sessions({ member: 'a:status:active' })).toBe('sessions:member:a%3Astatus%3Aactive:all');
    expect(indexNames.sessions({ status: 'active', mode: 'plan' })).toBe('sessions:status:active:mode:plan');
  });

  it('indexes approvals by session and status; a decision moves it out of the pending lists', async () => {
    const w = await inReview();
    const pending = w.approval(AP1)!;
    const names = (doc: Doc) => viewsProjection.indexesOf(APPROVALS, AP1, doc).map((e) => e.index);
    expect(viewsProjection.indexesOf(APPROVALS, AP1, pending)).toEqual([
      ...['approvals:all', 'approvals:status:pending', `approvals:session:${S}`, `approvals:session:${S}:status:pending`].map((index) => ({
        index,
        score: pending.created_position,
      })),
      // Pending only: soonest deadline first for the approval timer.
      { index: 'approvals:due', score: -Date.parse(pending.deadline as string) },
      // What each reader of its session lists.
      ...['approvals:member:local:all', 'approvals:member:local:status:pending'].map((index) => ({ index, score: pending.created_position })),
    ]);
    await w.when(p1.approved());
    expect(names(w.approval(AP1)!)).toEqual([
      'approvals:all', 'approvals:status:approved', `approvals:session:${S}`, `approvals:session:${S}:status:approved`,
      'approvals:member:local:all', 'approvals:member:local:status:approved',
    ]);
    expect(indexNames.approvals({ session_id: S, status: 'pending' })).toBe(`approvals:session:${S}:status:pending`);
  });

  it('indexes plans per session and history per session by position', async () => {
    const w = await inReview();
    expect(viewsProjection.indexesOf(PLANS, P, w.plan(P)!)).toEqual([
      { index: indexNames.plansOfSession(S), score: w.plan(P)!.created_position },
    ]);
    const h = w.history(S)[2]!;
    expect(viewsProjection.indexesOf(HISTORY, h.event_id, h)).toEqual([{ index: `history:${S}`, score: h.position }]);
    expect(viewsProjection.indexesOf('elsewhere', 'x', {})).toEqual([]);
  });

  it('every index it writes is under one of its prefixes, for every document of a busy session', async () => {
    const w = await executing();
    await w.given(p1.cancelled(), s1.message('next'), s1.completed());
    const indexed = [
      ...viewsProjection.indexesOf(SESSIONS, S, w.session(S)!),
      ...viewsProjection.indexesOf(PLANS, P, w.plan(P)!),
      ...viewsProjection.indexesOf(APPROVALS, AP1, w.approval(AP1)!),
      ...w.history(S).flatMap((h) => viewsProjection.indexesOf(HISTORY, h.event_id, h)),
    ];
    for (const { index, score } of indexed) {
      expect(viewsProjection.indexPrefixes.some((prefix) => index.startsWith(prefix)), index).toBe(true);
      expect(Number.isFinite(score)).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------------------

describe('conversation view', () => {
  it("the user's messages, each plan in markdown, and what became of it, in order", async () => {
    const w = await inReview();
    await w.when(p1.modify('smaller steps'));
    await w.when(p1.drafted(2, { subtasks: SUBTASKS.slice(0, 1) }));
    const revision2 = planMarkdown(planSummary(w.plan(P)!));
    await w.when(p1.approved(2), p1.executing(), p1.dispatched('a'), p1.succeeded('a'), p1.completed());
    expect(w.conversation(S)).toEqual([
      { role: 'user', content: 'Add a login page' },
      {
        role: 'assistant',
        content: ['**Plan:** Add login', '3 subtasks · estimated 3 min 30 s', '', '1. Write the login form — coder · 1 min', '2. Write the login API — coder · 2 min · after 1', '3. Test both — debug · 30 s · after 1, 2'].join('\n'),
      },
      { role: 'assistant', content: 'Changes requested: smaller steps' },
      { role: 'assistant', content: revision2 },
      { role: 'assistant', content: 'Plan approved.' },
      { role: 'assistant', content: 'Plan completed.' },
    ]);
    expect(revision2).toContain('(revision 2)');
  });

  it.each([
    ['approved at the deadline', p1.approved(1, 'timeout'), { role: 'assistant', content: 'No decision came before the deadline: the plan was approved automatically.' }],
    ['rejected', p1.rejected(), { role: 'assistant', content: 'Plan rejected.' }],
    ['rejected with feedback', p1.rejected('too risky'), { role: 'assistant', content: 'Plan rejected: too risky' }],
    ['expired', p1.expired(), { role: 'assistant', content: 'The plan expired: no decision came before the deadline.' }],
    ['superseded by a message', p1.superseded('user_message', 'm2', 1), { role: 'assistant', content: 'Plan superseded by a new message.' }],
    ['superseded by a plan', p1.superseded('new_plan', 'p2', 1), { role: 'assistant', content: 'Plan superseded by a new plan.' }],
    ['cancelled', p1.cancelled(), { role: 'assistant', content: 'Plan cancelled.' }],
    ['cancelled with a reason', p1.cancelled('not needed'), { role: 'assistant', content: 'Plan cancelled: not needed' }],
  ] as const)('a plan %s ends with one short message', async (_name, event, message) => {
    const w = await inReview();
    await w.when(event);
    expect(w.conversation(S).slice(2)).toEqual([message]);
  });

  it('a failed plan is a system message that reads as an error (the IDE shows it as one)', async () => {
    const w = await executing();
    await w.when(p1.dispatched('a'), p1.failed('a', 1, false), p1.failedPlan('the build is broken'));
    expect(w.conversation(S).at(-1)).toEqual({ role: 'system', content: 'Plan failed with an error: the build is broken' });
  });

  it('an agent switch is a system message named agent_switched, and joins the agent history', async () => {
    const w = views();
    await w.given(s1.started());
    const switchedAt = w.now;
    await w.when(s1.switched('universal', 'debug', 'the tests fail'));
    const secondAt = w.now;
    await w.when(s1.switched('debug', 'coder'));
    expect(w.conversation(S)).toEqual([
      { role: 'system', name: 'agent_switched', content: 'Switched from the universal agent to the debug agent: the tests fail' },
      { role: 'system', name: 'agent_switched', content: 'Switched from the debug agent to the coder agent.' },
    ]);
    expect(w.session(S)).toMatchObject({
      agent_type: 'coder',
      agent_history: [
        { from: 'universal', to: 'debug', reason: 'the tests fail', timestamp: switchedAt },
        { from: 'debug', to: 'coder', timestamp: secondAt },
      ],
    });
    expect(w.session(S)!.agent_history[1]).not.toHaveProperty('reason');
  });

  it('messages are numbered per session from 1 and indexed by that number; other sessions stay apart', async () => {
    const w = await inReview();
    const s2 = session('s2');
    await w.given(s2.started(), s2.message('hello from two'), p1.approved());
    const mine = Object.entries(w.all()[CONVERSATION]!)
      .map(([id, doc]) => [id, doc as ConversationMessageDoc] as const)
      .filter(([, doc]) => doc.session_id === S)
      .sort(([, a], [, b]) => a.seq - b.seq);
    expect(mine.map(([id, doc]) => [id, doc.seq])).toEqual([
      [`${S}:1`, 1],
      [`${S}:2`, 2],
      [`${S}:3`, 3],
    ]);
    const [, approved] = mine[2]!;
    expect(approved).toMatchObject({ session_id: S, at: w.log.at(-1)!.metadata.at, position: w.log.at(-1)!.position });
    expect(viewsProjection.indexesOf(CONVERSATION, `${S}:3`, approved)).toEqual([{ index: `conversation:${S}`, score: 3 }]);
    expect(w.conversation('s2')).toEqual([{ role: 'user', content: 'hello from two' }]);
  });

  it('plan events that change nothing add nothing to the conversation', async () => {
    const w = await executing();
    const before = w.conversation(S);
    await w.when(p1.dispatched('a'), p1.started('a'), p1.succeeded('a'), p1.cancelled('stop'));
    expect(w.conversation(S)).toEqual([...before, { role: 'assistant', content: 'Plan cancelled: stop' }]);
  });
});

describe('session description', () => {
  it('is the first message, on one line; later messages leave it', async () => {
    const w = views();
    await w.given(s1.started());
    await w.when(s1.message('  Add a login page\n  with a remember-me box  '), s1.atomic(), s1.message('and signup'));
    expect(w.session(S)!.description).toBe('Add a login page with a remember-me box');
  });

  it("is the first plan's goal when the session began with a plan", async () => {
    const w = views();
    await w.given(s1.started(), s1.classified(P));
    expect(w.session(S)).not.toHaveProperty('description');
    await w.when(p1.drafted(1, { goal: 'Ship the login page' }));
    expect(w.session(S)!.description).toBe('Ship the login page');
  });

  it('is cut to 200 characters', async () => {
    const w = views();
    await w.given(s1.started());
    await w.when(s1.message('x'.repeat(500)));
    expect(w.session(S)!.description).toBe(`${'x'.repeat(199)}…`);
  });
});

describe('deleting a session', () => {
  /** Every document that mentions the session, its plan or its approvals, by collection. */
  const traces = (w: ReturnType<typeof views>, ...ids: string[]) =>
    Object.entries(w.all()).flatMap(([collection, docs]) =>
      Object.entries(docs)
        .filter(([id, doc]) => ids.some((x) => id === x || id.startsWith(`${x}:`) || JSON.stringify(doc).includes(`"${x}"`)))
        .map(([id]) => `${collection}/${id}`),
    );

  it('removes the session, its plans, approvals, history and conversation; other sessions stay', async () => {
    const w = await inReview();
    const s2 = session('s2');
    const p2 = plan('p2', 's2');
    await w.given(p1.modify('smaller'), p1.drafted(2), s2.started(), s2.classified('p2'), p2.drafted());
    const other = { session: w.session('s2'), plan: w.plan('p2'), history: w.history('s2'), conversation: w.conversation('s2') };
    expect(traces(w, S, P, AP1, AP2).length).toBeGreaterThan(10);

    await w.when([s1.deleted(P), p1.cancelled('session deleted')]);
    // Only the tombstone that keeps a late event of its plans from recreating them.
    expect(traces(w, S, P, AP1, AP2)).toEqual([`${SESSION_CONTENTS}/${S}`]);
    expect(w.all()[SESSION_CONTENTS]![S]).toMatchObject({ deleted: true, plan_ids: [], approval_ids: [] });
    expect({ session: w.session('s2'), plan: w.plan('p2'), history: w.history('s2'), conversation: w.conversation('s2') }).toEqual(other);
  });

  it('a late event of a deleted session, or the deletion delivered again, recreates nothing', async () => {
    const w = await inReview();
    const deletion = await w.when(s1.deleted(P));
    const after = w.all();
    await w.redeliver(deletion);
    await w.when(p1.drafted(2), p1.approved(2), s1.message('still there?'), s1.renamed('back'));
    expect(w.all()).toEqual(after);
  });

  it('a session deleted after its plan ended leaves nothing either', async () => {
    const w = await executing();
    await w.given(p1.completed(), s1.completed());
    await w.when(s1.deleted());
    expect(traces(w, S, P, AP1)).toEqual([`${SESSION_CONTENTS}/${S}`]);
  });
});

describe('owners and shares', () => {
  it('a session lists its owner and shares; sharing and revoking change who lists it and its approvals', async () => {
    const w = views();
    await w.given(s1.started('plan', 'Shared work', 'alice'), s1.message('Add a login page'), s1.classified(P), p1.drafted());
    expect(w.session(S)).toMatchObject({ owner: 'alice', shares: {} });
    expect(w.approval(AP1)!.readers).toEqual(['alice']);

    await w.when(s1.shared('vic', 'viewer'), s1.shared('carl', 'collaborator'));
    expect(w.session(S)).toMatchObject({ owner: 'alice', shares: { vic: 'viewer', carl: 'collaborator' } });
    expect(w.approval(AP1)!.readers).toEqual(['alice', 'vic', 'carl']);
    const listedFor = (member: string) => viewsProjection.indexesOf(SESSIONS, S, w.session(S)!).some((e) => e.index === indexNames.sessions({ member }));
    expect(['alice', 'vic', 'carl', 'mallory'].map(listedFor)).toEqual([true, true, true, false]);
    expect(viewsProjection.indexesOf(APPROVALS, AP1, w.approval(AP1)!).map((e) => e.index)).toContain(indexNames.memberApprovals('vic', 'pending'));

    // Revoking takes the viewer off the session's lists and its approvals' at once.
    await w.when(s1.revoked('vic'));
    expect(w.session(S)!.shares).toEqual({ carl: 'collaborator' });
    expect(w.approval(AP1)!.readers).toEqual(['alice', 'carl']);
    expect(viewsProjection.indexesOf(APPROVALS, AP1, w.approval(AP1)!).map((e) => e.index)).not.toContain(indexNames.memberApprovals('vic', 'pending'));
    expect(listedFor('vic')).toBe(false);
  });

  it('the history records who sent each command', async () => {
    const w = views();
    const [started] = await w.given(s1.started('plan', 'x', 'alice'));
    // The test log writes no principal: the history says null, as for Planline's own commands.
    expect(w.history(S)[0]).not.toHaveProperty('principal');
    await w.redeliver([{ ...started!, id: 'other', revision: 1, position: 99, type: 'SessionShared', data: { principal: 'bob', role: 'viewer' }, metadata: { ...started!.metadata, principal: 'alice' } }]);
    expect(w.history(S).at(-1)).toMatchObject({ type: 'SessionShared', principal: 'alice' });
  });
});
