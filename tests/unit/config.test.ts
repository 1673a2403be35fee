import { describe, expect, it, vi } from 'vitest';
import { ConfigError, describeConfig, isLoopbackHost, loadConfig } from '../../src/config.js';

/** The problems of a config that must fail, as `VARIABLE: problem` lines. */
function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.map(({ variable, problem }) => `${variable}: ${problem}`);
  }
  throw new Error(`expected ${JSON.stringify(env)} to be rejected`);
}

const SECRET = 'an-hs256-key-of-thirty-two-bytes+';
const OWN_VARIABLES = [
  'PORT', 'HOST', 'EVENTSTORE_URL', 'REDIS_URL', 'REDIS_KEY_PREFIX', 'NATS_URL', 'OPENAI_API_KEY', 'OPENAI_BASE_URL', 'OPENAI_MODEL',
  'PLAN_APPROVAL_TIMEOUT_S', 'PLAN_APPROVAL_TIMEOUT_ACTION', 'AUTH_SECRET', 'AUTH_JWKS_URL', 'AUTH_ISSUER', 'AUTH_AUDIENCE',
  'AUTH_JWKS_CACHE_S', 'AUTH_JWKS_COOLDOWN_S', 'ROLES', 'MAX_BODY_BYTES',
  'SHUTDOWN_TIMEOUT_MS', 'LOG_LEVEL', 'FEED_HISTORY', 'WS_HEARTBEAT_MS', 'WS_MAX_CONNECTIONS', 'WS_MAX_FRAME_BYTES',
  'WS_MAX_BUFFERED_BYTES', 'WS_MAX_FRAMES_PER_SECOND', 'NATS_PREFIX', 'PLAN_MAX_PARALLEL', 'SUBTASK_MAX_ATTEMPTS',
  'SUBTASK_RETRY_BACKOFF_MS', 'PLAN_MAX_REPLANS', 'MULTITASK_STRATEGY', 'TOOL_CALL_TIMEOUT_S', 'AGENT_MAX_TURNS',
  'WORKER_CONCURRENCY', 'MODEL_TIMEOUT_MS',
];

describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    expect(loadConfig({})).toEqual({
      port: 8080,
      host: '127.0.0.1',
      eventStore: { kind: 'sqlite', path: './data/planline.db' },
      redisUrl: undefined,
      redisKeyPrefix: 'planline:',
      natsUrl: undefined,
      natsPrefix: 'planline',
      openai: undefined,
      planApprovalTimeoutS: 300,
      planApprovalTimeoutAction: 'expire',
      auth: { mode: 'off' },
      roles: ['edge', 'projector', 'executor', 'worker'],
      maxBodyBytes: 1_048_576,
      shutdownTimeoutMs: 10_000,
      logLevel: 'info',
      feedHistory: 1_000,
      ws: { heartbeatMs: 30_000, maxConnections: 20_000, maxFrameBytes: 1_048_576, maxBufferedBytes: 1_048_576, maxFramesPerSecond: 50 },
      execution: {
        maxParallel: 4,
        maxAttempts: 3,
        retryBackoffMs: 1_000,
        maxReplans: 1,
        multitask: 'enqueue',
        toolCallTimeoutS: 600,
        maxTurns: 25,
        workerConcurrency: 8,
        modelTimeoutMs: 120_000,
      },
    });
  });

  it('treats empty strings as unset', () => {
    const empty = Object.fromEntries(OWN_VARIABLES.map((name) => [name, '']));
    expect(loadConfig(empty)).toEqual(loadConfig({}));
  });

  it('ignores variables it does not own', () => {
    expect(loadConfig({ PATH: '/usr/bin', HOME: '/root' })).toEqual(loadConfig({}));
  });

  it('reads every variable when set', () => {
    const config = loadConfig({
      PORT: '9000',
      HOST: '0.0.0.0',
      EVENTSTORE_URL: 'kurrentdb://127.0.0.1:2113?tls=false',
      REDIS_URL: 'redis://127.0.0.1:6379/2',
      REDIS_KEY_PREFIX: 'team-a:planline:',
      NATS_URL: 'nats://127.0.0.1:4222',
      OPENAI_API_KEY: 'sk-test',
      OPENAI_BASE_URL: 'https://llm.example.com/v1',
      OPENAI_MODEL: 'gpt-4.1',
      PLAN_APPROVAL_TIMEOUT_S: '60',
      PLAN_APPROVAL_TIMEOUT_ACTION: 'approve',
      AUTH_SECRET: SECRET,
      AUTH_ISSUER: 'https://id.example.com/',
      AUTH_AUDIENCE: 'planline',
      ROLES: 'worker,edge',
      MAX_BODY_BYTES: '2048',
      SHUTDOWN_TIMEOUT_MS: '500',
      LOG_LEVEL: 'debug',
      FEED_HISTORY: '50',
      WS_HEARTBEAT_MS: '1000',
      WS_MAX_CONNECTIONS: '3',
      WS_MAX_FRAME_BYTES: '4096',
      WS_MAX_BUFFERED_BYTES: '65536',
      WS_MAX_FRAMES_PER_SECOND: '10',
      NATS_PREFIX: 'team_a',
      PLAN_MAX_PARALLEL: '2',
      SUBTASK_MAX_ATTEMPTS: '5',
      SUBTASK_RETRY_BACKOFF_MS: '250',
      PLAN_MAX_REPLANS: '0',
      MULTITASK_STRATEGY: 'Interrupt',
      TOOL_CALL_TIMEOUT_S: '30',
      AGENT_MAX_TURNS: '7',
      WORKER_CONCURRENCY: '3',
      MODEL_TIMEOUT_MS: '5000',
    });
    expect(config).toEqual({
      port: 9000,
      host: '0.0.0.0',
      eventStore: { kind: 'kurrentdb', connectionString: 'kurrentdb://127.0.0.1:2113?tls=false' },
      redisUrl: 'redis://127.0.0.1:6379/2',
      redisKeyPrefix: 'team-a:planline:',
      natsUrl: 'nats://127.0.0.1:4222',
      natsPrefix: 'team_a',
      openai: { apiKey: 'sk-test', baseUrl: 'https://llm.example.com/v1', model: 'gpt-4.1' },
      planApprovalTimeoutS: 60,
      planApprovalTimeoutAction: 'approve',
      auth: { mode: 'hs256', secret: SECRET, issuer: 'https://id.example.com/', audience: 'planline' },
      roles: ['edge', 'worker'],
      maxBodyBytes: 2048,
      shutdownTimeoutMs: 500,
      logLevel: 'debug',
      feedHistory: 50,
      ws: { heartbeatMs: 1_000, maxConnections: 3, maxFrameBytes: 4_096, maxBufferedBytes: 65_536, maxFramesPerSecond: 10 },
      execution: {
        maxParallel: 2,
        maxAttempts: 5,
        retryBackoffMs: 250,
        maxReplans: 0,
        multitask: 'interrupt',
        toolCallTimeoutS: 30,
        maxTurns: 7,
        workerConcurrency: 3,
        modelTimeoutMs: 5_000,
      },
    });
  });

  describe('names each bad value and why', () => {
    it.each([
      [{ PORT: 'abc' }, "PORT: expected an integer 1-65535, got 'abc'"],
      [{ MULTITASK_STRATEGY: 'queue' }, "MULTITASK_STRATEGY: expected one of enqueue, interrupt, reject, got 'queue'"],
      [{ PLAN_MAX_PARALLEL: '0' }, "PLAN_MAX_PARALLEL: expected an integer 1-1000 (subtasks), got '0'"],
      [{ NATS_PREFIX: 'a.b' }, "NATS_PREFIX: expected 1-64 letters, digits, _ or - (e.g. 'planline'), got 'a.b'"],
      [{ PORT: '0' }, "PORT: expected an integer 1-65535, got '0'"],
      [{ PORT: '65536' }, "PORT: expected an integer 1-65535, got '65536'"],
      [{ PORT: '80.5' }, "PORT: expected an integer 1-65535, got '80.5'"],
      [{ PORT: ' 80' }, "PORT: expected an integer 1-65535, got ' 80'"],
      [{ HOST: 'http://0.0.0.0' }, "HOST: expected a hostname or IP address, got 'http://0.0.0.0'"],
      [{ EVENTSTORE_URL: './data/x.db' }, "EVENTSTORE_URL: expected sqlite:<path>, sqlite::memory:, kurrentdb://"],
      [{ EVENTSTORE_URL: 'mysql://db' }, "postgres://… or postgresql://…, got 'mysql://db'"],
      [{ EVENTSTORE_URL: 'postgres://db/x?schema=Bad-Name' }, "EVENTSTORE_URL: expected one ?schema= with a lowercase identifier (letters, digits, _; at most 48), got 'Bad-Name'"],
      [{ EVENTSTORE_URL: 'postgres://db/x?schema=a&schema=b' }, "got 'a', 'b'"],
      [{ EVENTSTORE_URL: 'postgres:///planline' }, "EVENTSTORE_URL: expected a host in the postgres URL, got 'postgres:///planline'"],
      [{ EVENTSTORE_URL: 'sqlite:' }, "EVENTSTORE_URL: expected a file path after 'sqlite:', got 'sqlite:'"],
      [{ EVENTSTORE_URL: 'kurrentdb://' }, 'EVENTSTORE_URL: expected sqlite:<path>'],
      [{ REDIS_URL: 'localhost:6379' }, "REDIS_URL: expected a redis:// or rediss:// URL, got 'localhost:6379'"],
      [{ REDIS_URL: 'http://cache:6379' }, "REDIS_URL: expected a redis:// or rediss:// URL, got 'http://cache:6379'"],
      [{ REDIS_KEY_PREFIX: 'has space' }, "REDIS_KEY_PREFIX: expected up to 100 letters, digits and _ . : - { } (e.g. 'planline:'), got 'has space'"],
      [{ NATS_URL: 'redis://bus:4222' }, "NATS_URL: expected a nats:// URL, got 'redis://bus:4222'"],
      [{ OPENAI_BASE_URL: 'not a url' }, "OPENAI_BASE_URL: expected a http:// or https:// URL, got 'not a url'"],
      [{ PLAN_APPROVAL_TIMEOUT_S: '0' }, "PLAN_APPROVAL_TIMEOUT_S: expected a positive integer (seconds), got '0'"],
      [{ PLAN_APPROVAL_TIMEOUT_S: '-5' }, "PLAN_APPROVAL_TIMEOUT_S: expected a positive integer (seconds), got '-5'"],
      [{ PLAN_APPROVAL_TIMEOUT_ACTION: 'reject' }, "PLAN_APPROVAL_TIMEOUT_ACTION: expected one of expire, approve, got 'reject'"],
      [{ ROLES: 'edge,cook' }, "ROLES: expected 'all' or a comma-separated list of edge, projector, executor, worker, got 'edge,cook' (unknown: cook)"],
      [{ ROLES: ',' }, "ROLES: expected 'all' or a comma-separated list"],
      [{ MAX_BODY_BYTES: '1MB' }, "MAX_BODY_BYTES: expected a positive integer (bytes), got '1MB'"],
      [{ SHUTDOWN_TIMEOUT_MS: '1e4' }, "SHUTDOWN_TIMEOUT_MS: expected a positive integer (milliseconds), got '1e4'"],
      [{ LOG_LEVEL: 'verbose' }, "LOG_LEVEL: expected one of debug, info, warn, error, got 'verbose'"],
      [{ FEED_HISTORY: '0' }, "FEED_HISTORY: expected an integer 1-1000000 (frames per session), got '0'"],
      [{ WS_HEARTBEAT_MS: '50' }, "WS_HEARTBEAT_MS: expected an integer 100-86400000 (milliseconds), got '50'"],
      [{ WS_MAX_CONNECTIONS: 'many' }, "WS_MAX_CONNECTIONS: expected a positive integer (sockets), got 'many'"],
      [{ WS_MAX_FRAME_BYTES: '100' }, "WS_MAX_FRAME_BYTES: expected an integer 256-67108864 (bytes), got '100'"],
      [{ WS_MAX_BUFFERED_BYTES: '1KB' }, "WS_MAX_BUFFERED_BYTES: expected an integer of at least 1024 (bytes), got '1KB'"],
      [{ WS_MAX_FRAMES_PER_SECOND: '-1' }, "WS_MAX_FRAMES_PER_SECOND: expected a positive integer (frames), got '-1'"],
      [{ OPENAI_MODEL: 'gpt-4.1' }, 'OPENAI_MODEL: set, but neither OPENAI_API_KEY nor OPENAI_BASE_URL is'],
    ] as Array<[NodeJS.ProcessEnv, string]>)('%j', (env, expected) => {
      const problems = problemsOf(env);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain(expected);
    });
  });

  it('reports several bad values together, in one message', () => {
    const env = { PORT: 'abc', REDIS_URL: 'http://x', LOG_LEVEL: 'loud', HOST: '0.0.0.0' };
    expect(problemsOf(env)).toEqual([
      "PORT: expected an integer 1-65535, got 'abc'",
      "REDIS_URL: expected a redis:// or rediss:// URL, got 'http://x'",
      "LOG_LEVEL: expected one of debug, info, warn, error, got 'loud'",
      "AUTH_SECRET: AUTH_SECRET (an HS256 key) or AUTH_JWKS_URL (RS256/ES256 keys) is required when HOST is not a loopback address (127.0.0.1, ::1, localhost); HOST is '0.0.0.0'",
    ]);
    expect(() => loadConfig(env)).toThrow(/Invalid configuration \(4 problems\):\n {2}PORT: .*\n {2}REDIS_URL: .*\n {2}LOG_LEVEL: .*\n {2}AUTH_SECRET: /);
  });

  it('never echoes secrets or URL credentials in errors', () => {
    const message = (() => {
      try {
        loadConfig({ AUTH_SECRET: 'short-secret', REDIS_URL: 'http://user:hunter2@cache:6379' });
      } catch (error) {
        return (error as Error).message;
      }
      return '';
    })();
    expect(message).toContain('AUTH_SECRET: expected an HS256 key of at least 32 bytes (e.g. openssl rand -base64 48), got 12');
    expect(message).toContain("got 'http://***@cache:6379'");
    expect(message).not.toContain('short-secret');
    expect(message).not.toContain('hunter2');
  });

  it('never echoes a PostgreSQL password, in the user part or as ?password=', () => {
    const problems = [
      ...problemsOf({ EVENTSTORE_URL: 'postgres://app:hunter2@/x?schema=NOPE' }),
      ...problemsOf({ EVENTSTORE_URL: 'postgres:///x?password=hunter2' }),
    ];
    expect(problems).toEqual([
      "EVENTSTORE_URL: expected a postgres://[user[:password]@]host[:port]/database URL, got 'postgres://***@/x?schema=NOPE'",
      "EVENTSTORE_URL: expected a host in the postgres URL, got 'postgres:///x?password=***'",
    ]);
  });

  describe('auth: AUTH_SECRET or AUTH_JWKS_URL', () => {
    const JWKS = 'https://id.example.com/.well-known/jwks.json';

    it.each(['127.0.0.1', '::1', '[::1]', 'localhost', '127.0.0.53'])('is off on loopback host %s when neither is set', (HOST) => {
      expect(loadConfig({ HOST }).auth).toEqual({ mode: 'off' });
    });

    it.each(['0.0.0.0', '::', '10.1.2.3', 'planline.internal'])('refuses to start on non-loopback host %s without either, naming both', (HOST) => {
      expect(problemsOf({ HOST })).toEqual([
        `AUTH_SECRET: AUTH_SECRET (an HS256 key) or AUTH_JWKS_URL (RS256/ES256 keys) is required when HOST is not a loopback address (127.0.0.1, ::1, localhost); HOST is '${HOST}'`,
      ]);
    });

    it('AUTH_SECRET is the HS256 key: 32 bytes or more, on any host, with the optional issuer and audience', () => {
      expect(loadConfig({ HOST: '0.0.0.0', AUTH_SECRET: 'x'.repeat(32) }).auth).toEqual({ mode: 'hs256', secret: 'x'.repeat(32), issuer: undefined, audience: undefined });
      expect(loadConfig({ AUTH_SECRET: SECRET, AUTH_AUDIENCE: 'planline' }).auth).toEqual({ mode: 'hs256', secret: SECRET, issuer: undefined, audience: 'planline' });
    });

    it('an AUTH_SECRET shorter than 32 bytes is refused, even on loopback, without echoing it', () => {
      expect(problemsOf({ AUTH_SECRET: 'x'.repeat(31) })).toEqual(['AUTH_SECRET: expected an HS256 key of at least 32 bytes (e.g. openssl rand -base64 48), got 31']);
      // A 16-character static bearer token (the old meaning of AUTH_SECRET) no longer starts a server.
      expect(problemsOf({ HOST: '0.0.0.0', AUTH_SECRET: 'a-secret-of-sixteen+' })).toEqual([
        'AUTH_SECRET: expected an HS256 key of at least 32 bytes (e.g. openssl rand -base64 48), got 20',
      ]);
    });

    it('AUTH_JWKS_URL verifies RS256/ES256 against the key set, cached 600 s, refetched for an unknown kid at most every 30 s', () => {
      expect(loadConfig({ HOST: '0.0.0.0', AUTH_JWKS_URL: JWKS, AUTH_ISSUER: 'https://id.example.com/' }).auth).toEqual({
        mode: 'jwks',
        jwksUrl: JWKS,
        issuer: 'https://id.example.com/',
        audience: undefined,
        jwksCacheS: 600,
        jwksCooldownS: 30,
      });
      expect(loadConfig({ AUTH_JWKS_URL: 'http://127.0.0.1:9000/jwks', AUTH_JWKS_CACHE_S: '5', AUTH_JWKS_COOLDOWN_S: '0' }).auth).toMatchObject({
        jwksCacheS: 5,
        jwksCooldownS: 0,
      });
    });

    it.each([
      [{ AUTH_JWKS_URL: 'http://id.example.com/jwks' }, "AUTH_JWKS_URL: expected an https:// URL (http:// only on a loopback host), got 'http://id.example.com/jwks'"],
      [{ AUTH_JWKS_URL: 'jwks.json' }, "AUTH_JWKS_URL: expected a https:// or http:// URL, got 'jwks.json'"],
      [{ AUTH_JWKS_URL: JWKS, AUTH_SECRET: SECRET }, 'AUTH_JWKS_URL: set together with AUTH_SECRET: tokens are verified either with the HS256 key or against the key set, choose one'],
      [{ AUTH_ISSUER: 'https://id.example.com/' }, 'AUTH_ISSUER: set, but neither AUTH_SECRET nor AUTH_JWKS_URL is, so no token is checked'],
      [{ AUTH_AUDIENCE: 'planline' }, 'AUTH_AUDIENCE: set, but neither AUTH_SECRET nor AUTH_JWKS_URL is, so no token is checked'],
      [{ AUTH_JWKS_URL: JWKS, AUTH_AUDIENCE: ' planline' }, 'AUTH_AUDIENCE: expected the exact claim value'],
      [{ AUTH_JWKS_URL: JWKS, AUTH_JWKS_CACHE_S: '0' }, "AUTH_JWKS_CACHE_S: expected a positive integer (seconds), got '0'"],
      [{ AUTH_JWKS_URL: JWKS, AUTH_JWKS_COOLDOWN_S: '-1' }, "AUTH_JWKS_COOLDOWN_S: expected a non-negative integer (seconds), got '-1'"],
    ] as Array<[NodeJS.ProcessEnv, string]>)('%j', (env, expected) => {
      const problems = problemsOf(env);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain(expected);
    });

    it('an empty secret counts as unset', () => {
      expect(problemsOf({ HOST: '0.0.0.0', AUTH_SECRET: '' })[0]).toMatch(/^AUTH_SECRET: AUTH_SECRET \(an HS256 key\) or AUTH_JWKS_URL/);
    });
  });

  describe('EVENTSTORE_URL', () => {
    it.each([
      ['sqlite:./data/planline.db', { kind: 'sqlite', path: './data/planline.db' }],
      ['sqlite:/var/lib/planline/log.db', { kind: 'sqlite', path: '/var/lib/planline/log.db' }],
      ['sqlite:///var/lib/planline/log.db', { kind: 'sqlite', path: '/var/lib/planline/log.db' }],
      ['sqlite:relative.db', { kind: 'sqlite', path: 'relative.db' }],
      ['sqlite::memory:', { kind: 'sqlite', path: ':memory:' }],
      ['kurrentdb://localhost:2113?tls=false', { kind: 'kurrentdb', connectionString: 'kurrentdb://localhost:2113?tls=false' }],
      [
        'kurrentdb+discover://admin:changeit@a:2113,b:2113?tls=true',
        { kind: 'kurrentdb', connectionString: 'kurrentdb+discover://admin:changeit@a:2113,b:2113?tls=true' },
      ],
      // esdb is the deprecated spelling of the same thing: normalised so the client does not warn.
      ['esdb://localhost:2113?tls=false', { kind: 'kurrentdb', connectionString: 'kurrentdb://localhost:2113?tls=false' }],
      ['esdb+discover://cluster.dns:2113', { kind: 'kurrentdb', connectionString: 'kurrentdb+discover://cluster.dns:2113' }],
      ['postgres://db:5432/planline', { kind: 'postgres', connectionString: 'postgres://db:5432/planline', schema: 'planline' }],
      [
        'postgresql://app:pw@db/events?sslmode=require',
        { kind: 'postgres', connectionString: 'postgresql://app:pw@db/events?sslmode=require', schema: 'planline' },
      ],
      // `schema` is Planline's own parameter: taken out, the rest passed to the client untouched.
      ['postgres://db/x?schema=tenant_1', { kind: 'postgres', connectionString: 'postgres://db/x', schema: 'tenant_1' }],
      [
        'postgres://db/x?schema=t&options=-c%20statement_timeout%3D5s',
        { kind: 'postgres', connectionString: 'postgres://db/x?options=-c%20statement_timeout%3D5s', schema: 't' },
      ],
      [
        'postgres://db/x?application_name=a&schema=t&sslmode=disable',
        { kind: 'postgres', connectionString: 'postgres://db/x?application_name=a&sslmode=disable', schema: 't' },
      ],
      // A socket directory instead of a host, as libpq spells it.
      [
        'postgresql:///planline?host=/var/run/postgresql',
        { kind: 'postgres', connectionString: 'postgresql:///planline?host=/var/run/postgresql', schema: 'planline' },
      ],
    ])('%s', (EVENTSTORE_URL, eventStore) => {
      expect(loadConfig({ EVENTSTORE_URL }).eventStore).toEqual(eventStore);
    });
  });

  describe('REDIS_URL and NATS_URL', () => {
    it('accept redis://, rediss:// and nats:// URLs as given', () => {
      expect(loadConfig({ REDIS_URL: 'rediss://:pw@cache.example:6380/1' }).redisUrl).toBe('rediss://:pw@cache.example:6380/1');
      expect(loadConfig({ NATS_URL: 'nats://user:pw@bus:4222' }).natsUrl).toBe('nats://user:pw@bus:4222');
    });
  });

  describe('OPENAI_*', () => {
    it('is absent without a key or base URL (heuristic planner)', () => {
      expect(loadConfig({}).openai).toBeUndefined();
    });

    it('defaults the model when a key is set', () => {
      expect(loadConfig({ OPENAI_API_KEY: 'sk-1' }).openai).toEqual({ apiKey: 'sk-1', baseUrl: undefined, model: 'gpt-4o-mini' });
    });

    it('allows a keyless base URL (a local OpenAI-compatible server)', () => {
      expect(loadConfig({ OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1', OPENAI_MODEL: 'qwen' }).openai).toEqual({
        apiKey: undefined,
        baseUrl: 'http://127.0.0.1:11434/v1',
        model: 'qwen',
      });
    });
  });

  describe('ROLES', () => {
    it.each([
      ['all', ['edge', 'projector', 'executor', 'worker']],
      ['ALL', ['edge', 'projector', 'executor', 'worker']],
      ['worker', ['worker']],
      [' worker , edge,edge, ', ['edge', 'worker']],
      ['edge,all', ['edge', 'projector', 'executor', 'worker']],
    ])('%j', (ROLES, roles) => {
      expect(loadConfig({ ROLES }).roles).toEqual(roles);
    });
  });

  it('accepts enum values in any case', () => {
    const config = loadConfig({ LOG_LEVEL: 'WARN', PLAN_APPROVAL_TIMEOUT_ACTION: 'Approve' });
    expect(config.logLevel).toBe('warn');
    expect(config.planApprovalTimeoutAction).toBe('approve');
  });

  it('reads process.env by default', () => {
    // Blank out our variables first: whatever the machine running the tests has set must not leak in.
    for (const name of OWN_VARIABLES) vi.stubEnv(name, '');
    vi.stubEnv('PORT', '9123');
    try {
      expect(loadConfig().port).toBe(9123);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe('isLoopbackHost', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['[::1]', true],
    ['localhost', true],
    ['0.0.0.0', false],
    ['::', false],
    ['localhost.example.com', false],
    ['128.0.0.1', false],
  ])('%s → %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });
});

describe('describeConfig', () => {
  it('masks secrets and URL credentials so the config can be logged', () => {
    const config = loadConfig({
      EVENTSTORE_URL: 'kurrentdb://admin:changeit@db:2113',
      REDIS_URL: 'redis://:hunter2@cache:6379',
      NATS_URL: 'nats://bus:4222',
      OPENAI_API_KEY: 'sk-very-secret',
      AUTH_SECRET: SECRET,
    });
    const shown = JSON.stringify(describeConfig(config));
    for (const secret of ['changeit', 'hunter2', 'sk-very-secret', SECRET]) expect(shown).not.toContain(secret);
    expect(describeConfig(config)).toMatchObject({
      eventStore: { kind: 'kurrentdb', connectionString: 'kurrentdb://***@db:2113' },
      redisUrl: 'redis://***@cache:6379',
      natsUrl: 'nats://bus:4222',
      openai: { apiKey: '***', model: 'gpt-4o-mini' },
      auth: { mode: 'hs256', secret: '***' },
      port: 8080,
    });
  });

  it('masks PostgreSQL credentials and keeps the schema', () => {
    const config = loadConfig({ EVENTSTORE_URL: 'postgres://app:s3cret@db:5432/events?schema=t1&password=other' });
    const shown = JSON.stringify(describeConfig(config));
    expect(shown).not.toContain('s3cret');
    expect(shown).not.toContain('other');
    expect(describeConfig(config).eventStore).toEqual({
      kind: 'postgres',
      connectionString: 'postgres://***@db:5432/events?password=***',
      schema: 't1',
    });
  });
});
