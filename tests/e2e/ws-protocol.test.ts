// The IDE socket, end to end on a running server (embedded, and on Redis + NATS), with `ws` as the IDE: what a first connect
// gets, the frames of a plan's life with every field where the IDE reads it, decisions in each form the
// IDE sends them, agent switches, cancel, ping, temporary sessions, two sockets on one session, and every
// way a frame can be wrong (the socket stays open, the log does not move, refusals carry the HTTP code).
// Every frame received is checked against the IDE's MessageModel (tests/support/ws-client.ts).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { client, startServer, type Client, type TestServer } from '../support/server.js';
import { deleteBusStreams, NATS_URL, REDIS_URL, serviceAvailable, uniqueBusPrefix } from '../support/services.js';
import { assertExactlyOnce, connect, type FeedClient, type Frame } from '../support/ws-client.js';

const redisUp = await serviceAvailable('redis', REDIS_URL);
const natsUp = await serviceAvailable('nats', NATS_URL);
const modes = [
  { label: 'embedded', env: {} as Record<string, string>, skip: false },
  { label: 'redis + nats', env: { REDIS_URL, NATS_URL } as Record<string, string>, skip: !redisUp || !natsUp },
];

let server: TestServer;
let api: Client;
const sockets: FeedClient[] = [];

for (const mode of modes) describe.skipIf(mode.skip)(mode.label, () => {
  const busPrefix = uniqueBusPrefix('wsproto');
  beforeAll(async () => {
    server = await startServer({ WS_MAX_FRAME_BYTES: '4096', ...mode.env }, { busPrefix });
    api = client(server.api);
  });
  afterEach(async () => {
    for (const socket of sockets) expect(socket.invalid).toEqual([]);
    await Promise.all(sockets.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await server?.dispose();
    if (mode.env.NATS_URL) await deleteBusStreams(NATS_URL, busPrefix);
  });

  async function open(sessionId: string, query: Record<string, string | number | undefined> = {}): Promise<FeedClient> {
    // wait_for the log's head: the socket starts from a feed that includes every command sent so far.
    const socket = await connect(server.url, sessionId, { wait_for: await logHead(), ...query });
    sockets.push(socket);
    return socket;
  }

  const subtasks = [
    { id: 'form', description: 'Login form', estimated_time: 600 },
    { id: 'api', description: 'Auth endpoint', estimated_time: '1h 30m' },
    { id: 'e2e', description: 'End-to-end test', agent: 'debug', dependencies: ['form', 1], estimated_time: 90 },
  ];

  async function newPlan(sessionId?: string): Promise<{ plan_id: string; session_id: string; approval_request_id: string; position: number }> {
    const reply = await api.post('/plans', { ...(sessionId ? { session_id: sessionId } : {}), goal: 'Add login', subtasks });
    expect(reply.status).toBe(201);
    return reply.body;
  }

  async function logHead(): Promise<number> {
    const text = (await api.get('/metrics')).text;
    return Number(/^planline_event_log_head_position (\d+)/m.exec(text)?.[1]);
  }

  const ofType = (type: string) => (frame: Frame) => frame.type === type;

  describe('connecting', () => {
    it('a first connect gets a snapshot of where the session stands (offset, epoch, fsm_state, the pending approval), then live frames after it', async () => {
      const plan = await newPlan();
      const socket = await open(plan.session_id);
      const snapshot = await socket.waitFor(ofType('snapshot'));
      expect(snapshot).toMatchObject({
        session_id: plan.session_id,
        offset: 4,
        plan_id: plan.plan_id,
        plan_summary: { goal: 'Add login', total_estimated_time: '1 h 41 min 30 s', subtasks_count: 3 },
        metadata: {
          fsm_state: 'plan_review',
          session: { session_id: plan.session_id, status: 'active', fsm_state: 'plan_review', current_plan_id: plan.plan_id },
          pending_approvals: [
            {
              request_id: plan.approval_request_id,
              approval_request_id: plan.approval_request_id,
              request_type: 'plan',
              call_id: plan.approval_request_id,
              tool_name: 'create_plan',
              subject: 'Add login',
              details: { plan_id: plan.plan_id },
            },
          ],
        },
      });
      expect(typeof snapshot.epoch).toBe('string');
      expect(snapshot.content).toContain('awaits your approval');
      expect(socket.feed()).toEqual([]); // not the whole history: the IDE reads that over HTTP

      await api.post(`/plans/${plan.plan_id}/decision`, { approval_request_id: plan.approval_request_id, decision: 'approve' });
      const approved = await socket.waitFor(ofType('plan_approved'));
      expect(approved).toMatchObject({ offset: 5, epoch: snapshot.epoch, metadata: { fsm_state: 'plan_execution' } });
      expect(assertExactlyOnce([socket])).toEqual([5]);
    });

    it('with since=0 the whole feed is replayed, plan_approval_required with every field at the top level and string estimates', async () => {
      const plan = await newPlan();
      const socket = await open(plan.session_id, { since: 0 });
      const required = await socket.waitFor(ofType('plan_approval_required'));
      expect(socket.feed().map((f) => [f.offset, f.type])).toEqual([
        [1, 'session_info'],
        [2, 'status'],
        [3, 'plan_created'],
        [4, 'plan_approval_required'],
      ]);
      expect(required).toMatchObject({
        approval_request_id: plan.approval_request_id,
        plan_id: plan.plan_id,
        plan_summary: {
          plan_id: plan.plan_id,
          goal: 'Add login',
          subtasks_count: 3,
          total_estimated_time: '1 h 41 min 30 s',
          total_estimated_seconds: 6_090,
          subtasks: [
            { id: 'form', estimated_time: '10 min', estimated_seconds: 600, dependencies: [] },
            { id: 'api', estimated_time: '1 h 30 min', estimated_seconds: 5_400, dependencies: [] },
            { id: 'e2e', agent: 'debug', estimated_time: '1 min 30 s', dependencies: ['form', 'api'] },
          ],
        },
        metadata: { fsm_state: 'plan_review', approval_request_id: plan.approval_request_id, plan_id: plan.plan_id },
      });
      expect(typeof required.deadline).toBe('string');
      expect(required.content).toMatch(/^\*\*Plan:\*\* Add login/);
    });

    it('a socket on new_<anything> starts a fresh session: session_info first, and the rest of the socket is that session', async () => {
      const socket = await open('new_ide-tab-7');
      const info = await socket.waitFor(ofType('session_info'));
      expect(socket.frames[0]).toBe(info);
      expect(info.offset).toBe(1);
      expect(info.session_id).not.toBe('new_ide-tab-7');
      socket.send({ type: 'user_message', content: 'Add a login page', role: 'user' });
      await socket.waitFor((f) => f.type === 'status' && f.metadata.fsm_state === 'classify');
      const session = await api.get(`/sessions/${info.session_id}?wait_for=${await logHead()}`);
      expect(session.body).toMatchObject({ session_id: info.session_id, message_count: 1 });
      const other = await open('new_ide-tab-7');
      const second = await other.waitFor(ofType('session_info'));
      expect(second.session_id).not.toBe(info.session_id);
    });

    it('refuses an unknown session: an error frame with the HTTP code, then close 4404', async () => {
      const socket = await open('no-such-session');
      expect(await socket.closed).toEqual({ code: 4404, reason: 'session not found' });
      expect(socket.frames).toEqual([expect.objectContaining({ type: 'error', code: 'session_not_found', content: 'session no-such-session does not exist' })]);
    });

    it('answers a plain GET of the socket route with 426 Upgrade Required', async () => {
      const reply = await api.get('/ws/anything');
      expect(reply.status).toBe(426);
      expect(reply.body).toMatchObject({ code: 'upgrade_required' });
    });

    it('two sockets on one session each get every frame', async () => {
      const plan = await newPlan();
      const [a, b] = [await open(plan.session_id, { since: 4 }), await open(plan.session_id, { since: 4 })];
      a.send({ type: 'switch_agent', agent_type: 'debug', reason: 'a bug' });
      b.send({ type: 'plan_decision', approval_request_id: plan.approval_request_id, decision: 'approve' });
      for (const socket of [a, b]) await socket.waitFor(ofType('plan_approved'));
      expect(a.feed().map((f) => [f.offset, f.type])).toEqual(b.feed().map((f) => [f.offset, f.type]));
      expect(assertExactlyOnce([a], 4)).toEqual([5, 6]);
    });
  });

  describe('commands over the socket', () => {
    it('approves with plan_decision (top-level fields) and the fsm_state moves to plan_execution', async () => {
      const plan = await newPlan();
      const socket = await open(plan.session_id, { since: 4 });
      socket.send({ type: 'plan_decision', approval_request_id: plan.approval_request_id, decision: 'approve' });
      expect(await socket.waitFor(ofType('plan_approved'))).toMatchObject({ plan_id: plan.plan_id, decision: 'approve', metadata: { fsm_state: 'plan_execution' } });
      expect((await api.get(`/plans/${plan.plan_id}/status?wait_for=${await logHead()}`)).body).toMatchObject({ status: 'approved' });
    });

    it('accepts the decision nested in metadata, in the past tense, as the IDE encodes it (nulls everywhere else)', async () => {
      const plan = await newPlan();
      const socket = await open(plan.session_id, { since: 4 });
      socket.send({
        type: 'plan_decision',
        content: null,
        role: null,
        call_id: null,
        metadata: { approval_request_id: plan.approval_request_id, decision: 'modified', feedback: 'split the endpoint' },
      });
      expect(await socket.waitFor(ofType('plan_modification_requested'))).toMatchObject({
        feedback: 'split the endpoint',
        metadata: { fsm_state: 'architect_planning' },
      });
    });

    it.each([
      ['approved', 'plan_approved', 'plan_execution'],
      ['rejected', 'plan_rejected', 'idle'],
      ['cancelled', 'plan_rejected', 'idle'],
    ])('takes the unified tool_result form (no call_id): %s', async (decision, type, fsm) => {
      const plan = await newPlan();
      const socket = await open(plan.session_id, { since: 4 });
      socket.send({
        type: 'tool_result',
        content: `User ${decision} the plan`,
        call_id: null,
        tool_name: null,
        metadata: {
          approval_request_id: plan.approval_request_id,
          decision,
          approved: decision === 'approved',
          responded_at: new Date().toISOString(),
          decision_time_ms: 1234,
          ...(decision === 'cancelled' ? { cancelled: true } : {}),
        },
      });
      expect(await socket.waitFor(ofType(type))).toMatchObject({ plan_id: plan.plan_id, metadata: { fsm_state: fsm } });
    });

    it('the unified form with modified sends the feedback as the change asked for', async () => {
      const plan = await newPlan();
      const socket = await open(plan.session_id, { since: 4 });
      socket.send({
        type: 'tool_result',
        content: 'modified',
        metadata: { approval_request_id: plan.approval_request_id, decision: 'modified', approved: false, modified: true, feedback: 'fewer steps', modified_data: { steps: 2 } },
      });
      expect(await socket.waitFor(ofType('plan_modification_requested'))).toMatchObject({ feedback: 'fewer steps' });
    });

    it('a message during review supersedes the plan; switch_agent answers agent_switched with from, to and reason at the top level and in metadata', async () => {
      const plan = await newPlan();
      const socket = await open(plan.session_id, { since: 4 });
      socket.send({ type: 'switch_agent', agent_type: 'architect', content: 'plan it better', reason: null });
      const switched = await socket.waitFor(ofType('agent_switched'));
      expect(switched).toMatchObject({
        from_agent: 'universal',
        to_agent: 'architect',
        reason: 'plan it better',
        metadata: { from_agent: 'universal', to_agent: 'architect', reason: 'plan it better' },
      });
      socket.send({ type: 'user_message', content: 'Only the form, please', role: 'user', is_final: null, metadata: null });
      expect(await socket.waitFor(ofType('plan_superseded'))).toMatchObject({ plan_id: plan.plan_id, reason: 'user_message', metadata: { fsm_state: 'classify' } });
    });

    it('cancel cancels the session’s current plan; with nothing to cancel it is an error', async () => {
      const plan = await newPlan();
      const socket = await open(plan.session_id, { since: 4 });
      socket.send({ type: 'cancel', reason: 'not today' });
      expect(await socket.waitFor(ofType('plan_cancelled'))).toMatchObject({ plan_id: plan.plan_id, reason: 'not today', metadata: { fsm_state: 'completed' } });
      const bare = (await api.post('/sessions', {})).body.session_id as string;
      const other = await open(bare);
      other.send({ type: 'cancel' });
      expect(await other.waitFor(ofType('error'))).toMatchObject({ code: 'nothing_to_cancel', metadata: { http_status: 409, request_type: 'cancel' } });
    });

    it('ping answers pong', async () => {
      const socket = await open((await newPlan()).session_id);
      socket.send({ type: 'ping' });
      expect(await socket.waitFor(ofType('pong'))).toMatchObject({ content: 'pong' });
    });
  });

  describe('bad frames: an error frame with code, content and error; the socket stays open and the log does not move', () => {
    let socket: FeedClient;
    let plan: Awaited<ReturnType<typeof newPlan>>;

    async function refused(send: () => void, code: string, details: Record<string, unknown> = {}): Promise<Frame> {
      const before = socket.frames.length;
      const head = await logHead();
      send();
      const error = await socket.waitFor((f) => f.type === 'error' && socket.frames.indexOf(f) >= before, 5_000, `an error ${code}`);
      expect(error).toMatchObject({ code, ...details });
      expect(error.content).toBe(error.error);
      expect(error.content.length).toBeGreaterThan(0);
      socket.send({ type: 'ping' });
      await socket.waitFor((f) => f.type === 'pong' && socket.frames.indexOf(f) > before);
      expect(await logHead()).toBe(head);
      return error;
    }

    beforeAll(async () => {
      plan = await newPlan();
    });
    it('unknown type, invalid JSON, not an object, missing or wrong fields, binary and oversize frames', async () => {
      socket = await open(plan.session_id);
      await refused(() => socket.send({ type: 'launch_missiles' }), 'unknown_type');
      await refused(() => socket.sendRaw('{"type": "user_message", '), 'malformed_json');
      await refused(() => socket.sendRaw('[1, 2, 3]'), 'validation_failed');
      await refused(() => socket.send({ content: 'no type' }), 'validation_failed');
      const missing = await refused(() => socket.send({ type: 'user_message', role: 'user' }), 'validation_failed');
      expect(missing.content).toContain('content');
      await refused(() => socket.send({ type: 'user_message', content: '' }), 'validation_failed');
      await refused(() => socket.send({ type: 'plan_decision', decision: 'approve' }), 'validation_failed');
      await refused(() => socket.send({ type: 'plan_decision', approval_request_id: plan.approval_request_id, decision: 'maybe' }), 'validation_failed');
      await refused(() => socket.send({ type: 'switch_agent', agent_type: 'wizard' }), 'validation_failed');
      await refused(() => socket.send({ type: 'tool_result', metadata: { decision: 'approved' } }), 'validation_failed');
      await refused(() => socket.send({ type: 'hitl_decision', decision: 'approve' }), 'validation_failed');
      await refused(() => socket.send({ type: 'resume', since: -3 }), 'validation_failed');
      await refused(() => socket.sendRaw(Buffer.from([1, 2, 3])), 'unsupported_frame');
      const big = await refused(() => socket.send({ type: 'user_message', content: 'x'.repeat(5_000) }), 'payload_too_large');
      expect(big.metadata).toMatchObject({ max_bytes: 4096 });
    });

    it('a frame far past the limit (more than twice it, plus 64 KiB: what one frame may cost in memory) closes the socket with 1009', async () => {
      socket = await open(plan.session_id);
      socket.send({ type: 'user_message', content: 'x'.repeat(100_000) });
      expect((await socket.closed).code).toBe(1009);
    });

    it('tool results and hitl decisions for calls nobody made: unknown_call', async () => {
      socket = await open(plan.session_id);
      await refused(() => socket.send({ type: 'tool_result', call_id: 'call-1', tool_name: 'read_file', result: { ok: true } }), 'unknown_call');
      await refused(() => socket.send({ type: 'hitl_decision', call_id: 'call-2', decision: 'approve' }), 'unknown_call');
    });

    it('a command the deciders refuse answers the code the HTTP API gives for it', async () => {
      socket = await open(plan.session_id);
      await refused(() => socket.send({ type: 'plan_decision', approval_request_id: 'not-an-approval', decision: 'approve' }), 'approval_not_found', {
        metadata: expect.objectContaining({ http_status: 404 }),
      });
      await api.post(`/plans/${plan.plan_id}/decision`, { approval_request_id: plan.approval_request_id, decision: 'approve' });
      const http = await api.post(`/sessions/${plan.session_id}/plan-decision`, { approval_request_id: plan.approval_request_id, decision: 'reject' });
      expect(http.status).toBe(409);
      await refused(() => socket.send({ type: 'plan_decision', approval_request_id: plan.approval_request_id, decision: 'reject' }), http.body.code, {
        metadata: expect.objectContaining({ http_status: 409, request_type: 'plan_decision' }),
      });
      await api.post(`/sessions/${plan.session_id}/complete`, {});
      const message = await api.post(`/sessions/${plan.session_id}/messages`, { content: 'more' });
      expect(message.status).toBe(409);
      await refused(() => socket.send({ type: 'user_message', content: 'more' }), message.body.code, {
        metadata: expect.objectContaining({ http_status: 409, fsm_state: 'completed' }),
      });
      expect(message.body.code).toBe('illegal_transition');
    });
  });
});
