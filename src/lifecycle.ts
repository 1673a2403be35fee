// Graceful shutdown for the composition root. The order of the steps is the caller's (stop accepting →
// finish in-flight → flush → close); this module only guarantees they run in that order, once, within
// a deadline, and that the process exit code says whether it all went well.

export interface ShutdownStep {
  name: string;
  run: () => Promise<void>;
}

export interface ShutdownOptions {
  /** The whole shutdown's budget, across all steps. */
  timeoutMs: number;
  log: (msg: string) => void;
}

export interface ShutdownReport {
  /** 0 when every step finished in time, 1 when one failed or the deadline passed. */
  exitCode: 0 | 1;
  completed: string[];
  failed: string[];
  /** The step still running when the deadline passed; later steps were not started. */
  timedOutDuring: string | undefined;
}

/**
 * Run the steps in order within `timeoutMs`. A failing step is logged and the next ones still run:
 * a flush that failed is no reason to leave connections open. Never rejects.
 */
export async function runShutdown(steps: readonly ShutdownStep[], options: ShutdownOptions): Promise<ShutdownReport> {
  const { timeoutMs, log } = options;
  const completed: string[] = [];
  const failed: string[] = [];
  let running: string | undefined;
  let deadlinePassed = false;

  const work = (async () => {
    for (const step of steps) {
      if (deadlinePassed) return;
      running = step.name;
      const startedAt = Date.now();
      try {
        await step.run();
        completed.push(step.name);
        log(`shutdown: ${step.name} done in ${Date.now() - startedAt} ms`);
      } catch (error) {
        failed.push(step.name);
        log(`shutdown: ${step.name} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    running = undefined;
  })();

  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), timeoutMs);
  });
  const outcome = await Promise.race([work.then(() => 'done' as const), deadline]);
  clearTimeout(timer);

  if (outcome === 'deadline') {
    deadlinePassed = true;
    log(`shutdown: timed out after ${timeoutMs} ms during ${running ?? 'an unknown step'}`);
    return { exitCode: 1, completed, failed, timedOutDuring: running };
  }
  log(failed.length === 0 ? 'shutdown: complete' : `shutdown: complete with failures (${failed.join(', ')})`);
  return { exitCode: failed.length === 0 ? 0 : 1, completed, failed, timedOutDuring: undefined };
}

const SHUTDOWN_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * On the first SIGTERM/SIGINT run the steps and exit with the report's code; on a second signal exit 1
 * at once (an operator pressing Ctrl-C twice means "now"). Returns a function that removes the handlers.
 */
export function onShutdown(steps: readonly ShutdownStep[], options: ShutdownOptions): () => void {
  let started = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (started) {
      options.log(`shutdown: ${signal} again, forcing exit`);
      process.exit(1);
      return; // unreachable in production; keeps a stubbed exit (tests) from starting a second shutdown
    }
    started = true;
    options.log(`shutdown: ${signal} received, stopping within ${options.timeoutMs} ms`);
    void runShutdown(steps, options).then((report) => process.exit(report.exitCode));
  };
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, onSignal);
  return () => {
    for (const signal of SHUTDOWN_SIGNALS) process.off(signal, onSignal);
  };
}
