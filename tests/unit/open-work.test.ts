import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/events/store.js';
import { openWorkOps, OPEN_WORK_INDEX } from '../../src/handlers/open-work.js';

let position = 0;
const event = (stream: string, type: string, data: Record<string, unknown> = {}): StoredEvent => ({
  id: `e${++position}`,
  stream,
  type,
  data,
  metadata: { command_id: 'c', correlation_id: 'c', causation_id: 'c', at: '2026-11-29T00:00:00.000Z', schema_version: 1 },
  revision: 0,
  position,
});

describe('open work: what an executor may owe a job to', () => {
  it('a run is open from its start until it ends; a plan while it executes or re-plans; a session while it classifies', () => {
    position = 0;
    const started = event('run-r1', 'RunStarted');
    const message = event('session-s1', 'UserMessageReceived', { message_id: 'm1', content: 'x', role: 'user' });
    const executing = event('plan-p1', 'PlanExecutionStarted', { max_parallel: 2 });
    expect(openWorkOps([started, message, executing], new Set())).toEqual([
      { op: 'index', index: OPEN_WORK_INDEX, id: 'run-r1', score: -1 },
      { op: 'index', index: OPEN_WORK_INDEX, id: 'session-s1', score: -2 },
      { op: 'index', index: OPEN_WORK_INDEX, id: 'plan-p1', score: -3 },
    ]);
    const open = new Set(['run-r1', 'session-s1', 'plan-p1']);
    // Later events of open work keep the position it opened at; endings close it.
    expect(openWorkOps([event('run-r1', 'AgentReplied'), event('plan-p1', 'SubtaskSucceeded')], open)).toEqual([]);
    expect(openWorkOps([event('run-r1', 'RunSucceeded'), event('session-s1', 'TaskClassified', { kind: 'atomic', source: 'llm' }), event('plan-p1', 'PlanCompleted')], open)).toEqual([
      { op: 'unindex', index: OPEN_WORK_INDEX, id: 'run-r1' },
      { op: 'unindex', index: OPEN_WORK_INDEX, id: 'session-s1' },
      { op: 'unindex', index: OPEN_WORK_INDEX, id: 'plan-p1' },
    ]);
  });

  it('a queued message owes nothing until it starts; a plan awaiting approval owes nothing', () => {
    position = 10;
    expect(openWorkOps([event('session-s2', 'UserMessageReceived', { message_id: 'm', content: 'x', role: 'user', queued: true })], new Set())).toEqual([]);
    expect(openWorkOps([event('plan-p2', 'PlanModificationRequested', { approval_request_id: 'a', feedback: 'f' }), event('plan-p2', 'PlanDrafted')], new Set())).toEqual([
      { op: 'unindex', index: OPEN_WORK_INDEX, id: 'plan-p2' },
    ]);
  });

  it('work that closes and opens again in one batch opens at its new position', () => {
    position = 20;
    expect(openWorkOps([event('session-s3', 'TaskClassificationFailed', { reason: 'x' }), event('session-s3', 'QueuedMessageStarted', { message_id: 'm2' })], new Set(['session-s3']))).toEqual([
      { op: 'index', index: OPEN_WORK_INDEX, id: 'session-s3', score: -22 },
    ]);
  });
});
