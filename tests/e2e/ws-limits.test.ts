// The socket's limits, end to end on embedded servers configured with small ones: heartbeats close a dead
// peer, a consumer that lets its send buffer fill is closed with a reason and resumes exactly, the
// per-process connection limit refuses clearly, a flood of frames is refused then closed, and SIGTERM's
// drain tells every socket to go away.
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { client, startServer, type Client, type TestServer } from '../support/server.js';
import { assertExactlyOnce, connect, logHead, type FeedClient, type Frame } from '../support/ws-client.js';

const servers: TestServer[] = [];
const sockets: FeedClient[] = [];
afterEach(async () => {
  for (const socket of sockets) expect(socket.invalid).toEqual([]);
  for (const socket of sockets.splice(0)) {
    rawSocket(socket).resume();
    await socket.close();
  }
  for (const server of servers.splice(0)) await server.dispose();
});

async function start(env: Record<string, string>): Promise<{ server: TestServer; api: Client }> {
  const server = await startServer(env);
  servers.push(server);
  return { server, api: client(server.api) };
}

async function open(server: TestServer, sessionId: string, query: Record<string, string | number | undefined> = {}): Promise<FeedClient> {
  const socket = await connect(server.url, sessionId, { wait_for: await logHead(server.url), ...query });
  sockets.push(socket);
  return socket;
}

/** The client's TCP socket: pausing it is a peer that stops reading (a hung IDE, a dead network). */
const rawSocket = (socket: FeedClient) => (socket.ws as unknown as { _socket: Socket })._socket;

async function gauge(api: Client, name: string): Promise<number> {
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec((await api.get('/metrics')).text)?.[1]);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Date.now() - started;
}

const ofType = (type: string) => (frame: Frame) => frame.type === type;
const session = async (api: Client) => (await api.post('/sessions', {})).body.session_id as string;

describe('heartbeats', () => {
  it('a peer that stops answering pings is closed and cleaned up within two intervals; a live one stays', async () => {
    const interval = 250;
    const { server, api } = await start({ WS_HEARTBEAT_MS: String(interval) });
    const id = await session(api);
    const live = await open(server, id);
    const dead = await open(server, id);
    await dead.waitFor(ofType('snapshot'));
    expect(await gauge(api, 'planline_ws_connections')).toBe(2);
    rawSocket(dead).pause();
    const took = await until('the dead socket to be dropped', async () => (await gauge(api, 'planline_ws_connections')) === 1);
    // Two intervals, with room for a loaded machine; the point is "promptly, by the heartbeat".
    expect(took).toBeLessThan(2 * interval + 1_000);
    await new Promise((resolve) => setTimeout(resolve, 3 * interval));
    live.send({ type: 'ping' });
    await live.waitFor(ofType('pong'));
    expect(await gauge(api, 'planline_ws_connections')).toBe(1);
    await live.close();
    await until('the subscription to be released', async () => (await gauge(api, 'planline_ws_watched_sessions')) === 0);
  });
});

describe('send buffer', () => {
  it('a consumer that lets its send buffer fill is closed with a reason, and resumes exactly where it was', async () => {
    const { server, api } = await start({ WS_MAX_BUFFERED_BYTES: '16384' });
    const id = await session(api);
    const slow = await open(server, id, { since: 0 });
    await slow.waitFor((f) => f.offset === 1);
    rawSocket(slow).pause();
    // Plans with long descriptions make megabyte frames; kernel buffers fill first, then the edge's.
    const subtasks = Array.from({ length: 60 }, (_, i) => ({ description: `${i} ${'a long description '.repeat(500)}`, estimated_time: 60 }));
    let plans = 0;
    await until(
      'the edge to give up on the slow consumer',
      async () => {
        if ((await gauge(api, 'planline_ws_connections')) === 0) return true;
        await api.post('/plans', { session_id: id, goal: `plan ${++plans}`, subtasks });
        return false;
      },
      60_000,
    );
    rawSocket(slow).resume();
    const closed = await slow.closed;
    expect(closed.code).toBe(4008);
    expect(closed.reason).toMatch(/^slow consumer: .*reconnect with since=\d+$/);
    const head = (await (await open(server, id)).waitFor(ofType('snapshot'))).offset as number;
    const resumed = await open(server, id, { since: slow.lastOffset(), epoch: slow.epoch() });
    await resumed.waitFor((f) => f.offset === head, 20_000);
    expect(slow.lastOffset()).toBeLessThan(head);
    expect(assertExactlyOnce([slow, resumed])).toEqual(Array.from({ length: head }, (_, i) => i + 1));
  });
});

describe('connection limit', () => {
  it('refuses the socket over the limit with an error frame and 1013, and takes one again when a slot frees', async () => {
    const { server, api } = await start({ WS_MAX_CONNECTIONS: '2' });
    const id = await session(api);
    const first = await open(server, id);
    await open(server, id);
    const third = await open(server, id);
    expect(await third.closed).toEqual({ code: 1013, reason: 'too many connections' });
    expect(third.frames).toEqual([expect.objectContaining({ type: 'error', code: 'too_many_connections', metadata: expect.objectContaining({ max_connections: 2 }) })]);
    await first.close();
    await until('the slot to free', async () => (await gauge(api, 'planline_ws_connections')) === 1);
    const fourth = await open(server, id);
    await fourth.waitFor(ofType('snapshot'));
  });
});

describe('rate limit', () => {
  it('refuses frames over the per-second limit with one error frame, and closes a socket that keeps flooding', async () => {
    const { server, api } = await start({ WS_MAX_FRAMES_PER_SECOND: '5' });
    const socket = await open(server, await session(api));
    await socket.waitFor(ofType('snapshot'));
    const burst = async (n: number) => {
      // Start at the top of a second, so one burst stays within one rate window.
      await new Promise((resolve) => setTimeout(resolve, 1_050));
      for (let i = 0; i < n; i++) socket.send({ type: 'ping' });
    };
    await burst(8);
    const limited = await socket.waitFor(ofType('error'));
    expect(limited).toMatchObject({ code: 'rate_limited', metadata: { max_frames_per_second: 5 } });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(socket.frames.filter(ofType('pong'))).toHaveLength(5);
    expect(socket.frames.filter(ofType('error'))).toHaveLength(1);
    await burst(30);
    expect(await socket.closed).toEqual({ code: 1008, reason: 'more than 10 frames in a second' });
  });
});

describe('shutdown', () => {
  it('SIGTERM’s drain closes every socket with 1001 going away', async () => {
    const { server, api } = await start({});
    const id = await session(api);
    const [a, b] = [await open(server, id), await open(server, id)];
    await Promise.all([a.waitFor(ofType('snapshot')), b.waitFor(ofType('snapshot'))]);
    await server.close();
    for (const socket of [a, b]) {
      expect(await socket.closed).toEqual({ code: 1001, reason: 'going away: the server is shutting down; reconnect and resume' });
    }
  });
});
