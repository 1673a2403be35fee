// Counting commands by outcome for /metrics: applied, unchanged (a repeat or a retried key), refused
// (a DomainError: the 4xx answers) or failed (anything else: a 500).
import { DomainError } from '../commands/errors.js';
import type { Metrics } from './metrics.js';

export type CountedCommand = <T extends { changed: boolean }>(name: string, run: () => Promise<T>) => Promise<T>;

export function commandCounter(metrics: Metrics): CountedCommand {
  return async (name, run) => {
    let result;
    try {
      result = await run();
    } catch (error) {
      metrics.commands.inc({ command: name, outcome: error instanceof DomainError ? 'refused' : 'failed' });
      throw error;
    }
    metrics.commands.inc({ command: name, outcome: result.changed ? 'applied' : 'unchanged' });
    return result;
  };
}
