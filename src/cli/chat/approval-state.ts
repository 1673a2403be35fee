// Which plan approval is waiting for the user, as the frames tell it: plan_approval_required opens
// one, a snapshot says which is pending now, and the plan's outcome (approved, rejected, expired,
// superseded, cancelled, a modification requested) closes it.
import type { Frame } from './tool-calls.js';

export interface PendingApproval {
  approval_request_id: string;
  plan_id: string | undefined;
}

const CLOSING = new Set(['plan_approved', 'plan_rejected', 'plan_modification_requested', 'plan_expired', 'plan_superseded', 'plan_cancelled']);

const str = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
const rec = (value: unknown) => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined);

export function pendingAfter(current: PendingApproval | undefined, frame: Frame): PendingApproval | undefined {
  const meta = rec(frame.metadata);
  if (frame.type === 'plan_approval_required') {
    const id = str(frame.approval_request_id) ?? str(meta?.approval_request_id);
    return id ? { approval_request_id: id, plan_id: str(frame.plan_id) ?? str(meta?.plan_id) } : current;
  }
  if (frame.type === 'snapshot') {
    const pending = Array.isArray(meta?.pending_approvals) ? meta.pending_approvals : [];
    for (const raw of pending) {
      const entry = rec(raw);
      const id = str(entry?.approval_request_id) ?? str(entry?.request_id);
      if (entry && id && (entry.request_type === undefined || entry.request_type === 'plan')) {
        return { approval_request_id: id, plan_id: str(rec(entry.details)?.plan_id) ?? str(frame.plan_id) };
      }
    }
    return undefined;
  }
  if (CLOSING.has(frame.type) && current) {
    const approval = str(frame.approval_request_id) ?? str(meta?.approval_request_id);
    const plan = str(frame.plan_id) ?? str(meta?.plan_id);
    if (approval === current.approval_request_id || (plan !== undefined && plan === current.plan_id) || (approval === undefined && plan === undefined)) return undefined;
  }
  return current;
}
