// The run decider: one agent run (an atomic task, or one attempt of a subtask), turn by turn. A worker
// records each model turn (RecordTurn); the IDE answers the tool calls it asked for (AnswerToolCall,
// DecideToolCall); once every call of the last turn is answered the run is ready for its next turn.
// The conversation is the fold of this stream, so any worker can take any turn. Pure.
import type { AgentType, RunEvent } from '../events/catalog.js';
import type { RunTurn } from '../agents/agent-step.js';
import { addUsage, ZERO_USAGE, type Usage } from '../agents/model.js';
import type { Decider } from './decider.js';
import { conflict, DomainError } from './errors.js';

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'cancelled';
export const isTerminalRun = (status: RunStatus) => status !== 'running';

export interface PendingCall {
  call_id: string;
  tool_name: string;
  arguments: Record<string, unknown>;
  requires_approval: boolean;
  approved: boolean;
  /** Which turn asked for it. */
  turn: number;
}

export interface RunState {
  exists: boolean;
  run_id: string;
  session_id: string;
  kind: 'atomic' | 'subtask';
  agent: AgentType;
  task: string;
  plan_id?: string | undefined;
  subtask_id?: string | undefined;
  attempt?: number | undefined;
  goal?: string | undefined;
  dependencies?: ReadonlyArray<{ id: string; description: string; result?: string | undefined }> | undefined;
  conversation?: ReadonlyArray<{ role: 'user' | 'assistant'; content: string }> | undefined;
  status: RunStatus;
  /** Model turns recorded so far. */
  turn: number;
  /** Everything said, in order: what the model sees on its next turn. */
  turns: readonly RunTurn[];
  /** Tool calls of the last turn still waiting for the IDE, by call id. */
  pending: Readonly<Record<string, PendingCall>>;
  usage: Usage;
  result?: string | undefined;
  error?: string | undefined;
  /** Why it failed, as a code (no_model_configured, tool_call_timeout, too_many_turns, agent_failed). */
  error_code?: string | undefined;
}

export const initialRunState = (): RunState => ({
  exists: false,
  run_id: '',
  session_id: '',
  kind: 'atomic',
  agent: 'universal',
  task: '',
  status: 'running',
  turn: 0,
  turns: [],
  pending: {},
  usage: ZERO_USAGE,
});

/** The run waits for no tool answer and may take its next model turn. */
export const readyForTurn = (state: RunState) => state.exists && state.status === 'running' && Object.keys(state.pending).length === 0;

export type RunStart = Extract<RunEvent, { type: 'RunStarted' }>['data'];

export type RecordedCall =
  | { call_id: string; tool_name: string; arguments: Record<string, unknown>; requires_approval: boolean; policy?: string | undefined }
  | { call_id: string; tool_name: string; error: string };

export type RunCommand =
  | { type: 'StartRun'; run: RunStart }
  | {
      type: 'RecordTurn';
      turn: number;
      content: string | null;
      /** As the model said them (raw JSON arguments). */
      tool_calls: ReadonlyArray<{ id: string; name: string; arguments: string }>;
      finish_reason: string;
      usage: Usage;
      model?: string | undefined;
      /** Each call as the tool policy and the agent's rules decided it (sent to the IDE, or refused). */
      calls: readonly RecordedCall[];
      /** Set on a final answer: the run succeeds with it. */
      final?: string | undefined;
      max_turns: number;
    }
  | { type: 'AnswerToolCall'; call_id: string; result?: unknown; error?: string | undefined }
  | {
      type: 'DecideToolCall';
      call_id: string;
      decision: 'approve' | 'edit' | 'reject';
      modified_arguments?: Record<string, unknown> | undefined;
      feedback?: string | undefined;
      remember?: boolean | undefined;
    }
  | { type: 'FailRun'; error: string; code?: string | undefined }
  | { type: 'CancelRun'; reason?: string | undefined };

export const runNotFound = (runId: string) => new DomainError('run_not_found', 404, `run ${runId} does not exist`, { run_id: runId });
export const callNotFound = (callId: string) =>
  new DomainError('unknown_call', 404, `no tool call ${callId} is waiting for an answer`, { call_id: callId });

/** A tool_result whose error says the user rejected the call is a rejection, not a tool failure (the seed's convention). */
export const isUserRejection = (error: string | undefined) => error !== undefined && /^user rejected/i.test(error.trim());

function requireRunning(command: RunCommand, state: RunState): void {
  if (!state.exists) throw runNotFound(state.run_id);
  if (state.status !== 'running') {
    throw conflict('run_finished', `run ${state.run_id} is ${state.status}; ${command.type} changes nothing`, {
      run_id: state.run_id,
      status: state.status,
    });
  }
}

/** An answer for a call already answered, or for a run that ended since, changes nothing (an IDE resends after reconnecting). */
function answered(state: RunState, callId: string): boolean {
  if (state.pending[callId]) return false;
  return state.turns.some((t) => t.type !== 'assistant' && t.call_id === callId);
}

export function decideRun(command: RunCommand, state: RunState): RunEvent[] {
  switch (command.type) {
    case 'StartRun':
      if (state.exists) return []; // the same run started again (a redelivered dispatch)
      return [{ type: 'RunStarted', data: command.run }];

    case 'RecordTurn': {
      if (state.exists && state.turn >= command.turn) return []; // a redelivered turn job
      requireRunning(command, state);
      if (command.turn !== state.turn + 1 || Object.keys(state.pending).length > 0) {
        throw conflict('turn_not_ready', `run ${state.run_id} is at turn ${state.turn} and waits for ${Object.keys(state.pending).length} tool answer(s)`, {
          run_id: state.run_id,
          turn: state.turn,
        });
      }
      const events: RunEvent[] = [
        {
          type: 'AgentReplied',
          data: {
            turn: command.turn,
            content: command.content,
            tool_calls: command.tool_calls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })),
            finish_reason: command.finish_reason,
            usage: command.usage,
            ...(command.model !== undefined ? { model: command.model } : {}),
          },
        },
      ];
      if (command.final !== undefined) return [...events, { type: 'RunSucceeded', data: { result: command.final } }];
      for (const call of command.calls) {
        events.push(
          'error' in call
            ? { type: 'ToolCallRefused', data: { call_id: call.call_id, tool_name: call.tool_name, error: call.error } }
            : {
                type: 'ToolCallRequested',
                data: {
                  call_id: call.call_id,
                  tool_name: call.tool_name,
                  arguments: call.arguments,
                  requires_approval: call.requires_approval,
                  ...(call.policy !== undefined ? { policy: call.policy } : {}),
                },
              },
        );
      }
      // A model that keeps calling tools forever is stopped: the run fails with what it was doing.
      if (command.turn >= command.max_turns) {
        events.push({ type: 'RunFailed', data: { error: `the agent did not finish within ${command.max_turns} turns`, code: 'too_many_turns' } });
      }
      return events;
    }

    case 'AnswerToolCall': {
      if (!state.exists) throw runNotFound(state.run_id);
      if (answered(state, command.call_id)) return [];
      const call = state.pending[command.call_id];
      if (!call) throw callNotFound(command.call_id);
      // A result for a run that ended meanwhile (cancelled, timed out) is too late: it changes nothing.
      if (state.status !== 'running') return [];
      if (isUserRejection(command.error)) {
        return [{ type: 'ToolCallRejected', data: { call_id: call.call_id, feedback: command.error!.trim() } }];
      }
      return [
        {
          type: 'ToolResultReceived',
          data: {
            call_id: call.call_id,
            ...(command.error !== undefined ? { error: command.error } : { result: command.result ?? null }),
          },
        },
      ];
    }

    case 'DecideToolCall': {
      if (!state.exists) throw runNotFound(state.run_id);
      if (answered(state, command.call_id)) return [];
      const call = state.pending[command.call_id];
      if (!call) throw callNotFound(command.call_id);
      if (state.status !== 'running') return [];
      if (command.decision === 'reject') {
        return [{ type: 'ToolCallRejected', data: { call_id: call.call_id, ...(command.feedback?.trim() ? { feedback: command.feedback.trim() } : {}) } }];
      }
      if (call.approved && command.decision === 'approve') return [];
      if (command.decision === 'edit' && command.modified_arguments === undefined) {
        throw new DomainError('validation_failed', 400, 'an edit decision needs modified_arguments', { field: 'modified_arguments' });
      }
      return [
        {
          type: 'ToolCallApproved',
          data: {
            call_id: call.call_id,
            ...(command.decision === 'edit' ? { modified_arguments: command.modified_arguments } : {}),
            ...(command.remember ? { remember: true } : {}),
          },
        },
      ];
    }

    case 'FailRun':
      if (!state.exists) throw runNotFound(state.run_id);
      if (state.status !== 'running') return [];
      return [{ type: 'RunFailed', data: { error: command.error, ...(command.code !== undefined ? { code: command.code } : {}) } }];

    case 'CancelRun':
      if (!state.exists) throw runNotFound(state.run_id);
      if (state.status !== 'running') return [];
      return [{ type: 'RunCancelled', data: command.reason !== undefined ? { reason: command.reason } : {} }];
  }
}

function withoutPending(pending: RunState['pending'], callId: string): RunState['pending'] {
  const { [callId]: _answered, ...rest } = pending;
  return rest;
}

export function evolveRun(state: RunState, event: RunEvent): RunState {
  switch (event.type) {
    case 'RunStarted': {
      const d = event.data;
      return {
        ...state,
        exists: true,
        run_id: d.run_id,
        session_id: d.session_id,
        kind: d.kind,
        agent: d.agent,
        task: d.task,
        plan_id: d.plan_id,
        subtask_id: d.subtask_id,
        attempt: d.attempt,
        goal: d.goal,
        dependencies: d.dependencies,
        conversation: d.conversation,
        status: 'running',
      };
    }
    case 'AgentReplied': {
      const d = event.data;
      return {
        ...state,
        turn: d.turn,
        turns: [...state.turns, { type: 'assistant', content: d.content, tool_calls: d.tool_calls }],
        usage: addUsage(state.usage, d.usage),
      };
    }
    case 'ToolCallRequested': {
      const d = event.data;
      return {
        ...state,
        pending: {
          ...state.pending,
          [d.call_id]: { call_id: d.call_id, tool_name: d.tool_name, arguments: d.arguments, requires_approval: d.requires_approval, approved: false, turn: state.turn },
        },
      };
    }
    case 'ToolCallRefused':
      return { ...state, turns: [...state.turns, { type: 'tool_error', call_id: event.data.call_id, error: event.data.error }] };
    case 'ToolCallApproved': {
      const call = state.pending[event.data.call_id];
      if (!call) return state;
      return {
        ...state,
        pending: {
          ...state.pending,
          [call.call_id]: { ...call, approved: true, ...(event.data.modified_arguments ? { arguments: event.data.modified_arguments } : {}) },
        },
      };
    }
    case 'ToolCallRejected':
      return {
        ...state,
        pending: withoutPending(state.pending, event.data.call_id),
        turns: [...state.turns, { type: 'tool_rejected', call_id: event.data.call_id, feedback: event.data.feedback }],
      };
    case 'ToolResultReceived': {
      const d = event.data;
      const turn: RunTurn = d.error !== undefined ? { type: 'tool_error', call_id: d.call_id, error: d.error } : { type: 'tool_result', call_id: d.call_id, result: d.result ?? null };
      return { ...state, pending: withoutPending(state.pending, d.call_id), turns: [...state.turns, turn] };
    }
    case 'RunSucceeded':
      return { ...state, status: 'succeeded', result: event.data.result };
    case 'RunFailed':
      return { ...state, status: 'failed', error: event.data.error, error_code: event.data.code };
    case 'RunCancelled':
      return { ...state, status: 'cancelled', error: event.data.reason ?? 'cancelled' };
    default:
      return state;
  }
}

export const runDecider = {
  initialState: initialRunState,
  decide: decideRun,
  evolve: evolveRun,
} as const satisfies Decider<RunState, RunCommand, RunEvent>;
