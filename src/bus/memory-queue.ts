// The in-process queue of one job kind, with JetStream work-queue semantics: each job goes to one of
// the competing workers; a delivery that is neither settled nor kept alive with working() within the
// ack wait goes back to the queue (another worker, attempt + 1); a nak comes back after its delay.
// A delivery that timed out can no longer settle the job: only the current delivery's ack counts.
import type { Delivery } from './job-runner.js';
import { decodeJob } from './json.js';

interface QueuedJob {
  id: string;
  kind: string;
  /** JSON bytes, decoded afresh for every delivery so a handler cannot change what a retry sees. */
  data: Uint8Array;
  deliveries: number;
}

/** A consumer attached to the queue; the queue hands it deliveries while it has room. */
export interface QueueWorker {
  room(): number;
  deliver(delivery: Delivery): void;
}

export interface MemoryJobQueue {
  push(job: { id: string; kind: string; data: Uint8Array }): void;
  attach(worker: QueueWorker, ackWaitMs: number): void;
  detach(worker: QueueWorker): void;
  /** Hand out what is ready to workers with room (after a worker freed a slot). */
  pump(): void;
  /** Cancel every timer: the queue is gone with its process. */
  close(): void;
}

export function memoryJobQueue(): MemoryJobQueue {
  const ready: QueuedJob[] = [];
  /** The delivery currently holding each job, by a token that stale deliveries do not have. */
  const holders = new Map<QueuedJob, { token: number; timer: NodeJS.Timeout }>();
  const delayed = new Set<NodeJS.Timeout>();
  const workers: QueueWorker[] = [];
  let nextWorker = 0;
  let nextToken = 0;
  // Shared by the kind's workers, as a durable consumer's ack_wait is: the last one attached sets it.
  let ackWaitMs = 30_000;
  let pumpScheduled = false;
  let closed = false;

  const requeue = (job: QueuedJob, front: boolean) => {
    if (front) ready.unshift(job);
    else ready.push(job);
    schedulePump();
  };

  const holdTimer = (job: QueuedJob, token: number) =>
    setTimeout(() => {
      if (holders.get(job)?.token !== token) return;
      holders.delete(job);
      requeue(job, true); // a timed-out job is due now, ahead of newer work
    }, ackWaitMs);

  const release = (job: QueuedJob, token: number): boolean => {
    const holder = holders.get(job);
    if (holder?.token !== token) return false;
    clearTimeout(holder.timer);
    holders.delete(job);
    return true;
  };

  const deliveryOf = (job: QueuedJob): Delivery => {
    const token = ++nextToken;
    job.deliveries += 1;
    holders.set(job, { token, timer: holdTimer(job, token) });
    return {
      id: job.id,
      kind: job.kind,
      payload: decodeJob(job.data),
      attempt: job.deliveries,
      ack: () => void release(job, token),
      remove: () => void release(job, token),
      nak(delayMs) {
        if (!release(job, token) || closed) return;
        if (delayMs <= 0) return requeue(job, false);
        const timer = setTimeout(() => {
          delayed.delete(timer);
          requeue(job, false);
        }, delayMs);
        delayed.add(timer);
      },
      working() {
        const holder = holders.get(job);
        if (holder?.token !== token) return;
        clearTimeout(holder.timer);
        holder.timer = holdTimer(job, token);
      },
    };
  };

  const pump = () => {
    pumpScheduled = false;
    while (ready.length > 0 && !closed) {
      const worker = nextWithRoom();
      if (!worker) return;
      worker.deliver(deliveryOf(ready.shift()!));
    }
  };

  /** Round robin over workers with room, so competing consumers share the work. */
  const nextWithRoom = (): QueueWorker | undefined => {
    for (let tried = 0; tried < workers.length; tried++) {
      const worker = workers[nextWorker % workers.length]!;
      nextWorker = (nextWorker + 1) % workers.length;
      if (worker.room() > 0) return worker;
    }
    return undefined;
  };

  // Deferred, so a handler never starts inside enqueue() or inside another handler's ack().
  const schedulePump = () => {
    if (pumpScheduled || closed) return;
    pumpScheduled = true;
    setImmediate(pump);
  };

  return {
    push({ id, kind, data }) {
      requeue({ id, kind, data, deliveries: 0 }, false);
    },
    attach(worker, ackWait) {
      ackWaitMs = ackWait;
      workers.push(worker);
      schedulePump();
    },
    detach(worker) {
      const index = workers.indexOf(worker);
      if (index >= 0) workers.splice(index, 1);
    },
    pump: schedulePump,
    close() {
      closed = true;
      for (const { timer } of holders.values()) clearTimeout(timer);
      for (const timer of delayed) clearTimeout(timer);
      holders.clear();
      delayed.clear();
      ready.length = 0;
      workers.length = 0;
    },
  };
}
