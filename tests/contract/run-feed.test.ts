// What the IDE sees of agent runs: real commands write a real SQLite log, the real projectors fold it,
// and every frame an atomic task's run adds to its session's feed must decode as the IDE's MessageModel
// (tool_call as its WSToolCall: a string call_id, a tool_name, arguments as an object), and the
// conversation (GET /sessions/:id/history) must show the run as the IDE's ChatMessages.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommandHandler } from '../../src/commands/handle.js';
import { createCommands } from '../../src/commands/service.js';
import { openSqliteEventStore, type SqliteEventStore } from '../../src/events/sqlite-store.js';
import { feedEpoch, feedName, type FeedFrame } from '../../src/projections/feed.js';
import { feedProjection } from '../../src/projections/feed-projection.js';
import { framesOf } from '../../src/projections/feed-frames.js';
import { initialSessionState } from '../../src/commands/session.js';
import { memoryViewStore } from '../../src/projections/memory-views.js';
import { startProjector, type Projector } from '../../src/projections/projector.js';
import { indexNames, viewsProjection } from '../../src/projections/views-projection.js';
import { CONVERSATION, type ConversationMessageDoc } from '../../src/projections/conversation-view.js';
import { RUNS } from '../../src/projections/collections.js';
import type { RunDoc } from '../../src/projections/run-view.js';
import type { ViewStore } from '../../src/projections/views.js';
import { assertMessageModel } from '../support/ws-client.js';
import { ChatMessage, expectIdeModel } from '../support/ide-models.js';
import { runDriver } from '../support/runs.js';

const dir = mkdtempSync(join(tmpdir(), 'planline-run-feed-'));
let store: SqliteEventStore;
let commands: ReturnType<typeof createCommands>;
let feedViews: ViewStore;
let views: ViewStore;
const projectors: Projector[] = [];
const meta = () => ({ command_id: randomUUID() });
const ids = { A: '', B: '', callsA: [] as string[], callsB: [] as string[] };

async function readFeed(sessionId: string): Promise<FeedFrame[]> {
  const page = await feedViews.readFeed(feedName(sessionId), { after: 0, limit: 500 });
  return page.entries.map((e) => e.entry as FeedFrame);
}

/** A: an atomic task asks for tools (one approved and remembered, one refused), a message queues meanwhile, the task answers. B: a task whose call is rejected and whose run fails. */
async function scenario(): Promise<void> {
  const drive = runDriver(commands);
  ids.A = (await commands.startSession({ name: 'Runs' }, meta())).session_id;
  const first = await commands.sendUserMessage(ids.A, { content: 'Add src/a.ts' }, meta());
  await drive.startAtomic(ids.A, first.message_id, 'run-a', 'coder', 'Add src/a.ts');
  ids.callsA = await drive.askTools(
    'run-a',
    1,
    [
      { tool: 'write_file', args: { path: 'src/a.ts', content: 'export const a = 1;\n' }, approval: true },
      { tool: 'read_file', args: { path: 'README.md' } },
      { tool: 'rm', args: {}, refused: 'unknown tool "rm"' },
    ],
    'Let me write the file.',
  );
  const queued = await commands.sendUserMessage(ids.A, { content: 'And then a test' }, meta());
  expect(queued.queued).toBe(true);
  await commands.decideToolCall(ids.A, { call_id: ids.callsA[0]!, decision: 'approve', remember: true }, meta());
  await commands.answerToolCall(ids.A, { call_id: ids.callsA[1]!, result: { content: 'x'.repeat(5_000) } }, meta());
  await commands.answerToolCall(ids.A, { call_id: ids.callsA[0]!, result: { success: true } }, meta());
  await drive.answer('run-a', 2, 'Wrote src/a.ts.');
  await drive.finish(ids.A, 'run-a', 'succeeded', 'Wrote src/a.ts.');
  await commands.startQueuedMessage(ids.A, meta());

  ids.B = (await commands.startSession({}, meta())).session_id;
  const b = await commands.sendUserMessage(ids.B, { content: 'Run the tests' }, meta());
  await drive.startAtomic(ids.B, b.message_id, 'run-b', 'debug');
  ids.callsB = await drive.askTools('run-b', 1, [{ tool: 'execute_command', args: { command: 'npm test' }, approval: true }]);
  await commands.decideToolCall(ids.B, { call_id: ids.callsB[0]!, decision: 'reject', feedback: 'not now' }, meta());
  await commands.failRun('run-b', { error: 'no model configured', code: 'no_model' }, meta());
  await drive.finish(ids.B, 'run-b', 'failed', 'no model configured');
}

beforeAll(async () => {
  store = openSqliteEventStore(join(dir, 'log.db'));
  commands = createCommands(createCommandHandler(store));
  feedViews = memoryViewStore();
  views = memoryViewStore();
  const epoch = feedEpoch(await store.logId());
  projectors.push(startProjector({ store, views: feedViews, projection: feedProjection({ epoch }), log: () => {}, leaseTtlMs: 2_000 }));
  projectors.push(startProjector({ store, views, projection: viewsProjection, log: () => {}, leaseTtlMs: 2_000 }));
  await scenario();
  for (const projector of projectors) expect(await projector.waitFor(await store.headPosition(), 10_000)).toBe(true);
});

afterAll(async () => {
  for (const projector of projectors) await projector.stop();
  await feedViews?.close();
  await views?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('feed frames of agent runs', () => {
  it('every frame decodes as the IDE’s MessageModel, numbered without gaps', async () => {
    for (const session of [ids.A, ids.B]) {
      const frames = await readFeed(session);
      expect(frames.map((f) => f.offset)).toEqual(frames.map((_, i) => i + 1));
      for (const frame of frames) {
        assertMessageModel(frame);
        expect(frame.content.length).toBeGreaterThan(0);
      }
    }
  });

  it('tells an atomic task’s story: classified, words, tool calls, decisions, results, the answer, idle, the queued message', async () => {
    const frames = await readFeed(ids.A);
    expect(frames.map((f) => [f.type, f.metadata.fsm_state])).toEqual([
      ['session_info', 'idle'],
      ['status', 'classify'], // message received
      ['status', 'execution'], // answering with the coder agent
      ['assistant_message', 'execution'],
      ['tool_call', 'execution'],
      ['tool_call', 'execution'],
      ['status', 'execution'], // queued
      ['status', 'execution'], // approved (remembered)
      ['status', 'execution'], // policy changed
      ['status', 'execution'], // read_file done
      ['status', 'execution'], // write_file done
      ['assistant_message', 'execution'],
      ['status', 'idle'], // task finished
      ['status', 'classify'], // queued message started
    ]);
    expect(frames[2]).toMatchObject({ content: 'Answering with the coder agent', run_id: 'run-a', agent_type: 'coder', metadata: { kind: 'atomic' } });
    expect(frames[3]).toMatchObject({ content: 'Let me write the file.', is_final: false, run_id: 'run-a', agent_type: 'coder' });
    expect(frames[11]).toMatchObject({ content: 'Wrote src/a.ts.', is_final: true, run_id: 'run-a' });
    expect(frames[6]).toMatchObject({ metadata: { queued: true } });
    expect(typeof frames[6]!.metadata.message_id).toBe('string');
    expect(frames[12]).toMatchObject({ type: 'status', run_id: 'run-a', metadata: { fsm_state: 'idle', task_status: 'succeeded' } });
  });

  it('sends tool_call with a string call_id, object arguments, requires_approval and a readable content', async () => {
    const calls = (await readFeed(ids.A)).filter((f) => f.type === 'tool_call');
    expect(calls).toHaveLength(2); // the refused call never reaches the IDE
    expect(calls[0]).toMatchObject({
      call_id: ids.callsA[0],
      tool_name: 'write_file',
      arguments: { path: 'src/a.ts', content: 'export const a = 1;\n' },
      requires_approval: true,
      run_id: 'run-a',
      agent_type: 'coder',
      content: 'write_file src/a.ts (needs your approval)',
    });
    expect(calls[1]).toMatchObject({ call_id: ids.callsA[1], tool_name: 'read_file', requires_approval: false, content: 'read_file README.md' });
    for (const call of calls) expect(typeof call.call_id).toBe('string');
  });

  it('keeps results out of the feed: short status frames only', async () => {
    const frames = await readFeed(ids.A);
    const results = frames.filter((f) => f.metadata.call_id !== undefined && f.type === 'status');
    expect(results.map((f) => f.content)).toEqual(['Approved write_file; remembered for this session', 'read_file done', 'write_file done']);
    expect(JSON.stringify(frames)).not.toContain('x'.repeat(300));
  });

  it('a rejected call and a failed atomic run: a status, then an error frame with the run’s code', async () => {
    const frames = await readFeed(ids.B);
    expect(frames.map((f) => f.type)).toEqual(['session_info', 'status', 'status', 'tool_call', 'status', 'error', 'status']);
    expect(frames[4]).toMatchObject({ content: 'Rejected execute_command: not now', call_id: ids.callsB[0], metadata: { decision: 'reject' } });
    expect(frames[5]).toMatchObject({ code: 'no_model', error: 'no model configured', run_id: 'run-b', metadata: { code: 'no_model' } });
    expect(frames[6]).toMatchObject({ metadata: { fsm_state: 'idle', task_status: 'failed' } });
  });

  it('a subtask run’s failure is only a status (the plan’s subtask_failed says it); its words name the subtask', () => {
    const run = { run_id: 'r9', session_id: 's', kind: 'subtask' as const, agent: 'coder', plan_id: 'p1', subtask_id: 't1', calls: {} };
    const session = initialSessionState();
    const failed = framesOf({ event: { type: 'RunFailed', data: { error: 'boom' } }, session, run });
    expect(failed.map((f) => f.type)).toEqual(['status']);
    assertMessageModel({ ...failed[0], metadata: { ...failed[0]!.metadata, fsm_state: 'plan_execution' } });
    const words = framesOf({
      event: { type: 'AgentReplied', data: { turn: 1, content: 'Working on it', tool_calls: [], finish_reason: 'stop', usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } } },
      session,
      run,
    });
    expect(words[0]).toMatchObject({ type: 'assistant_message', plan_id: 'p1', subtask_id: 't1', is_final: true });
    const silent = framesOf({
      event: { type: 'AgentReplied', data: { turn: 1, content: null, tool_calls: [{ id: 'x', name: 'read_file', arguments: '{}' }], finish_reason: 'tool_calls', usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } } },
      session,
      run,
    });
    expect(silent).toEqual([]);
    expect(framesOf({ event: { type: 'ToolCallRefused', data: { call_id: 'r9.1.0', tool_name: 'rm', error: 'no' } }, session, run })).toEqual([]);
  });
});

describe('the conversation and the run read model', () => {
  async function conversation(sessionId: string): Promise<ConversationMessageDoc[]> {
    const members = await views.range(indexNames.conversation(sessionId), { limit: 500 });
    const docs = await views.getMany(CONVERSATION, members.map((m) => m.id));
    return (docs as ConversationMessageDoc[]).reverse();
  }

  it('shows an atomic task as the IDE’s chat messages: words, tool calls with JSON arguments, tool results', async () => {
    const messages = await conversation(ids.A);
    for (const m of messages) expectIdeModel(ChatMessage, { role: m.role, content: m.content, name: m.name, tool_call_id: m.tool_call_id, tool_calls: m.tool_calls }, 'a chat message');
    expect(messages.map((m) => [m.role, m.tool_call_id ?? m.tool_calls?.[0]?.function.name ?? m.content?.slice(0, 30)])).toEqual([
      ['user', 'Add src/a.ts'],
      ['assistant', 'Let me write the file.'],
      ['assistant', 'write_file'],
      ['assistant', 'read_file'],
      ['user', 'And then a test'],
      ['tool', ids.callsA[1]],
      ['tool', ids.callsA[0]],
      ['assistant', 'Wrote src/a.ts.'],
    ]);
    expect(JSON.parse(messages[2]!.tool_calls![0]!.function.arguments)).toEqual({ path: 'src/a.ts', content: 'export const a = 1;\n' });
    expect(messages[2]!.tool_calls![0]!.id).toBe(ids.callsA[0]);
    expect(messages[6]).toMatchObject({ name: 'write_file', content: '{"success":true}' });
  });

  it('a rejected call is a tool message saying so; a failed run a system message with the error', async () => {
    const messages = await conversation(ids.B);
    expect(messages.slice(-2)).toMatchObject([
      { role: 'tool', tool_call_id: ids.callsB[0], name: 'execute_command', content: JSON.stringify({ error: 'User rejected the call: not now' }) },
      { role: 'system', content: 'The task failed with an error: no model configured' },
    ]);
  });

  it('GET /runs/:id’s document: status, turns, calls, usage', async () => {
    const run = (await views.get(RUNS, 'run-a')) as RunDoc;
    expect(run).toMatchObject({ session_id: ids.A, kind: 'atomic', status: 'succeeded', turns: 2, tool_calls: 3, waiting_for: [], result: 'Wrote src/a.ts.' });
    expect(run.usage).toEqual({ prompt_tokens: 240, completion_tokens: 60, total_tokens: 300 });
  });
});
