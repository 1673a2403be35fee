// Identical work in flight at the same time is done once: later callers with the same key share the
// first caller's promise until it settles. The KurrentDB adapter keys appends by stream, expected state
// and event ids, so a double-submitted command in one process reaches the server once instead of
// twice (where the second copy would be dropped while the first is indexed, and time out).

export interface InFlight<T> {
  run(key: string, work: () => Promise<T>): Promise<T>;
  /** Keys in flight right now (tests, diagnostics). */
  readonly size: number;
}

export function inFlight<T>(): InFlight<T> {
  const running = new Map<string, Promise<T>>();
  return {
    run(key, work) {
      const existing = running.get(key);
      if (existing !== undefined) return existing;
      const promise = Promise.resolve()
        .then(work)
        .finally(() => running.delete(key));
      running.set(key, promise);
      return promise;
    },
    get size() {
      return running.size;
    },
  };
}
