// What the edges ask before a subscription or a command: who a principal is to a session, read from
// the log and caught up, so a share revoked through another process (another edge) counts at once.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '../../src/events/sqlite-store.js';
import type { EventStore } from '../../src/events/store.js';
import { createCommandHandler } from '../../src/commands/handle.js';
import { createCommands } from '../../src/commands/service.js';
import { sessionAccessRefusal } from '../../src/http/access.js';
import type { Principal } from '../../src/auth/principal.js';

let store: EventStore;
beforeEach(() => {
  store = openSqliteEventStore(':memory:');
});
afterEach(async () => {
  await store.close();
});

const who = (id: string): Principal => ({ id, via: 'token' });
const meta = (principal: string, n: number) => ({ command_id: `cmd-${principal}-${n}`, principal });

describe('session access across processes', () => {
  it('a share granted or revoked by one edge counts at once on another that cached the session', async () => {
    const edgeA = createCommands(createCommandHandler(store));
    const edgeB = createCommands(createCommandHandler(store));
    const { session_id } = await edgeA.startSession({ session_id: 's1' }, meta('alice', 1));

    // Edge B caches the session while bob is a stranger.
    expect(await edgeB.sessionAccess(session_id, 'bob')).toMatchObject({ exists: true, access: 'none' });
    expect((await sessionAccessRefusal(edgeB, who('bob'), session_id, 'read'))?.code).toBe('session_not_found');

    await edgeA.shareSession(session_id, { principal: 'bob', role: 'collaborator' }, meta('alice', 2));
    expect(await sessionAccessRefusal(edgeB, who('bob'), session_id, 'command')).toBeUndefined();
    // Edge B's command path agrees: bob's message is taken.
    await expect(edgeB.sendUserMessage(session_id, { content: 'hi' }, meta('bob', 1))).resolves.toMatchObject({ changed: true });

    await edgeA.shareSession(session_id, { principal: 'bob', role: 'viewer' }, meta('alice', 3));
    expect((await sessionAccessRefusal(edgeB, who('bob'), session_id, 'command'))?.code).toBe('forbidden');
    expect(await sessionAccessRefusal(edgeB, who('bob'), session_id, 'read')).toBeUndefined();

    await edgeA.revokeShare(session_id, { principal: 'bob' }, meta('alice', 4));
    expect((await sessionAccessRefusal(edgeB, who('bob'), session_id, 'read'))?.code).toBe('session_not_found');
    // A stranger and a missing session get the very same answer.
    const missing = await sessionAccessRefusal(edgeB, who('bob'), 'no-such-session', 'read');
    expect(missing?.code).toBe('session_not_found');
  });

  it('a plan command from a stranger or viewer is refused by the use case itself (the socket path)', async () => {
    const commands = createCommands(createCommandHandler(store));
    const plan = await commands.createPlan({ goal: 'g', subtasks: [{ description: 'd' }] }, meta('alice', 1));
    await commands.shareSession(plan.session_id, { principal: 'vic', role: 'viewer' }, meta('alice', 2));
    const decision = { approval_request_id: plan.approval_request_id, decision: 'approve' as const };
    await expect(commands.decidePlan(plan.plan_id, decision, meta('mallory', 1))).rejects.toMatchObject({ code: 'plan_not_found' });
    await expect(commands.decidePlan(plan.plan_id, decision, meta('vic', 1))).rejects.toMatchObject({ code: 'forbidden' });
    await expect(commands.decideSessionPlan(plan.session_id, decision, meta('mallory', 2))).rejects.toMatchObject({ code: 'session_not_found' });
    await expect(commands.createPlan({ session_id: plan.session_id, goal: 'g', subtasks: [{ description: 'd' }] }, meta('mallory', 3))).rejects.toMatchObject({
      code: 'session_not_found',
    });
    await expect(commands.decidePlan(plan.plan_id, decision, meta('alice', 3))).resolves.toMatchObject({ changed: true });
  });
});
