// The run decider, given/when/then: past run events, a command, the events it decides (or its refusal).
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/events/catalog.js';
import { readyForTurn, runDecider, type RunCommand } from '../../src/commands/run.js';
import { callIdFor, runOfCall } from '../../src/commands/run-commands.js';
import { given as givenDecider } from '../support/given.js';

const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
const started: RunEvent = { type: 'RunStarted', data: { run_id: 'r1', session_id: 's1', kind: 'atomic', agent: 'coder', task: 'add a file' } };
const call0 = callIdFor('r1', 1, 0);
const call1 = callIdFor('r1', 1, 1);
const writeArgs = { path: 'src/a.ts', content: 'export {}' };

const replied = (turn: number, content: string | null, calls: number): RunEvent => ({
  type: 'AgentReplied',
  data: {
    turn,
    content,
    tool_calls: Array.from({ length: calls }, (_, i) => ({ id: `m${turn}.${i}`, name: i === 0 ? 'write_file' : 'read_file', arguments: '{}' })),
    finish_reason: calls > 0 ? 'tool_calls' : 'stop',
    usage,
  },
});
const requested = (callId: string, tool: string, args: Record<string, unknown>, approval: boolean): RunEvent => ({
  type: 'ToolCallRequested',
  data: { call_id: callId, tool_name: tool, arguments: args, requires_approval: approval },
});
/** Turn 1 asked for two calls: write_file (needs approval) and read_file. */
const waiting: RunEvent[] = [started, replied(1, null, 2), requested(call0, 'write_file', writeArgs, true), requested(call1, 'read_file', { path: 'README.md' }, false)];

const given = (history: RunEvent[]) => givenDecider(runDecider, history, (s) => ({ ...s, run_id: 'r1' }));

const turn = (n: number, extra: Partial<Extract<RunCommand, { type: 'RecordTurn' }>> = {}): RunCommand => ({
  type: 'RecordTurn',
  turn: n,
  content: null,
  tool_calls: [{ id: `m${n}.0`, name: 'write_file', arguments: '{}' }],
  finish_reason: 'tool_calls',
  usage,
  calls: [{ call_id: callIdFor('r1', n, 0), tool_name: 'write_file', arguments: writeArgs, requires_approval: true }],
  max_turns: 5,
  ...extra,
});

describe('run decider', () => {
  it('starts a run once; a redelivered start changes nothing', () => {
    given([]).when({ type: 'StartRun', run: started.data as Extract<RunEvent, { type: 'RunStarted' }>['data'] }).then([started]);
    given([started]).when({ type: 'StartRun', run: started.data as Extract<RunEvent, { type: 'RunStarted' }>['data'] }).thenNothing();
  });

  it('commands for a run that never started are run_not_found', () => {
    given([]).when({ type: 'AnswerToolCall', call_id: call0, result: {} }).thenFails('run_not_found');
    given([]).when({ type: 'CancelRun' }).thenFails('run_not_found');
    given([]).when(turn(1)).thenFails('run_not_found');
  });

  it('records a turn that asks for tools: the reply, then each call sent to the IDE or refused', () => {
    const { state } = given([started])
      .when(
        turn(1, {
          calls: [
            { call_id: call0, tool_name: 'write_file', arguments: writeArgs, requires_approval: true, policy: 'write_file changes the project' },
            { call_id: call1, tool_name: 'rm', error: 'unknown tool "rm"' },
          ],
        }),
      )
      .then([
        { type: 'AgentReplied', data: { turn: 1, content: null, tool_calls: [{ id: 'm1.0', name: 'write_file', arguments: '{}' }], finish_reason: 'tool_calls', usage } },
        { type: 'ToolCallRequested', data: { call_id: call0, tool_name: 'write_file', arguments: writeArgs, requires_approval: true, policy: 'write_file changes the project' } },
        { type: 'ToolCallRefused', data: { call_id: call1, tool_name: 'rm', error: 'unknown tool "rm"' } },
      ]);
    expect(Object.keys(state.pending)).toEqual([call0]);
    expect(readyForTurn(state)).toBe(false);
  });

  it('a final answer succeeds the run in the same commit', () => {
    given([started])
      .when(turn(1, { content: 'Done.', tool_calls: [], calls: [], finish_reason: 'stop', final: 'Done.' }))
      .then([
        { type: 'AgentReplied', data: { turn: 1, content: 'Done.', tool_calls: [], finish_reason: 'stop', usage } },
        { type: 'RunSucceeded', data: { result: 'Done.' } },
      ]);
  });

  it('a redelivered turn changes nothing; a turn out of order or while calls wait is turn_not_ready', () => {
    given(waiting).when(turn(1)).thenNothing();
    given(waiting).when(turn(2)).thenFails('turn_not_ready');
    given([started]).when(turn(2)).thenFails('turn_not_ready');
  });

  it('stops a model that keeps calling tools at max_turns', () => {
    const { events } = given([started]).when(turn(1, { max_turns: 1 })).then([
      { type: 'AgentReplied', data: { turn: 1, content: null, tool_calls: [{ id: 'm1.0', name: 'write_file', arguments: '{}' }], finish_reason: 'tool_calls', usage } },
      { type: 'ToolCallRequested', data: { call_id: callIdFor('r1', 1, 0), tool_name: 'write_file', arguments: writeArgs, requires_approval: true } },
      { type: 'RunFailed', data: { error: 'the agent did not finish within 1 turns', code: 'too_many_turns' } },
    ]);
    expect(events).toHaveLength(3);
  });

  it('takes a result for a waiting call; the run is ready for its next turn once every call is answered', () => {
    const first = given(waiting).when({ type: 'AnswerToolCall', call_id: call1, result: { content: '# readme' } }).then([
      { type: 'ToolResultReceived', data: { call_id: call1, result: { content: '# readme' } } },
    ]);
    expect(readyForTurn(first.state)).toBe(false);
    const second = given([...waiting, ...first.events]).when({ type: 'AnswerToolCall', call_id: call0, error: 'disk full' }).then([
      { type: 'ToolResultReceived', data: { call_id: call0, error: 'disk full' } },
    ]);
    expect(readyForTurn(second.state)).toBe(true);
    expect(second.state.turns.slice(1)).toEqual([
      { type: 'tool_result', call_id: call1, result: { content: '# readme' } },
      { type: 'tool_error', call_id: call0, error: 'disk full' },
    ]);
  });

  it('a result without one is recorded as null; any JSON is a result', () => {
    given(waiting).when({ type: 'AnswerToolCall', call_id: call1 }).then([{ type: 'ToolResultReceived', data: { call_id: call1, result: null } }]);
    given(waiting).when({ type: 'AnswerToolCall', call_id: call1, result: ['a', 1] }).then([{ type: 'ToolResultReceived', data: { call_id: call1, result: ['a', 1] } }]);
  });

  it('an error saying "User rejected" is the user’s rejection, not a tool failure', () => {
    given(waiting).when({ type: 'AnswerToolCall', call_id: call0, error: ' User rejected the change ' }).then([
      { type: 'ToolCallRejected', data: { call_id: call0, feedback: 'User rejected the change' } },
    ]);
  });

  it('an answer for a call already answered changes nothing (an IDE resends after reconnecting)', () => {
    const answered: RunEvent[] = [...waiting, { type: 'ToolResultReceived', data: { call_id: call1, result: {} } }];
    given(answered).when({ type: 'AnswerToolCall', call_id: call1, result: { other: true } }).thenNothing();
    given(answered).when({ type: 'DecideToolCall', call_id: call1, decision: 'reject' }).thenNothing();
  });

  it('a call nobody asked for is unknown_call (404)', () => {
    const error = given(waiting).when({ type: 'AnswerToolCall', call_id: 'r1.9.9', result: {} }).thenFails('unknown_call');
    expect(error.status).toBe(404);
    given(waiting).when({ type: 'DecideToolCall', call_id: 'r1.9.9', decision: 'approve' }).thenFails('unknown_call');
  });

  it('approves a call once; an edit carries the arguments to run instead; remember is recorded', () => {
    const approved = given(waiting).when({ type: 'DecideToolCall', call_id: call0, decision: 'approve', remember: true }).then([
      { type: 'ToolCallApproved', data: { call_id: call0, remember: true } },
    ]);
    expect(approved.state.pending[call0]?.approved).toBe(true);
    given([...waiting, ...approved.events]).when({ type: 'DecideToolCall', call_id: call0, decision: 'approve' }).thenNothing();

    const edited = { path: 'src/b.ts', content: 'export {}' };
    const edit = given(waiting).when({ type: 'DecideToolCall', call_id: call0, decision: 'edit', modified_arguments: edited }).then([
      { type: 'ToolCallApproved', data: { call_id: call0, modified_arguments: edited } },
    ]);
    expect(edit.state.pending[call0]?.arguments).toEqual(edited);
    given(waiting).when({ type: 'DecideToolCall', call_id: call0, decision: 'edit' }).thenFails('validation_failed');
  });

  it('a rejection answers the call with the user’s feedback (blank feedback is left out)', () => {
    const rejected = given(waiting).when({ type: 'DecideToolCall', call_id: call0, decision: 'reject', feedback: ' not that file ' }).then([
      { type: 'ToolCallRejected', data: { call_id: call0, feedback: 'not that file' } },
    ]);
    expect(rejected.state.pending[call0]).toBeUndefined();
    expect(rejected.state.turns.at(-1)).toEqual({ type: 'tool_rejected', call_id: call0, feedback: 'not that file' });
    given(waiting).when({ type: 'DecideToolCall', call_id: call0, decision: 'reject', feedback: '  ' }).then([{ type: 'ToolCallRejected', data: { call_id: call0 } }]);
  });

  it('fails and cancels a running run once; answers after the end change nothing', () => {
    given(waiting).when({ type: 'FailRun', error: 'no model configured', code: 'no_model' }).then([{ type: 'RunFailed', data: { error: 'no model configured', code: 'no_model' } }]);
    given(waiting).when({ type: 'CancelRun', reason: 'stop' }).then([{ type: 'RunCancelled', data: { reason: 'stop' } }]);
    const cancelled: RunEvent[] = [...waiting, { type: 'RunCancelled', data: {} }];
    given(cancelled).when({ type: 'CancelRun' }).thenNothing();
    given(cancelled).when({ type: 'FailRun', error: 'late' }).thenNothing();
    given(cancelled).when({ type: 'AnswerToolCall', call_id: call1, result: {} }).thenNothing();
    given(cancelled).when({ type: 'DecideToolCall', call_id: call0, decision: 'approve' }).thenNothing();
    given(cancelled).when(turn(1)).thenNothing();
    given(cancelled).when(turn(2)).thenFails('run_finished');
  });

  it('folds usage over turns', () => {
    const { state } = given([started, replied(1, null, 0), replied(2, 'ok', 0)]);
    expect(state.usage).toEqual({ prompt_tokens: 20, completion_tokens: 10, total_tokens: 30 });
    expect(state.turn).toBe(2);
  });

  it('call ids name their run, so an answer needs no lookup', () => {
    expect(callIdFor('run-7.x', 3, 1)).toBe('run-7.x.3.1');
    expect(runOfCall('run-7.x.3.1')).toBe('run-7.x');
    expect(runOfCall('call-1')).toBeUndefined();
  });
});
