// Who may do what to a session: its owner everything, a collaborator read and send commands, a viewer
// only read, anyone else nothing, and for them the session does not exist (404, never 403, so that a
// stranger cannot even learn which session ids are taken). Pure: the session decider, the use cases,
// the HTTP edge and the WebSocket edge all ask these functions.
import type { ShareRole } from '../events/catalog.js';
import { LOCAL_PRINCIPAL_ID } from '../auth/principal.js';
import { DomainError, forbidden, notFound } from './errors.js';

export type Access = 'owner' | ShareRole | 'none';
/** What a request needs: to read (queries, subscribing), to command (messages, decisions …), to own (share, delete). */
export type Need = 'read' | 'command' | 'own';

/** Most principals a session may be shared with: each is an index entry per list it appears in. */
export const MAX_SHARES = 100;

export interface Membership {
  /** Undefined for sessions started before owners existed: they belong to `local`. */
  owner?: string | undefined;
  shares: Readonly<Record<string, ShareRole>>;
}

export const ownerOf = (session: Membership): string => session.owner ?? LOCAL_PRINCIPAL_ID;

export function accessOf(session: Membership, principal: string): Access {
  if (ownerOf(session) === principal) return 'owner';
  return Object.hasOwn(session.shares, principal) ? session.shares[principal]! : 'none';
}

const RANK: Record<Access, number> = { none: 0, viewer: 1, collaborator: 2, owner: 3 };
const NEEDED: Record<Need, number> = { read: RANK.viewer, command: RANK.collaborator, own: RANK.owner };

export const permits = (access: Access, need: Need): boolean => RANK[access] >= NEEDED[need];

/** Everyone who may read the session: the owner first, then the shares (index membership of lists). */
export const readersOf = (session: Membership): string[] => [ownerOf(session), ...Object.keys(session.shares)];

/**
 * Why `principal`, being `access` to the session, may not do what `need` says (undefined when it may):
 * `session_not_found` when it may not even read the session, `forbidden` when it may read but not this.
 */
export function accessRefusal(sessionId: string, principal: string, access: Access, need: Need): DomainError | undefined {
  if (access === 'none') return notFound('session', sessionId);
  if (permits(access, need)) return undefined;
  return forbidden(
    need === 'own'
      ? `only the owner of session ${sessionId} may do this; ${principal} is a ${access}`
      : `${principal} is a viewer of session ${sessionId}: it may read the session but not send commands to it`,
    { session_id: sessionId, role: access },
  );
}

/** Throws accessRefusal's error unless `principal` may do what `need` says to the session. */
export function requireAccess(session: Membership & { session_id: string }, principal: string, need: Need): void {
  const refusal = accessRefusal(session.session_id, principal, accessOf(session, principal), need);
  if (refusal) throw refusal;
}
