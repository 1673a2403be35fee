import { describe, expect, it } from 'vitest';
import { planMarkdown } from '../../src/projections/plan-markdown.js';

const summary = {
  plan_id: 'p1',
  goal: 'Add login',
  status: 'awaiting_approval',
  revision: 1,
  subtasks_count: 3,
  total_estimated_time: '25 min',
  total_estimated_seconds: 1500,
  subtasks: [
    { id: 'form', description: 'Login form', agent: 'coder', dependencies: [], estimated_time: '10 min', estimated_seconds: 600, status: 'pending' },
    { id: 'api', description: 'Auth\nendpoint', agent: 'coder', dependencies: [], estimated_time: '10 min', estimated_seconds: 600, status: 'pending' },
    { id: 'e2e', description: 'End-to-end test', agent: 'debug', dependencies: ['form', 'api'], estimated_time: '5 min', estimated_seconds: 300, status: 'pending' },
  ],
} as const;

describe('plan as markdown', () => {
  it('reads as a numbered list with agents, estimates and what each subtask waits for', () => {
    expect(planMarkdown({ ...summary, subtasks: summary.subtasks.map((s) => ({ ...s, dependencies: [...s.dependencies] })) })).toBe(
      [
        '**Plan:** Add login',
        '3 subtasks · estimated 25 min',
        '',
        '1. Login form — coder · 10 min',
        '2. Auth endpoint — coder · 10 min',
        '3. End-to-end test — debug · 5 min · after 1, 2',
      ].join('\n'),
    );
  });

  it('names the revision of a re-plan', () => {
    const text = planMarkdown({ ...summary, revision: 2, subtasks: summary.subtasks.map((s) => ({ ...s, dependencies: [...s.dependencies] })) });
    expect(text.split('\n')[0]).toBe('**Plan:** Add login (revision 2)');
  });
});
