// Agent runs over the IDE socket and the HTTP API, end to end on an embedded server. The executor is
// not part of this server (ROLES=edge,projector): the test plays it through a second command side on
// the same SQLite log (another connection, as another process would be; the server's feed follows the
// log). The IDE sees tool_call frames it can decode, answers them with tool_result / hitl_decision in
// the forms it sends, and the log records what it said; wrong call ids and malformed frames change nothing.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCommandHandler } from '../../src/commands/handle.js';
import { createCommands } from '../../src/commands/service.js';
import { openSqliteEventStore, type SqliteEventStore } from '../../src/events/sqlite-store.js';
import { client, startServer, type Client, type TestServer } from '../support/server.js';
import { connect, type FeedClient, type Frame } from '../support/ws-client.js';
import { runDriver } from '../support/runs.js';
import { expectIdeModel, SessionHistory } from '../support/ide-models.js';

let server: TestServer;
let api: Client;
let side: SqliteEventStore;
let drive: ReturnType<typeof runDriver>;
const sockets: FeedClient[] = [];

beforeAll(async () => {
  server = await startServer({ ROLES: 'edge,projector', WS_MAX_FRAME_BYTES: '65536' });
  api = client(server.api);
  side = openSqliteEventStore(join(server.dir, 'planline.db'));
  drive = runDriver(createCommands(createCommandHandler(side)));
});
afterEach(async () => {
  for (const socket of sockets) expect(socket.invalid).toEqual([]);
  await Promise.all(sockets.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await side?.close();
  await server?.dispose();
  expect(server?.logs.filter((line) => line.level === 'error') ?? []).toEqual([]);
});

async function logHead(): Promise<number> {
  return Number(/^planline_event_log_head_position (\d+)/m.exec((await api.get('/metrics')).text)?.[1]);
}

async function open(sessionId: string): Promise<FeedClient> {
  const socket = await connect(server.url, sessionId, { wait_for: await logHead() });
  sockets.push(socket);
  await socket.waitFor((f) => f.type === 'snapshot');
  return socket;
}

/** A session whose message became an atomic task that asks the IDE for write_file (approval) and read_file. */
async function taskWaitingForTools(): Promise<{ session: string; run: string; write: string; read: string; socket: FeedClient }> {
  const session = (await api.post('/sessions', {})).body.session_id as string;
  const socket = await open(session);
  const message = await api.post(`/sessions/${session}/messages`, { content: 'Add src/a.ts' });
  expect(message.status).toBe(201);
  const run = `run-${randomUUID()}`;
  await drive.startAtomic(session, message.body.message_id, run);
  const [write, read] = await drive.askTools(run, 1, [
    { tool: 'write_file', args: { path: 'src/a.ts', content: 'export {};\n' }, approval: true },
    { tool: 'read_file', args: { path: 'README.md' } },
  ]);
  await socket.waitFor((f) => f.type === 'tool_call' && f.call_id === read, 10_000, 'the read_file tool_call');
  return { session, run, write: write!, read: read!, socket };
}

/** The events of a run's stream, as recorded. */
async function runEvents(run: string): Promise<Array<{ type: string; data: Record<string, unknown> }>> {
  const reply = await api.get(`/streams/run-${run}`);
  expect(reply.status).toBe(200);
  return reply.body.events;
}

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The IDE's MessageModel.toJson(): every field written, null when unset. */
const ideFrame = (fields: Record<string, unknown>) => ({
  type: null,
  content: null,
  role: null,
  call_id: null,
  tool_name: null,
  arguments: null,
  result: null,
  error: null,
  is_final: null,
  requires_approval: null,
  agent_type: null,
  metadata: null,
  ...fields,
});

async function refused(socket: FeedClient, frame: unknown, code: string): Promise<Frame> {
  const before = socket.frames.length;
  const head = await logHead();
  socket.send(frame);
  const error = await socket.waitFor((f) => f.type === 'error' && socket.frames.indexOf(f) >= before, 5_000, `an error ${code}`);
  expect(error).toMatchObject({ code });
  socket.send({ type: 'ping' });
  await socket.waitFor((f) => f.type === 'pong' && socket.frames.indexOf(f) > before);
  expect(await logHead()).toBe(head);
  return error;
}

describe('agent runs over the socket', () => {
  it('tool_call frames reach the IDE decodable: a string call_id, object arguments, requires_approval', async () => {
    const { write, read, socket } = await taskWaitingForTools();
    const calls = socket.frames.filter((f) => f.type === 'tool_call');
    expect(calls.map((f) => [f.call_id, f.tool_name, f.requires_approval])).toEqual([
      [write, 'write_file', true],
      [read, 'read_file', false],
    ]);
    for (const call of calls) {
      expect(typeof call.call_id).toBe('string');
      expect(call.arguments).toBeTypeOf('object');
      expect(Array.isArray(call.arguments)).toBe(false);
    }
    expect(calls[0]!.arguments).toEqual({ path: 'src/a.ts', content: 'export {};\n' });
  });

  it('tool_result as the IDE sends it records ToolResultReceived; GET /runs/:id shows the call answered', async () => {
    const { run, read, write, socket } = await taskWaitingForTools();
    socket.send(ideFrame({ type: 'tool_result', call_id: read, tool_name: 'read_file', result: { content: '# readme' } }));
    await socket.waitFor((f) => f.type === 'status' && f.call_id === read, 10_000, 'the read_file result status');
    expect((await runEvents(run)).filter((e) => e.type === 'ToolResultReceived')).toEqual([
      expect.objectContaining({ data: { call_id: read, result: { content: '# readme' } } }),
    ]);
    const view = await until(() => api.get(`/runs/${run}`), (r) => r.status === 200 && !r.body.waiting_for.includes(read), 'the run view');
    expect(view.body).toMatchObject({ run_id: run, status: 'running', waiting_for: [write], tool_calls: 2, usage: drive.usage });

    // The same answer again (an IDE resending after a reconnect) changes nothing.
    const head = await logHead();
    socket.send(ideFrame({ type: 'tool_result', call_id: read, tool_name: 'read_file', result: { content: 'again' } }));
    socket.send({ type: 'ping' });
    await socket.waitFor((f) => f.type === 'pong');
    expect(await logHead()).toBe(head);
  });

  it('hitl_decision reject records ToolCallRejected with the feedback', async () => {
    const { run, write, socket } = await taskWaitingForTools();
    socket.send({ type: 'hitl_decision', call_id: write, decision: 'reject', feedback: 'not that file' });
    await socket.waitFor((f) => f.type === 'status' && f.call_id === write, 10_000, 'the rejection status');
    expect((await runEvents(run)).find((e) => e.type === 'ToolCallRejected')).toMatchObject({ data: { call_id: write, feedback: 'not that file' } });
  });

  it('hitl_decision approve with remember changes the session’s tool policy (GET tool-policy)', async () => {
    const { session, run, write, read, socket } = await taskWaitingForTools();
    socket.send({ type: 'tool_result', call_id: read, result: {} });
    socket.send({ type: 'tool_result', call_id: write, result: { success: true } });
    await until(() => runEvents(run), (events) => events.filter((e) => e.type === 'ToolResultReceived').length === 2, 'both results');
    const [command] = await drive.askTools(run, 2, [{ tool: 'execute_command', args: { command: 'npm test -- --run' }, approval: true }]);
    await socket.waitFor((f) => f.type === 'tool_call' && f.call_id === command, 10_000, 'the execute_command call');
    expect((await api.get(`/sessions/${session}/tool-policy`)).body.tool_policy.remembered).toEqual({ tools: [], command_prefixes: [] });

    socket.send({ type: 'hitl_decision', call_id: command, decision: 'approve', remember: true });
    await socket.waitFor((f) => f.type === 'status' && f.metadata.tool_policy !== undefined, 10_000, 'the policy change');
    const policy = await api.get(`/sessions/${session}/tool-policy`);
    expect(policy.status).toBe(200);
    expect(policy.body).toMatchObject({ session_id: session, tool_policy: { remembered: { tools: [], command_prefixes: ['npm test'] } } });
    expect((await runEvents(run)).find((e) => e.type === 'ToolCallApproved')).toMatchObject({ data: { call_id: command, remember: true } });
  });

  it('the IDE’s approval dialog (tool_result with metadata.approval_request_id) decides a tool call', async () => {
    const { run, write, socket } = await taskWaitingForTools();
    socket.send(ideFrame({ type: 'tool_result', content: 'Modified', metadata: { approval_request_id: write, decision: 'modified', approved: true, modified: true, modified_data: { path: 'src/b.ts', content: 'x' } } }));
    await socket.waitFor((f) => f.type === 'status' && f.call_id === write, 10_000, 'the approval status');
    expect((await runEvents(run)).find((e) => e.type === 'ToolCallApproved')).toMatchObject({
      data: { call_id: write, modified_arguments: { path: 'src/b.ts', content: 'x' } },
    });
  });

  it('a wrong call id is an unknown_call error frame and changes nothing; so is another session’s call', async () => {
    const { run, socket } = await taskWaitingForTools();
    await refused(socket, { type: 'tool_result', call_id: `${run}.7.0`, result: {} }, 'unknown_call');
    await refused(socket, { type: 'hitl_decision', call_id: 'no-such-call', decision: 'approve' }, 'unknown_call');
    const other = await taskWaitingForTools();
    await refused(socket, { type: 'tool_result', call_id: other.read, result: {} }, 'unknown_call');
    const error = await refused(socket, { type: 'hitl_decision', call_id: other.write, decision: 'reject' }, 'unknown_call');
    expect(error.metadata).toMatchObject({ http_status: 404, call_id: other.write });
  });

  it('malformed tool_result and hitl_decision frames are validation errors that change nothing', async () => {
    const { write, socket } = await taskWaitingForTools();
    await refused(socket, { type: 'tool_result', call_id: 42, result: {} }, 'validation_failed');
    await refused(socket, { type: 'tool_result', call_id: write, error: 7 }, 'validation_failed');
    await refused(socket, { type: 'hitl_decision', call_id: write, decision: 'maybe' }, 'validation_failed');
    await refused(socket, { type: 'hitl_decision', call_id: write, decision: 'edit' }, 'validation_failed');
    await refused(socket, { type: 'hitl_decision', call_id: write, decision: 'edit', modified_arguments: 'path=x' }, 'validation_failed');
    await refused(socket, { type: 'hitl_decision', call_id: write, decision: 'approve', remember: 'yes' }, 'validation_failed');
    await refused(socket, { type: 'user_message', content: 'hi', strategy: 'shout' }, 'validation_failed');
  });

  it('cancel without a plan stops the session’s running task', async () => {
    const { run, socket } = await taskWaitingForTools();
    socket.send({ type: 'cancel', reason: 'changed my mind' });
    await socket.waitFor((f) => f.type === 'status' && f.run_id === run && /stopped/.test(f.content), 10_000, 'the run stopped');
    expect((await runEvents(run)).at(-1)).toMatchObject({ type: 'RunCancelled', data: { reason: 'changed my mind' } });
    const view = await until(() => api.get(`/runs/${run}`), (r) => r.body?.status === 'cancelled', 'the cancelled run');
    expect(view.body.waiting_for).toEqual([]);
  });

  it('a message while the task runs is queued (strategy enqueue) or refused (reject), over the socket and HTTP', async () => {
    const { session, socket } = await taskWaitingForTools();
    socket.send({ type: 'user_message', content: 'and a test', metadata: { strategy: 'enqueue' } });
    await socket.waitFor((f) => f.type === 'status' && f.metadata.queued === true, 10_000, 'the queued status');
    const queued = await api.post(`/sessions/${session}/messages`, { content: 'and docs' });
    expect(queued.status).toBe(201);
    expect(queued.body).toMatchObject({ queued: true });
    const refusedReply = await api.post(`/sessions/${session}/messages`, { content: 'now!', strategy: 'reject' });
    expect(refusedReply.status).toBe(409);
    expect(refusedReply.body.code).toBe('session_busy');
    const invalid = await api.post(`/sessions/${session}/messages`, { content: 'x', strategy: 'shout' });
    expect(invalid.status).toBe(400);
  });
});

describe('agent runs over HTTP', () => {
  it('answers a call with POST …/tool-calls/:call_id/result and /decision', async () => {
    const { session, run, read, write } = await taskWaitingForTools();
    const result = await api.post(`/sessions/${session}/tool-calls/${read}/result`, { tool_name: 'read_file', result: 'plain text is JSON too' });
    expect(result.status, result.text).toBe(200);
    expect(result.body).toMatchObject({ call_id: read, run_id: run, changed: true, run_status: 'running', waiting_for: [write] });
    const again = await api.post(`/sessions/${session}/tool-calls/${read}/result`, { result: 'again' });
    expect(again.body).toMatchObject({ changed: false });
    const decision = await api.post(`/sessions/${session}/tool-calls/${write}/decision`, { decision: 'reject', feedback: 'no' });
    expect(decision.status, decision.text).toBe(200);
    expect(decision.body).toMatchObject({ call_id: write, decision: 'reject', changed: true, waiting_for: [] });
    const unknown = await api.post(`/sessions/${session}/tool-calls/${run}.9.9/result`, { result: {} });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('unknown_call');
    const bad = await api.post(`/sessions/${session}/tool-calls/${write}/decision`, { decision: 'maybe' });
    expect(bad.status).toBe(400);
  });

  it('reads and changes the tool policy: PATCH changes what it names, PUT sets the whole, bad bodies are 400', async () => {
    const session = (await api.post('/sessions', {})).body.session_id as string;
    const initial = await api.get(`/sessions/${session}/tool-policy`);
    expect(initial.body.tool_policy.requires_approval).toContain('write_file');
    const patched = await api.send('PATCH', `/sessions/${session}/tool-policy`, { auto_approve: ['write_file'], commands: { deny: ['rm -rf'] } });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({ changed: true, tool_policy: { auto_approve: ['write_file'], commands: { allow: [], deny: ['rm -rf'] } } });
    const put = await api.send<any>('PUT', `/sessions/${session}/tool-policy`, { commands: { allow: ['npm test'] } });
    expect(put.body.tool_policy).toMatchObject({ auto_approve: [], commands: { allow: ['npm test'], deny: [] } });
    expect((await api.get(`/sessions/${session}/tool-policy`)).body.tool_policy).toEqual(put.body.tool_policy);
    for (const body of [{ auto_approve: ['launch_missiles'] }, { requires_approval: 'write_file' }, { surprise: true }]) {
      const reply = await api.send('PATCH', `/sessions/${session}/tool-policy`, body);
      expect(reply.status, JSON.stringify(body)).toBe(400);
    }
    expect((await api.get('/sessions/no-such-session/tool-policy')).status).toBe(404);
  });

  it('GET /runs/:id, session and plan usage, and the history the IDE loads', async () => {
    const { session, run, read, write } = await taskWaitingForTools();
    await api.post(`/sessions/${session}/tool-calls/${read}/result`, { result: { content: 'readme' } });
    await api.post(`/sessions/${session}/tool-calls/${write}/result`, { result: { success: true } });
    await drive.answer(run, 2, 'Wrote src/a.ts.');
    const view = await until(() => api.get(`/runs/${run}`), (r) => r.body?.status === 'succeeded', 'the run to succeed');
    expect(view.body).toMatchObject({ session_id: session, kind: 'atomic', turns: 2, result: 'Wrote src/a.ts.', usage: { total_tokens: 300 } });
    expect((await api.get(`/runs/no-such-run`)).status).toBe(404);
    const sessionBody = await api.get(`/sessions/${session}`);
    expect(sessionBody.body.usage).toEqual({ prompt_tokens: 240, completion_tokens: 60, total_tokens: 300 });
    const history = await api.get(`/sessions/${session}/history`);
    expectIdeModel(SessionHistory, history.body, 'the session history');
    expect(history.body.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant', 'assistant', 'tool', 'tool', 'assistant']);
    const plan = await api.post('/plans', { goal: 'g', subtasks: [{ description: 'one' }] });
    expect((await api.get(`/plans/${plan.body.plan_id}?wait_for=${plan.body.position}`)).body.usage).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
  });
});
