// The history read model: every event of a session and of its plans, as recorded, for
// GET /sessions/:id/events. One document per event, numbered per session (see session-contents.ts),
// indexed per session by log position.
import type { DomainEvent } from '../events/catalog.js';
import type { StoredEvent } from '../events/store.js';

import { HISTORY } from './collections.js';
export { HISTORY };

export interface HistoryDoc {
  event_id: string;
  session_id: string;
  stream: string;
  revision: number;
  position: number;
  type: string;
  at: string;
  data: Record<string, unknown>;
  /** Who sent the command behind the event (absent for Planline's own commands and older events). */
  principal?: string;
  [key: string]: unknown;
}

export function historyDoc(sessionId: string, stored: StoredEvent, event: DomainEvent): HistoryDoc {
  return {
    event_id: stored.id,
    session_id: sessionId,
    stream: stored.stream,
    revision: stored.revision,
    position: stored.position,
    type: stored.type,
    at: stored.metadata.at,
    // The tx freezes what it is given: data the store already froze is shared as it is; anything
    // else belongs to the caller and is copied first.
    data: (Object.isFrozen(event.data) ? event.data : structuredClone(event.data)) as Record<string, unknown>,
    ...(stored.metadata.principal !== undefined ? { principal: stored.metadata.principal } : {}),
  };
}
