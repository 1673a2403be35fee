// Playing the executor's part in tests: classify a message as an atomic task, start its run, record
// model turns that ask the IDE for tools or answer, end the task. The same commands the executor sends.
import { callIdFor } from '../../src/commands/run-commands.js';
import type { Commands } from '../../src/commands/service.js';
import type { AgentType } from '../../src/events/catalog.js';
import { randomUUID } from 'node:crypto';

const usage = { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150 };
const meta = () => ({ command_id: randomUUID() });

export interface AskedCall {
  tool: string;
  args: Record<string, unknown>;
  approval?: boolean;
  /** Refused before it reaches the IDE (the model's business). */
  refused?: string;
}

export function runDriver(commands: Commands) {
  return {
    usage,
    /** The session's waiting message becomes atomic task `runId`, and its run starts. */
    async startAtomic(sessionId: string, messageId: string, runId: string, agent: AgentType = 'coder', task = 'the task') {
      await commands.classifyAtomic(sessionId, { message_id: messageId, run_id: runId, agent_type: agent, source: 'heuristic' }, meta());
      return commands.startRun({ run_id: runId, session_id: sessionId, kind: 'atomic', agent, task }, meta());
    },
    /** A model turn that asks for tools; returns the call ids the IDE sees. */
    async askTools(runId: string, turn: number, calls: AskedCall[], content: string | null = null) {
      const ids = calls.map((_, i) => callIdFor(runId, turn, i));
      await commands.recordTurn(
        runId,
        {
          turn,
          content,
          tool_calls: calls.map((c, i) => ({ id: `model-${turn}-${i}`, name: c.tool, arguments: JSON.stringify(c.args) })),
          finish_reason: 'tool_calls',
          usage,
          calls: calls.map((c, i) =>
            c.refused !== undefined
              ? { call_id: ids[i]!, tool_name: c.tool, error: c.refused }
              : { call_id: ids[i]!, tool_name: c.tool, arguments: c.args, requires_approval: c.approval ?? false },
          ),
          max_turns: 20,
        },
        meta(),
      );
      return ids;
    },
    /** A final answer: the run succeeds with it. */
    async answer(runId: string, turn: number, content: string) {
      return commands.recordTurn(runId, { turn, content, tool_calls: [], finish_reason: 'stop', usage, calls: [], final: content, max_turns: 20 }, meta());
    },
    async finish(sessionId: string, runId: string, status: 'succeeded' | 'failed' | 'cancelled', text?: string) {
      return commands.finishTask(sessionId, { run_id: runId, status, ...(status === 'succeeded' ? { answer: text } : { error: text }) }, meta());
    },
  };
}
