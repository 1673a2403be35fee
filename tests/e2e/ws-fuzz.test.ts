// A few thousand random frames at a running server's socket: broken JSON, wrong types, missing and
// extra fields, nulls, odd unicode, prototype keys, binary and oversize frames (over the frame limit, not
// so far over that the ws server's hard cap closes the socket with 1009), and frames of every known
// type that no decider may accept. Afterwards the server is healthy, the socket still answers, every
// frame it sent decodes as the IDE's MessageModel, and the event log has not moved.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { client, startServer, type Client, type TestServer } from '../support/server.js';
import { connect, type FeedClient } from '../support/ws-client.js';

let server: TestServer;
let api: Client;
beforeAll(async () => {
  server = await startServer({ WS_MAX_FRAMES_PER_SECOND: '1000000', WS_MAX_FRAME_BYTES: '8192' });
  api = client(server.api);
});
afterAll(async () => server?.dispose());

async function logHead(): Promise<number> {
  // A keep-alive connection left idle through a long fuzz run may be closed by the server just as it is
  // reused (ECONNRESET); a read is safe to send again.
  const metrics = await api.get('/metrics').catch(() => api.get('/metrics'));
  return Number(/^planline_event_log_head_position (\d+)/m.exec(metrics.text)?.[1]);
}

/** A small deterministic generator, so a failure replays with the same frames. */
function generator(seed: number) {
  let state = seed >>> 0;
  const next = () => ((state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0) / 2 ** 32);
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const strings = ['', ' ', 'x', '🙂', 'a\u0000b', '\ud800', '__proto__', 'constructor', 'approve', 'approved', 'coder', 'null', '0', '-1', '1e999', 'x'.repeat(300)];
  const scalar = (): unknown => pick([null, true, false, 0, -1, 1.5, 2 ** 53, -(2 ** 60), Number.MAX_VALUE, pick(strings), `s-${int(1e6)}`]);
  const value = (depth = 0): unknown => {
    const kind = depth > 3 ? 0 : int(4);
    if (kind === 0 || kind === 1) return scalar();
    if (kind === 2) return Array.from({ length: int(4) }, () => value(depth + 1));
    return Object.fromEntries(Array.from({ length: int(4) }, () => [pick([...strings, 'metadata', 'type', 'content', 'decision']), value(depth + 1)]));
  };
  return { next, int, pick, value, strings };
}

type Fuzzed = { data: string | Buffer; kind: 'ping' | 'resume' | 'refused' };

/** Frames no decider may accept: wrong or missing fields, unknown ids, invalid agents, no plan to cancel. */
function fuzzFrames(count: number, seed: number): Fuzzed[] {
  const g = generator(seed);
  const badText = () => g.pick<unknown>([undefined, null, 42, '', ['a'], { text: 'x' }]);
  const known: Array<() => Record<string, unknown>> = [
    () => ({ type: 'user_message', content: badText(), role: g.pick([null, 'user', 'assistant', 3]) }),
    () => ({ type: 'user_message', content: 'fine text', role: g.pick(['assistant', 'system', 7, {}]) }),
    () => ({ type: 'plan_decision', approval_request_id: g.pick([`nope-${g.int(1e6)}`, null, 5, '']), decision: g.pick(['approve', 'approved', 'maybe', null, 1]) }),
    () => ({ type: 'plan_decision', metadata: { approval_request_id: `ghost-${g.int(1e6)}`, decision: g.pick(['rejected', 'modified', 'cancelled', 'nah']), feedback: g.value() } }),
    () => ({ type: 'tool_result', call_id: g.pick([`call-${g.int(1e6)}`, 3, {}]), result: g.value() }),
    () => ({ type: 'tool_result', metadata: { approval_request_id: g.pick([`ghost-${g.int(1e6)}`, null]), decision: g.pick(['approved', 'x', null]), approved: g.value() } }),
    () => ({ type: 'hitl_decision', call_id: g.pick([`call-${g.int(1e6)}`, null]), decision: g.pick(['approve', 'edit', 'reject', 'nope']) }),
    () => ({ type: 'switch_agent', agent_type: g.pick(['wizard', '', null, 9, 'CODER', 'coder ']), reason: g.value() }),
    () => ({ type: 'cancel', plan_id: g.pick([undefined, `plan-${g.int(1e6)}`]), reason: g.pick([undefined, 'because']) }),
    () => ({ type: g.pick(['', 'USER_MESSAGE', 'assistant_message', 'tool_call', 'status', 'error', 'snapshot', '__proto__', 'constructor']), content: g.value() }),
    () => ({ type: g.value(), content: g.value() }),
    () => Object.fromEntries([['__proto__', { type: 'ping' }], ['constructor', g.value()], ['content', g.value()]]),
  ];
  const frames: Fuzzed[] = [];
  for (let i = 0; i < count; i++) {
    const roll = g.int(100);
    if (roll < 5) frames.push({ data: JSON.stringify({ type: 'ping', extra: g.value() }), kind: 'ping' });
    else if (roll < 8) frames.push({ data: JSON.stringify({ type: 'resume', since: g.int(50), epoch: g.pick([undefined, 'old']) }), kind: 'resume' });
    else if (roll < 20) {
      const garbage = [
        () => JSON.stringify(g.value()).slice(0, g.int(40)) + '\u0000{',
        () => g.pick(['', ' ', 'null', 'true', '[]', '"text"', '123', '{', '}', '{"type":}', '{"type":"ping"']),
        () => Buffer.from(Array.from({ length: g.int(64) + 1 }, () => g.int(256))),
        () => JSON.stringify({ type: 'user_message', content: 'x'.repeat(9_000) }),
        () => '['.repeat(5_000),
      ];
      frames.push({ data: g.pick(garbage)(), kind: 'refused' });
    } else frames.push({ data: JSON.stringify(g.pick(known)()), kind: 'refused' });
  }
  return frames;
}

it('survives 3000 random frames: healthy, answering, decodable, and the log unchanged', async () => {
  const sessionId = (await api.post('/sessions', { name: 'fuzz' })).body.session_id as string;
  const socket: FeedClient = await connect(server.url, sessionId, { since: 0 });
  await socket.waitFor((f) => f.type === 'session_info');
  const head = await logHead();

  const frames = fuzzFrames(3_000, 20_261_129);
  for (const [i, frame] of frames.entries()) {
    socket.sendRaw(frame.data);
    if (i % 200 === 199) await new Promise((resolve) => setImmediate(resolve)); // let the server breathe, as a network would
  }
  socket.send({ type: 'ping', marker: 'last' });
  const pings = frames.filter((f) => f.kind === 'ping').length + 1;
  await socket.waitFor(() => socket.frames.filter((f) => f.type === 'pong').length === pings, 30_000, `${pings} pongs`);

  expect(socket.invalid).toEqual([]);
  expect(socket.ws.readyState).toBe(socket.ws.OPEN);
  const errors = socket.frames.filter((f) => f.type === 'error');
  expect(errors).toHaveLength(frames.filter((f) => f.kind === 'refused').length);
  for (const error of errors) {
    expect(typeof error.code).toBe('string');
    expect(error.content).toBe(error.error);
  }
  expect(new Set(socket.frames.map((f) => f.type))).toEqual(new Set(['session_info', 'error', 'pong', ...(socket.frames.some((f) => f.type === 'resync') ? ['resync', 'snapshot'] : [])]));
  expect(errors.some((e) => e.code === 'internal_error')).toBe(false);

  expect(await logHead()).toBe(head);
  expect((await api.get('/health').catch(() => api.get('/health'))).status).toBe(200);
  const fresh = await connect(server.url, sessionId);
  expect(await fresh.waitFor((f) => f.type === 'snapshot')).toMatchObject({ offset: 1 });
  expect(server.logs.filter((line) => line.level === 'error')).toEqual([]);
  await Promise.all([socket.close(), fresh.close()]);
}, 60_000);
