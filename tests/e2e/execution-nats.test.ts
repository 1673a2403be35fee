// Plan execution on NATS (jobs, aborts) and Redis (read models): the key cases of the embedded file,
// and a worker killed (SIGKILL) during a model call: its job goes to another worker process, and the
// run finishes once. Skipped with a notice when NATS or Redis is not reachable (a failure under CI=true).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startServer, type StartOptions } from '../support/server.js';
import {
  deleteBusStreams,
  dropPostgresSchemas,
  flushRedisKeys,
  NATS_URL,
  POSTGRES_URL,
  REDIS_URL,
  serviceAvailable,
  uniqueBusPrefix,
  uniquePrefix,
  uniqueSchema,
} from '../support/services.js';
import { counts, decide, isAgent, keyCases, onCleanup, planStatus, plannedSession, runStream, setup, subtaskOf, waitFor, within, type Base } from './execution-suite.js';

const natsUp = await serviceAvailable('nats', NATS_URL);
const redisUp = await serviceAvailable('redis', REDIS_URL);
const postgresUp = natsUp && redisUp && (await serviceAvailable('postgres', POSTGRES_URL));

/** Each server on its own bus prefix, whose JetStream streams are deleted after the test. */
const nats: Base = {
  env: { NATS_URL, REDIS_URL },
  async start(env, options: StartOptions) {
    const busPrefix = uniqueBusPrefix('exec');
    onCleanup(() => deleteBusStreams(NATS_URL, busPrefix));
    return startServer(env, { ...options, busPrefix });
  },
};

describe.skipIf(!natsUp || !redisUp)('execution on NATS + Redis', () => {
  keyCases(nats);
});

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A Planline process run from the sources; resolves once it has started. */
async function planlineProcess(env: Record<string, string>): Promise<ChildProcess & { output: () => string }> {
  const child = spawn(process.execPath, ['--import', './tests/support/ts-register.mjs', './tests/support/planline-process.ts'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const started = new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-8_000);
      if (stderr.includes('planline-process: started')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the process exited (${code}) during start-up: ${stderr}`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  await within('a worker process to start', started, 20_000);
  return Object.assign(child, { output: () => stderr });
}

describe.skipIf(!postgresUp)('execution across processes on NATS + Redis + PostgreSQL', () => {
  it('a worker killed during a model call: the job is redelivered to the other worker and the run finishes once', async () => {
    const busPrefix = uniqueBusPrefix('execkill');
    const viewsKeyPrefix = uniquePrefix(`execkill-${Math.random().toString(36).slice(2, 8)}`);
    const schema = uniqueSchema('execkill');
    onCleanup(() => deleteBusStreams(NATS_URL, busPrefix));
    onCleanup(() => flushRedisKeys(REDIS_URL, viewsKeyPrefix));
    onCleanup(() => dropPostgresSchemas(POSTGRES_URL, [schema]));
    const ackWaitMs = 600;
    let hung = false;
    const { api, model } = await setup(
      {
        architect: () => ({ content: JSON.stringify({ subtasks: [{ id: 'a', description: 'write module a', agent: 'coder', dependencies: [] }] }) }),
        // The first worker to ask hangs (and is killed); any later request is answered.
        agent: (r) => {
          if (hung) return { content: `result of ${subtaskOf(r)} from ${r.model}` };
          hung = true;
          return { kind: 'hang' };
        },
      },
      { ROLES: 'edge,projector,executor', EVENTSTORE_URL: `${POSTGRES_URL}?schema=${schema}`, NATS_URL, REDIS_URL },
      { busPrefix, viewsKeyPrefix },
    );
    const workerEnv = (name: string) => ({
      ROLES: 'worker',
      EVENTSTORE_URL: `${POSTGRES_URL}?schema=${schema}`,
      NATS_URL,
      REDIS_URL,
      OPENAI_BASE_URL: model.baseURL,
      OPENAI_API_KEY: 'x',
      OPENAI_MODEL: name,
      NATS_PREFIX: busPrefix,
      PLANLINE_TEST_VIEWS_PREFIX: viewsKeyPrefix,
      PLANLINE_TEST_JOB_ACK_WAIT_MS: String(ackWaitMs),
      PLANLINE_TEST_JOB_BACKOFF_MS: '10',
    });
    const [w1, w2] = await Promise.all([planlineProcess(workerEnv('w1')), planlineProcess(workerEnv('w2'))]);
    const workers = new Map([
      ['w1', w1],
      ['w2', w2],
    ]);

    const { plan: drafted } = await plannedSession(api);
    await decide(api, drafted, 'approve');
    const first = await waitFor('a worker to ask the model', () => model.requests.find(isAgent), 10_000);
    // A model call longer than the ack wait keeps its job: nobody else gets it while the worker lives.
    await new Promise((resolve) => setTimeout(resolve, ackWaitMs * 3));
    expect(model.requests.filter(isAgent)).toHaveLength(1);
    const victim = first.model!;
    workers.get(victim)!.kill('SIGKILL');
    await within('the killed worker\'s call to drop', first.disconnectedEarly);
    const done = await planStatus(api, drafted.plan_id, ['completed', 'failed'], 10_000);
    expect(done.status).toBe('completed');
    const agents = model.requests.filter(isAgent);
    expect(agents).toHaveLength(2);
    expect(agents[1]!.model).not.toBe(victim);
    const run = await counts(api, runStream(drafted.plan_id, 'a', 1));
    expect(run).toMatchObject({ RunStarted: 1, AgentReplied: 1, RunSucceeded: 1 });
    expect(run.RunFailed).toBeUndefined();
  });
});
