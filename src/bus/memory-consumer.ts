// A consumer of the in-process queue: takes deliveries while it has room (its concurrency), runs each
// through the shared job runner, and on stop() stops taking work and waits for what it runs.
import type { JobConsumer, JobHandler } from './bus.js';
import { closedSignal } from './closed-signal.js';
import { runDelivery, type RunnerContext } from './job-runner.js';
import type { MemoryJobQueue, QueueWorker } from './memory-queue.js';

export function memoryConsumer(queue: MemoryJobQueue, handler: JobHandler, context: RunnerContext): JobConsumer & { abandon(cause?: Error): void } {
  const running = new Set<Promise<void>>();
  const signal = closedSignal();
  let stopping = false;

  const worker: QueueWorker = {
    room: () => (stopping ? 0 : context.options.concurrency - running.size),
    deliver(delivery) {
      const run = runDelivery(delivery, handler, context)
        .catch((error) => context.logger.error('job runner failed', { kind: delivery.kind, error: String(error) }))
        .finally(() => {
          running.delete(run);
          queue.pump();
        });
      running.add(run);
    },
  };
  queue.attach(worker, context.options.ackWaitMs);

  return {
    async stop() {
      stopping = true;
      queue.detach(worker);
      await Promise.allSettled([...running]);
      signal.resolve();
    },
    closed: signal.closed,
    /** The bus closed under it: stop taking work, do not wait (its queue is gone). */
    abandon(cause) {
      stopping = true;
      queue.detach(worker);
      signal.resolve(cause);
    },
  };
}
