// authenticate(request) → Principal | refusal: the one function both edges call. The HTTP API calls it
// in its auth middleware; the WebSocket upgrade calls it before accepting a socket (a token may come as
// a header, an `access_token` query parameter or a `bearer.<token>` subprotocol).
import { webcrypto } from 'node:crypto';
import type { AuthConfig } from '../config.js';
import type { Logger } from '../log.js';
import { verifyJwt, type KeyResolver } from './jwt.js';
import { remoteKeySet, type KeySet } from './jwks.js';
import { localPrincipal, type AuthResult } from './principal.js';
import { findToken } from './token.js';

export interface Authenticator {
  readonly mode: AuthConfig['mode'];
  /** Never throws: a request is either a principal or a refusal that says why. */
  authenticate(request: Request): Promise<AuthResult>;
  /** The JWKS key set (undefined unless mode is jwks): tests count its fetches. */
  readonly keySet: KeySet | undefined;
}

const CHALLENGE = 'Bearer realm="planline"';

export async function createAuthenticator(config: AuthConfig, log: Logger): Promise<Authenticator> {
  if (config.mode === 'off') {
    return { mode: 'off', keySet: undefined, authenticate: async () => ({ ok: true, principal: localPrincipal }) };
  }
  let resolveKeys: KeyResolver;
  let keySet: KeySet | undefined;
  if (config.mode === 'hs256') {
    const key = await webcrypto.subtle.importKey('raw', new TextEncoder().encode(config.secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
    resolveKeys = async () => ({ ok: true, keys: [key] });
  } else {
    const set = remoteKeySet({ url: config.jwksUrl, cacheMs: config.jwksCacheS * 1000, cooldownMs: config.jwksCooldownS * 1000, log });
    keySet = set;
    resolveKeys = async (header) => {
      if (header.alg === 'HS256') return { ok: true, keys: [] };
      const found = await set.keysFor({ kid: header.kid, alg: header.alg });
      return found.ok ? { ok: true, keys: found.keys.map((k) => k.key) } : { ok: false, detail: found.detail };
    };
  }
  const expectations = {
    algorithms: config.mode === 'hs256' ? (['HS256'] as const) : (['RS256', 'ES256'] as const),
    issuer: config.issuer,
    audience: config.audience,
  };

  return {
    mode: config.mode,
    keySet,
    async authenticate(request) {
      const found = findToken(request);
      switch (found.kind) {
        case 'none':
          return {
            ok: false,
            refusal: { status: 401, code: 'unauthorized', detail: 'send a JWT as Authorization: Bearer <token>', challenge: CHALLENGE },
          };
        case 'not_bearer':
          return {
            ok: false,
            refusal: { status: 401, code: 'unauthorized', detail: 'the Authorization header must use the Bearer scheme: Authorization: Bearer <token>', challenge: CHALLENGE },
          };
        case 'ambiguous':
          return {
            ok: false,
            refusal: {
              status: 400,
              code: 'invalid_request',
              detail: `send the token one way only; it came as ${found.sources.join(' and ')}`,
              challenge: `${CHALLENGE}, error="invalid_request"`,
            },
          };
        case 'token':
          try {
            return await verifyJwt(found.token, resolveKeys, expectations);
          } catch (error) {
            // A bug or a crypto failure must refuse, never let a request through.
            log.error('token verification failed unexpectedly', { error });
            return { ok: false, refusal: { status: 503, code: 'auth_unavailable', detail: 'the token could not be checked; retry shortly' } };
          }
      }
    },
  };
}
