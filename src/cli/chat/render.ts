// Server frames as a person reads them: one or a few lines each. Pure and total: a frame of any shape
// (missing fields, wrong types, unknown type) renders as something, never throws.
import type { Frame } from './tool-calls.js';

type Rec = Record<string, unknown>;

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : typeof value === 'number' ? String(value) : undefined);
const rec = (value: unknown): Rec | undefined => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Rec) : undefined);
const field = (frame: Rec, key: string): unknown => frame[key] ?? rec(frame.metadata)?.[key];

export function renderFrame(frame: Frame): string[] {
  try {
    return render(frame);
  } catch {
    return [`[${String(frame.type)}] ${oneLine(JSON.stringify(frame) ?? '')}`];
  }
}

function render(frame: Frame): string[] {
  const content = str(frame.content);
  const head = (label: string, text?: string) => `[${label}]${text ? ` ${text}` : ''}`;
  switch (frame.type) {
    case 'session_info':
      return [head('session', `${str(frame.session_id) ?? '?'}${str(frame.agent_type) ? ` (agent ${str(frame.agent_type)})` : ''}`)];
    case 'snapshot':
      return [head('snapshot', content ?? 'where the session stands'), ...pendingOf(frame)];
    case 'resync':
      return [head('resync', `${content ?? 'some updates could not be replayed'}${str(rec(frame.metadata)?.reason) ? ` (${str(rec(frame.metadata)?.reason)})` : ''}`)];
    case 'status':
      return [head('status', `${content ?? ''}${progressText(field(frame, 'progress'))}`.trim())];
    case 'assistant_message': {
      const name = str(frame.agent_type) ?? str(rec(frame.metadata)?.agent_type);
      const lines = (content ?? '').split('\n');
      return [`${name ? `${name}> ` : 'assistant> '}${lines[0] ?? ''}`, ...lines.slice(1).map((l) => `  ${l}`)];
    }
    case 'agent_switched':
      return [head('agent', `${str(field(frame, 'from_agent')) ?? '?'} → ${str(field(frame, 'to_agent')) ?? '?'}${str(field(frame, 'reason')) ? `: ${str(field(frame, 'reason'))}` : ''}`)];
    case 'plan_created':
      return [head('plan', `created ${str(field(frame, 'plan_id')) ?? ''}${str(frame.feedback) ? ` (revision after: ${str(frame.feedback)})` : ''}`), ...planLines(field(frame, 'plan_summary'))];
    case 'plan_approval_required':
      return [
        head('approval', `plan ${str(field(frame, 'plan_id')) ?? ''} needs your decision${str(field(frame, 'deadline')) ? ` before ${str(field(frame, 'deadline'))}` : ''}`),
        ...planLines(field(frame, 'plan_summary')),
        '  type /approve, /reject [feedback] or /modify <feedback>',
      ];
    case 'plan_approved':
    case 'plan_rejected':
    case 'plan_modification_requested':
    case 'plan_expired':
    case 'plan_superseded':
    case 'plan_cancelled': {
      const what = frame.type.slice('plan_'.length).replace(/_/g, ' ');
      const why = str(frame.feedback) ?? str(frame.reason);
      return [head('plan', `${str(field(frame, 'plan_id')) ?? ''} ${what}${why ? `: ${why}` : ''}`)];
    }
    case 'subtask_started':
    case 'subtask_completed':
    case 'subtask_failed': {
      const what = frame.type.slice('subtask_'.length);
      const error = str(frame.error);
      const retry = frame.will_retry === true ? ' (will retry)' : '';
      return [head('subtask', `${str(field(frame, 'subtask_id')) ?? '?'} ${what}${error ? `: ${error}` : ''}${retry}${progressText(field(frame, 'progress'))}`)];
    }
    case 'execution_completed': {
      const seconds = typeof frame.duration_seconds === 'number' ? ` in ${frame.duration_seconds}s` : '';
      const error = str(frame.error);
      return [head('done', `plan ${str(field(frame, 'plan_id')) ?? ''} ${str(frame.status) ?? 'finished'}${seconds}${error ? `: ${error}` : ''}${progressText(field(frame, 'progress'))}`)];
    }
    case 'tool_call': {
      const approval = frame.requires_approval === true ? ' (needs approval)' : '';
      return [head('tool', `${str(frame.tool_name) ?? '?'} ${oneLine(JSON.stringify(frame.arguments ?? {}) ?? '')} [${str(frame.call_id) ?? 'no call_id'}]${approval}`)];
    }
    case 'error':
      return [head('error', `${str(frame.code) ?? str(frame.error) ?? 'error'}: ${content ?? str(frame.error) ?? ''}`.trim())];
    case 'pong':
      return [];
    default:
      return [head(String(frame.type), content ?? oneLine(JSON.stringify(frame) ?? ''))];
  }
}

/** A plan summary's subtasks, one line each: id, description, agent, estimate, dependencies. */
export function planLines(summary: unknown): string[] {
  const plan = rec(summary);
  if (!plan) return [];
  const lines: string[] = [];
  const total = str(plan.total_estimated_time);
  lines.push(`  goal: ${str(plan.goal) ?? '?'}${total ? ` (about ${total})` : ''}${typeof plan.revision === 'number' && plan.revision > 1 ? `, revision ${plan.revision}` : ''}`);
  const subtasks = Array.isArray(plan.subtasks) ? plan.subtasks : [];
  subtasks.forEach((raw, i) => {
    const subtask = rec(raw) ?? {};
    const deps = Array.isArray(subtask.dependencies) ? subtask.dependencies.filter((d) => typeof d === 'string') : [];
    const estimate = str(subtask.estimated_time);
    lines.push(
      `  ${i + 1}. ${str(subtask.id) ?? '?'}: ${str(subtask.description) ?? ''}` +
        `${str(subtask.agent) ? ` [${str(subtask.agent)}]` : ''}${estimate ? ` ~${estimate}` : ''}${deps.length ? ` after ${deps.join(', ')}` : ''}`,
    );
  });
  return lines;
}

/** A ten-cell progress bar: [####------]. */
function bar(done: number, total: number, cells = 10): string {
  const filled = total > 0 ? Math.round((Math.min(done, total) / total) * cells) : 0;
  return `[${'#'.repeat(filled)}${'-'.repeat(cells - filled)}]`;
}

function progressText(value: unknown): string {
  const progress = rec(value);
  if (!progress) return '';
  const n = (key: string) => (typeof progress[key] === 'number' ? (progress[key] as number) : 0);
  const percentage = typeof progress.percentage === 'number' ? ` ${Math.round(progress.percentage)}%` : '';
  return ` ${bar(n('done'), n('total'))} ${n('done')}/${n('total')} done, ${n('running')} running, ${n('failed')} failed, ${n('pending')} pending${percentage}`;
}

function pendingOf(frame: Frame): string[] {
  const pending = rec(frame.metadata)?.pending_approvals;
  if (!Array.isArray(pending) || pending.length === 0) return [];
  const first = rec(pending[0]) ?? {};
  const summary = rec(first.details)?.plan_summary ?? first.arguments;
  return [
    `[approval] plan ${str(rec(first.details)?.plan_id) ?? ''} awaits your decision${str(first.deadline) ? ` before ${str(first.deadline)}` : ''}`,
    ...planLines(summary),
    '  type /approve, /reject [feedback] or /modify <feedback>',
  ];
}

const oneLine = (text: string, max = 200) => {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
};
