// The one loop every processor of the log runs in: projections (read models, the client feed) and
// reactors (the executor, timers) alike. $all from a checkpoint → the processor's handle() → one atomic
// commit of its view operations and the checkpoint, per batch.
//
// What it guarantees, whatever the processor computes:
// - exactly-once effect on the read models: a batch's operations and its checkpoint commit together, a
//   restarted runner resumes after the committed checkpoint, and the store ignores a commit that does
//   not move the checkpoint forward, so a crash at any point neither loses nor double-applies an event
//   (side effects outside the read models, such as commands a reactor sends, must be idempotent: they
//   may run again for a batch whose commit did not land);
// - one active runner per processor: it holds the lease `<lease>`, renews it every ttl/3, and every
//   commit is fenced by it; others stand by and take over once it lapses;
// - failures do not end it: they are logged and retried with backoff.
import { randomUUID } from 'node:crypto';
import type { EventStore, Position, StoredEvent, Subscription } from '../events/store.js';
import { LeaseLostError, type Lease, type ViewOp, type ViewStore } from '../projections/views.js';
import { leaseKeeper } from './lease-keeper.js';
import { eventLoopPacer } from './pacer.js';

/** What a batch produced: operations to commit with the checkpoint, and what to do once committed. */
export interface BatchOutcome {
  ops: ViewOp[];
  /** Runs after the commit landed (settle caches, publish what was committed). */
  committed?: () => void;
}

/** A processor of the log, as the runner drives it. */
export interface BatchProcessor {
  /** Names the checkpoint in the view store. */
  name: string;
  /** Names the lease, e.g. `projection:views`. */
  leaseName: string;
  /**
   * The lease is ours. Given the stored checkpoint (undefined: none yet), prepare and return the
   * position to continue after (a projection whose version changed resets and returns 0).
   */
  activate(checkpoint: { position: Position; version: number } | undefined): Promise<Position>;
  handle(events: StoredEvent[]): Promise<BatchOutcome>;
  /** The lease is gone, or a batch failed: drop whatever in-memory state assumed it. */
  deactivate(): void;
  /** The checkpoint version this processor's data is valid for (standbys read the checkpoint only if it matches). */
  version: number;
}

export interface RunnerDeps {
  store: EventStore;
  views: ViewStore;
  processor: BatchProcessor;
  /** Lease owner; a random id by default. Give a stable one only if restarts should reclaim at once. */
  owner?: string;
  /** Lease time to live (default 10 s); renewed every ttl/3, standbys retry every ttl/3. */
  leaseTtlMs?: number;
  /** Largest batch of events handled and committed at once (default 1000). */
  maxBatch?: number;
  onCommitted?: (position: Position) => void;
  log?: (msg: string) => void;
}

export interface Runner {
  /** Last position this process committed or started from (a standby does not track the active one). */
  position(): Position;
  /**
   * True once the processor's checkpoint includes `position` (committed here, or, on a standby, by the
   * active runner, seen through the checkpoint); false after timeoutMs (default 5 s) or on stop.
   */
  waitFor(position: Position, timeoutMs?: number): Promise<boolean>;
  /** Holds the lease and is processing. */
  isActive(): boolean;
  /** Stop processing and release the lease. */
  stop(): Promise<void>;
  /** Resolves once stopped. Failures do not end it: they are logged and retried with backoff. */
  readonly done: Promise<void>;
}

const DEFAULT_LEASE_TTL_MS = 10_000;
const DEFAULT_MAX_BATCH = 1_000;
const DEFAULT_WAIT_MS = 5_000;
const MAX_BACKOFF_MS = 10_000;
const STANDBY_POLL_MS = 25;

export function startRunner(deps: RunnerDeps): Runner {
  const { store, views, processor } = deps;
  const ttl = deps.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  const lease: Lease = { name: processor.leaseName, owner: deps.owner ?? `${processor.name}-${randomUUID()}` };
  const log = deps.log ?? ((msg: string) => console.warn(`[${processor.name}] ${msg}`));
  const waiters = new Set<{ position: Position; settle: (reached: boolean) => void }>();

  let committed: Position = 0;
  let active = false;
  let stopping = false;
  // Ends the current active session (lease lost, stop); replaced at the start of each session.
  let endSession: () => void = () => {};
  // Wakes a sleeping standby or backoff so stop() is prompt.
  let wake: () => void = () => {};

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  function reached(position: Position): void {
    committed = position;
    for (const waiter of waiters) if (waiter.position <= position) waiter.settle(true);
  }

  // A standby learns what the active runner (in another process) committed by polling the checkpoint,
  // so waitFor() answers correctly on every instance, not only on the one holding the lease.
  let polling = false;
  async function pollCheckpointWhileStandby(): Promise<void> {
    if (polling) return;
    polling = true;
    try {
      while (waiters.size > 0 && !active && !stopping) {
        const checkpoint = await views.checkpoint(processor.name).catch(() => undefined);
        if (checkpoint !== undefined && checkpoint.version === processor.version && !active) {
          for (const waiter of waiters) if (waiter.position <= checkpoint.position) waiter.settle(true);
        }
        await new Promise((resolve) => setTimeout(resolve, STANDBY_POLL_MS));
      }
    } finally {
      polling = false;
    }
  }

  async function activeSession(leaseTakenAt: number): Promise<void> {
    active = true;
    let ended = false;
    const sessionEnded = new Promise<void>((resolve) => {
      endSession = () => {
        ended = true;
        resolve();
      };
    });

    // Renew every ttl/3 in the background (while idle, waiting for events) and inline before each commit
    // (a long catch-up runs on microtasks only and can starve timers). A refused or failed renewal means
    // another process may take over: stop applying. The local expiry fires no later than the store's, so
    // a stalled renewal demotes us before a standby can take over. (Commits are fenced regardless; this
    // stops wasted work and keeps isActive() honest.)
    const keeper = leaseKeeper(views, lease, ttl, leaseTakenAt);
    let localExpiry: NodeJS.Timeout | undefined;
    const armExpiry = () => {
      clearTimeout(localExpiry);
      localExpiry = setTimeout(() => {
        if (ended) return;
        if (Date.now() < keeper.expiresAt()) return armExpiry(); // renewed inline meanwhile
        log('lease renewal overdue; standing by');
        endSession();
      }, Math.max(0, keeper.expiresAt() - Date.now()));
    };
    armExpiry();
    const renewal = setInterval(() => {
      if (ended) return;
      keeper.renew().then(
        (held) => {
          if (ended) return;
          if (held) armExpiry();
          else {
            log('lease lost (taken by another owner, or it may have lapsed); standing by');
            endSession();
          }
        },
        (error: unknown) => {
          if (ended) return;
          log(`lease renewal failed (${describe(error)}); standing by`);
          endSession();
        },
      );
    }, Math.max(1, Math.floor(ttl / 3)));
    const pacer = eventLoopPacer();

    let subscription: Subscription | undefined;
    try {
      const after = await processor.activate(await views.checkpoint(processor.name));
      if (ended) return;
      reached(after);

      const handleBatch = async (events: StoredEvent[]): Promise<void> => {
        if (ended) throw new LeaseLostError(lease); // closing: apply nothing more
        const last = events[events.length - 1];
        if (last === undefined) return;
        await pacer.breathe();
        try {
          const outcome = await processor.handle(events);
          await keeper.ensure();
          await views.commit(processor.name, outcome.ops, last.position, lease);
          outcome.committed?.();
        } catch (error) {
          processor.deactivate(); // in-memory state may now be ahead of the store
          if (error instanceof LeaseLostError) {
            log(`commit up to ${last.position} refused: lease lost to another process; standing by`);
            endSession();
          }
          throw error;
        }
        reached(last.position);
        deps.onCommitted?.(last.position);
      };

      subscription = store.subscribeToAll({ after, maxBatch: deps.maxBatch ?? DEFAULT_MAX_BATCH }, handleBatch);
      const failed = subscription.done.then(
        () => undefined,
        (error: unknown) => error,
      );
      const outcome = await Promise.race([failed, sessionEnded.then(() => undefined)]);
      // A subscription that ends on its own (its store closed) is a failure too: retry with backoff
      // rather than spin.
      if (!ended) throw outcome ?? new Error('the $all subscription ended');
    } finally {
      ended = true;
      clearInterval(renewal);
      clearTimeout(localExpiry);
      active = false;
      processor.deactivate();
      await subscription?.close().catch(() => {});
      subscription = undefined;
      void pollCheckpointWhileStandby();
    }
  }

  async function run(): Promise<void> {
    let failures = 0;
    let standingBy = false;
    while (!stopping) {
      let held: boolean;
      const askedAt = Date.now();
      try {
        held = await views.acquireLease(lease, ttl);
      } catch (error) {
        log(`cannot reach the view store to take the lease (${describe(error)})`);
        held = false;
      }
      if (stopping) break;
      if (!held) {
        if (!standingBy) log(`standby: lease ${lease.name} is held by another process`);
        standingBy = true;
        await sleep(Math.max(1, Math.floor(ttl / 3)));
        continue;
      }
      if (standingBy) log('took over the lease; processing');
      standingBy = false;
      try {
        await activeSession(askedAt);
        failures = 0;
      } catch (error) {
        if (stopping) break;
        failures++;
        const backoff = Math.min(100 * 2 ** Math.min(failures, 16), MAX_BACKOFF_MS);
        log(`processing failed after position ${committed} (${describe(error)}); retrying in ${backoff} ms`);
        await sleep(backoff);
      }
    }
  }

  const done = run().finally(async () => {
    for (const waiter of waiters) waiter.settle(false);
    await views.releaseLease(lease).catch(() => {});
  });

  return {
    position: () => committed,
    isActive: () => active,
    waitFor(position, timeoutMs = DEFAULT_WAIT_MS) {
      if (committed >= position) return Promise.resolve(true);
      if (stopping) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const waiter = {
          position,
          settle: (ok: boolean) => {
            clearTimeout(timer);
            waiters.delete(waiter);
            resolve(ok);
          },
        };
        const timer = setTimeout(() => waiter.settle(false), timeoutMs);
        waiters.add(waiter);
        if (!active) void pollCheckpointWhileStandby();
      });
    },
    async stop() {
      stopping = true;
      endSession();
      wake();
      await done;
    },
    done,
  };
}

export function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
