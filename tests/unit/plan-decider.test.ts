import { describe, expect, it } from 'vitest';
import type { PlanEvent } from '../../src/events/catalog.js';
import { planDecider, type PlanCommand, type PlanState } from '../../src/commands/plan.js';
import { given } from '../support/given.js';

const NOW = new Date('2026-11-20T10:00:00.000Z');
const later = (seconds: number) => new Date(NOW.getTime() + seconds * 1000);

const draft = (overrides: Partial<Extract<PlanCommand, { type: 'DraftPlan' }>> = {}): PlanCommand => ({
  type: 'DraftPlan',
  plan_id: 'p1',
  session_id: 's1',
  goal: 'Add login',
  subtasks: [
    { id: 'a', description: 'Write the form' },
    { id: 'b', description: 'Write the API', agent: 'coder' },
    { id: 'c', description: 'Test both', agent: 'debug', dependencies: ['a', 1], estimated_time: 60 },
  ],
  source: 'client',
  approval_request_id: 'ap1',
  now: NOW,
  approval_timeout_s: 300,
  timeout_action: 'expire',
  ...overrides,
});

const drafted: PlanEvent[] = [
  {
    type: 'PlanDrafted',
    data: {
      plan_id: 'p1',
      session_id: 's1',
      revision: 1,
      goal: 'Add login',
      subtasks: [
        { id: 'a', description: 'Write the form', agent: 'coder', dependencies: [], estimated_time: 0 },
        { id: 'b', description: 'Write the API', agent: 'coder', dependencies: [], estimated_time: 0 },
        { id: 'c', description: 'Test both', agent: 'debug', dependencies: ['a', 'b'], estimated_time: 60 },
      ],
      source: 'client',
    },
  },
  {
    type: 'PlanApprovalRequested',
    data: { approval_request_id: 'ap1', revision: 1, deadline: later(300).toISOString(), timeout_action: 'expire' },
  },
];
const approved: PlanEvent[] = [...drafted, { type: 'PlanApproved', data: { approval_request_id: 'ap1', decided_by: 'user' } }];
const executing: PlanEvent[] = [...approved, { type: 'PlanExecutionStarted', data: { max_parallel: 2 } }];
const dispatched = (id: string, attempt = 1): PlanEvent => ({ type: 'SubtaskDispatched', data: { subtask_id: id, attempt } });
const started = (id: string, attempt = 1): PlanEvent => ({ type: 'SubtaskStarted', data: { subtask_id: id, attempt } });
const succeeded = (id: string, attempt = 1): PlanEvent => ({ type: 'SubtaskSucceeded', data: { subtask_id: id, attempt } });
const failedFinally = (id: string, attempt: number): PlanEvent => ({
  type: 'SubtaskFailed',
  data: { subtask_id: id, attempt, error: 'boom', will_retry: false },
});
const inErrorHandling: PlanEvent[] = [...executing, dispatched('a'), started('a'), failedFinally('a', 1)];

const plan = (history: PlanEvent[]) => given<PlanState, PlanCommand, PlanEvent>(planDecider, history, (s) => ({ ...s, plan_id: 'p1' }));
const decide = (decision: 'approve' | 'reject' | 'modify', feedback?: string, id = 'ap1'): PlanCommand => ({
  type: 'DecidePlan',
  approval_request_id: id,
  decision,
  ...(feedback !== undefined ? { feedback } : {}),
});

describe('plan decider: drafting', () => {
  it('drafts revision 1 with dependencies by index or id, and asks for approval with a deadline', () => {
    plan([]).when(draft()).then(drafted);
  });

  it('refuses an empty plan', () => {
    plan([]).when(draft({ subtasks: [] })).thenFails('invalid_plan', /at least one subtask/);
  });

  it('refuses a cycle and names it', () => {
    const error = plan([])
      .when(
        draft({
          subtasks: [
            { id: 'a', description: 'x', dependencies: ['c'] },
            { id: 'b', description: 'y', dependencies: ['a'] },
            { id: 'c', description: 'z', dependencies: ['b'] },
          ],
        }),
      )
      .thenFails('invalid_plan', /cycle: a -> c -> b -> a/);
    expect(error.details.cycle).toEqual(['a', 'c', 'b', 'a']);
  });

  it('refuses unknown ids, out-of-range indexes, self-dependencies, duplicate ids and unknown agents', () => {
    plan([]).when(draft({ subtasks: [{ id: 'a', description: 'x', dependencies: ['zz'] }] })).thenFails('invalid_plan', /unknown subtask "zz"/);
    plan([]).when(draft({ subtasks: [{ description: 'x', dependencies: [3] }] })).thenFails('invalid_plan', /unknown subtask 3/);
    plan([]).when(draft({ subtasks: [{ id: 'a', description: 'x', dependencies: ['a'] }] })).thenFails('invalid_plan', /depends on itself/);
    plan([]).when(draft({ subtasks: [{ description: 'x', dependencies: [0] }] })).thenFails('invalid_plan', /depends on itself/);
    plan([])
      .when(draft({ subtasks: [{ id: 'a', description: 'x' }, { id: 'a', description: 'y' }] }))
      .thenFails('invalid_plan', /used twice/);
    plan([])
      .when(draft({ subtasks: [{ id: 'a', description: 'x', agent: 'painter' as never }] }))
      .thenFails('invalid_plan', /unknown agent type "painter"/);
  });

  it('does not draft over a plan that is awaiting review', () => {
    plan(drafted).when(draft()).thenFails('illegal_transition', /DraftPlan is not allowed in fsm_state plan_review/);
  });
});

describe('plan decider: approval (seed rules 1, 2, 4)', () => {
  it('approve, reject and modify the pending request', () => {
    plan(drafted).when(decide('approve')).then([{ type: 'PlanApproved', data: { approval_request_id: 'ap1', decided_by: 'user' } }]);
    plan(drafted).when(decide('reject', 'no')).then([{ type: 'PlanRejected', data: { approval_request_id: 'ap1', feedback: 'no' } }]);
    plan(drafted)
      .when(decide('modify', 'split b'))
      .then([{ type: 'PlanModificationRequested', data: { approval_request_id: 'ap1', feedback: 'split b' } }]);
  });

  it('modify needs feedback', () => {
    plan(drafted).when(decide('modify')).thenFails('validation_failed', /needs feedback/);
    plan(drafted).when(decide('modify', '   ')).thenFails('validation_failed', /needs feedback/);
  });

  it('the same decision again is a no-op success (rule 2)', () => {
    plan(approved).when(decide('approve')).thenNothing();
  });

  it('a different decision after one was taken is a conflict that shows the decision', () => {
    const error = plan(approved).when(decide('reject')).thenFails('already_decided', /already decided: approve/);
    expect(error.status).toBe(409);
    expect(error.details.approval).toMatchObject({ approval_request_id: 'ap1', status: 'approved', decision: 'approve' });
  });

  it('an unknown approval request is a 404', () => {
    expect(plan(drafted).when(decide('approve', undefined, 'nope')).thenFails('approval_not_found').status).toBe(404);
  });

  it('modify re-plans: the plan waits for a new revision that needs approval again (rule 4)', () => {
    const modified: PlanEvent[] = [...drafted, { type: 'PlanModificationRequested', data: { approval_request_id: 'ap1', feedback: 'split b' } }];
    const { state } = plan(modified)
      .when(draft({ approval_request_id: 'ap2', feedback: 'split b', now: later(10), subtasks: [{ id: 'b1', description: 'half' }] }))
      .then([
        {
          type: 'PlanDrafted',
          data: {
            plan_id: 'p1',
            session_id: 's1',
            revision: 2,
            goal: 'Add login',
            subtasks: [{ id: 'b1', description: 'half', agent: 'coder', dependencies: [], estimated_time: 0 }],
            source: 'client',
            feedback: 'split b',
          },
        },
        {
          type: 'PlanApprovalRequested',
          data: { approval_request_id: 'ap2', revision: 2, deadline: later(310).toISOString(), timeout_action: 'expire' },
        },
      ]);
    expect(state.status).toBe('awaiting_approval');
    expect(state.revision).toBe(2);
    // The old request keeps its answer: modify again is a no-op, approve is a conflict.
    const revised = given(planDecider, [], () => state);
    revised.when(decide('modify', 'split b')).thenNothing();
    revised.when(decide('approve')).thenFails('already_decided');
    revised.when(decide('approve', undefined, 'ap2')).then([{ type: 'PlanApproved', data: { approval_request_id: 'ap2', decided_by: 'user' } }]);
  });
});

describe('plan decider: deadlines (rule 1)', () => {
  it('expiry before the deadline is refused', () => {
    plan(drafted).when({ type: 'ExpireApproval', approval_request_id: 'ap1', now: later(299) }).thenFails('not_yet_due');
  });

  it('expires at the deadline with the expire policy', () => {
    plan(drafted)
      .when({ type: 'ExpireApproval', approval_request_id: 'ap1', now: later(300) })
      .then([{ type: 'PlanApprovalExpired', data: { approval_request_id: 'ap1' } }]);
  });

  it('approves at the deadline with the approve policy, and a later user approve is a no-op', () => {
    const history: PlanEvent[] = [
      drafted[0]!,
      { type: 'PlanApprovalRequested', data: { approval_request_id: 'ap1', revision: 1, deadline: later(300).toISOString(), timeout_action: 'approve' } },
    ];
    const { state } = plan(history)
      .when({ type: 'ExpireApproval', approval_request_id: 'ap1', now: later(301) })
      .then([{ type: 'PlanApproved', data: { approval_request_id: 'ap1', decided_by: 'timeout' } }]);
    given(planDecider, [], () => state).when(decide('approve')).thenNothing();
  });

  it('a timer firing after the decision changes nothing; a decision after expiry is refused', () => {
    plan(approved).when({ type: 'ExpireApproval', approval_request_id: 'ap1', now: later(999) }).thenNothing();
    const expired: PlanEvent[] = [...drafted, { type: 'PlanApprovalExpired', data: { approval_request_id: 'ap1' } }];
    plan(expired).when(decide('approve')).thenFails('approval_closed', /expired/);
  });
});

describe('plan decider: superseding (rule 3)', () => {
  it('a plan in review is superseded and its approval closed', () => {
    const { state } = plan(drafted)
      .when({ type: 'SupersedePlan', reason: 'user_message', superseded_by: 'm2' })
      .then([{ type: 'PlanSuperseded', data: { reason: 'user_message', superseded_by: 'm2', approval_request_id: 'ap1' } }]);
    expect(state.approvals[0]!.status).toBe('closed');
    given(planDecider, [], () => state).when(decide('approve')).thenFails('approval_closed');
  });

  it('a plan that was approved first is left alone', () => {
    plan(approved).when({ type: 'SupersedePlan', reason: 'user_message', superseded_by: 'm2' }).thenNothing();
  });
});

describe('plan decider: execution invariants (rules 5, 6)', () => {
  it('no execution without approval', () => {
    const error = plan(drafted).when({ type: 'StartExecution', max_parallel: 2 }).thenFails('illegal_transition');
    expect(error.message).toBe('StartExecution is not allowed in fsm_state plan_review; legal here: DecidePlan, ExpireApproval, SupersedePlan, CancelPlan');
    expect(error.details).toMatchObject({ fsm_state: 'plan_review', plan_status: 'awaiting_approval' });
    plan(approved).when({ type: 'StartExecution', max_parallel: 2 }).then([{ type: 'PlanExecutionStarted', data: { max_parallel: 2 } }]);
  });

  it('no subtask before its dependencies; independent ones run in parallel up to the limit', () => {
    plan(executing).when({ type: 'DispatchSubtask', subtask_id: 'c', now: NOW }).thenFails('dependencies_pending', /waits for a, b/);
    plan(executing).when({ type: 'DispatchSubtask', subtask_id: 'a', now: NOW }).then([dispatched('a')]);
    plan([...executing, dispatched('a')]).when({ type: 'DispatchSubtask', subtask_id: 'b', now: NOW }).then([dispatched('b')]);
    plan([...executing, dispatched('a'), dispatched('b')])
      .when({ type: 'DispatchSubtask', subtask_id: 'a', now: NOW })
      .thenFails('subtask_not_ready');
    const threeWide: PlanEvent[] = [...approved, { type: 'PlanExecutionStarted', data: { max_parallel: 1 } }, dispatched('a')];
    plan(threeWide).when({ type: 'DispatchSubtask', subtask_id: 'b', now: NOW }).thenFails('parallel_limit');
    plan([...executing, dispatched('a'), started('a'), succeeded('a'), dispatched('b'), started('b'), succeeded('b')])
      .when({ type: 'DispatchSubtask', subtask_id: 'c', now: NOW })
      .then([dispatched('c')]);
  });

  it('DispatchReady dispatches every ready subtask in one decision, within the limit, and nothing when none is ready', () => {
    plan(executing).when({ type: 'DispatchReady', now: NOW }).then([dispatched('a'), dispatched('b')]);
    const oneAtATime: PlanEvent[] = [...approved, { type: 'PlanExecutionStarted', data: { max_parallel: 1 } }];
    plan(oneAtATime).when({ type: 'DispatchReady', now: NOW }).then([dispatched('a')]);
    plan([...executing, dispatched('a'), dispatched('b')]).when({ type: 'DispatchReady', now: NOW }).thenNothing();
    plan([...executing, dispatched('a'), started('a'), succeeded('a'), dispatched('b'), started('b'), succeeded('b')])
      .when({ type: 'DispatchReady', now: NOW })
      .then([dispatched('c')]);
    // A retry waits for its time; a plan that stopped executing dispatches nothing.
    const retrying: PlanEvent[] = [
      ...executing,
      dispatched('a'),
      { type: 'SubtaskFailed', data: { subtask_id: 'a', attempt: 1, error: 'boom', will_retry: true } },
      { type: 'SubtaskRetryScheduled', data: { subtask_id: 'a', attempt: 2, not_before: later(10).toISOString() } },
      dispatched('b'),
    ];
    plan(retrying).when({ type: 'DispatchReady', now: NOW }).thenNothing();
    plan(retrying).when({ type: 'DispatchReady', now: later(10) }).then([{ type: 'SubtaskDispatched', data: { subtask_id: 'a', attempt: 2 } }]);
    plan([...executing, { type: 'PlanCancelled', data: {} }]).when({ type: 'DispatchReady', now: NOW }).thenNothing();
  });

  it('the last success completes the plan; a redelivered success is a no-op; a stale attempt is refused', () => {
    const almost: PlanEvent[] = [...executing, dispatched('a'), succeeded('a'), dispatched('b'), succeeded('b'), dispatched('c'), started('c')];
    const { state } = plan(almost)
      .when({ type: 'CompleteSubtask', subtask_id: 'c', attempt: 1 })
      .then([succeeded('c'), { type: 'PlanCompleted', data: {} }]);
    expect(state.status).toBe('completed');
    given(planDecider, [], () => state).when({ type: 'CompleteSubtask', subtask_id: 'c', attempt: 1 }).thenNothing();
    plan(almost).when({ type: 'CompleteSubtask', subtask_id: 'c', attempt: 2 }).thenFails('stale_attempt');
    plan(almost).when({ type: 'StartSubtask', subtask_id: 'c', attempt: 1 }).thenNothing();
  });

  it('a failure retries with exponential backoff, then goes to error handling (rule 5)', () => {
    const running: PlanEvent[] = [...executing, dispatched('a'), started('a')];
    const fail = (attempt: number): PlanCommand => ({
      type: 'FailSubtask', subtask_id: 'a', attempt, error: 'boom', now: NOW, max_attempts: 3, backoff_ms: 1000,
    });
    plan(running).when(fail(1)).then([
      { type: 'SubtaskFailed', data: { subtask_id: 'a', attempt: 1, error: 'boom', will_retry: true } },
      { type: 'SubtaskRetryScheduled', data: { subtask_id: 'a', attempt: 2, not_before: later(1).toISOString() } },
    ]);
    const retrying: PlanEvent[] = [
      ...running,
      { type: 'SubtaskFailed', data: { subtask_id: 'a', attempt: 1, error: 'boom', will_retry: true } },
      { type: 'SubtaskRetryScheduled', data: { subtask_id: 'a', attempt: 2, not_before: later(1).toISOString() } },
    ];
    plan(retrying).when({ type: 'DispatchSubtask', subtask_id: 'a', now: NOW }).thenFails('subtask_not_ready', /retried from/);
    plan(retrying).when({ type: 'DispatchSubtask', subtask_id: 'a', now: later(1) }).then([dispatched('a', 2)]);
    const secondTry: PlanEvent[] = [...retrying, dispatched('a', 2), started('a', 2)];
    plan(secondTry).when(fail(2)).then([
      { type: 'SubtaskFailed', data: { subtask_id: 'a', attempt: 2, error: 'boom', will_retry: true } },
      { type: 'SubtaskRetryScheduled', data: { subtask_id: 'a', attempt: 3, not_before: later(2).toISOString() } },
    ]);
    const lastTry: PlanEvent[] = [
      ...secondTry,
      { type: 'SubtaskFailed', data: { subtask_id: 'a', attempt: 2, error: 'boom', will_retry: true } },
      { type: 'SubtaskRetryScheduled', data: { subtask_id: 'a', attempt: 3, not_before: later(2).toISOString() } },
      dispatched('a', 3),
      started('a', 3),
    ];
    const { state } = plan(lastTry).when(fail(3)).then([failedFinally('a', 3)]);
    expect(state.status).toBe('error_handling');
  });

  it('error handling: re-plan, retry, fail or cancel — nothing else', () => {
    plan(inErrorHandling).when({ type: 'RequestReplan', reason: 'a keeps failing' }).then([
      { type: 'PlanReplanRequested', data: { reason: 'a keeps failing' } },
    ]);
    plan(inErrorHandling).when({ type: 'RetrySubtask', subtask_id: 'a', now: NOW }).then([
      { type: 'SubtaskRetryScheduled', data: { subtask_id: 'a', attempt: 2, not_before: NOW.toISOString() } },
    ]);
    plan(inErrorHandling).when({ type: 'RetrySubtask', subtask_id: 'b', now: NOW }).thenFails('subtask_not_failed');
    plan(inErrorHandling).when({ type: 'FailPlan', reason: 'gave up' }).then([{ type: 'PlanFailed', data: { reason: 'gave up' } }]);
    plan(inErrorHandling).when({ type: 'DispatchSubtask', subtask_id: 'b', now: NOW }).thenFails(
      'illegal_transition',
      /fsm_state error_handling; legal here: RequestReplan, RetrySubtask, FailPlan, CancelPlan/,
    );
  });
});

describe('plan decider: cancel and terminal states (rules 5, 7)', () => {
  const nonTerminal: Record<string, PlanEvent[]> = {
    awaiting_approval: drafted,
    replanning: [...drafted, { type: 'PlanModificationRequested', data: { approval_request_id: 'ap1', feedback: 'f' } }],
    approved,
    executing,
    error_handling: inErrorHandling,
  };
  for (const [status, history] of Object.entries(nonTerminal)) {
    it(`cancel works from ${status}`, () => {
      const { state } = plan(history).when({ type: 'CancelPlan', reason: 'user' }).then([{ type: 'PlanCancelled', data: { reason: 'user' } }]);
      expect(state.status).toBe('cancelled');
    });
  }

  it('cancel stops in-flight subtasks, so no work remains running or scheduled', () => {
    const { state } = plan([...executing, dispatched('a'), started('a'), dispatched('b')]).when({ type: 'CancelPlan' }).then([{ type: 'PlanCancelled', data: {} }]);
    expect(state.subtasks.map((s) => s.status)).toEqual(['cancelled', 'cancelled', 'pending']);
  });

  it('cancel twice is a no-op; cancelling a finished plan is refused', () => {
    plan([...drafted, { type: 'PlanCancelled', data: {} }]).when({ type: 'CancelPlan' }).thenNothing();
    plan([...drafted, { type: 'PlanRejected', data: { approval_request_id: 'ap1' } }])
      .when({ type: 'CancelPlan' })
      .thenFails('illegal_transition', /CancelPlan is not allowed in fsm_state idle; legal here: none/);
  });

  it('a cancelled plan accepts no more work', () => {
    plan([...executing, { type: 'PlanCancelled', data: {} }]).when({ type: 'DispatchSubtask', subtask_id: 'a', now: NOW }).thenFails('illegal_transition');
  });

  it('commands on a plan that does not exist are 404s', () => {
    plan([]).when(decide('approve')).thenFails('plan_not_found');
    plan([]).when({ type: 'CancelPlan' }).thenFails('plan_not_found');
    plan([]).when({ type: 'StartExecution', max_parallel: 1 }).thenFails('plan_not_found');
  });
});
