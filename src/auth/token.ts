// Where a request carries its bearer token (RFC 6750): the Authorization header, the `access_token`
// query parameter, or, for WebSockets (browsers cannot set headers on a socket), a subprotocol entry
// `bearer.<token>` beside the application's own subprotocol. Exactly one of them, or none.

export const TOKEN_QUERY_PARAMETER = 'access_token';
/** Subprotocol entries that carry a token start with this (a JWT is made of subprotocol-safe characters). */
export const TOKEN_SUBPROTOCOL_PREFIX = 'bearer.';
/** Larger "tokens" are refused unread: no real JWT comes near this, and verifying costs CPU. */
export const MAX_TOKEN_CHARS = 8_192;

export type TokenSource = 'header' | 'query' | 'subprotocol';

export type FoundToken =
  | { kind: 'none' }
  /** An Authorization header with another scheme (Basic, a bare secret, …). */
  | { kind: 'not_bearer' }
  /** RFC 6750 §2: a client must not send the token more than one way. */
  | { kind: 'ambiguous'; sources: TokenSource[] }
  | { kind: 'token'; token: string; source: TokenSource };

/** The subprotocols a WebSocket handshake offers, in order. */
export function offeredSubprotocols(request: Request): string[] {
  const header = request.headers.get('sec-websocket-protocol');
  return header ? header.split(',').map((p) => p.trim()).filter((p) => p !== '') : [];
}

/**
 * The subprotocol a WebSocket upgrade should answer with: the first offered one that is not a token.
 * Browsers fail the handshake unless the server picks one of the protocols they offered, and the token
 * itself must never be echoed back (it would land in proxies' logs).
 */
export function applicationSubprotocol(request: Request): string | undefined {
  return offeredSubprotocols(request).find((p) => !p.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
}

export function findToken(request: Request): FoundToken {
  const found: Array<{ token: string; source: TokenSource }> = [];
  const authorization = request.headers.get('authorization');
  let notBearer = false;
  if (authorization !== null) {
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    if (match) found.push({ token: match[1]!, source: 'header' });
    else notBearer = true;
  }
  const query = new URL(request.url).searchParams.getAll(TOKEN_QUERY_PARAMETER);
  for (const token of query) found.push({ token, source: 'query' });
  for (const protocol of offeredSubprotocols(request)) {
    if (protocol.startsWith(TOKEN_SUBPROTOCOL_PREFIX)) found.push({ token: protocol.slice(TOKEN_SUBPROTOCOL_PREFIX.length), source: 'subprotocol' });
  }
  if (found.length > 1 || (found.length === 1 && notBearer)) {
    return { kind: 'ambiguous', sources: [...(notBearer ? (['header'] as const) : []), ...found.map((f) => f.source)] };
  }
  if (found.length === 1) return { kind: 'token', ...found[0]! };
  return notBearer ? { kind: 'not_bearer' } : { kind: 'none' };
}
