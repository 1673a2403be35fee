// The planning that works with no model at all: classifying a message and cutting a task into a plan.
import { describe, expect, it } from 'vitest';
import { normalizeSubtasks } from '../../src/commands/dag.js';
import { classifyHeuristically, pickAgent } from '../../src/planning/heuristic-classifier.js';
import { MAX_HEURISTIC_SUBTASKS, planHeuristically } from '../../src/planning/heuristic-planner.js';

const brief = (goal: string, feedback?: string) =>
  planHeuristically({ goal, feedback }).subtasks.map((s) => ({ id: s.id, d: s.description, agent: s.agent, deps: s.dependencies }));

describe('heuristic classifier', () => {
  it.each([
    ['What does the useEffect cleanup do?', 'ask'],
    ['explain the difference between let and const', 'ask'],
    ['Why does the build fail with a null pointer exception?', 'debug'],
    ['The app crashes on startup, investigate', 'debug'],
    ['Fix the crash when the list is empty', 'coder'],
    ['Rename getUser to fetchUser in api.ts', 'coder'],
  ])('%j goes to %s', (message, agent) => {
    expect(pickAgent(message)).toBe(agent);
  });

  it.each([
    ['Rename getUser to fetchUser in api.ts', 'atomic'],
    ['What is a Dart isolate?', 'atomic'],
    ['Why does test_login fail?', 'atomic'],
    ['Create a Flutter app with login and registration', 'complex'],
    ['Add a settings screen. Add tests for it.', 'complex'],
    ['Add the model, then wire it into the UI', 'complex'],
    ['- add a model\n- add a screen', 'complex'],
    ['Migrate the state management from Provider to Riverpod', 'complex'],
    ['Add a login form, an auth endpoint and tests', 'complex'],
    ['What is an isolate? How does it differ from a thread?', 'atomic'],
  ])('%j is %s', (message, kind) => {
    expect(classifyHeuristically(message).kind).toBe(kind);
  });

  it('says why', () => {
    expect(classifyHeuristically('1. add a model\n2. add a screen').reason).toBe('the message lists 2 steps');
  });
});

describe('heuristic planner', () => {
  it('splits an enumeration into parallel subtasks, carrying the verb, and makes tests wait for the work', () => {
    expect(brief('Add a login form, an auth endpoint and tests')).toEqual([
      { id: 'st-1', d: 'Add a login form', agent: 'coder', deps: [] },
      { id: 'st-2', d: 'Add an auth endpoint', agent: 'coder', deps: [] },
      { id: 'st-3', d: 'Add tests', agent: 'coder', deps: ['st-1', 'st-2'] },
    ]);
  });

  it('orders what the text orders ("then", a numbered list) and nothing else', () => {
    expect(brief('Create the data model. Then add a settings screen and write tests for both.')).toEqual([
      { id: 'st-1', d: 'Create the data model', agent: 'coder', deps: [] },
      { id: 'st-2', d: 'Add a settings screen', agent: 'coder', deps: ['st-1'] },
      { id: 'st-3', d: 'Write tests for both', agent: 'coder', deps: ['st-1', 'st-2'] },
    ]);
    expect(brief('1. Add the model\n2. Add the repository\n3. Wire the UI').map((s) => s.deps)).toEqual([[], ['st-1'], ['st-2']]);
  });

  it('gives bulleted items the context of the line above them', () => {
    expect(brief('Build a todo app:\n- data model\n- list screen\n- run the tests').map((s) => [s.d, s.agent, s.deps])).toEqual([
      ['Build a todo app: data model', 'coder', []],
      ['Build a todo app: list screen', 'coder', []],
      ['Run the tests', 'debug', ['st-1', 'st-2']],
    ]);
  });

  it('keeps a clause with its item and does not split "reads and writes"', () => {
    expect(brief('Add a function that reads and writes files').map((s) => s.d)).toEqual(['Add a function that reads and writes files']);
    expect(brief('Refactor the parser, which is too slow, and update the docs').map((s) => [s.d, s.deps])).toEqual([
      ['Refactor the parser, which is too slow', []],
      ['Update the docs', ['st-1']],
    ]);
  });

  it('assigns agents and estimates per piece', () => {
    const plan = planHeuristically({ goal: 'Investigate why the login test fails. Explain how the session cookie is set.' });
    expect(plan.subtasks.map((s) => [s.agent, s.estimated_time])).toEqual([
      ['debug', 600],
      ['ask', 300],
    ]);
    expect(plan.source).toBe('heuristic');
    expect(plan.reasoning).toMatch(/2 subtasks/);
  });

  it('turns imperative feedback into subtasks and carries other feedback as a note', () => {
    const plan = brief('Add a login form', 'Use PostgreSQL for the sessions. Also add docs.');
    expect(plan).toEqual([
      { id: 'st-1', d: 'Add a login form (review note: Use PostgreSQL for the sessions.)', agent: 'coder', deps: [] },
      { id: 'st-2', d: 'Add docs (review note: Use PostgreSQL for the sessions.)', agent: 'coder', deps: ['st-1'] },
    ]);
  });

  it('folds a very long enumeration into at most MAX_HEURISTIC_SUBTASKS', () => {
    const goal = Array.from({ length: 40 }, (_, i) => `- add field ${i + 1}`).join('\n');
    const plan = planHeuristically({ goal });
    expect(plan.subtasks).toHaveLength(MAX_HEURISTIC_SUBTASKS);
    expect(plan.subtasks.at(-1)!.description).toMatch(/^Add field 30; Add field 31; .*Add field 40$/);
  });

  it('always produces a valid plan, even from one word', () => {
    for (const goal of ['refactor', 'x', '...', 'then then then', 'Add, , and', '1. \n2. ']) {
      const plan = planHeuristically({ goal });
      expect(plan.subtasks.length).toBeGreaterThan(0);
      expect(normalizeSubtasks(plan.subtasks)).toEqual(plan.subtasks);
    }
  });

  it('re-plans after a failure: finished work stays done, the failure is investigated, the rest waits as before', () => {
    const plan = planHeuristically({
      goal: 'Add login',
      replan: {
        previous: [
          { id: 'model', description: 'Add the user model', agent: 'coder', dependencies: [], status: 'succeeded', result: 'done' },
          { id: 'api', description: 'Add the auth endpoint', agent: 'coder', dependencies: ['model'], status: 'failed', error: 'tests fail: 401' },
          { id: 'ui', description: 'Add the login form', agent: 'coder', dependencies: ['api'], status: 'pending' },
        ],
        failure: { subtask_id: 'api', error: 'tests fail: 401' },
      },
    });
    expect(plan.subtasks.map((s) => [s.id, s.agent, s.dependencies])).toEqual([
      ['api-investigate', 'debug', []],
      ['api', 'coder', ['api-investigate']],
      ['ui', 'coder', ['api']],
    ]);
    expect(plan.subtasks[0]!.description).toMatch(/Investigate why "Add the auth endpoint" failed \(tests fail: 401\)/);
    expect(plan.subtasks[1]!.description).toMatch(/retry: the last attempt failed with "tests fail: 401"/);
    expect(plan.reasoning).toMatch(/1 finished subtask kept as done/);
  });
});
