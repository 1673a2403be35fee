// Environment → typed, validated configuration (DESIGN §7). Read once at start-up by the
// composition root; a bad value stops start-up with one message that names every bad variable,
// so an operator fixes the environment in one pass instead of one restart per mistake.
import * as v from 'valibot';
import { isValidSchemaName } from './events/postgres-schema.js';
import { LOG_LEVELS, type LogLevel } from './log.js';

export const ROLES = ['edge', 'projector', 'executor', 'worker'] as const;
export type Role = (typeof ROLES)[number];

export const PLAN_APPROVAL_TIMEOUT_ACTIONS = ['expire', 'approve'] as const;
export type PlanApprovalTimeoutAction = (typeof PLAN_APPROVAL_TIMEOUT_ACTIONS)[number];

/** Which event store adapter to build, and what it needs to connect. */
export type EventStoreConfig =
  /** Embedded adapter. `path` is a file path (relative to the working directory) or ':memory:'. */
  | { kind: 'sqlite'; path: string }
  /** KurrentDB / EventStoreDB gRPC client connection string, passed through as given (esdb → kurrentdb). */
  | { kind: 'kurrentdb'; connectionString: string }
  /**
   * PostgreSQL: the URL as given minus our own `schema` parameter, which names the schema holding the
   * tables (default `planline`).
   */
  | { kind: 'postgres'; connectionString: string; schema: string };

/**
 * How requests are authenticated (DESIGN §7). `off` only on a loopback HOST with neither AUTH_SECRET
 * nor AUTH_JWKS_URL: every request then acts as the one principal `local`.
 */
export type AuthConfig =
  | { mode: 'off' }
  | {
      /** JWTs signed with HS256 by AUTH_SECRET (the key, not a token). */
      mode: 'hs256';
      secret: string;
      issuer: string | undefined;
      audience: string | undefined;
    }
  | {
      /** JWTs signed with RS256 / ES256 by a key of the JSON Web Key Set at AUTH_JWKS_URL. */
      mode: 'jwks';
      jwksUrl: string;
      issuer: string | undefined;
      audience: string | undefined;
      /** The key set is fetched again after this long, so removed keys stop working. */
      jwksCacheS: number;
      /** An unknown `kid` fetches the key set again at most once per this many seconds. */
      jwksCooldownS: number;
    };

/** Present only when a model is configured; absent means the heuristic planner and no agent runs. */
export interface OpenAiConfig {
  /** Undefined when OPENAI_BASE_URL points at a server that needs no key (a local model). */
  apiKey: string | undefined;
  /** Undefined means the OpenAI default endpoint. */
  baseUrl: string | undefined;
  model: string;
}

/** The WebSocket edge's limits (src/http/ws-edge.ts). */
export interface WsLimits {
  /** A protocol ping every this often; a socket that answered none of the last interval is closed. */
  heartbeatMs: number;
  /** Open sockets per process; more are refused (close 1013, try again later). */
  maxConnections: number;
  /** Largest inbound frame; larger ones get an error frame (the socket stays open). */
  maxFrameBytes: number;
  /** Largest send buffer per socket; a consumer that lets it fill is closed (4008) and may resume. */
  maxBufferedBytes: number;
  /** Inbound frames per second per socket; more get an error frame, twice as many close the socket. */
  maxFramesPerSecond: number;
}

export interface Config {
  port: number;
  host: string;
  eventStore: EventStoreConfig;
  /** Undefined: embedded in-process read models, rebuilt from the log at start. */
  redisUrl: string | undefined;
  /** Namespace of every Redis key Planline writes (several deployments may share one Redis). */
  redisKeyPrefix: string;
  /** Undefined: embedded in-process bus and job queue. */
  natsUrl: string | undefined;
  /** Namespace of the bus's subjects, streams and consumers (several deployments may share one NATS). */
  natsPrefix: string;
  openai: OpenAiConfig | undefined;
  planApprovalTimeoutS: number;
  planApprovalTimeoutAction: PlanApprovalTimeoutAction;
  /** `off` only when HOST is loopback and no auth variable is set. */
  auth: AuthConfig;
  /** Deduplicated, in ROLES order; `all` expands to every role. */
  roles: readonly Role[];
  maxBodyBytes: number;
  shutdownTimeoutMs: number;
  logLevel: LogLevel;
  /** Client feed frames kept per session for resume. */
  feedHistory: number;
  ws: WsLimits;
  execution: ExecutionConfig;
}

/** How plans and agent runs execute (the executor's and the workers' settings). */
export interface ExecutionConfig {
  /** Subtasks of one plan running at once. */
  maxParallel: number;
  /** Attempts per subtask before the plan goes to error handling. */
  maxAttempts: number;
  /** Delay before a subtask's first retry; doubled for each later one. */
  retryBackoffMs: number;
  /** After a subtask exhausted its retries: re-plan (the architect gets the failure) at most this many times, then fail. 0: fail at once. */
  maxReplans: number;
  /** What a message does while the session is busy, unless the message says. */
  multitask: 'enqueue' | 'interrupt' | 'reject';
  /** A tool call the IDE has not answered within this time fails its run. */
  toolCallTimeoutS: number;
  /** Model turns one run may take. */
  maxTurns: number;
  /** Agent jobs one worker process runs at once. */
  workerConcurrency: number;
  /** One model call's time limit. */
  modelTimeoutMs: number;
}

export const DEFAULT_OPENAI_MODEL = 'gpt-4o-mini';

export interface ConfigProblem {
  variable: string;
  problem: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map(({ variable, problem }) => `  ${variable}: ${problem}`).join('\n'),
    );
  }
}

/** Loopback hosts may run without auth: nothing off this machine can reach them. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return bare === 'localhost' || bare === '::1' || /^127(\.\d{1,3}){3}$/.test(bare);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = v.safeParse(envSchema, readEnv(env));
  if (!result.success) {
    throw new ConfigError(
      result.issues.map((issue) => ({
        variable: String(issue.path?.[0]?.key ?? 'environment'),
        problem: issue.message,
      })),
    );
  }
  const e = result.output;
  return {
    port: e.PORT,
    host: e.HOST,
    eventStore: e.EVENTSTORE_URL,
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    natsUrl: e.NATS_URL,
    natsPrefix: e.NATS_PREFIX,
    openai:
      e.OPENAI_API_KEY !== undefined || e.OPENAI_BASE_URL !== undefined
        ? { apiKey: e.OPENAI_API_KEY, baseUrl: e.OPENAI_BASE_URL, model: e.OPENAI_MODEL ?? DEFAULT_OPENAI_MODEL }
        : undefined,
    planApprovalTimeoutS: e.PLAN_APPROVAL_TIMEOUT_S,
    planApprovalTimeoutAction: e.PLAN_APPROVAL_TIMEOUT_ACTION,
    auth: authConfigOf(e),
    roles: e.ROLES,
    maxBodyBytes: e.MAX_BODY_BYTES,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    feedHistory: e.FEED_HISTORY,
    ws: {
      heartbeatMs: e.WS_HEARTBEAT_MS,
      maxConnections: e.WS_MAX_CONNECTIONS,
      maxFrameBytes: e.WS_MAX_FRAME_BYTES,
      maxBufferedBytes: e.WS_MAX_BUFFERED_BYTES,
      maxFramesPerSecond: e.WS_MAX_FRAMES_PER_SECOND,
    },
    execution: {
      maxParallel: e.PLAN_MAX_PARALLEL,
      maxAttempts: e.SUBTASK_MAX_ATTEMPTS,
      retryBackoffMs: e.SUBTASK_RETRY_BACKOFF_MS,
      maxReplans: e.PLAN_MAX_REPLANS,
      multitask: e.MULTITASK_STRATEGY,
      toolCallTimeoutS: e.TOOL_CALL_TIMEOUT_S,
      maxTurns: e.AGENT_MAX_TURNS,
      workerConcurrency: e.WORKER_CONCURRENCY,
      modelTimeoutMs: e.MODEL_TIMEOUT_MS,
    },
  };
}

/** The config as it is safe to log at start-up: secrets and URL credentials masked. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    eventStore:
      config.eventStore.kind === 'sqlite'
        ? config.eventStore
        : { ...config.eventStore, connectionString: maskCredentials(config.eventStore.connectionString) },
    redisUrl: config.redisUrl && maskCredentials(config.redisUrl),
    natsUrl: config.natsUrl && maskCredentials(config.natsUrl),
    openai: config.openai && { ...config.openai, apiKey: config.openai.apiKey && '***' },
    auth: config.auth.mode === 'hs256' ? { ...config.auth, secret: '***' } : config.auth,
  };
}

function authConfigOf(e: v.InferOutput<typeof envSchema>): AuthConfig {
  const claims = { issuer: e.AUTH_ISSUER, audience: e.AUTH_AUDIENCE };
  if (e.AUTH_SECRET !== undefined) return { mode: 'hs256', secret: e.AUTH_SECRET, ...claims };
  if (e.AUTH_JWKS_URL !== undefined) {
    return { mode: 'jwks', jwksUrl: e.AUTH_JWKS_URL, ...claims, jwksCacheS: e.AUTH_JWKS_CACHE_S, jwksCooldownS: e.AUTH_JWKS_COOLDOWN_S };
  }
  return { mode: 'off' };
}

// ---------------------------------------------------------------------------------------------
// One parser per variable. Each turns the raw string into its value or one sentence saying what
// was expected and what was got, so every bad variable yields exactly one line in the error.

type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = (problem: string): Parsed<never> => ({ ok: false, problem });

/** A string variable run through `parse`; the value (or the default, a raw string too) is parsed alike. */
function envVar<T>(parse: (raw: string) => Parsed<T>) {
  return v.pipe(
    v.string(),
    v.rawTransform<string, T>(({ dataset, addIssue, NEVER }) => {
      const parsed = parse(dataset.value);
      if (parsed.ok) return parsed.value;
      addIssue({ message: parsed.problem });
      return NEVER;
    }),
  );
}

function integerIn(min: number, max: number, expected: string) {
  return (raw: string): Parsed<number> => {
    const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
    return n >= min && n <= max ? ok(n) : bad(`expected ${expected}, got '${raw}'`);
  };
}

function oneOf<const T extends string>(options: readonly T[]) {
  return (raw: string): Parsed<T> => {
    // Case-insensitive: `LOG_LEVEL=INFO` is an obvious intent, not a mistake worth a failed start.
    const wanted = raw.toLowerCase();
    const found = options.find((option) => option === wanted);
    return found !== undefined ? ok(found) : bad(`expected one of ${options.join(', ')}, got '${raw}'`);
  };
}

function urlWithScheme(schemes: readonly string[]) {
  const expected = `expected a ${schemes.map((s) => `${s}//`).join(' or ')} URL`;
  return (raw: string): Parsed<string> => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return bad(`${expected}, got '${maskCredentials(raw)}'`);
    }
    if (!schemes.includes(url.protocol) || url.hostname === '') {
      return bad(`${expected}, got '${maskCredentials(raw)}'`);
    }
    return ok(raw);
  };
}

function parseHost(raw: string): Parsed<string> {
  // A hostname, an IPv4 address or an IPv6 address (bracketed or not); catches `http://…` and typos with spaces.
  return /^[A-Za-z0-9._:%[\]-]+$/.test(raw) ? ok(raw) : bad(`expected a hostname or IP address, got '${raw}'`);
}

const KURRENT_SCHEME = /^(kurrentdb|kurrent|kdb|esdb)(\+discover)?:\/\/[^\s/?#]+/i;
const POSTGRES_SCHEME = /^postgres(ql)?:\/\//i;

function parseEventStoreUrl(raw: string): Parsed<EventStoreConfig> {
  if (raw.startsWith('sqlite:')) {
    // `sqlite:<path>`; also `sqlite://<path>` (so `sqlite:///abs/file.db` is an absolute path).
    const rest = raw.slice('sqlite:'.length);
    const path = rest.startsWith('//') ? rest.slice(2) : rest;
    return path === '' ? bad(`expected a file path after 'sqlite:', got '${raw}'`) : ok({ kind: 'sqlite', path });
  }
  if (KURRENT_SCHEME.test(raw)) {
    // The client still accepts esdb:// but warns on every connect that it is deprecated: rewrite it once here.
    const connectionString = raw.replace(/^esdb/i, 'kurrentdb');
    return ok({ kind: 'kurrentdb', connectionString });
  }
  if (POSTGRES_SCHEME.test(raw)) return parsePostgresUrl(raw);
  return bad(
    `expected sqlite:<path>, sqlite::memory:, kurrentdb://…, kurrentdb+discover://…, esdb://…, esdb+discover://…, ` +
      `postgres://… or postgresql://…, got '${maskCredentials(raw)}'`,
  );
}

function parsePostgresUrl(raw: string): Parsed<EventStoreConfig> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return bad(`expected a postgres://[user[:password]@]host[:port]/database URL, got '${maskCredentials(raw)}'`);
  }
  // A host, or libpq's ?host= (a socket directory): pg would otherwise quietly try localhost.
  if (url.hostname === '' && !url.searchParams.has('host')) {
    return bad(`expected a host in the postgres URL, got '${maskCredentials(raw)}'`);
  }
  const schemas = url.searchParams.getAll('schema');
  const schema = schemas[0] ?? 'planline';
  if (schemas.length > 1 || !isValidSchemaName(schema)) {
    return bad(`expected one ?schema= with a lowercase identifier (letters, digits, _; at most 48), got '${schemas.join("', '")}'`);
  }
  // `schema` is ours, not a connection parameter: pg must not see it. Cut it out of the text rather than
  // re-serializing the URL, which would re-encode the other parameters (a space in `options` as '+').
  const connectionString = raw.replace(/([?&])schema=[^&#]*(&|(?=#)|$)/, (_match, separator: string, next: string) =>
    next === '&' ? separator : '',
  );
  return ok({ kind: 'postgres', connectionString, schema });
}

function parseRoles(raw: string): Parsed<readonly Role[]> {
  const items = raw
    .split(',')
    .map((item) => item.trim().toLowerCase())
    .filter((item) => item !== '');
  const unknown = items.filter((item) => item !== 'all' && !(ROLES as readonly string[]).includes(item));
  if (items.length === 0 || unknown.length > 0) {
    const which = unknown.length > 0 ? ` (unknown: ${unknown.join(', ')})` : '';
    return bad(`expected 'all' or a comma-separated list of ${ROLES.join(', ')}, got '${raw}'${which}`);
  }
  return ok(ROLES.filter((role) => items.includes('all') || items.includes(role)));
}

/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash output, 256 bits. */
const MIN_HS256_KEY_BYTES = 32;

function parseAuthSecret(raw: string): Parsed<string> {
  // Never echo a secret into an error message (it ends up in logs); its length is enough to act on.
  const bytes = Buffer.byteLength(raw, 'utf8');
  return bytes >= MIN_HS256_KEY_BYTES
    ? ok(raw)
    : bad(`expected an HS256 key of at least ${MIN_HS256_KEY_BYTES} bytes (e.g. openssl rand -base64 48), got ${bytes}`);
}

function parseJwksUrl(raw: string): Parsed<string> {
  // Keys fetched in the clear could be swapped in transit: plain http only for a server on this machine.
  const parsed = urlWithScheme(['https:', 'http:'])(raw);
  if (!parsed.ok) return parsed;
  const url = new URL(raw);
  return url.protocol === 'https:' || isLoopbackHost(url.hostname)
    ? parsed
    : bad(`expected an https:// URL (http:// only on a loopback host), got '${maskCredentials(raw)}'`);
}

function parseClaimValue(raw: string): Parsed<string> {
  return raw.trim() === raw && raw.length <= 1000 ? ok(raw) : bad('expected the exact claim value (no surrounding spaces, at most 1000 characters)');
}

const anyText = (raw: string): Parsed<string> => ok(raw);

function keyPrefix(raw: string): Parsed<string> {
  return /^[\w.:{}-]{1,100}$/.test(raw) ? ok(raw) : bad(`expected up to 100 letters, digits and _ . : - { } (e.g. 'planline:'), got '${raw}'`);
}

function natsPrefix(raw: string): Parsed<string> {
  return /^[A-Za-z0-9_-]{1,64}$/.test(raw) ? ok(raw) : bad(`expected 1-64 letters, digits, _ or - (e.g. 'planline'), got '${raw}'`);
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

const envSchema = v.pipe(
  v.object({
    PORT: v.optional(envVar(integerIn(1, 65_535, 'an integer 1-65535')), '8080'),
    HOST: v.optional(envVar(parseHost), '127.0.0.1'),
    EVENTSTORE_URL: v.optional(envVar(parseEventStoreUrl), 'sqlite:./data/planline.db'),
    REDIS_URL: v.optional(envVar(urlWithScheme(['redis:', 'rediss:']))),
    REDIS_KEY_PREFIX: v.optional(envVar(keyPrefix), 'planline:'),
    NATS_URL: v.optional(envVar(urlWithScheme(['nats:']))),
    NATS_PREFIX: v.optional(envVar(natsPrefix), 'planline'),
    OPENAI_API_KEY: v.optional(envVar(anyText)),
    OPENAI_BASE_URL: v.optional(envVar(urlWithScheme(['http:', 'https:']))),
    OPENAI_MODEL: v.optional(envVar(anyText)),
    PLAN_APPROVAL_TIMEOUT_S: v.optional(envVar(integerIn(1, MAX_SAFE, 'a positive integer (seconds)')), '300'),
    PLAN_APPROVAL_TIMEOUT_ACTION: v.optional(envVar(oneOf(PLAN_APPROVAL_TIMEOUT_ACTIONS)), 'expire'),
    AUTH_SECRET: v.optional(envVar(parseAuthSecret)),
    AUTH_JWKS_URL: v.optional(envVar(parseJwksUrl)),
    AUTH_ISSUER: v.optional(envVar(parseClaimValue)),
    AUTH_AUDIENCE: v.optional(envVar(parseClaimValue)),
    AUTH_JWKS_CACHE_S: v.optional(envVar(integerIn(1, MAX_SAFE, 'a positive integer (seconds)')), '600'),
    AUTH_JWKS_COOLDOWN_S: v.optional(envVar(integerIn(0, MAX_SAFE, 'a non-negative integer (seconds)')), '30'),
    ROLES: v.optional(envVar(parseRoles), 'all'),
    MAX_BODY_BYTES: v.optional(envVar(integerIn(1, MAX_SAFE, 'a positive integer (bytes)')), '1048576'),
    SHUTDOWN_TIMEOUT_MS: v.optional(envVar(integerIn(1, MAX_SAFE, 'a positive integer (milliseconds)')), '10000'),
    LOG_LEVEL: v.optional(envVar(oneOf(LOG_LEVELS)), 'info'),
    FEED_HISTORY: v.optional(envVar(integerIn(1, 1_000_000, 'an integer 1-1000000 (frames per session)')), '1000'),
    WS_HEARTBEAT_MS: v.optional(envVar(integerIn(100, 86_400_000, 'an integer 100-86400000 (milliseconds)')), '30000'),
    WS_MAX_CONNECTIONS: v.optional(envVar(integerIn(1, 10_000_000, 'a positive integer (sockets)')), '20000'),
    WS_MAX_FRAME_BYTES: v.optional(envVar(integerIn(256, 67_108_864, 'an integer 256-67108864 (bytes)')), '1048576'),
    WS_MAX_BUFFERED_BYTES: v.optional(envVar(integerIn(1_024, MAX_SAFE, 'an integer of at least 1024 (bytes)')), '1048576'),
    WS_MAX_FRAMES_PER_SECOND: v.optional(envVar(integerIn(1, 1_000_000, 'a positive integer (frames)')), '50'),
    PLAN_MAX_PARALLEL: v.optional(envVar(integerIn(1, 1_000, 'an integer 1-1000 (subtasks)')), '4'),
    SUBTASK_MAX_ATTEMPTS: v.optional(envVar(integerIn(1, 100, 'an integer 1-100 (attempts)')), '3'),
    SUBTASK_RETRY_BACKOFF_MS: v.optional(envVar(integerIn(0, 86_400_000, 'an integer 0-86400000 (milliseconds)')), '1000'),
    PLAN_MAX_REPLANS: v.optional(envVar(integerIn(0, 100, 'an integer 0-100 (re-plans per plan)')), '1'),
    MULTITASK_STRATEGY: v.optional(envVar(oneOf(['enqueue', 'interrupt', 'reject'] as const)), 'enqueue'),
    TOOL_CALL_TIMEOUT_S: v.optional(envVar(integerIn(1, 604_800, 'an integer 1-604800 (seconds)')), '600'),
    AGENT_MAX_TURNS: v.optional(envVar(integerIn(1, 1_000, 'an integer 1-1000 (model turns per run)')), '25'),
    WORKER_CONCURRENCY: v.optional(envVar(integerIn(1, 1_000, 'an integer 1-1000 (jobs at once)')), '8'),
    MODEL_TIMEOUT_MS: v.optional(envVar(integerIn(100, 3_600_000, 'an integer 100-3600000 (milliseconds)')), '120000'),
  }),
  // Rules across variables run even when unrelated variables are bad, so their problems are reported together.
  v.forward(
    v.partialCheck(
      [['HOST'], ['AUTH_SECRET'], ['AUTH_JWKS_URL']],
      (input) => input.AUTH_SECRET !== undefined || input.AUTH_JWKS_URL !== undefined || isLoopbackHost(input.HOST),
      (issue) =>
        `AUTH_SECRET (an HS256 key) or AUTH_JWKS_URL (RS256/ES256 keys) is required when HOST is not a loopback ` +
        `address (127.0.0.1, ::1, localhost); HOST is '${String((issue.input as { HOST?: unknown }).HOST)}'`,
    ),
    ['AUTH_SECRET'],
  ),
  v.forward(
    v.partialCheck(
      [['AUTH_SECRET'], ['AUTH_JWKS_URL']],
      (input) => input.AUTH_SECRET === undefined || input.AUTH_JWKS_URL === undefined,
      'set together with AUTH_SECRET: tokens are verified either with the HS256 key or against the key set, choose one',
    ),
    ['AUTH_JWKS_URL'],
  ),
  v.forward(
    v.partialCheck(
      [['AUTH_SECRET'], ['AUTH_JWKS_URL'], ['AUTH_ISSUER']],
      (input) => input.AUTH_ISSUER === undefined || input.AUTH_SECRET !== undefined || input.AUTH_JWKS_URL !== undefined,
      'set, but neither AUTH_SECRET nor AUTH_JWKS_URL is, so no token is checked',
    ),
    ['AUTH_ISSUER'],
  ),
  v.forward(
    v.partialCheck(
      [['AUTH_SECRET'], ['AUTH_JWKS_URL'], ['AUTH_AUDIENCE']],
      (input) => input.AUTH_AUDIENCE === undefined || input.AUTH_SECRET !== undefined || input.AUTH_JWKS_URL !== undefined,
      'set, but neither AUTH_SECRET nor AUTH_JWKS_URL is, so no token is checked',
    ),
    ['AUTH_AUDIENCE'],
  ),
  v.forward(
    v.partialCheck(
      [['OPENAI_MODEL'], ['OPENAI_API_KEY'], ['OPENAI_BASE_URL']],
      (input) =>
        input.OPENAI_MODEL === undefined || input.OPENAI_API_KEY !== undefined || input.OPENAI_BASE_URL !== undefined,
      'set, but neither OPENAI_API_KEY nor OPENAI_BASE_URL is, so no model would be used',
    ),
    ['OPENAI_MODEL'],
  ),
);

type EnvName = keyof v.InferInput<typeof envSchema>;
const ENV_NAMES = Object.keys(envSchema.entries) as EnvName[];

/** Only our variables, with empty strings treated as unset (`FOO=` in a .env file means "not set"). */
function readEnv(env: NodeJS.ProcessEnv): Partial<Record<EnvName, string>> {
  const picked: Partial<Record<EnvName, string>> = {};
  for (const name of ENV_NAMES) {
    const value = env[name];
    if (value !== undefined && value !== '') picked[name] = value;
  }
  return picked;
}

/**
 * `scheme://user:secret@host` → `scheme://***@host`, and `?password=secret` → `?password=***` (libpq
 * URLs may carry it there): URLs in errors and logs must not leak credentials.
 */
function maskCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/?#]*@/i, '$1***@').replace(/([?&]password=)[^&#]*/gi, '$1***');
}
