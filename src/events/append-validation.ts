// What every append must look like before it goes anywhere near a server: the rules the SQLite adapter
// enforces (sqlite-store.ts validateAppend / appendParts), in one place a remote adapter can share.
// Bad input fails the whole append with a TypeError or RangeError, and nothing is written.
import type { ExpectedRevision, NewEvent, StreamAppend } from './store.js';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Check one or several stream appends and return them with lowercase event ids.
 *
 * Ids are lowercased because KurrentDB hands ids back in lowercase (a .NET Guid's text form): an id
 * written in capitals would read back different from what was written, and the in-process merge of
 * identical appends would miss that `ABC…` and `abc…` are the same event. SQLite lowercases too.
 */
export function validateAppends(appends: readonly StreamAppend[]): StreamAppend[] {
  if (!Array.isArray(appends as unknown) || appends.length === 0) throw new RangeError('appendMulti needs at least one stream');
  const streams = new Set<string>();
  const ids = new Set<string>();
  return appends.map(({ stream, events, expected }) => {
    validateAppend(stream, events, expected);
    if (streams.has(stream)) throw new TypeError(`stream ${stream} appears twice in one append`);
    streams.add(stream);
    return {
      stream,
      expected,
      events: events.map((event) => {
        const id = event.id.toLowerCase();
        // Unique across the whole append, not only per stream: one commit, one set of ids.
        if (ids.has(id)) throw new TypeError(`event id ${event.id} appears twice in one append`);
        ids.add(id);
        return id === event.id ? event : { ...event, id };
      }),
    };
  });
}

function validateAppend(stream: string, events: NewEvent[], expected: ExpectedRevision): void {
  if (typeof stream !== 'string' || stream.length === 0) throw new TypeError('stream name must be a non-empty string');
  if (!Array.isArray(events) || events.length === 0) throw new RangeError('append needs at least one event');
  assertExpectedRevision(expected);
  for (const event of events) {
    if (typeof event?.id !== 'string' || !UUID_PATTERN.test(event.id)) throw new TypeError(`event id ${String(event?.id)} is not a UUID`);
    if (typeof event.type !== 'string' || event.type.length === 0) throw new TypeError('event type must be a non-empty string');
    if (typeof event.data !== 'object' || event.data === null || Array.isArray(event.data)) {
      throw new TypeError(`event ${event.id}: data must be a JSON object`);
    }
  }
}

/** A revision is a non-negative safe integer; anything else must be one of the three stream states. */
export function assertExpectedRevision(expected: ExpectedRevision): void {
  if (typeof expected === 'number') assertCount(expected, 'expected revision');
  else if (expected !== 'any' && expected !== 'no_stream' && expected !== 'stream_exists') {
    throw new TypeError(`unknown expected revision ${String(expected)}`);
  }
}

export function assertCount(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what} must be a non-negative integer, got ${value}`);
}
