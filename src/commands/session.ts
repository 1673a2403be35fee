// The session decider. A session is a conversation: it starts, receives messages, is classified into
// an atomic task or a plan, and ends. Its `fsm_state` (DESIGN §4) depends on the current plan too, so
// the decider's state is the session folded from its stream plus the current plan's state.
import type { AgentType, SessionEvent, SessionMode, ShareRole } from '../events/catalog.js';
import type { Decider } from './decider.js';
import { accessOf, MAX_SHARES, ownerOf, requireAccess, type Need } from './access.js';
import { conflict, DomainError, notFound } from './errors.js';
import { changeToolPolicy, DEFAULT_TOOL_POLICY, type ToolPolicy, type ToolPolicyChange } from '../agents/tool-policy.js';
import type { ToolName } from '../agents/tools.js';
import { illegalTransition, type FsmState } from './fsm.js';
import { isTerminal, planFsmState, type PlanState } from './plan.js';

export type SessionStatus = 'active' | 'suspended' | 'completed' | 'expired';
/** Where the session's own events put it; the current plan refines `planning` into its FSM state. */
export type SessionPhase = 'idle' | 'classify' | 'execution' | 'planning';

export interface SessionState {
  exists: boolean;
  session_id: string;
  name: string;
  mode: SessionMode;
  agent_type: AgentType;
  status: SessionStatus;
  phase: SessionPhase;
  current_plan_id?: string;
  message_count: number;
  /** Deleted sessions answer every command as if they never existed (the log keeps them). */
  deleted: boolean;
  /** The principal that started it; undefined for sessions older than owners (they belong to `local`). */
  owner?: string | undefined;
  /** Principals it is shared with, and as what. */
  shares: Readonly<Record<string, ShareRole>>;
  /** The message waiting to be classified (phase `classify`). */
  pending_message?: QueuedMessage | undefined;
  /** Messages that arrived while the session was busy (multitask `enqueue`), oldest first. */
  queue: readonly QueuedMessage[];
  /** The atomic task's run while phase is `execution`, and the message it answers. */
  current_run_id?: string | undefined;
  current_task?: QueuedMessage | undefined;
  /** Which tool calls the user must approve (DEFAULT_TOOL_POLICY until changed). */
  tool_policy: ToolPolicy;
  /** The recent conversation (user messages, final answers), oldest first: an atomic task's context. */
  recent: ReadonlyArray<{ role: 'user' | 'assistant'; content: string }>;
}

export interface QueuedMessage {
  message_id: string;
  content: string;
  agent_type?: AgentType | undefined;
}

/** What a message does when the session is busy with a plan or a run (DESIGN: multitask strategy). */
export const MULTITASK_STRATEGIES = ['enqueue', 'interrupt', 'reject'] as const;
export type MultitaskStrategy = (typeof MULTITASK_STRATEGIES)[number];

/** Messages and answers kept as an atomic task's context, and the longest text kept of each. */
const RECENT_MESSAGES = 20;
const RECENT_CHARS = 4_000;
/** Messages waiting while the session is busy; more are refused (a client in a loop must not grow a stream without bound). */
export const MAX_QUEUED_MESSAGES = 20;

export const initialSessionState = (): SessionState => ({
  exists: false,
  session_id: '',
  name: '',
  mode: 'auto',
  agent_type: 'universal',
  status: 'active',
  phase: 'idle',
  message_count: 0,
  deleted: false,
  shares: {},
  queue: [],
  recent: [],
  tool_policy: DEFAULT_TOOL_POLICY,
});

/** What the session decider sees: the session and, when it has one, its current plan. */
export interface SessionView {
  session: SessionState;
  plan?: PlanState | undefined;
  /**
   * Who sends the command (a token's `sub`, or `local`): it must be allowed to (see access.ts), and it
   * owns a session it starts. Undefined for commands Planline sends itself (timers, the executor).
   */
  principal?: string | undefined;
}

/** The seed FSM state of a session, derived from its own state and its current plan's. */
export function sessionFsmState({ session, plan }: SessionView): FsmState {
  if (session.status === 'completed' || session.status === 'expired') return 'completed';
  switch (session.phase) {
    case 'idle':
      return 'idle';
    case 'classify':
      return 'classify';
    case 'execution':
      return 'execution';
    case 'planning':
      // The plan is named before the architect has drafted it.
      return plan?.exists ? planFsmState(plan.status) : 'architect_planning';
  }
}

export type SessionCommand =
  | { type: 'StartSession'; session_id: string; name: string; mode: SessionMode; agent_type: AgentType }
  | { type: 'ReceiveUserMessage'; message_id: string; content: string; agent_type?: AgentType; strategy?: MultitaskStrategy }
  | { type: 'AttachPlan'; plan_id: string; source: 'llm' | 'heuristic' | 'client'; message_id?: string | undefined }
  /** The pending message is an atomic task: `run_id` answers it. */
  | { type: 'ClassifyAtomic'; message_id: string; run_id: string; agent_type: AgentType; source: 'llm' | 'heuristic' | 'client' }
  | { type: 'FailClassification'; message_id: string; reason: string }
  | { type: 'FinishTask'; run_id: string; status: 'succeeded' | 'failed' | 'cancelled'; answer?: string | undefined; error?: string | undefined }
  /** The session is free again: its oldest queued message is classified now. */
  | { type: 'StartQueuedMessage' }
  | { type: 'SetToolPolicy'; policy: ToolPolicy }
  /** A change decided on the policy in force (PATCH keeps unnamed lists; `replace` resets them to the defaults). */
  | { type: 'ChangeToolPolicy'; change: ToolPolicyChange; replace: boolean }
  | { type: 'SuspendSession'; reason?: string }
  | { type: 'ResumeSession' }
  | { type: 'CompleteSession'; reason?: string }
  | { type: 'ExpireSession' }
  | { type: 'RenameSession'; name: string }
  | { type: 'DeleteSession'; reason?: string }
  | { type: 'SwitchAgent'; to_agent: AgentType; reason?: string }
  | { type: 'ShareSession'; principal: string; role: ShareRole }
  | { type: 'RevokeShare'; principal: string };

/** What the sender must be to the session for each command; starting needs nothing. */
const NEEDS: Record<Exclude<SessionCommand['type'], 'StartSession'>, Need> = {
  ReceiveUserMessage: 'command',
  AttachPlan: 'command',
  ClassifyAtomic: 'command',
  FailClassification: 'command',
  FinishTask: 'command',
  StartQueuedMessage: 'command',
  SetToolPolicy: 'command',
  ChangeToolPolicy: 'command',
  SuspendSession: 'command',
  ResumeSession: 'command',
  CompleteSession: 'command',
  ExpireSession: 'command',
  RenameSession: 'command',
  SwitchAgent: 'command',
  DeleteSession: 'own',
  ShareSession: 'own',
  RevokeShare: 'own',
};

/** FSM states in which a plan of the session may be replaced by a new message or plan. */
const REPLACEABLE: readonly FsmState[] = ['idle', 'classify', 'plan_required', 'architect_planning', 'plan_review', 'completed'];

function legalCommands(view: SessionView): SessionCommand['type'][] {
  const { session } = view;
  if (!session.exists || session.deleted) return ['StartSession'];
  // Renaming, deleting and sharing are bookkeeping: they are allowed whatever the conversation is doing.
  const always = ['RenameSession', 'DeleteSession', 'ShareSession', 'RevokeShare', 'SetToolPolicy', 'ChangeToolPolicy'] as const;
  if (session.status === 'completed' || session.status === 'expired') return [...always];
  if (session.status === 'suspended') return ['ResumeSession', 'CompleteSession', 'ExpireSession', ...always];
  const replaceable = REPLACEABLE.includes(sessionFsmState(view));
  return [
    // A busy session takes messages too: the multitask strategy says what they do.
    'ReceiveUserMessage',
    ...(replaceable ? (['AttachPlan'] as const) : []),
    ...(session.phase === 'classify' ? (['ClassifyAtomic', 'FailClassification'] as const) : []),
    'SwitchAgent',
    'SuspendSession',
    'CompleteSession',
    'ExpireSession',
    ...always,
  ];
}

/** The session was started and the sender may send this command (checked before any state rule). */
function requireAllowed(command: Exclude<SessionCommand, { type: 'StartSession' }>, view: SessionView): void {
  if (!view.session.exists) throw notFound('session', view.session.session_id);
  if (view.principal !== undefined) requireAccess(view.session, view.principal, NEEDS[command.type]);
}

function requireLegal(command: Exclude<SessionCommand, { type: 'StartSession' }>, view: SessionView): void {
  if (!view.session.exists || view.session.deleted) throw notFound('session', view.session.session_id);
  const legal = legalCommands(view);
  if (!legal.includes(command.type)) {
    throw illegalTransition(command.type, sessionFsmState(view), legal, {
      session_id: view.session.session_id,
      session_status: view.session.status,
      ...(view.session.current_plan_id ? { current_plan_id: view.session.current_plan_id } : {}),
    });
  }
}

/** The current plan, when it is still open to replacement (awaiting review or re-planning). */
function replaceablePlanId(view: SessionView): string | undefined {
  const { session, plan } = view;
  if (session.phase !== 'planning' || !session.current_plan_id) return undefined;
  if (plan?.exists && isTerminal(plan.status)) return undefined;
  return session.current_plan_id;
}

/** A non-terminal current plan, which ending the session must cancel. */
function openPlanId(view: SessionView): string | undefined {
  const { session, plan } = view;
  if (session.phase !== 'planning' || !session.current_plan_id) return undefined;
  return plan?.exists && isTerminal(plan.status) ? undefined : session.current_plan_id;
}

export function decideSession(command: SessionCommand, view: SessionView): SessionEvent[] {
  const { session } = view;
  // Who may send it is checked before anything else: a stranger learns nothing, not even that a
  // repeated command would have been a no-op.
  if (command.type !== 'StartSession') requireAllowed(command, view);
  switch (command.type) {
    case 'StartSession':
      // A deleted session's id stays taken: the log still holds it, and reusing it would merge two histories.
      if (session.exists) {
        throw conflict('session_exists', `session ${session.session_id} already exists`, {
          session_id: session.session_id,
        });
      }
      return [
        {
          type: 'SessionStarted',
          data: {
            session_id: command.session_id,
            name: command.name,
            mode: command.mode,
            agent_type: command.agent_type,
            ...(view.principal !== undefined ? { owner: view.principal } : {}),
          },
        },
      ];

    case 'ReceiveUserMessage': {
      requireLegal(command, view);
      const base = {
        message_id: command.message_id,
        content: command.content,
        role: 'user' as const,
        ...(command.agent_type !== undefined ? { agent_type: command.agent_type } : {}),
      };
      if (!REPLACEABLE.includes(sessionFsmState(view))) return [{ type: 'UserMessageReceived', data: { ...base, ...busyMessage(command, view) } }];
      const supersedes = replaceablePlanId(view);
      return [{ type: 'UserMessageReceived', data: { ...base, ...(supersedes !== undefined ? { supersedes_plan_id: supersedes } : {}) } }];
    }

    case 'ClassifyAtomic':
      requireLegal(command, view);
      // Classifying a message that is no longer the one waiting (a newer one replaced it) changes nothing.
      if (session.phase !== 'classify' || session.pending_message?.message_id !== command.message_id) return [];
      return [
        {
          type: 'TaskClassified',
          data: { kind: 'atomic', run_id: command.run_id, agent_type: command.agent_type, source: command.source, message_id: command.message_id },
        },
      ];

    case 'FailClassification':
      requireLegal(command, view);
      if (session.phase !== 'classify' || session.pending_message?.message_id !== command.message_id) return [];
      return [{ type: 'TaskClassificationFailed', data: { reason: command.reason } }];

    case 'FinishTask':
      if (!session.exists || session.deleted) throw notFound('session', session.session_id);
      // Only the run the session waits for moves it; a run it stopped waiting for (interrupted) changes nothing.
      if (session.phase !== 'execution' || session.current_run_id !== command.run_id) return [];
      return [
        {
          type: 'TaskFinished',
          data: {
            run_id: command.run_id,
            status: command.status,
            ...(command.answer !== undefined ? { answer: command.answer } : {}),
            ...(command.error !== undefined ? { error: command.error } : {}),
          },
        },
      ];

    case 'ChangeToolPolicy': {
      const current = session.tool_policy;
      const base = command.replace ? { ...DEFAULT_TOOL_POLICY, remembered: current.remembered } : current;
      return decideSession({ type: 'SetToolPolicy', policy: changeToolPolicy(base, command.change) }, view);
    }

    case 'SetToolPolicy':
      requireLegal(command, view);
      if (JSON.stringify(command.policy) === JSON.stringify(session.tool_policy)) return [];
      return [
        {
          type: 'ToolPolicyChanged',
          data: {
            requires_approval: [...command.policy.requires_approval],
            auto_approve: [...command.policy.auto_approve],
            commands: { allow: [...command.policy.commands.allow], deny: [...command.policy.commands.deny] },
            remembered: { tools: [...command.policy.remembered.tools], command_prefixes: [...command.policy.remembered.command_prefixes] },
          },
        },
      ];

    case 'StartQueuedMessage': {
      if (!session.exists || session.deleted) throw notFound('session', session.session_id);
      const next = session.queue[0];
      if (!next || session.status !== 'active' || !FREE.includes(sessionFsmState(view))) return [];
      return [{ type: 'QueuedMessageStarted', data: { message_id: next.message_id } }];
    }

    case 'AttachPlan': {
      requireLegal(command, view);
      // The architect answering a message that is no longer the one waiting (a newer one replaced it) is too late.
      if (command.message_id !== undefined && (session.phase !== 'classify' || session.pending_message?.message_id !== command.message_id)) {
        throw conflict('message_superseded', `message ${command.message_id} is no longer waiting to be classified`, { message_id: command.message_id });
      }
      const supersedes = replaceablePlanId(view);
      return [
        {
          type: 'TaskClassified',
          data: {
            kind: 'complex',
            plan_id: command.plan_id,
            source: command.source,
            ...(supersedes !== undefined && supersedes !== command.plan_id ? { supersedes_plan_id: supersedes } : {}),
            ...(command.message_id !== undefined ? { message_id: command.message_id } : {}),
          },
        },
      ];
    }

    case 'SuspendSession':
      if (session.status === 'suspended') return [];
      requireLegal(command, view);
      return [{ type: 'SessionSuspended', data: command.reason !== undefined ? { reason: command.reason } : {} }];

    case 'ResumeSession':
      if (session.exists && session.status === 'active') return [];
      requireLegal(command, view);
      return [{ type: 'SessionResumed', data: {} }];

    case 'CompleteSession': {
      if (session.status === 'completed') return [];
      requireLegal(command, view);
      const open = openPlanId(view);
      return [
        {
          type: 'SessionCompleted',
          data: {
            ...(command.reason !== undefined ? { reason: command.reason } : {}),
            ...(open !== undefined ? { cancels_plan_id: open } : {}),
          },
        },
      ];
    }

    case 'ExpireSession': {
      if (session.status === 'expired') return [];
      requireLegal(command, view);
      const open = openPlanId(view);
      return [{ type: 'SessionExpired', data: open !== undefined ? { cancels_plan_id: open } : {} }];
    }

    case 'RenameSession':
      requireLegal(command, view);
      if (command.name === session.name) return [];
      return [{ type: 'SessionRenamed', data: { name: command.name } }];

    case 'DeleteSession': {
      // Idempotent: deleting again changes nothing and succeeds.
      if (session.exists && session.deleted) return [];
      requireLegal(command, view);
      const open = session.status === 'completed' || session.status === 'expired' ? undefined : openPlanId(view);
      return [
        {
          type: 'SessionDeleted',
          data: {
            ...(command.reason !== undefined ? { reason: command.reason } : {}),
            ...(open !== undefined ? { cancels_plan_id: open } : {}),
          },
        },
      ];
    }

    case 'ShareSession': {
      requireLegal(command, view);
      if (command.principal === ownerOf(session)) {
        throw new DomainError('invalid_share', 400, `${command.principal} owns session ${session.session_id}: the owner cannot be given a role`, {
          session_id: session.session_id,
        });
      }
      const current = accessOf(session, command.principal);
      if (current === command.role) return [];
      if (current === 'none' && Object.keys(session.shares).length >= MAX_SHARES) {
        throw conflict('too_many_shares', `session ${session.session_id} is already shared with ${MAX_SHARES} principals; revoke one first`, {
          session_id: session.session_id,
          max_shares: MAX_SHARES,
        });
      }
      return [{ type: 'SessionShared', data: { principal: command.principal, role: command.role } }];
    }

    case 'RevokeShare':
      requireLegal(command, view);
      // Idempotent: revoking what is not shared changes nothing and succeeds.
      if (!Object.hasOwn(session.shares, command.principal)) return [];
      return [{ type: 'SessionShareRevoked', data: { principal: command.principal } }];

    case 'SwitchAgent':
      requireLegal(command, view);
      if (command.to_agent === session.agent_type) return [];
      return [
        {
          type: 'AgentSwitched',
          data: {
            from_agent: session.agent_type,
            to_agent: command.to_agent,
            ...(command.reason !== undefined ? { reason: command.reason } : {}),
          },
        },
      ];
  }
}

export function evolveSession(state: SessionState, event: SessionEvent): SessionState {
  switch (event.type) {
    case 'SessionStarted':
      return {
        ...state,
        exists: true,
        session_id: event.data.session_id,
        name: event.data.name,
        mode: event.data.mode,
        agent_type: event.data.agent_type,
        status: 'active',
        phase: 'idle',
        owner: event.data.owner,
      };
    case 'UserMessageReceived': {
      const d = event.data;
      const message: QueuedMessage = { message_id: d.message_id, content: d.content, ...(d.agent_type ? { agent_type: d.agent_type } : {}) };
      if (d.queued) return { ...state, message_count: state.message_count + 1, queue: [...state.queue, message] };
      return {
        ...state,
        message_count: state.message_count + 1,
        phase: 'classify',
        pending_message: message,
        recent: remember(state.recent, 'user', d.content),
        ...(d.cancels_run_id !== undefined || d.cancels_plan_id !== undefined ? { current_run_id: undefined } : {}),
        ...(d.agent_type ? { agent_type: d.agent_type } : {}),
      };
    }
    case 'QueuedMessageStarted': {
      const message = state.queue.find((m) => m.message_id === event.data.message_id);
      if (!message) return state;
      return {
        ...state,
        phase: 'classify',
        pending_message: message,
        queue: state.queue.filter((m) => m !== message),
        recent: remember(state.recent, 'user', message.content),
        ...(message.agent_type ? { agent_type: message.agent_type } : {}),
      };
    }
    case 'TaskClassified':
      if (event.data.kind === 'complex' && event.data.plan_id) {
        return { ...state, phase: 'planning', current_plan_id: event.data.plan_id, pending_message: undefined, current_run_id: undefined };
      }
      return { ...state, phase: 'execution', current_run_id: event.data.run_id, current_task: state.pending_message, pending_message: undefined };
    case 'TaskClassificationFailed':
      return { ...state, phase: 'idle', pending_message: undefined };
    case 'TaskFinished':
      return {
        ...state,
        phase: 'idle',
        current_run_id: undefined,
        ...(event.data.answer ? { recent: remember(state.recent, 'assistant', event.data.answer) } : {}),
      };
    case 'SessionSuspended':
      return { ...state, status: 'suspended' };
    case 'SessionResumed':
      return { ...state, status: 'active' };
    case 'SessionCompleted':
      return { ...state, status: 'completed' };
    case 'SessionExpired':
      return { ...state, status: 'expired' };
    case 'SessionRenamed':
      return { ...state, name: event.data.name };
    case 'SessionDeleted':
      return { ...state, deleted: true };
    case 'AgentSwitched':
      return { ...state, agent_type: event.data.to_agent };
    case 'SessionShared':
      return { ...state, shares: { ...state.shares, [event.data.principal]: event.data.role } };
    case 'ToolPolicyChanged': {
      const d = event.data;
      return {
        ...state,
        tool_policy: {
          requires_approval: d.requires_approval as ToolName[],
          auto_approve: d.auto_approve as ToolName[],
          commands: d.commands,
          remembered: { tools: d.remembered.tools as ToolName[], command_prefixes: d.remembered.command_prefixes },
        },
      };
    }
    case 'SessionShareRevoked': {
      const { [event.data.principal]: _revoked, ...shares } = state.shares;
      return { ...state, shares };
    }
    default:
      // An event of another aggregate in this stream (an import gone wrong) changes nothing here.
      return state;
  }
}

function remember(recent: SessionState['recent'], role: 'user' | 'assistant', content: string): SessionState['recent'] {
  const clipped = content.length > RECENT_CHARS ? `${content.slice(0, RECENT_CHARS)} …` : content;
  return [...recent, { role, content: clipped }].slice(-RECENT_MESSAGES);
}

/** FSM states in which the session is busy with no work: a queued message may start. */
const FREE: readonly FsmState[] = ['idle', 'completed', 'error_handling'];

/** A message for a busy session (a plan approved or running, an atomic task running), by multitask strategy. */
function busyMessage(
  command: Extract<SessionCommand, { type: 'ReceiveUserMessage' }>,
  view: SessionView,
): { queued: true } | { cancels_plan_id?: string; cancels_run_id?: string } {
  const { session } = view;
  const strategy = command.strategy ?? 'enqueue';
  const fsm = sessionFsmState(view);
  if (strategy === 'reject') {
    throw conflict('session_busy', `the session is busy (fsm_state ${fsm}); the message was refused (multitask strategy "reject")`, {
      fsm_state: fsm,
      strategy,
      ...(session.current_plan_id ? { current_plan_id: session.current_plan_id } : {}),
      ...(session.current_run_id ? { current_run_id: session.current_run_id } : {}),
    });
  }
  if (strategy === 'enqueue') {
    if (session.queue.length >= MAX_QUEUED_MESSAGES) {
      throw conflict('queue_full', `${MAX_QUEUED_MESSAGES} messages already wait for the current work to end`, { max_queued: MAX_QUEUED_MESSAGES });
    }
    return { queued: true };
  }
  const plan = openPlanId(view);
  return {
    ...(plan !== undefined ? { cancels_plan_id: plan } : {}),
    ...(session.phase === 'execution' && session.current_run_id ? { cancels_run_id: session.current_run_id } : {}),
  };
}

export const sessionDecider = {
  initialState: initialSessionState,
  decide: decideSession,
  evolve: evolveSession,
} as const satisfies Decider<SessionState, SessionCommand, SessionEvent, SessionView>;
