// Routes for agent runs' tools: a session's tool policy (which calls the user must approve), and the
// answers to a run's tool calls for clients without a socket (the same use cases as the socket's
// tool_result and hitl_decision frames). The policy is read from the command side: what is in force
// now, not what a read model has caught up with.
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { parseToolPolicyChange } from '../agents/tool-policy.js';
import type { Commands } from '../commands/service.js';
import type { RunState } from '../commands/run.js';
import { commandCounter } from './counted.js';
import type { Metrics } from './metrics.js';
import { commandMeta, etag, jsonBody } from './request.js';
import { toolDecisionBody, toolResultBody } from './schemas.js';

/** The body is read as any JSON object here; parseToolPolicyChange says precisely what is wrong with it. */
const toolPolicyAny = v.unknown();

/** What an answer did to its run: the status, and the calls still waiting for the IDE. */
const runOutcome = (run: RunState) => ({ run_status: run.status, waiting_for: Object.keys(run.pending) });

export function toolRoutes(commands: Commands, metrics: Metrics) {
  const app = new Hono();
  const counted = commandCounter(metrics);

  async function policyOf(sessionId: string) {
    // Fresh: a remembered approval may have been recorded by another process.
    const { session, revision } = await commands.sessionState(sessionId, { fresh: true });
    return { policy: session.tool_policy, revision };
  }

  app.get('/sessions/:id/tool-policy', async (c) => {
    const id = c.req.param('id');
    const { policy, revision } = await policyOf(id);
    c.header('ETag', etag(revision));
    return c.json({ session_id: id, tool_policy: policy });
  });

  /**
   * PATCH changes the lists it names and keeps the others; PUT sets the whole policy, the lists it
   * leaves out back to the defaults. Remembered approvals stay unless `reset_remembered` is true.
   */
  async function change(c: Context, replace: boolean) {
    const id = c.req.param('id') ?? '';
    const body = parseToolPolicyChange(await jsonBody(c, toolPolicyAny));
    // Decided on the policy in force when the command runs: a concurrent change is never lost (If-Match pins a revision).
    const done = await counted('ChangeToolPolicy', () => commands.changeToolPolicy(id, body, replace, commandMeta(c)));
    return c.json({ session_id: id, tool_policy: done.tool_policy, changed: done.changed, position: done.position });
  }
  app.put('/sessions/:id/tool-policy', (c) => change(c, true));
  app.patch('/sessions/:id/tool-policy', (c) => change(c, false));

  app.post('/sessions/:id/tool-calls/:call_id/result', async (c) => {
    const body = await jsonBody(c, toolResultBody);
    const sessionId = c.req.param('id');
    const callId = c.req.param('call_id');
    const done = await counted('AnswerToolCall', () =>
      commands.answerToolCall(sessionId, { call_id: callId, result: body.result ?? undefined, error: body.error ?? undefined }, commandMeta(c)),
    );
    return c.json({ session_id: sessionId, call_id: callId, run_id: done.run_id, changed: done.changed, ...runOutcome(done.run), position: done.position });
  });

  app.post('/sessions/:id/tool-calls/:call_id/decision', async (c) => {
    const body = await jsonBody(c, toolDecisionBody);
    const sessionId = c.req.param('id');
    const callId = c.req.param('call_id');
    const done = await counted('DecideToolCall', () =>
      commands.decideToolCall(
        sessionId,
        {
          call_id: callId,
          decision: body.decision,
          modified_arguments: body.modified_arguments ?? undefined,
          feedback: body.feedback ?? undefined,
          remember: body.remember ?? undefined,
        },
        commandMeta(c),
      ),
    );
    return c.json({
      session_id: sessionId,
      call_id: callId,
      run_id: done.run_id,
      decision: body.decision,
      changed: done.changed,
      ...runOutcome(done.run),
      position: done.position,
    });
  });

  return app;
}
