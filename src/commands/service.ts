// The use cases: what the HTTP API, the CLI and the executor ask for. A use case that touches several
// streams (a plan attached to its session, a message that supersedes the plan under review, a completed
// session that cancels its plan) writes them in ONE commit, so no reader or crash ever sees one without
// the other, and two edges racing on one session cannot interleave. The session's event still records
// the intent (`supersedes_plan_id`, `cancels_plan_id`, `plan_id`) for the history; logs written before
// multi-stream commits may hold an intent whose follow-up a crash interrupted: a retry with the same
// Idempotency-Key finishes it, once.
import { streams, type AgentType, type DomainEvent, type PlanEvent, type SessionEvent, type SessionMode, type ShareRole } from '../events/catalog.js';
import { uuidv5 } from '../events/ids.js';
import type { Position } from '../events/store.js';
import type { SubtaskInput } from './dag.js';
import { notFound } from './errors.js';
import { accessOf, requireAccess, type Access, type Need } from './access.js';
import type { CommandHandler, CommandMeta, Executed, ExecutedAcross, StreamLoader, StreamWrite } from './handle.js';
import { planDecider, type Decision, type PlanCommand, type PlanState } from './plan.js';
import { sessionDecider, sessionFsmState, type MultitaskStrategy, type SessionCommand, type SessionState, type SessionView } from './session.js';
import { runDecider, type RunState } from './run.js';
import { createRunCommands } from './run-commands.js';
import type { RunEvent } from '../events/catalog.js';
import type { FsmState } from './fsm.js';

export interface PlanningPolicy {
  approvalTimeoutS: number;
  approvalTimeoutAction: 'expire' | 'approve';
  maxParallel: number;
  maxAttempts: number;
  retryBackoffMs: number;
  /** What a message does while the session is busy, unless the message says (default enqueue). */
  multitask?: MultitaskStrategy;
}

export const DEFAULT_POLICY: PlanningPolicy = {
  approvalTimeoutS: 300,
  approvalTimeoutAction: 'expire',
  maxParallel: 4,
  maxAttempts: 3,
  retryBackoffMs: 1_000,
};

export interface CommandOutcome {
  /** Highest log position this use case reached: `?wait_for=` it to read your own writes. */
  position: Position;
  /** False when the command changed nothing (a repeated decision, a retried Idempotency-Key). */
  changed: boolean;
}

/** What a principal is to a session, as the edges ask before a command or a subscription. */
export interface SessionAccess {
  /** Started and not deleted. */
  exists: boolean;
  /** Started and deleted since (its stream may still be read by those who could read the session). */
  deleted: boolean;
  access: Access;
  session_id: string;
}

/** Ids derived from a command id, so a retried command targets the same new aggregates. */
export const derivedId = (commandId: string, purpose: string) => uuidv5(`${commandId}#${purpose}`);

export type Commands = ReturnType<typeof createCommands>;

export function createCommands(handler: CommandHandler, policy: PlanningPolicy = DEFAULT_POLICY) {
  const now = () => handler.clock();

  const loadPlan = (planId: string) => handler.load(streams.plan(planId), planDecider);

  /**
   * The session with its current plan, as a session decision needs it. The plan is caught up with the
   * log first: a session command appends only to the session stream, so nothing else would notice a
   * plan another process has moved on (a message refused as "plan executing" when it has completed).
   */
  async function sessionView(session: SessionState): Promise<SessionView> {
    const plan = session.current_plan_id ? (await handler.load(streams.plan(session.current_plan_id), planDecider, { fresh: true })).state : undefined;
    return { session, plan };
  }

  function onSession(sessionId: string, meta: CommandMeta, command: SessionCommand): Promise<Executed<SessionState>> {
    return handler.execute<SessionState, SessionEvent>(streams.session(sessionId), sessionDecider, meta, async (state) =>
      sessionDecider.decide(command, { ...(await sessionView({ ...state, session_id: sessionId })), principal: meta.principal }),
    );
  }

  function onPlan(planId: string, meta: CommandMeta, command: PlanCommand): Promise<Executed<PlanState>> {
    return handler.execute<PlanState, PlanEvent>(streams.plan(planId), planDecider, meta, (state) =>
      planDecider.decide(command, { ...state, plan_id: state.plan_id || planId }),
    );
  }

  /** Follow-up of `meta`'s command on another stream: its own derived id, caused by the first. */
  const followUp = (meta: CommandMeta, purpose: string): CommandMeta => ({
    command_id: derivedId(meta.command_id, purpose),
    correlation_id: meta.correlation_id ?? meta.command_id,
    causation_id: meta.command_id,
    principal: meta.principal,
  });

  async function supersede(planId: string, by: string, reason: 'user_message' | 'new_plan', meta: CommandMeta) {
    return onPlan(planId, followUp(meta, `supersede:${planId}`), { type: 'SupersedePlan', reason, superseded_by: by });
  }

  /** Completing, expiring or deleting a session cancels its open plan in the same commit. */
  async function endSession(
    sessionId: string,
    command: SessionCommand,
    type: 'SessionCompleted' | 'SessionExpired' | 'SessionDeleted',
    reason: string,
    meta: CommandMeta,
  ) {
    const done = await sessionAcross(sessionId, meta, command, async (events, load) => {
      const planId = intentIn(events, type, 'cancels_plan_id');
      return planId ? [await planWrite(planId, { type: 'CancelPlan', reason }, load)] : [];
    });
    const finished = await finishLegacyIntent(done, type, 'cancels_plan_id', (planId) =>
      onPlan(planId, followUp(meta, `cancel:${planId}`), { type: 'CancelPlan', reason }),
    );
    return { session_id: sessionId, ...outcome(done, finished) };
  }

  const outcome = (...steps: Array<Executed<unknown> | ExecutedAcross | Position>): CommandOutcome => ({
    position: Math.max(0, ...steps.map((s) => (typeof s === 'number' ? s : s.position))),
    changed: steps.some((s) => typeof s !== 'number' && ('written' in s ? s.written.size > 0 : s.appended.length > 0)),
  });

  /** The session's decision with its current plan, loaded so that a write to that plan is checked too. */
  async function sessionViewFrom(session: SessionState, sessionId: string, load: StreamLoader, principal: string | undefined): Promise<SessionView> {
    const state = { ...session, session_id: sessionId };
    if (!state.current_plan_id) return { session: state, principal };
    const plan = await load<PlanState, PlanEvent>(streams.plan(state.current_plan_id), planDecider);
    return { session: state, plan: { ...plan, plan_id: plan.plan_id || state.current_plan_id }, principal };
  }

  /** A plan's events for a command, on its state loaded through `load` (so its revision is checked). */
  async function planWrite(planId: string, command: PlanCommand, load: StreamLoader): Promise<StreamWrite> {
    const stream = streams.plan(planId);
    const plan = await load<PlanState, PlanEvent>(stream, planDecider);
    return { stream, events: planDecider.decide(command, { ...plan, plan_id: plan.plan_id || planId }) };
  }

  /** A session command that also writes what its event records: superseding or cancelling a plan. */
  function sessionAcross(
    sessionId: string,
    meta: CommandMeta,
    command: SessionCommand,
    followUps: (events: SessionEvent[], load: StreamLoader) => Promise<StreamWrite[]>,
  ): Promise<ExecutedAcross> {
    const stream = streams.session(sessionId);
    return handler.executeAcross<SessionState, SessionEvent>({ stream, evolver: sessionDecider }, meta, async (state, load) => {
      const events = sessionDecider.decide(command, await sessionViewFrom(state, sessionId, load, meta.principal));
      return [{ stream, events }, ...(await followUps(events, load))];
    });
  }

  /**
   * A retried command whose first run was written before multi-stream commits may have recorded an
   * intent its crash never carried out: finish it, with the follow-up's own derived id (a no-op when
   * it was done).
   */
  async function finishLegacyIntent(
    done: ExecutedAcross,
    type: SessionEvent['type'],
    field: 'supersedes_plan_id' | 'cancels_plan_id',
    run: (planId: string) => Promise<Executed<unknown>>,
  ): Promise<Position> {
    if (!done.duplicate) return 0;
    const planId = intentIn(done.primaryEvents, type, field);
    if (!planId || !(await loadPlan(planId)).state.exists) return 0;
    return (await run(planId)).position;
  }

  const runs = createRunCommands({
    handler,
    onSession,
    sessionViewOf: (session) => sessionView(session),
  });

  const api = {
    ...runs,
    async startSession(
      input: { session_id?: string | undefined; name?: string | undefined; mode?: SessionMode | undefined; agent_type?: AgentType | undefined },
      meta: CommandMeta,
    ) {
      const sessionId = input.session_id ?? derivedId(meta.command_id, 'session');
      const done = await onSession(sessionId, meta, {
        type: 'StartSession',
        session_id: sessionId,
        name: input.name ?? '',
        mode: input.mode ?? 'auto',
        agent_type: input.agent_type ?? 'universal',
      });
      return { session_id: sessionId, ...outcome(done) };
    },

    async sendUserMessage(
      sessionId: string,
      input: { content: string; agent_type?: AgentType | undefined; strategy?: MultitaskStrategy | undefined },
      meta: CommandMeta,
    ) {
      const messageId = derivedId(meta.command_id, 'message');
      const command: SessionCommand = {
        type: 'ReceiveUserMessage',
        message_id: messageId,
        content: input.content,
        ...(input.agent_type !== undefined ? { agent_type: input.agent_type } : {}),
        strategy: input.strategy ?? policy.multitask,
      };
      // Seed rule 3: a message during review supersedes the plan and closes its approval, in the same
      // commit; a message that interrupts cancels the running plan or run in the same commit too.
      const done = await sessionAcross(sessionId, meta, command, async (events, load) => {
        const writes: StreamWrite[] = [];
        const planId = intentIn(events, 'UserMessageReceived', 'supersedes_plan_id');
        if (planId) writes.push(await planWrite(planId, { type: 'SupersedePlan', reason: 'user_message', superseded_by: messageId }, load));
        const cancelled = intentIn(events, 'UserMessageReceived', 'cancels_plan_id');
        if (cancelled) writes.push(await planWrite(cancelled, { type: 'CancelPlan', reason: 'interrupted by a new message' }, load));
        const run = intentIn(events, 'UserMessageReceived', 'cancels_run_id');
        if (run) {
          const stream = streams.run(run);
          const state = await load<RunState, RunEvent>(stream, runDecider);
          writes.push({ stream, events: runDecider.decide({ type: 'CancelRun', reason: 'interrupted by a new message' }, { ...state, run_id: run }) });
        }
        return writes;
      });
      const finished = await finishLegacyIntent(done, 'UserMessageReceived', 'supersedes_plan_id', (planId) =>
        supersede(planId, messageId, 'user_message', meta),
      );
      const supersededPlanId = intentIn(done.primaryEvents, 'UserMessageReceived', 'supersedes_plan_id');
      return {
        session_id: sessionId,
        message_id: messageId,
        superseded_plan_id: supersededPlanId,
        queued: done.primaryEvents.some((e) => e.type === 'UserMessageReceived' && e.data.queued === true),
        ...outcome(done, finished),
      };
    },

    /**
     * CreatePlan with client-given subtasks. The session (started here when none is named) records
     * the new plan first, which serializes plans per session; then the plan stream is written.
     */
    async createPlan(
      input: {
        session_id?: string | undefined;
        goal: string;
        subtasks: readonly SubtaskInput[];
        default_agent?: AgentType | undefined;
        source?: 'llm' | 'heuristic' | 'client' | undefined;
        /** The message this plan answers (the architect's plans): refused if a newer message replaced it. */
        message_id?: string | undefined;
      },
      meta: CommandMeta,
    ) {
      const planId = derivedId(meta.command_id, 'plan');
      const approvalRequestId = derivedId(meta.command_id, 'approval');
      const source = input.source ?? 'client';
      // Validate the plan before touching the session: a bad DAG must change nothing.
      const draft: PlanCommand = {
        type: 'DraftPlan',
        plan_id: planId,
        session_id: '',
        goal: input.goal,
        subtasks: input.subtasks,
        source,
        approval_request_id: approvalRequestId,
        now: now(),
        approval_timeout_s: policy.approvalTimeoutS,
        timeout_action: policy.approvalTimeoutAction,
        ...(input.default_agent ? { default_agent: input.default_agent } : {}),
      };
      planDecider.decide(draft, planDecider.initialState());

      // Without a session, the plan gets its own: started and attached in the same commit.
      const newSession = input.session_id === undefined;
      const sessionId = input.session_id ?? derivedId(meta.command_id, 'session');
      const attach: SessionCommand = { type: 'AttachPlan', plan_id: planId, source, message_id: input.message_id };
      const sessionStream = streams.session(sessionId);
      const done = await handler.executeAcross<SessionState, SessionEvent>({ stream: sessionStream, evolver: sessionDecider }, meta, async (state, load) => {
        const view = await sessionViewFrom(state, sessionId, load, meta.principal);
        let sessionEvents: SessionEvent[];
        if (!newSession || state.exists) sessionEvents = sessionDecider.decide(attach, view);
        else {
          const started = sessionDecider.decide(
            { type: 'StartSession', session_id: sessionId, name: input.goal.slice(0, 200), mode: 'plan', agent_type: 'universal' },
            view,
          );
          const session = started.reduce(sessionDecider.evolve, view.session);
          sessionEvents = [...started, ...sessionDecider.decide(attach, { session })];
        }
        const writes: StreamWrite[] = [{ stream: sessionStream, events: sessionEvents }];
        writes.push(await planWrite(planId, { ...draft, session_id: sessionId }, load));
        const supersededId = intentIn(sessionEvents, 'TaskClassified', 'supersedes_plan_id');
        if (supersededId) writes.push(await planWrite(supersededId, { type: 'SupersedePlan', reason: 'new_plan', superseded_by: planId }, load));
        return writes;
      });
      const finished = await finishLegacyIntent(done, 'TaskClassified', 'supersedes_plan_id', (supersededId) =>
        supersede(supersededId, planId, 'new_plan', meta),
      );
      // A retry of a CreatePlan that was first run before multi-stream commits may find the draft missing.
      const drafted =
        done.duplicate && !(await loadPlan(planId)).state.exists
          ? await onPlan(planId, followUp(meta, 'draft'), { ...draft, session_id: sessionId })
          : undefined;
      const plan = (done.written.get(streams.plan(planId))?.state as PlanState | undefined) ?? drafted?.state ?? (await loadPlan(planId)).state;
      return {
        plan_id: planId,
        session_id: sessionId,
        approval_request_id: plan.approvals.at(-1)?.approval_request_id ?? approvalRequestId,
        revision: plan.revision,
        superseded_plan_id: intentIn(done.primaryEvents, 'TaskClassified', 'supersedes_plan_id'),
        plan,
        ...outcome(done, finished, ...(drafted ? [drafted] : [])),
      };
    },

    /** A new revision of a plan that is re-planning (after modify or a re-plan request). */
    async revisePlan(
      planId: string,
      input: { goal?: string | undefined; subtasks: readonly SubtaskInput[]; feedback?: string | undefined; source?: 'llm' | 'heuristic' | 'client' | undefined },
      meta: CommandMeta,
    ) {
      const approvalRequestId = derivedId(meta.command_id, 'approval');
      const current = await requireLivePlan(planId, meta.principal);
      const done = await onPlan(planId, meta, {
        type: 'DraftPlan',
        plan_id: planId,
        session_id: current.session_id,
        goal: input.goal ?? current.goal,
        subtasks: input.subtasks,
        source: input.source ?? 'client',
        ...(input.feedback !== undefined ? { feedback: input.feedback } : {}),
        approval_request_id: approvalRequestId,
        now: now(),
        approval_timeout_s: policy.approvalTimeoutS,
        timeout_action: policy.approvalTimeoutAction,
      });
      return {
        plan_id: planId,
        approval_request_id: done.state.approvals.at(-1)?.approval_request_id ?? approvalRequestId,
        revision: done.state.revision,
        plan: done.state,
        ...outcome(done),
      };
    },

    async decidePlan(
      planId: string,
      input: { approval_request_id: string; decision: Decision; feedback?: string | undefined },
      meta: CommandMeta,
    ) {
      await requireLivePlan(planId, meta.principal);
      const done = await onPlan(planId, meta, {
        type: 'DecidePlan',
        approval_request_id: input.approval_request_id,
        decision: input.decision,
        ...(input.feedback !== undefined ? { feedback: input.feedback } : {}),
      });
      return { plan_id: planId, plan: done.state, ...outcome(done) };
    },

    /** DecidePlan addressed by session: the decision applies to the session's current plan. */
    async decideSessionPlan(
      sessionId: string,
      input: { approval_request_id: string; decision: Decision; feedback?: string | undefined },
      meta: CommandMeta,
    ) {
      const session = await handler.load(streams.session(sessionId), sessionDecider, { fresh: meta.principal !== undefined });
      if (!session.state.exists || session.state.deleted) throw notFound('session', sessionId);
      // Before the approval is looked up: a stranger must not learn which approvals a session has.
      if (meta.principal !== undefined) requireAccess({ ...session.state, session_id: sessionId }, meta.principal, 'command');
      const planId = await planOfApproval(session.state, input.approval_request_id);
      return api.decidePlan(planId, input, meta);
    },

    async expireApproval(planId: string, approvalRequestId: string, meta: CommandMeta) {
      const done = await onPlan(planId, meta, { type: 'ExpireApproval', approval_request_id: approvalRequestId, now: now() });
      return { plan_id: planId, plan: done.state, ...outcome(done) };
    },

    async cancelPlan(planId: string, input: { reason?: string | undefined }, meta: CommandMeta) {
      await requireLivePlan(planId, meta.principal);
      const done = await onPlan(planId, meta, {
        type: 'CancelPlan',
        ...(input.reason !== undefined ? { reason: input.reason } : {}),
      });
      return { plan_id: planId, plan: done.state, ...outcome(done) };
    },

    /** Execution-side commands (the executor drives these; the API and tests may too). */
    async onPlan(planId: string, command: PlanCommand, meta: CommandMeta) {
      const done = await onPlan(planId, meta, command);
      return { plan_id: planId, plan: done.state, ...outcome(done) };
    },

    async suspendSession(sessionId: string, input: { reason?: string | undefined }, meta: CommandMeta) {
      const done = await onSession(sessionId, meta, {
        type: 'SuspendSession',
        ...(input.reason !== undefined ? { reason: input.reason } : {}),
      });
      return { session_id: sessionId, ...outcome(done) };
    },

    async resumeSession(sessionId: string, meta: CommandMeta) {
      const done = await onSession(sessionId, meta, { type: 'ResumeSession' });
      return { session_id: sessionId, ...outcome(done) };
    },

    async completeSession(sessionId: string, input: { reason?: string | undefined }, meta: CommandMeta) {
      const command: SessionCommand = { type: 'CompleteSession', ...(input.reason !== undefined ? { reason: input.reason } : {}) };
      return endSession(sessionId, command, 'SessionCompleted', 'session completed', meta);
    },

    async expireSession(sessionId: string, meta: CommandMeta) {
      return endSession(sessionId, { type: 'ExpireSession' }, 'SessionExpired', 'session expired', meta);
    },

    /** Delete: the session and its plans leave every read model; the log keeps them. Idempotent. */
    async deleteSession(sessionId: string, input: { reason?: string | undefined }, meta: CommandMeta) {
      const command: SessionCommand = { type: 'DeleteSession', ...(input.reason !== undefined ? { reason: input.reason } : {}) };
      return endSession(sessionId, command, 'SessionDeleted', 'session deleted', meta);
    },

    async renameSession(sessionId: string, input: { name: string }, meta: CommandMeta) {
      const done = await onSession(sessionId, meta, { type: 'RenameSession', name: input.name });
      return { session_id: sessionId, ...outcome(done) };
    },

    async switchAgent(sessionId: string, input: { agent_type: AgentType; reason?: string | undefined }, meta: CommandMeta) {
      const done = await onSession(sessionId, meta, {
        type: 'SwitchAgent',
        to_agent: input.agent_type,
        ...(input.reason !== undefined ? { reason: input.reason } : {}),
      });
      return { session_id: sessionId, agent_type: done.state.agent_type, ...outcome(done) };
    },

    /** The owner shares the session with another principal as a viewer or a collaborator (or changes its role). */
    async shareSession(sessionId: string, input: { principal: string; role: ShareRole }, meta: CommandMeta) {
      const done = await onSession(sessionId, meta, { type: 'ShareSession', principal: input.principal, role: input.role });
      return { session_id: sessionId, shares: done.state.shares, ...outcome(done) };
    },

    /** The owner takes a share back; effective for the next request, on every edge. Idempotent. */
    async revokeShare(sessionId: string, input: { principal: string }, meta: CommandMeta) {
      const done = await onSession(sessionId, meta, { type: 'RevokeShare', principal: input.principal });
      return { session_id: sessionId, shares: done.state.shares, ...outcome(done) };
    },

    /**
     * What `principal` is to a session, from the log (caught up, so a share revoked on another edge
     * counts at once). `exists` is false for a session never started or deleted. The edges ask this
     * before a command or a subscription; a stranger must get the same answer as for a missing session.
     */
    async sessionAccess(sessionId: string, principal: string): Promise<SessionAccess> {
      const { state } = await handler.load(streams.session(sessionId), sessionDecider, { fresh: true });
      if (!state.exists) return { exists: false, deleted: false, access: 'none', session_id: sessionId };
      return { exists: !state.deleted, deleted: state.deleted, access: accessOf(state, principal), session_id: sessionId };
    },

    /** The same for a plan, through its session (`session_id` is empty when the plan does not exist). */
    async planAccess(planId: string, principal: string): Promise<SessionAccess> {
      const plan = (await handler.load(streams.plan(planId), planDecider, { fresh: true })).state;
      if (!plan.exists) return { exists: false, deleted: false, access: 'none', session_id: '' };
      return api.sessionAccess(plan.session_id, principal);
    },

    /** The same for an agent run, through its session. */
    async runAccess(runId: string, principal: string): Promise<SessionAccess> {
      const run = (await handler.load(streams.run(runId), runDecider, { fresh: true })).state;
      if (!run.exists) return { exists: false, deleted: false, access: 'none', session_id: '' };
      return api.sessionAccess(run.session_id, principal);
    },

    /** The command side's view of a session: its state and derived FSM state. */
    /** `fresh`: caught up with the log first (what another process appended since this one last looked). */
    async sessionState(sessionId: string, options: { fresh?: boolean } = {}): Promise<{ session: SessionState; fsm_state: FsmState; revision: number }> {
      const loaded = await handler.load(streams.session(sessionId), sessionDecider, options);
      if (!loaded.state.exists || loaded.state.deleted) throw notFound('session', sessionId);
      return { session: loaded.state, fsm_state: sessionFsmState(await sessionView(loaded.state)), revision: loaded.revision };
    },

    async planState(planId: string) {
      await requireLivePlan(planId);
      return loadPlan(planId);
    },
  };
  return api;

  /**
   * A plan the API may address: it exists, its session was not deleted, and the principal sending the
   * command (when there is one) may command that session. A stranger gets plan_not_found, as for a plan
   * that does not exist; a viewer gets forbidden.
   */
  async function requireLivePlan(planId: string, principal?: string, need: Need = 'command'): Promise<PlanState> {
    const loaded = await handler.load(streams.plan(planId), planDecider, { fresh: principal !== undefined });
    if (!loaded.state.exists) throw notFound('plan', planId);
    const session = await handler.load(streams.session(loaded.state.session_id), sessionDecider, { fresh: principal !== undefined });
    if (session.state.deleted) throw notFound('plan', planId);
    if (principal !== undefined) {
      if (accessOf(session.state, principal) === 'none') throw notFound('plan', planId);
      requireAccess({ ...session.state, session_id: loaded.state.session_id }, principal, need);
    }
    return loaded.state;
  }

  async function planOfApproval(session: SessionState, approvalRequestId: string): Promise<string> {
    // The current plan is the one almost every decision addresses; older plans of the session are
    // not indexed on the command side, so a decision for one of them must use POST /plans/:id/decision.
    if (session.current_plan_id) {
      const plan = await loadPlan(session.current_plan_id);
      if (plan.state.approvals.some((a) => a.approval_request_id === approvalRequestId)) return session.current_plan_id;
    }
    throw notFound('approval', approvalRequestId);
  }
}

/** A follow-up a session event records (`supersedes_plan_id`, `cancels_plan_id`), if any. */
function intentIn(events: readonly DomainEvent[], type: SessionEvent['type'], field: 'supersedes_plan_id' | 'cancels_plan_id' | 'cancels_run_id'): string | undefined {
  const data = events.findLast((e) => e.type === type)?.data as Record<string, unknown> | undefined;
  const value = data?.[field];
  return typeof value === 'string' ? value : undefined;
}
