// A projection plugged into the processor runner (src/processors/runner.ts): $all → the projection's
// apply() → one atomic commit of read-model changes and checkpoint per batch. On top of the runner's
// guarantees (exactly-once effect, one active instance by lease, backoff), this adds:
// - a version bump resets the projection's data and rebuilds it from position 0;
// - speed: documents are cached across batches (valid only while the lease is held), so a rebuild does
//   not read the store once per event;
// - rebuild(): the whole log, page by page, outside the live loop (the CLI and benchmarks use it).
import { randomUUID } from 'node:crypto';
import type { EventStore, Position, StoredEvent } from '../events/store.js';
import { startRunner, type Runner } from '../processors/runner.js';
import { leaseKeeper } from '../processors/lease-keeper.js';
import { eventLoopPacer } from '../processors/pacer.js';
import type { Lease, ViewStore } from './views.js';
import type { Projection } from './projection.js';

export type { Projection, ProjectionTx } from './projection.js';
import { documentCache } from './document-cache.js';
import { foldBatch } from './fold.js';

export interface ProjectorDeps {
  store: EventStore;
  views: ViewStore;
  projection: Projection;
  /** Lease owner; a random id by default. Give a stable one only if restarts should reclaim at once. */
  owner?: string;
  /** Lease time to live (default 10 s); renewed every ttl/3, standbys retry every ttl/3. */
  leaseTtlMs?: number;
  /** Largest batch of events folded into one commit (default 1000). */
  maxBatch?: number;
  /** Documents kept in memory across batches (default 100,000). */
  maxCachedDocs?: number;
  onCommitted?: (position: Position) => void;
  log?: (msg: string) => void;
}

export type Projector = Runner;

export interface RebuildDeps {
  store: EventStore;
  views: ViewStore;
  projection: Projection;
  onProgress?: (projected: number, position: Position) => void;
  /** Events read per readAll page and folded into one commit (default 2000). */
  pageSize?: number;
  /** The rebuild holds the projection's lease; it waits up to one ttl for a lapsed holder (default 10 s). */
  leaseTtlMs?: number;
  maxCachedDocs?: number;
}

export interface RebuildResult {
  events: number;
  position: Position;
  seconds: number;
}

const DEFAULT_LEASE_TTL_MS = 10_000;
const DEFAULT_PAGE_SIZE = 2_000;
const DEFAULT_MAX_CACHED_DOCS = 100_000;

export const leaseName = (projection: Projection): string => `projection:${projection.name}`;

export function startProjector(deps: ProjectorDeps): Projector {
  const { views, projection } = deps;
  const log = deps.log ?? ((msg: string) => console.warn(`[projector ${projection.name}] ${msg}`));
  const cache = documentCache(deps.maxCachedDocs ?? DEFAULT_MAX_CACHED_DOCS);
  return startRunner({
    store: deps.store,
    views,
    owner: deps.owner ?? `projector-${randomUUID()}`,
    log,
    ...(deps.leaseTtlMs !== undefined ? { leaseTtlMs: deps.leaseTtlMs } : {}),
    ...(deps.maxBatch !== undefined ? { maxBatch: deps.maxBatch } : {}),
    ...(deps.onCommitted !== undefined ? { onCommitted: deps.onCommitted } : {}),
    processor: {
      name: projection.name,
      leaseName: leaseName(projection),
      version: projection.version,
      async activate(checkpoint) {
        cache.clear();
        if (checkpoint !== undefined && checkpoint.version === projection.version) {
          await projection.resumed?.(views);
          return checkpoint.position;
        }
        log(
          checkpoint === undefined
            ? `no checkpoint; building version ${projection.version} from the start`
            : `version ${checkpoint.version} → ${projection.version}; resetting and rebuilding from the start`,
        );
        await views.reset(projection.name, projection.collections, projection.indexPrefixes, projection.feedPrefixes);
        await views.setVersion(projection.name, projection.version);
        cache.clearAsEmpty(); // we just emptied the store and hold the lease: a cache miss means "absent"
        return 0;
      },
      async handle(events: StoredEvent[]) {
        const { ops, settle } = await foldBatch(events, projection, views, cache);
        return {
          ops,
          committed() {
            settle();
            projection.committed?.(ops);
          },
        };
      },
      deactivate: () => cache.clear(),
    },
  });
}

/**
 * Rebuild a projection from the whole log: reset, setVersion, then readAll page by page, one commit per
 * page. Holds the projection's lease throughout, so it never races a running projector; a projector
 * that later takes over finds a current checkpoint and just continues.
 */
export async function rebuild(deps: RebuildDeps): Promise<RebuildResult> {
  const { store, views, projection } = deps;
  const started = performance.now();
  const ttl = deps.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  const pageSize = deps.pageSize ?? DEFAULT_PAGE_SIZE;
  const lease: Lease = { name: leaseName(projection), owner: `rebuild-${randomUUID()}` };

  const deadline = Date.now() + ttl;
  let leaseTakenAt = Date.now();
  while (!(await views.acquireLease(lease, ttl))) {
    if (Date.now() >= deadline) {
      throw new Error(`cannot rebuild ${projection.name}: lease ${lease.name} is held by a running projector; stop it first`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.floor(ttl / 10))));
    leaseTakenAt = Date.now();
  }
  // Renewed in the background (a reset of a big projection takes a while) and inline before each commit
  // (folding runs on microtasks and can starve timers); a lapse aborts the rebuild with LeaseLostError.
  const keeper = leaseKeeper(views, lease, ttl, leaseTakenAt);
  const renewal = setInterval(() => {
    keeper.renew().catch(() => {});
  }, Math.max(1, Math.floor(ttl / 3)));
  const pacer = eventLoopPacer();

  const cache = documentCache(deps.maxCachedDocs ?? DEFAULT_MAX_CACHED_DOCS);
  let position: Position = 0;
  let events = 0;
  try {
    await views.reset(projection.name, projection.collections, projection.indexPrefixes, projection.feedPrefixes);
    await views.setVersion(projection.name, projection.version);
    cache.clearAsEmpty();
    // Pipelined: page N+1 is folded while page N's commit runs in the view store. The cache is settled
    // before the commit resolves, which is safe only because a failed rebuild is abandoned whole; any
    // store read during a fold waits for the commit in flight, so it never sees the store behind.
    let inFlight: Promise<void> = Promise.resolve();
    let after: Position = 0;
    try {
      for (;;) {
        const page = await store.readAll({ after, maxCount: pageSize });
        const last = page[page.length - 1];
        if (last === undefined) break;
        after = last.position;
        await pacer.breathe();
        const { ops, settle } = await foldBatch(page, projection, views, cache, () => inFlight);
        settle();
        await inFlight;
        await keeper.ensure();
        inFlight = views.commit(projection.name, ops, last.position, lease).then(() => {
          position = last.position;
          events += page.length;
          deps.onProgress?.(events, position);
        });
        inFlight.catch(() => {}); // handled: awaited before the next commit or in finally below
      }
    } finally {
      await inFlight; // surfaces a failed last commit; never leaves one running behind our back
    }
  } finally {
    clearInterval(renewal);
    await views.releaseLease(lease).catch(() => {});
  }
  return { events, position, seconds: (performance.now() - started) / 1_000 };
}
