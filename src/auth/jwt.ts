// Verifying one JWT: its header (algorithm allowed, no `crit`), its signature (Hono's `verify`, which
// checks that the header's alg is the one we expect for the key), then its claims. The signature comes
// first so that a forged token is always called forged, whatever claims it makes. Claims are checked
// here rather than by `verify` to give each failure its own stable code and to allow for clock skew.
import type { webcrypto } from 'node:crypto';
import { decode, verify } from 'hono/jwt';
import { isPrincipalId, type AuthRefusal, type Principal } from './principal.js';
import { MAX_TOKEN_CHARS } from './token.js';

export type Algorithm = 'HS256' | 'RS256' | 'ES256';

/** Keys that may have signed a token with this header; `unavailable` when they cannot be had now. */
export type KeyResolver = (header: { kid?: string | undefined; alg: Algorithm }) => Promise<{ ok: true; keys: webcrypto.CryptoKey[] } | { ok: false; detail: string }>;

export interface Expectations {
  /** The only algorithms accepted: HS256 with AUTH_SECRET, RS256/ES256 with a key set. */
  algorithms: readonly Algorithm[];
  issuer?: string | undefined;
  audience?: string | undefined;
  /** Tolerated clock difference with the issuer, seconds (default 30). */
  leewayS?: number;
  now?: () => number;
}

/** Media types a JWT access token's `typ` may carry (RFC 7519, RFC 9068); absent is fine too. */
const TYPES = new Set(['jwt', 'application/jwt', 'at+jwt', 'application/at+jwt']);

type Verified = { ok: true; principal: Principal } | { ok: false; refusal: AuthRefusal };

export const invalidToken = (code: string, detail: string): AuthRefusal => ({
  status: 401,
  code,
  detail,
  challenge: `Bearer realm="planline", error="invalid_token", error_description="${detail.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?')}"`,
});

const refuse = (code: string, detail: string): Verified => ({ ok: false, refusal: invalidToken(code, detail) });

export async function verifyJwt(token: string, resolveKeys: KeyResolver, expect: Expectations): Promise<Verified> {
  if (token.length > MAX_TOKEN_CHARS) return refuse('token_malformed', `the token is longer than ${MAX_TOKEN_CHARS} characters`);
  let header: Record<string, unknown>;
  let payload: Record<string, unknown>;
  try {
    ({ header, payload } = decode(token) as { header: unknown; payload: unknown } as { header: Record<string, unknown>; payload: Record<string, unknown> });
  } catch {
    return refuse('token_malformed', 'the bearer token is not a JWT (AUTH_SECRET is the key tokens are signed with, not a token to send)');
  }
  if (typeof header !== 'object' || header === null || typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    return refuse('token_malformed', 'the token header or payload is not a JSON object');
  }
  const alg = header.alg;
  if (typeof alg !== 'string' || !(expect.algorithms as readonly string[]).includes(alg)) {
    return refuse('token_algorithm_not_allowed', `tokens must be signed with ${expect.algorithms.join(' or ')}; this one says ${JSON.stringify(alg ?? null)}`);
  }
  if ('crit' in header) return refuse('token_malformed', 'the token header has critical extensions this server does not understand');
  const typ = header.typ;
  if (typ !== undefined && (typeof typ !== 'string' || !TYPES.has(typ.toLowerCase()))) {
    return refuse('token_malformed', `the token's typ ${JSON.stringify(typ)} is not a JWT access token`);
  }
  const kid = typeof header.kid === 'string' ? header.kid : undefined;

  const resolved = await resolveKeys({ kid, alg: alg as Algorithm });
  if (!resolved.ok) return { ok: false, refusal: { status: 503, code: 'auth_unavailable', detail: resolved.detail } };
  if (resolved.keys.length === 0) {
    return refuse('token_key_unknown', kid !== undefined ? `no ${alg} signing key with kid ${JSON.stringify(kid)} is known` : `no ${alg} signing key is known`);
  }
  let signed = false;
  for (const key of resolved.keys) {
    try {
      await verify(token, key, { alg: alg as Algorithm, exp: false, nbf: false, iat: false, ...(typeof typ === 'string' ? { typ } : {}) });
      signed = true;
      break;
    } catch {
      // Not this key (or not a valid signature at all): try the next one.
    }
  }
  if (!signed) return refuse('token_signature_invalid', 'the token signature does not verify');

  const leeway = expect.leewayS ?? 30;
  const now = Math.floor((expect.now ?? Date.now)() / 1000);
  const { exp, nbf, iss, aud, sub } = payload;
  // A token without an expiry would be a password that never changes: refused.
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return refuse('token_expiry_missing', 'the token has no numeric exp (expiry) claim');
  if (exp + leeway <= now) return refuse('token_expired', `the token expired at ${new Date(exp * 1000).toISOString()}`);
  if (nbf !== undefined && (typeof nbf !== 'number' || !Number.isFinite(nbf) || nbf - leeway > now)) {
    return refuse('token_not_yet_valid', typeof nbf === 'number' ? `the token is not valid before ${new Date(nbf * 1000).toISOString()}` : 'the token nbf claim is not a number');
  }
  if (expect.issuer !== undefined && iss !== expect.issuer) {
    return refuse('token_issuer_invalid', `the token was issued by ${JSON.stringify(iss ?? null)}, not by ${JSON.stringify(expect.issuer)}`);
  }
  if (expect.audience !== undefined) {
    const audiences = Array.isArray(aud) ? aud : [aud];
    if (!audiences.includes(expect.audience)) return refuse('token_audience_invalid', `the token is not meant for audience ${JSON.stringify(expect.audience)}`);
  }
  if (sub === undefined || sub === '') return refuse('token_subject_missing', 'the token has no sub (subject) claim naming who it is for');
  if (!isPrincipalId(sub)) return refuse('token_subject_invalid', 'the token sub must be a string of 1-200 characters without control characters');
  return { ok: true, principal: { id: sub, via: 'token', expiresAt: exp * 1000 } };
}
