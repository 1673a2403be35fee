// Read-your-writes: a command answers with the log position it reached; a query given
// `?wait_for=<position>` waits until the read models have reached it. In a process that runs the
// projector we wait on it directly; an edge without one polls the committed checkpoint.
import type { Projector } from '../projections/projector.js';
import type { ViewStore } from '../projections/views.js';
import { fail } from './problem.js';

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
