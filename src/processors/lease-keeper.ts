// Keeping a lease on the read-model store: the fence that lets exactly one process commit a
// processor's checkpoint at a time.
import { LeaseLostError, type Lease, type ViewStore } from '../projections/views.js';

export interface LeaseKeeper {
  /** Extend the lease now (concurrent calls share one request). True when still held. */
  renew(): Promise<boolean>;
  /** When the lease lapses unless renewed, as far as this process can tell. */
  expiresAt(): number;
  /**
   * Renew when a third of the ttl has passed; refuse (LeaseLostError) once a whole ttl has: by then
   * the lease may have lapsed, another process may have committed in between, and re-taking it would
   * keep a stale cache. Call before each commit.
   */
  ensure(): Promise<void>;
}

/**
 * Tracks when the lease was last confirmed. Ages are measured from when a renewal was sent, so they
 * never run behind the store's own expiry.
 */
export function leaseKeeper(views: ViewStore, lease: Lease, ttl: number, takenAt: number): LeaseKeeper {
  let renewedAt = takenAt;
  let pending: Promise<boolean> | undefined;
  function renew(): Promise<boolean> {
    pending ??= (async () => {
      const sentAt = Date.now();
      try {
        if (sentAt - renewedAt >= ttl) return false;
        const held = await views.acquireLease(lease, ttl);
        if (held) renewedAt = Math.max(renewedAt, sentAt);
        return held;
      } finally {
        pending = undefined;
      }
    })();
    return pending;
  }
  return {
    renew,
    expiresAt: () => renewedAt + ttl,
    async ensure(): Promise<void> {
      const age = Date.now() - renewedAt;
      if (age >= ttl || (age >= ttl / 3 && !(await renew()))) throw new LeaseLostError(lease);
    },
  };
}
