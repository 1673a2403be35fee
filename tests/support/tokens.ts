// Test tokens and a key server, made with node:crypto only: JWTs signed with HS256 (a shared key),
// RS256 or ES256 (key pairs), or not signed at all (`alg: none`), with any header and claims; and a
// JSON Web Key Set served over HTTP on loopback whose keys a test rotates.
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Claims = Record<string, unknown>;

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
export const nowS = () => Math.floor(Date.now() / 1000);

/** Claims of a token valid for an hour, for `sub`. */
export const validClaims = (sub: string, extra: Claims = {}): Claims => ({ sub, iat: nowS(), exp: nowS() + 3600, ...extra });

export function hs256(secret: string, claims: Claims, header: Claims = {}): string {
  const input = `${b64({ alg: 'HS256', typ: 'JWT', ...header })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** An unsigned token (`alg: none`): what a forger sends hoping the server skips the signature. */
export const unsigned = (claims: Claims): string => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;

export interface SigningKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: KeyObject;
  /** The public half as a JWK, as a key set publishes it. */
  jwk: Record<string, unknown>;
  sign(claims: Claims, header?: Claims): string;
}

export function signingKey(alg: 'RS256' | 'ES256', kid: string): SigningKey {
  const { privateKey, publicKey } =
    alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    kid,
    alg,
    privateKey,
    jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' },
    sign(claims, header = {}) {
      const input = `${b64({ alg, typ: 'JWT', kid, ...header })}.${b64(claims)}`;
      const signature =
        alg === 'RS256'
          ? sign('sha256', Buffer.from(input), privateKey)
          : sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
      return `${input}.${signature.toString('base64url')}`;
    },
  };
}

export interface KeyServer {
  url: string;
  /** Publish exactly these keys from now on (rotation: add the new key, later remove the old). */
  publish(keys: ReadonlyArray<{ jwk: Record<string, unknown> }>): void;
  /** How many times the key set was fetched. */
  readonly fetches: number;
  close(): Promise<void>;
}

/** A JWKS endpoint on 127.0.0.1 (an ephemeral port), as an identity provider serves one. */
export async function keyServer(keys: ReadonlyArray<{ jwk: Record<string, unknown> }>): Promise<KeyServer> {
  let published = keys.map((k) => k.jwk);
  let fetches = 0;
  const server: Server = createServer((req, res) => {
    fetches++;
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    publish(next) {
      published = next.map((k) => k.jwk);
    },
    get fetches() {
      return fetches;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
