// The seed system's session state machine (DESIGN §4), which the IDE shows as `fsm_state`. It is never
// stored: it is derived by folding events, and deciders refuse commands whose transition it forbids.
import { conflict, type DomainError } from './errors.js';

export const FSM_STATES = [
  'idle',
  'classify',
  'plan_required',
  'architect_planning',
  'plan_review',
  'plan_execution',
  'execution',
  'error_handling',
  'completed',
] as const;
export type FsmState = (typeof FSM_STATES)[number];

/**
 * Legal transitions. The seed's table, plus two additions it lacked (see README, "Changes from the
 * seed"): error_handling → plan_execution (retry a failed subtask of a plan) and cancellation, which
 * may end any non-terminal state in `completed`.
 */
export const TRANSITIONS: Readonly<Record<FsmState, readonly FsmState[]>> = {
  idle: ['classify'],
  classify: ['execution', 'plan_required', 'idle'],
  plan_required: ['architect_planning'],
  architect_planning: ['plan_review', 'error_handling'],
  plan_review: ['plan_execution', 'idle', 'architect_planning'],
  plan_execution: ['completed', 'error_handling'],
  execution: ['completed', 'error_handling'],
  error_handling: ['architect_planning', 'execution', 'plan_execution', 'completed'],
  completed: ['idle'],
};

/**
 * States one command may pass through without stopping: a client-drafted plan goes classify →
 * plan_required → architect_planning at once, and a message after a finished task goes completed →
 * idle → classify.
 */
export const PASS_THROUGH: readonly FsmState[] = ['plan_required', 'idle'];

const step = (from: FsmState, to: FsmState) => from === to || TRANSITIONS[from].includes(to) || to === 'completed';

export function isLegalTransition(from: FsmState, to: FsmState): boolean {
  return step(from, to) || PASS_THROUGH.some((via) => step(from, via) && step(via, to));
}

/** The 409 for a command the current state does not allow: names the state and what is legal. */
export function illegalTransition(
  command: string,
  fsmState: FsmState,
  legalCommands: readonly string[],
  details: Record<string, unknown> = {},
): DomainError {
  const legal = legalCommands.length ? legalCommands.join(', ') : 'none';
  return conflict('illegal_transition', `${command} is not allowed in fsm_state ${fsmState}; legal here: ${legal}`, {
    command,
    fsm_state: fsmState,
    legal_transitions: TRANSITIONS[fsmState],
    legal_commands: legalCommands,
    ...details,
  });
}
