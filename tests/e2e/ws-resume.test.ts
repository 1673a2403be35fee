// Resume (DESIGN §5), end to end on embedded servers: a client that comes back with since/epoch (on the
// connect query or in a resume frame) gets every offset it missed exactly once, in order — after a
// disconnect and after the server itself restarted on the same log (its feed rebuilt: same offsets,
// same epoch); a client whose history is gone (trimmed) or whose epoch is another gets resync and a
// snapshot, and goes on exactly from there.
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { client, startServer, type Client, type TestServer } from '../support/server.js';
import { assertExactlyOnce, connect, logHead, type FeedClient, type Frame } from '../support/ws-client.js';

const servers: TestServer[] = [];
const dirs: string[] = [];
const sockets: FeedClient[] = [];
afterEach(async () => {
  for (const socket of sockets) expect(socket.invalid).toEqual([]);
  await Promise.all(sockets.splice(0).map((s) => s.close()));
  for (const server of servers.splice(0)) await server.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function start(env: Record<string, string> = {}, dir?: string): Promise<{ server: TestServer; api: Client }> {
  const server = await startServer(env, dir ? { dir } : {});
  servers.push(server);
  if (!dir) dirs.push(server.dir);
  return { server, api: client(server.api) };
}

async function open(server: TestServer, sessionId: string, query: Record<string, string | number | undefined> = {}): Promise<FeedClient> {
  // wait_for the log's head: the socket starts from a feed that includes every command sent so far.
  const socket = await connect(server.url, sessionId, { wait_for: await logHead(server.url), ...query });
  sockets.push(socket);
  return socket;
}

const subtasks = [
  { id: 'form', description: 'Login form', estimated_time: 600 },
  { id: 'api', description: 'Auth endpoint', estimated_time: 900 },
];
const ofType = (type: string) => (frame: Frame) => frame.type === type;
const at = (offset: number) => (frame: Frame) => frame.offset === offset && frame.type !== 'snapshot';

async function planIn(api: Client) {
  const reply = await api.post('/plans', { goal: 'Add login', subtasks });
  return reply.body as { plan_id: string; session_id: string; approval_request_id: string };
}

describe('resume', () => {
  it('after a disconnect: since/epoch on the connect query replays exactly what was missed', async () => {
    const { server, api } = await start();
    const plan = await planIn(api);
    const first = await open(server, plan.session_id, { since: 0 });
    await first.waitFor(at(4));
    await first.close();

    await api.post(`/plans/${plan.plan_id}/decision`, { approval_request_id: plan.approval_request_id, decision: 'approve' });
    await api.post(`/sessions/${plan.session_id}/suspend`, { reason: 'lunch' });
    const second = await open(server, plan.session_id, { since: first.lastOffset(), epoch: first.epoch() });
    await second.waitFor(at(6));
    await api.post(`/sessions/${plan.session_id}/resume`, {});
    await second.waitFor(at(7));
    expect(second.frames.some(ofType('resync'))).toBe(false);
    expect(second.epoch()).toBe(first.epoch());
    expect(assertExactlyOnce([first, second])).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(second.feed().map((f) => f.type)).toEqual(['plan_approved', 'status', 'status']);
  });

  it('a resume frame replays after its offset on the same socket', async () => {
    const { server, api } = await start();
    const plan = await planIn(api);
    const socket = await open(server, plan.session_id);
    const snapshot = await socket.waitFor(ofType('snapshot'));
    socket.send({ type: 'resume', since: 1, epoch: snapshot.epoch });
    await socket.waitFor(at(4));
    expect(socket.feed().map((f) => f.offset)).toEqual([2, 3, 4]);
    // The IDE encodes numbers as numbers, but a query-string habit must not break it either.
    socket.send({ type: 'resume', metadata: { since: '3' } });
    await socket.waitFor((f) => f.offset === 4 && socket.feed().length === 4);
    expect(socket.feed().map((f) => f.offset)).toEqual([2, 3, 4, 4]);
  });

  it('after the server restarts on the same log: the rebuilt feed has the same offsets and epoch, the client goes on exactly', async () => {
    const { server, api } = await start();
    const plan = await planIn(api);
    const before = await open(server, plan.session_id, { since: 0 });
    await before.waitFor(at(4));
    await server.close(); // SIGTERM's steps: the socket is told to go away
    expect(await before.closed).toMatchObject({ code: 1001 });

    const again = await start({}, server.dir);
    await again.api.post(`/plans/${plan.plan_id}/decision`, { approval_request_id: plan.approval_request_id, decision: 'approve' });
    const after = await open(again.server, plan.session_id, { since: before.lastOffset(), epoch: before.epoch() });
    await after.waitFor(at(5));
    expect(after.frames.some(ofType('resync'))).toBe(false);
    expect(after.epoch()).toBe(before.epoch());
    expect(assertExactlyOnce([before, after])).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('resync', () => {
  it('when history no longer reaches back: resync (recovered false) and a snapshot, then live from its offset', async () => {
    const { server, api } = await start({ FEED_HISTORY: '3' });
    const plan = await planIn(api);
    await api.post(`/plans/${plan.plan_id}/decision`, { approval_request_id: plan.approval_request_id, decision: 'approve' });
    await api.post(`/sessions/${plan.session_id}/suspend`, {});
    const socket = await open(server, plan.session_id, { since: 1 });
    const resync = await socket.waitFor(ofType('resync'));
    expect(resync).toMatchObject({ recovered: false, session_id: plan.session_id, metadata: { reason: 'history_trimmed', since: 1 } });
    const snapshot = await socket.waitFor(ofType('snapshot'));
    expect(snapshot).toMatchObject({ offset: 6, metadata: { fsm_state: 'plan_execution', session: { status: 'suspended' } } });
    expect(socket.frames.indexOf(resync)).toBe(socket.frames.indexOf(snapshot) - 1);
    await api.post(`/sessions/${plan.session_id}/resume`, {});
    await socket.waitFor(at(7));
    expect(assertExactlyOnce([socket], 1)).toEqual([7]);
  });

  it('when the epoch is another feed’s: resync and a snapshot with the current epoch', async () => {
    const { server, api } = await start();
    const plan = await planIn(api);
    const socket = await open(server, plan.session_id, { since: 2, epoch: 'an-older-feed' });
    expect(await socket.waitFor(ofType('resync'))).toMatchObject({ metadata: { reason: 'epoch_changed' } });
    const snapshot = await socket.waitFor(ofType('snapshot'));
    expect(snapshot.epoch).not.toBe('an-older-feed');
    expect(snapshot).toMatchObject({ offset: 4, plan_id: plan.plan_id });
    expect(socket.feed()).toEqual([]);
  });

  it('a bad since on the connect query is an error frame, then a first connect', async () => {
    const { server, api } = await start();
    const plan = await planIn(api);
    const socket = await open(server, plan.session_id, { since: 'yesterday' });
    expect(await socket.waitFor(ofType('error'))).toMatchObject({ code: 'validation_failed' });
    expect(await socket.waitFor(ofType('snapshot'))).toMatchObject({ offset: 4 });
  });
});
