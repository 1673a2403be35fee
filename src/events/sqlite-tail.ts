// The direct path's memory: events this process just committed, as frozen StoredEvents keyed by
// position, so subscribers get them without re-reading and re-parsing the file. It is a cache of the
// file and nothing more: an event enters only once the worker reported it committed at that position,
// so whatever it holds at position p is exactly what the file holds at p. It is bounded; what it no
// longer (or never) holds is read from the file.
import type { EventMetadata, Position, StoredEvent } from './store.js';

export interface TailLimits {
  /** Most events held (default 10,000). */
  maxEvents: number;
  /** Most bytes of serialized data and metadata held (default 16 MiB). */
  maxBytes: number;
}

export interface CommittedTail {
  /**
   * The events at after + 1, after + 2, … that are held, without a gap, at most `max` of them; [] when
   * after + 1 is not held. The array is the caller's; the events are shared and frozen.
   */
  from(after: Position, max: number): StoredEvent[];
  /** The first position held after `after`, if any. */
  firstAfter(after: Position): Position | undefined;
  /** Append events committed after everything held (older or repeated positions are ignored). */
  add(event: StoredEvent, bytes: number): void;
  /** Forget events up to `position` (every subscriber has them). */
  dropThrough(position: Position): void;
  clear(): void;
  readonly size: number;
  readonly bytes: number;
}

export function committedTail(limits: TailLimits): CommittedTail {
  let events: StoredEvent[] = [];
  let sizes: number[] = [];
  /** Index of the oldest event held; the slots before it are waiting to be compacted away. */
  let start = 0;
  let bytes = 0;

  /** Index of the first held event with a position > after (events.length when none). */
  function indexAfter(after: Position): number {
    let low = start;
    let high = events.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((events[mid] as StoredEvent).position <= after) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  function dropOldest(count: number): void {
    for (let i = start; i < start + count; i++) bytes -= sizes[i] as number;
    start += count;
    if (start === events.length) {
      events = [];
      sizes = [];
      start = 0;
    } else if (start > 1024 && start * 2 > events.length) {
      events = events.slice(start);
      sizes = sizes.slice(start);
      start = 0;
    }
  }

  return {
    from(after, max) {
      const i = indexAfter(after);
      if (i >= events.length || (events[i] as StoredEvent).position !== after + 1) return [];
      let end = i + 1;
      const limit = Math.min(events.length, i + max);
      while (end < limit && (events[end] as StoredEvent).position === (events[end - 1] as StoredEvent).position + 1) end++;
      return events.slice(i, end);
    },
    firstAfter(after) {
      const i = indexAfter(after);
      return i < events.length ? (events[i] as StoredEvent).position : undefined;
    },
    add(event, size) {
      const last = events[events.length - 1];
      if (last !== undefined && event.position <= last.position && events.length > start) return;
      events.push(event);
      sizes.push(size);
      bytes += size;
      const held = events.length - start;
      if (held > limits.maxEvents || bytes > limits.maxBytes) {
        // Oldest first: a subscriber that far behind reads those from the file instead.
        let drop = Math.max(0, held - limits.maxEvents);
        let freed = 0;
        for (let i = start; i < start + drop; i++) freed += sizes[i] as number;
        while (bytes - freed > limits.maxBytes && drop < held) freed += sizes[start + drop++] as number;
        dropOldest(drop);
      }
    },
    dropThrough(position) {
      const i = indexAfter(position);
      if (i > start) dropOldest(i - start);
    },
    clear() {
      events = [];
      sizes = [];
      start = 0;
      bytes = 0;
    },
    get size() {
      return events.length - start;
    },
    get bytes() {
      return bytes;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Frozen copies of what a caller appended.

/** An event's data and metadata as subscribers will see them: deep-frozen, the caller's own objects untouched. */
export interface FrozenPayload {
  data: Record<string, unknown>;
  metadata: EventMetadata;
}

/**
 * A frozen copy of `value` equal to JSON.parse(JSON.stringify(value)) — what the file holds and what a
 * subscriber reading it would get — built in one walk, which costs less than JSON.parse. Values JSON
 * would change (undefined, functions, NaN, -0, Dates and other class instances, a `__proto__` key) are
 * rare in events; for those the serialized text is parsed and frozen instead, so the copy stays exact.
 */
export function frozenCopy<T>(value: T, json: string): T {
  try {
    return copyFrozen(value) as T;
  } catch (error) {
    if (error !== NOT_PLAIN) throw error;
    return deepFreeze(JSON.parse(json) as T);
  }
}

const NOT_PLAIN = Symbol('not plain JSON');
const OBJECT_PROTOTYPE = Object.prototype;
const ARRAY_PROTOTYPE = Array.prototype;

function copyFrozen(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) {
    if (typeof value === 'string' || typeof value === 'boolean' || value === null) return value;
    if (typeof value === 'number' && Number.isFinite(value) && !Object.is(value, -0)) return value;
    throw NOT_PLAIN;
  }
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== ARRAY_PROTOTYPE) throw NOT_PLAIN;
    const length = value.length;
    const copy = new Array<unknown>(length);
    for (let i = 0; i < length; i++) copy[i] = copyFrozen(value[i]); // a hole reads as undefined: not plain
    return Object.freeze(copy);
  }
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== OBJECT_PROTOTYPE && prototype !== null) throw NOT_PLAIN;
  const source = value as Record<string, unknown>;
  const keys = Object.keys(source);
  const copy: Record<string, unknown> = {};
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (key === '__proto__') throw NOT_PLAIN; // assigning it would set the copy's prototype
    copy[key] = copyFrozen(source[key]);
  }
  return Object.freeze(copy);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
    Object.freeze(value);
  }
  return value;
}
