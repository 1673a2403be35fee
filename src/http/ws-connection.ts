// One IDE socket: the session's feed streamed to it exactly once, in order, and what it sends turned into
// commands. The resume algorithm of DESIGN §5 lives here:
//
//   subscribe live first (frames queue behind the attach), then replay the history after `since`, then
//   drain the queue dropping offsets already sent. A frame that arrives past a gap (a publish lost with a
//   projector or the bus) makes the socket read the gap from history first; a bus reconnect makes it
//   read whatever it may have missed. Where history no longer reaches back (trimmed) or the epoch
//   changed, it sends `resync` and a snapshot, and goes on from the snapshot's offset.
//
// Everything the socket does with the feed runs through one sequential task queue, so offsets leave in
// order whatever interleaves; the queue is bounded (an overflow drops the queued frames and reads them
// back from history), and so is the socket's send buffer (a consumer that lets it fill is closed with a
// reason, and can resume).
import type { Logger } from '../log.js';
import type { WsLimits } from '../config.js';
import { DomainError } from '../commands/errors.js';
import type { ViewStore } from '../projections/views.js';
import { feedName, withoutNulls, type FeedFrame, type FeedMessage } from '../projections/feed.js';
import type { FeedHub } from './ws-hub.js';
import { errorFrame, parseInbound, ProtocolError, type Inbound } from './ws-protocol.js';
import { snapshotOf, type ControlFrame } from './ws-snapshot.js';
import type { CommandFrame } from './ws-commands.js';

/** What a connection needs of the socket (a `ws` WebSocket in production). */
export interface SocketLike {
  send(text: string): void;
  close(code: number, reason: string): void;
  terminate(): void;
  ping(): void;
  readonly bufferedAmount: number;
}

export interface ConnectionDeps {
  sessionId: string;
  /** Who opened the socket: its commands are this principal's. */
  principal: string;
  socket: SocketLike;
  hub: FeedHub;
  views: ViewStore;
  /** The feed's current epoch (the log's identity and the feed version it is built with). */
  epoch: () => Promise<string>;
  run: (sessionId: string, frame: CommandFrame, principal: string) => Promise<void>;
  limits: WsLimits;
  log: Logger;
  /** Resolves once the feed may be read (a feed rebuilding at start would answer a resume with a resync). */
  ready?: () => Promise<void>;
  /** Called once, when the connection ends (closed by either side, or given up on by this edge). */
  onClosed?: () => void;
  /**
   * Whether this socket's principal may still read the session, asked again after a frame that says
   * access changed (a share revoked, the session deleted): undefined when it may, else why not.
   */
  recheckAccess?: () => Promise<DomainError | undefined>;
}

export const CLOSE = {
  goingAway: 1001,
  policyViolation: 1008,
  internalError: 1011,
  tryAgainLater: 1013,
  slowConsumer: 4008,
  tokenExpired: 4401,
  forbidden: 4403,
  sessionNotFound: 4404,
} as const;

/** History read per page on replay and fills. */
const PAGE = 500;
/** Live frames queued behind a replay or a fill before the queue is dropped and read back from history. */
const MAX_QUEUED_FRAMES = 2_000;

type Task = { kind: 'attach'; since: number | undefined; epoch: string | undefined } | { kind: 'frames'; message: FeedMessage } | { kind: 'fill' };

// Each frame is serialized once per epoch, however many sockets of the session send it.
const serialized = new WeakMap<object, { epoch: string; text: string }>();
function textOf(frame: FeedFrame, epoch: string): string {
  const cached = serialized.get(frame);
  if (cached?.epoch === epoch) return cached.text;
  const text = JSON.stringify({ ...frame, epoch });
  serialized.set(frame, { epoch, text });
  return text;
}

export interface Connection {
  /** Begin streaming: `since`/`epoch` from the connect query, both undefined for a first connect. */
  start(since: number | undefined, epoch: string | undefined): void;
  /** An inbound frame (text, or binary, which is refused). */
  receive(data: string | ArrayBuffer, binary: boolean): void;
  /** A pong or any frame from the client. */
  touch(): void;
  /** Heartbeat tick: false when the socket answered nothing since the last tick (it is terminated). */
  beat(): boolean;
  /** Send a control frame and close. */
  refuse(frame: ControlFrame, code: number, reason: string): void;
  /** The socket closed: stop everything, release the subscription. */
  closed(): void;
  /** Offset of the last feed frame sent (tests and drain logging). */
  lastSent(): number;
}

export function openConnection(deps: ConnectionDeps): Connection {
  const { sessionId, socket, views, limits, log } = deps;
  const feed = feedName(sessionId);
  let epoch: string | undefined;
  let lastSent = 0;
  /** A frame just sent may have taken this principal's access away (checked after the task). */
  let accessMayHaveChanged = false;
  let alive = true;
  let ended = false;
  let reported = false;
  let unwatch: (() => void) | undefined;
  let unwatchReconnect: (() => void) | undefined;

  const tasks: Task[] = [];
  let queuedFrames = 0;
  let pumping = false;

  // Inbound: one frame at a time, in order (a decision right after a message must not overtake it).
  let inbound: Promise<void> = Promise.resolve();
  let windowStart = 0;
  let windowCount = 0;

  function sendText(text: string, live: boolean): boolean {
    if (ended) return false;
    if (live && socket.bufferedAmount + text.length > limits.maxBufferedBytes) {
      end(CLOSE.slowConsumer, `slow consumer: more than ${limits.maxBufferedBytes} bytes unsent; reconnect with since=${lastSent}`);
      return false;
    }
    socket.send(text);
    return true;
  }

  function sendControl(frame: ControlFrame): void {
    sendText(JSON.stringify(withoutNulls(frame)), false);
  }

  function sendFrame(frame: FeedFrame, live: boolean): void {
    if (sendText(textOf(frame, epoch as string), live)) lastSent = frame.offset;
    const about = frame.metadata as Record<string, unknown> | undefined;
    if (about?.access_changed === true || about?.session_status === 'deleted') accessMayHaveChanged = true;
  }

  /** After a frame that changed who may read the session: a socket that may no longer read it closes. */
  async function confirmAccess(): Promise<void> {
    if (!accessMayHaveChanged || deps.recheckAccess === undefined || ended) return;
    accessMayHaveChanged = false;
    const refusal = await deps.recheckAccess();
    if (refusal === undefined || ended) return;
    sendControl(errorFrame(refusal.code, refusal.message, { http_status: refusal.status }));
    end(refusal.status === 404 ? CLOSE.sessionNotFound : CLOSE.forbidden, refusal.status === 404 ? 'session not found' : 'forbidden');
  }

  /** The connection is over for this edge (its slot and subscription are free), whatever the socket still flushes. */
  function report(): void {
    if (reported) return;
    reported = true;
    deps.onClosed?.();
  }

  function end(code: number, reason: string): void {
    if (ended) return;
    ended = true;
    try {
      socket.close(code, reason);
    } catch {
      socket.terminate();
    }
    release();
    report();
  }

  function release(): void {
    ended = true;
    tasks.length = 0;
    unwatch?.();
    unwatch = undefined;
    unwatchReconnect?.();
    unwatchReconnect = undefined;
  }

  /** Replay paces itself: it waits for the send buffer to drain rather than overflow it. */
  async function drained(): Promise<void> {
    const deadline = Date.now() + 2 * limits.heartbeatMs;
    while (!ended && socket.bufferedAmount > limits.maxBufferedBytes / 2) {
      if (Date.now() > deadline) {
        end(CLOSE.slowConsumer, `slow consumer: the replay could not be sent; reconnect with since=${lastSent}`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  async function snapshot(current: string, reason: string | undefined): Promise<void> {
    if (reason !== undefined) {
      sendControl({
        type: 'resync',
        recovered: false,
        content: 'Some updates could not be replayed; here is where the session stands now',
        session_id: sessionId,
        epoch: current,
        metadata: { reason, since: lastSent },
      });
    }
    const taken = await snapshotOf(views, sessionId, current);
    if (ended) return;
    epoch = current;
    sendControl(taken.frame);
    lastSent = taken.offset;
  }

  /** Send everything after lastSent from history; resync when history cannot continue the stream. */
  async function replay(): Promise<void> {
    for (;;) {
      if (ended) return;
      const page = await views.readFeed(feed, { after: lastSent, limit: PAGE });
      if (ended) return;
      if (page.last === undefined) {
        // An empty feed continues only a stream that has not started (a session not projected yet).
        if (lastSent > 0) await snapshot(epoch ?? (await deps.epoch()), 'history_unavailable');
        return;
      }
      if (lastSent > page.last || lastSent + 1 < (page.first as number)) {
        await snapshot(epoch ?? (await deps.epoch()), lastSent > page.last ? 'ahead_of_history' : 'history_trimmed');
        return;
      }
      for (const { offset, entry } of page.entries) {
        if (offset <= lastSent) continue;
        if (offset !== lastSent + 1) return snapshot(epoch ?? (await deps.epoch()), 'history_trimmed');
        await drained();
        if (ended) return;
        sendFrame(entry as FeedFrame, false);
      }
      if (page.entries.length < PAGE) return;
    }
  }

  async function attach(since: number | undefined, clientEpoch: string | undefined): Promise<void> {
    if (!unwatch) {
      unwatch = await deps.hub.watch(sessionId, (message) => enqueue({ kind: 'frames', message }));
      unwatchReconnect = deps.hub.onReconnect(() => enqueue({ kind: 'fill' }));
      if (ended) return release();
    }
    await deps.ready?.();
    if (ended) return;
    const current = await deps.epoch();
    if (since === undefined) return snapshot(current, undefined);
    if (clientEpoch !== undefined && clientEpoch !== current) return snapshot(current, 'epoch_changed');
    epoch = current;
    lastSent = since;
    await replay();
  }

  async function deliver(message: FeedMessage): Promise<void> {
    if (epoch === undefined) return; // not attached yet: the attach reads it from history
    if (message.epoch !== epoch) return snapshot(message.epoch, 'epoch_changed');
    for (const frame of message.frames) {
      if (ended) return;
      if (frame.offset <= lastSent) continue;
      if (frame.offset > lastSent + 1) {
        await replay(); // the gap, from history (it holds everything that was published)
        if (frame.offset <= lastSent) continue;
        if (frame.offset > lastSent + 1) return snapshot(epoch, 'history_trimmed');
      }
      sendFrame(frame, true);
    }
  }

  function enqueue(task: Task): void {
    if (ended) return;
    if (task.kind === 'frames') {
      queuedFrames += task.message.frames.length;
      if (queuedFrames > MAX_QUEUED_FRAMES) {
        // Too far behind to hold in memory: drop the queued frames and read them back from history.
        for (let i = tasks.length - 1; i >= 0; i--) if (tasks[i]!.kind === 'frames') tasks.splice(i, 1);
        queuedFrames = 0;
        task = { kind: 'fill' };
      }
    }
    if (task.kind === 'fill' && tasks.some((t) => t.kind === 'fill')) return;
    tasks.push(task);
    void pump();
  }

  async function pump(): Promise<void> {
    if (pumping) return;
    pumping = true;
    try {
      while (!ended && tasks.length > 0) {
        const task = tasks.shift()!;
        if (task.kind === 'frames') queuedFrames -= task.message.frames.length;
        try {
          if (task.kind === 'attach') await attach(task.since, task.epoch);
          else if (task.kind === 'frames') await deliver(task.message);
          else if (epoch !== undefined) await replay();
          await confirmAccess();
        } catch (error) {
          // The view store or the bus failed under us: the client resumes from what it has, elsewhere or later.
          log.warn('feed stream failed', { session_id: sessionId, error: String(error) });
          end(CLOSE.internalError, `the feed could not be read; reconnect with since=${lastSent}`);
        }
      }
    } finally {
      pumping = false;
    }
  }

  function refused(error: unknown, requestType: string | undefined): void {
    const details = requestType ? { request_type: requestType } : {};
    if (error instanceof ProtocolError) return sendControl(errorFrame(error.code, error.message, { ...details, ...error.details }));
    if (error instanceof DomainError) {
      return sendControl(errorFrame(error.code, error.message, { ...details, http_status: error.status, ...error.details }));
    }
    log.error('socket command failed', { session_id: sessionId, request_type: requestType, error: String(error) });
    sendControl(errorFrame('internal_error', 'the server failed to handle this frame; it has been logged', details));
  }

  function handle(frame: Inbound): Promise<void> | void {
    switch (frame.type) {
      case 'ping':
        return sendControl({ type: 'pong', content: 'pong', timestamp: new Date().toISOString() });
      case 'resume':
        return enqueue({ kind: 'attach', since: frame.since, epoch: frame.epoch });
      default:
        return deps.run(sessionId, frame, deps.principal);
    }
  }

  /** Frames per second: over the limit they are refused (one error frame per second); at twice the limit the socket is closed. */
  function overRate(): boolean {
    const now = Date.now();
    if (now - windowStart >= 1_000) {
      windowStart = now;
      windowCount = 0;
    }
    windowCount++;
    if (windowCount <= limits.maxFramesPerSecond) return false;
    if (windowCount > 2 * limits.maxFramesPerSecond) {
      end(CLOSE.policyViolation, `more than ${2 * limits.maxFramesPerSecond} frames in a second`);
    } else if (windowCount === limits.maxFramesPerSecond + 1) {
      sendControl(
        errorFrame('rate_limited', `more than ${limits.maxFramesPerSecond} frames in a second; frames are refused until the next second`, {
          max_frames_per_second: limits.maxFramesPerSecond,
        }),
      );
    }
    return true;
  }

  return {
    start(since, clientEpoch) {
      enqueue({ kind: 'attach', since, epoch: clientEpoch });
    },

    receive(data, binary) {
      if (ended) return;
      alive = true;
      if (overRate()) return;
      const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
      if (size > limits.maxFrameBytes) {
        return sendControl(errorFrame('payload_too_large', `the frame is ${size} bytes; the limit is ${limits.maxFrameBytes}`, { max_bytes: limits.maxFrameBytes }));
      }
      if (binary || typeof data !== 'string') return sendControl(errorFrame('unsupported_frame', 'send JSON text frames; binary frames are not part of the protocol'));
      let frame: Inbound;
      try {
        frame = parseInbound(data);
      } catch (error) {
        return refused(error, undefined);
      }
      inbound = inbound.then(async () => {
        if (ended) return;
        try {
          await handle(frame);
        } catch (error) {
          if (!ended) refused(error, frame.type);
        }
      });
    },

    touch() {
      alive = true;
    },

    beat() {
      if (ended) return false;
      if (!alive) {
        ended = true;
        socket.terminate();
        release();
        report();
        return false;
      }
      alive = false;
      try {
        socket.ping();
      } catch {
        // closing already
      }
      return true;
    },

    refuse(frame, code, reason) {
      sendControl(frame);
      end(code, reason);
    },

    closed() {
      if (!ended) release();
      ended = true;
      report();
    },

    lastSent: () => lastSent,
  };
}
