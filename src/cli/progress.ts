// Progress of a long run on stderr: at most one line a second (or every 50k events when they fly by),
// so a rebuild or an import of millions of events shows it is alive without flooding the terminal.

export interface ProgressOptions {
  everyMs?: number;
  everyEvents?: number;
  now?: () => number;
}

export interface ProgressReporter {
  /** `done` events so far (a running total). Prints when a second or 50k events passed since the last line. */
  update(done: number, detail?: string): void;
  /** Seconds since the reporter was made. */
  elapsedSeconds(): number;
}

export function progressReporter(print: (line: string) => void, label: string, options: ProgressOptions = {}): ProgressReporter {
  const everyMs = options.everyMs ?? 1_000;
  const everyEvents = options.everyEvents ?? 50_000;
  const now = options.now ?? (() => performance.now());
  const started = now();
  let printedAt = started;
  let printedDone = 0;
  return {
    update(done, detail) {
      const at = now();
      if (at - printedAt < everyMs && done - printedDone < everyEvents) return;
      // The rate since the last line, not the average: a stall shows up as a stall.
      const rate = ratePerSecond(done - printedDone, at - printedAt);
      printedAt = at;
      printedDone = done;
      print(`${label}: ${done} events${detail === undefined ? '' : `, ${detail}`} (${rate} events/s)`);
    },
    elapsedSeconds: () => (now() - started) / 1_000,
  };
}

/** Events per second as a whole number; 0 for an empty interval. */
export function ratePerSecond(events: number, milliseconds: number): number {
  return milliseconds <= 0 ? 0 : Math.round((events * 1_000) / milliseconds);
}
