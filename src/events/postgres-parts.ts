// An append as the PostgreSQL store writes it: validated by the rules every adapter shares
// (append-validation.ts), then serialized at once, so a caller mutating its objects after append()
// changes nothing that is written, and data that cannot be serialized fails this append alone.
import { validateAppends } from './append-validation.js';
import type { ExpectedRevision, StreamAppend } from './store.js';

/** One stream's part of an append, with its events as columns. */
export interface PreparedPart {
  stream: string;
  expected: ExpectedRevision;
  /** Lowercase UUIDs. */
  ids: string[];
  types: string[];
  /** JSON text of each event's data and metadata. */
  data: string[];
  metadata: string[];
}

/** Throws TypeError / RangeError on bad input; nothing has been sent anywhere then. */
export function prepareParts(appends: readonly StreamAppend[]): PreparedPart[] {
  return validateAppends(appends).map(({ stream, events, expected }) => {
    // PostgreSQL text cannot hold NUL: refuse it here instead of failing the whole group commit later.
    if (stream.includes('\u0000')) throw new TypeError('stream name must not contain NUL');
    return {
      stream,
      expected,
      ids: events.map((e) => e.id),
      types: events.map((e) => {
        if (e.type.includes('\u0000')) throw new TypeError('event type must not contain NUL');
        return e.type;
      }),
      data: events.map((e) => JSON.stringify(e.data)),
      metadata: events.map((e) => {
        // JSON.stringify(undefined) is undefined, not text: it would reach the database as NULL.
        if (typeof e.metadata !== 'object' || e.metadata === null || Array.isArray(e.metadata)) {
          throw new TypeError(`event ${e.id}: metadata must be a JSON object`);
        }
        return JSON.stringify(e.metadata);
      }),
    };
  });
}
