// The `closed()` of the lifecycle shape (DESIGN §10): resolves once, with the cause, and never rejects,
// so a caller awaiting it in a shutdown path needs no try/catch.
export interface ClosedSignal {
  closed(): Promise<Error | undefined>;
  /** First call wins; undefined means "closed on request". */
  resolve(cause?: Error): void;
  readonly isClosed: boolean;
}

export function closedSignal(): ClosedSignal {
  let resolvePromise!: (cause: Error | undefined) => void;
  const promise = new Promise<Error | undefined>((resolve) => (resolvePromise = resolve));
  let isClosed = false;
  return {
    closed: () => promise,
    resolve(cause) {
      if (isClosed) return;
      isClosed = true;
      resolvePromise(cause);
    },
    get isClosed() {
      return isClosed;
    },
  };
}
