// Read-your-writes: a command answers with the log position it reached; a query given
// `?wait_for=<position>` waits until the read models have reached it. In a process that runs the
// projector we wait on it directly; an edge without one polls the committed checkpoint.
import type { Projector } from '../projections/projector.js';
import type { Context } from 'hono';
import type { EventStore } from '../events/store.js';
import type { ViewStore } from '../projections/views.js';
import { fail, problem, ProblemError } from './problem.js';
import { query } from './request.js';
import { waitForQuery } from './schemas.js';

export interface ReadConsistency {
  /** True once the read models include `position`; false after `timeoutMs`. */
  waitFor(position: number, timeoutMs: number): Promise<boolean>;
  /** Position the read models have reached. */
  position(): Promise<number>;
}

export function projectorConsistency(projector: Projector): ReadConsistency {
  return {
    waitFor: (position, timeoutMs) => projector.waitFor(position, timeoutMs),
    position: async () => projector.position(),
  };
}

export function checkpointConsistency(views: ViewStore, projection: string, pollMs = 20): ReadConsistency {
  const position = async () => (await views.checkpoint(projection))?.position ?? 0;
  return {
    position,
    async waitFor(target, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if ((await position()) >= target) return true;
        if (Date.now() >= deadline) return false;
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
    },
  };
}

/**
 * Reads that never lie after a restart: until the read models have reached the log head as it stood
 * when this process started, an acknowledged write may be missing from them (embedded read models
 * are still being rebuilt, or a projector is catching up). Queries wait for that point, boundedly,
 * instead of answering 404 or a stale body; once reached, the gate stays open.
 */
export interface StartupGate {
  /** True once the read models reached the start-up head. */
  open(): boolean;
  /** Wait until open, at most timeoutMs; false when still behind. */
  wait(timeoutMs: number): Promise<boolean>;
  /** The log head at start-up that reads wait for. */
  readonly head: number;
}

export function startupGate(consistency: ReadConsistency, head: number): StartupGate {
  let opened = head === 0;
  return {
    head,
    open: () => opened,
    async wait(timeoutMs) {
      if (opened) return true;
      if (await consistency.waitFor(head, timeoutMs)) opened = true;
      return opened;
    },
  };
}

/** How long a request waits for the read models to include a position before answering 503. */
export const WAIT_TIMEOUT_MS = 5_000;

/** Wait until the read models include `position`; otherwise 503 not_caught_up (the write, if any, stands). */
export async function awaitReadModels(consistency: ReadConsistency, position: number, timeoutMs = WAIT_TIMEOUT_MS): Promise<void> {
  if (await consistency.waitFor(position, timeoutMs)) return;
  fail(503, 'not_caught_up', `the read models have not reached position ${position} yet; retry shortly`, {
    position: await consistency.position(),
  });
}

/** How long a query waits for the read models to catch up after a restart before answering 503. */
const STARTUP_WAIT_MS = 2_000;

/**
 * For query routes: after a restart, wait (boundedly) for the read models to reach the start-up head
 * (503 not_caught_up with Retry-After otherwise); when the request asks `?wait_for=<position>`, wait
 * until they include it (400 position_ahead_of_log for a position the log has not reached; 503 after
 * the timeout).
 */
export function waitForRequested(store: EventStore, consistency: ReadConsistency, startup?: StartupGate): (c: Context) => Promise<void> {
  return async (c) => {
    const { wait_for } = query(c, waitForQuery);
    if (startup !== undefined && !startup.open() && !(await startup.wait(STARTUP_WAIT_MS))) {
      throw new ProblemError(
        problem(503, 'not_caught_up', `the read models are still catching up with the log after a restart (to position ${startup.head}); retry shortly`, {
          position: await consistency.position(),
          log_head_at_start: startup.head,
        }),
        { 'retry-after': '1' },
      );
    }
    if (wait_for === undefined) return;
    const head = await store.headPosition();
    if (wait_for > head) {
      fail(400, 'position_ahead_of_log', `position ${wait_for} is beyond the end of the log (${head}); use a position from a command response`, {
        log_head: head,
      });
    }
    await awaitReadModels(consistency, wait_for);
  };
}
