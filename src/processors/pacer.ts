// Catch-up and rebuild loops resolve only promises that are already settled (SQLite reads, the memory
// store), so without a pause they would hold the event loop for as long as the log is long: no timers,
// no health checks, no HTTP. breathe() yields one macrotask turn every ~20 ms of work.

export interface Pacer {
  breathe(): Promise<void>;
}

export function eventLoopPacer(sliceMs = 20): Pacer {
  let since = performance.now();
  return {
    async breathe(): Promise<void> {
      if (performance.now() - since < sliceMs) return;
      await new Promise<void>((resolve) => setImmediate(resolve));
      since = performance.now();
    },
  };
}
