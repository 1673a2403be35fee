// Who may watch and command a session over the socket, with real tokens (HS256 with AUTH_SECRET): the
// owner and those it shared the session with may watch; a stranger gets the answer a missing session
// gets; a viewer watches but its commands are refused (403 forbidden); a socket without a token is
// refused at the handshake; the token may come as `?access_token=`; a socket closes when its token expires.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { client, startServer, type Client, type TestServer } from '../support/server.js';
import { hs256, validClaims } from '../support/tokens.js';
import { connect, type FeedClient, type Frame } from '../support/ws-client.js';

const SECRET = `ws-access-test-key-${randomUUID()}`;
let server: TestServer;
const token = (who: string, claims: Record<string, unknown> = {}) => hs256(SECRET, { ...validClaims(who), ...claims });
const as: Record<string, Client> = {};
let session: string;
const sockets: FeedClient[] = [];

beforeAll(async () => {
  server = await startServer({ AUTH_SECRET: SECRET });
  for (const who of ['alice', 'vic', 'mallory']) as[who] = client(server.api, { headers: { authorization: `Bearer ${token(who)}` } });
  session = (await as.alice!.post('/plans', { goal: 'Add login', subtasks: [{ description: 'form' }] })).body.session_id;
  await as.alice!.send('PUT', `/sessions/${session}/shares/vic`, { role: 'viewer' });
});
afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await server?.dispose();
});

async function open(who: string, claims: Record<string, unknown> = {}, id = session): Promise<FeedClient> {
  const head = await as.alice!.get('/metrics').then((r) => Number(/^planline_event_log_head_position (\d+)/m.exec(r.text)?.[1]));
  const socket = await connect(server.url, id, { access_token: token(who, claims), wait_for: head });
  sockets.push(socket);
  return socket;
}
const ofType = (type: string) => (frame: Frame) => frame.type === type;

test('the owner and a viewer watch; a stranger is told the session does not exist', async () => {
  const owner = await open('alice');
  const seen = await owner.waitFor(ofType('snapshot'));
  expect(seen).toMatchObject({ session_id: session, metadata: { fsm_state: 'plan_review' } });
  const viewer = await open('vic');
  expect(await viewer.waitFor(ofType('snapshot'))).toMatchObject({ session_id: session, offset: seen.offset, epoch: seen.epoch });
  const stranger = await open('mallory');
  expect(await stranger.closed).toEqual({ code: 4404, reason: 'session not found' });
  expect(stranger.frames).toEqual([expect.objectContaining({ type: 'error', code: 'session_not_found' })]);
  expect(stranger.frames[0]!.content).not.toMatch(/alice|vic/);
});

test('a viewer’s commands are refused with 403 forbidden; the owner’s go through', async () => {
  const viewer = await open('vic');
  await viewer.waitFor(ofType('snapshot'));
  viewer.send({ type: 'switch_agent', agent_type: 'debug' });
  expect(await viewer.waitFor(ofType('error'))).toMatchObject({ code: 'forbidden', metadata: { http_status: 403 } });
  const owner = await open('alice');
  await owner.waitFor(ofType('snapshot'));
  owner.send({ type: 'switch_agent', agent_type: 'debug' });
  await owner.waitFor(ofType('agent_switched'));
  await viewer.waitFor(ofType('agent_switched')); // the viewer watches it happen
});

test('a new_ socket starts a session its principal owns', async () => {
  const socket = await open('mallory', {}, 'new_tab');
  const info = await socket.waitFor(ofType('session_info'));
  const head = await as.mallory!.get('/metrics').then((r) => Number(/^planline_event_log_head_position (\d+)/m.exec(r.text)?.[1]));
  const mine = await as.mallory!.get(`/sessions/${info.session_id}?wait_for=${head}`);
  expect(mine.status).toBe(200);
  expect((await as.vic!.get(`/sessions/${info.session_id}`)).status).toBe(404);
});

test('no token: the handshake is refused with 401', async () => {
  await expect(connect(server.url, session)).rejects.toThrow(/401/);
});

test('a socket closes when its token expires', async () => {
  const socket = await open('alice', { exp: Math.floor(Date.now() / 1000) + 2 });
  await socket.waitFor(ofType('snapshot'));
  expect(await socket.closed).toEqual({ code: 4401, reason: 'token expired' });
  expect(socket.frames.at(-1)).toMatchObject({ type: 'error', code: 'token_expired' });
});

test('revoking a share closes the viewer’s open socket at once; deleting the session closes every socket on it', async () => {
  const created = await as.alice!.post('/plans', { goal: 'Shared for a while', subtasks: [{ description: 'step' }] });
  const shared = created.body.session_id as string;
  await as.alice!.send('PUT', `/sessions/${shared}/shares/vic`, { role: 'viewer' });
  const viewer = await open('vic', {}, shared);
  await viewer.waitFor(ofType('snapshot'));
  const owner = await open('alice', {}, shared);
  await owner.waitFor(ofType('snapshot'));

  expect((await as.alice!.send('DELETE', `/sessions/${shared}/shares/vic`)).status).toBeLessThan(300);
  // The viewer sees the change, then the socket closes as if the session were gone (it is, for vic).
  expect(await viewer.closed).toEqual({ code: 4404, reason: 'session not found' });
  expect(viewer.frames.at(-1)).toMatchObject({ type: 'error', code: 'session_not_found' });
  expect(viewer.frames.some((f) => f.type === 'status' && f.metadata?.access_changed === true)).toBe(true);
  await owner.waitFor((f) => f.type === 'status' && f.metadata?.access_changed === true);
  expect(owner.frames.some((f) => f.type === 'error')).toBe(false); // the owner keeps watching

  expect((await as.alice!.send('DELETE', `/sessions/${shared}`)).status).toBe(200);
  expect(await owner.closed).toEqual({ code: 4404, reason: 'session not found' });
  expect(owner.frames.some((f) => f.type === 'status' && f.metadata?.session_status === 'deleted')).toBe(true);
});
