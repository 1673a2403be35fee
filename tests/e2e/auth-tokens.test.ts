// JWT bearer tokens end to end, against real servers: HS256 with AUTH_SECRET; RS256 and ES256 against
// a JSON Web Key Set served on loopback (node:http), with key rotation; every kind of bad token refused
// with 401, a stable code and `WWW-Authenticate: Bearer error="invalid_token"`; the token in a query
// parameter or a WebSocket subprotocol; auth off on loopback; start-up refused on a public host.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { ConfigError } from '../../src/config.js';
import { buildOnce, removeBuild } from '../support/deployment.js';
import { client, startServer, type Client, type TestServer } from '../support/server.js';
import { hs256, keyServer, nowS, signingKey, unsigned, validClaims, type KeyServer } from '../support/tokens.js';
import { eventually, expectProblem, streamEvents } from './api.js';

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A request with this token is refused with 401 `code` and an invalid_token challenge; nothing changes. */
async function expectRefused(c: Client, token: string, code: string) {
  const reply = await c.post('/sessions', { name: 'should not exist' }, { headers: bearer(token) });
  expectProblem(reply, 401, code);
  expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer realm="planline", error="invalid_token", error_description="[^"]+"$/);
  return reply;
}

describe('HS256 with AUTH_SECRET, AUTH_ISSUER and AUTH_AUDIENCE', () => {
  const secret = `hs256-key-${randomUUID()}`;
  const ISSUER = 'https://id.example.test/';
  const AUDIENCE = 'planline';
  const claims = (extra: Record<string, unknown> = {}) => validClaims('alice', { iss: ISSUER, aud: AUDIENCE, ...extra });
  let server: TestServer;
  let c: Client;
  beforeAll(async () => {
    server = await startServer({ AUTH_SECRET: secret, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE });
    c = client(server.api);
  });
  afterAll(() => server.dispose());

  test('a valid token is accepted, and its sub owns what it creates', async () => {
    const reply = await c.post('/sessions', { name: 'ok' }, { headers: bearer(hs256(secret, claims())) });
    expect(reply.status, reply.text).toBe(201);
    const events = await streamEvents(client(server.api, { headers: bearer(hs256(secret, claims())) }), `session-${reply.body.session_id}`);
    expect(events[0]).toMatchObject({ type: 'SessionStarted', data: { owner: 'alice' }, metadata: { principal: 'alice' } });
    // An audience list that includes ours is fine too.
    expect((await c.get('/sessions', { headers: bearer(hs256(secret, claims({ aud: ['other', AUDIENCE] }))) })).status).toBe(200);
  });

  test.each([
    ['expired', () => hs256(secret, claims({ exp: nowS() - 3600 })), 'token_expired'],
    ['not yet valid (nbf)', () => hs256(secret, claims({ nbf: nowS() + 3600 })), 'token_not_yet_valid'],
    ['forged (signed with another key)', () => hs256(`${secret}-guess`, claims()), 'token_signature_invalid'],
    ['tampered (claims changed after signing)', () => {
      const [h, , s] = hs256(secret, claims()).split('.');
      return `${h}.${Buffer.from(JSON.stringify(claims({ sub: 'admin' }))).toString('base64url')}.${s}`;
    }, 'token_signature_invalid'],
    ['forged and expired: called forged', () => hs256(`${secret}-guess`, claims({ exp: nowS() - 3600 })), 'token_signature_invalid'],
    ['from another issuer', () => hs256(secret, claims({ iss: 'https://evil.example.test/' })), 'token_issuer_invalid'],
    ['without an issuer', () => hs256(secret, claims({ iss: undefined })), 'token_issuer_invalid'],
    ['for another audience', () => hs256(secret, claims({ aud: 'someone-else' })), 'token_audience_invalid'],
    ['without a sub', () => hs256(secret, claims({ sub: undefined })), 'token_subject_missing'],
    ['with a sub that is not a string', () => hs256(secret, claims({ sub: 42 })), 'token_subject_invalid'],
    ['without an exp', () => hs256(secret, claims({ exp: undefined })), 'token_expiry_missing'],
    ['unsigned (alg none)', () => unsigned(claims()), 'token_algorithm_not_allowed'],
    ['signed with HS512', () => hs256(secret, claims(), { alg: 'HS512' }), 'token_algorithm_not_allowed'],
    ['not a JWT (the key itself, as the old static bearer)', () => secret, 'token_malformed'],
    ['absurdly long', () => 'a'.repeat(10_000), 'token_malformed'],
  ])('refused: %s', async (_what, token, code) => {
    await expectRefused(c, token(), code);
  });

  test('nothing a refused token sent was written', async () => {
    const ok = client(server.api, { headers: bearer(hs256(secret, claims())) });
    const list = await ok.get('/sessions');
    expect(list.body.sessions.map((s: any) => s.name)).not.toContain('should not exist');
  });

  test('the token may come as ?access_token= or a bearer.<token> subprotocol, but only one way', async () => {
    const token = hs256(secret, claims());
    expect((await c.get(`/sessions?access_token=${token}`)).status).toBe(200);
    expect((await c.get('/sessions', { headers: { 'sec-websocket-protocol': `planline, bearer.${token}` } })).status).toBe(200);
    const twice = await c.get(`/sessions?access_token=${token}`, { headers: bearer(token) });
    expectProblem(twice, 400, 'invalid_request');
    expect(twice.headers.get('www-authenticate')).toBe('Bearer realm="planline", error="invalid_request"');
    await expectRefused(client(server.api), hs256(secret, claims({ exp: nowS() - 10_000 })), 'token_expired');
  });

  test('the socket side: authenticate(request) gives the principal, or the same refusal', async () => {
    const token = hs256(secret, claims());
    const upgrade = new Request(`${server.api}/ws/x`, { headers: { upgrade: 'websocket', 'sec-websocket-protocol': `planline, bearer.${token}` } });
    const result = await server.planline.auth.authenticate(upgrade);
    expect(result).toMatchObject({ ok: true, principal: { id: 'alice', via: 'token' } });
    expect(result.ok && result.principal.expiresAt).toBeGreaterThan(Date.now());
    const refused = await server.planline.auth.authenticate(new Request(`${server.api}/ws/x?access_token=${unsigned(claims())}`));
    expect(refused).toMatchObject({ ok: false, refusal: { status: 401, code: 'token_algorithm_not_allowed' } });
  });
});

describe('RS256 and ES256 against a JWKS on loopback, with key rotation', () => {
  const rsaOld = signingKey('RS256', `rsa-${randomUUID().slice(0, 8)}`);
  const rsaNew = signingKey('RS256', `rsa-${randomUUID().slice(0, 8)}`);
  const ec = signingKey('ES256', `ec-${randomUUID().slice(0, 8)}`);
  let jwks: KeyServer;
  let server: TestServer;
  let c: Client;
  beforeAll(async () => {
    jwks = await keyServer([rsaOld, ec]);
    // A short cache so that a removed key stops working within the test; no cooldown, so a new key
    // works from its first token (the cooldown is tested below on its own server).
    server = await startServer({ HOST: 'localhost', AUTH_JWKS_URL: jwks.url, AUTH_AUDIENCE: 'planline', AUTH_JWKS_CACHE_S: '1', AUTH_JWKS_COOLDOWN_S: '0' });
    c = client(server.api);
  });
  afterAll(async () => {
    await server.dispose();
    await jwks.close();
  });
  const claims = (sub: string) => validClaims(sub, { aud: 'planline' });

  test('RS256 and ES256 tokens from the key set are accepted', async () => {
    expect((await c.get('/sessions', { headers: bearer(rsaOld.sign(claims('rosa'))) })).status).toBe(200);
    expect((await c.get('/sessions', { headers: bearer(ec.sign(claims('ed'))) })).status).toBe(200);
  });

  test('alg confusion: an HS256 token (keyed with a public key), an unsigned one, or a lying alg are refused', async () => {
    const publicKeyAsSecret = JSON.stringify(rsaOld.jwk);
    await expectRefused(c, hs256(publicKeyAsSecret, claims('mallory'), { kid: rsaOld.kid }), 'token_algorithm_not_allowed');
    await expectRefused(c, unsigned(claims('mallory')), 'token_algorithm_not_allowed');
    // An RSA signature presented as ES256 for the RSA key's kid.
    const [, payload, signature] = rsaOld.sign(claims('mallory')).split('.');
    const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: rsaOld.kid })).toString('base64url');
    await expectRefused(c, `${header}.${payload}.${signature}`, 'token_key_unknown');
    await expectRefused(c, signingKey('RS256', rsaOld.kid).sign(claims('mallory')), 'token_signature_invalid');
    await expectRefused(c, rsaOld.sign(validClaims('rosa', { aud: 'elsewhere' })), 'token_audience_invalid');
  });

  test('rotation: a new key works from its first token; the old key stops working once it is removed', async () => {
    await expectRefused(c, rsaNew.sign(claims('rosa')), 'token_key_unknown');
    jwks.publish([rsaOld, rsaNew, ec]);
    expect((await c.get('/sessions', { headers: bearer(rsaNew.sign(claims('rosa'))) })).status).toBe(200);
    expect((await c.get('/sessions', { headers: bearer(rsaOld.sign(claims('rosa'))) })).status).toBe(200);

    jwks.publish([rsaNew, ec]);
    // Within the cache lifetime (1 s) the old key may still be trusted; after it, never again.
    await eventually(
      async () => (await c.get('/sessions', { headers: bearer(rsaOld.sign(claims('rosa'))) })).status,
      (status) => status === 401,
      5_000,
      'the removed key to be refused',
    );
    await expectRefused(c, rsaOld.sign(claims('rosa')), 'token_key_unknown');
    expect((await c.get('/sessions', { headers: bearer(rsaNew.sign(claims('rosa'))) })).status).toBe(200);
  });
});

describe('the key set is fetched at most once per cooldown for unknown kids, and its outage is a 503', () => {
  const key = signingKey('ES256', 'only');
  let jwks: KeyServer;
  let server: TestServer;
  beforeAll(async () => {
    jwks = await keyServer([key]);
    server = await startServer({ AUTH_JWKS_URL: jwks.url, AUTH_JWKS_COOLDOWN_S: '3600' });
  });
  afterAll(async () => {
    await server.dispose();
    await jwks.close();
  });

  test('a flood of tokens with made-up kids fetches the key set once, not once each', async () => {
    const c = client(server.api);
    expect((await c.get('/sessions', { headers: bearer(key.sign(validClaims('eve'))) })).status).toBe(200);
    const before = jwks.fetches;
    const replies = await Promise.all(
      Array.from({ length: 25 }, (_, i) => c.get('/sessions', { headers: bearer(signingKey('ES256', `made-up-${i}`).sign(validClaims('eve'))) })),
    );
    for (const reply of replies) expectProblem(reply, 401, 'token_key_unknown');
    expect(jwks.fetches - before).toBeLessThanOrEqual(1);
  });

  test('with no keys ever fetched, the edge answers 503 auth_unavailable, not 401', async () => {
    const down = await startServer({ AUTH_JWKS_URL: 'http://127.0.0.1:9/jwks.json' });
    try {
      const reply = await client(down.api).get('/sessions', { headers: bearer(key.sign(validClaims('eve'))) });
      expectProblem(reply, 503, 'auth_unavailable');
      expect(reply.headers.get('retry-after')).toBe('5');
    } finally {
      await down.dispose();
    }
  });
});

describe('start-up', () => {
  test('on loopback with no auth configured, auth is off, start-up says so, and everyone is `local`', async () => {
    const server = await startServer({ HOST: '127.0.0.1' });
    try {
      expect(server.logs.find((line) => /^auth is off/.test(String(line.msg)))).toMatchObject({ level: 'warn' });
      const c = client(server.api);
      const created = await c.post('/sessions', { name: 'no auth' });
      expect(created.status).toBe(201);
      const events = await streamEvents(c, `session-${created.body.session_id}`);
      expect(events[0]).toMatchObject({ data: { owner: 'local' }, metadata: { principal: 'local' } });
      // A token is not needed, and not looked at.
      expect((await c.get('/sessions', { headers: bearer('whatever') })).status).toBe(200);
    } finally {
      await server.dispose();
    }
  });

  test.each(['0.0.0.0', '::'])('on %s without AUTH_SECRET or AUTH_JWKS_URL, it refuses to start, naming both', async (HOST) => {
    const attempt = startServer({ HOST });
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toThrow(/AUTH_SECRET \(an HS256 key\) or AUTH_JWKS_URL \(RS256\/ES256 keys\) is required when HOST is not a loopback address/);
  });

  test('`node main.js` on a public HOST without auth exits 78 (EX_CONFIG) with that message', () => {
    const main = buildOnce();
    try {
      const env = { ...process.env, HOST: '0.0.0.0', PORT: '1', AUTH_SECRET: '', AUTH_JWKS_URL: '', EVENTSTORE_URL: 'sqlite::memory:' };
      const run = spawnSync(process.execPath, [main], { env, encoding: 'utf8', timeout: 20_000 });
      expect(run.status, run.stderr).toBe(78);
      expect(run.stderr).toContain(
        "AUTH_SECRET: AUTH_SECRET (an HS256 key) or AUTH_JWKS_URL (RS256/ES256 keys) is required when HOST is not a loopback address (127.0.0.1, ::1, localhost); HOST is '0.0.0.0'",
      );
    } finally {
      removeBuild(main);
    }
  }, 120_000);
});
