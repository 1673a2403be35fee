// The main thread's side of the SQLite worker: it starts the thread, sends every request of one
// event-loop turn in one message, settles promises from the worker's answers, and replaces a worker
// that died.
//
// A dead worker (crashed, terminated, exited) takes the requests in flight with it: they fail with
// EventStoreUnavailableError. An append among them may or may not have committed before the thread
// died; a retry with the same event ids finds out (the store answers it idempotently). The next request
// starts a new worker on the same file. A worker that dies before it answered anything (the file is
// gone, unreadable, or holds another log) counts as a failed start: the next attempt waits a backoff
// that doubles up to a cap, and requests until then fail at once with the cause, so a store that cannot
// start fails clearly instead of spinning up threads. A private ':memory:' database lives only in its
// worker: when that dies the log is gone, and the store stays unavailable.
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, type SqliteDurability } from './sqlite-reader.js';
import type { CommitStats, FromWorker, WorkerData, WorkerFailure, WorkerRequest, WorkerResult } from './sqlite-protocol.js';
import { ImportAbandonedError, ImportConflictError } from './ordered-import.js';
import { EventStoreUnavailableError, WrongExpectedRevisionError, type Position } from './store.js';

/** The worker entry: next to this module in src/, and in dist/ because `npm run build` copies it there. */
export const WORKER_FILE = new URL('./sqlite-worker.mjs', import.meta.url);

export interface RestartBackoff {
  /** Wait before the first retry after a failed start (default 100 ms); doubles per failed start. */
  initialMs: number;
  /** Longest wait between start attempts (default 5 s). */
  maxMs: number;
}

export interface WorkerLinkOptions {
  path: string;
  workerData: WorkerData;
  /** What every worker must report, or it is not used. */
  durability: SqliteDurability;
  /** The log id the file holds; a restarted worker must report the same. Undefined for a private database. */
  logId: string | undefined;
  /** False for a private database: its log dies with the thread, so there is nothing to restart. */
  restartable: boolean;
  backoff: RestartBackoff;
  /** A group commit wrote events, up to `head`. Called after that message's requests were settled. */
  onCommitted(head: Position): void;
  /** A worker died: events it committed but never reported may be in the file. */
  onLost(): void;
}

/** Runs just before an answered request's promise resolves, with the worker's result. */
export type ResultHook = (ok: unknown, wrote: boolean) => void;

export interface WorkerLinkStats extends CommitStats {
  /** Worker threads started (the first one included). */
  workerStarts: number;
  /** Worker threads that died without being asked to close. */
  workerDeaths: number;
}

export interface WorkerLink {
  request(message: WorkerRequest, onOk?: ResultHook): Promise<unknown>;
  /** The log id the first worker reported (a private database's is known only then). */
  readonly ready: Promise<string>;
  /** Resolves once no request is waiting for an answer. */
  whenIdle(): Promise<void>;
  stats(): WorkerLinkStats;
  /** The thread in use right now, if any (tests make it crash). */
  current(): Worker | undefined;
  /** Refuse new requests; wait for those in flight; end the thread. */
  close(): Promise<void>;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  onOk: ResultHook | undefined;
}

interface RunningWorker {
  thread: Worker;
  /** Reported 'ready' with the expected settings. */
  ready: boolean;
  /** Answered at least one request: it works, so its death is not a failed start. */
  answered: boolean;
  dead: boolean;
  exitExpected: boolean;
  exited: Promise<void>;
  stats: CommitStats;
}

const NO_STATS: CommitStats = { transactions: 0, appends: 0, events: 0, largestGroup: 0 };

export function linkSqliteWorker(options: WorkerLinkOptions): WorkerLink {
  const { path, backoff } = options;
  let nextRequestId = 1;
  const pending = new Map<number, Pending>();
  /** Requests made during this turn of the event loop; they cross to the worker in one message. */
  let outbox: WorkerRequest[] = [];
  let postScheduled = false;
  let current: RunningWorker | null = null;
  /** Set when no worker will ever run again: closed, or a private database's worker died. */
  let permanent: EventStoreUnavailableError | null = null;
  let closing = false;
  let failedStarts = 0;
  let nextStartAt = 0;
  let lastFailure: EventStoreUnavailableError | null = null;
  let workerStarts = 0;
  let workerDeaths = 0;
  /** Commit stats of workers that are gone, so the totals survive a restart. */
  let pastStats: CommitStats = { ...NO_STATS };
  const idleWaiters: (() => void)[] = [];

  let resolveReady!: (logId: string) => void;
  let rejectReady!: (error: Error) => void;
  const ready = new Promise<string>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => undefined); // observed by logId(); a failure also reaches every request
  let readySettled = false;

  function start(): RunningWorker {
    workerStarts += 1;
    let thread: Worker;
    try {
      thread = new Worker(WORKER_FILE, { workerData: options.workerData });
    } catch (error) {
      failedStart(new EventStoreUnavailableError(`cannot start the event store worker: ${describe(error)}`, { cause: error }));
      throw lastFailure;
    }
    // Like an open database file, an idle store must not keep the process alive; requests in flight do.
    thread.unref();
    let markExited!: () => void;
    const running: RunningWorker = {
      thread,
      ready: false,
      answered: false,
      dead: false,
      exitExpected: false,
      exited: new Promise<void>((resolve) => (markExited = resolve)),
      stats: { ...NO_STATS },
    };
    thread.on('message', (message: FromWorker) => onMessage(running, message));
    thread.on('error', (error) => lost(running, `crashed: ${describe(error)}`, error));
    thread.on('messageerror', (error) => lost(running, `sent a message that cannot be read: ${describe(error)}`, error));
    thread.on('exit', (code) => {
      markExited();
      if (!running.exitExpected) lost(running, `exited with code ${code}`);
    });
    current = running;
    return running;
  }

  function failedStart(error: EventStoreUnavailableError): void {
    failedStarts += 1;
    const wait = Math.min(backoff.initialMs * 2 ** (failedStarts - 1), backoff.maxMs);
    nextStartAt = Date.now() + wait;
    lastFailure = error;
  }

  /** The worker to send to: the running one, a new one, or (backing off after failed starts) an error. */
  function worker(): RunningWorker {
    if (current !== null) return current;
    if (permanent !== null) throw permanent;
    const wait = nextStartAt - Date.now();
    if (wait > 0 && lastFailure !== null) {
      throw new EventStoreUnavailableError(`${lastFailure.message} (next start attempt in ${wait} ms)`, { cause: lastFailure });
    }
    return start();
  }

  function onMessage(running: RunningWorker, message: FromWorker): void {
    if (running.dead) return;
    switch (message.type) {
      case 'results':
        if (message.results.length > 0 && !running.answered) {
          running.answered = true;
          failedStarts = 0;
        }
        if (message.stats !== undefined) running.stats = message.stats;
        for (const result of message.results) settle(result);
        if (message.committed && message.head !== undefined) options.onCommitted(message.head);
        if (pending.size === 0) becameIdle();
        return;
      case 'ready': {
        const { durability, logId } = options;
        if (message.journalMode !== durability.journalMode || message.synchronous !== durability.synchronous) {
          lost(running, `reports ${message.journalMode}/${message.synchronous}, expected ${durability.journalMode}/${durability.synchronous}`);
        } else if (logId !== undefined && message.logId !== logId) {
          lost(running, `found log ${message.logId} in the file, not ${logId}: the file was replaced`);
        } else {
          running.ready = true;
          if (!readySettled) {
            readySettled = true;
            resolveReady(message.logId);
          }
        }
        return;
      }
      case 'startFailed':
        lost(running, `cannot start: ${message.message}`);
        return;
      case 'closed':
        return; // 'exit' follows
    }
  }

  function settle(result: WorkerResult): void {
    const waiting = pending.get(result.id);
    if (waiting === undefined) return;
    pending.delete(result.id);
    if (result.error !== undefined) {
      waiting.reject(toError(result.error));
      return;
    }
    // The hook sees the answer before anyone awaiting the promise does (the direct path uses it to
    // buffer what was just committed before subscribers are woken).
    waiting.onOk?.(result.ok, result.wrote === true);
    waiting.resolve(result.ok);
  }

  /** `running` is gone: everything waiting on it fails now; the next request starts a new worker. */
  function lost(running: RunningWorker, reason: string, cause?: unknown): void {
    if (running.dead) return;
    running.dead = true;
    workerDeaths += 1;
    retire(running);
    const error = new EventStoreUnavailableError(`event store ${path}: worker ${reason}`, { cause });
    if (!running.answered) failedStart(error);
    if (!options.restartable) permanent = error;
    if (permanent !== null && !readySettled) {
      readySettled = true;
      rejectReady(error);
    }
    outbox = [];
    const waiting = [...pending.values()];
    pending.clear();
    for (const request of waiting) request.reject(error);
    becameIdle();
    void running.thread.terminate();
    options.onLost();
  }

  /** `running` is no longer the current worker; its commit counts stay in the totals. */
  function retire(running: RunningWorker): void {
    if (current === running) current = null;
    pastStats = {
      transactions: pastStats.transactions + running.stats.transactions,
      appends: pastStats.appends + running.stats.appends,
      events: pastStats.events + running.stats.events,
      largestGroup: Math.max(pastStats.largestGroup, running.stats.largestGroup),
    };
    running.stats = { ...NO_STATS };
  }

  function request(message: WorkerRequest, onOk?: ResultHook): Promise<unknown> {
    if (closing) return Promise.reject(new EventStoreUnavailableError('event store is closed'));
    let running: RunningWorker;
    try {
      running = worker();
    } catch (error) {
      return Promise.reject(error);
    }
    message.id = nextRequestId++;
    return new Promise<unknown>((resolve, reject) => {
      if (pending.size === 0) running.thread.ref();
      pending.set(message.id, { resolve, reject, onOk });
      outbox.push(message);
      if (!postScheduled) {
        postScheduled = true;
        // After the rest of this turn: every append made meanwhile joins the message, and the group.
        setImmediate(postOutbox);
      }
    });
  }

  function postOutbox(): void {
    postScheduled = false;
    const requests = outbox;
    outbox = [];
    if (requests.length === 0 || current === null) return;
    try {
      current.thread.postMessage({ type: 'requests', requests });
    } catch (error) {
      // Something in a request cannot be cloned (a read given a stream name that is not a string).
      const unsent = new EventStoreUnavailableError(`cannot send to the event store worker: ${describe(error)}`, { cause: error });
      for (const { id } of requests) pending.get(id)?.reject(unsent);
      for (const { id } of requests) pending.delete(id);
      if (pending.size === 0) becameIdle();
    }
  }

  function becameIdle(): void {
    current?.thread.unref();
    for (const wake of idleWaiters.splice(0)) wake();
  }

  function whenIdle(): Promise<void> {
    if (pending.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => idleWaiters.push(resolve));
  }

  async function close(): Promise<void> {
    if (!closing) {
      closing = true;
      permanent ??= new EventStoreUnavailableError('event store is closed');
    }
    await whenIdle(); // every append made so far has committed (or failed)
    const running = current;
    if (running === null) return;
    running.exitExpected = true;
    running.thread.ref();
    running.thread.postMessage({ type: 'close' });
    await running.exited;
    retire(running);
  }

  // The first worker starts now: a worker file that cannot run fails the store's opening, and a private
  // database exists from the start (its log id is known only once its worker reports).
  start();

  return {
    request,
    ready,
    whenIdle,
    current: () => current?.thread,
    stats: () => {
      const live = current?.stats ?? NO_STATS;
      return {
        transactions: pastStats.transactions + live.transactions,
        appends: pastStats.appends + live.appends,
        events: pastStats.events + live.events,
        largestGroup: Math.max(pastStats.largestGroup, live.largestGroup),
        workerStarts,
        workerDeaths,
      };
    },
    close,
  };
}

function toError(failure: WorkerFailure): Error {
  if (failure.kind === 'abandoned') return new ImportAbandonedError(failure.message);
  if (failure.kind === 'conflict') {
    return failure.index === undefined
      ? new WrongExpectedRevisionError(failure.stream, failure.expected, failure.actual)
      : new ImportConflictError(failure.stream, failure.expected, failure.actual, failure.index);
  }
  const error = new EventStoreUnavailableError(failure.message);
  if (failure.code !== undefined) Object.assign(error, { code: failure.code });
  return error;
}

/** For the message of a missing worker file. */
export function workerFilePath(): string {
  return fileURLToPath(WORKER_FILE);
}
