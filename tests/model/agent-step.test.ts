// One agent turn with the real openai client against a scripted model server that answers per agent.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { agentStep, buildRunMessages, type RunTurn } from '../../src/agents/agent-step.js';
import { AGENTS, agentInfo, listAgentInfo } from '../../src/agents/agents.js';
import { ModelError, NoModelConfiguredError, unconfiguredChatModel, type ChatModel } from '../../src/agents/model.js';
import { openAiChatModel } from '../../src/agents/openai-model.js';
import { checkToolArguments, IDE_TOOLS } from '../../src/agents/tools.js';
import { startScriptedOpenAi, systemPromptOf, type ScriptedOpenAi, type ScriptedReply } from '../support/scripted-openai.js';

let server: ScriptedOpenAi;
let model: ChatModel;
let seen = 0;
beforeAll(async () => {
  server = await startScriptedOpenAi();
  model = openAiChatModel({ baseURL: server.baseURL, apiKey: 'k', model: 'agents', maxRetries: 0, timeoutMs: 5_000 });
});
afterAll(() => server.close());
beforeEach(() => {
  seen = server.requests.length;
});
const newRequests = () => server.requests.slice(seen);
const toolNames = (request: { tools?: Array<Record<string, unknown>> | undefined }) =>
  (request.tools ?? []).map((t) => (t.function as { name: string }).name);

describe('agent step', () => {
  it('a final answer: the agent prompt, its tools, the conversation and the task reach the model', async () => {
    server.enqueue({ content: 'An isolate is a Dart thread of its own memory.', usage: { prompt_tokens: 100, completion_tokens: 20 } });
    const step = await agentStep(model, {
      agent: 'ask',
      task: 'What is an isolate?',
      conversation: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'Hello! How can I help?' },
      ],
    }, []);
    expect(step).toMatchObject({ kind: 'final', content: 'An isolate is a Dart thread of its own memory.', finishReason: 'stop', usage: { total_tokens: 120 } });
    const [request] = newRequests();
    expect(request!.system).toBe(AGENTS.ask.system_prompt);
    expect(toolNames(request!)).toEqual(['read_file', 'list_files', 'search_in_code']);
    expect(request!.messages.slice(1)).toEqual([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'Hello! How can I help?' },
      { role: 'user', content: 'What is an isolate?' },
    ]);
  });

  it('tool calls come back canonical with parsed arguments, or with the error to tell the model', async () => {
    server.enqueue({
      content: 'Let me look.',
      toolCalls: [
        { id: 'c1', name: 'read_file', arguments: { path: 'lib/main.dart', start_line: 1, end_line: 40 } },
        { id: 'c2', name: 'run_command', arguments: { command: 'flutter test' } },
        { id: 'c3', name: 'write_file', arguments: '{"path": "lib/a.dart", "content": "oops' },
        { id: 'c4', name: 'write_file', arguments: { path: 'lib/a.dart' } },
        { id: 'c5', name: 'read_file', arguments: { path: 'a', start_line: 0 } },
        { id: 'c6', name: 'delete_file', arguments: { path: 'a' } },
      ],
    });
    const step = await agentStep(model, { agent: 'coder', task: 'Fix the failing test' }, []);
    expect(step.kind).toBe('tool_calls');
    if (step.kind !== 'tool_calls') return;
    expect(step.content).toBe('Let me look.');
    expect(step.calls).toEqual([
      { id: 'c1', name: 'read_file', arguments: { path: 'lib/main.dart', start_line: 1, end_line: 40 } },
      { id: 'c2', name: 'execute_command', arguments: { command: 'flutter test' } },
      { id: 'c3', name: 'write_file', error: expect.stringMatching(/^Invalid tool call: arguments are not valid JSON/) },
      { id: 'c4', name: 'write_file', error: 'Invalid arguments for write_file: missing required argument "content".' },
      { id: 'c5', name: 'read_file', error: 'Invalid arguments for read_file: "start_line" must be between 1 and ∞, got 0.' },
      { id: 'c6', name: 'delete_file', error: expect.stringMatching(/not available to the Coder Agent\. Available tools: read_file, write_file/) },
    ]);
    // What to record for the next turn: the model's own words, broken arguments included.
    expect(step.message.tool_calls[2]).toEqual({ id: 'c3', name: 'write_file', arguments: '{"path": "lib/a.dart", "content": "oops' });
  });

  it("an agent's restrictions hold: debug may not write, the architect writes markdown only", async () => {
    server.enqueue({ toolCalls: [{ id: 'd1', name: 'write_file', arguments: { path: 'lib/a.dart', content: 'x' } }] });
    const debug = await agentStep(model, { agent: 'debug', task: 'Why does it crash?' }, []);
    expect(debug.kind === 'tool_calls' && debug.calls[0]).toMatchObject({ error: expect.stringMatching(/not available to the Debug Agent/) });

    server.enqueue({
      toolCalls: [
        { id: 'a1', name: 'write_file', arguments: { path: 'lib/a.dart', content: 'x' } },
        { id: 'a2', name: 'write_file', arguments: { path: 'docs/design.md', content: '# Design' } },
      ],
    });
    const architect = await agentStep(model, { agent: 'architect', task: 'Design the sync layer' }, []);
    expect(architect.kind === 'tool_calls' && architect.calls).toEqual([
      { id: 'a1', name: 'write_file', error: expect.stringMatching(/may only write files matching .*"lib\/a\.dart" is refused/) },
      { id: 'a2', name: 'write_file', arguments: { path: 'docs/design.md', content: '# Design' } },
    ]);
  });

  it('the next turn replays the run: each call answered right after it, rejections and errors included', async () => {
    const turns: RunTurn[] = [
      {
        type: 'assistant',
        content: 'Reading and fixing.',
        tool_calls: [
          { id: 'c1', name: 'read_file', arguments: '{"path":"lib/a.dart"}' },
          { id: 'c2', name: 'write_file', arguments: '{"path":"lib/a.dart","content":"fixed"}' },
          { id: 'c3', name: 'write_file', arguments: '{"path": "broken' },
        ],
      },
      { type: 'tool_rejected', call_id: 'c2', feedback: 'Keep the old API' },
      { type: 'tool_result', call_id: 'c1', result: { success: true, content: 'void main() {}' } },
      { type: 'tool_error', call_id: 'c3', error: 'Invalid tool call: arguments are not valid JSON' },
      { type: 'assistant', content: null, tool_calls: [{ id: 'c4', name: 'execute_command', arguments: '{"command":"flutter test"}' }] },
    ];
    server.enqueue({ content: 'Done: kept the old API.' });
    const step = await agentStep(model, { agent: 'coder', task: 'Fix lib/a.dart' }, turns);
    expect(step.kind).toBe('final');
    expect(newRequests()[0]!.messages.slice(2)).toEqual([
      {
        role: 'assistant',
        content: 'Reading and fixing.',
        tool_calls: [
          { id: 'c1', type: 'function', function: { name: 'read_file', arguments: '{"path":"lib/a.dart"}' } },
          { id: 'c2', type: 'function', function: { name: 'write_file', arguments: '{"path":"lib/a.dart","content":"fixed"}' } },
          { id: 'c3', type: 'function', function: { name: 'write_file', arguments: '{"path": "broken' } },
        ],
      },
      { role: 'tool', tool_call_id: 'c1', content: '{"success":true,"content":"void main() {}"}' },
      { role: 'tool', tool_call_id: 'c2', content: 'The user rejected this tool call with this feedback: "Keep the old API". Do not repeat it; adapt or explain what you need.' },
      { role: 'tool', tool_call_id: 'c3', content: 'Error: Invalid tool call: arguments are not valid JSON' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c4', type: 'function', function: { name: 'execute_command', arguments: '{"command":"flutter test"}' } }] },
      { role: 'tool', tool_call_id: 'c4', content: 'No result: this tool call was not answered.' },
    ]);
  });

  it("a subtask's context: the plan goal and its dependencies' results", () => {
    const [, task] = buildRunMessages(
      {
        agent: 'coder',
        task: 'Add the login form',
        plan: { goal: 'Add login', subtask_id: 'ui', dependencies: [{ id: 'api', description: 'Add the auth endpoint', result: 'POST /login returns a token' }] },
      },
      [],
    );
    expect(task).toEqual({
      role: 'user',
      content:
        'You are executing one subtask of a plan.\n\nPlan goal: Add login\n\nResults of the subtasks this one depends on:\n- api: Add the auth endpoint\n  result: POST /login returns a token\n\nYour subtask (ui): Add the login form',
    });
  });

  it('a responder can answer per agent: two agents, one server', async () => {
    const local = await startScriptedOpenAi({
      respond: (request): ScriptedReply =>
        systemPromptOf(request).startsWith('You are the Ask agent') ? { content: 'an answer' } : { toolCalls: [{ name: 'list_files', arguments: { path: '.' } }] },
    });
    try {
      const m = openAiChatModel({ baseURL: local.baseURL, apiKey: 'k', model: 'm', maxRetries: 0 });
      expect((await agentStep(m, { agent: 'ask', task: 'q' }, [])).kind).toBe('final');
      expect((await agentStep(m, { agent: 'coder', task: 't' }, [])).kind).toBe('tool_calls');
    } finally {
      await local.close();
    }
  });

  it('a cancelled run aborts the model call in flight', async () => {
    server.enqueue({ kind: 'hang' });
    const controller = new AbortController();
    const pending = agentStep(model, { agent: 'coder', task: 't' }, [], { signal: controller.signal });
    const request = await server.waitForRequests(seen + 1);
    controller.abort();
    await expect(pending).rejects.toSatisfy((e: unknown) => e instanceof ModelError && e.kind === 'aborted');
    await request.disconnectedEarly;
  });

  it('with no model configured the step fails at once with a clear error', async () => {
    await expect(agentStep(unconfiguredChatModel(), { agent: 'coder', task: 't' }, [])).rejects.toThrow(NoModelConfiguredError);
  });
});

describe('agent definitions', () => {
  it("are listed in the IDE's AgentInfo shape", () => {
    expect(listAgentInfo().map((a) => a.type)).toEqual(['coder', 'debug', 'ask', 'architect', 'universal']);
    expect(agentInfo('architect')).toEqual({
      type: 'architect',
      name: 'Architect Agent',
      description: expect.any(String),
      allowed_tools: ['read_file', 'list_files', 'search_in_code', 'write_file'],
      has_file_restrictions: true,
    });
    expect(agentInfo('coder').has_file_restrictions).toBe(false);
  });

  it('offer only tools the IDE executes', () => {
    for (const agent of Object.values(AGENTS)) for (const tool of agent.allowed_tools) expect(IDE_TOOLS).toContain(tool);
  });

  it('tool arguments are checked against the schema the IDE casts to', () => {
    expect(checkToolArguments('execute_command', { command: 'ls', timeout: 301 })).toBe('"timeout" must be between 1 and 300, got 301');
    expect(checkToolArguments('list_files', { path: '.', recursive: 'yes' })).toBe('"recursive" must be a boolean, got "yes"');
    expect(checkToolArguments('list_files', { path: '.', extra: 1 })).toBeUndefined();
  });
});
