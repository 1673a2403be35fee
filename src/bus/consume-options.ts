// Options with their defaults applied and checked once, so both adapters read plain numbers and a
// bad option fails at the call instead of misbehaving later.
import type { ConsumeOptions, DeadLetter } from './bus.js';

export interface ResolvedConsumeOptions {
  concurrency: number;
  ackWaitMs: number;
  maxDeliver: number;
  /** Delay before the retry that follows a failed attempt `attempt` (1-based). */
  backoff: (attempt: number) => number;
  onDeadLetter: ((letter: DeadLetter) => Promise<void> | void) | undefined;
}

/** 1 s, 2 s, 4 s … capped at 60 s: quick retries for blips, patience for an outage. */
const defaultBackoff = (attempt: number): number => Math.min(1_000 * 2 ** (attempt - 1), 60_000);

export function resolveConsumeOptions(options: ConsumeOptions = {}): ResolvedConsumeOptions {
  const concurrency = options.concurrency ?? 1;
  const ackWaitMs = options.ackWaitMs ?? 30_000;
  const maxDeliver = options.maxDeliver ?? 5;
  positiveInteger('concurrency', concurrency);
  positiveInteger('ackWaitMs', ackWaitMs);
  positiveInteger('maxDeliver', maxDeliver);
  if (options.onDeadLetter !== undefined && typeof options.onDeadLetter !== 'function') {
    throw new TypeError('onDeadLetter must be a function');
  }
  return { concurrency, ackWaitMs, maxDeliver, backoff: backoffOf(options.backoffMs), onDeadLetter: options.onDeadLetter };
}

function backoffOf(option: ConsumeOptions['backoffMs']): (attempt: number) => number {
  if (option === undefined) return defaultBackoff;
  if (typeof option === 'function') {
    // A function can still answer nonsense at run time; clamp rather than throw inside a worker.
    return (attempt) => {
      const delay = option(attempt);
      return Number.isFinite(delay) && delay > 0 ? delay : 0;
    };
  }
  if (!Array.isArray(option) || option.length === 0) throw new TypeError('backoffMs must be a non-empty array or a function');
  for (const delay of option) {
    if (typeof delay !== 'number' || !Number.isFinite(delay) || delay < 0) {
      throw new TypeError(`backoffMs entries must be finite numbers >= 0, got ${String(delay)}`);
    }
  }
  const delays = [...option];
  return (attempt) => delays[Math.min(attempt, delays.length) - 1] ?? 0;
}

function positiveInteger(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`${name} must be a positive integer, got ${String(value)}`);
  }
}

/** How many dead letters to read: a non-negative integer, default all (capped). */
export function readLimit(limit: unknown): number {
  if (limit === undefined) return 10_000;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) {
    throw new TypeError(`limit must be a non-negative integer, got ${String(limit)}`);
  }
  return limit;
}
