import { describe, expect, it } from 'vitest';
import type { PlanEvent, SessionEvent } from '../../src/events/catalog.js';
import { planDecider, type PlanState } from '../../src/commands/plan.js';
import { decideSession, evolveSession, initialSessionState, sessionFsmState, type SessionCommand, type SessionState } from '../../src/commands/session.js';
import { DomainError } from '../../src/commands/errors.js';

const started: SessionEvent = { type: 'SessionStarted', data: { session_id: 's1', name: 'demo', mode: 'auto', agent_type: 'universal' } };
const message = (id: string, extra: Partial<Extract<SessionEvent, { type: 'UserMessageReceived' }>['data']> = {}): SessionEvent => ({
  type: 'UserMessageReceived',
  data: { message_id: id, content: 'hello', role: 'user', ...extra },
});
const attached = (planId: string, supersedes?: string): SessionEvent => ({
  type: 'TaskClassified',
  data: { kind: 'complex', plan_id: planId, source: 'client', ...(supersedes ? { supersedes_plan_id: supersedes } : {}) },
});

const planDrafted: PlanEvent[] = [
  {
    type: 'PlanDrafted',
    data: { plan_id: 'p1', session_id: 's1', revision: 1, goal: 'g', subtasks: [{ id: 'a', description: 'd', agent: 'coder', dependencies: [], estimated_time: 0 }], source: 'client' },
  },
  { type: 'PlanApprovalRequested', data: { approval_request_id: 'ap1', revision: 1, deadline: '2026-11-20T10:05:00.000Z', timeout_action: 'expire' } },
];
const foldPlan = (events: PlanEvent[]): PlanState => events.reduce(planDecider.evolve, planDecider.initialState());
const foldSession = (events: SessionEvent[]): SessionState =>
  events.reduce(evolveSession, { ...initialSessionState(), session_id: 's1' });

/** given session events (and the current plan's), when a command, then events or a refusal. */
function given(sessionEvents: SessionEvent[], planEvents: PlanEvent[] = []) {
  const view = { session: foldSession(sessionEvents), plan: planEvents.length ? foldPlan(planEvents) : undefined };
  return {
    view,
    when: (command: SessionCommand) => ({
      then: (expected: SessionEvent[]) => expect(decideSession(command, view)).toEqual(expected),
      thenFails: (code: string, message?: RegExp) => {
        let caught: unknown;
        try {
          decideSession(command, view);
        } catch (error) {
          caught = error;
        }
        expect(caught).toBeInstanceOf(DomainError);
        expect((caught as DomainError).code).toBe(code);
        if (message) expect((caught as DomainError).message).toMatch(message);
        return caught as DomainError;
      },
    }),
  };
}

describe('session decider', () => {
  it('starts a session once', () => {
    given([]).when({ type: 'StartSession', session_id: 's1', name: 'demo', mode: 'auto', agent_type: 'universal' }).then([started]);
    given([started]).when({ type: 'StartSession', session_id: 's1', name: 'x', mode: 'auto', agent_type: 'universal' }).thenFails('session_exists');
  });

  it('commands on a session that does not exist are 404s', () => {
    given([]).when({ type: 'ReceiveUserMessage', message_id: 'm1', content: 'hi' }).thenFails('session_not_found');
    given([]).when({ type: 'SuspendSession' }).thenFails('session_not_found');
  });

  it('a message moves an idle session to classify', () => {
    given([started]).when({ type: 'ReceiveUserMessage', message_id: 'm1', content: 'hello' }).then([message('m1')]);
    expect(sessionFsmState({ session: foldSession([started, message('m1')]) })).toBe('classify');
  });

  it('a message during plan review supersedes the plan (seed rule 3)', () => {
    given([started, attached('p1')], planDrafted)
      .when({ type: 'ReceiveUserMessage', message_id: 'm2', content: 'hello' })
      .then([message('m2', { supersedes_plan_id: 'p1' })]);
  });

  describe('a message while the session is busy follows the multitask strategy', () => {
    const executing: PlanEvent[] = [...planDrafted, { type: 'PlanApproved', data: { approval_request_id: 'ap1', decided_by: 'user' } }];
    const atomic: SessionEvent = { type: 'TaskClassified', data: { kind: 'atomic', run_id: 'r1', agent_type: 'ask', source: 'heuristic', message_id: 'm1' } };

    it('enqueue (the default): the message waits, the plan goes on, and it starts once the work ends', () => {
      given([started, attached('p1')], executing).when({ type: 'ReceiveUserMessage', message_id: 'm2', content: 'hello' }).then([message('m2', { queued: true })]);
      const queued = foldSession([started, attached('p1'), message('m2', { queued: true })]);
      expect(queued.queue.map((m) => m.message_id)).toEqual(['m2']);
      expect(sessionFsmState({ session: queued, plan: foldPlan(executing) })).toBe('plan_execution');
      // Not while the plan still runs; once it completed, the oldest queued message is classified.
      given([started, attached('p1'), message('m2', { queued: true })], executing).when({ type: 'StartQueuedMessage' }).then([]);
      const done = [...executing, { type: 'PlanCompleted', data: {} } as PlanEvent];
      given([started, attached('p1'), message('m2', { queued: true })], done).when({ type: 'StartQueuedMessage' }).then([{ type: 'QueuedMessageStarted', data: { message_id: 'm2' } }]);
      const next = foldSession([started, attached('p1'), message('m2', { queued: true }), { type: 'QueuedMessageStarted', data: { message_id: 'm2' } }]);
      expect(next).toMatchObject({ phase: 'classify', pending_message: { message_id: 'm2' }, queue: [] });
    });

    it('interrupt: the message cancels the running plan or run in the same commit and is classified at once', () => {
      given([started, attached('p1')], executing)
        .when({ type: 'ReceiveUserMessage', message_id: 'm2', content: 'hello', strategy: 'interrupt' })
        .then([message('m2', { cancels_plan_id: 'p1' })]);
      given([started, message('m1'), atomic]).when({ type: 'ReceiveUserMessage', message_id: 'm2', content: 'hello', strategy: 'interrupt' }).then([message('m2', { cancels_run_id: 'r1' })]);
    });

    it('reject: a 409 naming the state, and nothing changes', () => {
      const error = given([started, attached('p1')], executing).when({ type: 'ReceiveUserMessage', message_id: 'm2', content: 'x', strategy: 'reject' }).thenFails('session_busy');
      expect(error.details).toMatchObject({ fsm_state: 'plan_execution', current_plan_id: 'p1', strategy: 'reject' });
    });

    it('an atomic run finishing frees the session; a run it no longer waits for changes nothing', () => {
      given([started, message('m1'), atomic]).when({ type: 'FinishTask', run_id: 'r9', status: 'succeeded' }).then([]);
      given([started, message('m1'), atomic])
        .when({ type: 'FinishTask', run_id: 'r1', status: 'succeeded', answer: '42' })
        .then([{ type: 'TaskFinished', data: { run_id: 'r1', status: 'succeeded', answer: '42' } }]);
      const after = foldSession([started, message('m1'), atomic, { type: 'TaskFinished', data: { run_id: 'r1', status: 'succeeded', answer: '42' } }]);
      expect(after.phase).toBe('idle');
      expect(after.recent).toEqual([
        { role: 'user', content: 'hello' },
        { role: 'assistant', content: '42' },
      ]);
    });

    it('classifying a message that a newer one replaced changes nothing', () => {
      given([started, message('m1'), message('m2')]).when({ type: 'ClassifyAtomic', message_id: 'm1', run_id: 'r1', agent_type: 'ask', source: 'heuristic' }).then([]);
      given([started, message('m1'), message('m2')])
        .when({ type: 'ClassifyAtomic', message_id: 'm2', run_id: 'r2', agent_type: 'ask', source: 'heuristic' })
        .then([{ type: 'TaskClassified', data: { kind: 'atomic', run_id: 'r2', agent_type: 'ask', source: 'heuristic', message_id: 'm2' } }]);
    });
  });

  it('attaching a plan names it; attaching another during review supersedes the first', () => {
    given([started]).when({ type: 'AttachPlan', plan_id: 'p1', source: 'client' }).then([attached('p1')]);
    expect(sessionFsmState({ session: foldSession([started, attached('p1')]) })).toBe('architect_planning');
    given([started, attached('p1')], planDrafted).when({ type: 'AttachPlan', plan_id: 'p2', source: 'client' }).then([attached('p2', 'p1')]);
  });

  it('a finished plan is not superseded by the next message', () => {
    const done: PlanEvent[] = [...planDrafted, { type: 'PlanRejected', data: { approval_request_id: 'ap1' } }];
    given([started, attached('p1')], done).when({ type: 'ReceiveUserMessage', message_id: 'm3', content: 'again' }).then([{ ...message('m3'), data: { ...message('m3').data, content: 'again' } } as SessionEvent]);
  });

  it('suspend and resume are idempotent; a suspended session takes no messages', () => {
    const suspended: SessionEvent = { type: 'SessionSuspended', data: {} };
    given([started]).when({ type: 'SuspendSession' }).then([suspended]);
    given([started, suspended]).when({ type: 'SuspendSession' }).then([]);
    given([started, suspended]).when({ type: 'ResumeSession' }).then([{ type: 'SessionResumed', data: {} }]);
    given([started]).when({ type: 'ResumeSession' }).then([]);
    given([started, suspended]).when({ type: 'ReceiveUserMessage', message_id: 'm', content: 'x' }).thenFails('illegal_transition', /legal here: ResumeSession, CompleteSession, ExpireSession/);
  });

  it('completing a session cancels its open plan; a completed session accepts nothing but completion', () => {
    given([started, attached('p1')], planDrafted).when({ type: 'CompleteSession', reason: 'done' }).then([
      { type: 'SessionCompleted', data: { reason: 'done', cancels_plan_id: 'p1' } },
    ]);
    const completed: SessionEvent = { type: 'SessionCompleted', data: {} };
    given([started, completed]).when({ type: 'CompleteSession' }).then([]);
    given([started, completed]).when({ type: 'ReceiveUserMessage', message_id: 'm', content: 'x' }).thenFails('illegal_transition', /fsm_state completed; legal here: RenameSession, DeleteSession/);
    given([started, completed]).when({ type: 'ResumeSession' }).thenFails('illegal_transition');
    given([started]).when({ type: 'ExpireSession' }).then([{ type: 'SessionExpired', data: {} }]);
  });

  it('keeps a free-form mode as given', () => {
    given([]).when({ type: 'StartSession', session_id: 's1', name: 'demo', mode: 'planning-control', agent_type: 'universal' }).then([
      { type: 'SessionStarted', data: { session_id: 's1', name: 'demo', mode: 'planning-control', agent_type: 'universal' } },
    ]);
  });

  it('renames a session; the same name again changes nothing', () => {
    given([started]).when({ type: 'RenameSession', name: 'Login work' }).then([{ type: 'SessionRenamed', data: { name: 'Login work' } }]);
    given([started, { type: 'SessionRenamed', data: { name: 'Login work' } }]).when({ type: 'RenameSession', name: 'Login work' }).then([]);
    given([started, { type: 'SessionCompleted', data: {} }]).when({ type: 'RenameSession', name: 'done' }).then([
      { type: 'SessionRenamed', data: { name: 'done' } },
    ]);
  });

  it('deletes a session once, cancelling the plan under review; afterwards it is gone for every command', () => {
    given([started, message('m1'), attached('p1')], planDrafted)
      .when({ type: 'DeleteSession', reason: 'cleanup' })
      .then([{ type: 'SessionDeleted', data: { reason: 'cleanup', cancels_plan_id: 'p1' } }]);
    const deleted: SessionEvent = { type: 'SessionDeleted', data: {} };
    given([started, deleted]).when({ type: 'DeleteSession' }).then([]);
    given([started, deleted]).when({ type: 'ReceiveUserMessage', message_id: 'm2', content: 'hi' }).thenFails('session_not_found');
    given([started, deleted]).when({ type: 'RenameSession', name: 'x' }).thenFails('session_not_found');
    given([started, deleted]).when({ type: 'StartSession', session_id: 's1', name: 'again', mode: 'auto', agent_type: 'universal' }).thenFails('session_exists');
    given([]).when({ type: 'DeleteSession' }).thenFails('session_not_found');
  });

  it('switches the agent, saying from which; switching to the current agent changes nothing', () => {
    given([started]).when({ type: 'SwitchAgent', to_agent: 'coder', reason: 'write code' }).then([
      { type: 'AgentSwitched', data: { from_agent: 'universal', to_agent: 'coder', reason: 'write code' } },
    ]);
    const switched: SessionEvent = { type: 'AgentSwitched', data: { from_agent: 'universal', to_agent: 'coder' } };
    given([started, switched]).when({ type: 'SwitchAgent', to_agent: 'coder' }).then([]);
    given([started, switched]).when({ type: 'SwitchAgent', to_agent: 'debug' }).then([{ type: 'AgentSwitched', data: { from_agent: 'coder', to_agent: 'debug' } }]);
    given([started, { type: 'SessionSuspended', data: {} }]).when({ type: 'SwitchAgent', to_agent: 'ask' }).thenFails('illegal_transition');
  });
});

describe('session decider: owners, shares and who may do what', () => {
  const owned: SessionEvent = { type: 'SessionStarted', data: { ...started.data, owner: 'alice' } as SessionEvent['data'] } as SessionEvent;
  const shared = (principal: string, role: 'viewer' | 'collaborator'): SessionEvent => ({ type: 'SessionShared', data: { principal, role } });
  const revoked = (principal: string): SessionEvent => ({ type: 'SessionShareRevoked', data: { principal } });

  /** given session events, when `principal` sends a command, then events or a refusal. */
  function as(principal: string | undefined, history: SessionEvent[]) {
    const view = { session: foldSession(history), principal };
    const run = (command: SessionCommand) => decideSession(command, view);
    return {
      view,
      when: (command: SessionCommand) => ({
        then: (expected: SessionEvent[]) => expect(run(command)).toEqual(expected),
        thenFails: (code: string, message?: RegExp) => {
          let caught: unknown;
          try {
            run(command);
          } catch (error) {
            caught = error;
          }
          expect(caught, `expected ${code}`).toBeInstanceOf(DomainError);
          expect((caught as DomainError).code).toBe(code);
          if (message) expect((caught as DomainError).message).toMatch(message);
          return caught as DomainError;
        },
      }),
    };
  }

  it('the principal that starts a session owns it; without a principal (older sessions) it belongs to local', () => {
    as('alice', []).when({ type: 'StartSession', session_id: 's1', name: 'demo', mode: 'auto', agent_type: 'universal' }).then([owned]);
    expect(foldSession([owned]).owner).toBe('alice');
    expect(foldSession([started]).owner).toBeUndefined();
    // `local` (auth off) may drive a session written before owners existed; nobody else may.
    as('local', [started]).when({ type: 'RenameSession', name: 'x' }).then([{ type: 'SessionRenamed', data: { name: 'x' } }]);
    as('alice', [started]).when({ type: 'RenameSession', name: 'x' }).thenFails('session_not_found');
  });

  it('the owner shares as viewer or collaborator, changes the role, and revokes; repeats change nothing', () => {
    as('alice', [owned]).when({ type: 'ShareSession', principal: 'vic', role: 'viewer' }).then([shared('vic', 'viewer')]);
    as('alice', [owned, shared('vic', 'viewer')]).when({ type: 'ShareSession', principal: 'vic', role: 'viewer' }).then([]);
    as('alice', [owned, shared('vic', 'viewer')]).when({ type: 'ShareSession', principal: 'vic', role: 'collaborator' }).then([shared('vic', 'collaborator')]);
    as('alice', [owned, shared('vic', 'viewer')]).when({ type: 'RevokeShare', principal: 'vic' }).then([revoked('vic')]);
    as('alice', [owned, shared('vic', 'viewer'), revoked('vic')]).when({ type: 'RevokeShare', principal: 'vic' }).then([]);
    expect(foldSession([owned, shared('vic', 'viewer'), shared('carl', 'collaborator'), revoked('vic')]).shares).toEqual({ carl: 'collaborator' });
  });

  it('only the owner shares, revokes or deletes: a collaborator or viewer is forbidden, a stranger finds nothing', () => {
    const history = [owned, shared('vic', 'viewer'), shared('carl', 'collaborator')];
    for (const command of [
      { type: 'ShareSession', principal: 'eve', role: 'viewer' },
      { type: 'RevokeShare', principal: 'vic' },
      { type: 'DeleteSession' },
    ] as SessionCommand[]) {
      as('carl', history).when(command).thenFails('forbidden', /only the owner of session s1 may do this; carl is a collaborator/);
      as('vic', history).when(command).thenFails('forbidden', /vic is a viewer/);
      as('mallory', history).when(command).thenFails('session_not_found');
    }
  });

  it('a collaborator sends commands; a viewer may not; a stranger is told the session does not exist', () => {
    const history = [owned, shared('vic', 'viewer'), shared('carl', 'collaborator')];
    const send: SessionCommand = { type: 'ReceiveUserMessage', message_id: 'm1', content: 'hello' };
    as('carl', history).when(send).then([message('m1')]);
    as('vic', history).when(send).thenFails('forbidden', /vic is a viewer of session s1: it may read the session but not send commands to it/);
    as('mallory', history).when(send).thenFails('session_not_found');
    // Even a command that would change nothing (suspending a suspended session) tells a stranger nothing.
    as('mallory', [...history, { type: 'SessionSuspended', data: {} }]).when({ type: 'SuspendSession' }).thenFails('session_not_found');
    // Revoked: at once a stranger again.
    as('carl', [...history, revoked('carl')]).when(send).thenFails('session_not_found');
    // Planline's own commands (no principal) are not access-checked.
    as(undefined, history).when(send).then([message('m1')]);
  });

  it('the owner cannot be given a role, and a session has at most 100 shares', () => {
    as('alice', [owned]).when({ type: 'ShareSession', principal: 'alice', role: 'viewer' }).thenFails('invalid_share', /alice owns session s1/);
    const full = [owned, ...Array.from({ length: 100 }, (_, i) => shared(`p${i}`, 'viewer'))];
    as('alice', full).when({ type: 'ShareSession', principal: 'one-more', role: 'viewer' }).thenFails('too_many_shares');
    // Changing the role of an existing share is still fine when full.
    as('alice', full).when({ type: 'ShareSession', principal: 'p1', role: 'collaborator' }).then([shared('p1', 'collaborator')]);
  });

  it('a deleted session: the owner deleting again is a no-op, sharing it is not found', () => {
    const deleted: SessionEvent = { type: 'SessionDeleted', data: {} };
    as('alice', [owned, deleted]).when({ type: 'DeleteSession' }).then([]);
    as('alice', [owned, deleted]).when({ type: 'ShareSession', principal: 'vic', role: 'viewer' }).thenFails('session_not_found');
    as('mallory', [owned, deleted]).when({ type: 'DeleteSession' }).thenFails('session_not_found');
  });
});
