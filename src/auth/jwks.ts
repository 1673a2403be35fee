// A JSON Web Key Set fetched from AUTH_JWKS_URL and kept in memory. Keys rotate at the issuer, so:
//  - the set is fetched again once it is older than `cacheMs` (a removed key stops working then);
//  - a token whose `kid` is not in the set fetches it again at once (a new key works from its first
//    token), but at most once per `cooldownMs`, so a stream of tokens with made-up kids cannot turn
//    this server into a flood against the issuer;
//  - concurrent requests share one fetch in flight;
//  - a failed fetch keeps the keys we have (logged): an issuer hiccup must not log everyone out.
// Only signing keys Planline accepts are kept: RSA (RS256) and EC P-256 (ES256), imported once.
import { webcrypto } from 'node:crypto';
import type { Logger } from '../log.js';

type CryptoKey = webcrypto.CryptoKey;

export type AsymmetricAlgorithm = 'RS256' | 'ES256';

export interface VerificationKey {
  kid: string | undefined;
  alg: AsymmetricAlgorithm;
  key: CryptoKey;
}

export type KeyLookup = { ok: true; keys: VerificationKey[] } | { ok: false; reason: 'unavailable'; detail: string };

export interface KeySet {
  /** Keys that may have signed a token with this header (by kid, else every key of the algorithm). */
  keysFor(header: { kid?: string | undefined; alg: AsymmetricAlgorithm }): Promise<KeyLookup>;
  /** How many times the set was fetched (successfully or not): for tests and metrics. */
  fetches(): number;
}

export interface RemoteKeySetOptions {
  url: string;
  cacheMs: number;
  cooldownMs: number;
  log: Logger;
  /** One fetch's budget (default 5 s). */
  timeoutMs?: number;
  /** A larger key set is refused (default 1 MiB). */
  maxBytes?: number;
  now?: () => number;
}

const ALGORITHMS: Record<AsymmetricAlgorithm, webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams> = {
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
};

type Jwk = Record<string, unknown>;

/** The algorithm a JWK may verify, or undefined when Planline does not accept it for signatures. */
function algorithmOf(jwk: Jwk): AsymmetricAlgorithm | undefined {
  if (jwk.use !== undefined && jwk.use !== 'sig') return undefined;
  if (jwk.kty === 'RSA' && typeof jwk.n === 'string' && typeof jwk.e === 'string' && (jwk.alg === undefined || jwk.alg === 'RS256')) return 'RS256';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256' && typeof jwk.x === 'string' && typeof jwk.y === 'string' && (jwk.alg === undefined || jwk.alg === 'ES256')) return 'ES256';
  return undefined;
}

async function importKey(jwk: Jwk): Promise<VerificationKey | undefined> {
  const alg = algorithmOf(jwk);
  if (!alg) return undefined;
  // Only the public members: a JWKS that wrongly carries private parts must not make us hold them.
  const publicJwk: webcrypto.JsonWebKey = alg === 'RS256' ? { kty: 'RSA', n: jwk.n as string, e: jwk.e as string } : { kty: 'EC', crv: 'P-256', x: jwk.x as string, y: jwk.y as string };
  try {
    const key = await webcrypto.subtle.importKey('jwk', publicJwk, ALGORITHMS[alg], false, ['verify']);
    return { kid: typeof jwk.kid === 'string' ? jwk.kid : undefined, alg, key };
  } catch {
    return undefined;
  }
}

export function remoteKeySet(options: RemoteKeySetOptions): KeySet {
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const maxBytes = options.maxBytes ?? 1_048_576;
  let keys: VerificationKey[] | undefined;
  let fetchedAt = -Infinity;
  let attemptedAt = -Infinity;
  let inFlight: Promise<void> | undefined;
  let fetchCount = 0;
  let lastError = '';

  async function download(): Promise<VerificationKey[]> {
    const response = await fetch(options.url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' }, redirect: 'error' });
    if (!response.ok) throw new Error(`the key set answered HTTP ${response.status}`);
    const text = await response.text();
    if (Buffer.byteLength(text) > maxBytes) throw new Error(`the key set is larger than ${maxBytes} bytes`);
    const body = JSON.parse(text) as { keys?: unknown };
    if (!Array.isArray(body?.keys)) throw new Error('the key set has no "keys" array');
    const imported = await Promise.all((body.keys as unknown[]).filter((k): k is Jwk => typeof k === 'object' && k !== null).map(importKey));
    return imported.filter((k): k is VerificationKey => k !== undefined);
  }

  function refresh(): Promise<void> {
    inFlight ??= (async () => {
      attemptedAt = now();
      fetchCount++;
      try {
        keys = await download();
        fetchedAt = now();
        lastError = '';
      } catch (error) {
        lastError = error instanceof Error ? error.message : String(error);
        options.log.warn('cannot fetch the JSON Web Key Set; keeping the keys fetched before', {
          url: options.url,
          error: lastError,
          keys: keys?.length ?? 0,
        });
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  }

  const matching = (header: { kid?: string | undefined; alg: AsymmetricAlgorithm }) =>
    (keys ?? []).filter((k) => k.alg === header.alg && (header.kid === undefined || k.kid === header.kid));

  return {
    fetches: () => fetchCount,
    async keysFor(header) {
      const coolingDown = () => now() - attemptedAt < options.cooldownMs;
      // Never fetched, or older than the cache allows: fetch again, unless a fetch just failed (then
      // serve the keys we have, or refuse until the cooldown has passed).
      if (keys === undefined || now() - fetchedAt >= options.cacheMs) {
        if (inFlight) await inFlight;
        else if (!coolingDown()) await refresh();
      }
      if (keys === undefined) {
        return { ok: false, reason: 'unavailable', detail: `the token signing keys cannot be fetched (${lastError || 'not fetched yet'})` };
      }
      let found = matching(header);
      // A kid we have not seen: the issuer may have rotated its keys since we fetched them.
      if (found.length === 0 && header.kid !== undefined && (inFlight || !coolingDown())) {
        await (inFlight ?? refresh());
        found = matching(header);
      }
      return { ok: true, keys: found };
    },
  };
}
