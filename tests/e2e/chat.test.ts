// `planline chat` end to end: the real CLI (runCli, as tests/e2e/cli.test.ts runs it) with piped stdin
// and captured stdout/stderr, against a real embedded Planline on a free port. Plans are created over
// HTTP, decided from the chat, and checked over HTTP; a server restart behind a proxy shows that the
// chat resumes without printing an offset twice. (Tool calls are covered by tests/unit/chat-*.test.ts:
// the server does not send them yet.)
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as connectTcp, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.js';
import { client, startServer, type Client, type TestServer } from '../support/server.js';
import { hs256, validClaims } from '../support/tokens.js';

const workspace = mkdtempSync(join(tmpdir(), 'planline-chat-ws-'));
afterAll(() => rmSync(workspace, { recursive: true, force: true }));

interface ChatRun {
  out: string[];
  err: string[];
  /** Resolves with the exit code. */
  exit: Promise<number>;
  type(line: string): void;
  end(): void;
  /** Resolves with the first stdout (or stderr) line matching, waiting for it if need be. */
  waitFor(pattern: RegExp | ((line: string) => boolean), stream?: 'out' | 'err', timeoutMs?: number): Promise<string>;
  /** stdout lines as frames (with --json). */
  frames(): Array<Record<string, any>>;
}

function chat(args: string[], env: NodeJS.ProcessEnv = {}): ChatRun {
  const stdin = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };
  let exited = false;
  const exit = runCli(['chat', '--workspace', workspace, ...args], {
    out: (line) => {
      out.push(line);
      wake();
    },
    err: (line) => {
      err.push(line);
      wake();
    },
    env,
    stdin,
  }).finally(() => {
    exited = true;
    wake();
  });
  return {
    out,
    err,
    exit,
    type: (line) => stdin.write(`${line}\n`),
    end: () => stdin.end(),
    waitFor(pattern, stream = 'out', timeoutMs = 10_000) {
      const test = typeof pattern === 'function' ? pattern : (line: string) => pattern.test(line);
      const lines = stream === 'out' ? out : err;
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(test);
          if (found !== undefined) return done(undefined, found);
          if (exited) done(new Error(`chat exited before ${String(pattern)}; out: ${JSON.stringify(out)} err: ${JSON.stringify(err)}`));
        };
        const timer = setTimeout(() => done(new Error(`timed out waiting for ${String(pattern)} on ${stream}; out: ${JSON.stringify(out.slice(-30))} err: ${JSON.stringify(err.slice(-10))}`)), timeoutMs);
        const done = (error?: Error, line?: string) => {
          clearTimeout(timer);
          waiters.delete(check);
          if (error) reject(error);
          else resolve(line!);
        };
        waiters.add(check);
        check();
      });
    },
    frames: () => out.map((line) => JSON.parse(line) as Record<string, any>),
  };
}

const isFrame = (type: string, extra: (frame: Record<string, any>) => boolean = () => true) => (line: string) => {
  try {
    const frame = JSON.parse(line) as Record<string, any>;
    return frame.type === type && extra(frame);
  } catch {
    return false;
  }
};

const PLAN = {
  goal: 'Add login',
  subtasks: [
    { id: 'form', description: 'Login form', estimated_time: 600 },
    { id: 'api', description: 'Auth endpoint', estimated_time: '15 min', dependencies: ['form'] },
  ],
};

async function createPlan(api: Client, sessionId: string) {
  const created = await api.post('/plans', { session_id: sessionId, ...PLAN });
  expect(created.status, created.text).toBe(201);
  return created.body as { plan_id: string; approval_request_id: string; position: number };
}

async function planStatus(api: Client, planId: string, position?: number): Promise<Record<string, any>> {
  const plan = await api.get(`/plans/${planId}${position !== undefined ? `?wait_for=${position}` : ''}`);
  expect(plan.status, plan.text).toBe(200);
  return plan.body;
}

async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('planline chat against a running server', () => {
  let server: TestServer;
  let api: Client;
  beforeAll(async () => {
    server = await startServer();
    api = client(server.api);
  });
  afterAll(() => server.dispose());

  it('starts a session, shows its plan for approval with string estimates, and /approve approves it', async () => {
    const run = chat(['--url', server.url]);
    const started = await run.waitFor(/^Session \S+ started/);
    const sessionId = /^Session (\S+) started/.exec(started)![1]!;
    expect(sessionId.startsWith('new_')).toBe(false);
    expect(run.out.some((line) => line.startsWith(`[session] ${sessionId}`))).toBe(true);

    const { plan_id } = await createPlan(api, sessionId);
    await run.waitFor(new RegExp(`^\\[approval\\] plan ${plan_id} needs your decision`));
    await run.waitFor(/^ {2}1\. form: Login form .*~10 min$/);
    await run.waitFor(/^ {2}2\. api: Auth endpoint .*~15 min after form$/);

    run.type('/approve');
    await run.waitFor(new RegExp(`^\\[plan\\] ${plan_id} approved`));
    const plan = await planStatus(api, plan_id);
    expect(['approved', 'executing']).toContain(plan.status);

    run.end();
    expect(await run.exit).toBe(0);
  });

  it('/reject with feedback rejects the plan; bad slash commands print help and change nothing', async () => {
    const run = chat(['--url', server.url, '--json']);
    const info = await run.waitFor(isFrame('session_info'));
    const sessionId = JSON.parse(info).session_id as string;
    const { plan_id, approval_request_id } = await createPlan(api, sessionId);
    await run.waitFor(isFrame('plan_approval_required', (f) => f.plan_id === plan_id));

    for (const bad of ['/frobnicate', '/modify', '/approve right now', '/agent wizard']) run.type(bad);
    await run.waitFor(/^unknown command \/frobnicate$/, 'err');
    await run.waitFor(/^\/agent needs one of/, 'err');
    expect(run.err.filter((line) => line.includes('/approve              approve the plan')).length).toBe(4);
    const untouched = await planStatus(api, plan_id);
    expect(untouched.approval).toMatchObject({ approval_request_id, status: 'pending' });

    run.type('/reject too big for one go');
    await run.waitFor(isFrame('plan_rejected', (f) => f.plan_id === plan_id));
    const rejected = await planStatus(api, plan_id);
    expect(rejected.status).toBe('rejected');
    expect(JSON.stringify(rejected)).toContain('too big for one go');

    // Nothing left to decide.
    run.type('/approve');
    await run.waitFor(/^no plan is waiting for your decision$/, 'err');

    run.type('/quit');
    expect(await run.exit).toBe(0);
    // Every line on stdout is a frame, each offset once.
    const offsets = run.frames().map((f) => f.offset).filter((o) => typeof o === 'number');
    expect(new Set(offsets).size).toBe(offsets.length);
  });

  it('--session joins an existing session: the snapshot shows the pending approval, and --yes approves it', async () => {
    const created = await api.post('/plans', PLAN);
    expect(created.status).toBe(201);
    const { session_id, plan_id } = created.body as { session_id: string; plan_id: string };
    const run = chat(['--url', server.url, '--session', session_id, '--yes']);
    await run.waitFor(/^\[snapshot\]/);
    await run.waitFor(/^\[approval\] plan \S+ awaits your decision/);
    await run.waitFor(/^approving the plan \(--yes\)$/);
    await run.waitFor(new RegExp(`^\\[plan\\] ${plan_id} approved`));
    const plan = await eventually(() => planStatus(api, plan_id), (p) => p.status !== 'awaiting_approval');
    expect(['approved', 'executing']).toContain(plan.status);
    run.end();
    expect(await run.exit).toBe(0);
  });

  it('sends typed messages as user_message frames', async () => {
    const run = chat(['--url', server.url, '--json']);
    const sessionId = JSON.parse(await run.waitFor(isFrame('session_info'))).session_id as string;
    run.type('please add a logout button');
    const history = await eventually(
      () => api.get(`/sessions/${sessionId}/history`),
      (reply) => (reply.body?.messages ?? []).some((m: any) => m.role === 'user' && m.content === 'please add a logout button'),
    );
    expect(history.body.messages.some((m: any) => m.role === 'user' && m.content === 'please add a logout button')).toBe(true);
    run.end();
    expect(await run.exit).toBe(0);
  });

  it('an unknown session ends the chat with exit code 1 and says why', async () => {
    const run = chat(['--url', server.url, '--session', 'no-such-session']);
    expect(await run.exit).toBe(1);
    expect(run.err.join('\n')).toMatch(/4404|does not exist/);
  });
});

describe('planline chat arguments and connection failures', () => {
  it('bad arguments exit with 2 and the usage', async () => {
    for (const args of [['--url', 'not a url'], ['--url', 'ftp://host'], ['--workspace', join(workspace, 'missing')], ['extra'], ['--session', 'a/b'], ['--nope']]) {
      const run = chat(args);
      run.end();
      expect(await run.exit, args.join(' ')).toBe(2);
      expect(run.err.join('\n')).toMatch(/Usage: planline chat/);
    }
  });

  it('a server that is not there: exit code 1, naming the URL', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const run = chat(['--url', `http://127.0.0.1:${port}`]);
    expect(await run.exit).toBe(1);
    expect(run.err.join('\n')).toContain(`cannot connect to ws://127.0.0.1:${port}/api/v1/ws/new_`);
  });

  it('with auth on: no token is refused (exit 1, HTTP 401); --token or PLANLINE_TOKEN gets in', async () => {
    const secret = 'chat-test-secret-that-is-at-least-32-bytes-long';
    const server = await startServer({ AUTH_SECRET: secret });
    try {
      const refused = chat(['--url', server.url]);
      expect(await refused.exit).toBe(1);
      expect(refused.err.join('\n')).toMatch(/HTTP 401/);

      const token = hs256(secret, validClaims('alice'));
      const withFlag = chat(['--url', server.url, '--token', token, '--json']);
      await withFlag.waitFor(isFrame('session_info'));
      withFlag.end();
      expect(await withFlag.exit).toBe(0);

      const fromEnv = chat(['--url', server.url, '--json'], { PLANLINE_TOKEN: token });
      const sessionId = JSON.parse(await fromEnv.waitFor(isFrame('session_info'))).session_id as string;
      const session = await client(server.api, { headers: { authorization: `Bearer ${token}` } }).get(`/sessions/${sessionId}`);
      expect(session.body.owner).toBe('alice');
      fromEnv.end();
      expect(await fromEnv.exit).toBe(0);
    } finally {
      await server.dispose();
    }
  });
});

/** A loopback proxy whose upstream port can change: the chat keeps one URL while the server restarts on another port. */
async function movableProxy(port: number) {
  let target = port;
  const sockets = new Set<Socket>();
  const proxy: Server = createServer((downstream) => {
    const upstream = connectTcp(target, '127.0.0.1');
    for (const socket of [downstream, upstream]) {
      sockets.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('close', () => {
        sockets.delete(socket);
        downstream.destroy();
        upstream.destroy();
      });
    }
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`,
    retarget: (next: number) => void (target = next),
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}

describe('planline chat across a server restart', () => {
  it('reconnects, resumes after its last offset, and prints no offset twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'planline-chat-restart-'));
    let server = await startServer({}, { dir });
    const proxy = await movableProxy(Number(new URL(server.url).port));
    try {
      const run = chat(['--url', proxy.url, '--json']);
      const sessionId = JSON.parse(await run.waitFor(isFrame('session_info'))).session_id as string;
      const first = await createPlan(client(server.api), sessionId);
      await run.waitFor(isFrame('plan_approval_required', (f) => f.plan_id === first.plan_id));
      const before = run.frames().length;

      await server.close();
      await run.waitFor(/connection lost/, 'err');
      server = await startServer({}, { dir });
      proxy.retarget(Number(new URL(server.url).port));
      await run.waitFor(/^reconnected, resuming after offset \d+$/, 'err', 20_000);

      // The chat is live again: a decision typed now reaches the restarted server, and its frames come back.
      run.type('/reject restarted');
      await run.waitFor(isFrame('plan_rejected', (f) => f.plan_id === first.plan_id), 'out', 15_000);
      const second = await createPlan(client(server.api), sessionId);
      await run.waitFor(isFrame('plan_approval_required', (f) => f.plan_id === second.plan_id), 'out', 15_000);

      run.type('/quit');
      expect(await run.exit).toBe(0);
      const frames = run.frames();
      expect(frames.length).toBeGreaterThan(before);
      const offsets = frames.filter((f) => f.type !== 'snapshot' && typeof f.offset === 'number').map((f) => f.offset as number);
      expect(new Set(offsets).size).toBe(offsets.length);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
      // Resumed, not restarted from a snapshot: no gap either.
      expect(offsets).toEqual(offsets.map((_, i) => offsets[0]! + i));
      expect(frames.some((f) => f.type === 'resync')).toBe(false);
    } finally {
      await proxy.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
