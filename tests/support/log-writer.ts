// A second writer on a test server's event log: the real command side on the same SQLite file, for the
// events no HTTP route writes yet (agent switches come from the socket, execution from the executor).
// The server's projector picks them up from the log like any other append (its subscription polls the
// file), so `?wait_for=<position>` on the server reads them.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { createCommandHandler } from '../../src/commands/handle.js';
import type { PlanCommand } from '../../src/commands/plan.js';
import { createCommands } from '../../src/commands/service.js';
import { openSqliteEventStore } from '../../src/events/sqlite-store.js';

export type LogWriter = Awaited<ReturnType<typeof openLogWriter>>;

/** Commands on the log in `dir` (a TestServer's directory). `clockOffsetMs` moves this writer's clock. */
export async function openLogWriter(dir: string, options: { clockOffsetMs?: number } = {}) {
  const store = openSqliteEventStore(join(dir, 'planline.db'));
  const offset = options.clockOffsetMs ?? 0;
  const commands = createCommands(createCommandHandler(store, { clock: () => new Date(Date.now() + offset) }));
  const meta = () => ({ command_id: randomUUID() });
  const onPlan = (planId: string, command: PlanCommand) => commands.onPlan(planId, command, meta());
  return {
    commands,
    meta,
    onPlan,
    /** Start a plan and run every subtask to success, in dependency order; the plan completes. */
    async runToCompletion(planId: string, subtaskIds: readonly string[]) {
      await onPlan(planId, { type: 'StartExecution', max_parallel: 1 });
      let position = 0;
      for (const id of subtaskIds) {
        await onPlan(planId, { type: 'DispatchSubtask', subtask_id: id, now: new Date() });
        await onPlan(planId, { type: 'StartSubtask', subtask_id: id, attempt: 1 });
        position = (await onPlan(planId, { type: 'CompleteSubtask', subtask_id: id, attempt: 1, result: 'done' })).position;
      }
      return position;
    },
    /** Start a plan, fail its first subtask for good, then fail the plan. */
    async runToFailure(planId: string, subtaskId: string, reason: string) {
      await onPlan(planId, { type: 'StartExecution', max_parallel: 1 });
      await onPlan(planId, { type: 'DispatchSubtask', subtask_id: subtaskId, now: new Date() });
      await onPlan(planId, { type: 'StartSubtask', subtask_id: subtaskId, attempt: 1 });
      await onPlan(planId, { type: 'FailSubtask', subtask_id: subtaskId, attempt: 1, error: reason, now: new Date(), max_attempts: 1, backoff_ms: 1_000 });
      return (await onPlan(planId, { type: 'FailPlan', reason })).position;
    },
    close: () => store.close(),
  };
}
