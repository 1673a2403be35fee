// The session read model: one document per session with its derived fsm_state, kept current by both
// session events and the events of its current plan. Pure apart from the projection tx.
import { DEFAULT_TOOL_POLICY } from '../agents/tool-policy.js';
import type { SessionEvent, ShareRole } from '../events/catalog.js';
import { ownerOf } from '../commands/access.js';
import type { StoredEvent } from '../events/store.js';
import type { FsmState } from '../commands/fsm.js';
import { sessionFsmState, type SessionPhase, type SessionStatus } from '../commands/session.js';
import type { PlanStatus } from '../commands/plan.js';
import type { ProjectionTx } from './projection.js';
import type { PlanDoc } from './plan-view.js';

import { SESSIONS } from './collections.js';
export { SESSIONS };

/** One agent switch, as the IDE's `AgentSwitch` reads it. */
export interface AgentSwitchView {
  from: string;
  to: string;
  reason?: string;
  timestamp: string;
}

export interface SessionDoc {
  session_id: string;
  name: string;
  mode: string;
  agent_type: string;
  status: SessionStatus;
  fsm_state: FsmState;
  /** The session's own phase; with the current plan's status it gives fsm_state. */
  phase: SessionPhase;
  current_plan_id: string | null;
  current_plan_status: PlanStatus | null;
  message_count: number;
  /** What the session is about: its first message, or its first plan's goal, on one line. */
  description?: string;
  /** The agent switches, oldest first. */
  agent_history: AgentSwitchView[];
  created_at: string;
  updated_at: string;
  stream_revision: number;
  created_position: number;
  /** The principal that started it (`local` for sessions older than owners). */
  owner: string;
  /** Principals it is shared with, and as what. */
  shares: Record<string, ShareRole>;
  [key: string]: unknown;
}

function withFsm(doc: SessionDoc): SessionDoc {
  const fsm_state = sessionFsmState({
    session: {
      exists: true,
      session_id: doc.session_id,
      name: doc.name,
      mode: 'auto',
      agent_type: 'universal',
      status: doc.status,
      phase: doc.phase,
      message_count: doc.message_count,
      deleted: false,
      shares: {},
      queue: [],
      recent: [],
      tool_policy: DEFAULT_TOOL_POLICY,
      ...(doc.current_plan_id ? { current_plan_id: doc.current_plan_id } : {}),
    },
    plan: doc.current_plan_status
      ? { ...emptyPlan, exists: true, status: doc.current_plan_status }
      : undefined,
  });
  return { ...doc, fsm_state };
}

// Only `exists` and `status` of the plan matter to the session's FSM state.
const emptyPlan = {
  plan_id: '',
  session_id: '',
  revision: 0,
  goal: '',
  source: 'client' as const,
  subtasks: [],
  approvals: [],
  max_parallel: 1,
};

export function nextSessionDoc(doc: SessionDoc | undefined, event: SessionEvent, stored: StoredEvent): SessionDoc | undefined {
  // A redelivered event (the document already includes its revision) changes nothing (DESIGN §1):
  // message_count must not count a message twice.
  if (doc && stored.revision <= doc.stream_revision) return undefined;
  const at = stored.metadata.at;
  if (event.type === 'SessionStarted') {
    return withFsm({
      session_id: event.data.session_id,
      name: event.data.name,
      mode: event.data.mode,
      agent_type: event.data.agent_type,
      status: 'active',
      fsm_state: 'idle',
      phase: 'idle',
      current_plan_id: null,
      current_plan_status: null,
      message_count: 0,
      agent_history: [],
      created_at: at,
      updated_at: at,
      stream_revision: stored.revision,
      created_position: stored.position,
      owner: ownerOf({ owner: event.data.owner, shares: {} }),
      shares: {},
    });
  }
  if (!doc) return undefined;
  const base: SessionDoc = { ...doc, updated_at: at, stream_revision: stored.revision };
  switch (event.type) {
    case 'UserMessageReceived':
      return withFsm({
        ...base,
        // A queued message (the session was busy) waits: the session stays where it is.
        ...(event.data.queued ? {} : { phase: 'classify' as const }),
        message_count: base.message_count + 1,
        ...(event.data.agent_type ? { agent_type: event.data.agent_type } : {}),
        ...(base.description === undefined ? describedAs(event.data.content) : {}),
      });
    case 'TaskClassified':
      return event.data.kind === 'complex' && event.data.plan_id
        ? withFsm({ ...base, phase: 'planning', current_plan_id: event.data.plan_id, current_plan_status: null })
        : withFsm({ ...base, phase: 'execution' });
    case 'TaskClassificationFailed':
      return withFsm({ ...base, phase: 'idle' });
    case 'QueuedMessageStarted':
      return withFsm({ ...base, phase: 'classify' });
    case 'TaskFinished':
      return withFsm({ ...base, phase: 'idle' });
    case 'SessionSuspended':
      return withFsm({ ...base, status: 'suspended' });
    case 'SessionResumed':
      return withFsm({ ...base, status: 'active' });
    case 'SessionCompleted':
      return withFsm({ ...base, status: 'completed' });
    case 'SessionExpired':
      return withFsm({ ...base, status: 'expired' });
    case 'SessionRenamed':
      return { ...base, name: event.data.name };
    case 'AgentSwitched': {
      const { from_agent, to_agent, reason } = event.data;
      const change: AgentSwitchView = { from: from_agent, to: to_agent, ...(reason ? { reason } : {}), timestamp: at };
      return { ...base, agent_type: to_agent, agent_history: [...base.agent_history, change] };
    }
    case 'SessionShared':
      return { ...base, shares: { ...base.shares, [event.data.principal]: event.data.role } };
    case 'SessionShareRevoked': {
      const { [event.data.principal]: _revoked, ...shares } = base.shares;
      return { ...base, shares };
    }
    default:
      return undefined;
  }
}

export async function applyToSessionView(event: SessionEvent, stored: StoredEvent, sessionId: string, tx: ProjectionTx): Promise<SessionDoc | undefined> {
  const next = nextSessionDoc((await tx.get(SESSIONS, sessionId)) as SessionDoc | undefined, event, stored);
  if (next) tx.put(SESSIONS, sessionId, next);
  return next;
}

const DESCRIPTION_CHARS = 200;

/** `{description}` from a text: one line, at most DESCRIPTION_CHARS; nothing for a blank text. */
function describedAs(text: string): { description?: string } {
  const line = text.replace(/\s+/g, ' ').trim();
  if (line === '') return {};
  const chars = [...line]; // by code point, so a cut never splits a surrogate pair
  return { description: chars.length > DESCRIPTION_CHARS ? `${chars.slice(0, DESCRIPTION_CHARS - 1).join('')}…` : line };
}

/**
 * A plan event changed the plan: refresh its session's fsm_state if it is the session's current plan,
 * and describe a session that has no description yet by the plan's goal.
 */
export async function followPlanInSession(plan: PlanDoc, stored: StoredEvent, tx: ProjectionTx): Promise<void> {
  const doc = (await tx.get(SESSIONS, plan.session_id)) as SessionDoc | undefined;
  if (!doc) return;
  const described = doc.description === undefined ? describedAs(plan.goal) : {};
  const follows = doc.current_plan_id === plan.plan_id && doc.current_plan_status !== plan.status;
  if (follows) tx.put(SESSIONS, doc.session_id, withFsm({ ...doc, ...described, current_plan_status: plan.status, updated_at: stored.metadata.at }));
  else if (described.description !== undefined) tx.put(SESSIONS, doc.session_id, { ...doc, ...described });
}
