// The use cases of agent runs: what the workers, the executor and the edges (a tool result, a
// human-in-the-loop decision) ask for. A run's tool calls are addressed by call id alone: the id the
// IDE sees names its run (`<run_id>.<turn>.<n>`), so an answer needs no lookup in a read model that may
// lag behind the frame the IDE just received.
import { streams, type RunEvent, type SessionEvent } from '../events/catalog.js';
import { rememberApproval, type ToolPolicy, type ToolPolicyChange } from '../agents/tool-policy.js';
import type { CommandHandler, CommandMeta, Executed, ExecutedAcross } from './handle.js';
import { notFound } from './errors.js';
import { callNotFound, runDecider, type RunCommand, type RunStart, type RunState } from './run.js';
import { sessionDecider, type SessionCommand, type SessionState, type SessionView } from './session.js';
import { requireAccess } from './access.js';

/** The IDE-facing id of the n-th tool call (0-based) of a run's turn. */
export const callIdFor = (runId: string, turn: number, index: number) => `${runId}.${turn}.${index}`;

/** The run a call id names, or undefined for an id Planline did not hand out. */
export function runOfCall(callId: string): string | undefined {
  const match = /^(.+)\.\d+\.\d+$/.exec(callId);
  return match?.[1];
}

export interface RunCommandsDeps {
  handler: CommandHandler;
  /** A session command decided with its current plan (service.ts's onSession). */
  onSession(sessionId: string, meta: CommandMeta, command: SessionCommand): Promise<Executed<SessionState>>;
  sessionViewOf(session: SessionState): Promise<SessionView>;
}

export type RunCommands = ReturnType<typeof createRunCommands>;

export function createRunCommands(deps: RunCommandsDeps) {
  const { handler } = deps;
  const onRun = (runId: string, meta: CommandMeta, command: RunCommand) =>
    handler.execute<RunState, RunEvent>(streams.run(runId), runDecider, meta, (state) => runDecider.decide(command, { ...state, run_id: state.run_id || runId }));

  const changed = (done: Executed<unknown> | ExecutedAcross) => ('written' in done ? done.written.size > 0 : done.appended.length > 0);

  /** The run of a call answered from a session's socket; a call of another session is not found. */
  async function runOfSessionCall(sessionId: string, callId: string, principal: string | undefined): Promise<RunState> {
    const runId = runOfCall(callId);
    if (runId === undefined) throw callNotFound(callId);
    const run = (await handler.load(streams.run(runId), runDecider, { fresh: true })).state;
    if (!run.exists || run.session_id !== sessionId) throw callNotFound(callId);
    if (principal !== undefined) {
      const session = (await handler.load(streams.session(sessionId), sessionDecider, { fresh: true })).state;
      if (!session.exists || session.deleted) throw notFound('session', sessionId);
      requireAccess({ ...session, session_id: sessionId }, principal, 'command');
    }
    return run;
  }

  return {
    async startRun(run: RunStart, meta: CommandMeta) {
      const done = await onRun(run.run_id, meta, { type: 'StartRun', run });
      return { run: done.state, position: done.position, changed: changed(done) };
    },

    async recordTurn(
      runId: string,
      turn: Omit<Extract<RunCommand, { type: 'RecordTurn' }>, 'type'>,
      meta: CommandMeta,
    ) {
      const done = await onRun(runId, meta, { type: 'RecordTurn', ...turn });
      return { run: done.state, position: done.position, changed: changed(done) };
    },

    async failRun(runId: string, input: { error: string; code?: string | undefined }, meta: CommandMeta) {
      const done = await onRun(runId, meta, { type: 'FailRun', error: input.error, code: input.code });
      return { run: done.state, position: done.position, changed: changed(done) };
    },

    async cancelRun(runId: string, input: { reason?: string | undefined }, meta: CommandMeta) {
      const done = await onRun(runId, meta, { type: 'CancelRun', reason: input.reason });
      return { run: done.state, position: done.position, changed: changed(done) };
    },

    /** The IDE ran a tool (or the user refused it in the IDE's own dialog: an error starting "User rejected"). */
    async answerToolCall(sessionId: string, input: { call_id: string; result?: unknown; error?: string | undefined }, meta: CommandMeta) {
      const run = await runOfSessionCall(sessionId, input.call_id, meta.principal);
      const done = await onRun(run.run_id, meta, { type: 'AnswerToolCall', call_id: input.call_id, result: input.result, error: input.error });
      return { run_id: run.run_id, run: done.state, position: done.position, changed: changed(done) };
    },

    /**
     * The user's decision on a call that needs approval. With `remember`, the approval also becomes part
     * of the session's tool policy (that tool, or that command's prefixes), in the same commit.
     */
    async decideToolCall(
      sessionId: string,
      input: {
        call_id: string;
        decision: 'approve' | 'edit' | 'reject';
        modified_arguments?: Record<string, unknown> | undefined;
        feedback?: string | undefined;
        remember?: boolean | undefined;
      },
      meta: CommandMeta,
    ) {
      const run = await runOfSessionCall(sessionId, input.call_id, meta.principal);
      const command: RunCommand = { type: 'DecideToolCall', ...input };
      const runStream = streams.run(run.run_id);
      if (!input.remember || input.decision === 'reject') {
        const done = await onRun(run.run_id, meta, command);
        return { run_id: run.run_id, run: done.state, position: done.position, changed: changed(done) };
      }
      const done = await handler.executeAcross<RunState, RunEvent>({ stream: runStream, evolver: runDecider }, meta, async (state, load) => {
        const events = runDecider.decide(command, { ...state, run_id: state.run_id || run.run_id });
        const call = state.pending[input.call_id];
        if (events.length === 0 || !call) return [{ stream: runStream, events }];
        const sessionStream = streams.session(sessionId);
        const session = { ...(await load<SessionState, SessionEvent>(sessionStream, sessionDecider)), session_id: sessionId };
        const policy: ToolPolicy = rememberApproval(session.tool_policy, call.tool_name, input.modified_arguments ?? call.arguments);
        const sessionEvents = sessionDecider.decide({ type: 'SetToolPolicy', policy }, { ...(await deps.sessionViewOf(session)), principal: meta.principal });
        return [
          { stream: runStream, events },
          { stream: sessionStream, events: sessionEvents },
        ];
      });
      const state = (done.written.get(runStream)?.state as RunState | undefined) ?? (await handler.load(runStream, runDecider)).state;
      return { run_id: run.run_id, run: state, position: done.position, changed: changed(done) };
    },

    /** The session's tool policy as the log has it now (a change on another edge counts at once). */
    async toolPolicy(sessionId: string): Promise<ToolPolicy | undefined> {
      const { state } = await handler.load(streams.session(sessionId), sessionDecider, { fresh: true });
      return state.exists && !state.deleted ? state.tool_policy : undefined;
    },

    async runState(runId: string, options: { fresh?: boolean } = {}) {
      const loaded = await handler.load(streams.run(runId), runDecider, options);
      return { ...loaded, state: { ...loaded.state, run_id: loaded.state.run_id || runId } };
    },

    async classifyAtomic(sessionId: string, input: { message_id: string; run_id: string; agent_type: RunStart['agent']; source: 'llm' | 'heuristic' }, meta: CommandMeta) {
      const done = await deps.onSession(sessionId, meta, { type: 'ClassifyAtomic', ...input });
      return { session: done.state, position: done.position, changed: changed(done) };
    },

    async failClassification(sessionId: string, input: { message_id: string; reason: string }, meta: CommandMeta) {
      const done = await deps.onSession(sessionId, meta, { type: 'FailClassification', ...input });
      return { session: done.state, position: done.position, changed: changed(done) };
    },

    async finishTask(
      sessionId: string,
      input: { run_id: string; status: 'succeeded' | 'failed' | 'cancelled'; answer?: string | undefined; error?: string | undefined },
      meta: CommandMeta,
    ) {
      const done = await deps.onSession(sessionId, meta, { type: 'FinishTask', ...input });
      return { session: done.state, position: done.position, changed: changed(done) };
    },

    async startQueuedMessage(sessionId: string, meta: CommandMeta) {
      const done = await deps.onSession(sessionId, meta, { type: 'StartQueuedMessage' });
      return { session: done.state, position: done.position, changed: changed(done) };
    },

    /** Change the policy in force, decided on the session's current state (two changes at once never lose one). */
    async changeToolPolicy(sessionId: string, change: ToolPolicyChange, replace: boolean, meta: CommandMeta) {
      const done = await deps.onSession(sessionId, meta, { type: 'ChangeToolPolicy', change, replace });
      return { session_id: sessionId, tool_policy: done.state.tool_policy, position: done.position, changed: changed(done) };
    },

    async setToolPolicy(sessionId: string, policy: ToolPolicy, meta: CommandMeta) {
      const done = await deps.onSession(sessionId, meta, { type: 'SetToolPolicy', policy });
      return { session_id: sessionId, tool_policy: done.state.tool_policy, position: done.position, changed: changed(done) };
    },
  };
}
