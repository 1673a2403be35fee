// Job payloads travel as JSON. A value JSON would silently change (a function dropped, a Date turned
// into a string, NaN into null) or cannot carry (a BigInt, a cycle) is refused at enqueue with a
// TypeError naming where it is, instead of surfacing later as a different payload in a worker.
import type { JsonObject } from './bus.js';

export function encodeJob(payload: JsonObject): Uint8Array {
  assertJsonObject(payload);
  return Buffer.from(JSON.stringify(payload), 'utf8');
}

/** Undefined when the bytes are not a JSON object (a foreign or corrupt message). */
export function decodeJob(data: Uint8Array): JsonObject | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
    return isPlainObject(value) ? (value as JsonObject) : undefined;
  } catch {
    return undefined;
  }
}

export function assertJsonObject(payload: unknown): asserts payload is JsonObject {
  if (!isPlainObject(payload)) throw new TypeError(`job payload must be a plain JSON object, got ${describe(payload)}`);
  check(payload, 'payload', new Set());
}

function check(value: unknown, path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`job ${path} is ${String(value)}, which JSON cannot carry`);
      return;
    case 'object': {
      if (value === null) return;
      if (ancestors.has(value)) throw new TypeError(`job ${path} refers back to itself (a cycle)`);
      ancestors.add(value);
      if (Array.isArray(value)) {
        value.forEach((item, index) => check(item, `${path}[${index}]`, ancestors));
      } else if (isPlainObject(value)) {
        for (const [key, item] of Object.entries(value)) {
          // An absent optional field is the one thing JSON drops that means the same after a round trip.
          if (item !== undefined) check(item, `${path}.${key}`, ancestors);
        }
      } else {
        throw new TypeError(`job ${path} is ${describe(value)}; only plain objects, arrays and primitives are JSON`);
      }
      ancestors.delete(value);
      return;
    }
    default:
      throw new TypeError(`job ${path} is ${describe(value)}, which JSON cannot carry`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `a ${value.constructor?.name ?? 'non-plain'} object`;
  return `a ${typeof value}`;
}
