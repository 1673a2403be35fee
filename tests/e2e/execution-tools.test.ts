// A task end to end through an IDE socket, as a user would see it: a complex message is planned by the
// (scripted) architect, approved over the socket, its independent subtasks run in parallel, each agent
// asks the IDE to run tools (one needs the user's approval), the socket client answers every call, and
// the plan completes. Then the two ways a user refuses a tool: hitl_decision reject and a tool_result
// saying "User rejected"; the model sees the refusal with the user's feedback and the run goes on.
// The real `openai` client talks to a scripted OpenAI-compatible server; the server runs every role.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { client, startServer, type Client, type TestServer } from '../support/server.js';
import { startScriptedOpenAi, type RecordedRequest, type ScriptedOpenAi } from '../support/scripted-openai.js';
import { connect, type FeedClient, type Frame } from '../support/ws-client.js';
import { CLASSIFIER_SYSTEM_PROMPT } from '../../src/planning/classifier.js';
import { ARCHITECT_SYSTEM_PROMPT } from '../../src/planning/architect.js';
import { expectIdeModel, PendingApprovalsResponse } from '../support/ide-models.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runCli } from '../../src/cli/run.js';

let model: ScriptedOpenAi;
let server: TestServer;
let c: Client;

/** The text of the last user message of a request (the task an agent was given). */
const taskOf = (request: RecordedRequest) => String(request.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '');
const toolMessages = (request: RecordedRequest) => request.messages.filter((m) => m.role === 'tool').map((m) => String(m.content));

beforeAll(async () => {
  model = await startScriptedOpenAi({
    respond: (request) => {
      if (request.system === CLASSIFIER_SYSTEM_PROMPT) {
        const task = taskOf(request);
        return { content: JSON.stringify(/question/i.test(task) ? { kind: 'atomic', agent: 'coder', reason: 'one step' } : { kind: 'complex', reason: 'several parts' }) };
      }
      if (request.system === ARCHITECT_SYSTEM_PROMPT) {
        return {
          content: JSON.stringify({
            subtasks: [
              { id: 'read', description: 'Read the config', agent: 'coder', dependencies: [], estimated_time: '2 min' },
              { id: 'write', description: 'Write the new module', agent: 'coder', dependencies: [], estimated_time: 300 },
              { id: 'report', description: 'Report what changed', agent: 'coder', dependencies: ['read', 'write'] },
            ],
          }),
        };
      }
      // Agents: a first turn asks for a tool, the next one answers with what the tool said.
      const task = taskOf(request);
      const results = toolMessages(request);
      if (results.length > 0) return { content: `done: ${results.join(' | ')}` };
      if (/Read the config/.test(task)) return { toolCalls: [{ name: 'read_file', arguments: { path: 'config.json' } }] };
      if (/Write the new module/.test(task)) return { toolCalls: [{ name: 'write_file', arguments: { path: 'src/module.ts', content: 'export {};' } }] };
      if (/question: delete/i.test(task)) return { toolCalls: [{ name: 'write_file', arguments: { path: 'src/gone.ts', content: '' } }] };
      return { content: 'the report' };
    },
  });
  server = await startServer({ ROLES: 'all', OPENAI_BASE_URL: model.baseURL, OPENAI_API_KEY: 'test', SUBTASK_RETRY_BACKOFF_MS: '50' });
  c = client(server.api);
});

afterAll(async () => {
  await server?.dispose();
  await model?.close();
});

/** An IDE: answers every tool_call (approving first when asked), remembering what it was asked. */
function answerTools(socket: FeedClient, answer: (call: Frame) => Array<Record<string, unknown>>): Frame[] {
  const calls: Frame[] = [];
  const seen = new Set<string>();
  const timer = setInterval(() => {
    for (const frame of socket.frames) {
      if (frame.type !== 'tool_call' || seen.has(frame.call_id)) continue;
      seen.add(frame.call_id);
      calls.push(frame);
      for (const reply of answer(frame)) socket.send(reply);
    }
  }, 5);
  void socket.closed.then(() => clearInterval(timer));
  return calls;
}

describe('a task through the IDE socket, tools answered by the client', () => {
  test('message → plan → approve on the socket → parallel subtasks with tool round-trips → execution_completed', async () => {
    const session = (await c.post('/sessions', { name: 'tools' })).body.session_id as string;
    const socket = await connect(server.url, session, { since: 0 });
    try {
      const calls = answerTools(socket, (call) => [
        ...(call.requires_approval ? [{ type: 'hitl_decision', call_id: call.call_id, decision: 'approve' }] : []),
        { type: 'tool_result', call_id: call.call_id, tool_name: call.tool_name, result: `${call.tool_name} ok` },
      ]);
      socket.send({ type: 'user_message', content: 'Add a module that reads the config and writes a new file, then report' });
      const review = await socket.waitFor((f) => f.type === 'plan_approval_required', 10_000, 'the plan for review');
      expect(review.plan_summary.subtasks.map((s: { id: string }) => s.id)).toEqual(['read', 'write', 'report']);
      expect(review.plan_summary.subtasks[0].estimated_time).toBe('2 min');
      socket.send({ type: 'plan_decision', approval_request_id: review.approval_request_id, decision: 'approve' });

      const done = await socket.waitFor((f) => f.type === 'execution_completed', 15_000, 'execution_completed');
      expect(done).toMatchObject({ plan_id: review.plan_id, status: 'completed', progress: { total: 3, done: 3 } });
      expect(socket.invalid).toEqual([]);

      // Both independent subtasks asked for their tool before either had an answer: they ran in parallel.
      const byTool = Object.fromEntries(calls.map((call) => [call.tool_name, call]));
      expect(Object.keys(byTool).sort()).toEqual(['read_file', 'write_file']);
      expect(byTool.read_file).toMatchObject({ requires_approval: false, arguments: { path: 'config.json' } });
      expect(byTool.write_file).toMatchObject({ requires_approval: true, arguments: { path: 'src/module.ts' } });
      expect(typeof byTool.read_file!.call_id).toBe('string');
      const started = socket.frames.filter((f) => f.type === 'subtask_started').map((f) => f.subtask_id);
      expect(started.slice(0, 2).sort()).toEqual(['read', 'write']);
      const firstCompleted = socket.frames.findIndex((f) => f.type === 'subtask_completed');
      const secondStarted = socket.frames.findIndex((f) => f.type === 'subtask_started' && f.subtask_id === started[1]);
      expect(secondStarted).toBeLessThan(firstCompleted);

      // The dependent subtask's agent got its dependencies' results (the tools' answers).
      const report = model.requests.find((r) => /Report what changed/.test(taskOf(r)))!;
      expect(taskOf(report)).toMatch(/read_file ok/);
      expect(taskOf(report)).toMatch(/write_file ok/);
      // The plan's read shows the tokens its runs spent.
      const plan = (await c.get(`/plans/${review.plan_id}`)).body;
      expect(plan.status).toBe('completed');
    } finally {
      await socket.close();
    }
  });

  test('a call waiting for approval is a pending approval the IDE restores after a reconnect; deciding it closes it', async () => {
    const session = (await c.post('/sessions', { name: 'restore' })).body.session_id as string;
    const socket = await connect(server.url, session, { since: 0 });
    try {
      socket.send({ type: 'user_message', content: 'A question: delete the old module?' });
      const call = await socket.waitFor((f) => f.type === 'tool_call', 10_000, 'the tool call');
      expect(call.requires_approval).toBe(true);
      const pending = (await c.get(`/sessions/${session}/pending-approvals?wait_for=${(await c.get('/ready')).body.checks.event_store.detail}`)).body;
      expectIdeModel(PendingApprovalsResponse, pending, 'pending-approvals with a tool call');
      expect(pending.pending_approvals).toEqual([
        expect.objectContaining({ call_id: call.call_id, request_id: call.call_id, request_type: 'tool', tool_name: 'write_file', arguments: { path: 'src/gone.ts', content: '' } }),
      ]);
      // The IDE's approval dialog answers as a tool_result with its decision in metadata.
      socket.send({ type: 'tool_result', content: 'approved', metadata: { approval_request_id: call.call_id, decision: 'approved', approved: true } });
      await socket.waitFor((f) => f.type === 'status' && f.call_id === call.call_id, 5_000, 'the approval recorded');
      socket.send({ type: 'tool_result', call_id: call.call_id, tool_name: 'write_file', result: 'written' });
      await socket.waitFor((f) => f.type === 'assistant_message' && f.is_final === true, 10_000, 'the final answer');
      const after = (await c.get(`/sessions/${session}/pending-approvals?wait_for=${(await c.get('/ready')).body.checks.event_store.detail}`)).body;
      expect(after.count).toBe(0);
    } finally {
      await socket.close();
    }
  });

  test('an IDE joining later finds the waiting tool calls in its snapshot: planline chat runs them and the run finishes', async () => {
    const session = (await c.post('/sessions', { name: 'join later' })).body.session_id as string;
    const first = await connect(server.url, session, { since: 0 });
    let call: Frame;
    try {
      first.send({ type: 'user_message', content: 'A question: delete the old module?' });
      call = await first.waitFor((f) => f.type === 'tool_call', 10_000, 'the tool call');
    } finally {
      await first.close();
    }
    // The session moves on meanwhile (renamed): the calls still wait.
    expect((await c.send('PATCH', `/sessions/${session}`, { title: 'renamed while waiting' })).status).toBe(200);
    const joining = await connect(server.url, session);
    try {
      const snapshot = await joining.waitFor((f) => f.type === 'snapshot', 5_000, 'the snapshot');
      expect(snapshot.metadata.pending_tool_calls).toEqual([expect.objectContaining({ type: 'tool_call', call_id: call.call_id, tool_name: 'write_file', requires_approval: true })]);
    } finally {
      await joining.close();
    }

    const workspace = mkdtempSync(join(tmpdir(), 'planline-join-'));
    const stdin = new PassThrough();
    const out: string[] = [];
    const exit = runCli(['chat', '--url', server.url, '--session', session, '--yes', '--workspace', workspace], { out: (l) => out.push(l), err: (l) => out.push(l), env: {}, stdin });
    try {
      const run = await eventually(async () => (await c.get(`/runs/${call.run_id}`)).body, (r) => r.status === 'succeeded', 10_000);
      expect(run.status).toBe('succeeded');
      // chat approved it (--yes) and ran it here, then answered with what happened.
      const types = ((await c.get(`/streams/run-${call.run_id}`)).body.events as Array<{ type: string }>).map((e) => e.type);
      expect(types).toEqual(expect.arrayContaining(['ToolCallApproved', 'ToolResultReceived', 'RunSucceeded']));
      expect(out.join('\n')).toMatch(/write_file/);
    } finally {
      stdin.end();
      expect(await exit).toBe(0);
      rmSync(workspace, { recursive: true, force: true });
    }
  });

  test('a tool refused with hitl_decision reject, and one refused with a "User rejected" tool_result: the model hears it and the run goes on', async () => {
    for (const how of ['hitl', 'tool_result'] as const) {
      const session = (await c.post('/sessions', { name: `refuse ${how}` })).body.session_id as string;
      const socket = await connect(server.url, session, { since: 0 });
      try {
        answerTools(socket, (call) =>
          how === 'hitl'
            ? [{ type: 'hitl_decision', call_id: call.call_id, decision: 'reject', feedback: 'not that file' }]
            : [{ type: 'tool_result', call_id: call.call_id, tool_name: call.tool_name, error: 'User rejected the operation: not that file' }],
        );
        socket.send({ type: 'user_message', content: 'A question: delete the old module?' });
        const answer = await socket.waitFor((f) => f.type === 'assistant_message' && f.is_final === true, 10_000, 'the final answer');
        expect(answer.content).toMatch(/not that file/);
        const last = model.requests.filter((r) => /question: delete/i.test(taskOf(r))).at(-1)!;
        expect(toolMessages(last).join()).toMatch(/rejected[\s\S]*not that file/i);
        const events = (await c.get(`/streams/run-${answer.run_id}`)).body.events as Array<{ type: string }>;
        expect(events.map((e) => e.type)).toContain('ToolCallRejected');
        expect(events.map((e) => e.type)).not.toContain('ToolResultReceived');
        expect(events.at(-1)!.type).toBe('RunSucceeded');
      } finally {
        await socket.close();
      }
    }
  });
});

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; ; ) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('no model configured', () => {
  let bare: TestServer;
  beforeAll(async () => {
    bare = await startServer({ ROLES: 'all' });
  });
  afterAll(() => bare?.dispose());

  test('planning works with the heuristics; an approved plan fails at its first run, saying why; a question gets an error frame', async () => {
    const api = client(bare.api);
    const session = (await api.post('/sessions', {})).body.session_id as string;
    const socket = await connect(bare.url, session, { since: 0 });
    try {
      socket.send({ type: 'user_message', content: 'Build a login page with a form, an auth endpoint and tests for both' });
      const review = await socket.waitFor((f) => f.type === 'plan_approval_required', 10_000, 'the heuristic plan');
      expect((await api.get(`/plans/${review.plan_id}`)).body.source).toBe('heuristic');
      socket.send({ type: 'plan_decision', approval_request_id: review.approval_request_id, decision: 'approve' });
      const ended = await socket.waitFor((f) => f.type === 'execution_completed', 10_000, 'the plan to end');
      expect(ended.status).toBe('failed');
      expect(ended.content).toMatch(/no model configured/);
      // No retries: every dispatch was a first attempt.
      const attempts = (await api.get(`/streams/plan-${review.plan_id}`)).body.events.filter((e: { type: string }) => e.type === 'SubtaskDispatched');
      expect(attempts.length).toBeGreaterThan(0);
      expect(attempts.every((e: { data: { attempt: number } }) => e.data.attempt === 1)).toBe(true);

      socket.send({ type: 'user_message', content: 'What is a closure?' });
      const error = await socket.waitFor((f) => f.type === 'error' && f.code === 'no_model_configured', 10_000, 'the error frame');
      expect(error.content).toMatch(/no model configured/);
      expect(socket.invalid).toEqual([]);
    } finally {
      await socket.close();
    }
  });
});

describe('a tool call nobody answers', () => {
  let quick: TestServer;
  beforeAll(async () => {
    quick = await startServer({ ROLES: 'all', OPENAI_BASE_URL: model.baseURL, OPENAI_API_KEY: 'test', TOOL_CALL_TIMEOUT_S: '1' });
  });
  afterAll(() => quick?.dispose());

  test('fails its run after TOOL_CALL_TIMEOUT_S with a clear error the IDE sees; the session is free again', async () => {
    const api = client(quick.api);
    const session = (await api.post('/sessions', {})).body.session_id as string;
    const socket = await connect(quick.url, session, { since: 0 });
    try {
      socket.send({ type: 'user_message', content: 'A question: delete the old module?' });
      const call = await socket.waitFor((f) => f.type === 'tool_call', 10_000, 'the tool call');
      const error = await socket.waitFor((f) => f.type === 'error' && f.code === 'tool_call_timeout', 10_000, 'the timeout');
      expect(error.content).toMatch(/did not answer the write_file call/);
      const run = (await api.get(`/runs/${call.run_id}`)).body;
      expect(run).toMatchObject({ status: 'failed' });
      // Too late: an answer now changes nothing.
      socket.send({ type: 'tool_result', call_id: call.call_id, tool_name: 'write_file', result: 'late' });
      await socket.waitFor((f) => f.type === 'status' && f.metadata?.fsm_state === 'idle', 5_000, 'the session back to idle');
      const types = ((await api.get(`/streams/run-${call.run_id}`)).body.events as Array<{ type: string }>).map((e) => e.type);
      expect(types.at(-1)).toBe('RunFailed');
      expect(types).not.toContain('ToolResultReceived');
    } finally {
      await socket.close();
    }
  });
});
