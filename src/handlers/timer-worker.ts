// Durable timers as jobs that wait: a job carries its due time and naks itself with the remaining delay
// until then (JetStream redelivers after the delay; the embedded queue does the same), so timers survive
// restarts and fire once across instances (the command they send has an id derived from the timer).
//   plan_wake: a subtask's retry time has come → dispatch what is ready.
//   tool_timeout: the IDE has not answered a tool call in time → the run fails cleanly.
import type { Job } from '../bus/bus.js';
import type { Commands } from '../commands/service.js';
import { DomainError } from '../commands/errors.js';
import { readySubtasks } from '../commands/readiness.js';
import { uuidv5 } from '../events/ids.js';
import { field, msUntil } from './jobs.js';

/** Longest single wait: a far deadline is reached in steps (a broker's redelivery delay has limits too). */
const MAX_WAIT_MS = 60_000;

export function timerWorker(deps: { commands: Commands; toolCallTimeoutS: number; now?: () => number }) {
  const { commands } = deps;
  const now = deps.now ?? Date.now;

  /** Not yet due: wait (nak with the remaining delay). Returns true when due. */
  function due(job: Job, at: string): boolean {
    const wait = msUntil(at, now());
    if (wait <= 0) return true;
    job.nak(Math.min(wait, MAX_WAIT_MS));
    return false;
  }

  async function planWake(job: Job): Promise<void> {
    const planId = field(job.payload, 'plan_id');
    if (!due(job, field(job.payload, 'at'))) return;
    const plan = (await commands.planState(planId).catch(() => undefined))?.state;
    if (!plan) return;
    if (readySubtasks(plan, now()).ready.length === 0) return;
    try {
      await commands.onPlan(planId, { type: 'DispatchReady', now: new Date(now()) }, { command_id: uuidv5(`wake:${job.id}`), causation_id: job.id });
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
    }
  }

  async function toolTimeout(job: Job): Promise<void> {
    const runId = field(job.payload, 'run_id');
    const callId = field(job.payload, 'call_id');
    if (!due(job, field(job.payload, 'at'))) return;
    const { state } = await commands.runState(runId, { fresh: true });
    if (state.status !== 'running' || !state.pending[callId]) return;
    const call = state.pending[callId]!;
    await commands
      .failRun(
        runId,
        { error: `the IDE did not answer the ${call.tool_name} call ${callId} within ${deps.toolCallTimeoutS} s`, code: 'tool_call_timeout' },
        { command_id: uuidv5(`tool-timeout:${callId}`), causation_id: job.id },
      )
      .catch((error: unknown) => {
        if (!(error instanceof DomainError)) throw error;
      });
  }

  return { planWake, toolTimeout };
}
