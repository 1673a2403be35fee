// The `feed` projection: domain events → the IDE frames of DESIGN §5 (feed-frames.ts renders them),
// numbered per session 1, 2, 3 … and appended to the session's feed with a bounded history, in the same
// commit as the checkpoint. It keeps what it needs to render (each session's state and offset, each
// plan's summary and progress, each run's session, agent and calls awaiting the IDE) in its own collections, so a rebuild from the same log numbers every frame
// the same way, whatever the other projections are doing.
//
// Live delivery: after each commit its frames are published on the bus, one message per session
// (`feed.<session>`). A projector that dies between a commit and that publish would strand them, so
// each commit also records the batch's frame ranges per session, and the next holder of the lease
// republishes them before it goes on (edges drop the offsets they already sent).
import { parseStreamName, toDomainEvent, type PlanEvent, type RunEvent, type SessionEvent } from '../events/catalog.js';
import type { StoredEvent } from '../events/store.js';
import { evolveSession, initialSessionState, sessionFsmState, type SessionState } from '../commands/session.js';
import { initialPlanState, type PlanStatus } from '../commands/plan.js';
import type { FsmState } from '../commands/fsm.js';
import type { Projection, ProjectionTx } from './projector.js';
import type { ViewOp, ViewStore } from './views.js';
import { nextPlanDoc, type PlanDoc } from './plan-view.js';
import { framesOf, type FeedRunView, type FrameBody } from './feed-frames.js';
import { DEFAULT_FEED_HISTORY, FEED_PREFIX, FEED_VERSION, feedName, withoutNulls, type FeedFrame, type FeedMessage } from './feed.js';

export const FEED_SESSIONS = 'feed_sessions';
export const FEED_PLANS = 'feed_plans';
export const FEED_META = 'feed_meta';
export const FEED_RUNS = 'feed_runs';
const LAST_BATCH = 'last_batch';

/** The feed's view of a session: what it renders from, and the offset of its newest frame. */
export interface FeedSessionDoc {
  session_id: string;
  /** Offset of the newest frame (0 before the first). */
  offset: number;
  session: SessionState;
  /** Status of the session's current plan (with the session, it gives fsm_state). */
  plan_status: PlanStatus | null;
  fsm_state: FsmState;
  /** Revision of the session stream's last event seen (a redelivered event changes nothing). */
  stream_revision: number;
  /**
   * Tool calls sent to the IDE and not answered yet, as their tool_call frames: a client that joins
   * without history gets them in its snapshot, so it can answer what waits for it.
   */
  open_calls?: Record<string, FrameBody>;
  [key: string]: unknown;
}

/** The feed's view of a plan: the plan read model's document, folded by the same pure function. */
export interface FeedPlanDoc extends PlanDoc {
  approval_requested_at?: string;
}

/** The feed's view of an agent run: where its frames go and what they name. */
export interface FeedRunDoc extends FeedRunView {
  /** Revision of the run stream's last event seen (a redelivered event changes nothing). */
  stream_revision: number;
  [key: string]: unknown;
}

/** The run after one of its events (the calls still awaiting the IDE). */
function nextRunDoc(doc: FeedRunDoc, event: RunEvent, revision: number): FeedRunDoc {
  const next = { ...doc, stream_revision: revision };
  switch (event.type) {
    case 'ToolCallRequested':
      return { ...next, calls: { ...doc.calls, [event.data.call_id]: event.data.tool_name } };
    case 'ToolCallRejected':
    case 'ToolResultReceived': {
      const { [event.data.call_id]: _answered, ...calls } = doc.calls;
      return { ...next, calls };
    }
    case 'RunSucceeded':
    case 'RunFailed':
    case 'RunCancelled':
      return { ...next, calls: {} };
    default:
      return next;
  }
}

/** A session's open tool calls after a run event: a call sent is added, an answered one or a finished run's removed. */
function openCallsAfter(open: Record<string, FrameBody>, run: FeedRunView, event: RunEvent, frames: readonly FrameBody[]): Record<string, FrameBody> {
  switch (event.type) {
    case 'ToolCallRequested': {
      const frame = frames.find((f) => f.type === 'tool_call');
      return frame ? { ...open, [event.data.call_id]: frame } : open;
    }
    case 'ToolCallRejected':
    case 'ToolResultReceived': {
      const { [event.data.call_id]: _answered, ...rest } = open;
      return rest;
    }
    case 'RunSucceeded':
    case 'RunFailed':
    case 'RunCancelled':
      return Object.fromEntries(Object.entries(open).filter(([callId]) => !(callId in run.calls)));
    default:
      return open;
  }
}

/** The frame ranges the last committed batch wrote, per session. */
interface LastBatchDoc {
  heads: Record<string, { from: number; to: number }>;
  [key: string]: unknown;
}

export interface FeedProjectionOptions {
  /** Stamped on every published message, so an edge can tell a rebuilt feed from the one it streams. */
  epoch: string;
  /** Frames kept per session (at least this many; older ones are trimmed). Default 1000. */
  history?: number;
  /** Live delivery of one session's committed frames (the bus). Absent: nothing is published. */
  publish?: (message: FeedMessage) => void;
  /** The projection version (tests); default FEED_VERSION. */
  version?: number;
}

export function fsmStateOf(session: SessionState, planStatus: PlanStatus | null): FsmState {
  return sessionFsmState({ session, plan: planStatus ? { ...initialPlanState(), exists: true, status: planStatus } : undefined });
}

export function feedProjection(options: FeedProjectionOptions): Projection {
  const history = options.history ?? DEFAULT_FEED_HISTORY;
  if (!Number.isSafeInteger(history) || history < 1) throw new TypeError('feed history must be a positive integer');
  // The frame ranges of the batch being folded; recorded with its commit by batchDone().
  let batchHeads = new Map<string, { from: number; to: number }>();

  function emit(tx: ProjectionTx, doc: FeedSessionDoc, bodies: FrameBody[], stored: StoredEvent): void {
    const fsm_state = fsmStateOf(doc.session, doc.plan_status);
    let offset = doc.offset;
    const feed = feedName(doc.session_id);
    for (const body of bodies) {
      offset++;
      const { type, content, metadata, ...fields } = body;
      const frame: FeedFrame = withoutNulls({
        type,
        content,
        ...fields,
        offset,
        session_id: doc.session_id,
        timestamp: stored.metadata.at,
        metadata: { ...metadata, fsm_state },
      });
      tx.append(feed, offset, frame);
    }
    if (offset > doc.offset) {
      const head = batchHeads.get(doc.session_id);
      batchHeads.set(doc.session_id, { from: head?.from ?? doc.offset + 1, to: offset });
      if (offset > history) tx.trim(feed, offset - history + 1);
    }
    tx.put(FEED_SESSIONS, doc.session_id, { ...doc, offset, fsm_state });
  }

  async function applySessionEvent(sessionId: string, event: SessionEvent, stored: StoredEvent, tx: ProjectionTx): Promise<void> {
    const doc = (await tx.get(FEED_SESSIONS, sessionId)) as FeedSessionDoc | undefined;
    if (doc && stored.revision <= doc.stream_revision) return;
    if (!doc && event.type !== 'SessionStarted') return;
    const session = evolveSession(doc?.session ?? initialSessionState(), event);
    let planStatus = doc?.plan_status ?? null;
    if (session.current_plan_id !== doc?.session.current_plan_id) {
      const plan = session.current_plan_id ? ((await tx.get(FEED_PLANS, session.current_plan_id)) as PlanDoc | undefined) : undefined;
      planStatus = plan?.status ?? null;
    }
    const next: FeedSessionDoc = {
      session_id: sessionId,
      offset: doc?.offset ?? 0,
      session,
      plan_status: planStatus,
      fsm_state: doc?.fsm_state ?? 'idle',
      stream_revision: stored.revision,
      ...(doc?.open_calls ? { open_calls: doc.open_calls } : {}),
    };
    emit(tx, next, framesOf({ event, session }), stored);
  }

  async function applyPlanEvent(planId: string, event: PlanEvent, stored: StoredEvent, tx: ProjectionTx): Promise<void> {
    const next = nextPlanDoc((await tx.get(FEED_PLANS, planId)) as FeedPlanDoc | undefined, event, stored);
    if (!next) return;
    // When its current approval was asked for: the snapshot's pending approval says so, as the IDE expects.
    const plan: FeedPlanDoc = event.type === 'PlanApprovalRequested' ? { ...next, approval_requested_at: stored.metadata.at } : next;
    tx.put(FEED_PLANS, planId, plan);
    const doc = (await tx.get(FEED_SESSIONS, plan.session_id)) as FeedSessionDoc | undefined;
    if (!doc) return;
    const planStatus = doc.session.current_plan_id === plan.plan_id ? plan.status : doc.plan_status;
    emit(tx, { ...doc, plan_status: planStatus }, framesOf({ event, session: doc.session, plan }), stored);
  }

  async function applyRunEvent(runId: string, event: RunEvent, stored: StoredEvent, tx: ProjectionTx): Promise<void> {
    let run = (await tx.get(FEED_RUNS, runId)) as FeedRunDoc | undefined;
    if (run && stored.revision <= run.stream_revision) return;
    if (!run) {
      if (event.type !== 'RunStarted') return;
      const d = event.data;
      run = {
        run_id: runId,
        session_id: d.session_id,
        kind: d.kind,
        agent: d.agent,
        ...(d.plan_id !== undefined ? { plan_id: d.plan_id } : {}),
        ...(d.subtask_id !== undefined ? { subtask_id: d.subtask_id } : {}),
        calls: {},
        stream_revision: -1,
      };
    }
    tx.put(FEED_RUNS, runId, nextRunDoc(run, event, stored.revision));
    const doc = (await tx.get(FEED_SESSIONS, run.session_id)) as FeedSessionDoc | undefined;
    if (!doc) return;
    // Rendered with the run as it was before the event: an answer still names the call's tool.
    const frames = framesOf({ event, session: doc.session, run });
    emit(tx, { ...doc, open_calls: openCallsAfter(doc.open_calls ?? {}, run, event, frames) }, frames, stored);
  }

  function publishFrames(frames: FeedFrame[]): void {
    if (!options.publish || frames.length === 0) return;
    const bySession = new Map<string, FeedFrame[]>();
    for (const frame of frames) {
      const list = bySession.get(frame.session_id);
      if (list) list.push(frame);
      else bySession.set(frame.session_id, [frame]);
    }
    for (const [session_id, sessionFrames] of bySession) options.publish({ epoch: options.epoch, session_id, frames: sessionFrames });
  }

  return {
    name: 'feed',
    version: options.version ?? FEED_VERSION,
    collections: [FEED_SESSIONS, FEED_PLANS, FEED_RUNS, FEED_META],
    indexPrefixes: [],
    feedPrefixes: [FEED_PREFIX],
    indexesOf: () => [],

    async apply(stored, tx) {
      const stream = parseStreamName(stored.stream);
      const event = stream && toDomainEvent(stored);
      if (!stream || !event) return;
      if (stream.kind === 'session') await applySessionEvent(stream.id, event as SessionEvent, stored, tx);
      else if (stream.kind === 'plan') await applyPlanEvent(stream.id, event as PlanEvent, stored, tx);
      else await applyRunEvent(stream.id, event as RunEvent, stored, tx);
    },

    batchDone(tx) {
      if (batchHeads.size === 0) return;
      tx.put(FEED_META, LAST_BATCH, { heads: Object.fromEntries(batchHeads) } satisfies LastBatchDoc);
      batchHeads = new Map();
    },

    committed(ops: readonly ViewOp[]) {
      publishFrames(ops.flatMap((op) => (op.op === 'append' ? [op.entry as FeedFrame] : [])));
    },

    async resumed(views: ViewStore) {
      batchHeads = new Map(); // a batch that failed before its commit left nothing to record
      const last = (await views.get(FEED_META, LAST_BATCH)) as LastBatchDoc | undefined;
      if (!last || !options.publish) return;
      for (const [sessionId, { from, to }] of Object.entries(last.heads)) {
        const page = await views.readFeed(feedName(sessionId), { after: from - 1, limit: to - from + 1 });
        publishFrames(page.entries.map((e) => e.entry as FeedFrame));
      }
    },
  };
}
