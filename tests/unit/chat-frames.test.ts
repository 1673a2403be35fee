// The chat client's decisions without a socket: a tool_call frame in, the answer frames out (with a
// real tool runner on a temp directory); typed lines as frames; any frame rendered without throwing.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { answerToolCall, parseApproval, toolDesk, type Approval, type Frame, type ToolCall } from '../../src/cli/chat/tool-calls.js';
import { toolRunner } from '../../src/cli/chat/tools.js';
import { openWorkspace } from '../../src/cli/chat/workspace.js';
import { parseInput } from '../../src/cli/chat/slash.js';
import { pendingAfter } from '../../src/cli/chat/approval-state.js';
import { renderFrame } from '../../src/cli/chat/render.js';

const root = mkdtempSync(join(tmpdir(), 'planline-chat-frames-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
writeFileSync(join(root, 'hello.txt'), 'hi\n');
const run = toolRunner(openWorkspace(root));

const call = (call_id: string, tool_name: string, args: unknown, requires_approval = false): Frame => ({
  type: 'tool_call',
  call_id,
  tool_name,
  arguments: args,
  requires_approval,
  run_id: 'run-1',
  subtask_id: 'form',
});

describe('answering a tool call', () => {
  it('a call that needs no approval runs and is answered with its result', async () => {
    expect(await answerToolCall(call('c1', 'read_file', { path: 'hello.txt' }), undefined, run)).toEqual([
      { type: 'tool_result', call_id: 'c1', tool_name: 'read_file', result: 'hi\n' },
    ]);
  });

  it('approved: hitl_decision approve, then the result; "always" remembers', async () => {
    const frames = await answerToolCall(call('c2', 'write_file', { path: 'new.txt', content: 'x' }, true), { decision: 'approve', remember: false }, run);
    expect(frames).toEqual([
      { type: 'hitl_decision', call_id: 'c2', decision: 'approve' },
      { type: 'tool_result', call_id: 'c2', tool_name: 'write_file', result: 'Wrote 1 bytes to new.txt' },
    ]);
    expect(readFileSync(join(root, 'new.txt'), 'utf8')).toBe('x');
    const always = await answerToolCall(call('c3', 'execute_command', { command: 'echo hi' }, true), { decision: 'approve', remember: true }, run);
    expect(always[0]).toEqual({ type: 'hitl_decision', call_id: 'c3', decision: 'approve', remember: true });
    expect(always[1]).toMatchObject({ type: 'tool_result', call_id: 'c3', result: { exit_code: 0, stdout: 'hi\n' } });
  });

  it('rejected: hitl_decision reject with the feedback, and nothing runs', async () => {
    const frames = await answerToolCall(call('c4', 'write_file', { path: 'rejected.txt', content: 'x' }, true), { decision: 'reject', feedback: 'not that file' }, run);
    expect(frames).toEqual([{ type: 'hitl_decision', call_id: 'c4', decision: 'reject', feedback: 'not that file' }]);
    expect(existsSync(join(root, 'rejected.txt'))).toBe(false);
  });

  it('a path outside the workspace is answered with an error, even when approved', async () => {
    const frames = await answerToolCall(call('c5', 'write_file', { path: '../escaped.txt', content: 'x' }, true), { decision: 'approve', remember: false }, run);
    expect(frames[1]).toMatchObject({ type: 'tool_result', call_id: 'c5', error: expect.stringMatching(/outside the workspace/) });
    expect(existsSync(join(root, '..', 'escaped.txt'))).toBe(false);
  });

  it('frames of unexpected shape: arguments as a JSON string are read; without call_id nothing is sent', async () => {
    expect(await answerToolCall(call('c6', 'read_file', '{"path":"hello.txt"}'), undefined, run)).toEqual([
      { type: 'tool_result', call_id: 'c6', tool_name: 'read_file', result: 'hi\n' },
    ]);
    expect(await answerToolCall({ type: 'tool_call', tool_name: 'read_file' }, undefined, run)).toEqual([]);
    expect(await answerToolCall(call('c7', 'read_file', [1, 2]), undefined, run)).toEqual([
      { type: 'tool_result', call_id: 'c7', tool_name: 'read_file', error: 'the arguments are not a JSON object' },
    ]);
    expect(await answerToolCall({ type: 'tool_call', call_id: 'c8' }, undefined, run)).toEqual([{ type: 'tool_result', call_id: 'c8', error: 'the tool call has no tool_name' }]);
  });

  it('answers typed at the prompt', () => {
    expect(parseApproval('y')).toEqual({ decision: 'approve', remember: false });
    expect(parseApproval(' YES ')).toEqual({ decision: 'approve', remember: false });
    expect(parseApproval('a')).toEqual({ decision: 'approve', remember: true });
    expect(parseApproval('n')).toEqual({ decision: 'reject' });
    expect(parseApproval('n use the other file')).toEqual({ decision: 'reject', feedback: 'use the other file' });
    expect(parseApproval('maybe')).toBeUndefined();
    expect(parseApproval('y please')).toBeUndefined();
    expect(parseApproval('')).toBeUndefined();
  });
});

describe('the tool desk', () => {
  function desk(answers: Approval[], autoApprove = false, before: (sent: Frame[]) => Promise<void> = async () => {}) {
    const sent: Frame[] = [];
    const asked: string[] = [];
    const d = toolDesk({
      run,
      autoApprove,
      ask: async (c: ToolCall) => {
        asked.push(c.call_id);
        await before(sent);
        return answers.shift() ?? { decision: 'reject' };
      },
      send: (frame) => sent.push(frame),
      note: () => {},
    });
    return { d, sent, asked };
  }

  it('asks about parallel calls one at a time, in order, and answers each once even when replayed', async () => {
    // The user answers only once the read that needs no approval is answered: it must not wait for the prompts.
    const readAnswered = async (sent: Frame[]) => {
      const deadline = Date.now() + 5_000;
      while (!sent.some((f) => f.call_id === 'r1')) {
        if (Date.now() > deadline) throw new Error('the read waited for the prompt');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    const { d, sent, asked } = desk([{ decision: 'approve', remember: false }, { decision: 'reject', feedback: 'no' }], false, readAnswered);
    expect(d.take(call('p1', 'write_file', { path: 'p1.txt', content: '1' }, true))).toBe(true);
    expect(d.take(call('p2', 'write_file', { path: 'p2.txt', content: '2' }, true))).toBe(true);
    expect(d.take(call('r1', 'read_file', { path: 'hello.txt' }))).toBe(true);
    // A reconnect replays a call already taken: ignored.
    expect(d.take(call('p1', 'write_file', { path: 'p1.txt', content: '1' }, true))).toBe(false);
    await d.idle();
    expect(asked).toEqual(['p1', 'p2']);
    const of = (id: string) => sent.filter((f) => f.call_id === id).map((f) => [f.type, f.decision ?? ('error' in f ? 'error' : 'result')]);
    expect(of('r1')).toEqual([['tool_result', 'result']]);
    expect(of('p1')).toEqual([['hitl_decision', 'approve'], ['tool_result', 'result']]);
    expect(of('p2')).toEqual([['hitl_decision', 'reject']]);
    expect(existsSync(join(root, 'p1.txt'))).toBe(true);
    expect(existsSync(join(root, 'p2.txt'))).toBe(false);
    expect(d.waiting()).toBe(0);
  });

  it('with --yes nothing is asked: approved and run', async () => {
    const { d, sent, asked } = desk([], true);
    d.take(call('y1', 'execute_command', { command: 'echo yes' }, true));
    await d.idle();
    expect(asked).toEqual([]);
    expect(sent.map((f) => f.type)).toEqual(['hitl_decision', 'tool_result']);
  });
});

describe('typed lines', () => {
  const pending = { pendingApproval: 'apr-1' };
  const none = { pendingApproval: undefined };

  it('plain text is a user message; slash commands become their frames', () => {
    expect(parseInput('  add a login form ', none)).toEqual({ kind: 'send', frame: { type: 'user_message', content: 'add a login form', role: 'user' } });
    expect(parseInput('/approve', pending)).toEqual({ kind: 'send', frame: { type: 'plan_decision', approval_request_id: 'apr-1', decision: 'approve' } });
    expect(parseInput('/reject', pending)).toEqual({ kind: 'send', frame: { type: 'plan_decision', approval_request_id: 'apr-1', decision: 'reject' } });
    expect(parseInput('/reject too big', pending)).toEqual({ kind: 'send', frame: { type: 'plan_decision', approval_request_id: 'apr-1', decision: 'reject', feedback: 'too big' } });
    expect(parseInput('/modify split the api', pending)).toEqual({ kind: 'send', frame: { type: 'plan_decision', approval_request_id: 'apr-1', decision: 'modify', feedback: 'split the api' } });
    expect(parseInput('/cancel', none)).toEqual({ kind: 'send', frame: { type: 'cancel' } });
    expect(parseInput('/cancel wrong repo', none)).toEqual({ kind: 'send', frame: { type: 'cancel', reason: 'wrong repo' } });
    expect(parseInput('/agent Debug', none)).toEqual({ kind: 'send', frame: { type: 'switch_agent', agent_type: 'debug' } });
    expect(parseInput('/help', none)).toEqual({ kind: 'help' });
    expect(parseInput('/quit', none)).toEqual({ kind: 'quit' });
    expect(parseInput('   ', none)).toEqual({ kind: 'nothing' });
  });

  it('commands that cannot be sent as typed are problems, and send nothing', () => {
    expect(parseInput('/approve', none)).toEqual({ kind: 'problem', message: 'no plan is waiting for your decision' });
    expect(parseInput('/modify', pending).kind).toBe('problem');
    expect(parseInput('/approve now', pending).kind).toBe('problem');
    expect(parseInput('/agent', none).kind).toBe('problem');
    expect(parseInput('/agent wizard', none).kind).toBe('problem');
    expect(parseInput('/frobnicate', none)).toEqual({ kind: 'problem', message: 'unknown command /frobnicate' });
  });
});

describe('lines while a tool call is being asked about', () => {
  const asking = { pendingApproval: 'apr-1', askingAboutTool: true };

  it('answers it (in order, one line each); slash commands still work; anything else asks again', () => {
    expect(parseInput('y', asking)).toEqual({ kind: 'answer', approval: { decision: 'approve', remember: false } });
    expect(parseInput('n wrong file', asking)).toEqual({ kind: 'answer', approval: { decision: 'reject', feedback: 'wrong file' } });
    expect(parseInput('a', asking)).toEqual({ kind: 'answer', approval: { decision: 'approve', remember: true } });
    expect(parseInput('what does it do?', asking)).toEqual({ kind: 'ask_again' });
    expect(parseInput('', asking)).toEqual({ kind: 'ask_again' });
    expect(parseInput('/quit', asking)).toEqual({ kind: 'quit' });
    expect(parseInput('/approve', asking)).toEqual({ kind: 'send', frame: { type: 'plan_decision', approval_request_id: 'apr-1', decision: 'approve' } });
    // Not asking: "y" is just a message.
    expect(parseInput('y', { pendingApproval: undefined })).toEqual({ kind: 'send', frame: { type: 'user_message', content: 'y', role: 'user' } });
  });
});

describe('the plan approval waiting for the user', () => {
  const required = { type: 'plan_approval_required', plan_id: 'p1', approval_request_id: 'a1' };
  it('opens with plan_approval_required, closes with the plan\'s outcome, follows a snapshot', () => {
    const open = pendingAfter(undefined, required);
    expect(open).toEqual({ approval_request_id: 'a1', plan_id: 'p1' });
    expect(pendingAfter(open, { type: 'status', content: 'x' })).toBe(open);
    for (const type of ['plan_approved', 'plan_rejected', 'plan_modification_requested', 'plan_expired', 'plan_superseded', 'plan_cancelled']) {
      expect(pendingAfter(open, { type, plan_id: 'p1' })).toBeUndefined();
    }
    // Another plan's outcome leaves this one waiting.
    expect(pendingAfter(open, { type: 'plan_cancelled', plan_id: 'p0' })).toBe(open);
    // Fields nested in metadata, as older frames had them.
    expect(pendingAfter(undefined, { type: 'plan_approval_required', metadata: { approval_request_id: 'a2', plan_id: 'p2' } })).toEqual({ approval_request_id: 'a2', plan_id: 'p2' });
    const snapshot = { type: 'snapshot', offset: 7, metadata: { pending_approvals: [{ approval_request_id: 'a3', request_type: 'plan', details: { plan_id: 'p3' } }] } };
    expect(pendingAfter(undefined, snapshot)).toEqual({ approval_request_id: 'a3', plan_id: 'p3' });
    expect(pendingAfter(open, { type: 'snapshot', offset: 8, metadata: { pending_approvals: [] } })).toBeUndefined();
    expect(pendingAfter(open, { type: 'snapshot', metadata: 'odd' })).toBeUndefined();
  });
});

describe('rendering frames', () => {
  const summary = {
    plan_id: 'p1',
    goal: 'Add login',
    total_estimated_time: '25 min',
    subtasks: [
      { id: 'form', description: 'Login form', agent: 'coder', dependencies: [], estimated_time: '10 min' },
      { id: 'e2e', description: 'End-to-end test', agent: 'debug', dependencies: ['form'], estimated_time: '15 min' },
    ],
  };

  it('shows plans with their subtasks and string estimates, progress, errors', () => {
    expect(renderFrame({ type: 'plan_approval_required', plan_id: 'p1', approval_request_id: 'a1', plan_summary: summary, deadline: '2026-01-01T00:05:00Z' })).toEqual([
      '[approval] plan p1 needs your decision before 2026-01-01T00:05:00Z',
      '  goal: Add login (about 25 min)',
      '  1. form: Login form [coder] ~10 min',
      '  2. e2e: End-to-end test [debug] ~15 min after form',
      '  type /approve, /reject [feedback] or /modify <feedback>',
    ]);
    expect(renderFrame({ type: 'subtask_completed', subtask_id: 'form', progress: { total: 2, done: 1, failed: 0, running: 0, pending: 1, percentage: 50 } })).toEqual([
      '[subtask] form completed [#####-----] 1/2 done, 0 running, 0 failed, 1 pending 50%',
    ]);
    expect(renderFrame({ type: 'error', code: 'already_decided', content: 'the plan was approved' })).toEqual(['[error] already_decided: the plan was approved']);
    expect(renderFrame({ type: 'assistant_message', content: 'one\ntwo', agent_type: 'coder' })).toEqual(['coder> one', '  two']);
    expect(renderFrame({ type: 'tool_call', call_id: 'c1', tool_name: 'read_file', arguments: { path: 'a' }, requires_approval: true })).toEqual([
      '[tool] read_file {"path":"a"} [c1] (needs approval)',
    ]);
    expect(renderFrame({ type: 'something_new', content: 'from a newer server' })).toEqual(['[something_new] from a newer server']);
  });

  it('never throws on a frame of unexpected shape', () => {
    const odd: Frame[] = [
      { type: 'plan_approval_required', plan_summary: 'not an object' },
      { type: 'plan_created', plan_summary: { subtasks: [null, 3, { id: 5, dependencies: 'x' }] } },
      { type: 'subtask_failed', progress: [] },
      { type: 'snapshot', metadata: { pending_approvals: [null] } },
      { type: 'status', metadata: null },
      { type: 'execution_completed', duration_seconds: 'soon' },
      { type: 'error' },
      { type: 'agent_switched', metadata: 7 },
      { type: 'resync', metadata: 'x' },
    ];
    for (const frame of odd) expect(() => renderFrame(frame)).not.toThrow();
  });
});
