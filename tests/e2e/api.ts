// Helpers the end-to-end files share: drafting a plan over HTTP, reading the log head, asserting a
// problem+json refusal, polling with a bounded wait. They only speak HTTP to a running server.
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { Client, Reply } from '../support/server.js';

export interface Drafted {
  plan_id: string;
  session_id: string;
  approval_request_id: string;
  position: number;
  approval: { approval_request_id: string; status: string; deadline: string };
  [key: string]: unknown;
}

export const threeSubtasks = () => [
  { id: 'design', description: 'Design the parser', agent: 'architect', estimated_time: 30 },
  { description: 'Implement the parser', dependencies: [0], estimated_time: 60 },
  { id: 'verify', description: 'Test the parser', agent: 'debug', dependencies: ['design', 1], estimated_time: 15 },
];

/** POST /plans (a new session unless one is named); expects 201 and returns the response body. */
export async function draftPlan(c: Client, body: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<Drafted> {
  const reply = await c.post<Drafted>('/plans', { goal: `Goal ${randomUUID().slice(0, 8)}`, subtasks: threeSubtasks(), ...body }, { headers });
  expect(reply.status, reply.text).toBe(201);
  return reply.body;
}

/** GET a path once the read models include `position`; expects 200. */
export async function read<T = any>(c: Client, path: string, position: number): Promise<Reply<T>> {
  const reply = await c.get<T>(`${path}${path.includes('?') ? '&' : '?'}wait_for=${position}`);
  expect(reply.status, `GET ${path}: ${reply.text}`).toBe(200);
  return reply;
}

export async function decide(c: Client, planId: string, approvalRequestId: string, decision: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return c.post(`/plans/${planId}/decision`, { approval_request_id: approvalRequestId, decision, ...extra }, { headers });
}

/** The event log head as the server reports it (the Prometheus gauge). */
export async function logHead(c: Client): Promise<number> {
  const reply = await c.get('/metrics');
  expect(reply.status).toBe(200);
  const match = /^planline_event_log_head_position (\d+)$/m.exec(reply.text);
  expect(match, 'planline_event_log_head_position in /metrics').not.toBeNull();
  return Number(match![1]);
}

/** Raw events of a stream (every page). */
export async function streamEvents(c: Client, stream: string): Promise<Array<{ type: string; revision: number; position: number; data: any; metadata: any }>> {
  const reply = await c.get(`/streams/${stream}?limit=500`);
  if (reply.status === 404) return [];
  expect(reply.status, reply.text).toBe(200);
  return reply.body.events;
}

/** Asserts an RFC 9457 problem with a stable code; returns the problem document. */
export function expectProblem(reply: Reply, status: number, code: string): any {
  expect(reply.status, reply.text).toBe(status);
  expect(reply.contentType).toMatch(/^application\/problem\+json/);
  const p = reply.body;
  expect(p).toMatchObject({ status, code });
  expect(typeof p.type).toBe('string');
  expect(p.type.length).toBeGreaterThan(0);
  expect(typeof p.title).toBe('string');
  expect(p.title.length).toBeGreaterThan(0);
  expect(typeof p.detail).toBe('string');
  expect(p.detail.length).toBeGreaterThan(0);
  return p;
}

/** Poll `probe` until `done` holds or `timeoutMs` passes (then fail with the last value). */
export async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  for (;;) {
    last = await probe();
    if (done(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export const DECISION_EVENTS = ['PlanApproved', 'PlanRejected', 'PlanModificationRequested', 'PlanApprovalExpired'];
