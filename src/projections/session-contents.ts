// What belongs to a session in the read models: its plans, approval requests and runs, and how many history
// entries and conversation messages it has. Those two are numbered per session (`<session>:1`,
// `<session>:2`, …), so deleting a session can name every document it owns: a projection reads and
// writes documents by id and cannot list an index. Deleting leaves a small tombstone here (no route
// reads this collection) so that a late event of one of its plans recreates nothing.
import type { ProjectionTx } from './projection.js';
import { APPROVALS, CONVERSATION, HISTORY, PLANS, RUNS, SESSIONS } from './collections.js';

import { SESSION_CONTENTS } from './collections.js';
export { SESSION_CONTENTS };

export interface SessionContentsDoc {
  session_id: string;
  plan_ids: string[];
  approval_ids: string[];
  /** Its agent runs (absent before the first). */
  run_ids?: string[];
  /** History entries written: `<session>:1` … `<session>:<history_count>`. */
  history_count: number;
  /** Conversation messages written, numbered the same way. */
  message_count: number;
  /** The session was deleted: events of its plans write nothing. */
  deleted?: boolean;
  [key: string]: unknown;
}

/** The id of a session's n-th history entry or conversation message (n from 1). */
export const entryId = (sessionId: string, n: number) => `${sessionId}:${n}`;

const emptyContents = (sessionId: string): SessionContentsDoc => ({
  session_id: sessionId,
  plan_ids: [],
  approval_ids: [],
  history_count: 0,
  message_count: 0,
});

export async function contentsOf(sessionId: string, tx: ProjectionTx): Promise<SessionContentsDoc> {
  return ((await tx.get(SESSION_CONTENTS, sessionId)) as SessionContentsDoc | undefined) ?? emptyContents(sessionId);
}

/** `ids` with `id` added at the end, unless it is there already. */
export const withId = (ids: readonly string[], id: string | undefined): string[] =>
  id === undefined || ids.includes(id) ? [...ids] : [...ids, id];

/**
 * Remove a session and everything it owns from the read models (the log keeps them). False when there
 * is no such session (never started, or deleted already: a redelivery).
 */
export async function deleteSessionViews(sessionId: string, tx: ProjectionTx): Promise<boolean> {
  if (!(await tx.get(SESSIONS, sessionId))) return false;
  const contents = await contentsOf(sessionId, tx);
  for (const id of contents.plan_ids) tx.delete(PLANS, id);
  for (const id of contents.approval_ids) tx.delete(APPROVALS, id);
  for (const id of contents.run_ids ?? []) tx.delete(RUNS, id);
  for (let n = 1; n <= contents.history_count; n++) tx.delete(HISTORY, entryId(sessionId, n));
  for (let n = 1; n <= contents.message_count; n++) tx.delete(CONVERSATION, entryId(sessionId, n));
  tx.delete(SESSIONS, sessionId);
  tx.put(SESSION_CONTENTS, sessionId, { ...emptyContents(sessionId), deleted: true } satisfies SessionContentsDoc);
  return true;
}
