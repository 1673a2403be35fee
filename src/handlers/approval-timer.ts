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
const PAGE = 100;

export function startApprovalTimer(deps: { views: ViewStore; commands: Commands; log: Logger; now?: () => number }): ApprovalTimer {
  const now = deps.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  /** Expire every due approval; returns the next deadline (ms) or +Infinity when none is pending. */
  async function expireDue(): Promise<number> {
    // The due index lists pending approvals soonest first, so a tick reads only what is due plus one.
    for (;;) {
      const soonest = await deps.views.range(indexNames.approvalsDue, { limit: PAGE });
      const due = soonest.filter((m) => -m.score <= now());
      if (due.length === 0) return soonest.length ? -soonest[0]!.score : Number.POSITIVE_INFINITY;
      const docs = (await deps.views.getMany(APPROVALS, due.map((m) => m.id))) as Array<ApprovalDoc | undefined>;
      let changed = 0;
      for (const approval of docs) {
        if (!approval || approval.status !== 'pending') continue;
        try {
          const done = await deps.commands.expireApproval(approval.plan_id, approval.approval_request_id, {
            // One id per approval: however many timers fire, the expiry is applied once.
            command_id: uuidv5(`expire-approval:${approval.approval_request_id}`),
          });
          if (done.changed) changed++;
          deps.log.info('approval deadline passed', { plan_id: approval.plan_id, approval_request_id: approval.approval_request_id });
        } catch (error) {
          if (!(error instanceof DomainError)) throw error;
          deps.log.debug('approval expiry refused', { approval_request_id: approval.approval_request_id, code: error.code });
        }
      }
      // Expired approvals leave the index once projected; until then, look again shortly.
      if (changed === 0 || due.length < PAGE) return changed > 0 ? now() + 50 : now() + MAX_SLEEP_MS;
    }
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
