// Who is asking. Every request acts as one principal: the `sub` of a verified token, or `local` when
// auth is off (a loopback server with no auth configured). Sessions are owned by principals, and every
// event records the principal whose command caused it.

export interface Principal {
  /** The token's `sub` (`local` with auth off): owns sessions, named in event metadata and shares. */
  id: string;
  /** How the principal was established. */
  via: 'token' | 'auth_off';
  /** When the token stops being valid (ms since the epoch); a long-lived socket closes then. */
  expiresAt?: number | undefined;
}

/** The one principal of a server running without auth; also the owner of sessions older than owners. */
export const LOCAL_PRINCIPAL_ID = 'local';

export const localPrincipal: Principal = Object.freeze({ id: LOCAL_PRINCIPAL_ID, via: 'auth_off' });

/** A principal id as it may appear in tokens, shares and events: 1-200 characters, no control characters. */
export function isPrincipalId(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= 200 && !/[\x00-\x1f\x7f]/.test(value);
}

/** Why a request was not authenticated: the answer the HTTP edge gives, and the socket's refusal. */
export interface AuthRefusal {
  /** 401 (no or bad token), 400 (a token sent more than one way), 503 (keys cannot be fetched). */
  status: 400 | 401 | 503;
  /** Stable, machine-readable (problem+json `code`). */
  code: string;
  detail: string;
  /** The `WWW-Authenticate` challenge to send with a 401/400. */
  challenge?: string | undefined;
}

export type AuthResult = { ok: true; principal: Principal } | { ok: false; refusal: AuthRefusal };
