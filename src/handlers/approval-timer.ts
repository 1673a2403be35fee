// Approval deadlines (seed rule 1). Deadlines are events; the pending approvals, with their deadlines,
// are in the read model, which is rebuilt from the log, so after a restart the timer simply looks
// again. At each deadline it sends ExpireApproval; the plan decider applies the configured policy
// (expire or approve) and treats a repeated or late expiry as a no-op, so two timers racing, or a timer
// firing after the user decided, change nothing.
import type { Commands } from '../commands/service.js';
import { DomainError } from '../commands/errors.js';
import { uuidv5 } from '../events/ids.js';
import type { ViewStore } from '../projections/views.js';
import { APPROVALS, type ApprovalDoc } from '../projections/approval-view.js';
import { indexNames } from '../projections/views-projection.js';
import type { Logger } from '../log.js';

export interface ApprovalTimer {
  /** Look for due approvals now (called after each projector commit and on a slow tick). */
  poke(): void;
  stop(): Promise<void>;
}

const MAX_SLEEP_MS = 1_000;
const PAGE = 500;

export function startApprovalTimer(deps: { views: ViewStore; commands: Commands; log: Logger; now?: () => number }): ApprovalTimer {
  const now = deps.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  async function expireDue(): Promise<number> {
    // Walk every pending approval; a busy deployment has few at once (they are waiting on people).
    let nextDeadline = Number.POSITIVE_INFINITY;
    let below: number | undefined;
    for (;;) {
      const members = await deps.views.range(indexNames.approvals({ status: 'pending' }), { limit: PAGE, ...(below !== undefined ? { below } : {}) });
      const docs = (await deps.views.getMany(APPROVALS, members.map((m) => m.id))) as Array<ApprovalDoc | undefined>;
      for (const approval of docs) {
        if (!approval || approval.status !== 'pending') continue;
        const deadline = Date.parse(approval.deadline);
        if (deadline > now()) {
          nextDeadline = Math.min(nextDeadline, deadline);
          continue;
        }
        try {
          await deps.commands.expireApproval(approval.plan_id, approval.approval_request_id, {
            // One id per approval: however many timers fire, the expiry is applied once.
            command_id: uuidv5(`expire-approval:${approval.approval_request_id}`),
          });
          deps.log.info('approval deadline passed', { plan_id: approval.plan_id, approval_request_id: approval.approval_request_id });
        } catch (error) {
          if (!(error instanceof DomainError)) throw error;
          deps.log.debug('approval expiry refused', { approval_request_id: approval.approval_request_id, code: error.code });
        }
      }
      if (members.length < PAGE) break;
      below = members.at(-1)!.score;
    }
    return nextDeadline;
  }

  function schedule(delayMs: number): void {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => poke(), Math.max(0, Math.min(delayMs, MAX_SLEEP_MS)));
    timer.unref();
  }

  function poke(): void {
    if (stopped || running) return;
    running = expireDue()
      .then((next) => schedule(next - now()))
      .catch((error: unknown) => {
        deps.log.warn('approval timer failed; retrying', { error });
        schedule(MAX_SLEEP_MS);
      })
      .finally(() => {
        running = undefined;
      });
  }

  poke();
  return {
    poke,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
