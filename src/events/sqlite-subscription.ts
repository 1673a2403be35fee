// Catch-up then live subscriptions to $all of the SQLite event store.
//
// Every batch a subscription delivers starts at exactly the position after the last one it delivered,
// from one of two sources that agree on every position:
// - the committed tail (direct path): events this process just committed, held in memory as frozen
//   StoredEvents, handed over without touching the file;
// - the file: read strictly after the last delivered position, as ever.
// The tail is used only when it holds the very next position. When it does not — the subscriber is
// still catching up, the tail has dropped what it needs (a slow subscriber), another process appended
// in between (the tail's next event lies further on), or this process committed events the tail never
// held — the missing range is read from the file first. Other processes' appends produce no
// notification here: a caught-up subscription also looks at the file every poll interval.
import type { CommittedTail } from './sqlite-tail.js';
import type { BatchHandler, Position, StoredEvent, SubscribeOptions, Subscription } from './store.js';

/** Where subscriptions get their events, from the store that owns them. */
export interface SubscriptionSource {
  tail: CommittedTail;
  /** Last position this process's worker reported committed. */
  ownHead(): Position;
  /** The file (or a private database's worker), strictly after `after`. */
  readAll(after: Position, limit: number): Promise<StoredEvent[]>;
  /** Resolves at the next commit of this process or worker loss; `cancel` stops waiting. */
  nextChange(): { changed: Promise<void>; cancel(): void };
  /** Bumped at every change, so a read can tell whether one happened while it was in flight. */
  changes(): number;
  /** Bumped whenever a worker died: the file may hold events of ours that the tail never will. */
  rechecks(): number;
  pollIntervalMs: number;
  stats: DeliveryStats;
}

/** Where delivered events came from; tests and benchmarks read it. */
export interface DeliveryStats {
  /** Events handed to subscribers from the committed tail. */
  directEvents: number;
  /** Events handed to subscribers from reads of the log. */
  readEvents: number;
  /** Reads of the log made by subscriptions (including those that found nothing). */
  reads: number;
}

export interface SqliteSubscription extends Subscription {
  /** The last position delivered to the handler (the tail may forget everything up to the lowest one). */
  delivered(): Position;
}

export function subscribe(source: SubscriptionSource, options: SubscribeOptions, handler: BatchHandler, maxBatch: number): SqliteSubscription {
  const { tail, stats } = source;
  let stopped = false;
  let last = options.after ?? 0;
  let stopWaiting: (() => void) | null = null;

  async function deliver(): Promise<void> {
    // Start on a later turn: the first batch must not reach the handler before subscribeToAll returns.
    await new Promise<void>((resolve) => setImmediate(resolve));
    // The file may hold events after `last` that no notification will announce: look there first.
    let fileMayHaveMore = true;
    let rechecks = source.rechecks();
    while (!stopped) {
      if (rechecks !== source.rechecks()) {
        // A worker died, perhaps after committing events it never reported: only the file knows.
        rechecks = source.rechecks();
        fileMayHaveMore = true;
      }
      const direct = tail.from(last, maxBatch);
      if (direct.length > 0) {
        stats.directEvents += direct.length;
        await handler(direct);
        last = (direct[direct.length - 1] as StoredEvent).position;
        continue;
      }
      const nextHeld = tail.firstAfter(last);
      if (fileMayHaveMore || nextHeld !== undefined || source.ownHead() > last) {
        // Read the gap only: what follows it is in the tail.
        const limit = nextHeld === undefined ? maxBatch : Math.min(maxBatch, nextHeld - last - 1);
        const seen = source.changes();
        const batch = await source.readAll(last, limit);
        stats.reads += 1;
        if (stopped) break; // closed while the read was in flight: deliver nothing more
        if (batch.length > 0) {
          stats.readEvents += batch.length;
          await handler(batch);
          last = (batch[batch.length - 1] as StoredEvent).position;
          fileMayHaveMore = batch.length === limit;
          continue;
        }
        fileMayHaveMore = false;
        // A commit landed while we read: look again before sleeping. Otherwise sleep even if the tail or
        // our head say there is more (the file should have shown it): one read per wake, never a spin.
        if (seen !== source.changes()) continue;
      }
      // Until this process commits, or the poll (another process may have appended).
      if ((await waitForChange()) === 'poll') fileMayHaveMore = true;
    }
  }

  function waitForChange(): Promise<'change' | 'poll'> {
    return new Promise((resolve) => {
      const { changed, cancel } = source.nextChange();
      const finish = (reason: 'change' | 'poll') => {
        clearTimeout(timer);
        cancel();
        stopWaiting = null;
        resolve(reason);
      };
      const timer = setTimeout(() => finish('poll'), source.pollIntervalMs);
      void changed.then(() => finish('change'));
      stopWaiting = () => finish('poll');
    });
  }

  const done = deliver();
  // `done` is the failure channel; mark it observed so a subscription nobody awaits cannot crash the
  // process with an unhandled rejection. Whoever awaits `done` still sees the error.
  done.catch(() => undefined);
  return {
    done,
    delivered: () => last,
    async close() {
      stopped = true;
      stopWaiting?.();
      await done.catch(() => undefined);
    },
  };
}
