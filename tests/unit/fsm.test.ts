// Every transition of the seed state machine (DESIGN §4), driven through the deciders where a
// decider owns it, and checked against the table; plus the illegal ones.
import { describe, expect, it } from 'vitest';
import type { PlanEvent, SessionEvent } from '../../src/events/catalog.js';
import { FSM_STATES, isLegalTransition, TRANSITIONS, type FsmState } from '../../src/commands/fsm.js';
import { planDecider, type PlanCommand, type PlanState } from '../../src/commands/plan.js';
import { sessionDecider, sessionFsmState, type SessionCommand, type SessionState } from '../../src/commands/session.js';

const NOW = new Date('2026-11-20T10:00:00.000Z');

/** A session and its current plan, driven by commands (or, where no decider owns the step, events). */
function journey() {
  let session: SessionState = { ...sessionDecider.initialState(), session_id: 's1' };
  let plan: PlanState = { ...planDecider.initialState(), plan_id: 'p1' };
  const states: FsmState[] = [];
  const fsm = () => sessionFsmState({ session, plan: session.current_plan_id ? plan : undefined });
  const record = () => {
    const next = fsm();
    const previous = states.at(-1);
    if (previous !== undefined) expect(isLegalTransition(previous, next), `${previous} → ${next}`).toBe(true);
    states.push(next);
  };
  const j = {
    states,
    fsm,
    session: (command: SessionCommand) => {
      for (const e of sessionDecider.decide(command, { session, plan: session.current_plan_id ? plan : undefined })) session = sessionDecider.evolve(session, e);
      record();
      return j;
    },
    sessionEvent: (event: SessionEvent) => {
      session = sessionDecider.evolve(session, event);
      record();
      return j;
    },
    plan: (command: PlanCommand) => {
      for (const e of planDecider.decide(command, plan)) plan = planDecider.evolve(plan, e);
      record();
      return j;
    },
  };
  j.session({ type: 'StartSession', session_id: 's1', name: '', mode: 'auto', agent_type: 'universal' });
  return j;
}

const draft = (approval: string): PlanCommand => ({
  type: 'DraftPlan', plan_id: 'p1', session_id: 's1', goal: 'g', subtasks: [{ id: 'a', description: 'd' }], source: 'client',
  approval_request_id: approval, now: NOW, approval_timeout_s: 60, timeout_action: 'expire',
});
const message = (id: string): SessionCommand => ({ type: 'ReceiveUserMessage', message_id: id, content: 'x' });
const toPlanReview = () =>
  journey().session(message('m1')).session({ type: 'AttachPlan', plan_id: 'p1', source: 'client' }).plan(draft('ap1'));
const toExecution = () =>
  toPlanReview().plan({ type: 'DecidePlan', approval_request_id: 'ap1', decision: 'approve' }).plan({ type: 'StartExecution', max_parallel: 1 })
    .plan({ type: 'DispatchSubtask', subtask_id: 'a', now: NOW }).plan({ type: 'StartSubtask', subtask_id: 'a', attempt: 1 });
const toErrorHandling = () =>
  toExecution().plan({ type: 'FailSubtask', subtask_id: 'a', attempt: 1, error: 'e', now: NOW, max_attempts: 1, backoff_ms: 0 });

describe('seed FSM: legal transitions', () => {
  it('idle → classify → plan_required/architect_planning → plan_review', () => {
    expect(toPlanReview().states).toEqual(['idle', 'classify', 'architect_planning', 'plan_review']);
  });
  it('classify → execution (atomic) and classify → idle (classification error)', () => {
    expect(journey().session(message('m1')).sessionEvent({ type: 'TaskClassified', data: { kind: 'atomic', source: 'heuristic' } }).fsm()).toBe('execution');
    expect(journey().session(message('m1')).sessionEvent({ type: 'TaskClassificationFailed', data: { reason: 'model down' } }).fsm()).toBe('idle');
  });
  it('plan_review → plan_execution (approve)', () => {
    expect(toPlanReview().plan({ type: 'DecidePlan', approval_request_id: 'ap1', decision: 'approve' }).fsm()).toBe('plan_execution');
  });
  it('plan_review → idle (reject, or expiry)', () => {
    expect(toPlanReview().plan({ type: 'DecidePlan', approval_request_id: 'ap1', decision: 'reject' }).fsm()).toBe('idle');
    expect(toPlanReview().plan({ type: 'ExpireApproval', approval_request_id: 'ap1', now: new Date(NOW.getTime() + 60_000) }).fsm()).toBe('idle');
  });
  it('plan_review → architect_planning (modify) → plan_review (new revision)', () => {
    const j = toPlanReview().plan({ type: 'DecidePlan', approval_request_id: 'ap1', decision: 'modify', feedback: 'more' });
    expect(j.fsm()).toBe('architect_planning');
    expect(j.plan(draft('ap2')).fsm()).toBe('plan_review');
  });
  it('plan_execution → completed', () => {
    expect(toExecution().plan({ type: 'CompleteSubtask', subtask_id: 'a', attempt: 1 }).fsm()).toBe('completed');
  });
  it('plan_execution → error_handling → architect_planning (re-plan) | plan_execution (retry) | completed (fail, cancel)', () => {
    expect(toErrorHandling().fsm()).toBe('error_handling');
    expect(toErrorHandling().plan({ type: 'RequestReplan', reason: 'r' }).fsm()).toBe('architect_planning');
    expect(toErrorHandling().plan({ type: 'RetrySubtask', subtask_id: 'a', now: NOW }).fsm()).toBe('plan_execution');
    expect(toErrorHandling().plan({ type: 'FailPlan', reason: 'r' }).fsm()).toBe('completed');
    expect(toErrorHandling().plan({ type: 'CancelPlan' }).fsm()).toBe('completed');
  });
  it('completed → idle → classify on the next message', () => {
    const j = toExecution().plan({ type: 'CompleteSubtask', subtask_id: 'a', attempt: 1 });
    expect(j.session(message('m2')).fsm()).toBe('classify');
  });
});

describe('seed FSM: the table', () => {
  it('names every state and only known states', () => {
    for (const state of FSM_STATES) for (const to of TRANSITIONS[state]) expect(FSM_STATES).toContain(to);
  });
  it('forbids what the seed forbids (e.g. idle → plan_execution, plan_review → execution)', () => {
    expect(isLegalTransition('idle', 'plan_execution')).toBe(false);
    expect(isLegalTransition('plan_review', 'execution')).toBe(false);
    expect(isLegalTransition('completed', 'plan_review')).toBe(false);
    expect(isLegalTransition('plan_required', 'plan_review')).toBe(false);
  });
  it('lets cancellation end any state', () => {
    for (const state of FSM_STATES) expect(isLegalTransition(state, 'completed')).toBe(true);
  });
});
