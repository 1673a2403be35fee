// Read-your-writes: a command answers with the log position it reached; a query given
// `?wait_for=<position>` waits until the read models have reached it. In a process that runs the
// projector we wait on it directly; an edge without one polls the committed checkpoint.
import type { Projector } from '../projections/projector.js';
import type { ViewStore } from '../projections/views.js';

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
