// A plan as readable text. The IDE shows `content` as a chat bubble for every frame type it does not
// special-case, and the chat history carries plans as assistant messages, so a plan must read well as
// markdown on its own: goal, total estimate, then the subtasks in order with agent, estimate and what
// each waits for (by number, as a reader counts them).
import type { PlanSummary } from './plan-view.js';

export function planMarkdown(plan: PlanSummary): string {
  const number = new Map(plan.subtasks.map((s, i) => [s.id, i + 1]));
  const count = `${plan.subtasks_count} subtask${plan.subtasks_count === 1 ? '' : 's'}`;
  const lines = [
    `**Plan:** ${plan.goal}${plan.revision > 1 ? ` (revision ${plan.revision})` : ''}`,
    `${count} · estimated ${plan.total_estimated_time}`,
    '',
    ...plan.subtasks.map((s, i) => {
      const after = s.dependencies.map((d) => number.get(d) ?? d);
      const details = [s.agent, s.estimated_time, ...(after.length ? [`after ${after.join(', ')}`] : [])].join(' · ');
      return `${i + 1}. ${oneLine(s.description)} — ${details}`;
    }),
  ];
  return lines.join('\n');
}

/** Descriptions may span lines; a list item must not. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
