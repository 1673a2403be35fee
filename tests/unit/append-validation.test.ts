// Appends are checked before they leave the process, by the same rules as the SQLite adapter's.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { validateAppends } from '../../src/events/append-validation.js';
import type { ExpectedRevision, NewEvent } from '../../src/events/store.js';

function event(id: string = randomUUID()): NewEvent {
  return { id, type: 'ThingHappened', data: { n: 1 }, metadata: { command_id: 'c', correlation_id: 'c', causation_id: 'c', at: 'now', schema_version: 1 } };
}

const one = (events: NewEvent[], expected: ExpectedRevision = 'any', stream = 's') => validateAppends([{ stream, events, expected }]);

describe('append validation', () => {
  it('lowercases event ids, as the server hands them back', () => {
    const id = randomUUID().toUpperCase();
    const [part] = one([event(id)]);
    expect(part!.events[0]!.id).toBe(id.toLowerCase());
  });

  it('refuses ids that are not UUIDs', () => {
    expect(() => one([event('not-a-uuid')])).toThrow(/not a UUID/);
    expect(() => one([{ ...event(), id: 42 as unknown as string }])).toThrow(TypeError);
  });

  it('refuses an id used twice in one append, whatever its case, also across streams', () => {
    const id = randomUUID();
    expect(() => one([event(id), event(id.toUpperCase())])).toThrow(/appears twice/);
    expect(() =>
      validateAppends([
        { stream: 'a', events: [event(id)], expected: 'any' },
        { stream: 'b', events: [event(id)], expected: 'any' },
      ]),
    ).toThrow(/appears twice/);
  });

  it('refuses a stream named twice, an empty append and an empty list', () => {
    expect(() =>
      validateAppends([
        { stream: 'a', events: [event()], expected: 'any' },
        { stream: 'a', events: [event()], expected: 'any' },
      ]),
    ).toThrow(/appears twice/);
    expect(() => one([])).toThrow(RangeError);
    expect(() => validateAppends([])).toThrow(RangeError);
    expect(() => one([event()], 'any', '')).toThrow(TypeError);
  });

  it('accepts revisions that are non-negative integers and the three stream states, nothing else', () => {
    for (const expected of [0, 7, 'any', 'no_stream', 'stream_exists'] as ExpectedRevision[]) expect(() => one([event()], expected)).not.toThrow();
    for (const expected of [-1, 1.5, Number.NaN, 2 ** 53]) expect(() => one([event()], expected)).toThrow(RangeError);
    expect(() => one([event()], 'latest' as ExpectedRevision)).toThrow(TypeError);
  });

  it('refuses events without a type or with data that is not a JSON object', () => {
    expect(() => one([{ ...event(), type: '' }])).toThrow(/type/);
    expect(() => one([{ ...event(), data: [1, 2] as unknown as Record<string, unknown> }])).toThrow(/JSON object/);
  });
});
